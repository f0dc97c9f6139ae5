//! ember-tests: cross-crate integration tests (whole episodes, the bridge, recordings) and the
//! small helpers they share.
//!
//! Module map:
//! - [`thor_obs`]: observations from thor-lite events (camera pose and intrinsics from the
//!   AI2-THOR metadata), for tests that drive the simulator directly.
//! - [`tools`]: finding the external tools some tests use (Python with `rerun-sdk`, the Rerun
//!   viewer, Xvfb), failing under CI when one is missing and skipping otherwise.

pub mod thor_obs {
    //! Observations from thor-lite events, as a simulator world reports them.

    use std::sync::Arc;

    use ember_agent::observation::{BaseState, CameraFrame, Observation, Proprioception};
    use ember_calibration::Pinhole;
    use ember_calibration::thor::camera_pose;
    use ember_sim_bridge::SimEvent;
    use nalgebra::Point3;

    /// The observation of one event: the `front` camera (RGB, depth and segmentation when
    /// rendered, intrinsics from the vertical field of view, pose from the camera position,
    /// yaw and horizon), the base from the agent pose, the held object, and the metadata.
    pub fn observation(ev: SimEvent, step: u64) -> Observation {
        let m = ev.metadata;
        let yaw = m.agent.rotation.y.to_radians();
        let pitch = m.agent.camera_horizon.to_radians();
        let c = m.camera_position;
        let pose = camera_pose(Point3::new(c.x, c.y, c.z), yaw, pitch);
        let intrinsics =
            Pinhole::from_vertical_fov(m.screen_width, m.screen_height, m.fov.to_radians()).ok();
        let rgb = ev
            .frames
            .rgb
            .unwrap_or_else(|| ember_agent::RgbImage::black(m.screen_width, m.screen_height));
        let camera = CameraFrame {
            name: "front".into(),
            rgb: Arc::new(rgb),
            depth: ev.frames.depth.map(Arc::new),
            instances: ev.frames.instances.map(Arc::new),
            intrinsics,
            world_from_camera: Some(pose),
        };
        let base = BaseState {
            position: m.agent.position.to_array(),
            yaw,
            camera_pitch: pitch,
            standing: m.agent.is_standing,
        };
        let held = m.held_object_id().map(str::to_string);
        Observation {
            step,
            sim_time: None,
            cameras: vec![camera],
            proprio: Proprioception {
                base: Some(base),
                arm: None,
                gripper: None,
                held_object: held,
            },
            sim: Some(Arc::new(m)),
        }
    }
}

pub mod tools {
    //! External tools for the recording tests.
    //!
    //! `EMBER_PYTHON` names a Python with `rerun-sdk==0.36.3` (default: the shared development
    //! venv `/root/.cache/ember-venv/bin/python`, then `python3`); `EMBER_RERUN` the viewer
    //! (default: `rerun` next to that Python, then `rerun` on the PATH). When `CI=true`, a missing
    //! tool fails the test; otherwise the test is skipped with a printed reason.

    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Whether we run under CI (`CI=true`).
    pub fn in_ci() -> bool {
        std::env::var("CI")
            .map(|v| v == "true" || v == "1")
            .unwrap_or(false)
    }

    /// Reports a missing tool: panics under CI, prints and returns `None` otherwise.
    pub fn missing<T>(what: &str) -> Option<T> {
        if in_ci() {
            panic!("CI=true and {what}");
        }
        eprintln!("SKIPPED: {what}");
        None
    }

    fn runs(cmd: &Path, args: &[&str]) -> bool {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// A Python interpreter that can `import rerun` (version 0.36.3).
    pub fn python() -> Option<PathBuf> {
        let candidates: Vec<PathBuf> = match std::env::var_os("EMBER_PYTHON") {
            Some(p) => vec![PathBuf::from(p)],
            None => vec![
                PathBuf::from("/root/.cache/ember-venv/bin/python"),
                PathBuf::from("python3"),
            ],
        };
        let check = "import rerun, sys; sys.exit(0 if rerun.__version__ == '0.36.3' else 3)";
        for c in &candidates {
            if runs(c, &["-c", check]) {
                return Some(c.clone());
            }
        }
        missing(&format!(
            "no Python with rerun-sdk==0.36.3 (tried {candidates:?}; set EMBER_PYTHON)"
        ))
    }

    /// The Rerun viewer executable.
    pub fn rerun(python: Option<&Path>) -> Option<PathBuf> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("EMBER_RERUN") {
            candidates.push(PathBuf::from(p));
        } else {
            if let Some(dir) = python.and_then(Path::parent) {
                candidates.push(dir.join("rerun"));
            }
            candidates.push(PathBuf::from("rerun"));
        }
        for c in &candidates {
            if runs(c, &["--version"]) {
                return Some(c.clone());
            }
        }
        missing(&format!(
            "no Rerun viewer (tried {candidates:?}; set EMBER_RERUN)"
        ))
    }

    /// Whether a program is on the PATH (Xvfb, import...).
    pub fn on_path(program: &str) -> bool {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
            .unwrap_or(false)
    }

    /// The repository root (for the scripts under `tests/python`).
    pub fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}
