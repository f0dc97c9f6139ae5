//! The bridge end to end with thor-lite: tcp, ipc and inproc round trips, malformed requests,
//! version mismatch, timeouts, reconnection, `close`, and SimWorld observations.

mod common;

use std::time::{Duration, Instant};

use common::{assert_serving, expect_error, header, malformed_suite, raw_request};
use ember_agent::world::{Command, ResetRequest, SimAction, World};
use ember_sim_bridge::protocol::ErrorCode;
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{
    BridgeError, Client, ClientOptions, InitSettings, PROTOCOL_VERSION, Server, ServerConfig,
    ServerThread, SimEvent, SimWorld, SimWorldConfig,
};
use serde_json::{Map, Value, json};

const SCENE: &str = "FloorPlan5";

fn serve(endpoint: &str) -> ServerThread {
    Server::bind(endpoint, Box::new(ThorLite::new()), ServerConfig::default())
        .expect("bind")
        .spawn()
        .expect("spawn")
}

fn options(timeout_ms: u64) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(timeout_ms),
        ..ClientOptions::default()
    }
}

fn small_settings() -> InitSettings {
    InitSettings {
        width: 64,
        height: 48,
        render_depth_image: true,
        render_instance_segmentation: true,
        ..InitSettings::default()
    }
}

fn action(v: Value) -> Map<String, Value> {
    v.as_object().expect("action object").clone()
}

/// Runs the same episode on a client and returns every event.
fn episode(client: &mut Client) -> Vec<SimEvent> {
    let mut events = vec![client.reset(SCENE, &small_settings()).expect("reset")];
    for a in [
        json!({"action": "MoveAhead"}),
        json!({"action": "RotateRight", "degrees": 90}),
        json!({"action": "LookDown", "degrees": 30}),
        json!({"action": "MoveAhead", "moveMagnitude": 0.5}),
        json!({"action": "PickupObject", "objectId": "Nothing|0|0|0"}),
        json!({"action": "GetReachablePositions"}),
    ] {
        events.push(client.step(&action(a)).expect("step"));
    }
    events
}

#[test]
fn tcp_ipc_and_inproc_round_trips_agree() {
    let tcp = serve("tcp://127.0.0.1:*");
    assert!(tcp.endpoint().starts_with("tcp://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let ipc = serve(&format!("ipc://{}", dir.path().join("thor.sock").display()));

    let mut inproc = Client::connect("inproc://thor-lite", options(30_000)).unwrap();
    assert!(inproc.is_in_process());
    let reference = episode(&mut inproc);
    for endpoint in [tcp.endpoint().to_string(), ipc.endpoint().to_string()] {
        let mut client = Client::connect(&endpoint, options(30_000)).unwrap();
        assert!(!client.is_in_process());
        let info = client.server_info().expect("info at connect").clone();
        assert_eq!(info.protocol, PROTOCOL_VERSION);
        assert_eq!(info.simulator.name, "thor-lite");
        assert!(info.simulator.scenes.iter().any(|s| s == SCENE));
        client.ping().unwrap();
        let events = episode(&mut client);
        assert_eq!(events.len(), reference.len());
        for (i, (a, b)) in events.iter().zip(&reference).enumerate() {
            // Metadata survives the JSON trip exactly; frames byte for byte.
            assert_eq!(a.metadata, b.metadata, "{endpoint}: metadata of event {i}");
            assert_eq!(a.frames, b.frames, "{endpoint}: frames of event {i}");
        }
    }
    // What the episode says, checked once.
    let first = &reference[0];
    let rgb = first.frames.rgb.as_ref().unwrap();
    assert_eq!(
        (rgb.width, rgb.height, rgb.data.len()),
        (64, 48, 64 * 48 * 3)
    );
    let depth = first.frames.depth.as_ref().unwrap();
    assert!(depth.data.iter().any(|d| *d > 0.0));
    let inst = first.frames.instances.as_ref().unwrap();
    assert!(inst.data.iter().all(|&i| (i as usize) < inst.legend.len()));
    assert_eq!(
        first.metadata.scene_name.trim_end_matches("_physics"),
        SCENE
    );
    let pickup = &reference[5].metadata;
    assert!(!pickup.last_action_success, "no such object");
    assert!(!pickup.error_message.is_empty());
    assert!(
        reference[6].metadata.action_return.is_array(),
        "reachable positions"
    );
}

#[test]
fn malformed_requests_get_error_replies_and_the_server_keeps_serving() {
    let server = serve("tcp://127.0.0.1:*");
    let ep = server.endpoint().to_string();
    malformed_suite(&ep);
    // Simulator-level refusals, after a valid reset.
    let reset = raw_request(
        &ep,
        &[header(json!({"kind": "reset", "scene": SCENE}))],
        Duration::from_secs(30),
    )
    .expect("reset reply");
    let h: Value = serde_json::from_slice(&reset[0]).unwrap();
    assert_eq!(h["ok"], true, "{h}");
    assert_eq!(h["frames"][0]["name"], "rgb");
    assert_eq!(reset.len(), 2, "RGB only by default");
    expect_error(
        &ep,
        "unknown action",
        &[header(json!({"kind": "step", "action": {"action": "Fly"}}))],
        "unknown_action",
        Some("action.action"),
    );
    expect_error(
        &ep,
        "action parameter of the wrong type",
        &[header(
            json!({"kind": "step", "action": {"action": "PickupObject", "objectId": 5}}),
        )],
        "bad_field",
        Some("action.objectId"),
    );
    expect_error(
        &ep,
        "unknown scene",
        &[header(json!({"kind": "reset", "scene": "FloorPlan9999"}))],
        "unknown_scene",
        Some("scene"),
    );
    expect_error(
        &ep,
        "unknown setting",
        &[header(
            json!({"kind": "reset", "scene": SCENE, "settings": {"widht": 3}}),
        )],
        "bad_setting",
        Some("settings.widht"),
    );
    assert_serving(&ep, "simulator refusals");
    let summary = server.stop().unwrap();
    assert!(summary.errors >= 30, "{summary:?}");
    assert!(!summary.closed_by_request);
}

#[test]
fn step_before_reset_is_refused_the_same_way_on_every_transport() {
    let server = serve("tcp://127.0.0.1:*");
    for endpoint in [server.endpoint(), "inproc://thor-lite"] {
        let mut c = Client::connect(endpoint, options(30_000)).unwrap();
        let e = c.step(&action(json!({"action": "MoveAhead"}))).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NoScene), "{endpoint}: {e}");
        assert!(e.to_string().contains(endpoint), "{e}");
        c.reset(SCENE, &small_settings()).unwrap();
        let e = c.step(&action(json!({"action": "Fly"}))).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::UnknownAction), "{endpoint}: {e}");
        let e = c.step(&action(json!({"objectId": "x"}))).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::BadField), "{endpoint}: {e}");
        let too_big = InitSettings {
            width: 100_000,
            ..InitSettings::default()
        };
        let e = c.reset(SCENE, &too_big).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TooLarge), "{endpoint}: {e}");
        // And the client still works.
        c.step(&action(json!({"action": "RotateLeft"}))).unwrap();
    }
}

#[test]
fn bad_settings_name_the_key_over_the_wire_and_in_process() {
    let server = serve("tcp://127.0.0.1:*");
    let ep = server.endpoint().to_string();
    // (setting, value, code): the error blames `settings.KEY`, never just `settings`.
    let cases = [
        ("width", json!(0), "bad_setting"),
        ("height", json!(100_000), "too_large"),
        ("fieldOfView", json!(180), "bad_setting"),
        ("gridSize", json!(0), "bad_setting"),
        ("visibilityDistance", json!(-1.5), "bad_setting"),
        ("rotateStepDegrees", json!(720), "bad_setting"),
        ("snapToGrid", json!("no"), "bad_setting"),
        ("agentMode", json!("robot"), "bad_setting"),
        ("agentMode", json!(7), "bad_setting"),
        // AI2-THOR's, but not simulated by thor-lite: refused rather than run as the default.
        ("agentMode", json!("arm"), "bad_setting"),
    ];
    for (key, value, code) in &cases {
        let field = format!("settings.{key}");
        expect_error(
            &ep,
            &format!("{key} = {value}"),
            &[header(
                json!({"kind": "reset", "scene": SCENE, "settings": {*key: value}}),
            )],
            code,
            Some(&field),
        );
    }
    // The same refusals in process, with the same codes and fields.
    let mut inproc = Client::connect("inproc://thor-lite", options(30_000)).unwrap();
    for (key, value, code) in &cases {
        let mut settings = Map::new();
        settings.insert(key.to_string(), value.clone());
        let e = inproc.reset_with(SCENE, settings).unwrap_err();
        let BridgeError::Refused { error, .. } = &e else {
            panic!("{key}: {e:?}")
        };
        assert_eq!(error.code.as_str(), *code, "{key}: {e}");
        assert_eq!(
            error.field.as_deref(),
            Some(format!("settings.{key}").as_str())
        );
    }
    // AI2-THOR's agent modes are accepted (any case, as AI2-THOR lower-cases them).
    let ok = raw_request(
        &ep,
        &[header(
            json!({"kind": "reset", "scene": SCENE, "settings": {"agentMode": "Default", "width": 32, "height": 24}}),
        )],
        Duration::from_secs(30),
    )
    .expect("reset reply");
    let h: Value = serde_json::from_slice(&ok[0]).unwrap();
    assert_eq!(h["ok"], true, "{h}");
    assert_serving(&ep, "bad settings");
}

/// A bare REP socket on a free loopback port, standing in for a server that does not speak
/// the protocol as ours does; returns it with its endpoint.
fn fake_server() -> (zmq::Socket, String) {
    let ctx = zmq::Context::new();
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.set_linger(0).unwrap();
    rep.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = rep.get_last_endpoint().unwrap().unwrap();
    (rep, endpoint)
}

#[test]
fn version_mismatch_at_connect_fails_clearly() {
    // A server of a future protocol version: it answers anything with its own version.
    let (rep, endpoint) = fake_server();
    let fake = std::thread::spawn(move || {
        let req = rep.recv_multipart(0).unwrap();
        let h: Value = serde_json::from_slice(&req[0]).unwrap();
        assert_eq!(h["kind"], "info");
        assert_eq!(h["protocol"], PROTOCOL_VERSION);
        let reply = json!({"protocol": "ember-sim/2", "seq": h["seq"], "kind": "info",
                           "ok": false, "error": {"code": "version",
                           "message": "this server speaks ember-sim/2"}});
        rep.send(serde_json::to_vec(&reply).unwrap(), 0).unwrap();
    });
    let err = Client::connect(&endpoint, options(10_000)).unwrap_err();
    fake.join().unwrap();
    assert!(
        matches!(err, BridgeError::VersionMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&endpoint), "{msg}");
    assert!(
        msg.contains("ember-sim/2") && msg.contains(PROTOCOL_VERSION),
        "{msg}"
    );
}

#[test]
fn a_reply_that_is_not_the_protocol_fails_clearly() {
    let (rep, endpoint) = fake_server();
    let fake = std::thread::spawn(move || {
        rep.recv_multipart(0).unwrap();
        rep.send("HTTP/1.1 400 Bad Request", 0).unwrap();
    });
    let err = Client::connect(&endpoint, options(10_000)).unwrap_err();
    fake.join().unwrap();
    assert!(
        matches!(err, BridgeError::VersionMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&endpoint));
}

#[test]
fn a_request_to_a_missing_server_times_out_naming_the_endpoint() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let started = Instant::now();
    let err = Client::connect(&endpoint, options(400)).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, BridgeError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(
        took < Duration::from_secs(5),
        "returns soon after the timeout: {took:?}"
    );

    // A server that goes away: the next request times out, naming it.
    let server = serve("tcp://127.0.0.1:*");
    let ep = server.endpoint().to_string();
    let mut c = Client::connect(&ep, options(400)).unwrap();
    c.ping().unwrap();
    server.stop().unwrap();
    let err = c.ping().unwrap_err();
    assert!(
        matches!(err, BridgeError::Timeout { ref kind, .. } if kind == "ping"),
        "{err:?}"
    );
    assert!(err.to_string().contains(&ep));
    // In the agent's error type it is a world timeout at that endpoint.
    let agent: ember_agent::Error = err.into();
    assert!(
        matches!(agent, ember_agent::Error::WorldTimeout { ref endpoint, .. } if *endpoint == ep)
    );
}

#[test]
fn the_client_reconnects_to_a_restarted_server() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("restart.sock").display());
    let server = serve(&endpoint);
    let mut c = Client::connect(&endpoint, options(500)).unwrap();
    c.reset(SCENE, &small_settings()).unwrap();
    server.stop().unwrap();
    assert!(matches!(c.ping(), Err(BridgeError::Timeout { .. })));
    assert!(matches!(c.ping(), Err(BridgeError::Timeout { .. })));
    let _server = serve(&endpoint);
    c.set_timeout(Duration::from_secs(30));
    c.ping().unwrap();
    // A fresh simulator: it needs a reset again, and then steps.
    let e = c.step(&action(json!({"action": "MoveAhead"}))).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoScene));
    c.reset(SCENE, &small_settings()).unwrap();
    c.step(&action(json!({"action": "MoveAhead"}))).unwrap();
}

#[test]
fn a_close_request_stops_the_server() {
    let server = serve("tcp://127.0.0.1:*");
    let mut c = Client::connect(server.endpoint(), options(10_000)).unwrap();
    c.close_server().unwrap();
    let summary = server.join().unwrap();
    assert!(summary.closed_by_request);
    assert!(matches!(c.ping(), Err(BridgeError::Closed { .. })));
}

#[test]
fn servers_bind_only_tcp_and_ipc() {
    for bad in ["inproc://x", "udp://127.0.0.1:5", "127.0.0.1:5555"] {
        let e = Server::bind(bad, Box::new(ThorLite::new()), ServerConfig::default())
            .err()
            .expect("refused");
        assert!(matches!(e, BridgeError::Endpoint { .. }), "{bad}: {e}");
        assert!(e.to_string().contains(bad));
    }
    let e = Client::connect("inproc://unreal-engine", ClientOptions::default()).unwrap_err();
    assert!(e.to_string().contains("thor-lite"), "{e}");
}

fn world_settings() -> InitSettings {
    InitSettings {
        width: 160,
        height: 90,
        field_of_view: 90.0,
        render_depth_image: true,
        render_instance_segmentation: true,
        ..InitSettings::default()
    }
}

#[test]
fn sim_world_observations_have_sizes_intrinsics_and_poses() {
    let server = serve("tcp://127.0.0.1:*");
    for endpoint in [server.endpoint(), "inproc://thor-lite"] {
        let config = SimWorldConfig {
            endpoint: endpoint.into(),
            settings: world_settings(),
            default_scene: Some(SCENE.into()),
            timeout: Duration::from_secs(30),
        };
        let mut world = SimWorld::connect(config).unwrap();
        let info = world.info();
        assert_eq!(info.kind, "thor-lite");
        assert_eq!(info.endpoint, endpoint);
        assert_eq!(info.cameras, vec!["front".to_string()]);

        let obs = world.reset(&ResetRequest::default()).unwrap();
        assert_eq!(obs.step, 0);
        let meta = obs.sim.clone().expect("metadata");
        let cam = obs.camera("front").expect("front camera");
        assert_eq!((cam.rgb.width, cam.rgb.height), (160, 90));
        let depth = cam.depth.as_ref().expect("depth");
        assert_eq!(depth.data.len(), 160 * 90);
        let inst = cam.instances.as_ref().expect("instances");
        assert_eq!(inst.data.len(), 160 * 90);
        let k = cam.intrinsics.expect("intrinsics");
        // Vertical fov 90 degrees: fy = (h / 2) / tan(45 degrees) = 45 px.
        assert!(
            (k.fy - 45.0).abs() < 1e-9 && (k.fx - 45.0).abs() < 1e-9,
            "{k:?}"
        );
        assert!((k.cx - 80.0).abs() < 1e-12 && (k.cy - 45.0).abs() < 1e-12);
        let pose = cam.world_from_camera.expect("pose");
        let c = meta.camera_position;
        assert!((pose.translation() - nalgebra::Vector3::new(c.x, c.y, c.z)).norm() < 1e-9);
        let yaw = meta.agent.rotation.y.to_radians();
        let pitch = meta.agent.camera_horizon.to_radians();
        let fwd = pose.transform_vector(&nalgebra::Vector3::z());
        let want = ember_calibration::thor::forward(yaw, pitch);
        assert!((fwd - want).norm() < 1e-9, "{fwd:?} vs {want:?}");
        let base = obs.proprio.base.expect("base");
        assert_eq!(base.position, meta.agent.position.to_array());
        assert!((base.yaw - yaw.rem_euclid(std::f64::consts::TAU)).abs() < 1e-9);

        // A rotation turns the camera by 90 degrees about the up axis.
        let out = world
            .step(&[Command::Sim(
                SimAction::new("RotateRight").with("degrees", 90),
            )])
            .unwrap();
        assert!(out.feedback.success, "{:?}", out.feedback);
        assert_eq!(out.observation.step, 1);
        let yaw2 = out.observation.proprio.base.unwrap().yaw;
        let turned = (yaw2 - base.yaw).rem_euclid(std::f64::consts::TAU);
        assert!(
            (turned - std::f64::consts::FRAC_PI_2).abs() < 1e-6,
            "{turned}"
        );

        // A failed action is feedback, not an error.
        let out = world
            .step(&[Command::Sim(
                SimAction::new("PickupObject").with("objectId", "Nothing|0|0|0"),
            )])
            .unwrap();
        assert!(!out.feedback.success);
        assert!(!out.feedback.error.is_empty());
        assert_eq!(out.observation.step, 2);

        // Robot commands are refused, clearly.
        let e = world.step(&[Command::Stop]).unwrap_err();
        assert!(
            e.to_string().contains("Stop") && e.to_string().contains("Command::Sim"),
            "{e}"
        );
        // An unknown action is an error that names the endpoint.
        let e = world
            .step(&[Command::Sim(SimAction::new("Fly"))])
            .unwrap_err();
        assert!(
            e.to_string().contains(endpoint) && e.to_string().contains("Fly"),
            "{e}"
        );
        world.close().unwrap();
    }
}

#[test]
fn sim_world_reset_needs_a_scene() {
    let mut world = SimWorld::connect(SimWorldConfig::default()).unwrap();
    let e = world.reset(&ResetRequest::default()).unwrap_err();
    assert!(e.to_string().contains("scene"), "{e}");
    let obs = world
        .reset(&ResetRequest {
            scene: Some(SCENE.into()),
            seed: 0,
            ..Default::default()
        })
        .unwrap();
    let cam = obs.main_camera().unwrap();
    assert!(
        cam.depth.is_none() && cam.instances.is_none(),
        "not asked for"
    );
}
