//! The vision tower: patch embedding (a matmul on flattened patches), 2-D rotary, Qwen2-VL blocks
//! (LayerNorm, QuickGELU MLP) or Qwen2.5-VL blocks (RMSNorm, SiLU-gated MLP, windowed attention
//! with full-attention blocks), and the 2x2 patch merger.

use burn::tensor::Tensor;
use burn::tensor::activation::gelu;

use crate::config::{Family, VisionConfig};
use crate::error::{ModelError, Result};
use crate::nn::{
    LayerNorm, Linear, Norm, RmsNorm, Runtime, WeightSource, activate, apply_rotary,
    segment_attention,
};
use crate::rope::{vision_cos_sin, vision_positions, window_index};

fn names(base: &str) -> Vec<String> {
    vec![format!("visual.{base}"), format!("model.visual.{base}")]
}

// Tensors are large handles; the variants live once per block.
#[allow(clippy::large_enum_variant)]
enum Mlp {
    Plain {
        fc1: Linear,
        fc2: Linear,
    },
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
}

struct Block {
    norm1: Norm,
    norm2: Norm,
    qkv: Linear,
    proj: Linear,
    mlp: Mlp,
}

/// The vision encoder.
pub struct VisionTower {
    cfg: VisionConfig,
    patch_embed: Tensor<2>,
    blocks: Vec<Block>,
    merger_norm: Norm,
    merger_fc1: Linear,
    merger_fc2: Linear,
}

impl VisionTower {
    /// Loads the tower's weights.
    pub fn load(
        src: &dyn WeightSource,
        rt: &Runtime,
        family: Family,
        cfg: &VisionConfig,
    ) -> Result<Self> {
        let c = cfg.hidden_size;
        let pe_names = names("patch_embed.proj.weight");
        let pe_refs: Vec<&str> = pe_names.iter().map(String::as_str).collect();
        let pe = src.values(
            &pe_refs,
            &[
                c,
                cfg.in_channels,
                cfg.temporal_patch_size,
                cfg.patch_size,
                cfg.patch_size,
            ],
        )?;
        let patch_embed = rt.tensor(pe, [c, cfg.patch_dim()]).transpose();
        let norm = |base: String| -> Result<Norm> {
            Ok(match family {
                Family::Qwen2Vl => Norm::Layer(LayerNorm::load(src, rt, &names(&base), c, 1e-6)?),
                Family::Qwen25Vl => Norm::Rms(RmsNorm::load(src, rt, &names(&base), c, 1e-6)?),
            })
        };
        let mut blocks = Vec::with_capacity(cfg.depth);
        for i in 0..cfg.depth {
            let p = format!("blocks.{i}");
            let mlp = match family {
                Family::Qwen2Vl => Mlp::Plain {
                    fc1: Linear::load(
                        src,
                        rt,
                        &names(&format!("{p}.mlp.fc1")),
                        c,
                        cfg.intermediate_size,
                        true,
                    )?,
                    fc2: Linear::load(
                        src,
                        rt,
                        &names(&format!("{p}.mlp.fc2")),
                        cfg.intermediate_size,
                        c,
                        true,
                    )?,
                },
                Family::Qwen25Vl => Mlp::Gated {
                    gate: Linear::load(
                        src,
                        rt,
                        &names(&format!("{p}.mlp.gate_proj")),
                        c,
                        cfg.intermediate_size,
                        true,
                    )?,
                    up: Linear::load(
                        src,
                        rt,
                        &names(&format!("{p}.mlp.up_proj")),
                        c,
                        cfg.intermediate_size,
                        true,
                    )?,
                    down: Linear::load(
                        src,
                        rt,
                        &names(&format!("{p}.mlp.down_proj")),
                        cfg.intermediate_size,
                        c,
                        true,
                    )?,
                },
            };
            blocks.push(Block {
                norm1: norm(format!("{p}.norm1"))?,
                norm2: norm(format!("{p}.norm2"))?,
                qkv: Linear::load(src, rt, &names(&format!("{p}.attn.qkv")), c, 3 * c, true)?,
                proj: Linear::load(src, rt, &names(&format!("{p}.attn.proj")), c, c, true)?,
                mlp,
            });
        }
        let merged = c * cfg.spatial_merge_size * cfg.spatial_merge_size;
        Ok(Self {
            cfg: cfg.clone(),
            patch_embed,
            blocks,
            merger_norm: norm("merger.ln_q".into())?,
            merger_fc1: Linear::load(src, rt, &names("merger.mlp.0"), merged, merged, true)?,
            merger_fc2: Linear::load(
                src,
                rt,
                &names("merger.mlp.2"),
                merged,
                cfg.out_hidden_size,
                true,
            )?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VisionConfig {
        &self.cfg
    }

    /// Encodes `pixel_values [N, patch_dim]` (all images' patches, in merge order, concatenated)
    /// into `[N / merge^2, out_hidden]` embeddings, one row per `<|image_pad|>` token.
    pub fn forward(
        &self,
        rt: &Runtime,
        pixel_values: Tensor<2>,
        grids: &[[usize; 3]],
    ) -> Result<Tensor<2>> {
        let cfg = &self.cfg;
        let [n, pd] = pixel_values.dims();
        let expected: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
        if pd != cfg.patch_dim() || n != expected {
            return Err(ModelError::Input(format!(
                "pixel_values is [{n}, {pd}] but the grids {grids:?} need [{expected}, {}]",
                cfg.patch_dim()
            )));
        }
        let m = cfg.spatial_merge_size;
        if let Some(g) = grids
            .iter()
            .find(|g| g[1] % m != 0 || g[2] % m != 0 || g[0] == 0)
        {
            return Err(ModelError::Input(format!(
                "image grid {g:?} is not a multiple of the merge size {m}"
            )));
        }
        let unit = m * m;
        let c = cfg.hidden_size;
        let hd = cfg.head_dim();
        let heads = cfg.num_heads;

        let mut x = pixel_values.matmul(self.patch_embed.clone());
        let positions = vision_positions(grids, m);
        let (mut cos, mut sin) = vision_cos_sin(&positions, hd, cfg.rope_theta);
        let full: Vec<usize> = grids
            .iter()
            .flat_map(|g| std::iter::repeat_n(g[1] * g[2], g[0]))
            .collect();

        let window = cfg
            .window_size
            .map(|ws| window_index(grids, m, ws, cfg.patch_size));
        if let Some((order, _)) = &window {
            let idx = rt.indices(order.iter().map(|&i| i as i64).collect());
            x = x
                .reshape([n / unit, unit, c])
                .select(0, idx)
                .reshape([n, c]);
            let row = unit * hd;
            let permute = |t: &[f32]| -> Vec<f32> {
                order
                    .iter()
                    .flat_map(|&i| t[i * row..(i + 1) * row].iter().copied())
                    .collect()
            };
            cos = permute(&cos);
            sin = permute(&sin);
        }
        let window_segments: Vec<usize> = window
            .as_ref()
            .map(|(_, lens)| lens.iter().map(|l| l * unit).collect())
            .unwrap_or_default();
        let cos = rt.tensor(cos, [n, 1, hd]);
        let sin = rt.tensor(sin, [n, 1, hd]);
        let scale = (hd as f64).powf(-0.5);

        for (i, b) in self.blocks.iter().enumerate() {
            let segments = if window.is_some() && !cfg.fullatt_block_indexes.contains(&i) {
                &window_segments
            } else {
                &full
            };
            let h = b.norm1.forward(x.clone());
            let qkv = b.qkv.forward(h).reshape([n, 3, heads, hd]);
            let q = qkv.clone().narrow(1, 0, 1).reshape([n, heads, hd]);
            let k = qkv.clone().narrow(1, 1, 1).reshape([n, heads, hd]);
            let v = qkv.narrow(1, 2, 1).reshape([n, heads, hd]);
            let q = apply_rotary(q, cos.clone(), sin.clone());
            let k = apply_rotary(k, cos.clone(), sin.clone());
            let a = segment_attention(q, k, v, segments, scale);
            x = x + b.proj.forward(a);
            let h = b.norm2.forward(x.clone());
            let h = match &b.mlp {
                Mlp::Plain { fc1, fc2 } => fc2.forward(activate(cfg.act, fc1.forward(h))),
                Mlp::Gated { gate, up, down } => {
                    down.forward(activate(cfg.act, gate.forward(h.clone())) * up.forward(h))
                }
            };
            x = x + h;
        }

        let h = self.merger_norm.forward(x).reshape([n / unit, unit * c]);
        let mut out = self.merger_fc2.forward(gelu(self.merger_fc1.forward(h)));
        if let Some((order, _)) = &window {
            let mut inverse = vec![0i64; order.len()];
            for (pos, &i) in order.iter().enumerate() {
                inverse[i] = pos as i64;
            }
            out = out.select(0, rt.indices(inverse));
        }
        Ok(out)
    }
}
