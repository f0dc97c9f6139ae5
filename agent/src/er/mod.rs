//! The Embodied-Reasoner benchmark harness: cases, conversation, parser, executor, legality,
//! ending rules, trajectory records and metrics, as the reference harness
//! (zwq2018/embodied_reasoner, `evaluate/`) does them. The protocol is stated in
//! `shared/specs/embodied-reasoner.md`; this module follows it, and where the spec leaves room it
//! follows the reference (each such choice is named in the submodule that makes it).
//!
//! Submodules:
//! - [`cases`]: the benchmark's JSON records, loading with located errors, key actions, task
//!   type -> step limit and category;
//! - [`prompts`]: the exact conversation strings (embedded `data/er/prompts.json`) and Python
//!   `str.format` semantics;
//! - [`parse`]: `<DecisionMaking>...</DecisionMaking>` replies -> verb and object (with the fuzzy
//!   object matcher);
//! - [`legality`]: the navigable-size rule, the navigable set and the interactable set;
//! - [`rules`]: step counting and the ending rules (step limit, 3 calls without a step, four
//!   identical emissions);
//! - [`executor`]: the actions on a [`crate::world::World`] speaking AI2-THOR (init, navigate,
//!   observe, move forward, interactions) and the navigation pose choice;
//! - [`poses`]: the embedded hand-picked and openable-receptacle poses;
//! - [`stitch`]: the observe panorama (three labelled views side by side);
//! - [`record`]: the trajectory record in the reference's shape;
//! - [`metrics`]: success, efficiency, completeness, order-aware completeness, repeat rate, and
//!   their aggregation ([`metrics::CaseResult`], [`metrics::Summary`]);
//! - [`harness`]: [`ErHarness`], the [`crate::harness::Harness`] for one case;
//! - [`generate`]: the data engine: cases of the ten sub-types for the training scenes, derived
//!   from a scene's start metadata (the evaluation scenes are refused).
//!
//! Modes: [`Mode::ErCompat`] reproduces the reference's quirks so numbers compare (an episode
//! that stops at the step limit or after three calls without a step still gets its `end`
//! reward); [`Mode::Strict`] gives no success without an explicit `end` and lets the model
//! address instances (see [`parse`]). The mode is written into every result.

pub mod cases;
pub mod executor;
pub mod generate;
pub mod harness;
pub mod legality;
pub mod metrics;
pub mod parse;
pub mod poses;
pub mod prompts;
pub mod record;
pub mod rules;
pub mod stitch;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use cases::{Case, Category, load_cases};
pub use harness::ErHarness;
pub use metrics::{CaseResult, CaseScore, CaseStatus, InfrastructureFailure, Summary};
pub use prompts::PromptVariant;
pub use record::TrajectoryRecord;

/// How faithfully to reproduce the reference harness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// The reference's behaviour, quirks included, so numbers compare with published ones.
    #[default]
    #[serde(rename = "er-compat")]
    ErCompat,
    /// No success without an explicit `end`; instance-level object addressing; replies are
    /// trimmed before the verb is read.
    #[serde(rename = "strict")]
    Strict,
}

impl Mode {
    /// The mode's name as results write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::ErCompat => "er-compat",
            Mode::Strict => "strict",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "er-compat" | "compat" => Ok(Mode::ErCompat),
            "strict" => Ok(Mode::Strict),
            other => Err(crate::error::Error::Invalid(format!(
                "unknown Embodied-Reasoner mode '{other}' (expected 'er-compat' or 'strict')"
            ))),
        }
    }
}

/// The object the parser reports when no scene type matches the reply (the reference's words).
pub const NO_SUITABLE_OBJECT: &str = "No Suitable Object";

/// Rendering settings the reference uses; a world built for this benchmark should match them.
pub mod sim_settings {
    /// Frame width, pixels.
    pub const WIDTH: u32 = 800;
    /// Frame height, pixels.
    pub const HEIGHT: u32 = 450;
    /// Field of view, degrees (AI2-THOR's `fieldOfView`).
    pub const FIELD_OF_VIEW: f64 = 90.0;
    /// Visibility distance, metres.
    pub const VISIBILITY_DISTANCE: f64 = 20.0;
    /// Grid size, metres.
    pub const GRID_SIZE: f64 = 0.1;
}
