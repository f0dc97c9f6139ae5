//! `ember model ...`: inspect, check and run Qwen2-VL / Qwen2.5-VL checkpoints.
//!
//! - `ember model info DIR`: architecture, shapes, weights, tokenizer, template, preprocessor.
//! - `ember model check --model DIR --reference REF.safetensors`: logits and greedy tokens
//!   against a transformers reference dump; exits non-zero beyond the tolerance or on any token
//!   mismatch.
//! - `ember model generate --model DIR --image a.png --prompt "..."`: a streamed reply.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ember_agent::RgbImage;
use ember_agent::policy::{ContentPart, Message, Role};
use ember_models::chat::ChatTemplate;
use ember_models::config::{GenerationDefaults, ModelConfig, PreprocessorConfig};
use ember_models::generate::SamplingConfig;
use ember_models::reference::{Reference, check};
use ember_models::tokenizer::QwenTokenizer;
use ember_models::weights::WeightStore;
use ember_models::{BackendKind, Precision, QwenVl, Vlm, runtime};
use indicatif::{ProgressBar, ProgressStyle};

/// The `model` command family.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Show a checkpoint's architecture, shapes, stored weights, tokenizer, chat template and
    /// image settings.
    Info(InfoArgs),
    /// Compare our logits and greedy tokens with a transformers reference dump (see
    /// models/scripts/make_fixtures.py for the format); exits non-zero when the largest logit
    /// difference exceeds the tolerance or any greedy token differs.
    Check(CheckArgs),
    /// Generate a reply to a prompt with images, streamed to stdout.
    Generate(GenerateArgs),
}

/// Where to run.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// `cpu` (burn-flex) or `wgpu` (a GPU; Mesa's llvmpipe without one).
    #[arg(long, default_value = "cpu")]
    pub device: BackendKind,
    /// Compute precision: `f32`, `f16` or `bf16` (half precision where the backend supports it).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

/// Options of `ember model info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The checkpoint directory (Hub format: config.json, *.safetensors, tokenizer.json, ...).
    pub dir: PathBuf,
}

/// Options of `ember model check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The checkpoint directory.
    #[arg(long)]
    pub model: PathBuf,
    /// The reference dump (safetensors with input_ids, pixel_values, image_grid_thw, logits,
    /// generated). Default: MODEL/reference.safetensors.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Largest allowed absolute logit difference.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f32,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Options of `ember model generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The checkpoint directory.
    #[arg(long)]
    pub model: PathBuf,
    /// An image (PNG or JPEG); repeat for several, they come before the prompt text.
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// The user's text.
    #[arg(long)]
    pub prompt: String,
    /// A system message (the template's default when absent).
    #[arg(long)]
    pub system: Option<String>,
    /// At most this many new tokens.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Stop once the reply contains this string (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs a `model` subcommand.
pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Info(a) => info(&a),
        ModelCommand::Check(a) => check_cmd(&a),
        ModelCommand::Generate(a) => generate(&a),
    }
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn info(a: &InfoArgs) -> Result<()> {
    let dir = &a.dir;
    let cfg = ModelConfig::from_dir(dir)?;
    let store = WeightStore::open(dir)?;
    let t = &cfg.text;
    let v = &cfg.vision;
    println!("checkpoint      {}", dir.display());
    println!(
        "architecture    {} ({:?} config.json)",
        cfg.family.display_name(),
        cfg.shape
    );
    println!(
        "language model  {} layers, hidden {}, {} heads / {} kv heads (head {}), mlp {}, vocab {}",
        t.num_hidden_layers,
        t.hidden_size,
        t.num_attention_heads,
        t.num_key_value_heads,
        t.head_dim,
        t.intermediate_size,
        t.vocab_size
    );
    println!(
        "                rope theta {}, mrope_section {:?}, rms eps {:e}, head {}",
        t.rope_theta,
        t.mrope_section,
        t.rms_norm_eps,
        if cfg.tie_word_embeddings {
            "tied to the embedding"
        } else {
            "untied (lm_head.weight)"
        }
    );
    print!(
        "vision tower    {} blocks, width {}, {} heads, mlp {} ({:?}), patch {}x{}x{}, merge {}x{}, output {}",
        v.depth,
        v.hidden_size,
        v.num_heads,
        v.intermediate_size,
        v.act,
        v.temporal_patch_size,
        v.patch_size,
        v.patch_size,
        v.spatial_merge_size,
        v.spatial_merge_size,
        v.out_hidden_size
    );
    match v.window_size {
        Some(w) => println!(
            ", window {w} px, full attention in blocks {:?}",
            v.fullatt_block_indexes
        ),
        None => println!(", full attention"),
    }
    let params = cfg.parameter_count() as f64;
    let params = if params >= 1e9 {
        format!("{:.3} B", params / 1e9)
    } else {
        format!("{:.3} M", params / 1e6)
    };
    println!(
        "parameters      {params} (from the config); stored {} tensors, {:.3} GB, dtypes {:?}",
        store.names().len(),
        store.total_bytes() as f64 / 1e9,
        store.dtype_counts()
    );
    println!(
        "special ids     image_pad {}, vision_start {}, vision_end {}, video_pad {}, eos {:?}",
        cfg.image_token_id,
        cfg.vision_start_token_id,
        cfg.vision_end_token_id,
        cfg.video_token_id,
        cfg.eos_token_ids
    );
    match QwenTokenizer::from_dir(dir) {
        Ok(tok) => println!(
            "tokenizer       {} tokens; <|im_start|> {:?}, <|im_end|> {:?}, <|image_pad|> {:?}",
            tok.vocab_size(),
            tok.token_id("<|im_start|>"),
            tok.token_id("<|im_end|>"),
            tok.token_id("<|image_pad|>")
        ),
        Err(e) => println!("tokenizer       unavailable: {e}"),
    }
    let tmpl = ChatTemplate::from_dir(dir)?;
    println!("chat template   {}", tmpl.source());
    let pre = PreprocessorConfig::from_dir(dir)?;
    println!(
        "images          {}..{} pixels (an 800x450 frame becomes {} tokens), mean {:?}, std {:?}{}",
        pre.min_pixels,
        pre.max_pixels,
        ember_models::image::ImageProcessor::new(pre.clone()).tokens_for(450, 800)?,
        pre.image_mean,
        pre.image_std,
        pre.source
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_else(|| " (defaults)".into())
    );
    let g = GenerationDefaults::from_dir(dir)?;
    println!(
        "generation      eos {:?}, do_sample {:?}, temperature {:?}, top_k {:?}, top_p {:?}, repetition_penalty {:?}",
        g.eos_token_ids, g.do_sample, g.temperature, g.top_k, g.top_p, g.repetition_penalty
    );
    Ok(())
}

fn check_cmd(a: &CheckArgs) -> Result<()> {
    let reference = a
        .reference
        .clone()
        .unwrap_or_else(|| a.model.join("reference.safetensors"));
    let r = Reference::read(&reference)?;
    let pb = spinner(&format!(
        "loading {} on {}",
        a.model.display(),
        a.device.device
    ));
    let rt = runtime(a.device.device, a.device.precision)?;
    let model =
        QwenVl::load(&a.model, rt).with_context(|| format!("loading {}", a.model.display()))?;
    pb.set_message(format!(
        "running {} prompt tokens, {} image(s)",
        r.input_ids.len(),
        r.grids.len()
    ));
    let rep = check(&model, &r)?;
    pb.finish_and_clear();
    println!(
        "model           {} ({})",
        a.model.display(),
        model.config.family.display_name()
    );
    println!("reference       {}", reference.display());
    if let Some(v) = r.metadata.get("transformers_version") {
        println!(
            "                transformers {v}, weights {}",
            r.metadata
                .get("weights_dtype")
                .map(String::as_str)
                .unwrap_or("?")
        );
    }
    println!(
        "device          {} ({})",
        a.device.device, a.device.precision
    );
    println!(
        "prompt          {} tokens, {} image(s)",
        rep.prompt_tokens, rep.images
    );
    println!(
        "max |dlogit|    {:.3e} (tolerance {:.0e})",
        rep.max_abs_logit_diff, a.tolerance
    );
    if let Some(d) = rep.max_abs_image_embed_diff {
        println!("max |dimage|    {d:.3e}");
    }
    if let Some(p) = rep.positions_match {
        println!(
            "m-rope ids      {}",
            if p { "identical" } else { "DIFFERENT" }
        );
    }
    println!(
        "greedy tokens   {} ({} tokens){}",
        if rep.tokens_match() {
            "match"
        } else {
            "MISMATCH"
        },
        rep.expected_tokens.len(),
        if rep.tokens_match() {
            String::new()
        } else {
            format!(
                "\n  expected {:?}\n  got      {:?}",
                rep.expected_tokens, rep.tokens
            )
        }
    );
    if rep.passes(a.tolerance) {
        println!("PASS");
        Ok(())
    } else {
        println!("FAIL");
        bail!("parity check failed for {}", a.model.display())
    }
}

fn load_image(path: &Path) -> Result<RgbImage> {
    let img = image::open(path)
        .with_context(|| format!("reading image {}", path.display()))?
        .to_rgb8();
    let (w, h) = (img.width(), img.height());
    RgbImage::new(w, h, img.into_raw())
        .with_context(|| format!("image {} has an odd byte count", path.display()))
}

fn generate(a: &GenerateArgs) -> Result<()> {
    let pb = spinner(&format!(
        "loading {} on {}",
        a.model.display(),
        a.device.device
    ));
    let rt = runtime(a.device.device, a.device.precision)?;
    let vlm = Vlm::load(&a.model, rt).with_context(|| format!("loading {}", a.model.display()))?;
    pb.finish_and_clear();
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::text(Role::System, s.clone()));
    }
    let mut content: Vec<ContentPart> = Vec::new();
    for p in &a.images {
        content.push(ContentPart::Image(Arc::new(load_image(p)?)));
    }
    content.push(ContentPart::Text(a.prompt.clone()));
    messages.push(Message {
        role: Role::User,
        content,
    });
    let prompt = vlm.prompt(&messages)?;
    let sampling = SamplingConfig {
        max_new_tokens: a.max_new_tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        repetition_penalty: a.repetition_penalty,
        stop_token_ids: Vec::new(),
        stop_strings: a.stop.clone(),
        seed: a.seed,
    };
    let mut out = std::io::stdout();
    let g = vlm.generate(&prompt, &sampling, &mut |t| {
        let _ = out.write_all(t.as_bytes());
        let _ = out.flush();
    })?;
    println!();
    eprintln!(
        "{} prompt tokens ({} image(s)); vision {:.2} s, prefill {:.2} s ({:.1} tok/s), {} tokens in {:.2} s ({:.2} tok/s); stop: {:?}",
        g.prompt_tokens,
        prompt.images.len(),
        g.vision_s,
        g.prefill_s,
        g.prompt_tokens as f64 / g.prefill_s.max(1e-9),
        g.tokens.len(),
        g.decode_s,
        g.tokens.len() as f64 / g.decode_s.max(1e-9),
        g.stop
    );
    Ok(())
}
