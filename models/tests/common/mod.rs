//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ember_agent::RgbImage;
use ember_models::chat::ChatTemplate;
use ember_models::config::{GenerationDefaults, PreprocessorConfig};
use ember_models::tokenizer::QwenTokenizer;
use ember_models::{BackendKind, Precision, QwenVl, Vlm, runtime};

/// `models/fixtures`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A PNG as an agent image.
pub fn load_png(path: &Path) -> RgbImage {
    let img = image::open(path).unwrap().to_rgb8();
    RgbImage::new(img.width(), img.height(), img.into_raw()).unwrap()
}

/// The byte-level tokenizer with the Qwen special tokens at the ids the tiny checkpoints'
/// config.json name (400-406), built here rather than read from the checkpoint.
pub fn byte_tokenizer() -> QwenTokenizer {
    ember_models::tokenizer::byte_level(&ember_models::tokenizer::qwen_specials(400)).unwrap()
}

/// A tiny fixture checkpoint on the CPU, with the byte tokenizer built above.
pub fn tiny_vlm(name: &str) -> Vlm {
    let dir = fixtures().join(name);
    let model = QwenVl::load(&dir, runtime(BackendKind::Cpu, Precision::F32).unwrap()).unwrap();
    Vlm::assemble(
        model,
        byte_tokenizer(),
        ChatTemplate::from_dir(&dir).unwrap(),
        PreprocessorConfig::from_dir(&dir).unwrap(),
        GenerationDefaults::default(),
        &dir,
    )
    .unwrap()
}
