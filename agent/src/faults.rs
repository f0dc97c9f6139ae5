//! Fault injection: a world wrapper that fails on purpose, to prove that a failure is reported
//! instead of lost (an evaluation must score or report every case it selected).
//!
//! A launch file asks for it with a `[world.fault]` table:
//! ```toml
//! [world.fault]
//! kind = "panic"        # or "error"
//! during = "reset"      # or "step"
//! episode = "1234"      # only in this episode (a case identity); all episodes when absent
//! scene = "FloorPlan5"  # only in this scene; all scenes when absent
//! step = 3              # with during = "step": the episode's 3rd world step call (default 1)
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::observation::Observation;
use crate::world::{Command, ResetRequest, SafeStopHandle, StepOutcome, World, WorldInfo};

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The world call panics.
    Panic,
    /// The world call returns an error.
    Error,
}

/// Which world call fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// `reset` (the episode cannot start: as a scene that cannot be loaded).
    #[default]
    Reset,
    /// `step` (the episode breaks in the middle).
    Step,
}

/// Where and how to fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// What the fault does.
    pub kind: FaultKind,
    /// Which call fails.
    #[serde(default)]
    pub during: FaultPoint,
    /// Only in this episode (its identity); every episode when absent.
    #[serde(default)]
    pub episode: Option<String>,
    /// Only in this scene; every scene when absent.
    #[serde(default)]
    pub scene: Option<String>,
    /// With `during = "step"`: which of the episode's world `step` calls fails (1 = the
    /// first; one action may make several calls).
    #[serde(default = "first_step")]
    pub step: u64,
}

fn first_step() -> u64 {
    1
}

impl FaultPlan {
    fn matches(&self, request: &ResetRequest) -> bool {
        self.episode
            .as_ref()
            .is_none_or(|e| request.episode.as_ref() == Some(e))
            && self
                .scene
                .as_ref()
                .is_none_or(|s| request.scene.as_ref() == Some(s))
    }

    fn fire(&self, what: &str) -> Error {
        let message = format!(
            "injected fault ({what}{}{})",
            self.episode
                .as_ref()
                .map(|e| format!(", episode {e}"))
                .unwrap_or_default(),
            self.scene
                .as_ref()
                .map(|s| format!(", scene {s}"))
                .unwrap_or_default()
        );
        match self.kind {
            FaultKind::Panic => panic!("{message}"),
            FaultKind::Error => Error::World(message),
        }
    }
}

/// A world that fails as its [`FaultPlan`] says and otherwise passes every call through.
pub struct FaultyWorld {
    inner: Box<dyn World>,
    plan: FaultPlan,
    armed: bool,
    steps: u64,
}

impl FaultyWorld {
    /// Wraps a world.
    pub fn new(inner: Box<dyn World>, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan,
            armed: false,
            steps: 0,
        }
    }
}

impl World for FaultyWorld {
    fn info(&self) -> WorldInfo {
        self.inner.info()
    }

    fn reset(&mut self, request: &ResetRequest) -> Result<Observation> {
        self.armed = self.plan.matches(request);
        self.steps = 0;
        if self.armed && self.plan.during == FaultPoint::Reset {
            return Err(self.plan.fire("reset"));
        }
        self.inner.reset(request)
    }

    fn step(&mut self, commands: &[Command]) -> Result<StepOutcome> {
        self.steps += 1;
        if self.armed && self.plan.during == FaultPoint::Step && self.steps == self.plan.step {
            return Err(self.plan.fire(&format!("step {}", self.steps)));
        }
        self.inner.step(commands)
    }

    fn safe_stop(&mut self) -> Result<()> {
        self.inner.safe_stop()
    }

    fn safe_stop_handle(&self) -> Option<SafeStopHandle> {
        self.inner.safe_stop_handle()
    }

    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Proprioception;
    use crate::world::WorldFeedback;

    struct Plain;

    fn observation() -> Observation {
        Observation {
            step: 0,
            sim_time: None,
            cameras: vec![],
            proprio: Proprioception::default(),
            sim: None,
        }
    }

    impl World for Plain {
        fn info(&self) -> WorldInfo {
            WorldInfo::default()
        }
        fn reset(&mut self, _r: &ResetRequest) -> Result<Observation> {
            Ok(observation())
        }
        fn step(&mut self, _c: &[Command]) -> Result<StepOutcome> {
            Ok(StepOutcome {
                observation: observation(),
                feedback: WorldFeedback::default(),
            })
        }
    }

    fn request(episode: &str, scene: &str) -> ResetRequest {
        ResetRequest {
            scene: Some(scene.into()),
            seed: 0,
            episode: Some(episode.into()),
        }
    }

    #[test]
    fn fails_only_where_the_plan_says() {
        let plan: FaultPlan =
            toml::from_str("kind = \"error\"\nduring = \"step\"\nepisode = \"7\"\nstep = 2\n")
                .unwrap();
        let mut w = FaultyWorld::new(Box::new(Plain), plan);
        // Another episode: never fails.
        w.reset(&request("6", "FloorPlan5")).unwrap();
        for _ in 0..5 {
            w.step(&[]).unwrap();
        }
        // The planned episode: the second step fails, the others pass.
        w.reset(&request("7", "FloorPlan5")).unwrap();
        w.step(&[]).unwrap();
        let e = w.step(&[]).unwrap_err().to_string();
        assert!(e.contains("injected fault (step 2, episode 7)"), "{e}");
        w.step(&[]).unwrap();
    }

    #[test]
    fn a_panic_at_reset_in_a_scene() {
        let plan: FaultPlan = toml::from_str("kind = \"panic\"\nscene = \"FloorPlan6\"\n").unwrap();
        let mut w = FaultyWorld::new(Box::new(Plain), plan);
        w.reset(&request("1", "FloorPlan5")).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = w.reset(&request("2", "FloorPlan6"));
        }));
        assert!(panicked.is_err());
        assert!(toml::from_str::<FaultPlan>("kind = \"explode\"\n").is_err());
        assert!(toml::from_str::<FaultPlan>("kind = \"panic\"\nwhen = \"reset\"\n").is_err());
    }
}
