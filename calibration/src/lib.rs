//! ember-calibration: frames, transforms and camera models; pure math on nalgebra.
//!
//! Module map:
//! - [`frames`]: named coordinate frames and typed rigid transforms between them
//!   (`Transform<To, From>`), so a camera pose cannot be mistaken for a base pose.
//! - [`camera`]: the pinhole camera model (intrinsics from a field of view, projection,
//!   back-projection of depth pixels).
//! - [`thor`]: AI2-THOR's pose conventions (yaw and horizon in degrees, y up, left-handed)
//!   turned into typed camera and agent poses, in SI units.
//! - [`registration`]: least-squares rigid (and similarity) alignment of point sets
//!   (Kabsch / Umeyama), the core of point-set and hand-eye style calibration.
//!
//! Everything is in metres and radians; degrees appear only in the [`thor`] boundary helpers.

pub mod camera;
pub mod frames;
pub mod registration;
pub mod thor;

pub use camera::Pinhole;
pub use frames::{Frame, Point, Transform};

/// Errors of the calibration crate.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibrationError {
    /// Point sets of different lengths were given to a registration.
    #[error("point sets differ in length: {0} source points vs {1} target points")]
    LengthMismatch(usize, usize),
    /// Too few points for the requested estimate.
    #[error("need at least {needed} point pairs, got {got}")]
    TooFewPoints { needed: usize, got: usize },
    /// The points are degenerate (collinear or coincident), so the estimate is not unique.
    #[error("degenerate point configuration: {0}")]
    Degenerate(&'static str),
    /// An invalid camera parameter.
    #[error("invalid camera parameter: {0}")]
    InvalidCamera(String),
}
