//! [`SimWorld`]: the agent's [`World`] over a bridge [`Client`].
//!
//! `reset` loads the request's scene (or the configured default) with the configured init
//! settings; `step` sends each [`Command::Sim`] as an AI2-THOR action and builds the
//! [`Observation`] after the last one: the `front` camera (RGB, and depth and instance
//! segmentation when the settings ask for them) with pinhole intrinsics from the settings'
//! vertical field of view and its pose in the world from the agent's pose and horizon,
//! base proprioception in SI units, and the AI2-THOR metadata itself. Robot commands are
//! refused with an error that says so.

use std::sync::Arc;
use std::time::Duration;

use ember_agent::error::{Error, Result};
use ember_agent::observation::{BaseState, CameraFrame, Observation, Proprioception};
use ember_agent::thor::Metadata;
use ember_agent::world::{Command, ResetRequest, StepOutcome, World, WorldFeedback, WorldInfo};
use ember_calibration::Pinhole;
use ember_calibration::frames::{Camera, Transform, World as WorldFrame};
use ember_calibration::thor::{
    CROUCHING_CAMERA_OFFSET, STANDING_CAMERA_OFFSET, camera_pose, yaw_from_degrees,
};
use nalgebra::Point3;

use crate::backend::{InitSettings, SimEvent};
use crate::client::{Client, ClientOptions};
use crate::error::BridgeError;

/// The name of the simulator's camera in observations.
pub const FRONT_CAMERA: &str = "front";

/// How to reach and configure a simulator world.
#[derive(Clone, Debug)]
pub struct SimWorldConfig {
    /// `tcp://HOST:PORT`, `ipc://PATH` or `inproc://thor-lite`.
    pub endpoint: String,
    /// Init settings sent with every reset.
    pub settings: InitSettings,
    /// The scene for resets whose request names none.
    pub default_scene: Option<String>,
    /// Reply timeout for each request.
    pub timeout: Duration,
}

impl Default for SimWorldConfig {
    fn default() -> Self {
        Self {
            endpoint: "inproc://thor-lite".into(),
            settings: InitSettings::default(),
            default_scene: None,
            timeout: ClientOptions::default().timeout,
        }
    }
}

/// A simulator world (see the module documentation).
pub struct SimWorld {
    client: Client,
    config: SimWorldConfig,
    step: u64,
    kind: String,
}

impl SimWorld {
    /// Connects to the configured endpoint (checking the protocol version).
    pub fn connect(config: SimWorldConfig) -> std::result::Result<Self, BridgeError> {
        let options = ClientOptions {
            timeout: config.timeout,
            ..ClientOptions::default()
        };
        let client = Client::connect(&config.endpoint, options)?;
        Ok(Self::with_client(client, config))
    }

    /// A world over an existing client (its endpoint wins over the configured one).
    pub fn with_client(client: Client, mut config: SimWorldConfig) -> Self {
        config.endpoint = client.endpoint().to_string();
        let kind = client
            .server_info()
            .map(|i| i.simulator.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "simulator".into());
        Self {
            client,
            config,
            step: 0,
            kind,
        }
    }

    /// The client, for requests the World contract does not cover (`info`, `ping`).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The configuration.
    pub fn config(&self) -> &SimWorldConfig {
        &self.config
    }

    fn observe(&self, event: SimEvent) -> Result<Observation> {
        observation_from_event(event, &self.config.settings, self.step).map_err(|m| {
            Error::World(format!(
                "{} at step {}: {m}",
                self.config.endpoint, self.step
            ))
        })
    }
}

impl World for SimWorld {
    fn info(&self) -> WorldInfo {
        WorldInfo {
            kind: self.kind.clone(),
            endpoint: self.config.endpoint.clone(),
            cameras: vec![FRONT_CAMERA.into()],
        }
    }

    fn reset(&mut self, request: &ResetRequest) -> Result<Observation> {
        let scene = request
            .scene
            .clone()
            .or_else(|| self.config.default_scene.clone())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: reset needs a scene: the reset request names none and the world \
                     has no default scene",
                    self.config.endpoint
                ))
            })?;
        let event = self.client.reset(&scene, &self.config.settings)?;
        self.step = 0;
        self.observe(event)
    }

    fn step(&mut self, commands: &[Command]) -> Result<StepOutcome> {
        if commands.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: step needs at least one command",
                self.config.endpoint
            )));
        }
        let mut actions = Vec::with_capacity(commands.len());
        for (i, c) in commands.iter().enumerate() {
            match c {
                Command::Sim(a) => actions.push(a),
                other => {
                    return Err(Error::Invalid(format!(
                        "{}: command {i} ({}) is not supported by a simulator world, which \
                         takes Command::Sim (AI2-THOR actions) only; robot commands need a \
                         robot world",
                        self.config.endpoint,
                        command_name(other)
                    )));
                }
            }
        }
        // Apply in order; stop at the first action the simulator reports as failed, as the
        // later ones were planned on the assumption that it succeeded.
        let mut last = None;
        for a in actions {
            let event = self.client.step(&a.0)?;
            let failed = !event.metadata.last_action_success;
            last = Some(event);
            if failed {
                break;
            }
        }
        let Some(event) = last else {
            return Err(Error::Invalid("no command was applied".into()));
        };
        self.step += 1;
        let feedback = WorldFeedback {
            success: event.metadata.last_action_success,
            error: event.metadata.error_message.clone(),
        };
        let observation = self.observe(event)?;
        Ok(StepOutcome {
            observation,
            feedback,
        })
    }

    fn close(&mut self) -> Result<()> {
        self.client.disconnect();
        Ok(())
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Sim(_) => "Sim",
        Command::BaseTwist { .. } => "BaseTwist",
        Command::ArmTrajectory(_) => "ArmTrajectory",
        Command::Gripper { .. } => "Gripper",
        Command::Stop => "Stop",
    }
}

/// The camera's pose in the world from AI2-THOR metadata: at `cameraPosition` when the
/// simulator reports one, else above the agent by the standing or crouching offset; turned by
/// the agent's yaw and the camera horizon.
pub fn camera_pose_from_metadata(meta: &Metadata) -> Transform<WorldFrame, Camera> {
    let agent = &meta.agent;
    let c = meta.camera_position;
    let position = if c.x != 0.0 || c.y != 0.0 || c.z != 0.0 {
        Point3::new(c.x, c.y, c.z)
    } else {
        let offset = if agent.is_standing {
            STANDING_CAMERA_OFFSET
        } else {
            CROUCHING_CAMERA_OFFSET
        };
        Point3::new(
            agent.position.x,
            agent.position.y + offset,
            agent.position.z,
        )
    };
    camera_pose(
        position,
        yaw_from_degrees(agent.rotation.y),
        agent.camera_horizon.to_radians(),
    )
}

/// Builds the observation for an event under the given settings. Errors say what is missing
/// or inconsistent (the caller adds the endpoint and step).
pub fn observation_from_event(
    event: SimEvent,
    settings: &InitSettings,
    step: u64,
) -> std::result::Result<Observation, String> {
    let SimEvent { metadata, frames } = event;
    let rgb = frames
        .rgb
        .ok_or_else(|| "the simulator returned no RGB frame".to_string())?;
    if (rgb.width, rgb.height) != (settings.width, settings.height) {
        return Err(format!(
            "the RGB frame is {}x{} but the settings ask for {}x{}",
            rgb.width, rgb.height, settings.width, settings.height
        ));
    }
    let depth = if settings.render_depth_image {
        let d = frames.depth.ok_or_else(|| {
            "the settings ask for depth (renderDepthImage) but the simulator returned none"
                .to_string()
        })?;
        if (d.width, d.height) != (rgb.width, rgb.height) {
            return Err(format!(
                "the depth frame is {}x{}, the RGB frame {}x{}",
                d.width, d.height, rgb.width, rgb.height
            ));
        }
        Some(Arc::new(d))
    } else {
        None
    };
    let instances = if settings.render_instance_segmentation {
        let s = frames.instances.ok_or_else(|| {
            "the settings ask for instance segmentation (renderInstanceSegmentation) but the \
             simulator returned none"
                .to_string()
        })?;
        if (s.width, s.height) != (rgb.width, rgb.height) {
            return Err(format!(
                "the instance frame is {}x{}, the RGB frame {}x{}",
                s.width, s.height, rgb.width, rgb.height
            ));
        }
        Some(Arc::new(s))
    } else {
        None
    };
    let intrinsics =
        Pinhole::from_vertical_fov(rgb.width, rgb.height, settings.field_of_view.to_radians())
            .map_err(|e| format!("settings.fieldOfView: {e}"))?;
    let base: BaseState = Observation::base_from_metadata(&metadata);
    let camera = CameraFrame {
        name: FRONT_CAMERA.into(),
        rgb: Arc::new(rgb),
        depth,
        instances,
        intrinsics: Some(intrinsics),
        world_from_camera: Some(camera_pose_from_metadata(&metadata)),
    };
    let proprio = Proprioception {
        base: Some(base),
        arm: None,
        gripper: None,
        held_object: metadata.held_object_id().map(str::to_string),
    };
    Ok(Observation {
        step,
        sim_time: None,
        cameras: vec![camera],
        proprio,
        sim: Some(Arc::new(metadata)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Frames;
    use ember_agent::observation::{DepthImage, InstanceImage, RgbImage};
    use ember_agent::thor::{InventoryObject, Vec3};
    use nalgebra::Vector3;

    fn event(w: u32, h: u32) -> SimEvent {
        let mut metadata = Metadata::default();
        metadata.agent.position = Vec3::new(1.0, 0.9, 2.0);
        metadata.agent.rotation = Vec3::new(0.0, 90.0, 0.0);
        metadata.agent.camera_horizon = 30.0;
        metadata.agent.is_standing = true;
        metadata.inventory_objects.push(InventoryObject {
            object_id: "Mug|1|2|3".into(),
            object_type: "Mug".into(),
        });
        let n = (w * h) as usize;
        SimEvent {
            metadata,
            frames: Frames {
                rgb: Some(RgbImage::black(w, h)),
                depth: Some(DepthImage {
                    width: w,
                    height: h,
                    data: vec![1.0; n],
                }),
                instances: Some(InstanceImage {
                    width: w,
                    height: h,
                    data: vec![0; n],
                    legend: vec![String::new()],
                }),
            },
        }
    }

    #[test]
    fn observation_has_intrinsics_pose_and_proprio() {
        let settings = InitSettings {
            width: 8,
            height: 4,
            field_of_view: 90.0,
            render_depth_image: true,
            ..InitSettings::default()
        };
        let obs = observation_from_event(event(8, 4), &settings, 3).unwrap();
        assert_eq!(obs.step, 3);
        let cam = obs.camera(FRONT_CAMERA).unwrap();
        assert_eq!((cam.rgb.width, cam.rgb.height), (8, 4));
        assert!(cam.depth.is_some());
        assert!(cam.instances.is_none(), "not asked for");
        let k = cam.intrinsics.unwrap();
        assert!(
            (k.fy - 2.0).abs() < 1e-12,
            "fy = (h/2)/tan(fov/2) = 2: {k:?}"
        );
        assert!((k.cx - 4.0).abs() < 1e-12 && (k.cy - 2.0).abs() < 1e-12);
        // Camera 0.675 m above the agent, facing +x, pitched 30 degrees down.
        let pose = cam.world_from_camera.unwrap();
        let t = pose.translation();
        assert!((t - Vector3::new(1.0, 0.9 + STANDING_CAMERA_OFFSET, 2.0)).norm() < 1e-12);
        let f = pose.transform_vector(&Vector3::z());
        let want = Vector3::new(30f64.to_radians().cos(), -30f64.to_radians().sin(), 0.0);
        assert!((f - want).norm() < 1e-9, "{f:?}");
        let base = obs.proprio.base.unwrap();
        assert!((base.yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!((base.camera_pitch - 30f64.to_radians()).abs() < 1e-12);
        assert_eq!(obs.proprio.held_object.as_deref(), Some("Mug|1|2|3"));
        assert!(obs.sim.is_some());
    }

    #[test]
    fn reported_camera_position_wins() {
        let mut e = event(2, 2);
        e.metadata.camera_position = Vec3::new(0.5, 1.5, -0.5);
        let pose = camera_pose_from_metadata(&e.metadata);
        assert!((pose.translation() - Vector3::new(0.5, 1.5, -0.5)).norm() < 1e-12);
    }

    #[test]
    fn inconsistent_events_are_errors() {
        let settings = InitSettings {
            width: 8,
            height: 4,
            ..InitSettings::default()
        };
        let e = observation_from_event(event(4, 4), &settings, 0).unwrap_err();
        assert!(e.contains("4x4") && e.contains("8x4"), "{e}");
        let mut ev = event(8, 4);
        ev.frames.instances = None;
        let s = InitSettings {
            render_instance_segmentation: true,
            ..settings.clone()
        };
        let e = observation_from_event(ev, &s, 0).unwrap_err();
        assert!(e.contains("renderInstanceSegmentation"), "{e}");
        let mut ev = event(8, 4);
        ev.frames.rgb = None;
        assert!(observation_from_event(ev, &settings, 0).is_err());
    }
}
