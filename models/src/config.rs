//! Checkpoint configuration: `config.json` in both shapes (flat legacy with `rope_scaling`, and
//! transformers-5 nested `text_config`/`rope_parameters`), the image preprocessor in both shapes
//! (`min_pixels`/`max_pixels` or `size {shortest_edge, longest_edge}`), and the generation
//! defaults of `generation_config.json`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// Which of the two architectures a checkpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Qwen2-VL: LayerNorm + QuickGELU vision blocks, full attention per image.
    Qwen2Vl,
    /// Qwen2.5-VL: RMSNorm + SiLU-gated vision blocks, windowed attention with full-attention
    /// blocks.
    Qwen25Vl,
}

impl Family {
    /// The `model_type` transformers writes.
    pub fn model_type(&self) -> &'static str {
        match self {
            Family::Qwen2Vl => "qwen2_vl",
            Family::Qwen25Vl => "qwen2_5_vl",
        }
    }

    /// A human name.
    pub fn display_name(&self) -> &'static str {
        match self {
            Family::Qwen2Vl => "Qwen2-VL",
            Family::Qwen25Vl => "Qwen2.5-VL",
        }
    }
}

/// The Qwen2 language model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    /// Rows of the embedding and of the output head.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Per-head width (`hidden_size / num_attention_heads`).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// M-RoPE sections (t, h, w), in frequency pairs; they sum to `head_dim / 2`.
    pub mrope_section: Vec<usize>,
}

/// Activation of the vision MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisionAct {
    /// `x * sigmoid(1.702 x)` (Qwen2-VL).
    QuickGelu,
    /// SiLU (Qwen2.5-VL, gated).
    Silu,
    /// Exact (erf) GELU.
    Gelu,
    /// tanh-approximated GELU.
    GeluTanh,
}

/// The vision tower's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    /// Vision blocks.
    pub depth: usize,
    /// Block width (`embed_dim` in Qwen2-VL, `hidden_size` in Qwen2.5-VL).
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of the merger's output (the language model's width).
    pub out_hidden_size: usize,
    /// Patch side, pixels.
    pub patch_size: usize,
    /// Frames per temporal patch.
    pub temporal_patch_size: usize,
    /// Side of the square of patches merged into one token.
    pub spatial_merge_size: usize,
    /// Input channels.
    pub in_channels: usize,
    /// MLP activation.
    pub act: VisionAct,
    /// Window side in pixels (Qwen2.5-VL), `None` for full attention everywhere.
    pub window_size: Option<usize>,
    /// Blocks that attend over the whole image (Qwen2.5-VL).
    pub fullatt_block_indexes: Vec<usize>,
    /// Rotary base of the 2-D vision rotary.
    pub rope_theta: f64,
}

impl VisionConfig {
    /// Values per flattened patch (`in_channels * temporal_patch_size * patch_size^2`).
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
}

/// A whole checkpoint's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The architecture.
    pub family: Family,
    /// The language model.
    pub text: TextConfig,
    /// The vision tower.
    pub vision: VisionConfig,
    /// Whether the output head reuses the embedding (`lm_head.weight` absent).
    pub tie_word_embeddings: bool,
    /// `<|image_pad|>`.
    pub image_token_id: u32,
    /// `<|video_pad|>`.
    pub video_token_id: u32,
    /// `<|vision_start|>`.
    pub vision_start_token_id: u32,
    /// `<|vision_end|>`.
    pub vision_end_token_id: u32,
    /// End-of-sequence ids named by the config (may be empty).
    pub eos_token_ids: Vec<u32>,
    /// The dtype the checkpoint says it stores (`torch_dtype` / `dtype`), if stated.
    pub stored_dtype: Option<String>,
    /// Which shape the file had.
    pub shape: ConfigShape,
}

/// Which layout `config.json` used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigShape {
    /// Text fields at the top level, `rope_scaling {type: mrope}` (the 2024/2025 Hub files).
    FlatLegacy,
    /// `text_config {..., rope_parameters}` (transformers 5).
    Nested,
}

/// A JSON object with the file and key prefix it came from, for error messages.
struct Obj<'a> {
    path: &'a Path,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn key(&self, k: &str) -> String {
        if self.prefix.is_empty() {
            k.to_string()
        } else {
            format!("{}.{}", self.prefix, k)
        }
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    fn child(&self, k: &str) -> Result<Option<Obj<'a>>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                path: self.path,
                prefix: self.key(k),
                map,
            })),
            Some(_) => Err(ModelError::config(
                self.path,
                self.key(k),
                "expected an object",
            )),
        }
    }

    /// `k` converted by `conv` when present; `expected` names the wanted type in the error.
    fn typed_opt<T>(
        &self,
        k: &str,
        expected: &str,
        conv: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => conv(v).map(Some).ok_or_else(|| {
                ModelError::config(
                    self.path,
                    self.key(k),
                    format!("expected {expected}, found {v}"),
                )
            }),
        }
    }

    /// A list at `k` whose items `conv` converts; `expected` names the item type.
    fn list_opt<T>(
        &self,
        k: &str,
        expected: &str,
        conv: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        self.typed_opt(k, "a list", Value::as_array)?
            .map(|items| {
                items
                    .iter()
                    .map(|v| {
                        conv(v).ok_or_else(|| {
                            ModelError::config(
                                self.path,
                                self.key(k),
                                format!("expected a list of {expected}, found {v}"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()
    }

    fn usize_opt(&self, k: &str) -> Result<Option<usize>> {
        self.typed_opt(k, "a non-negative integer", |v| {
            v.as_u64().map(|x| x as usize)
        })
    }

    fn f64_opt(&self, k: &str) -> Result<Option<f64>> {
        self.typed_opt(k, "a number", Value::as_f64)
    }

    fn bool_opt(&self, k: &str) -> Result<Option<bool>> {
        self.typed_opt(k, "true or false", Value::as_bool)
    }

    fn str_opt(&self, k: &str) -> Result<Option<&'a str>> {
        self.typed_opt(k, "a string", Value::as_str)
    }

    fn usize_list_opt(&self, k: &str) -> Result<Option<Vec<usize>>> {
        self.list_opt(k, "integers", |v| v.as_u64().map(|x| x as usize))
    }

    fn f64_list_opt(&self, k: &str) -> Result<Option<Vec<f64>>> {
        self.list_opt(k, "numbers", Value::as_f64)
    }

    /// An id or a list of ids (`eos_token_id` may be either).
    fn ids_opt(&self, k: &str) -> Result<Vec<u32>> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).ok_or_else(|| {
                ModelError::config(
                    self.path,
                    self.key(k),
                    format!("expected a token id, found {n}"),
                )
            }),
            Some(Value::Array(_)) => Ok(self
                .usize_list_opt(k)?
                .unwrap_or_default()
                .into_iter()
                .map(|x| x as u32)
                .collect()),
            Some(v) => Err(ModelError::config(
                self.path,
                self.key(k),
                format!("expected a token id or a list, found {v}"),
            )),
        }
    }

    fn require<T>(&self, k: &str, v: Option<T>) -> Result<T> {
        v.ok_or_else(|| ModelError::config(self.path, self.key(k), "missing"))
    }
}

/// Reads and parses a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl ModelConfig {
    /// Reads `DIR/config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let value = read_json(&path)?;
        Self::from_value(&value, &path)
    }

    /// Parses a config already read as JSON; `path` names it in errors.
    pub fn from_value(value: &Value, path: &Path) -> Result<Self> {
        let map = value
            .as_object()
            .ok_or_else(|| ModelError::config(path, "<root>", "expected a JSON object"))?;
        let root = Obj {
            path,
            prefix: String::new(),
            map,
        };
        let family = detect_family(&root)?;
        let text_obj = root.child("text_config")?;
        let shape = if text_obj.is_some() {
            ConfigShape::Nested
        } else {
            ConfigShape::FlatLegacy
        };
        let text = parse_text(&root, text_obj.as_ref())?;
        let vision_obj = root
            .child("vision_config")?
            .ok_or_else(|| ModelError::config(path, "vision_config", "missing"))?;
        let vision = parse_vision(family, &vision_obj)?;

        let tie_root = root.bool_opt("tie_word_embeddings")?;
        let tie_text = match &text_obj {
            Some(t) => t.bool_opt("tie_word_embeddings")?,
            None => None,
        };
        // transformers: the top-level flag, turned on when the text config ties.
        let tie_word_embeddings = tie_root.unwrap_or(false) || tie_text.unwrap_or(false);

        let id = |k: &str, default: u32| -> Result<u32> {
            Ok(root.usize_opt(k)?.map(|x| x as u32).unwrap_or(default))
        };
        let mut eos_token_ids = root.ids_opt("eos_token_id")?;
        if let Some(t) = &text_obj {
            for id in t.ids_opt("eos_token_id")? {
                if !eos_token_ids.contains(&id) {
                    eos_token_ids.push(id);
                }
            }
        }
        let stored_dtype = root
            .str_opt("torch_dtype")?
            .or(root.str_opt("dtype")?)
            .map(str::to_string);

        let cfg = ModelConfig {
            family,
            text,
            vision,
            tie_word_embeddings,
            image_token_id: id("image_token_id", 151655)?,
            video_token_id: id("video_token_id", 151656)?,
            vision_start_token_id: id("vision_start_token_id", 151652)?,
            vision_end_token_id: id("vision_end_token_id", 151653)?,
            eos_token_ids,
            stored_dtype,
            shape,
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let t = &self.text;
        let tk = |k: &str| match self.shape {
            ConfigShape::Nested => format!("text_config.{k}"),
            ConfigShape::FlatLegacy => k.to_string(),
        };
        if t.num_attention_heads == 0 || !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(ModelError::config(
                path,
                tk("num_attention_heads"),
                format!(
                    "hidden_size {} is not a multiple of {} heads",
                    t.hidden_size, t.num_attention_heads
                ),
            ));
        }
        if t.num_key_value_heads == 0
            || !t.num_attention_heads.is_multiple_of(t.num_key_value_heads)
        {
            return Err(ModelError::config(
                path,
                tk("num_key_value_heads"),
                format!(
                    "{} query heads are not a multiple of {} key/value heads",
                    t.num_attention_heads, t.num_key_value_heads
                ),
            ));
        }
        if !t.head_dim.is_multiple_of(2) {
            return Err(ModelError::config(
                path,
                tk("hidden_size"),
                "head dimension must be even for rotary embeddings",
            ));
        }
        let sections: usize = t.mrope_section.iter().sum();
        if t.mrope_section.len() != 3 || sections * 2 != t.head_dim {
            return Err(ModelError::config(
                path,
                "mrope_section",
                format!(
                    "{:?} must have 3 entries summing to head_dim/2 = {}",
                    t.mrope_section,
                    t.head_dim / 2
                ),
            ));
        }
        let v = &self.vision;
        if v.num_heads == 0
            || !v.hidden_size.is_multiple_of(v.num_heads)
            || !v.head_dim().is_multiple_of(4)
        {
            return Err(ModelError::config(
                path,
                "vision_config.num_heads",
                format!(
                    "vision width {} must split into {} heads of a multiple of 4",
                    v.hidden_size, v.num_heads
                ),
            ));
        }
        if v.spatial_merge_size == 0 || v.patch_size == 0 || v.temporal_patch_size == 0 {
            return Err(ModelError::config(
                path,
                "vision_config",
                "patch_size, temporal_patch_size and spatial_merge_size must be positive",
            ));
        }
        if let Some(w) = v.window_size
            && (w < v.patch_size * v.spatial_merge_size
                || w % (v.patch_size * v.spatial_merge_size) != 0)
        {
            return Err(ModelError::config(
                path,
                "vision_config.window_size",
                format!(
                    "{w} must be a positive multiple of patch_size * spatial_merge_size = {}",
                    v.patch_size * v.spatial_merge_size
                ),
            ));
        }
        if let Some(&b) = v.fullatt_block_indexes.iter().find(|&&b| b >= v.depth) {
            return Err(ModelError::config(
                path,
                "vision_config.fullatt_block_indexes",
                format!("block {b} is beyond depth {}", v.depth),
            ));
        }
        if self.vision.out_hidden_size != self.text.hidden_size {
            return Err(ModelError::config(
                path,
                match self.family {
                    Family::Qwen2Vl => "vision_config.hidden_size",
                    Family::Qwen25Vl => "vision_config.out_hidden_size",
                },
                format!(
                    "the merger's output width {} differs from the language model's hidden_size {}",
                    self.vision.out_hidden_size, self.text.hidden_size
                ),
            ));
        }
        Ok(())
    }

    /// Number of parameters the config implies (for reports and memory estimates).
    pub fn parameter_count(&self) -> usize {
        let t = &self.text;
        let kv = t.num_key_value_heads * t.head_dim;
        let layer = t.hidden_size * t.hidden_size * 2 // q, o
            + t.hidden_size * kv * 2 // k, v
            + t.hidden_size + 2 * kv // biases
            + 3 * t.hidden_size * t.intermediate_size
            + 2 * t.hidden_size;
        let text = t.vocab_size * t.hidden_size * if self.tie_word_embeddings { 1 } else { 2 }
            + t.num_hidden_layers * layer
            + t.hidden_size;
        let v = &self.vision;
        let mlp = match self.family {
            Family::Qwen2Vl => {
                2 * v.hidden_size * v.intermediate_size + v.intermediate_size + v.hidden_size
            }
            Family::Qwen25Vl => {
                3 * v.hidden_size * v.intermediate_size + 2 * v.intermediate_size + v.hidden_size
            }
        };
        let norms = match self.family {
            Family::Qwen2Vl => 4 * v.hidden_size,
            Family::Qwen25Vl => 2 * v.hidden_size,
        };
        let block = 4 * v.hidden_size * v.hidden_size + 4 * v.hidden_size + mlp + norms;
        let merged = v.hidden_size * v.spatial_merge_size * v.spatial_merge_size;
        let merger = merged * merged
            + merged
            + merged * v.out_hidden_size
            + v.out_hidden_size
            + 2 * v.hidden_size;
        text + v.depth * block + merger + v.patch_dim() * v.hidden_size
    }
}

fn detect_family(root: &Obj<'_>) -> Result<Family> {
    const SUPPORTED: &str = "qwen2_vl (Qwen2VLForConditionalGeneration), qwen2_5_vl (Qwen2_5_VLForConditionalGeneration)";
    if let Some(mt) = root.str_opt("model_type")? {
        return match mt {
            "qwen2_vl" => Ok(Family::Qwen2Vl),
            "qwen2_5_vl" => Ok(Family::Qwen25Vl),
            other => Err(ModelError::UnsupportedArchitecture {
                path: root.path.to_path_buf(),
                key: "model_type".into(),
                found: other.into(),
                supported: SUPPORTED.into(),
            }),
        };
    }
    if let Some(Value::Array(archs)) = root.get("architectures") {
        for a in archs.iter().filter_map(Value::as_str) {
            match a {
                "Qwen2VLForConditionalGeneration" | "Qwen2VLModel" => return Ok(Family::Qwen2Vl),
                "Qwen2_5_VLForConditionalGeneration" | "Qwen2_5_VLModel" => {
                    return Ok(Family::Qwen25Vl);
                }
                _ => {}
            }
        }
        let found = archs
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ModelError::UnsupportedArchitecture {
            path: root.path.to_path_buf(),
            key: "architectures".into(),
            found,
            supported: SUPPORTED.into(),
        });
    }
    Err(ModelError::config(
        root.path,
        "model_type",
        "missing (and no `architectures` either)",
    ))
}

fn parse_text(root: &Obj<'_>, text: Option<&Obj<'_>>) -> Result<TextConfig> {
    // A key is read from `text_config` when there is one, else from the top level (legacy).
    let src = text.unwrap_or(root);
    let req = |k: &str| -> Result<usize> {
        let v = src.usize_opt(k)?;
        let v = match (v, text) {
            (None, Some(_)) => root.usize_opt(k)?,
            (v, _) => v,
        };
        src.require(k, v)
    };
    let vocab_size = req("vocab_size")?;
    let hidden_size = req("hidden_size")?;
    let intermediate_size = req("intermediate_size")?;
    let num_hidden_layers = req("num_hidden_layers")?;
    let num_attention_heads = req("num_attention_heads")?;
    let num_key_value_heads = src
        .usize_opt("num_key_value_heads")?
        .unwrap_or(num_attention_heads);
    let rms_norm_eps = src.f64_opt("rms_norm_eps")?.unwrap_or(1e-5);
    if let Some(act) = src.str_opt("hidden_act")?
        && act != "silu"
    {
        return Err(ModelError::config(
            src.path,
            src.key("hidden_act"),
            format!("`{act}` is not supported (Qwen2 uses silu)"),
        ));
    }
    if src.bool_opt("use_sliding_window")?.unwrap_or(false) {
        return Err(ModelError::config(
            src.path,
            src.key("use_sliding_window"),
            "sliding-window attention in the language model is not supported (no released Qwen2-VL checkpoint enables it)",
        ));
    }

    // Rotary parameters: `rope_parameters` (transformers 5) or `rope_scaling` + `rope_theta`.
    let mut rope_theta = src.f64_opt("rope_theta")?.or(root.f64_opt("rope_theta")?);
    let mut mrope_section = None;
    for holder in [src, root] {
        for key in ["rope_parameters", "rope_scaling"] {
            if let Some(rp) = holder.child(key)? {
                if let Some(kind) = rp.str_opt("rope_type")?.or(rp.str_opt("type")?)
                    && !matches!(kind, "default" | "mrope")
                {
                    return Err(ModelError::config(
                        rp.path,
                        rp.key("rope_type"),
                        format!(
                            "rotary scaling `{kind}` is not supported (expected mrope/default)"
                        ),
                    ));
                }
                if rope_theta.is_none() {
                    rope_theta = rp.f64_opt("rope_theta")?;
                }
                if mrope_section.is_none() {
                    mrope_section = rp.usize_list_opt("mrope_section")?;
                }
            }
        }
    }
    Ok(TextConfig {
        vocab_size,
        hidden_size,
        intermediate_size,
        num_hidden_layers,
        num_attention_heads,
        num_key_value_heads,
        head_dim: hidden_size.checked_div(num_attention_heads).unwrap_or(0),
        rms_norm_eps,
        rope_theta: rope_theta.unwrap_or(1_000_000.0),
        mrope_section: mrope_section.unwrap_or_else(|| vec![16, 24, 24]),
    })
}

fn parse_act(v: &Obj<'_>, default: VisionAct) -> Result<VisionAct> {
    match v.str_opt("hidden_act")? {
        None => Ok(default),
        Some("quick_gelu") => Ok(VisionAct::QuickGelu),
        Some("silu") | Some("swish") => Ok(VisionAct::Silu),
        Some("gelu") => Ok(VisionAct::Gelu),
        Some("gelu_pytorch_tanh") | Some("gelu_new") => Ok(VisionAct::GeluTanh),
        Some(other) => Err(ModelError::config(
            v.path,
            v.key("hidden_act"),
            format!("activation `{other}` is not supported"),
        )),
    }
}

fn parse_vision(family: Family, v: &Obj<'_>) -> Result<VisionConfig> {
    let in_channels = match v.usize_opt("in_channels")? {
        Some(c) => c,
        None => v.usize_opt("in_chans")?.unwrap_or(3),
    };
    let patch_size = v.usize_opt("patch_size")?.unwrap_or(14);
    let temporal_patch_size = v.usize_opt("temporal_patch_size")?.unwrap_or(2);
    let spatial_merge_size = v.usize_opt("spatial_merge_size")?.unwrap_or(2);
    let depth = v.usize_opt("depth")?.unwrap_or(32);
    let num_heads = v.usize_opt("num_heads")?.unwrap_or(16);
    let rope_theta = match v.child("rope_parameters")? {
        Some(rp) => rp.f64_opt("rope_theta")?.unwrap_or(10_000.0),
        None => 10_000.0,
    };
    // transformers' class defaults apply to keys a file leaves out.
    match family {
        Family::Qwen2Vl => {
            let embed_dim = v.usize_opt("embed_dim")?.unwrap_or(1280);
            let mlp_ratio = v.f64_opt("mlp_ratio")?.unwrap_or(4.0);
            Ok(VisionConfig {
                depth,
                hidden_size: embed_dim,
                intermediate_size: (embed_dim as f64 * mlp_ratio) as usize,
                num_heads,
                out_hidden_size: v.usize_opt("hidden_size")?.unwrap_or(3584),
                patch_size,
                temporal_patch_size,
                spatial_merge_size,
                in_channels,
                act: parse_act(v, VisionAct::QuickGelu)?,
                window_size: None,
                fullatt_block_indexes: Vec::new(),
                rope_theta,
            })
        }
        Family::Qwen25Vl => Ok(VisionConfig {
            depth,
            hidden_size: v.usize_opt("hidden_size")?.unwrap_or(3584),
            intermediate_size: v.usize_opt("intermediate_size")?.unwrap_or(3420),
            num_heads,
            out_hidden_size: v.usize_opt("out_hidden_size")?.unwrap_or(3584),
            patch_size,
            temporal_patch_size,
            spatial_merge_size,
            in_channels,
            act: parse_act(v, VisionAct::Silu)?,
            window_size: Some(v.usize_opt("window_size")?.unwrap_or(112)),
            fullatt_block_indexes: v
                .usize_list_opt("fullatt_block_indexes")?
                .unwrap_or_else(|| vec![7, 15, 23, 31]),
            rope_theta,
        }),
    }
}

/// The image preprocessor's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessorConfig {
    /// Lower bound on resized pixels (`min_pixels` / `size.shortest_edge`).
    pub min_pixels: usize,
    /// Upper bound on resized pixels (`max_pixels` / `size.longest_edge`).
    pub max_pixels: usize,
    /// Patch side, pixels.
    pub patch_size: usize,
    /// Frames per temporal patch.
    pub temporal_patch_size: usize,
    /// Merge size (2x2 patches per token).
    pub merge_size: usize,
    /// Per-channel mean.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation.
    pub image_std: [f32; 3],
    /// Scale applied to 0..255 values (1/255).
    pub rescale_factor: f32,
    /// Whether to resize.
    pub do_resize: bool,
    /// Whether to rescale.
    pub do_rescale: bool,
    /// Whether to normalise.
    pub do_normalize: bool,
    /// Where the settings came from.
    pub source: Option<PathBuf>,
}

impl Default for PreprocessorConfig {
    fn default() -> Self {
        Self {
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            image_mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            image_std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
            rescale_factor: 1.0 / 255.0,
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            source: None,
        }
    }
}

impl PreprocessorConfig {
    /// Reads `preprocessor_config.json` (either shape), else the `image_processor` entry of
    /// transformers 5's `processor_config.json`, else transformers' defaults.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let flat = dir.join("preprocessor_config.json");
        if flat.is_file() {
            let v = read_json(&flat)?;
            let map = v
                .as_object()
                .ok_or_else(|| ModelError::config(&flat, "<root>", "expected a JSON object"))?;
            return Self::from_obj(&Obj {
                path: &flat,
                prefix: String::new(),
                map,
            });
        }
        let nested = dir.join("processor_config.json");
        if nested.is_file() {
            let v = read_json(&nested)?;
            let map = v
                .as_object()
                .ok_or_else(|| ModelError::config(&nested, "<root>", "expected a JSON object"))?;
            let root = Obj {
                path: &nested,
                prefix: String::new(),
                map,
            };
            if let Some(ip) = root.child("image_processor")? {
                return Self::from_obj(&ip);
            }
        }
        Ok(Self::default())
    }

    fn from_obj(o: &Obj<'_>) -> Result<Self> {
        let mut c = Self::default();
        // transformers: `size` first, then `min_pixels`/`max_pixels` override it.
        if let Some(size) = o.child("size")? {
            if let Some(x) = size
                .usize_opt("shortest_edge")?
                .or(size.usize_opt("min_pixels")?)
            {
                c.min_pixels = x;
            }
            if let Some(x) = size
                .usize_opt("longest_edge")?
                .or(size.usize_opt("max_pixels")?)
            {
                c.max_pixels = x;
            }
        }
        if let Some(x) = o.usize_opt("min_pixels")? {
            c.min_pixels = x;
        }
        if let Some(x) = o.usize_opt("max_pixels")? {
            c.max_pixels = x;
        }
        if let Some(x) = o.usize_opt("patch_size")? {
            c.patch_size = x;
        }
        if let Some(x) = o.usize_opt("temporal_patch_size")? {
            c.temporal_patch_size = x;
        }
        if let Some(x) = o.usize_opt("merge_size")? {
            c.merge_size = x;
        }
        let triple = |k: &str, cur: [f32; 3]| -> Result<[f32; 3]> {
            match o.f64_list_opt(k)? {
                None => Ok(cur),
                Some(v) if v.len() == 3 => Ok([v[0] as f32, v[1] as f32, v[2] as f32]),
                Some(v) => Err(ModelError::config(
                    o.path,
                    o.key(k),
                    format!("expected 3 values, found {}", v.len()),
                )),
            }
        };
        c.image_mean = triple("image_mean", c.image_mean)?;
        c.image_std = triple("image_std", c.image_std)?;
        if c.image_std.iter().any(|s| *s <= 0.0) {
            return Err(ModelError::config(
                o.path,
                o.key("image_std"),
                "must be positive",
            ));
        }
        if let Some(x) = o.f64_opt("rescale_factor")? {
            c.rescale_factor = x as f32;
        }
        if let Some(x) = o.bool_opt("do_resize")? {
            c.do_resize = x;
        }
        if let Some(x) = o.bool_opt("do_rescale")? {
            c.do_rescale = x;
        }
        if let Some(x) = o.bool_opt("do_normalize")? {
            c.do_normalize = x;
        }
        if c.min_pixels > c.max_pixels {
            return Err(ModelError::config(
                o.path,
                o.key("min_pixels"),
                format!(
                    "min_pixels {} exceeds max_pixels {}",
                    c.min_pixels, c.max_pixels
                ),
            ));
        }
        if c.patch_size == 0 || c.merge_size == 0 || c.temporal_patch_size == 0 {
            return Err(ModelError::config(
                o.path,
                o.key("patch_size"),
                "patch_size, merge_size and temporal_patch_size must be positive",
            ));
        }
        c.source = Some(o.path.to_path_buf());
        Ok(c)
    }
}

/// Sampling defaults a checkpoint ships in `generation_config.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationDefaults {
    /// End-of-sequence ids.
    pub eos_token_ids: Vec<u32>,
    /// Whether the checkpoint samples by default.
    pub do_sample: Option<bool>,
    /// Temperature.
    pub temperature: Option<f64>,
    /// Top-k.
    pub top_k: Option<usize>,
    /// Top-p.
    pub top_p: Option<f64>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f64>,
}

impl GenerationDefaults {
    /// Reads `DIR/generation_config.json`; an absent file gives empty defaults.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("generation_config.json");
        if !path.is_file() {
            return Ok(Self::default());
        }
        let v = read_json(&path)?;
        let map = v
            .as_object()
            .ok_or_else(|| ModelError::config(&path, "<root>", "expected a JSON object"))?;
        let o = Obj {
            path: &path,
            prefix: String::new(),
            map,
        };
        Ok(Self {
            eos_token_ids: o.ids_opt("eos_token_id")?,
            do_sample: o.bool_opt("do_sample")?,
            temperature: o.f64_opt("temperature")?,
            top_k: o.usize_opt("top_k")?,
            top_p: o.f64_opt("top_p")?,
            repetition_penalty: o.f64_opt("repetition_penalty")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn legacy_2b() -> Value {
        // The shape of Qwen2-VL-2B-Instruct's config.json.
        json!({
            "architectures": ["Qwen2VLForConditionalGeneration"],
            "bos_token_id": 151643, "eos_token_id": 151645,
            "vision_start_token_id": 151652, "vision_end_token_id": 151653,
            "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656,
            "hidden_act": "silu", "hidden_size": 1536, "intermediate_size": 8960,
            "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2_vl",
            "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
            "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
            "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16,
                "in_chans": 3, "hidden_size": 1536, "patch_size": 14, "spatial_merge_size": 2,
                "spatial_patch_size": 14, "temporal_patch_size": 2},
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            "vocab_size": 151936
        })
    }

    #[test]
    fn parses_the_legacy_2b_config() {
        let c = ModelConfig::from_value(&legacy_2b(), Path::new("config.json")).unwrap();
        assert_eq!(c.family, Family::Qwen2Vl);
        assert_eq!(c.shape, ConfigShape::FlatLegacy);
        assert_eq!(c.text.hidden_size, 1536);
        assert_eq!(c.text.head_dim, 128);
        assert_eq!(c.text.mrope_section, vec![16, 24, 24]);
        assert_eq!(c.text.rope_theta, 1e6);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.vision.hidden_size, 1280);
        assert_eq!(c.vision.intermediate_size, 5120);
        assert_eq!(c.vision.out_hidden_size, 1536);
        assert_eq!(c.vision.act, VisionAct::QuickGelu);
        assert_eq!(c.eos_token_ids, vec![151645]);
        // ~2.2 B parameters.
        let p = c.parameter_count();
        assert!((2_100_000_000..2_300_000_000).contains(&p), "{p}");
    }

    #[test]
    fn parses_a_nested_qwen2_5_config() {
        let v = json!({
            "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
            "image_token_id": 405, "video_token_id": 406, "vision_start_token_id": 403,
            "vision_end_token_id": 404, "tie_word_embeddings": false,
            "text_config": {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rms_norm_eps": 1e-6, "hidden_act": "silu",
                "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 2, 2]}},
            "vision_config": {"depth": 3, "hidden_size": 32, "intermediate_size": 48, "out_hidden_size": 64,
                "num_heads": 4, "window_size": 56, "fullatt_block_indexes": [1], "in_channels": 3,
                "rope_parameters": {"rope_theta": 10000.0, "rope_type": "axial"}}
        });
        let c = ModelConfig::from_value(&v, Path::new("config.json")).unwrap();
        assert_eq!(c.family, Family::Qwen25Vl);
        assert_eq!(c.shape, ConfigShape::Nested);
        assert_eq!(c.text.mrope_section, vec![4, 2, 2]);
        assert_eq!(c.vision.window_size, Some(56));
        assert_eq!(c.vision.fullatt_block_indexes, vec![1]);
        assert_eq!(c.vision.act, VisionAct::Silu);
        assert_eq!(c.image_token_id, 405);
        assert!(!c.tie_word_embeddings);
    }

    #[test]
    fn errors_name_the_key() {
        let mut v = legacy_2b();
        v.as_object_mut().unwrap().remove("hidden_size");
        let e = ModelConfig::from_value(&v, Path::new("/m/config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/m/config.json") && e.contains("hidden_size") && e.contains("missing"),
            "{e}"
        );

        let mut v = legacy_2b();
        v["model_type"] = json!("llava");
        let e = ModelConfig::from_value(&v, Path::new("config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unsupported architecture `llava`") && e.contains("model_type"),
            "{e}"
        );

        let mut v = legacy_2b();
        v["rope_scaling"]["mrope_section"] = json!([16, 24, 20]);
        let e = ModelConfig::from_value(&v, Path::new("config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mrope_section"), "{e}");

        let mut v = legacy_2b();
        v["num_attention_heads"] = json!("twelve");
        let e = ModelConfig::from_value(&v, Path::new("config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("num_attention_heads") && e.contains("integer"),
            "{e}"
        );
    }
}
