//! ember-agent: the core of the runtime.
//!
//! Module map:
//! - Contracts (traits and types every other crate implements or consumes):
//!   - [`observation`]: camera frames, proprioception, simulator metadata per step;
//!   - [`action`]: the discrete action language and keypoint actions;
//!   - [`policy`]: the `Policy` trait, its `Context` (conversation, legal actions, candidates)
//!     and `Decision`;
//!   - [`world`]: the `World` trait and its `Command`s;
//!   - [`recorder`]: the `Recorder` trait and its events;
//!   - [`harness`]: the `Harness` trait: the rules of a kind of episode (start, act, end,
//!     score) that the event loop drives;
//!   - [`thor`]: AI2-THOR's metadata schema as Rust types;
//!   - [`error`]: the crate's error type.
//! - The runtime:
//!   - [`event_loop`]: runs an episode as a short loop over one step function (observe ->
//!     context -> decide -> execute -> record); nothing blocks its async worker; privileged
//!     data only for a policy that asks for it; Ctrl-C and the second Ctrl-C's safe stop via
//!     [`event_loop::StopSignal`];
//!   - [`faults`]: a world wrapper that fails on purpose (`[world.fault]`), to prove that
//!     failures are reported;
//!   - [`memory`]: interaction history, the JSON-lines episode log, the budgeted context and
//!     the semantic map;
//!   - [`policies`]: the built-in `oracle`, `random` and `replay` policies;
//!   - [`recording`]: the Rerun recorder behind the `Recorder` contract (its own thread, a
//!     bounded queue, file / spawned viewer / running viewer sinks, the entity paths and the
//!     default viewer layout) and the `[recording]` launch-file table. The recorder itself
//!     builds only with the `rerun` cargo feature (on by default, and in `ember-launch`);
//!     without it this crate compiles no Rerun, arrow or gRPC crate.
//! - Task families:
//!   - [`er`]: the Embodied-Reasoner benchmark harness (cases, conversation strings, reply
//!     parser, executor, legality, ending rules, trajectory records, metrics and summaries)
//!     and its data engine (`er::generate`: cases for the training scenes);
//!   - [`robot_r1`]: Robot-R1's next-keypoint prompt and `<think>`/`<answer>` parser (pure
//!     text, no model).

pub mod action;
pub mod er;
pub mod error;
pub mod event_loop;
pub mod faults;
pub mod harness;
pub mod memory;
pub mod observation;
pub mod policies;
pub mod policy;
pub mod recorder;
pub mod recording;
pub mod robot_r1;
pub mod thor;
pub mod world;

pub use action::{Action, DiscreteAction, GripperIntent, KeypointAction, Verb};
pub use error::{Error, Result};
pub use harness::{Harness, HarnessStep};
pub use observation::{
    CameraFrame, DepthImage, InstanceImage, Observation, Proprioception, RgbImage,
};
pub use policy::{
    Cancel, Context, Decision, EpisodeInfo, Feedback, FeedbackKind, Message, Policy, PolicyInfo,
    Role,
};
pub use recorder::{NullRecorder, RecordEvent, Recorder, StepTimings};
pub use world::{
    Command, ResetRequest, SafeStopHandle, SimAction, StepOutcome, World, WorldFeedback, WorldInfo,
};
