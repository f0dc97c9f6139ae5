//! Helpers shared by the bridge's integration tests: raw ZeroMQ requests (to craft malformed
//! messages no client would send) and the malformed-request suite every server must pass.

#![allow(dead_code)]

use std::time::Duration;

use ember_sim_bridge::PROTOCOL_VERSION;
use serde_json::{Value, json};

/// Sends raw parts on a fresh REQ socket and returns the reply's parts, or `None` when no
/// reply came within `timeout`.
pub fn raw_request(endpoint: &str, parts: &[Vec<u8>], timeout: Duration) -> Option<Vec<Vec<u8>>> {
    let ctx = zmq::Context::new();
    let s = ctx.socket(zmq::REQ).expect("REQ socket");
    s.set_linger(0).unwrap();
    s.connect(endpoint).expect("connect");
    s.send_multipart(parts.iter().map(|p| p.as_slice()), 0)
        .expect("send");
    let ready = s
        .poll(zmq::POLLIN, timeout.as_millis() as i64)
        .expect("poll");
    if ready == 0 {
        return None;
    }
    Some(s.recv_multipart(0).expect("recv"))
}

/// A request header with our protocol version, `seq` 41, and the given fields.
pub fn header(fields: Value) -> Vec<u8> {
    let mut h = json!({"protocol": PROTOCOL_VERSION, "seq": 41});
    for (k, v) in fields.as_object().expect("fields object") {
        h[k] = v.clone();
    }
    serde_json::to_vec(&h).unwrap()
}

/// Sends a request that must be answered with an error reply of `code` blaming `field`;
/// returns the reply header.
pub fn expect_error(
    endpoint: &str,
    what: &str,
    parts: &[Vec<u8>],
    code: &str,
    field: Option<&str>,
) -> Value {
    let reply = raw_request(endpoint, parts, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{what}: no reply from {endpoint}"));
    assert_eq!(reply.len(), 1, "{what}: an error reply has no frames");
    let h: Value = serde_json::from_slice(&reply[0])
        .unwrap_or_else(|e| panic!("{what}: reply header is not JSON: {e}"));
    assert_eq!(h["protocol"], PROTOCOL_VERSION, "{what}: {h}");
    assert_eq!(h["ok"], false, "{what}: {h}");
    assert_eq!(h["error"]["code"], code, "{what}: {h}");
    if let Some(field) = field {
        assert_eq!(h["error"]["field"], field, "{what}: {h}");
    }
    let msg = h["error"]["message"].as_str().unwrap_or("");
    assert!(
        !msg.is_empty(),
        "{what}: an error reply explains itself: {h}"
    );
    h
}

/// Checks that the server still answers a well-formed ping.
pub fn assert_serving(endpoint: &str, after: &str) {
    let reply = raw_request(
        endpoint,
        &[header(json!({"kind": "ping", "seq": 7}))],
        Duration::from_secs(20),
    )
    .unwrap_or_else(|| panic!("no reply to ping after {after}"));
    let h: Value = serde_json::from_slice(&reply[0]).unwrap();
    assert_eq!(h["ok"], true, "ping after {after}: {h}");
    assert_eq!(h["seq"], 7, "ping after {after}: {h}");
    assert_eq!(h["kind"], "ping", "ping after {after}: {h}");
}

fn rgb_desc() -> Value {
    json!({"name": "rgb", "dtype": "uint8", "shape": [1, 1, 3],
           "byteOrder": "little", "rowOrder": "top_to_bottom"})
}

/// One malformed-request case: what it is, the message parts, the error code and field.
type Case = (
    &'static str,
    Vec<Vec<u8>>,
    &'static str,
    Option<&'static str>,
);

/// Every malformed-request class of PROTOCOL.md that needs no scene; after each one the
/// server must still answer. Works against any ember-sim/1 server.
pub fn malformed_suite(endpoint: &str) {
    let p = PROTOCOL_VERSION;
    let cases: Vec<Case> = vec![
        (
            "bad JSON",
            vec![b"{\"protocol\": ".to_vec()],
            "malformed",
            Some("header"),
        ),
        (
            "not UTF-8",
            vec![vec![0xff, 0xfe, 0x00]],
            "malformed",
            Some("header"),
        ),
        (
            "JSON array",
            vec![b"[1, 2, 3]".to_vec()],
            "malformed",
            Some("header"),
        ),
        (
            "JSON string",
            vec![b"\"ping\"".to_vec()],
            "malformed",
            Some("header"),
        ),
        (
            "JSON number",
            vec![b"42".to_vec()],
            "malformed",
            Some("header"),
        ),
        (
            "empty header",
            vec![Vec::new()],
            "malformed",
            Some("header"),
        ),
        (
            "unknown kind",
            vec![header(json!({"kind": "teleport_me"}))],
            "unknown_kind",
            Some("kind"),
        ),
        (
            "kind of the wrong type",
            vec![header(json!({"kind": ["ping"]}))],
            "bad_field",
            Some("kind"),
        ),
        (
            "other protocol version",
            vec![header(json!({"kind": "ping", "protocol": "ember-sim/0"}))],
            "version",
            Some("protocol"),
        ),
        (
            "no protocol version",
            vec![serde_json::to_vec(&json!({"seq": 41, "kind": "ping"})).unwrap()],
            "bad_field",
            Some("protocol"),
        ),
        (
            "seq of the wrong type",
            vec![header(json!({"kind": "ping", "seq": "one"}))],
            "bad_field",
            Some("seq"),
        ),
        (
            "no seq",
            vec![serde_json::to_vec(&json!({"protocol": p, "kind": "ping"})).unwrap()],
            "bad_field",
            Some("seq"),
        ),
        (
            "truncated: a declared frame is missing",
            vec![header(json!({"kind": "ping", "frames": [rgb_desc()]}))],
            "truncated",
            Some("frames"),
        ),
        (
            "truncated: a declared frame is short",
            vec![
                header(json!({"kind": "ping", "frames": [rgb_desc()]})),
                vec![1],
            ],
            "truncated",
            Some("frames[0]"),
        ),
        (
            "stray frames",
            vec![
                header(json!({"kind": "ping"})),
                b"stray".to_vec(),
                b"more".to_vec(),
            ],
            "stray_frames",
            Some("frames"),
        ),
        (
            "frames of the wrong type",
            vec![header(json!({"kind": "ping", "frames": "rgb"}))],
            "bad_field",
            Some("frames"),
        ),
        (
            "frames in a request",
            vec![
                header(json!({"kind": "ping", "frames": [rgb_desc()]})),
                vec![1, 2, 3],
            ],
            "bad_field",
            Some("frames"),
        ),
        (
            "absurd frame count",
            vec![header(
                json!({"kind": "ping", "frames": vec![rgb_desc(); 1000]}),
            )],
            "too_large",
            Some("frames"),
        ),
        (
            "absurd frame shape",
            vec![
                header(
                    json!({"kind": "ping", "frames": [{"name": "depth", "dtype": "float32",
                    "shape": [1u64 << 40, 1u64 << 40], "byteOrder": "little",
                    "rowOrder": "top_to_bottom"}]}),
                ),
                vec![0; 4],
            ],
            "too_large",
            Some("frames[0].shape"),
        ),
        (
            "header over the size limit",
            vec![header(
                json!({"kind": "ping", "pad": "x".repeat(1_100_000)}),
            )],
            "too_large",
            Some("header"),
        ),
        (
            "step without an action",
            vec![header(json!({"kind": "step"}))],
            "bad_field",
            Some("action"),
        ),
        (
            "action as a string",
            vec![header(json!({"kind": "step", "action": "MoveAhead"}))],
            "bad_field",
            Some("action"),
        ),
        (
            "action without a name",
            vec![header(
                json!({"kind": "step", "action": {"objectId": "Apple|1|2|3"}}),
            )],
            "bad_field",
            Some("action.action"),
        ),
        (
            "action name of the wrong type",
            vec![header(json!({"kind": "step", "action": {"action": 12}}))],
            "bad_field",
            Some("action.action"),
        ),
        (
            "reset without a scene",
            vec![header(json!({"kind": "reset"}))],
            "bad_field",
            Some("scene"),
        ),
        (
            "scene of the wrong type",
            vec![header(json!({"kind": "reset", "scene": 5}))],
            "bad_field",
            Some("scene"),
        ),
        (
            "settings of the wrong type",
            vec![header(
                json!({"kind": "reset", "scene": "FloorPlan5", "settings": [300]}),
            )],
            "bad_field",
            Some("settings"),
        ),
        (
            "a setting of the wrong type",
            vec![header(
                json!({"kind": "reset", "scene": "FloorPlan5", "settings": {"width": "wide"}}),
            )],
            "bad_setting",
            Some("settings.width"),
        ),
        (
            "absurd image size",
            vec![header(
                json!({"kind": "reset", "scene": "FloorPlan5", "settings": {"height": 1000000}}),
            )],
            "too_large",
            Some("settings.height"),
        ),
    ];
    for (what, parts, code, field) in cases {
        let h = expect_error(endpoint, what, &parts, code, field);
        // Errors echo what could be read of the request.
        if code != "malformed" && !what.contains("seq") && code != "too_large" {
            assert_eq!(h["seq"], 41, "{what}: the error reply echoes seq: {h}");
        }
        assert_serving(endpoint, what);
    }

    // A part over ZMQ_MAXMSGSIZE: ZeroMQ drops the connection (no reply can be sent), and
    // the server goes on serving other clients.
    let huge = vec![b' '; 17 << 20];
    let reply = raw_request(endpoint, &[huge], Duration::from_millis(1500));
    assert!(
        reply.is_none(),
        "a part over MAXMSGSIZE is dropped by ZeroMQ"
    );
    assert_serving(endpoint, "an oversized message");
}
