//! The World contract: a simulator over the bridge, or a robot composed from drivers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::observation::Observation;

/// An AI2-THOR action as a JSON object: `{"action": "PickupObject", "objectId": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimAction(pub Map<String, Value>);

impl SimAction {
    /// An action with no parameters.
    pub fn new(action: &str) -> Self {
        let mut m = Map::new();
        m.insert("action".into(), Value::String(action.into()));
        Self(m)
    }

    /// Adds a parameter.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The action name.
    pub fn name(&self) -> &str {
        self.0.get("action").and_then(Value::as_str).unwrap_or("")
    }
}

/// One point of a joint trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Joint positions, radians (metres for prismatic joints).
    pub positions: Vec<f64>,
    /// Joint velocities at this point.
    pub velocities: Vec<f64>,
    /// Time from the trajectory's start, seconds.
    pub time_from_start: f64,
}

/// A time-parameterised joint trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JointTrajectory {
    /// Joint names, in the order of each point's vectors.
    pub joint_names: Vec<String>,
    /// The points, in increasing time.
    pub points: Vec<TrajectoryPoint>,
}

/// A command to the world. Simulator worlds take [`Command::Sim`]; robot worlds take the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// A simulator action (AI2-THOR schema).
    Sim(SimAction),
    /// A base velocity held for a duration: forward and left speed (m/s), yaw rate (rad/s).
    BaseTwist {
        /// Forward speed, m/s.
        forward: f64,
        /// Leftward speed, m/s.
        left: f64,
        /// Yaw rate, rad/s.
        yaw_rate: f64,
        /// How long to apply it, seconds.
        duration: f64,
    },
    /// A joint trajectory for the arm.
    ArmTrajectory(JointTrajectory),
    /// A gripper opening, 0 = closed, 1 = open.
    Gripper {
        /// Opening fraction.
        opening: f64,
    },
    /// Stop all motion now (the safe stop).
    Stop,
}

/// What the world says about a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldFeedback {
    /// Whether the world carried the command out.
    pub success: bool,
    /// The world's error message when it did not (AI2-THOR's `errorMessage`).
    pub error: String,
}

/// The result of a world step.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The observation after the step.
    pub observation: Observation,
    /// What the world says about it.
    pub feedback: WorldFeedback,
}

/// What to reset the world to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResetRequest {
    /// The scene (simulators); ignored by robots.
    pub scene: Option<String>,
    /// The episode seed.
    pub seed: u64,
    /// The episode's identity (a benchmark case's), for logs and fault injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
}

/// A description of a world, for logs and recordings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldInfo {
    /// The kind (`thor-lite`, `ai2thor`, `robot`...).
    pub kind: String,
    /// Where it is (an endpoint, `inproc`, a robot name).
    pub endpoint: String,
    /// Camera names the world provides.
    pub cameras: Vec<String>,
}

/// Commands a world's safe stop from any thread, even while the world is busy in a call
/// (the second Ctrl-C uses it). See [`World::safe_stop_handle`].
pub type SafeStopHandle = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// A world the agent acts in. Calls block; the event loop runs them on blocking threads.
pub trait World: Send {
    /// Describes the world.
    fn info(&self) -> WorldInfo;
    /// Starts a new episode and returns the first observation (step 0).
    fn reset(&mut self, request: &ResetRequest) -> Result<Observation>;
    /// Applies commands in order and returns the observation after the last one.
    fn step(&mut self, commands: &[Command]) -> Result<StepOutcome>;
    /// Brings the world to a safe stop (robots stop moving; simulators do nothing).
    fn safe_stop(&mut self) -> Result<()> {
        Ok(())
    }
    /// A handle that performs the safe stop without `&mut self`, through a path of its own
    /// (a robot's separate connection or e-stop line), so that it works while another call
    /// holds the world. The event loop registers it for the second Ctrl-C, which exits at
    /// once but stops the robot first. Worlds with nothing to stop (simulators) return `None`.
    fn safe_stop_handle(&self) -> Option<SafeStopHandle> {
        None
    }
    /// Releases the world's resources.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_action_builds_ai2thor_json() {
        let a = SimAction::new("PickupObject").with("objectId", "Apple|1|2|3");
        assert_eq!(a.name(), "PickupObject");
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"action": "PickupObject", "objectId": "Apple|1|2|3"})
        );
    }
}
