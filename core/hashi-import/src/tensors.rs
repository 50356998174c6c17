//! GGUF tensors to HF `model.safetensors`: names mapped, dequantized, llama.cpp's q/k row permutation undone,
//! streamed one tensor at a time.
//!
//! Names follow transformers' GGUF loader (`modeling_gguf_pytorch_utils.py`, the `llama` converters):
//! `token_embd` → `model.embed_tokens`, `blk.N.attn_q` → `model.layers.N.self_attn.q_proj`, and so on.
//! llama.cpp's `convert_hf_to_gguf.py` permutes the rows of `q_proj`/`k_proj` for the `llama` architecture
//! (`LlamaModel.permute`: each head's rows reordered from HF's rotate-half pairing to GGML's interleaved one);
//! [`unpermute`] is transformers' `reverse_permute_weights`. Qwen2 files are written without the permutation.
//!
//! The output is written through the `safetensors` crate with a lazy [`safetensors::View`]: the crate asks for
//! each tensor's bytes only when it writes them, so memory holds one tensor (its quantized bytes, the f32 copy
//! and the output bytes) at a time. Not done: sharded output (one `model.safetensors` whatever the size).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Tensor};
use hashi_core::Reporter;

use crate::error::{ImportError, Result, candle_message};
use crate::gguf::Gguf;

/// The ggml types hashi dequantizes (candle-core's CPU dequantization).
pub const SUPPORTED: [GgmlDType; 13] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
];

/// [`SUPPORTED`] as llama.cpp names them.
pub const SUPPORTED_NAMES: &str =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

/// llama.cpp's name of a ggml type.
pub fn ggml_type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// Storage dtype of the written weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutDtype {
    /// 32-bit float: the dequantized values exactly.
    #[default]
    F32,
    /// bfloat16 (round to nearest even from the f32 values).
    Bf16,
}

impl OutDtype {
    /// The name transformers writes as `torch_dtype`.
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
        }
    }
}

impl std::str::FromStr for OutDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!("unknown dtype {other:?} (expected f32 or bf16)")),
        }
    }
}

/// How a GGUF tensor becomes an HF one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The GGUF name (`blk.0.attn_q.weight`).
    pub gguf: String,
    /// The HF name (`model.layers.0.self_attn.q_proj.weight`).
    pub hf: String,
    /// Undo llama.cpp's permutation with this many heads (rows = heads × head_dim).
    pub unpermute_heads: Option<usize>,
}

/// The HF name of a GGUF tensor of a Llama-family model, `None` for names outside the mapping.
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.into());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, suffix) = rest.rsplit_once('.')?;
    if !matches!(suffix, "weight" | "bias") {
        return None;
    }
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// Plans every tensor of the file: HF name, permutation; refuses unknown names and unsupported types up front,
/// before anything is written. `permuted`: whether the architecture's q/k rows were permuted by llama.cpp.
pub fn plan(gguf: &Gguf, permuted: bool, n_head: usize, n_head_kv: usize) -> Result<Vec<Mapped>> {
    let mut out = Vec::new();
    for name in gguf.tensor_names() {
        let Some((_, dtype)) = gguf.tensor_info(&name) else { continue };
        if name == "rope_freqs.weight" {
            return Err(ImportError::Unsupported {
                path: gguf.path().into(),
                message: "tensor rope_freqs.weight holds Llama 3's RoPE frequency factors; importing \
                          `llama3` RoPE scaling from GGUF is not supported yet"
                    .into(),
            });
        }
        let hf = hf_name(&name).ok_or_else(|| ImportError::Unsupported {
            path: gguf.path().into(),
            message: format!("tensor {name} has no counterpart in a Llama-family HF model"),
        })?;
        if !SUPPORTED.contains(&dtype) {
            return Err(ImportError::UnsupportedType {
                path: gguf.path().into(),
                tensor: name,
                ggml_type: ggml_type_name(dtype).into(),
                supported: SUPPORTED_NAMES.into(),
            });
        }
        let unpermute_heads = if !permuted {
            None
        } else if name.contains(".attn_q.") {
            Some(n_head)
        } else if name.contains(".attn_k.") {
            Some(n_head_kv)
        } else {
            None
        };
        out.push(Mapped { gguf: name, hf, unpermute_heads });
    }
    Ok(out)
}

/// Reverses llama.cpp's `permute(w, n_head)` along dim 0 (transformers' `reverse_permute_weights`): the rows of
/// each head, stored as `[d/2, 2]` (GGML's interleaved pairs), are transposed back to HF's `[2, d/2]`
/// (rotate-half). Shape `[n_head * d, ...]` in and out, any dtype; `d` must be even.
pub fn unpermute(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    if n_head == 0 || !rows.is_multiple_of(2 * n_head) {
        candle_core::bail!("{rows} rows do not split into {n_head} heads of an even size");
    }
    let rest: usize = dims[1..].iter().product();
    w.reshape((n_head, rows / n_head / 2, 2, rest))?.transpose(1, 2)?.contiguous()?.reshape(dims)
}

/// One tensor of the output, produced when the `safetensors` writer asks for its bytes.
struct Lazy<'a, 'j> {
    job: &'a Job<'j>,
    index: usize,
    shape: Vec<usize>,
    dtype: OutDtype,
}

/// State shared by the lazy tensors of one write.
struct Job<'a> {
    gguf: RefCell<&'a mut Gguf>,
    plan: &'a [Mapped],
    error: RefCell<Option<ImportError>>,
    reporter: &'a dyn Reporter,
}

impl Job<'_> {
    fn bytes(&self, index: usize, dtype: OutDtype) -> Result<Vec<u8>> {
        let m = &self.plan[index];
        let mut gguf = self.gguf.borrow_mut();
        let path = gguf.path().to_path_buf();
        let err = |e: candle_core::Error| ImportError::Tensor {
            path: path.clone(),
            tensor: m.gguf.clone(),
            message: candle_message(&e),
        };
        let mut t = gguf.dequantize(&m.gguf)?;
        if let Some(heads) = m.unpermute_heads {
            t = unpermute(&t, heads).map_err(err)?;
        }
        // The tensor is dropped as soon as its values are copied out: at most two copies of it live at once.
        let bytes = match dtype {
            OutDtype::F32 => {
                let values = t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(err)?;
                drop(t);
                values.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            OutDtype::Bf16 => {
                let b = t.to_dtype(DType::BF16).map_err(err)?;
                drop(t);
                let values = b.flatten_all().and_then(|b| b.to_vec1::<half::bf16>()).map_err(err)?;
                drop(b);
                values.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
        };
        Ok(bytes)
    }
}

impl safetensors::View for Lazy<'_, '_> {
    fn dtype(&self) -> safetensors::Dtype {
        match self.dtype {
            OutDtype::F32 => safetensors::Dtype::F32,
            OutDtype::Bf16 => safetensors::Dtype::BF16,
        }
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let n = self.data_len();
        if self.job.error.borrow().is_some() {
            return vec![0u8; n].into();
        }
        let out = match self.job.bytes(self.index, self.dtype) {
            Ok(b) if b.len() == n => b,
            Ok(b) => {
                let tensor = self.job.plan[self.index].gguf.clone();
                let path = self.job.gguf.borrow().path().to_path_buf();
                let message = format!("produced {} bytes, expected {n}", b.len());
                *self.job.error.borrow_mut() = Some(ImportError::Tensor { path, tensor, message });
                vec![0u8; n]
            }
            Err(e) => {
                *self.job.error.borrow_mut() = Some(e);
                vec![0u8; n]
            }
        };
        self.job.reporter.advance(1);
        out.into()
    }
    fn data_len(&self) -> usize {
        let elem = match self.dtype {
            OutDtype::F32 => 4,
            OutDtype::Bf16 => 2,
        };
        self.shape.iter().product::<usize>() * elem
    }
}

/// Writes every planned tensor into `out` (a safetensors file, replaced atomically by the crate's writer).
pub fn write(
    gguf: &mut Gguf,
    plan: &[Mapped],
    dtype: OutDtype,
    out: &Path,
    reporter: &dyn Reporter,
) -> Result<()> {
    let shapes: Vec<Vec<usize>> =
        plan.iter().map(|m| gguf.tensor_info(&m.gguf).map(|(s, _)| s.to_vec()).unwrap_or_default()).collect();
    let job = Job { gguf: RefCell::new(gguf), plan, error: RefCell::new(None), reporter };
    let views: Vec<(String, Lazy<'_, '_>)> = plan
        .iter()
        .zip(shapes)
        .enumerate()
        .map(|(index, (m, shape))| (m.hf.clone(), Lazy { job: &job, index, shape, dtype }))
        .collect();
    reporter.start("dequantizing", Some(plan.len() as u64), "tensors");
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let written = safetensors::serialize_to_file(views, Some(metadata), out);
    reporter.finish();
    if let Some(e) = job.error.into_inner() {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    written.map_err(|e| ImportError::io(out, std::io::Error::other(e.to_string())))
}
