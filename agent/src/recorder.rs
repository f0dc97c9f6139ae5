//! The Recorder contract: every arrow of a step is also a recorder event.
//!
//! Recorders must not block the loop: `record` enqueues and returns. Implementations run their
//! own thread (see the Rerun recorder) and count what they drop.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::error::Result;
use crate::observation::Observation;
use crate::policy::{Candidate, Decision, EpisodeInfo, Feedback, PolicyInfo};
use crate::world::WorldInfo;

/// Seconds spent in the parts of one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTimings {
    /// The whole step, seconds.
    pub step: f64,
    /// Deciding (policy), seconds.
    pub policy: f64,
    /// Inside the world (simulator or drivers), seconds.
    pub world: f64,
    /// The executor's own work (pose selection, legality, bookkeeping), seconds.
    pub executor: f64,
    /// Memory update and context building, seconds.
    pub memory: f64,
    /// Handing events to the recorder, seconds (time on the loop thread).
    pub recorder: f64,
}

impl StepTimings {
    /// The loop's own cost: the step minus policy and world time.
    pub fn loop_overhead(&self) -> f64 {
        (self.step - self.policy - self.world).max(0.0)
    }
}

/// One recorder event.
#[derive(Clone, Debug)]
pub enum RecordEvent {
    /// An episode starts.
    EpisodeStart {
        /// The episode.
        episode: EpisodeInfo,
        /// The world it runs in.
        world: WorldInfo,
        /// The policy that plays it (its kind, and whether it sees privileged information).
        policy: PolicyInfo,
    },
    /// An observation (after reset, after each world step; several per step for `observe`).
    Observation {
        /// The agent step it belongs to.
        step: u64,
        /// What produced it (`init`, `navigate to Fridge`, `observe:left`...).
        label: String,
        /// The observation.
        observation: Arc<Observation>,
    },
    /// The prompt text sent to the policy (images as placeholders).
    Prompt {
        /// The step.
        step: u64,
        /// The rendered prompt text.
        text: String,
    },
    /// The reply so far, while the policy is writing it.
    PartialReply {
        /// The step.
        step: u64,
        /// The text so far.
        text: String,
    },
    /// The policy's decision.
    Decision {
        /// The step.
        step: u64,
        /// The decision.
        decision: Decision,
    },
    /// The parsed action (`None` when the reply could not be parsed).
    Action {
        /// The step.
        step: u64,
        /// The action.
        action: Option<Action>,
        /// The action as text (or the unparseable reply's decision text).
        text: String,
    },
    /// Keypoint candidates offered to the policy.
    Candidates {
        /// The step.
        step: u64,
        /// The candidates.
        candidates: Vec<Candidate>,
    },
    /// What happened when the action was executed.
    Feedback {
        /// The step.
        step: u64,
        /// The feedback.
        feedback: Feedback,
    },
    /// Per-step timings.
    Timings {
        /// The step.
        step: u64,
        /// The timings.
        timings: StepTimings,
    },
    /// Memory size.
    Memory {
        /// The step.
        step: u64,
        /// Images in the context.
        images: usize,
        /// Tokens (estimated or counted) in the context.
        tokens: usize,
    },
    /// Running episode metrics (name, value).
    Metrics {
        /// The step.
        step: u64,
        /// Metric names and values.
        values: Vec<(String, f64)>,
    },
    /// An episode ended.
    EpisodeEnd {
        /// The episode's index.
        episode: u64,
        /// A JSON summary (the case result).
        summary: serde_json::Value,
    },
}

/// Counters a recorder keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecorderStats {
    /// Events accepted.
    pub recorded: u64,
    /// Events dropped because the sink lagged (live modes only).
    pub dropped: u64,
    /// Events waiting in the queue.
    pub queued: usize,
}

/// A sink for step events. `record` should return quickly; a recorder that never loses an
/// event (a file) may make it wait for room in a bounded queue, which is why the event loop
/// hands events to the recorder from a thread of its own, never from its async worker.
pub trait Recorder: Send + Sync {
    /// Enqueues an event.
    fn record(&self, event: RecordEvent);
    /// Waits until everything enqueued so far is written.
    fn flush(&self) -> Result<()>;
    /// Counters.
    fn stats(&self) -> RecorderStats {
        RecorderStats::default()
    }
}

/// A recorder that records nothing (`recording = off`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NullRecorder;

impl Recorder for NullRecorder {
    fn record(&self, _event: RecordEvent) {}
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
