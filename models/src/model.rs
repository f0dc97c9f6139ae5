//! The whole model: vision tower + language model, loaded from a Hub checkpoint directory, with
//! the prompt-level operations generation needs (encode images, prefill, decode one token).

use std::path::Path;
use std::time::Instant;

use burn::tensor::{DType, Tensor};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::image::ProcessedImage;
use crate::nn::{Runtime, WeightSource};
use crate::rope::{MropePositions, mrope_positions, text_cos_sin};
use crate::text::{KvCache, TextModel};
use crate::vision::VisionTower;
use crate::weights::WeightStore;

/// A loaded Qwen2-VL or Qwen2.5-VL.
pub struct QwenVl {
    /// The checkpoint's configuration.
    pub config: ModelConfig,
    rt: Runtime,
    vision: VisionTower,
    text: TextModel,
}

/// The outcome of a prefill.
pub struct Prefill {
    /// Logits of the last prompt token `[vocab]`.
    pub last_logits: Vec<f32>,
    /// Logits of every prompt token `[T, vocab]`, when asked for.
    pub all_logits: Option<Tensor<2>>,
    /// The prompt's M-RoPE positions (for decoding to continue them).
    pub positions: MropePositions,
}

/// Reads a tensor back to the host as f32.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| ModelError::Compute(format!("reading a tensor back failed: {e:?}")))
}

impl QwenVl {
    /// Loads `DIR` (config.json + safetensors) onto `rt`'s device in `rt`'s dtype.
    pub fn load(dir: &Path, rt: Runtime) -> Result<Self> {
        let config = ModelConfig::from_dir(dir)?;
        let store = WeightStore::open(dir)?;
        Self::from_source(config, &store, rt)
    }

    /// Builds the model from any weight source (a checkpoint, or random weights).
    pub fn from_source(config: ModelConfig, src: &dyn WeightSource, rt: Runtime) -> Result<Self> {
        let t0 = Instant::now();
        let vision = VisionTower::load(src, &rt, config.family, &config.vision)?;
        let text = TextModel::load(src, &rt, &config.text, config.tie_word_embeddings)?;
        tracing::debug!("weights loaded in {:.2} s", t0.elapsed().as_secs_f64());
        Ok(Self {
            config,
            rt,
            vision,
            text,
        })
    }

    /// Where and how the model computes.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// Merge size of the vision tower (2).
    pub fn merge_size(&self) -> usize {
        self.config.vision.spatial_merge_size
    }

    /// Encodes images given as flat patches `[N, patch_dim]` with their grids; returns one row
    /// per image token.
    pub fn encode_pixels(&self, pixel_values: Vec<f32>, grids: &[[usize; 3]]) -> Result<Tensor<2>> {
        let pd = self.config.vision.patch_dim();
        if !pixel_values.len().is_multiple_of(pd) {
            return Err(ModelError::Input(format!(
                "pixel_values has {} values, not a multiple of the patch size {pd}",
                pixel_values.len()
            )));
        }
        let n = pixel_values.len() / pd;
        let x = self.rt.tensor(pixel_values, [n, pd]);
        self.vision.forward(&self.rt, x, grids)
    }

    /// Encodes processed images (in prompt order).
    pub fn encode_images(&self, images: &[ProcessedImage]) -> Result<Option<Tensor<2>>> {
        if images.is_empty() {
            return Ok(None);
        }
        let grids: Vec<[usize; 3]> = images.iter().map(|i| i.grid_thw).collect();
        let pv: Vec<f32> = images
            .iter()
            .flat_map(|i| i.pixel_values.iter().copied())
            .collect();
        self.encode_pixels(pv, &grids).map(Some)
    }

    /// Runs the prompt through the language model (image rows from `image_embeds` replace the
    /// `<|image_pad|>` tokens in order), filling `cache`.
    pub fn prefill(
        &self,
        input_ids: &[u32],
        image_embeds: Option<Tensor<2>>,
        grids: &[[usize; 3]],
        cache: &mut KvCache,
        all_logits: bool,
    ) -> Result<Prefill> {
        let t = input_ids.len();
        if t == 0 {
            return Err(ModelError::Input("empty prompt".into()));
        }
        let vocab = self.config.text.vocab_size;
        if let Some(&bad) = input_ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary ({vocab})"
            )));
        }
        if !cache.is_empty() {
            return Err(ModelError::Input("prefill needs an empty KV cache".into()));
        }
        let image_id = self.config.image_token_id;
        let positions = mrope_positions(input_ids, image_id, grids, self.merge_size())?;
        let n_image_tokens = input_ids.iter().filter(|&&id| id == image_id).count();
        let ids = self
            .rt
            .indices(input_ids.iter().map(|&i| i as i64).collect());
        let mut x = self.text.embed(ids);
        match image_embeds {
            Some(emb) => {
                let [rows, _] = emb.dims();
                if rows != n_image_tokens {
                    return Err(ModelError::Input(format!(
                        "{n_image_tokens} image tokens in the prompt but {rows} image embeddings"
                    )));
                }
                let mut next = t as i64;
                let index: Vec<i64> = input_ids
                    .iter()
                    .enumerate()
                    .map(|(i, &id)| {
                        if id == image_id {
                            next += 1;
                            next - 1
                        } else {
                            i as i64
                        }
                    })
                    .collect();
                x = Tensor::cat(vec![x, emb], 0).select(0, self.rt.indices(index));
            }
            None if n_image_tokens > 0 => {
                return Err(ModelError::Input(format!(
                    "{n_image_tokens} image tokens in the prompt but no images"
                )));
            }
            None => {}
        }
        let tc = &self.config.text;
        let (cos, sin) = text_cos_sin(
            [
                &positions.streams[0],
                &positions.streams[1],
                &positions.streams[2],
            ],
            tc.head_dim,
            tc.rope_theta,
            &tc.mrope_section,
        );
        let cos = self.rt.tensor(cos, [t, tc.head_dim]);
        let sin = self.rt.tensor(sin, [t, tc.head_dim]);
        let hidden = self.text.forward(&self.rt, x, cos, sin, cache);
        let (last_logits, all) = if all_logits {
            let logits = self.text.logits(hidden);
            let last = to_host(logits.clone().narrow(0, t - 1, 1))?;
            (last, Some(logits))
        } else {
            (to_host(self.text.logits(hidden.narrow(0, t - 1, 1)))?, None)
        };
        Ok(Prefill {
            last_logits,
            all_logits: all,
            positions,
        })
    }

    /// Feeds one token at sequence index `cache.len()`, whose M-RoPE position is
    /// `cache.len() + rope_delta` on all three streams; returns its logits.
    pub fn decode(&self, token: u32, rope_delta: i64, cache: &mut KvCache) -> Result<Vec<f32>> {
        let vocab = self.config.text.vocab_size;
        if token as usize >= vocab {
            return Err(ModelError::Input(format!(
                "token id {token} is outside the vocabulary ({vocab})"
            )));
        }
        let pos = cache.len() as i64 + rope_delta;
        let tc = &self.config.text;
        let p = [pos];
        let (cos, sin) = text_cos_sin([&p, &p, &p], tc.head_dim, tc.rope_theta, &tc.mrope_section);
        let cos = self.rt.tensor(cos, [1, tc.head_dim]);
        let sin = self.rt.tensor(sin, [1, tc.head_dim]);
        let x = self.text.embed(self.rt.indices(vec![token as i64]));
        let hidden = self.text.forward(&self.rt, x, cos, sin, cache);
        to_host(self.text.logits(hidden))
    }

    /// Bytes of weights read per decoded token (the language model and its head).
    pub fn decode_weight_bytes(&self) -> usize {
        let t = &self.config.text;
        let kv = t.num_key_value_heads * t.head_dim;
        let per_layer = 2 * t.hidden_size * t.hidden_size
            + 2 * t.hidden_size * kv
            + 3 * t.hidden_size * t.intermediate_size;
        let elems = t.num_hidden_layers * per_layer + t.vocab_size * t.hidden_size;
        elems * dtype_size(self.rt.dtype)
    }
}

/// Bytes per element of a float dtype.
pub fn dtype_size(d: DType) -> usize {
    match d {
        DType::F64 => 8,
        DType::F16 | DType::BF16 => 2,
        _ => 4,
    }
}
