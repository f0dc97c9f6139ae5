//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ember_agent::RgbImage;
use ember_models::chat::ChatTemplate;
use ember_models::config::{GenerationDefaults, PreprocessorConfig};
use ember_models::tokenizer::QwenTokenizer;
use ember_models::{BackendKind, Precision, QwenVl, Vlm, runtime};
use serde_json::{Map, Value, json};

/// `models/fixtures`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A PNG as an agent image.
pub fn load_png(path: &Path) -> RgbImage {
    let img = image::open(path).unwrap().to_rgb8();
    RgbImage::new(img.width(), img.height(), img.into_raw()).unwrap()
}

/// GPT-2's byte-to-character table (byte-level BPE vocabularies are written in it).
fn bytes_to_unicode() -> Vec<char> {
    let mut bs: Vec<u32> = (u32::from('!')..=u32::from('~'))
        .chain(u32::from('¡')..=u32::from('¬'))
        .chain(u32::from('®')..=u32::from('ÿ'))
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in bs.iter().zip(cs) {
        table[*b as usize] = char::from_u32(c).unwrap();
    }
    table
}

/// A small byte-level tokenizer built here: one token per byte (ids 0-255, no merges; 256-399
/// unused) and the
/// Qwen special tokens at the ids the tiny checkpoints' config.json name (400-406).
pub fn byte_tokenizer() -> QwenTokenizer {
    let table = bytes_to_unicode();
    let mut vocab = Map::new();
    for (b, c) in table.iter().enumerate() {
        vocab.insert(c.to_string(), json!(b));
    }
    // Unused entries up to 400, so that the special tokens get the ids the checkpoints name.
    for id in 256..400 {
        vocab.insert(format!("<|unused_{id}|>"), json!(id));
    }
    let specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ];
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": 400 + i, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let spec = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": []}
    });
    let tok: tokenizers::Tokenizer = spec.to_string().parse().unwrap();
    QwenTokenizer::from_tokenizer(tok)
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
