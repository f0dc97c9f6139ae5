//! ember-sim-bridge: how ember talks to simulators.
//!
//! Module map:
//! - [`backend`]: the `Simulator` interface (AI2-THOR actions in, AI2-THOR metadata and frames
//!   out) that servers front and thor-lite implements.
//! - [`thor`]: thor-lite, the embedded AI2-THOR-compatible simulator of the iTHOR floor plans
//!   ([`thor::ThorLite`]).
//! - [`protocol`]: the bridge protocol `ember-sim/1` (see `sim_bridge/PROTOCOL.md`): message
//!   layout, pure encoding and decoding, error codes, size limits.
//! - [`server`]: serves any `Simulator` on a ZeroMQ endpoint (`tcp://`, `ipc://`).
//! - [`client`]: the agent's side: `tcp://`, `ipc://`, and `inproc://` (a simulator in this
//!   process, called directly), with timeouts, reconnection and a version check.
//! - [`world`]: `SimWorld`, the agent's `World` over a client (observations with intrinsics
//!   and camera poses, feedback from AI2-THOR's `lastActionSuccess`).
//! - [`error`]: the crate's error type, `BridgeError`.
//!
//! `python/thor_bridge.py` speaks the same protocol in front of the real AI2-THOR.

pub mod backend;
pub mod client;
pub mod error;
pub mod protocol;
pub mod server;
pub mod thor;
pub mod world;

pub use backend::{Frames, InitSettings, SimError, SimEvent, Simulator, SimulatorInfo};
pub use client::{Client, ClientOptions};
pub use error::BridgeError;
pub use protocol::{ErrorCode, PROTOCOL_VERSION, ServerInfo, WireError};
pub use server::{Server, ServerConfig, ServerThread, StopHandle};
pub use world::{SimWorld, SimWorldConfig};
