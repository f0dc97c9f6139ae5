//! The recording's camera model lines up with thor-lite's renders: each object's pixels in the
//! instance segmentation lie inside the footprint of its 3-D box projected through the camera
//! pose and intrinsics that the recorder logs, in several views of a training kitchen. (A
//! mirrored or flipped camera convention would put most pixels outside.)

use ember_agent::recording::frames::WorldConvention;
use ember_calibration::thor::optical_from_thor_camera;
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::world::observation_from_event;
use ember_sim_bridge::{InitSettings, Simulator};
use nalgebra::Point3;
use serde_json::{Map, Value};

#[test]
fn object_pixels_lie_inside_their_projected_boxes() {
    let settings = InitSettings {
        width: 400,
        height: 225,
        field_of_view: 90.0,
        render_instance_segmentation: true,
        visibility_distance: 20.0,
        ..InitSettings::default()
    };
    let mut sim = ThorLite::new();
    let mut ev = sim.reset("FloorPlan5", &settings).expect("FloorPlan5");
    let (mut checked, mut inside_objects) = (0, 0);
    for turn in 0..4 {
        if turn > 0 {
            let mut a = Map::new();
            a.insert("action".into(), Value::String("RotateRight".into()));
            ev = sim.step(&a).expect("rotate");
        }
        let obs = observation_from_event(ev.clone(), &settings, turn).expect("an observation");
        let cam = &obs.cameras[0];
        let seg = cam.instances.as_ref().expect("segmentation");
        let pose = cam.world_from_camera.expect("pose");
        let k = cam.intrinsics.expect("intrinsics");
        // The recorder's own projection agrees with the raw one used below.
        let probe = ev.metadata.objects[0]
            .axis_aligned_bounding_box
            .center
            .to_array();
        if let Some(uv) = WorldConvention::UnityYUp.project(&pose, &k, probe) {
            let p = pose
                .isometry()
                .inverse_transform_point(&Point3::from(probe));
            let px = k.project(&optical_from_thor_camera(&p)).expect("in front");
            assert!((px.x as f32 - uv[0]).abs() < 1e-3 && (px.y as f32 - uv[1]).abs() < 1e-3);
        }
        for (idx, id) in seg.legend.iter().enumerate().skip(1) {
            let Some(o) = ev.metadata.object(id) else {
                continue;
            };
            let pixels: Vec<(u32, u32)> = (0..seg.height)
                .flat_map(|v| (0..seg.width).map(move |u| (u, v)))
                .filter(|&(u, v)| seg.data[(v * seg.width + u) as usize] as usize == idx)
                .collect();
            if pixels.len() < 50 {
                continue;
            }
            // Project the box's corners; skip boxes reaching behind the camera.
            let b = &o.axis_aligned_bounding_box;
            let (min, max) = (b.min(), b.max());
            let mut rect = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            let mut behind = false;
            for &x in &[min.x, max.x] {
                for &y in &[min.y, max.y] {
                    for &z in &[min.z, max.z] {
                        let p = pose
                            .isometry()
                            .inverse_transform_point(&Point3::new(x, y, z));
                        match k.project(&optical_from_thor_camera(&p)) {
                            Some(px) => {
                                rect = (
                                    rect.0.min(px.x),
                                    rect.1.min(px.y),
                                    rect.2.max(px.x),
                                    rect.3.max(px.y),
                                )
                            }
                            None => behind = true,
                        }
                    }
                }
            }
            if behind {
                continue;
            }
            let margin = 2.0;
            let inside = pixels
                .iter()
                .filter(|&&(u, v)| {
                    let (u, v) = (u as f64 + 0.5, v as f64 + 0.5);
                    u >= rect.0 - margin
                        && u <= rect.2 + margin
                        && v >= rect.1 - margin
                        && v <= rect.3 + margin
                })
                .count();
            checked += 1;
            if inside * 100 >= pixels.len() * 95 {
                inside_objects += 1;
            } else {
                eprintln!(
                    "turn {turn}: only {inside} of {} pixels of {id} inside its projected box",
                    pixels.len()
                );
            }
        }
    }
    eprintln!("{inside_objects} of {checked} objects drawn inside their projected boxes");
    assert!(checked >= 20, "too few objects in view: {checked}");
    // Large composite objects (L-shaped counter tops) may be drawn from parts that reach past
    // their metadata box; everything else must fit.
    assert!(
        inside_objects * 10 >= checked * 9,
        "{inside_objects} of {checked}"
    );
}
