//! ember-models: Qwen2-VL / Qwen2.5-VL in burn, matching transformers.
//!
//! Module map:
//! - [`error`]: the crate's error type;
//! - [`config`]: `config.json` (flat legacy and nested shapes), the image preprocessor (both
//!   shapes) and generation defaults;
//! - [`weights`]: memory-mapped safetensors (single or sharded; f32, bf16, f16);
//! - [`device`]: backend (`cpu` = burn-flex, `wgpu`) and precision;
//! - [`nn`]: building blocks (linear in PyTorch layout, norms, rotary, attention);
//! - [`rope`]: M-RoPE positions and tables, the vision 2-D rotary, Qwen2.5-VL windows;
//! - [`vision`]: the vision tower of both families;
//! - [`text`]: the Qwen2 decoder with its KV cache;
//! - [`model`]: the whole model (load, encode images, prefill, decode);
//! - [`image`]: `smart_resize`, bicubic resize, normalisation, patches in merge order;
//! - [`tokenizer`]: `tokenizer.json`, incremental detokenisation, the token counter;
//! - [`chat`]: the checkpoint's Jinja chat template (minijinja) or the built-in Qwen2-VL format;
//! - [`generate`]: sampling (greedy, temperature, top-k, top-p, repetition penalty, seed);
//! - [`pipeline`]: conversation -> prompt -> streamed reply ([`pipeline::Vlm`]);
//! - [`policy`]: the model behind ember's `Policy` contract (Embodied-Reasoner and Robot-R1
//!   reply formats);
//! - [`reference`]: transformers reference dumps and the parity check;
//! - [`bench`]: the `ember bench model` workload (random weights in the real 2B shape).

pub mod bench;
pub mod chat;
pub mod config;
pub mod device;
pub mod error;
pub mod generate;
pub mod image;
pub mod model;
pub mod nn;
pub mod pipeline;
pub mod policy;
pub mod reference;
pub mod rope;
pub mod text;
pub mod tokenizer;
pub mod vision;
pub mod weights;

pub use config::{Family, ModelConfig, PreprocessorConfig};
pub use device::{BackendKind, Precision, runtime};
pub use error::{ModelError, Result};
pub use model::QwenVl;
pub use nn::Runtime;
pub use pipeline::Vlm;
