//! Import of llama.cpp GGUF files as Hugging Face model directories.
//!
//! [`import_gguf`] reads a `.gguf` file with candle-core's reader (`candle_core::quantized::gguf_file`) and writes
//! `config.json`, `generation_config.json`, `model.safetensors` (dequantized to f32 or bf16, llama.cpp's q/k
//! permutation undone), `tokenizer.json`, `tokenizer_config.json` (with the chat template) and
//! `special_tokens_map.json`: the directory `hashi_model::Llama::load`, `hashi_tokenizer::Tokenizer` and
//! `transformers` read. The mapping of keys and tensor names is transformers' GGUF loader's
//! (`modeling_gguf_pytorch_utils.py`, `integrations/ggml.py`), which the parity tests compare with.
//!
//! Why a crate of its own: the import builds both model files and tokenizer JSON, and neither `hashi-model` nor
//! `hashi-tokenizer` should depend on the other; this crate depends only on `hashi-core` (for [`Reporter`]) and
//! the readers/writers it needs, and the CLI depends on it.
//!
//! Modules: [`gguf`] (the opened file, typed metadata), [`config`] (hyper-parameters), [`tensors`] (names,
//! dequantization, permutation, streaming write), [`tokenizer`] (tokenizer files). Not supported: architectures
//! other than `llama`/`qwen2`, Llama 3's `rope_freqs` tensor, ggml types candle cannot dequantize (the IQ and
//! ternary families), sharded output.

pub mod config;
mod error;
pub mod gguf;
pub mod tensors;
pub mod tokenizer;

use std::path::Path;

use hashi_core::Reporter;
use serde_json::Value;

pub use error::{ImportError, Result};
pub use gguf::Gguf;
pub use tensors::OutDtype;

/// What an import wrote.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// `general.architecture`.
    pub architecture: String,
    /// HF `model_type` written to `config.json`.
    pub model_type: String,
    /// Tensors written.
    pub tensors: usize,
    /// Parameters written.
    pub parameters: usize,
    /// Count of source tensors per ggml type, sorted by type name.
    pub ggml_types: Vec<(String, usize)>,
    /// `tokenizer.ggml.model`.
    pub tokenizer_model: String,
    /// Pieces in the vocabulary.
    pub vocab_size: usize,
    /// Whether `lm_head` is tied to the embeddings (no `output.weight` in the file).
    pub tied_embeddings: bool,
}

/// Imports `gguf_path` into `out` (created if needed). Everything that can be refused (architecture, tokenizer,
/// tensor names and types, truncation) is checked before any weight is written; `config.json` is written last.
pub fn import_gguf(
    gguf_path: &Path,
    out: &Path,
    dtype: OutDtype,
    reporter: &dyn Reporter,
) -> Result<ImportSummary> {
    let mut gguf = Gguf::open(gguf_path)?;
    let meta = config::model_meta(&gguf)?;
    let max_len = meta.config.get("max_position_embeddings").and_then(Value::as_u64).unwrap_or(2048);
    let tok = tokenizer::build(&gguf, max_len)?;
    let plan = tensors::plan(&gguf, meta.permuted_qk, meta.n_head, meta.n_head_kv)?;
    let mut types = std::collections::BTreeMap::<String, usize>::new();
    let mut parameters = 0;
    for m in &plan {
        if let Some((shape, t)) = gguf.tensor_info(&m.gguf) {
            *types.entry(tensors::ggml_type_name(t).to_string()).or_default() += 1;
            parameters += shape.iter().product::<usize>();
        }
    }
    std::fs::create_dir_all(out).map_err(|e| error::ImportError::io(out, e))?;
    let write_json = |name: &str, v: &Value| -> Result<()> {
        let path = out.join(name);
        let text = serde_json::to_string_pretty(v).map_err(|e| ImportError::io(&path, e.into()))?;
        hashi_core::write_atomic(&path, format!("{text}\n").as_bytes()).map_err(|e| ImportError::io(&path, e))
    };
    write_json("tokenizer.json", &tok.tokenizer)?;
    write_json("tokenizer_config.json", &tok.config)?;
    write_json("special_tokens_map.json", &tok.special_tokens_map)?;
    tensors::write(&mut gguf, &plan, dtype, &out.join("model.safetensors"), reporter)?;
    let mut cfg = meta.config.clone();
    cfg.insert("torch_dtype".into(), dtype.torch_name().into());
    write_json("generation_config.json", &config::generation_config(&cfg))?;
    write_json("config.json", &Value::Object(cfg))?;
    Ok(ImportSummary {
        architecture: meta.architecture,
        model_type: meta.model_type,
        tensors: plan.len(),
        parameters,
        ggml_types: types.into_iter().collect(),
        tokenizer_model: tok.model,
        vocab_size: tok.vocab_size,
        tied_embeddings: gguf.tensor_info("output.weight").is_none(),
    })
}
