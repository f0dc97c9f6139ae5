//! thor-lite behaviour on the real embedded scenes.

use serde_json::{Map, Value, json};

use super::ThorLite;
use crate::backend::{InitSettings, SimError, SimEvent, Simulator};

fn act(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// The benchmark's settings (800x450, fov 90, visibility 20 m, grid 0.1) with all frames.
fn bench_settings() -> InitSettings {
    InitSettings {
        width: 800,
        height: 450,
        field_of_view: 90.0,
        grid_size: 0.1,
        visibility_distance: 20.0,
        render_depth_image: true,
        render_instance_segmentation: true,
        ..InitSettings::default()
    }
}

fn sim(scene: &str, s: &InitSettings) -> (ThorLite, SimEvent) {
    let mut t = ThorLite::new();
    let ev = t.reset(scene, s).expect("reset");
    (t, ev)
}

fn step(t: &mut ThorLite, v: Value) -> SimEvent {
    t.step(&act(v)).expect("step")
}

fn obj<'a>(ev: &'a SimEvent, id: &str) -> &'a ember_agent::thor::ObjectMeta {
    ev.metadata
        .object(id)
        .unwrap_or_else(|| panic!("no object {id}"))
}

fn first_of_type(ev: &SimEvent, t: &str) -> String {
    ev.metadata
        .objects_of_type(t)
        .next()
        .unwrap_or_else(|| panic!("no {t}"))
        .object_id
        .clone()
}

/// Poses from which `id` is interactable.
fn poses(t: &mut ThorLite, id: &str) -> Vec<Value> {
    let ev = step(t, json!({"action": "GetInteractablePoses", "objectId": id}));
    assert!(
        ev.metadata.last_action_success,
        "{}",
        ev.metadata.error_message
    );
    ev.metadata
        .action_return
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn teleport_to(t: &mut ThorLite, p: &Value) -> SimEvent {
    step(
        t,
        json!({"action": "TeleportFull", "position": {"x": p["x"], "y": p["y"], "z": p["z"]},
               "rotation": {"x": 0, "y": p["rotation"], "z": 0}, "horizon": p["horizon"],
               "standing": p["standing"]}),
    )
}

#[test]
fn all_120_scenes_load_with_their_objects() {
    let names = ThorLite::scene_names();
    assert_eq!(names.len(), 120);
    let small = InitSettings {
        width: 64,
        height: 36,
        visibility_distance: 20.0,
        ..InitSettings::default()
    };
    let mut t = ThorLite::new();
    let mut per_type = std::collections::BTreeMap::new();
    let mut blocked = Vec::new();
    for n in &names {
        let summary = ThorLite::scene_summary(n).unwrap();
        let ev = t.reset(n, &small).unwrap_or_else(|e| panic!("{n}: {e}"));
        let m = &ev.metadata;
        assert_eq!(m.scene_name, format!("{n}_physics"));
        assert!(m.last_action_success, "{n}: {}", m.error_message);
        assert_eq!(m.objects.len(), summary.objects, "{n}");
        assert!(
            m.objects.len() > 20,
            "{n} has only {} objects",
            m.objects.len()
        );
        assert!(
            m.objects.iter().any(|o| o.object_type == "Floor"),
            "{n} has no Floor"
        );
        // Something is in view from the start pose, or after turning around (FloorPlan421's
        // reference start pose lies off today's floor and is moved to the nearest wall).
        let seen = m.objects.iter().any(|o| o.visible)
            || step(&mut t, json!({"action": "RotateRight", "degrees": 180}))
                .metadata
                .objects
                .iter()
                .any(|o| o.visible);
        assert!(seen, "{n}: nothing visible from the start pose");
        assert_eq!(m.depth_format, "Meters");
        assert_eq!(ev.frames.rgb.as_ref().unwrap().data.len(), 64 * 36 * 3);
        *per_type.entry(summary.room_type).or_insert(0) += 1;
        // The start pose stands clear of every obstacle.
        let again = step(
            &mut t,
            json!({"action": "Teleport", "position": ev.metadata.agent.position}),
        );
        if !again.metadata.last_action_success {
            blocked.push(format!("{n}: {}", again.metadata.error_message));
        }
    }
    assert!(
        blocked.is_empty(),
        "start poses blocked:\n{}",
        blocked.join("\n")
    );
    assert_eq!(
        per_type.values().copied().collect::<Vec<_>>(),
        vec![30, 30, 30, 30]
    );
    // The _physics suffix names the same scene.
    assert!(t.reset("FloorPlan5_physics", &small).is_ok());
}

#[test]
fn pickup_needs_visibility_and_reach() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    // From the start pose the kettle is visible but about 3.7 m away.
    let kettle = first_of_type(&ev, "Kettle");
    assert!(obj(&ev, &kettle).visible && !obj(&ev, &kettle).is_interactable);
    let e = step(
        &mut t,
        json!({"action": "PickupObject", "objectId": kettle}),
    );
    assert!(!e.metadata.last_action_success);
    assert!(
        e.metadata.error_message.contains("too far away"),
        "{}",
        e.metadata.error_message
    );
    // The apple is inside the closed fridge: not visible.
    let apple = first_of_type(&ev, "Apple");
    let e = step(&mut t, json!({"action": "PickupObject", "objectId": apple}));
    assert!(!e.metadata.last_action_success);
    assert!(
        e.metadata.error_message.contains("not interactable"),
        "{}",
        e.metadata.error_message
    );
    // A fixed object cannot be picked up.
    let fridge = first_of_type(&ev, "Fridge");
    let e = step(
        &mut t,
        json!({"action": "PickupObject", "objectId": fridge, "forceAction": true}),
    );
    assert!(
        e.metadata
            .error_message
            .ends_with("must have the property CanPickup to be picked up.")
    );
    // Up close, from a pose GetInteractablePoses returns, it works.
    let ps = poses(&mut t, &kettle);
    assert!(!ps.is_empty(), "no interactable poses for the kettle");
    let e = teleport_to(&mut t, &ps[0]);
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    assert!(obj(&e, &kettle).is_interactable);
    let e = step(
        &mut t,
        json!({"action": "PickupObject", "objectId": kettle}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    assert_eq!(e.metadata.held_object_id(), Some(kettle.as_str()));
    assert!(obj(&e, &kettle).is_picked_up);
    assert!(
        obj(&e, &kettle)
            .parent_receptacles
            .as_ref()
            .is_none_or(|p| p.is_empty())
    );
    // The held object travels with the agent and is drawn in view.
    let before = obj(&e, &kettle).position;
    let e2 = step(&mut t, json!({"action": "RotateRight", "degrees": 90}));
    let after = obj(&e2, &kettle).position;
    assert!(
        before.distance(&after) > 0.1,
        "held object did not follow the agent"
    );
    assert!(
        obj(&e2, &kettle).visible,
        "the held object is drawn in front of the camera"
    );
    // A second pickup fails while the hand is full.
    let mug = first_of_type(&e2, "Mug");
    let e3 = step(
        &mut t,
        json!({"action": "PickupObject", "objectId": mug, "forceAction": true}),
    );
    assert!(!e3.metadata.last_action_success);
}

/// Every interactable pose the simulator returns really allows the interaction: sampled over
/// several objects of a training scene of each room type.
#[test]
fn interactable_poses_allow_pickup() {
    for (scene, types) in [
        ("FloorPlan5", &["Mug", "Potato", "SoapBottle"][..]),
        ("FloorPlan205", &["RemoteControl", "Vase"][..]),
        ("FloorPlan305", &["CellPhone", "Pillow"][..]),
        ("FloorPlan405", &["SoapBar", "ToiletPaper"][..]),
    ] {
        let (mut t, ev) = sim(scene, &bench_settings());
        for ty in types {
            let Some(o) = ev.metadata.objects_of_type(ty).find(|o| o.pickupable) else {
                continue;
            };
            let id = o.object_id.clone();
            let ps = poses(&mut t, &id);
            if ev.metadata.objects.iter().any(|x| {
                x.object_id == id
                    && x.parent_receptacles.as_ref().is_some_and(|p| {
                        p.iter().any(|pid| {
                            ev.metadata
                                .object(pid)
                                .is_some_and(|r| r.openable && !r.is_open)
                        })
                    })
            }) {
                continue; // inside a closed container: no poses expected
            }
            assert!(!ps.is_empty(), "{scene}: no poses for {id}");
            // first, middle and last pose all work
            for p in [&ps[0], &ps[ps.len() / 2], &ps[ps.len() - 1]] {
                let e = teleport_to(&mut t, p);
                assert!(
                    e.metadata.last_action_success,
                    "{scene} {id}: teleport {p}: {}",
                    e.metadata.error_message
                );
                assert!(
                    obj(&e, &id).is_interactable,
                    "{scene} {id}: not interactable from {p}"
                );
                let e = step(&mut t, json!({"action": "PickupObject", "objectId": id}));
                assert!(
                    e.metadata.last_action_success,
                    "{scene} {id} from {p}: {}",
                    e.metadata.error_message
                );
                t.reset(scene, &bench_settings()).unwrap();
            }
        }
    }
}

#[test]
fn put_into_closed_fridge_fails_then_succeeds_after_opening() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let tomato = first_of_type(&ev, "Tomato");
    let fridge = first_of_type(&ev, "Fridge");
    let ps = poses(&mut t, &tomato);
    teleport_to(&mut t, &ps[0]);
    let e = step(
        &mut t,
        json!({"action": "PickupObject", "objectId": tomato}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    let fps = poses(&mut t, &fridge);
    assert!(!fps.is_empty());
    let e = teleport_to(&mut t, &fps[0]);
    assert!(e.metadata.last_action_success);
    let e = step(&mut t, json!({"action": "PutObject", "objectId": fridge}));
    assert!(!e.metadata.last_action_success);
    assert!(
        e.metadata.error_message.contains("closed"),
        "{}",
        e.metadata.error_message
    );
    // A non-receptacle is refused too.
    let knob = first_of_type(&e, "StoveKnob");
    let e = step(
        &mut t,
        json!({"action": "PutObject", "objectId": knob, "forceAction": true}),
    );
    assert_eq!(
        e.metadata.error_message,
        "This target object is NOT a receptacle!"
    );
    let e = step(&mut t, json!({"action": "OpenObject", "objectId": fridge}));
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    assert!(obj(&e, &fridge).is_open && obj(&e, &fridge).openness == 1.0);
    // The put uses only spots in view and reach: some poses that see the fridge do not see
    // its shelves; the first that does places the tomato.
    let mut e = e;
    for p in &fps {
        teleport_to(&mut t, p);
        e = step(
            &mut t,
            json!({"action": "PutObject", "objectId": fridge, "placeStationary": true}),
        );
        if e.metadata.last_action_success {
            break;
        }
        assert_eq!(
            e.metadata.error_message,
            "No valid positions to place object found"
        );
    }
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    assert!(e.metadata.inventory_objects.is_empty());
    let f = obj(&e, &fridge);
    assert!(f.receptacle_object_ids.as_ref().unwrap().contains(&tomato));
    let tm = obj(&e, &tomato);
    assert!(tm.parent_receptacles.as_ref().unwrap().contains(&fridge));
    assert!(!tm.is_picked_up);
    // It lies inside the fridge's box.
    let (fmin, fmax) = (
        f.axis_aligned_bounding_box.min(),
        f.axis_aligned_bounding_box.max(),
    );
    let c = tm.axis_aligned_bounding_box.center;
    assert!(
        c.x > fmin.x
            && c.x < fmax.x
            && c.y > fmin.y
            && c.y < fmax.y
            && c.z > fmin.z
            && c.z < fmax.z
    );
    // The old counter no longer lists it.
    for o in &e.metadata.objects {
        if o.object_type == "CounterTop" {
            assert!(
                !o.receptacle_object_ids
                    .as_ref()
                    .is_some_and(|l| l.contains(&tomato))
            );
        }
    }
}

#[test]
fn receptacle_table_refuses_wrong_types() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let pan = first_of_type(&ev, "Pan");
    let toaster = first_of_type(&ev, "Toaster");
    step(
        &mut t,
        json!({"action": "PickupObject", "objectId": pan, "forceAction": true}),
    );
    let e = step(
        &mut t,
        json!({"action": "PutObject", "objectId": toaster, "forceAction": true}),
    );
    assert!(!e.metadata.last_action_success);
    assert!(
        e.metadata
            .error_message
            .contains("is not a valid Object Type to be placed in"),
        "{}",
        e.metadata.error_message
    );
}

#[test]
fn apple_in_closed_fridge_is_hidden_until_opened() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let apple = first_of_type(&ev, "Apple");
    let fridge = first_of_type(&ev, "Fridge");
    let fps = poses(&mut t, &fridge);
    let mut seen_after_open = 0;
    let standing: Vec<&Value> = fps
        .iter()
        .filter(|p| p["standing"] == json!(true))
        .collect();
    assert!(!standing.is_empty());
    // a spread-out sample of the poses
    for p in standing.iter().step_by(standing.len().div_ceil(40)) {
        let e = teleport_to(&mut t, p);
        assert!(
            !obj(&e, &apple).visible,
            "apple visible through a closed fridge from {p}"
        );
        let e = step(
            &mut t,
            json!({"action": "OpenObject", "objectId": fridge, "forceAction": true}),
        );
        assert!(e.metadata.last_action_success);
        if obj(&e, &apple).visible {
            seen_after_open += 1;
        }
        let e = step(
            &mut t,
            json!({"action": "CloseObject", "objectId": fridge, "forceAction": true}),
        );
        assert!(!obj(&e, &fridge).is_open && !obj(&e, &apple).visible);
    }
    assert!(
        seen_after_open > 0,
        "the apple never shows in the open fridge"
    );
}

#[test]
fn open_drawer_slides_out_with_its_contents() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let drawer = first_of_type(&ev, "Drawer");
    let before = obj(&ev, &drawer).position;
    let e = step(
        &mut t,
        json!({"action": "OpenObject", "objectId": drawer, "forceAction": true}),
    );
    assert!(e.metadata.last_action_success);
    let after = obj(&e, &drawer).position;
    assert!(before.distance(&after) > 0.1);
    let e = step(
        &mut t,
        json!({"action": "CloseObject", "objectId": drawer, "forceAction": true}),
    );
    assert!(obj(&e, &drawer).position.distance(&before) < 1e-9);
    let e = step(
        &mut t,
        json!({"action": "OpenObject", "objectId": first_of_type(&e, "Mug"), "forceAction": true}),
    );
    assert!(
        e.metadata
            .error_message
            .ends_with("is not an Openable object")
    );
}

#[test]
fn toggle_flips_and_refuses_repeats() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let toaster = first_of_type(&ev, "Toaster");
    assert!(!obj(&ev, &toaster).is_toggled);
    let ps = poses(&mut t, &toaster);
    teleport_to(&mut t, &ps[0]);
    let e = step(
        &mut t,
        json!({"action": "ToggleObjectOn", "objectId": toaster}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    assert!(obj(&e, &toaster).is_toggled);
    let e = step(
        &mut t,
        json!({"action": "ToggleObjectOn", "objectId": toaster}),
    );
    assert_eq!(
        e.metadata.error_message,
        "can't toggle object on if it's already on!"
    );
    let e = step(
        &mut t,
        json!({"action": "ToggleObjectOff", "objectId": toaster}),
    );
    assert!(e.metadata.last_action_success && !obj(&e, &toaster).is_toggled);
    let e = step(
        &mut t,
        json!({"action": "ToggleObjectOn", "objectId": first_of_type(&e, "Apple"), "forceAction": true}),
    );
    assert_eq!(e.metadata.error_message, "object is not toggleable");
}

#[test]
fn walking_into_a_wall_fails_and_the_agent_stays() {
    let (mut t, _) = sim(
        "FloorPlan5",
        &InitSettings {
            grid_size: 0.25,
            ..bench_settings()
        },
    );
    let e = step(&mut t, json!({"action": "GetReachablePositions"}));
    let pts = e.metadata.action_return.as_array().unwrap().clone();
    assert!(pts.len() > 50);
    let mut found = false;
    'outer: for p in &pts {
        for yaw in [0.0, 90.0, 180.0, 270.0] {
            let e = step(
                &mut t,
                json!({"action": "TeleportFull", "position": p, "rotation": yaw, "horizon": 0, "standing": true}),
            );
            assert!(
                e.metadata.last_action_success,
                "reachable point {p} refused: {}",
                e.metadata.error_message
            );
            let e = step(&mut t, json!({"action": "MoveAhead", "moveMagnitude": 0.5}));
            if !e.metadata.last_action_success
                && e.metadata.error_message.starts_with("Wall is blocking")
            {
                assert!(e.metadata.collided);
                let a = &e.metadata.agent.position;
                assert!(
                    (a.x - p["x"].as_f64().unwrap()).abs() < 1e-9
                        && (a.z - p["z"].as_f64().unwrap()).abs() < 1e-9
                );
                found = true;
                break 'outer;
            }
        }
    }
    assert!(found, "no wall found next to any reachable position");
    // A free move succeeds and moves by moveMagnitude.
    let e = step(
        &mut t,
        json!({"action": "TeleportFull", "position": pts[0], "rotation": 0, "horizon": 0, "standing": true}),
    );
    let start = e.metadata.agent.position;
    let mut moved = false;
    for (name, yaw) in [
        ("MoveAhead", 0.0),
        ("MoveRight", 90.0),
        ("MoveBack", 180.0),
        ("MoveLeft", 270.0),
    ] {
        let e = step(&mut t, json!({"action": name, "moveMagnitude": 0.25}));
        if e.metadata.last_action_success {
            let p = e.metadata.agent.position;
            let th = f64::to_radians(yaw);
            assert!(
                (p.x - start.x - 0.25 * th.sin()).abs() < 1e-6
                    && (p.z - start.z - 0.25 * th.cos()).abs() < 1e-6
            );
            assert!(!e.metadata.collided);
            moved = true;
            break;
        }
    }
    assert!(moved);
}

#[test]
fn look_and_rotate_limits() {
    let (mut t, _) = sim("FloorPlan5", &bench_settings());
    let e = step(&mut t, json!({"action": "LookUp"}));
    assert!(e.metadata.last_action_success && e.metadata.agent.camera_horizon == -30.0);
    let e = step(&mut t, json!({"action": "LookUp"}));
    assert!(!e.metadata.last_action_success && e.metadata.agent.camera_horizon == -30.0);
    let e = step(&mut t, json!({"action": "LookDown", "degrees": 90}));
    assert!(e.metadata.last_action_success && e.metadata.agent.camera_horizon == 60.0);
    let e = step(&mut t, json!({"action": "LookDown", "degrees": 1}));
    assert!(!e.metadata.last_action_success);
    let e = step(&mut t, json!({"action": "RotateLeft", "degrees": 240}));
    assert!((e.metadata.agent.rotation.y - 330.0).abs() < 1e-9);
    let e = step(&mut t, json!({"action": "Crouch"}));
    assert!(!e.metadata.agent.is_standing);
    assert!((e.metadata.camera_position.y - e.metadata.agent.position.y).abs() < 1e-6);
}

/// Depth is metres along the optical axis: the closed fridge's front face, seen square on.
#[test]
fn depth_of_a_known_face() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let fridge = first_of_type(&ev, "Fridge");
    let fi = ev
        .metadata
        .objects
        .iter()
        .position(|o| o.object_id == fridge)
        .unwrap() as u32
        + 1;
    let b = obj(&ev, &fridge).axis_aligned_bounding_box.clone();
    let (min, max) = (b.min(), b.max());
    // Stand 0.7 m in front of the -x face, level with its centre, facing +x.
    let x = min.x - 0.7;
    let z = (min.z + max.z) / 2.0;
    let e = step(
        &mut t,
        json!({"action": "TeleportFull", "position": {"x": x, "y": 0.9, "z": z},
        "rotation": 90, "horizon": 0, "standing": true}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    let d = e.frames.depth.as_ref().unwrap();
    let ids = e.frames.instances.as_ref().unwrap();
    assert_eq!(ids.legend[fi as usize], fridge);
    let mut checked = 0;
    for (k, &id) in ids.data.iter().enumerate() {
        if id == fi {
            let err = (d.data[k] as f64 - 0.7).abs();
            assert!(err < 0.01, "pixel {k}: depth {} vs 0.7", d.data[k]);
            checked += 1;
        }
    }
    assert!(checked > 10_000, "the fridge covers only {checked} pixels");
    let centre = 225 * 800 + 400;
    assert_eq!(ids.data[centre], fi);
}

#[test]
fn same_actions_give_identical_bytes() {
    let run = || {
        let (mut t, ev0) = sim("FloorPlan205", &bench_settings());
        let mut out = vec![ev0];
        for a in [
            json!({"action": "RotateRight"}),
            json!({"action": "MoveAhead", "moveMagnitude": 0.3}),
            json!({"action": "LookDown"}),
            json!({"action": "GetReachablePositions"}),
            json!({"action": "PickupObject", "objectId": "nonexistent"}),
        ] {
            out.push(step(&mut t, a));
        }
        out
    };
    let (a, b) = (run(), run());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            serde_json::to_string(&x.metadata).unwrap(),
            serde_json::to_string(&y.metadata).unwrap()
        );
        assert_eq!(x.frames, y.frames);
    }
    assert_eq!(
        a[5].metadata.error_message,
        "Object ID appears to be invalid."
    );
}

#[test]
fn sim_errors() {
    let mut t = ThorLite::new();
    assert_eq!(
        t.step(&act(json!({"action": "Pass"}))).unwrap_err(),
        SimError::NoScene
    );
    assert!(matches!(
        t.reset("FloorPlan999", &InitSettings::default()),
        Err(SimError::UnknownScene(_))
    ));
    let bad = InitSettings {
        width: 0,
        ..InitSettings::default()
    };
    assert!(matches!(
        t.reset("FloorPlan5", &bad),
        Err(SimError::BadSetting(_))
    ));
    t.reset("FloorPlan5", &InitSettings::default()).unwrap();
    assert_eq!(
        t.step(&act(json!({"action": "Fly"}))).unwrap_err(),
        SimError::UnknownAction("Fly".into())
    );
    assert!(matches!(
        t.step(&act(json!({"action": 3}))),
        Err(SimError::BadParameter { .. })
    ));
    assert!(matches!(
        t.step(&act(json!({"noaction": 1}))),
        Err(SimError::BadParameter { .. })
    ));
    match t.step(&act(json!({"action": "PickupObject", "objectId": 5}))) {
        Err(SimError::BadParameter { parameter, .. }) => assert_eq!(parameter, "objectId"),
        other => panic!("{other:?}"),
    }
    match t.step(&act(json!({"action": "MoveAhead", "moveMagnitude": "far"}))) {
        Err(SimError::BadParameter { parameter, .. }) => assert_eq!(parameter, "moveMagnitude"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.step(&act(json!({"action": "PickupObject"}))),
        Err(SimError::BadParameter { .. })
    ));
    assert!(matches!(
        t.step(&act(
            json!({"action": "TeleportFull", "position": {"x": 1, "y": 0.9, "z": 1}})
        )),
        Err(SimError::BadParameter { .. })
    ));
    // A failed-but-understood action is an event, not an error.
    let e = t
        .step(&act(
            json!({"action": "PutObject", "objectId": "Fridge|+01.98|+00.00|-00.54"}),
        ))
        .unwrap();
    assert!(!e.metadata.last_action_success);
    assert_eq!(
        e.metadata.error_message,
        "Can't place an object if Agent isn't holding anything"
    );
    let info = t.info();
    assert_eq!(info.name, "thor-lite");
    assert_eq!(info.scenes.len(), 120);
}

/// Agreement of GetReachablePositions (0.25 m grid) with ALFWorld's reachable grids, which
/// were computed with an older AI2-THOR: returns (|ours|, |reference|, |both|).
fn reachable_agreement(scene: &str) -> (usize, usize, usize) {
    let s = InitSettings {
        grid_size: 0.25,
        width: 32,
        height: 18,
        ..InitSettings::default()
    };
    let (mut t, _) = sim(scene, &s);
    let (_, reference) = t.reference_reachable().unwrap();
    let key = |x: f64, z: f64| ((x / 0.25).round() as i64, (z / 0.25).round() as i64);
    let refs: std::collections::BTreeSet<_> = reference.iter().map(|p| key(p[0], p[1])).collect();
    // Start on the reference grid: the reference point nearest the start pose.
    let e = step(&mut t, json!({"action": "Pass"}));
    let a = e.metadata.agent.position;
    let mut cands: Vec<_> = reference.iter().collect();
    cands.sort_by(|p, q| {
        let dp = (p[0] - a.x).hypot(p[1] - a.z);
        let dq = (q[0] - a.x).hypot(q[1] - a.z);
        dp.total_cmp(&dq)
    });
    for p in cands.iter().take(20) {
        let e = step(
            &mut t,
            json!({"action": "Teleport", "position": {"x": p[0], "y": a.y, "z": p[1]}}),
        );
        if e.metadata.last_action_success {
            break;
        }
    }
    let e = step(&mut t, json!({"action": "GetReachablePositions"}));
    let ours: std::collections::BTreeSet<_> = e
        .metadata
        .action_return
        .as_array()
        .unwrap()
        .iter()
        .map(|p| key(p["x"].as_f64().unwrap(), p["z"].as_f64().unwrap()))
        .collect();
    let both = ours.intersection(&refs).count();
    (ours.len(), refs.len(), both)
}

#[test]
fn reachable_positions_agree_with_alfworld() {
    // Training scenes of each room type. ALFWorld's grids come from an older AI2-THOR, so
    // they are a reference, not ground truth: we ask that we reach nearly all of what it
    // reaches, and that the sets overlap well on average.
    let scenes = [
        "FloorPlan5",
        "FloorPlan10",
        "FloorPlan205",
        "FloorPlan210",
        "FloorPlan305",
        "FloorPlan310",
        "FloorPlan405",
        "FloorPlan412",
    ];
    let mut iou_sum = 0.0;
    for scene in scenes {
        assert!(reference_matches_floor(scene), "{scene}");
        let (ours, refs, both) = reachable_agreement(scene);
        let iou = both as f64 / (ours + refs - both) as f64;
        let recall = both as f64 / refs as f64;
        assert!(
            recall > 0.8,
            "{scene}: ours {ours}, ALFWorld {refs}, both {both}: recall {recall:.2}"
        );
        iou_sum += iou;
    }
    let mean = iou_sum / scenes.len() as f64;
    assert!(mean > 0.6, "mean IoU {mean:.2}");
}

/// Whether at least 90% of ALFWorld's points for the scene lie within today's scene bounds.
fn reference_matches_floor(scene: &str) -> bool {
    let (t, ev) = sim(
        scene,
        &InitSettings {
            width: 8,
            height: 8,
            ..InitSettings::default()
        },
    );
    let b = &ev.metadata.scene_bounds;
    let (_, pts) = t.reference_reachable().unwrap();
    let on = pts
        .iter()
        .filter(|p| {
            (p[0] - b.center.x).abs() < b.size.x / 2.0 && (p[1] - b.center.z).abs() < b.size.z / 2.0
        })
        .count();
    on as f64 >= 0.9 * pts.len() as f64
}

/// GetReachablePositions against ALFWorld's grids in all 120 scenes, held to stated targets
/// rather than to what was measured: each room type's pooled recall (of ALFWorld's points, how
/// many we reach) at least [`POOLED_RECALL_TARGET`], and each scene's at least
/// [`SCENE_RECALL_TARGET`], except the scenes of [`BELOW_SCENE_TARGET`], which are known gaps
/// treated like expected failures: a scene that falls below the target, or one of the list that
/// rises above it, fails the test and is printed (then fix thor-lite, generally, or update the
/// list). Only FloorPlan410 and 411 are skipped (their ALFWorld grids lie off today's floor: an
/// older layout). `--nocapture` prints the per-scene figures that THOR_LITE.md's table
/// summarises, and the pooled recall of the training scenes (the held-out figure: thor-lite is
/// never tuned to the evaluation scenes) and of the evaluation scenes.
#[test]
fn reachable_positions_agree_with_alfworld_in_all_scenes() {
    use ember_agent::er::generate::is_evaluation_scene;
    let mut per: std::collections::BTreeMap<String, (usize, usize, usize, f64, usize)> =
        Default::default();
    // (reached, reference, both) over training and over evaluation scenes.
    let mut split = [(0usize, 0usize, 0usize); 2];
    let mut skipped = Vec::new();
    let mut below = std::collections::BTreeMap::new();
    for n in ThorLite::scene_names() {
        let room = ThorLite::scene_summary(&n).unwrap().room_type;
        if !reference_matches_floor(&n) {
            println!("{n:<14} {room:<13} skipped: ALFWorld's grid lies off today's floor");
            skipped.push(n);
            continue;
        }
        let (o, r, b) = reachable_agreement(&n);
        let recall = b as f64 / r as f64;
        let iou = b as f64 / (o + r - b) as f64;
        println!(
            "{n:<14} {room:<13} ours {o:>4} alfworld {r:>4} both {b:>4} recall {recall:.3} precision {:.3} iou {iou:.3}",
            b as f64 / o.max(1) as f64
        );
        if recall < SCENE_RECALL_TARGET {
            below.insert(n.clone(), recall);
        }
        let e = per.entry(room).or_default();
        e.0 += o;
        e.1 += r;
        e.2 += b;
        e.3 += iou;
        e.4 += 1;
        let s = &mut split[usize::from(is_evaluation_scene(&n))];
        s.0 += o;
        s.1 += r;
        s.2 += b;
    }
    assert_eq!(skipped, ["FloorPlan410", "FloorPlan411"]);
    let mut problems = Vec::new();
    for (room, (o, r, b, iou, n)) in &per {
        let recall = *b as f64 / *r as f64;
        println!(
            "{room:<13} recall {recall:.3} precision {:.3} mean IoU {:.3}",
            *b as f64 / *o as f64,
            iou / *n as f64
        );
        if recall < POOLED_RECALL_TARGET {
            problems.push(format!(
                "{room}: pooled recall {recall:.3} < {POOLED_RECALL_TARGET}"
            ));
        }
    }
    for (name, (o, r, b)) in ["training scenes (held out)", "evaluation scenes"]
        .iter()
        .zip(split)
    {
        println!(
            "{name:<27} recall {:.3} precision {:.3}",
            b as f64 / r as f64,
            b as f64 / o as f64
        );
    }
    assert_eq!(per.len(), 4, "{per:?}");
    for (n, recall) in &below {
        if !BELOW_SCENE_TARGET.contains(&n.as_str()) {
            problems.push(format!(
                "{n}: recall {recall:.3} fell below {SCENE_RECALL_TARGET} (not in BELOW_SCENE_TARGET)"
            ));
        }
    }
    for n in BELOW_SCENE_TARGET {
        if !below.contains_key(*n) {
            problems.push(format!(
                "{n}: now reaches recall {SCENE_RECALL_TARGET} or more; remove it from BELOW_SCENE_TARGET"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The pooled recall each room type must reach: nine in ten of ALFWorld's reachable points.
/// ALFWorld's grids come from an older AI2-THOR, so full agreement is not expected, but a room
/// type below this would leave navigation targets the reference can reach out of reach.
const POOLED_RECALL_TARGET: f64 = 0.9;

/// The recall each scene should reach: four in five of ALFWorld's points.
const SCENE_RECALL_TARGET: f64 = 0.8;

/// The scenes known to fall below [`SCENE_RECALL_TARGET`] (measured 2026-11-21; recall in
/// brackets). A known gap, not a floor: the test fails when this list and the measurement differ.
/// FloorPlan301 and 302 are evaluation scenes: listed, as every scene is measured, but never a
/// reason to change thor-lite for them alone.
const BELOW_SCENE_TARGET: &[&str] = &[
    "FloorPlan208", // 0.737
    "FloorPlan301", // 0.747
    "FloorPlan302", // 0.689
    "FloorPlan316", // 0.379: our flood fill reaches 30 of ALFWorld's 58 points
    "FloorPlan413", // 0.797
];

/// Receptacles whose boxes contain their contents (a sink basin, a shelving unit's shelves)
/// are drawn as open shells: what they hold can be seen and reached.
#[test]
fn contents_of_enclosing_boxes_can_be_seen() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let basin = first_of_type(&ev, "SinkBasin");
    let in_basin: Vec<String> = ev
        .metadata
        .objects
        .iter()
        .filter(|o| {
            o.parent_receptacles
                .as_ref()
                .is_some_and(|p| p.contains(&basin))
        })
        .map(|o| o.object_id.clone())
        .collect();
    assert!(in_basin.len() >= 2, "{in_basin:?}");
    let unit = first_of_type(&ev, "ShelvingUnit");
    let ub = obj(&ev, &unit).axis_aligned_bounding_box.clone();
    let on_shelves: Vec<String> = ev
        .metadata
        .objects
        .iter()
        .filter(|o| {
            let c = o.axis_aligned_bounding_box.center;
            let (mn, mx) = (ub.min(), ub.max());
            o.pickupable
                && c.x > mn.x
                && c.x < mx.x
                && c.y > mn.y
                && c.y < mx.y
                && c.z > mn.z
                && c.z < mx.z
        })
        .map(|o| o.object_id.clone())
        .collect();
    assert!(!on_shelves.is_empty());
    for id in in_basin.iter().chain(&on_shelves) {
        let ps = poses(&mut t, id);
        assert!(
            !ps.is_empty(),
            "{id} cannot be seen inside its enclosing box"
        );
        let e = teleport_to(&mut t, &ps[ps.len() / 2]);
        assert!(obj(&e, id).visible, "{id}");
    }
}

/// Things inside closed cabinets and drawers cannot be seen; once the container is open they
/// can be seen and taken (a lower cabinet, a drawer that slides out, a wall cabinet).
#[test]
fn opened_cabinets_and_drawers_show_their_contents() {
    for (scene, item, container) in [
        (
            "FloorPlan6",
            "Pot|-02.31|+00.11|+00.90",
            "Cabinet|-02.15|+00.40|+00.70",
        ),
        (
            "FloorPlan8",
            "SprayBottle|-00.01|+00.10|-01.55",
            "Cabinet|-00.20|+00.40|-01.39",
        ),
        (
            "FloorPlan10",
            "Knife|+00.87|+00.70|-00.60",
            "Drawer|+00.64|+00.76|-00.65",
        ),
        (
            "FloorPlan11",
            "Cup|-00.50|+01.32|-01.79",
            "Cabinet|-00.19|+01.69|-01.65",
        ),
    ] {
        let (mut t, _) = sim(scene, &bench_settings());
        assert!(
            poses(&mut t, item).is_empty(),
            "{scene}: {item} seen through its closed {container}"
        );
        let e = step(
            &mut t,
            json!({"action": "OpenObject", "objectId": container, "forceAction": true}),
        );
        assert!(
            e.metadata.last_action_success,
            "{scene}: {}",
            e.metadata.error_message
        );
        let ps = poses(&mut t, item);
        assert!(
            !ps.is_empty(),
            "{scene}: {item} not visible in its open {container}"
        );
        let e = teleport_to(&mut t, &ps[0]);
        assert!(obj(&e, item).visible);
        let e = step(&mut t, json!({"action": "PickupObject", "objectId": item}));
        assert!(
            e.metadata.last_action_success,
            "{scene}: {}",
            e.metadata.error_message
        );
    }
}

#[test]
fn metadata_has_ai2thor_keys_and_values() {
    let (mut t, ev) = sim("FloorPlan5", &bench_settings());
    let v = serde_json::to_value(&ev.metadata).unwrap();
    for k in [
        "objects",
        "agent",
        "inventoryObjects",
        "sceneName",
        "lastAction",
        "lastActionSuccess",
        "errorMessage",
        "actionReturn",
        "screenWidth",
        "screenHeight",
        "fov",
        "cameraPosition",
        "sceneBounds",
        "collided",
        "depthFormat",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["screenWidth"], 800);
    assert_eq!(v["fov"], 90.0);
    assert_eq!(v["actionReturn"]["cameraNearPlane"], 0.1);
    let cam = &ev.metadata.camera_position;
    let ag = &ev.metadata.agent.position;
    assert!((cam.y - ag.y - 0.675).abs() < 1e-9);
    let o = &v["objects"][0];
    for k in [
        "objectId",
        "objectType",
        "visible",
        "isInteractable",
        "distance",
        "axisAlignedBoundingBox",
        "parentReceptacles",
        "isPickedUp",
        "openness",
        "isToggled",
    ] {
        assert!(o.get(k).is_some(), "object key {k}");
    }
    // distance is from the agent position to the object position
    let a = &ev.metadata.objects[0];
    let d = ((a.position.x - ag.x).powi(2)
        + (a.position.y - ag.y).powi(2)
        + (a.position.z - ag.z).powi(2))
    .sqrt();
    assert!((a.distance - d).abs() < 1e-5);
    // Visibility agrees with the instance frame.
    let ids = ev.frames.instances.as_ref().unwrap();
    for (i, o) in ev.metadata.objects.iter().enumerate() {
        let px = ids.data.iter().filter(|&&x| x == i as u32 + 1).count();
        assert_eq!(o.visible, px > 0, "{}", o.object_id);
    }
    let e = step(&mut t, json!({"action": "GetReachablePositions"}));
    let p = &e.metadata.action_return[0];
    assert!(p["x"].is_number() && p["y"].is_number() && p["z"].is_number());
    assert_eq!(e.metadata.last_action, "GetReachablePositions");
}

#[test]
fn put_on_the_floor_lands_on_free_floor_and_the_agent_can_still_move() {
    let (mut t, ev) = sim("FloorPlan205", &bench_settings());
    let floor = first_of_type(&ev, "Floor");
    let o = ev
        .metadata
        .objects
        .iter()
        .find(|o| o.pickupable && o.visible)
        .unwrap()
        .object_id
        .clone();
    let e = step(
        &mut t,
        json!({"action": "PickupObject", "objectId": o, "forceAction": true}),
    );
    assert!(e.metadata.last_action_success);
    let e = step(
        &mut t,
        json!({"action": "PutObject", "objectId": floor, "forceAction": true}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    let placed = obj(&e, &o);
    assert!(
        placed.axis_aligned_bounding_box.min().y.abs() < 0.01,
        "rests on the floor"
    );
    assert!(placed.parent_receptacles.as_ref().unwrap().contains(&floor));
    // the agent is not trapped by what it put down
    let e = step(
        &mut t,
        json!({"action": "Teleport", "position": e.metadata.agent.position}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
}

/// An unforced PutObject uses only spots in the agent's view and reach, as AI2-THOR's spawn
/// points: looking up over a counter the agent stands at, it finds none (a forced put still
/// places); looking down at it, the object lands where the agent sees it.
#[test]
fn put_places_only_where_the_agent_looks() {
    let (mut t, _) = sim("FloorPlan1", &bench_settings());
    let bowl = "Bowl|+00.27|+01.10|-00.75";
    let counter = "CounterTop|-00.08|+01.15|00.00";
    let e = step(
        &mut t,
        json!({"action": "TeleportFull", "position": {"x": 0.6, "y": 0.901, "z": -1.1},
               "rotation": {"x": 0, "y": 315, "z": 0}, "horizon": 42, "standing": true}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    let e = step(&mut t, json!({"action": "PickupObject", "objectId": bowl}));
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    // Horizon -30: the view ends 15 degrees below the horizon, so the counter shows only
    // beyond 2.5 m, out of reach; the counter itself is still interactable.
    let e = step(&mut t, json!({"action": "LookUp", "degrees": 72}));
    assert_eq!(e.metadata.agent.camera_horizon, -30.0);
    assert!(obj(&e, counter).is_interactable);
    let e = step(&mut t, json!({"action": "PutObject", "objectId": counter}));
    assert!(!e.metadata.last_action_success);
    assert_eq!(
        e.metadata.error_message,
        "No valid positions to place object found"
    );
    // Looking down again, the bowl goes where the agent sees it.
    let e = step(&mut t, json!({"action": "LookDown", "degrees": 72}));
    assert_eq!(e.metadata.agent.camera_horizon, 42.0);
    let e = step(&mut t, json!({"action": "PutObject", "objectId": counter}));
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    assert!(obj(&e, bowl).visible);
    // Forced, the same put from the upward view succeeds.
    let e = step(&mut t, json!({"action": "PickupObject", "objectId": bowl}));
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
    step(&mut t, json!({"action": "LookUp", "degrees": 72}));
    let e = step(
        &mut t,
        json!({"action": "PutObject", "objectId": counter, "forceAction": true}),
    );
    assert!(
        e.metadata.last_action_success,
        "{}",
        e.metadata.error_message
    );
}
