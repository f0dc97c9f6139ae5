//! The Harness contract: the rules of a kind of episode.
//!
//! The event loop is generic; a harness supplies what is specific to a task family: how the
//! episode starts, what the model is told, how a reply becomes an action, whether the action
//! is legal, how it is executed on the world, when the episode ends and how it is scored.
//! The Embodied-Reasoner harness (`er`) is the first implementation.
//!
//! One step, as the loop drives it:
//! ```text
//! start(world)                      -> HarnessStep (initial messages + observations)
//! loop while !is_done():
//!     policy.decide(context built from memory + legal_actions() + privileged())
//!     act(decision, world)          -> HarnessStep (parse, legality, execute, feedback)
//! summary()                         -> the episode's result (benchmark case line)
//! ```
//! Harness calls block (they call the world); the loop runs them on a blocking thread.

use std::sync::Arc;

use serde_json::Value;

use crate::action::Action;
use crate::error::Result;
use crate::observation::Observation;
use crate::policy::{Decision, EpisodeInfo, Feedback, Message, Privileged};
use crate::world::World;

/// What one harness call produced.
#[derive(Clone, Debug, Default)]
pub struct HarnessStep {
    /// The action as parsed (`None` when the reply could not be parsed).
    pub action: Option<Action>,
    /// The action as text, for logs (the decision text when unparseable).
    pub action_text: String,
    /// How it went.
    pub feedback: Feedback,
    /// Whether the call counted as an executed step (benchmark step counting).
    pub executed: bool,
    /// Observations produced, in order, each with a label (`init`, `observe:left`...).
    pub observations: Vec<(String, Arc<Observation>)>,
    /// Messages to append to the conversation after this step (the next user turn; for
    /// `start`, the system prompt and the first user turn). The loop appends the assistant's
    /// reply itself, before these.
    pub messages: Vec<Message>,
    /// Seconds spent inside the world during the call.
    pub world_time: f64,
    /// The step's record for the episode log (the benchmark's trajectory record shape).
    pub record: Value,
}

/// The rules of one episode.
pub trait Harness: Send {
    /// The episode this harness runs.
    fn episode(&self) -> EpisodeInfo;
    /// Resets the world and places the agent; returns the initial messages and observations.
    fn start(&mut self, world: &mut dyn World) -> Result<HarnessStep>;
    /// Parses the decision, checks legality, executes the action on the world, applies the
    /// ending rules, and returns what happened.
    fn act(&mut self, decision: &Decision, world: &mut dyn World) -> Result<HarnessStep>;
    /// Whether the episode has ended.
    fn is_done(&self) -> bool;
    /// Actions that would be accepted now (for random and search policies).
    fn legal_actions(&self) -> Vec<Action>;
    /// Privileged information for the oracle.
    fn privileged(&self) -> Option<Privileged>;
    /// Running metrics (name, value) for live display.
    fn metrics(&self) -> Vec<(String, f64)>;
    /// The episode's result, once done (one line of `cases.jsonl` for benchmarks).
    fn summary(&self) -> Value;
}
