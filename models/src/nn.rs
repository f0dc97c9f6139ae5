//! Building blocks on burn tensors: linear layers in PyTorch's weight layout, RMSNorm and
//! LayerNorm, `rotate_half` rotary, attention over segments, activations.

use burn::tensor::activation::{gelu, sigmoid, silu, softmax};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::config::VisionAct;
use crate::error::Result;
use crate::weights::host_tensor;

/// Where tensors live and in which float type they compute.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The device.
    pub device: Device,
    /// The float dtype of weights and activations.
    pub dtype: DType,
    /// Linear layers split their output features into this many blocks, multiplied as one
    /// batched matmul (1 = no split). On the CPU backend this is what spreads a decode step's
    /// matrix-vector products over the cores: the backend runs the batch in parallel, while a
    /// single matrix-vector product would run on one thread.
    pub linear_blocks: usize,
}

impl Runtime {
    /// A runtime with unsplit linear layers.
    pub fn new(device: Device, dtype: DType) -> Self {
        Self {
            device,
            dtype,
            linear_blocks: 1,
        }
    }

    /// Uploads host f32 values.
    pub fn tensor<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        host_tensor(values, shape, &self.device, self.dtype)
    }

    /// Uploads indices.
    pub fn indices(&self, values: Vec<i64>) -> Tensor<1, Int> {
        let n = values.len();
        Tensor::<1, Int>::from_data(TensorData::new(values, [n]), &self.device)
    }
}

/// Something that can hand out a named tensor's values (a checkpoint, or a random generator for
/// benchmarks).
pub trait WeightSource {
    /// The values (row-major f32) of the first of `names` found, checked against `shape`.
    fn values(&self, names: &[&str], shape: &[usize]) -> Result<Vec<f32>>;
    /// Whether a tensor exists.
    fn has(&self, name: &str) -> bool;
}

impl WeightSource for crate::weights::WeightStore {
    fn values(&self, names: &[&str], shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.raw(names, shape)?.to_f32())
    }
    fn has(&self, name: &str) -> bool {
        self.contains(name)
    }
}

/// Loads a tensor of a fixed rank.
pub fn load<const D: usize>(
    src: &dyn WeightSource,
    rt: &Runtime,
    names: &[&str],
    shape: [usize; D],
) -> Result<Tensor<D>> {
    Ok(rt.tensor(src.values(names, &shape)?, shape))
}

/// `y = x W^T + b` with `W` kept in PyTorch's `[out, in]` layout and used through a transposed
/// view (no copy), optionally split into blocks of output features (see
/// [`Runtime::linear_blocks`]).
#[derive(Clone, Debug)]
pub struct Linear {
    weight: LinearWeight,
    /// `[1, out]`.
    bias: Option<Tensor<2>>,
    d_out: usize,
}

#[derive(Clone, Debug)]
enum LinearWeight {
    /// `[in, out]` (a transposed view of the stored `[out, in]`).
    Whole(Tensor<2>),
    /// `[blocks, in, out / blocks]` (a transposed view of `[blocks, out / blocks, in]`).
    Blocks(Tensor<3>),
}

impl Linear {
    /// Loads `{prefix}.weight` (and `{prefix}.bias` when `bias`).
    pub fn load(
        src: &dyn WeightSource,
        rt: &Runtime,
        prefixes: &[String],
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Self> {
        let wn: Vec<String> = prefixes.iter().map(|p| format!("{p}.weight")).collect();
        let wr: Vec<&str> = wn.iter().map(String::as_str).collect();
        let weight: Tensor<2> = load(src, rt, &wr, [d_out, d_in])?;
        let bias = if bias {
            let bn: Vec<String> = prefixes.iter().map(|p| format!("{p}.bias")).collect();
            let br: Vec<&str> = bn.iter().map(String::as_str).collect();
            Some(load::<1>(src, rt, &br, [d_out])?.reshape([1, d_out]))
        } else {
            None
        };
        Ok(Self::from_weight(weight, bias, rt.linear_blocks))
    }

    /// From an `[out, in]` weight and an optional `[1, out]` bias, split into `blocks` blocks of
    /// output features when they divide evenly.
    pub fn from_weight(weight: Tensor<2>, bias: Option<Tensor<2>>, blocks: usize) -> Self {
        let [d_out, d_in] = weight.dims();
        let weight = if blocks > 1 && d_out % blocks == 0 {
            LinearWeight::Blocks(
                weight
                    .reshape([blocks, d_out / blocks, d_in])
                    .swap_dims(1, 2),
            )
        } else {
            LinearWeight::Whole(weight.transpose())
        };
        Self {
            weight,
            bias,
            d_out,
        }
    }

    /// `[T, in] -> [T, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = match &self.weight {
            LinearWeight::Whole(w) => x.matmul(w.clone()),
            LinearWeight::Blocks(w) => {
                let [t, d_in] = x.dims();
                let [blocks, _, per] = w.dims();
                // [1, T, in] x [blocks, in, per] -> [blocks, T, per] -> [T, out]
                x.reshape([1, t, d_in])
                    .matmul(w.clone())
                    .swap_dims(0, 1)
                    .reshape([t, blocks * per])
            }
        };
        match &self.bias {
            Some(b) => y + b.clone(),
            None => y,
        }
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.d_out
    }
}

/// Loads a bias that a checkpoint stores as `[d]`, shaped `[1, d]`.
fn load_row(src: &dyn WeightSource, rt: &Runtime, names: &[String], d: usize) -> Result<Tensor<2>> {
    let r: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(load::<1>(src, rt, &r, [d])?.reshape([1, d]))
}

/// RMSNorm: `w * x / sqrt(mean(x^2) + eps)` over the last axis.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Tensor<2>,
    eps: f64,
}

impl RmsNorm {
    /// Loads `{prefix}.weight`.
    pub fn load(
        src: &dyn WeightSource,
        rt: &Runtime,
        prefixes: &[String],
        d: usize,
        eps: f64,
    ) -> Result<Self> {
        let names: Vec<String> = prefixes.iter().map(|p| format!("{p}.weight")).collect();
        Ok(Self {
            weight: load_row(src, rt, &names, d)?,
            eps,
        })
    }

    /// `[T, d] -> [T, d]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let var = x.clone().square().mean_dim(1);
        let inv = (var + self.eps).sqrt().recip();
        x * inv * self.weight.clone()
    }
}

/// LayerNorm with a bias.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`.
    pub fn load(
        src: &dyn WeightSource,
        rt: &Runtime,
        prefixes: &[String],
        d: usize,
        eps: f64,
    ) -> Result<Self> {
        let w: Vec<String> = prefixes.iter().map(|p| format!("{p}.weight")).collect();
        let b: Vec<String> = prefixes.iter().map(|p| format!("{p}.bias")).collect();
        let wr: Vec<&str> = w.iter().map(String::as_str).collect();
        let br: Vec<&str> = b.iter().map(String::as_str).collect();
        Ok(Self {
            gamma: load(src, rt, &wr, [d])?,
            beta: load(src, rt, &br, [d])?,
            eps,
        })
    }

    /// `[T, d] -> [T, d]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        burn::tensor::module::layer_norm(x, self.gamma.clone(), Some(self.beta.clone()), self.eps)
    }
}

/// Either norm (the vision tower uses LayerNorm in Qwen2-VL and RMSNorm in Qwen2.5-VL).
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // tensors are large handles; one per layer
pub enum Norm {
    /// LayerNorm.
    Layer(LayerNorm),
    /// RMSNorm.
    Rms(RmsNorm),
}

impl Norm {
    /// `[T, d] -> [T, d]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Norm::Layer(n) => n.forward(x),
            Norm::Rms(n) => n.forward(x),
        }
    }
}

/// Applies an activation.
pub fn activate<const D: usize>(act: VisionAct, x: Tensor<D>) -> Tensor<D> {
    match act {
        VisionAct::QuickGelu => x.clone() * sigmoid(x * 1.702),
        VisionAct::Silu => silu(x),
        VisionAct::Gelu => gelu(x),
        VisionAct::GeluTanh => burn::tensor::activation::gelu_approximate(x),
    }
}

/// `x * cos + rotate_half(x) * sin` over the last axis, where `rotate_half(x) = [-x2, x1]`.
/// `cos`/`sin` broadcast against `x`.
pub fn apply_rotary<const D: usize>(x: Tensor<D>, cos: Tensor<D>, sin: Tensor<D>) -> Tensor<D> {
    let d = x.dims()[D - 1];
    let half = d / 2;
    let x1 = x.clone().narrow(D - 1, 0, half);
    let x2 = x.clone().narrow(D - 1, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], D - 1);
    x * cos + rotated * sin
}

/// Softmax attention of `q [B, Tq, d]` over `k, v [B, Tk, d]`, scores scaled by `scale` after
/// the product (as transformers' eager attention does), with an optional additive mask
/// broadcast over `B`.
pub fn attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    scale: f64,
    mask: Option<Tensor<3>>,
) -> Tensor<3> {
    let scores = q.matmul(k.transpose()) * scale;
    let scores = match mask {
        Some(m) => scores + m,
        None => scores,
    };
    softmax(scores, 2).matmul(v)
}

/// Attention within segments of a packed sequence: `q, k, v [N, heads, hd]`; each segment
/// `(len)` attends only to itself. Consecutive segments of equal length run as one batch.
/// Returns `[N, heads * hd]`.
pub fn segment_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    segments: &[usize],
    scale: f64,
) -> Tensor<2> {
    let [n, heads, hd] = q.dims();
    let mut outs = Vec::new();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < segments.len() {
        let len = segments[i];
        let mut count = 1;
        while i + count < segments.len() && segments[i + count] == len {
            count += 1;
        }
        let rows = len * count;
        let shape = |t: Tensor<3>| -> Tensor<3> {
            t.narrow(0, start, rows)
                .reshape([count, len, heads, hd])
                .swap_dims(1, 2)
                .reshape([count * heads, len, hd])
        };
        let o = attention(
            shape(q.clone()),
            shape(k.clone()),
            shape(v.clone()),
            scale,
            None,
        );
        let o = o
            .reshape([count, heads, len, hd])
            .swap_dims(1, 2)
            .reshape([rows, heads * hd]);
        outs.push(o);
        start += rows;
        i += count;
    }
    debug_assert_eq!(start, n);
    if outs.len() == 1 {
        outs.remove(0)
    } else {
        Tensor::cat(outs, 0)
    }
}
