//! The model benchmark behind `ember bench model`: a randomly initialised model with the real
//! Qwen2-VL-2B shape (no download), timed on vision encoding of one 800x450 image, prefill of
//! that image plus text, and KV-cached decoding, with peak memory and the measured memory
//! bandwidth (decoding reads every weight once per token, so bandwidth bounds it).
//!
//! The random weights are a pure function of the tensor name and a seed (splitmix64 of
//! `fnv1a64(name) ^ seed` plus the element index), so `models/scripts/bench_torch.py` builds the
//! identical model in PyTorch for the comparison.

use std::path::Path;
use std::time::Instant;

use ember_agent::RgbImage;
use serde::Serialize;

use crate::config::{
    ConfigShape, Family, ModelConfig, PreprocessorConfig, TextConfig, VisionAct, VisionConfig,
};
use crate::device::{BackendKind, Precision, runtime};
use crate::error::{ModelError, Result};
use crate::image::ImageProcessor;
use crate::model::{QwenVl, dtype_size};
use crate::nn::WeightSource;
use crate::reference::argmax;
use crate::text::KvCache;

/// Qwen2-VL-2B-Instruct's shape (its config.json).
pub fn qwen2_vl_2b_config() -> ModelConfig {
    ModelConfig {
        family: Family::Qwen2Vl,
        text: TextConfig {
            vocab_size: 151_936,
            hidden_size: 1536,
            intermediate_size: 8960,
            num_hidden_layers: 28,
            num_attention_heads: 12,
            num_key_value_heads: 2,
            head_dim: 128,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            mrope_section: vec![16, 24, 24],
        },
        vision: VisionConfig {
            depth: 32,
            hidden_size: 1280,
            intermediate_size: 5120,
            num_heads: 16,
            out_hidden_size: 1536,
            patch_size: 14,
            temporal_patch_size: 2,
            spatial_merge_size: 2,
            in_channels: 3,
            act: VisionAct::QuickGelu,
            window_size: None,
            fullatt_block_indexes: Vec::new(),
            rope_theta: 10_000.0,
        },
        tie_word_embeddings: true,
        image_token_id: 151_655,
        video_token_id: 151_656,
        vision_start_token_id: 151_652,
        vision_end_token_id: 151_653,
        eos_token_ids: vec![151_645],
        stored_dtype: Some("bfloat16".into()),
        shape: ConfigShape::FlatLegacy,
    }
}

/// Qwen2-VL-2B-Instruct's preprocessor (min 3136, max 12845056 pixels).
pub fn qwen2_vl_2b_preprocessor() -> PreprocessorConfig {
    PreprocessorConfig {
        min_pixels: 3136,
        max_pixels: 12_845_056,
        ..Default::default()
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic random weights for any tensor name and shape: norms 1, biases uniform in
/// ±0.02, matrices uniform in ±1/sqrt(fan_in).
#[derive(Clone, Copy, Debug)]
pub struct RandomWeights {
    /// The seed.
    pub seed: u64,
}

impl RandomWeights {
    /// The values of one tensor.
    pub fn generate(&self, name: &str, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        let is_norm = name.contains("norm") || name.contains("ln_q");
        if is_norm && name.ends_with(".weight") {
            return vec![1.0; n];
        }
        let scale = if name.ends_with(".bias") || shape.len() < 2 {
            0.02f32
        } else {
            let fan_in: usize = shape[1..].iter().product();
            1.0f32 / (fan_in as f32).sqrt()
        };
        let key = fnv1a64(name.as_bytes()) ^ self.seed;
        (0..n as u64)
            .map(|i| {
                let u = (splitmix64(key.wrapping_add(i)) >> 40) as f32 / 16_777_216.0f32;
                (u * 2.0f32 - 1.0f32) * scale
            })
            .collect()
    }
}

impl WeightSource for RandomWeights {
    fn values(&self, names: &[&str], shape: &[usize]) -> Result<Vec<f32>> {
        let name = names
            .first()
            .ok_or_else(|| ModelError::Input("a tensor was requested with no name".into()))?;
        Ok(self.generate(name, shape))
    }
    fn has(&self, _name: &str) -> bool {
        true
    }
}

/// What to benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct BenchOptions {
    /// Backend.
    pub backend: BackendKind,
    /// Precision.
    pub precision: Precision,
    /// Image width.
    pub image_width: u32,
    /// Image height.
    pub image_height: u32,
    /// Text tokens after the image.
    pub text_tokens: usize,
    /// Tokens to decode.
    pub decode_tokens: usize,
    /// Untimed decode steps before timing (kernel compilation on wgpu).
    pub warmup_tokens: usize,
    /// Weight seed.
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            backend: BackendKind::Cpu,
            precision: Precision::F32,
            image_width: 800,
            image_height: 450,
            text_tokens: 200,
            decode_tokens: 32,
            warmup_tokens: 2,
            seed: 0,
        }
    }
}

/// What the benchmark measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Backend and adapter.
    pub device: String,
    /// Precision.
    pub precision: Precision,
    /// Parameters.
    pub parameters: usize,
    /// Seconds to build the model (random weights generated and uploaded).
    pub load_s: f64,
    /// Image tokens (after merging).
    pub image_tokens: usize,
    /// Image patches.
    pub image_patches: usize,
    /// Seconds to encode the image (preprocessing included).
    pub vision_s: f64,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Seconds of prefill.
    pub prefill_s: f64,
    /// Prefill tokens per second.
    pub prefill_tok_s: f64,
    /// Tokens decoded (timed).
    pub decode_tokens: usize,
    /// Seconds decoding them.
    pub decode_s: f64,
    /// Decode tokens per second.
    pub decode_tok_s: f64,
    /// Weight bytes read per decoded token (language model and head, in the compute dtype).
    pub weight_bytes_per_token: usize,
    /// Peak resident memory of the process, bytes (VmHWM).
    pub peak_rss_bytes: Option<u64>,
}

/// Host memory read bandwidth, GB/s: `threads` threads stream through a `bytes`-long buffer,
/// XOR-folding 64-bit words into eight independent accumulators (integer work the compiler
/// vectorises freely, so the loop is limited by memory, not by arithmetic); best of a few
/// passes.
pub fn measure_bandwidth(bytes: usize, threads: usize) -> f64 {
    let n = (bytes / 8).max(8);
    let buf: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
    let threads = threads.max(1);
    let chunk = n.div_ceil(threads);
    let mut best = f64::MAX;
    let mut sink = 0u64;
    for _ in 0..5 {
        let t0 = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|c| {
                    s.spawn(move || {
                        let mut acc = [0u64; 8];
                        for block in c.chunks_exact(8) {
                            for k in 0..8 {
                                acc[k] ^= block[k];
                            }
                        }
                        acc.iter().fold(0u64, |a, b| a ^ b)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0u64, |a, b| a ^ b)
        });
        sink ^= total;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    (n * 8) as f64 / best / 1e9
}

/// Peak resident set size of this process (Linux `VmHWM`), bytes.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A deterministic test image (smooth colours).
pub fn bench_image(width: u32, height: u32) -> RgbImage {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            data.extend_from_slice(&[
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

/// The benchmark prompt: `<|vision_start|>`, the image's pads, `<|vision_end|>`, then `text`
/// pseudo-random text tokens (the same as bench_torch.py's).
pub fn bench_prompt(cfg: &ModelConfig, image_tokens: usize, text: usize, seed: u64) -> Vec<u32> {
    let mut ids = vec![cfg.vision_start_token_id];
    ids.extend(std::iter::repeat_n(cfg.image_token_id, image_tokens));
    ids.push(cfg.vision_end_token_id);
    let key = fnv1a64(b"prompt") ^ seed;
    ids.extend((0..text as u64).map(|i| (splitmix64(key.wrapping_add(i)) % 151_643) as u32));
    ids
}

/// Builds the 2B-shaped model and times it.
pub fn run(opts: &BenchOptions, progress: &mut dyn FnMut(&str)) -> Result<BenchResult> {
    let cfg = qwen2_vl_2b_config();
    let rt = runtime(opts.backend, opts.precision)?;
    // Reset the peak-RSS counter (Linux), so that each run reports its own peak.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    progress("building the model (random weights, Qwen2-VL-2B shape)");
    let t0 = Instant::now();
    let model = QwenVl::from_source(cfg.clone(), &RandomWeights { seed: opts.seed }, rt.clone())?;
    rt.device
        .sync()
        .map_err(|e| ModelError::Compute(format!("{e:?}")))?;
    let load_s = t0.elapsed().as_secs_f64();

    let processor = ImageProcessor::new(qwen2_vl_2b_preprocessor());
    let image = bench_image(opts.image_width, opts.image_height);
    let merge = cfg.vision.spatial_merge_size;

    // Warm-up on a small image and a short prompt (kernel compilation and autotuning on wgpu).
    progress("warm-up");
    {
        let small = processor.process(&bench_image(56, 56))?;
        let e = model.encode_images(std::slice::from_ref(&small))?;
        let ids = bench_prompt(&cfg, small.n_tokens(merge), 8, opts.seed);
        let mut cache = KvCache::new();
        let p = model.prefill(&ids, e, &[small.grid_thw], &mut cache, false)?;
        let mut next = argmax(&p.last_logits) as u32;
        for _ in 0..opts.warmup_tokens {
            next = argmax(&model.decode(next, p.positions.rope_delta, &mut cache)?) as u32;
        }
    }

    progress("vision");
    let t1 = Instant::now();
    let processed = processor.process(&image)?;
    let embeds = model.encode_images(std::slice::from_ref(&processed))?;
    rt.device
        .sync()
        .map_err(|e| ModelError::Compute(format!("{e:?}")))?;
    let vision_s = t1.elapsed().as_secs_f64();
    let image_tokens = processed.n_tokens(merge);

    progress("prefill");
    let ids = bench_prompt(&cfg, image_tokens, opts.text_tokens, opts.seed);
    let mut cache = KvCache::new();
    let t2 = Instant::now();
    let pre = model.prefill(&ids, embeds, &[processed.grid_thw], &mut cache, false)?;
    let prefill_s = t2.elapsed().as_secs_f64();

    progress("decode");
    let mut next = argmax(&pre.last_logits) as u32;
    for _ in 0..opts.warmup_tokens {
        next = argmax(&model.decode(next, pre.positions.rope_delta, &mut cache)?) as u32;
    }
    let t3 = Instant::now();
    for _ in 0..opts.decode_tokens {
        next = argmax(&model.decode(next, pre.positions.rope_delta, &mut cache)?) as u32;
    }
    let decode_s = t3.elapsed().as_secs_f64();
    std::hint::black_box(next);

    Ok(BenchResult {
        device: format!("{} ({:?})", opts.backend, rt.device),
        precision: opts.precision,
        parameters: cfg.parameter_count(),
        load_s,
        image_tokens,
        image_patches: processed.n_patches(),
        vision_s,
        prompt_tokens: ids.len(),
        prefill_s,
        prefill_tok_s: ids.len() as f64 / prefill_s,
        decode_tokens: opts.decode_tokens,
        decode_s,
        decode_tok_s: opts.decode_tokens as f64 / decode_s,
        weight_bytes_per_token: model.decode_weight_bytes(),
        peak_rss_bytes: peak_rss(),
    })
}

/// Writes a `config.json` of the benchmark shape (for bench_torch.py and `ember model info`).
pub fn write_config(path: &Path) -> Result<()> {
    let c = qwen2_vl_2b_config();
    let v = serde_json::json!({
        "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
        "hidden_size": c.text.hidden_size, "intermediate_size": c.text.intermediate_size,
        "num_hidden_layers": c.text.num_hidden_layers, "num_attention_heads": c.text.num_attention_heads,
        "num_key_value_heads": c.text.num_key_value_heads, "rms_norm_eps": c.text.rms_norm_eps,
        "rope_theta": c.text.rope_theta, "vocab_size": c.text.vocab_size, "tie_word_embeddings": true,
        "rope_scaling": {"type": "mrope", "mrope_section": c.text.mrope_section},
        "image_token_id": c.image_token_id, "video_token_id": c.video_token_id,
        "vision_start_token_id": c.vision_start_token_id, "vision_end_token_id": c.vision_end_token_id,
        "eos_token_id": 151_645, "bos_token_id": 151_643, "hidden_act": "silu", "torch_dtype": "bfloat16",
        "vision_config": {"depth": c.vision.depth, "embed_dim": c.vision.hidden_size, "mlp_ratio": 4,
            "num_heads": c.vision.num_heads, "in_chans": 3, "hidden_size": c.vision.out_hidden_size,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    });
    let text = serde_json::to_string_pretty(&v).map_err(|e| ModelError::Input(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| ModelError::io(path, e))
}

/// Bytes per element of the benchmark's compute dtype.
pub fn precision_bytes(p: Precision) -> usize {
    dtype_size(p.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_weights_are_deterministic_and_scaled() {
        let r = RandomWeights { seed: 0 };
        let a = r.generate("model.layers.0.mlp.up_proj.weight", &[8, 4]);
        assert_eq!(a, r.generate("model.layers.0.mlp.up_proj.weight", &[8, 4]));
        assert!(a.iter().all(|x| x.abs() <= 0.5));
        assert_ne!(a, r.generate("model.layers.1.mlp.up_proj.weight", &[8, 4]));
        assert!(
            r.generate("model.norm.weight", &[4])
                .iter()
                .all(|&x| x == 1.0)
        );
        // Known values (bench_torch.py asserts the same ones).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn random_weights_equal_bench_torch_py() {
        // Printed by models/scripts/bench_torch.py's random_tensor / bench_prompt.
        let r = RandomWeights { seed: 0 };
        let a = r.generate("model.layers.0.mlp.up_proj.weight", &[8960, 1536]);
        assert_eq!(
            &a[..3],
            &[-0.014_757_778_f32, -0.009_562_394, -0.020_587_906]
        );
        let sum: f64 = a.iter().map(|&x| x as f64).sum();
        assert!((sum - -65.258_645_657_04).abs() < 1e-6, "{sum}");
        let b = RandomWeights { seed: 7 }.generate("visual.blocks.0.attn.qkv.bias", &[3840]);
        assert_eq!(
            &b[..3],
            &[0.012_072_911_f32, -0.006_214_516_2, 0.005_022_430_3]
        );
        let cfg = qwen2_vl_2b_config();
        assert_eq!(
            bench_prompt(&cfg, 2, 3, 0),
            vec![151_652, 151_655, 151_655, 151_653, 109_821, 127_468, 80_888]
        );
    }

    #[test]
    fn the_2b_shape_has_2_2_billion_parameters() {
        let p = qwen2_vl_2b_config().parameter_count();
        assert!((2_200_000_000..2_220_000_000).contains(&p), "{p}");
    }

    #[test]
    fn bandwidth_is_positive() {
        assert!(measure_bandwidth(1 << 22, 2) > 0.0);
    }
}
