//! thor-lite's hot paths at the benchmark's settings (800x450, fov 90, RGB + depth):
//! rendering one frame, one full step (render, visibility, metadata), and a step plus the
//! JSON serialisation of its metadata (what the bridge sends).
//!
//! `cargo bench -p ember-sim-bridge --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{InitSettings, Simulator};
use serde_json::{Map, Value, json};

fn settings() -> InitSettings {
    InitSettings {
        width: 800,
        height: 450,
        field_of_view: 90.0,
        grid_size: 0.1,
        visibility_distance: 20.0,
        render_depth_image: true,
        ..InitSettings::default()
    }
}

fn action(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn bench(c: &mut Criterion) {
    for scene in ["FloorPlan5", "FloorPlan205"] {
        let mut sim = ThorLite::new();
        sim.reset(scene, &settings()).expect("reset");
        c.bench_function(&format!("render_800x450/{scene}"), |b| {
            b.iter(|| sim.render().expect("render"))
        });
        let pass = action(json!({"action": "Pass"}));
        c.bench_function(&format!("step_pass_rgb_depth_metadata/{scene}"), |b| {
            b.iter(|| sim.step(&pass).expect("step"))
        });
        let rotate = action(json!({"action": "RotateRight", "degrees": 30}));
        c.bench_function(&format!("step_rotate_plus_metadata_json/{scene}"), |b| {
            b.iter(|| {
                let ev = sim.step(&rotate).expect("step");
                serde_json::to_vec(&ev.metadata).expect("json").len()
            })
        });
    }
    let mut sim = ThorLite::new();
    sim.reset("FloorPlan5", &settings()).expect("reset");
    let gip =
        action(json!({"action": "GetInteractablePoses", "objectId": "Mug|+00.13|+01.12|+00.57"}));
    let mut g = c.benchmark_group("interactable_poses");
    g.sample_size(10);
    g.bench_function("FloorPlan5_mug_grid0.1", |b| {
        b.iter(|| sim.step(&gip).expect("step"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
