//! Weight quantization formats: bytes per weight and the tensor-core format their matmuls run in.

use serde::{Deserialize, Serialize};

use super::{Dtype, GpuSpec};

/// How a checkpoint stores its linear-layer weights (vLLM detects it from the checkpoint's
/// `quantization_config`; `--quantization fp8` also quantizes a 16-bit checkpoint at load).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// 16-bit weights (the model's dtype).
    #[default]
    None,
    /// W8A8 FP8 (e4m3, per-tensor or per-channel scales).
    Fp8,
    /// W8A8 INT8 (SmoothQuant-style, per-channel scales).
    Int8,
    /// W4A16 AWQ, groups of 128.
    Awq,
    /// W4A16 GPTQ (and compressed-tensors W4A16), groups of 128.
    Gptq,
    /// NVIDIA FP4 (e2m1) with an FP8 scale per 16 weights; W4A4 on Blackwell.
    Nvfp4,
    /// OCP MX FP4 (e2m1) with an 8-bit power-of-two scale per 32 weights (gpt-oss's experts).
    Mxfp4,
}

impl Quantization {
    pub const ALL: [Quantization; 7] = [
        Quantization::None,
        Quantization::Fp8,
        Quantization::Int8,
        Quantization::Awq,
        Quantization::Gptq,
        Quantization::Nvfp4,
        Quantization::Mxfp4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Fp8 => "fp8",
            Quantization::Int8 => "int8",
            Quantization::Awq => "awq",
            Quantization::Gptq => "gptq",
            Quantization::Nvfp4 => "nvfp4",
            Quantization::Mxfp4 => "mxfp4",
        }
    }

    /// Storage bytes of one quantized weight, its share of the scales included: AWQ and GPTQ keep
    /// an fp16 scale and a 4-bit zero point per group of 128 (AutoAWQ / AutoGPTQ defaults), NVFP4 an
    /// FP8 scale per 16, MXFP4 an E8M0 scale per 32 (OCP Microscaling Formats v1.0).
    pub fn bytes_per_weight(self, dtype: Dtype) -> f64 {
        match self {
            Quantization::None => dtype.bytes(),
            Quantization::Fp8 | Quantization::Int8 => 1.0,
            Quantization::Awq | Quantization::Gptq => 0.5 + (2.0 + 0.5) / 128.0,
            Quantization::Nvfp4 => 0.5 + 1.0 / 16.0,
            Quantization::Mxfp4 => 0.5 + 1.0 / 32.0,
        }
    }

    /// Whether only the routed experts are quantized (gpt-oss keeps attention, routers and
    /// embeddings in bf16: its config's `modules_to_not_convert`).
    pub fn experts_only(self) -> bool {
        self == Quantization::Mxfp4
    }

    /// The format the matmuls run in on `gpu`, and whether weights are dequantized to it on the fly
    /// (weight-only kernels such as Marlin, also used for FP8/FP4 where the GPU lacks those units).
    pub fn matmul(self, gpu: &GpuSpec, dtype: Dtype) -> (Dtype, bool) {
        match self {
            Quantization::None => (dtype, false),
            Quantization::Fp8 if gpu.fp8_tflops.is_some() => (Dtype::Fp8, false),
            Quantization::Int8 if gpu.int8_tops.is_some() => (Dtype::Int8, false),
            Quantization::Nvfp4 | Quantization::Mxfp4 if gpu.fp4_tflops.is_some() => {
                (Dtype::Fp4, false)
            }
            _ => (dtype, true),
        }
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quantization::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<_> = Quantization::ALL.iter().map(|q| q.name()).collect();
                format!("unknown quantization `{s}`; known: {}", known.join(", "))
            })
    }
}
