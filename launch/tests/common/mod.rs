//! Helpers shared by the launch integration tests (each test file includes this module).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `ember` binary under test.
pub fn ember() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ember"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("launch/ has a parent")
        .to_path_buf()
}
