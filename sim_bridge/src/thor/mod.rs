//! thor-lite: an embedded AI2-THOR-compatible simulator of the 120 iTHOR floor plans.
//!
//! No Unity, no GPU, no network: the real scenes' AI2-THOR metadata (embedded, converted by
//! `sim_bridge/scripts/convert_scenes.py`), AI2-THOR's action names, parameters, error messages
//! and metadata schema, and a CPU rasteriser of the scene's boxes.
//!
//! Module map:
//! - [`sim`]: [`ThorLite`], the state, the actions and the per-step metadata.
//! - `scene`: loading the embedded scenes and what is derived from them once.
//! - `style`: colours, render styles (open shells), receptacle surfaces.
//! - `render`: the rasteriser (colour, depth, instance ids).
//! - `geom`, `params`: geometry helpers; action parameter parsing.
//!
//! Design notes and approximations are in `sim_bridge/THOR_LITE.md`.

mod embedded;
mod geom;
mod params;
pub mod render;
mod scene;
pub mod sim;
mod style;

pub use scene::{OpenablePose, SceneSummary, StartPose};
pub use sim::{ACTIONS, ThorLite};

#[cfg(test)]
mod tests;
