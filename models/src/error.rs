//! The models crate's error type.

use std::path::PathBuf;

/// Errors of `ember-models`. Every variant a user can cause names the file, key or tensor that
/// was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file could not be parsed.
    #[error("{path}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A configuration key is missing or has the wrong type or value.
    #[error("{path}: {key}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The key, as a dotted path (`text_config.hidden_size`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint is of an architecture this crate does not implement.
    #[error("{path}: unsupported architecture `{found}` (key `{key}`); supported: {supported}")]
    UnsupportedArchitecture {
        /// The config file.
        path: PathBuf,
        /// The key that names the architecture.
        key: String,
        /// What it says.
        found: String,
        /// What we support.
        supported: String,
    },
    /// A tensor the architecture needs is not in the checkpoint.
    #[error("{dir}: missing tensor `{name}` (looked in {files})")]
    MissingTensor {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The tensor's name (the first name tried).
        name: String,
        /// The files searched.
        files: String,
    },
    /// A tensor has a shape other than the config implies.
    #[error(
        "{file}: tensor `{name}` has shape {found:?}, expected {expected:?} (from config.json)"
    )]
    WrongShape {
        /// The file holding the tensor.
        file: PathBuf,
        /// The tensor's name.
        name: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// A tensor is stored in a dtype we cannot read.
    #[error("{file}: tensor `{name}` has unsupported dtype {dtype} (supported: F32, BF16, F16)")]
    UnsupportedDtype {
        /// The file holding the tensor.
        file: PathBuf,
        /// The tensor's name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer could not be loaded or failed.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The chat template could not be compiled or rendered.
    #[error("chat template ({source_name}): {message}")]
    Template {
        /// Where the template came from.
        source_name: String,
        /// The template engine's message.
        message: String,
    },
    /// An image could not be read or processed.
    #[error("image {what}: {message}")]
    Image {
        /// Which image (a path or its index in the prompt).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The inputs to the model are inconsistent (e.g. image tokens vs images).
    #[error("invalid input: {0}")]
    Input(String),
    /// The caller cancelled the generation (a decision timeout, Ctrl-C).
    #[error("generation cancelled after {tokens} tokens")]
    Cancelled {
        /// Tokens generated before the cancellation was seen.
        tokens: usize,
    },
    /// A reference dump is malformed.
    #[error("reference {path}: {message}")]
    Reference {
        /// The reference file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The requested device or precision is not available in this build or on this machine.
    #[error("device: {0}")]
    Device(String),
    /// A tensor computation failed on the device (e.g. a read-back from the GPU).
    #[error("compute: {0}")]
    Compute(String),
}

impl ModelError {
    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    /// A config error.
    pub fn config(
        path: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ModelError::Config {
            path: path.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl From<ModelError> for ember_agent::Error {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Io { path, source } => ember_agent::Error::Io { path, source },
            other => ember_agent::Error::Invalid(other.to_string()),
        }
    }
}

/// Result with the models crate's error type.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
