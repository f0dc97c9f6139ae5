//! ember-sim-bridge: how ember talks to simulators.
//!
//! Module map:
//! - [`backend`]: the `Simulator` interface (AI2-THOR actions in, AI2-THOR metadata and frames
//!   out) that servers front and thor-lite implements.
//! - [`thor`]: thor-lite, the embedded AI2-THOR-compatible simulator of the iTHOR floor plans
//!   ([`thor::ThorLite`]).

pub mod backend;
pub mod thor;

pub use backend::{Frames, InitSettings, SimError, SimEvent, Simulator, SimulatorInfo};
