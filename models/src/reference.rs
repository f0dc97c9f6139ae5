//! Reference dumps (transformers' logits and greedy tokens for a prompt) and the parity check
//! `ember model check` runs against them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};
use crate::model::{QwenVl, to_host};
use crate::text::KvCache;

/// A reference dump, as `models/scripts/make_fixtures.py` writes it.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The file.
    pub path: PathBuf,
    /// The prompt, image pads expanded.
    pub input_ids: Vec<u32>,
    /// All images' patches `[N * patch_dim]`.
    pub pixel_values: Vec<f32>,
    /// Patch rows.
    pub n_patches: usize,
    /// `(t, h, w)` per image.
    pub grids: Vec<[usize; 3]>,
    /// transformers' logits `[T * vocab]`.
    pub logits: Vec<f32>,
    /// Vocabulary size (the logits' last axis).
    pub vocab: usize,
    /// The prompt followed by transformers' greedy continuation.
    pub generated: Vec<u32>,
    /// transformers' image embeddings `[n_image_tokens * hidden]`, when dumped.
    pub image_embeds: Option<Vec<f32>>,
    /// transformers' M-RoPE positions `[3 * T]`, when dumped.
    pub position_ids: Option<Vec<i64>>,
    /// The file's string metadata (prompt, messages, versions).
    pub metadata: HashMap<String, String>,
}

struct Tensors<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl Tensors<'_> {
    fn err(&self, message: String) -> ModelError {
        ModelError::Reference {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn get(&self, name: &str, dtype: Dtype, rank: usize) -> Result<Option<(Vec<usize>, &[u8])>> {
        let t = match self.st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        if t.dtype() != dtype {
            return Err(self.err(format!("`{name}` is {:?}, expected {dtype:?}", t.dtype())));
        }
        if t.shape().len() != rank {
            return Err(self.err(format!(
                "`{name}` has shape {:?}, expected rank {rank}",
                t.shape()
            )));
        }
        Ok(Some((t.shape().to_vec(), t.data())))
    }

    fn required(&self, name: &str, dtype: Dtype, rank: usize) -> Result<(Vec<usize>, &[u8])> {
        self.get(name, dtype, rank)?
            .ok_or_else(|| self.err(format!("missing tensor `{name}`")))
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

fn ids(path: &Path, name: &str, v: Vec<i64>) -> Result<Vec<u32>> {
    v.into_iter()
        .map(|x| {
            u32::try_from(x).map_err(|_| ModelError::Reference {
                path: path.to_path_buf(),
                message: format!("`{name}` holds {x}, not a token id"),
            })
        })
        .collect()
}

impl Reference {
    /// Reads a dump.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Reference {
            path: path.to_path_buf(),
            message: format!("not a safetensors file: {e}"),
        })?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| ModelError::Reference {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let t = Tensors { path, st };
        let (s, b) = t.required("input_ids", Dtype::I64, 2)?;
        if s[0] != 1 {
            return Err(t.err(format!("`input_ids` has batch {}, expected 1", s[0])));
        }
        let input_ids = ids(path, "input_ids", i64s(b))?;
        let tlen = input_ids.len();
        let (s, b) = t.required("logits", Dtype::F32, 3)?;
        if s[0] != 1 || s[1] != tlen {
            return Err(t.err(format!(
                "`logits` has shape {s:?}, expected [1, {tlen}, vocab]"
            )));
        }
        let vocab = s[2];
        let logits = f32s(b);
        let (s, b) = t.required("generated", Dtype::I64, 2)?;
        let generated = ids(path, "generated", i64s(b))?;
        if s[0] != 1 || generated.len() < tlen || generated[..tlen] != input_ids[..] {
            return Err(t.err("`generated` must start with the prompt".into()));
        }
        let (pixel_values, n_patches) = match t.get("pixel_values", Dtype::F32, 2)? {
            Some((s, b)) => (f32s(b), s[0]),
            None => (Vec::new(), 0),
        };
        let grids = match t.get("image_grid_thw", Dtype::I64, 2)? {
            Some((s, b)) => {
                if s[1] != 3 {
                    return Err(t.err(format!("`image_grid_thw` has shape {s:?}, expected [n, 3]")));
                }
                let v = i64s(b);
                v.chunks_exact(3)
                    .map(|c| {
                        let ok = c.iter().all(|&x| x > 0);
                        ok.then(|| [c[0] as usize, c[1] as usize, c[2] as usize])
                            .ok_or_else(|| {
                                t.err(format!("`image_grid_thw` row {c:?} is not positive"))
                            })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            None => Vec::new(),
        };
        let image_embeds = t.get("image_embeds", Dtype::F32, 2)?.map(|(_, b)| f32s(b));
        let position_ids = t.get("position_ids", Dtype::I64, 3)?.map(|(_, b)| i64s(b));
        Ok(Self {
            path: path.to_path_buf(),
            input_ids,
            pixel_values,
            n_patches,
            grids,
            logits,
            vocab,
            generated,
            image_embeds,
            position_ids,
            metadata,
        })
    }

    /// Number of greedy tokens the reference generated.
    pub fn generated_tokens(&self) -> &[u32] {
        &self.generated[self.input_ids.len()..]
    }
}

/// What `ember model check` found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// Prompt length.
    pub prompt_tokens: usize,
    /// Images in the prompt.
    pub images: usize,
    /// Largest absolute difference between our logits and the reference's, over the prompt.
    pub max_abs_logit_diff: f32,
    /// Largest absolute difference of the image embeddings, when the reference has them.
    pub max_abs_image_embed_diff: Option<f32>,
    /// Whether our M-RoPE positions equal the reference's, when it has them.
    pub positions_match: Option<bool>,
    /// The reference's greedy tokens.
    pub expected_tokens: Vec<u32>,
    /// Ours.
    pub tokens: Vec<u32>,
}

impl CheckReport {
    /// Whether the greedy tokens are identical.
    pub fn tokens_match(&self) -> bool {
        self.tokens == self.expected_tokens
    }

    /// Whether the check passes at `tolerance` on the logits.
    pub fn passes(&self, tolerance: f32) -> bool {
        self.max_abs_logit_diff <= tolerance
            && self.tokens_match()
            && self.positions_match != Some(false)
    }
}

/// Index of the largest value (the first, on ties, as torch's argmax).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}

/// Runs the reference's prompt through `model`: logits over the whole prompt, image embeddings,
/// positions, and greedy decoding with the KV cache for as many tokens as the reference has.
pub fn check(model: &QwenVl, r: &Reference) -> Result<CheckReport> {
    if r.vocab != model.config.text.vocab_size {
        return Err(ModelError::Reference {
            path: r.path.clone(),
            message: format!(
                "logits have vocab {} but the model has {}",
                r.vocab, model.config.text.vocab_size
            ),
        });
    }
    let embeds = if r.grids.is_empty() {
        None
    } else {
        Some(model.encode_pixels(r.pixel_values.clone(), &r.grids)?)
    };
    let max_abs_image_embed_diff = match (&embeds, &r.image_embeds) {
        (Some(e), Some(re)) => {
            let ours = to_host(e.clone())?;
            if ours.len() != re.len() {
                return Err(ModelError::Reference {
                    path: r.path.clone(),
                    message: format!("image_embeds has {} values, ours {}", re.len(), ours.len()),
                });
            }
            Some(max_abs_diff(&ours, re))
        }
        _ => None,
    };
    let mut cache = KvCache::new();
    let pre = model.prefill(&r.input_ids, embeds, &r.grids, &mut cache, true)?;
    let logits = to_host(
        pre.all_logits
            .ok_or_else(|| ModelError::Compute("prefill returned no logits".into()))?,
    )?;
    let max_abs_logit_diff = max_abs_diff(&logits, &r.logits);
    let positions_match = r.position_ids.as_ref().map(|p| {
        let ours: Vec<i64> = pre.positions.streams.iter().flatten().copied().collect();
        &ours == p
    });
    let k = r.generated.len() - r.input_ids.len();
    let mut tokens = Vec::with_capacity(k);
    let mut last = pre.last_logits;
    for i in 0..k {
        let next = argmax(&last) as u32;
        tokens.push(next);
        if i + 1 < k {
            last = model.decode(next, pre.positions.rope_delta, &mut cache)?;
        }
    }
    Ok(CheckReport {
        prompt_tokens: r.input_ids.len(),
        images: r.grids.len(),
        max_abs_logit_diff,
        max_abs_image_embed_diff,
        positions_match,
        expected_tokens: r.generated_tokens().to_vec(),
        tokens,
    })
}
