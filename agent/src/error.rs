//! The agent crate's error type, shared by the contracts it defines.

use std::path::PathBuf;

/// Errors at the boundary of `ember-agent` and of the contracts it defines (World, Policy,
/// Recorder). Implementations in other crates convert their own errors into these, keeping the
/// message that says what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The world (simulator server, robot drivers) could not be reached.
    #[error("world unreachable at {endpoint}: {message}")]
    WorldUnreachable {
        /// Where we tried to reach it.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The world did not answer in time.
    #[error("world at {endpoint} did not answer within {seconds:.1} s")]
    WorldTimeout {
        /// The endpoint that timed out.
        endpoint: String,
        /// The timeout in seconds.
        seconds: f64,
    },
    /// The world answered something we could not understand, or reported an error.
    #[error("world error: {0}")]
    World(String),
    /// The policy failed to decide.
    #[error("policy failed at step {step}: {message}")]
    Policy {
        /// The step at which it failed.
        step: u64,
        /// What went wrong.
        message: String,
    },
    /// The policy did not decide in time.
    #[error("policy did not decide within {seconds:.1} s at step {step}")]
    PolicyTimeout {
        /// The step at which it timed out.
        step: u64,
        /// The timeout in seconds.
        seconds: f64,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Invalid input: a case file, a reply, a setting. The message names what and where.
    #[error("{0}")]
    Invalid(String),
    /// The run was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// The recorder failed.
    #[error("recorder: {0}")]
    Recorder(String),
}

impl Error {
    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the agent's error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
