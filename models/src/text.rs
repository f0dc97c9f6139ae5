//! The Qwen2 decoder: grouped-query attention with q/k/v biases and M-RoPE, RMSNorm, SwiGLU MLP,
//! a KV cache, and a tied or untied output head.

use burn::tensor::activation::silu;
use burn::tensor::{DType, Int, Tensor};

use crate::config::TextConfig;
use crate::error::Result;
use crate::nn::{Linear, RmsNorm, Runtime, WeightSource, apply_rotary, attention, load};

fn names(base: &str) -> Vec<String> {
    vec![
        format!("model.{base}"),
        format!("model.language_model.{base}"),
    ]
}

struct Layer {
    input_norm: RmsNorm,
    post_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// Keys and values of the tokens seen so far, per layer: `[kv_heads, len, head_dim]`.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<3>, Tensor<3>)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.layers.clear();
        self.len = 0;
    }
}

/// The language model.
pub struct TextModel {
    cfg: TextConfig,
    embed: Tensor<2>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// The output head (over the embedding's storage when tied).
    head: Linear,
}

impl TextModel {
    /// Loads the decoder; `tied` reuses the embedding as the output head.
    pub fn load(
        src: &dyn WeightSource,
        rt: &Runtime,
        cfg: &TextConfig,
        tied: bool,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let kv = cfg.num_key_value_heads * cfg.head_dim;
        let i = cfg.intermediate_size;
        let embed_names = names("embed_tokens.weight");
        let er: Vec<&str> = embed_names.iter().map(String::as_str).collect();
        let embed: Tensor<2> = load(src, rt, &er, [cfg.vocab_size, h])?;
        let head_weight = if tied {
            embed.clone()
        } else {
            load::<2>(
                src,
                rt,
                &["lm_head.weight", "model.lm_head.weight"],
                [cfg.vocab_size, h],
            )?
        };
        let head = Linear::from_weight(head_weight, None, rt.linear_blocks);
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = |s: &str| names(&format!("layers.{l}.{s}"));
            layers.push(Layer {
                input_norm: RmsNorm::load(src, rt, &p("input_layernorm"), h, cfg.rms_norm_eps)?,
                post_norm: RmsNorm::load(
                    src,
                    rt,
                    &p("post_attention_layernorm"),
                    h,
                    cfg.rms_norm_eps,
                )?,
                q: Linear::load(
                    src,
                    rt,
                    &p("self_attn.q_proj"),
                    h,
                    cfg.num_attention_heads * cfg.head_dim,
                    true,
                )?,
                k: Linear::load(src, rt, &p("self_attn.k_proj"), h, kv, true)?,
                v: Linear::load(src, rt, &p("self_attn.v_proj"), h, kv, true)?,
                o: Linear::load(
                    src,
                    rt,
                    &p("self_attn.o_proj"),
                    cfg.num_attention_heads * cfg.head_dim,
                    h,
                    false,
                )?,
                gate: Linear::load(src, rt, &p("mlp.gate_proj"), h, i, false)?,
                up: Linear::load(src, rt, &p("mlp.up_proj"), h, i, false)?,
                down: Linear::load(src, rt, &p("mlp.down_proj"), i, h, false)?,
            });
        }
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            norm: RmsNorm::load(src, rt, &names("norm"), h, cfg.rms_norm_eps)?,
            head,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TextConfig {
        &self.cfg
    }

    /// Token embeddings `[T, hidden]`.
    pub fn embed(&self, ids: Tensor<1, Int>) -> Tensor<2> {
        self.embed.clone().select(0, ids)
    }

    /// Runs the decoder over `x [T, hidden]` with rotary tables `cos, sin [T, head_dim]`,
    /// appending to `cache`; returns the final-normed hidden states `[T, hidden]`.
    pub fn forward(
        &self,
        rt: &Runtime,
        x: Tensor<2>,
        cos: Tensor<2>,
        sin: Tensor<2>,
        cache: &mut KvCache,
    ) -> Tensor<2> {
        let cfg = &self.cfg;
        let [t, _] = x.dims();
        let (heads, kvh, hd) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        let groups = heads / kvh;
        let past = cache.len;
        let total = past + t;
        let cos = cos.reshape([1, t, hd]);
        let sin = sin.reshape([1, t, hd]);
        let scale = (hd as f64).powf(-0.5);
        let mask = (t > 1).then(|| causal_mask(rt, groups, t, past));
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        let mut x = x;
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = layer.input_norm.forward(x.clone());
            let q = layer
                .q
                .forward(h.clone())
                .reshape([t, heads, hd])
                .swap_dims(0, 1);
            let k = layer
                .k
                .forward(h.clone())
                .reshape([t, kvh, hd])
                .swap_dims(0, 1);
            let v = layer.v.forward(h).reshape([t, kvh, hd]).swap_dims(0, 1);
            let q = apply_rotary(q, cos.clone(), sin.clone());
            let k = apply_rotary(k, cos.clone(), sin.clone());
            let (k, v) = match slot.take() {
                Some((pk, pv)) => (Tensor::cat(vec![pk, k], 1), Tensor::cat(vec![pv, v], 1)),
                None => (k, v),
            };
            *slot = Some((k.clone(), v.clone()));
            // Query heads h = kv * groups + g share key/value head kv: fold the groups into rows.
            let q = q.reshape([kvh, groups * t, hd]);
            let o = attention(q, k, v, scale, mask.clone());
            let o = o
                .reshape([heads, t, hd])
                .swap_dims(0, 1)
                .reshape([t, heads * hd]);
            x = x + layer.o.forward(o);
            let h = layer.post_norm.forward(x.clone());
            let m = layer
                .down
                .forward(silu(layer.gate.forward(h.clone())) * layer.up.forward(h));
            x = x + m;
        }
        cache.len = total;
        self.norm.forward(x)
    }

    /// Logits `[T, vocab]` of final hidden states.
    pub fn logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        self.head.forward(hidden)
    }
}

/// Additive causal mask `[1, groups * t, past + t]`: row (g, i) sees keys `0..=past + i`.
fn causal_mask(rt: &Runtime, groups: usize, t: usize, past: usize) -> Tensor<3> {
    let s = past + t;
    let neg = if rt.dtype == DType::F16 {
        -65504.0
    } else {
        f32::MIN
    };
    let mut m = vec![0f32; groups * t * s];
    for g in 0..groups {
        for i in 0..t {
            let row = (g * t + i) * s;
            for j in past + i + 1..s {
                m[row + j] = neg;
            }
        }
    }
    rt.tensor(m, [1, groups * t, s])
}
