//! Choosing where the model runs: `cpu` (burn's pure-Rust Flex backend: gemm kernels, rayon
//! threads, SIMD) or `wgpu` (Vulkan/Metal/DX12; Mesa's llvmpipe without a GPU), in f32 or half
//! precision.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::nn::Runtime;

/// The compute backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The CPU (burn-flex).
    #[default]
    Cpu,
    /// wgpu (a GPU, or llvmpipe).
    Wgpu,
}

impl FromStr for BackendKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendKind::Cpu),
            "wgpu" | "gpu" => Ok(BackendKind::Wgpu),
            other => Err(ModelError::Device(format!(
                "unknown device `{other}` (expected cpu or wgpu)"
            ))),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
        })
    }
}

/// The float type weights and activations compute in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float (parity with transformers' f32).
    #[default]
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// The burn dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

impl FromStr for Precision {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(Precision::F32),
            "f16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(ModelError::Device(format!(
                "unknown precision `{other}` (expected f32, f16 or bf16)"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

/// Opens a device of the given kind and checks that it supports the precision.
pub fn runtime(kind: BackendKind, precision: Precision) -> Result<Runtime> {
    let device = match kind {
        BackendKind::Cpu => Device::flex(),
        BackendKind::Wgpu => wgpu_device()?,
    };
    let dtype = precision.dtype();
    if !device.supports_dtype(dtype) {
        return Err(ModelError::Device(format!(
            "{kind} does not support {precision} on this machine"
        )));
    }
    let mut rt = Runtime::new(device, dtype);
    if kind == BackendKind::Cpu {
        rt.linear_blocks = cpu_linear_blocks();
    }
    Ok(rt)
}

/// How many blocks CPU linear layers split into: four per core, between 8 and 64 (burn-flex
/// runs a batched matmul's batch in parallel from 4 matrices up; several blocks per core
/// balance the load: on 2 cores, decoding the 2B shape ran at 2.83, 3.49, 3.70 and 3.65 tok/s
/// with 2, 4, 8 and 16 blocks). `EMBER_CPU_LINEAR_BLOCKS` overrides it (1 turns the split off).
pub fn cpu_linear_blocks() -> usize {
    if let Some(n) = std::env::var("EMBER_CPU_LINEAR_BLOCKS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.max(1);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (4 * cores).clamp(8, 64)
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    Err(ModelError::Device(
        "this build has no wgpu backend (rebuild ember-models with the `wgpu` feature)".into(),
    ))
}
