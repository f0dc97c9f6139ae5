//! The simulator interface that the bridge server fronts.
//!
//! A [`Simulator`] takes AI2-THOR actions and returns AI2-THOR metadata plus frames. thor-lite
//! implements it in process; the bridge server exposes any implementation over ZeroMQ, and the
//! inproc transport calls it directly. An action the simulator understands but that fails
//! (an out-of-reach pickup) is *not* an error: it returns an event with
//! `lastActionSuccess = false` and an `errorMessage`, as AI2-THOR does. [`SimError`] is for
//! requests that cannot be carried out at all (an unknown action, a parameter of the wrong
//! type, no scene loaded).

use ember_agent::observation::{DepthImage, InstanceImage, RgbImage};
use ember_agent::thor::Metadata;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Initialisation settings, with AI2-THOR's `Controller(...)` keyword names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct InitSettings {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Vertical field of view in degrees (Unity's `Camera.fieldOfView`).
    pub field_of_view: f64,
    /// Grid step for moves, metres.
    pub grid_size: f64,
    /// Distance within which objects count as visible, metres.
    pub visibility_distance: f64,
    /// Whether to return depth frames.
    pub render_depth_image: bool,
    /// Whether to return instance segmentation frames.
    pub render_instance_segmentation: bool,
    /// Default rotation step, degrees.
    pub rotate_step_degrees: f64,
    /// Whether positions snap to the grid.
    pub snap_to_grid: bool,
    /// The agent mode (`default`).
    pub agent_mode: String,
}

impl Default for InitSettings {
    fn default() -> Self {
        Self {
            width: 300,
            height: 300,
            field_of_view: 90.0,
            grid_size: 0.25,
            visibility_distance: 1.5,
            render_depth_image: false,
            render_instance_segmentation: false,
            rotate_step_degrees: 90.0,
            snap_to_grid: true,
            agent_mode: "default".into(),
        }
    }
}

/// The frames of one event. Absent frames were not requested.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frames {
    /// RGB, rows top to bottom.
    pub rgb: Option<RgbImage>,
    /// Depth in metres.
    pub depth: Option<DepthImage>,
    /// Instance segmentation with its legend (index -> objectId).
    pub instances: Option<InstanceImage>,
}

/// What a reset or step returns: AI2-THOR metadata and frames.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimEvent {
    /// `event.metadata`.
    pub metadata: Metadata,
    /// The frames.
    pub frames: Frames,
}

/// Facts about a simulator, for the bridge's `info` request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimulatorInfo {
    /// The simulator's name (`thor-lite`, `ai2thor`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Scenes it can load.
    pub scenes: Vec<String>,
    /// Actions it understands.
    pub actions: Vec<String>,
}

/// A request the simulator cannot carry out at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The action name is not one the simulator knows.
    #[error("unknown action '{0}'")]
    UnknownAction(String),
    /// A parameter is missing or has the wrong type.
    #[error("action '{action}': parameter '{parameter}' {problem}")]
    BadParameter {
        /// The action.
        action: String,
        /// The parameter.
        parameter: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The scene name is not known.
    #[error("unknown scene '{0}'")]
    UnknownScene(String),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    BadSetting(String),
    /// `step` before any `reset`.
    #[error("no scene loaded: send a reset first")]
    NoScene,
    /// The simulator itself failed (the real AI2-THOR player could not start...).
    #[error("simulator failure: {0}")]
    Failure(String),
}

/// A simulator that speaks AI2-THOR's actions and metadata.
pub trait Simulator: Send {
    /// Facts about the simulator.
    fn info(&self) -> SimulatorInfo;
    /// Loads a scene with the given settings and returns the first event.
    fn reset(&mut self, scene: &str, settings: &InitSettings) -> Result<SimEvent, SimError>;
    /// Performs one AI2-THOR action (`{"action": "MoveAhead", ...}`).
    fn step(&mut self, action: &Map<String, Value>) -> Result<SimEvent, SimError>;
}
