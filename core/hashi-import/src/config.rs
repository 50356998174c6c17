//! GGUF metadata to HF `config.json` and `generation_config.json`.
//!
//! The key mapping is transformers' (`integrations/ggml.py`, `GGUF_CONFIG_MAPPING`): `{arch}.block_count` →
//! `num_hidden_layers`, `{arch}.embedding_length` → `hidden_size`, `{arch}.feed_forward_length` →
//! `intermediate_size`, `{arch}.attention.head_count(_kv)` → `num_attention_heads` / `num_key_value_heads`,
//! `{arch}.attention.layer_norm_rms_epsilon` → `rms_norm_eps`, `{arch}.rope.freq_base` → `rope_theta`,
//! `{arch}.context_length` → `max_position_embeddings`; `tie_word_embeddings` is true when the file has no
//! `output.weight`. llama.cpp writes Mistral models as `llama`; like transformers, a `general.name` naming
//! Mistral makes the model type `mistral`. Supported architectures: `llama` (Llama, Mistral, SmolLM) and
//! `qwen2`. RoPE scaling from `{arch}.rope.scaling.*`: `linear` and `yarn`.

use serde_json::{Map, Value, json};

use crate::error::{ImportError, Result};
use crate::gguf::Gguf;

/// What the import learned about the model from the metadata.
#[derive(Debug, Clone)]
pub struct ModelMeta {
    /// `general.architecture` (`llama`, `qwen2`).
    pub architecture: String,
    /// HF `model_type` (`llama`, `mistral`, `qwen2`).
    pub model_type: String,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Whether llama.cpp permuted the q/k rows (the `llama` architecture).
    pub permuted_qk: bool,
    /// The `config.json` document (without `torch_dtype`, added when writing).
    pub config: Map<String, Value>,
}

/// Reads the model's hyper-parameters; refuses architectures other than `llama` and `qwen2`.
pub fn model_meta(gguf: &Gguf) -> Result<ModelMeta> {
    let arch = gguf.str("general.architecture")?.to_string();
    let name = gguf.opt_str("general.name")?.unwrap_or("").to_lowercase();
    let (model_type, class, permuted_qk) = match arch.as_str() {
        "llama" if name.contains("mistral") => ("mistral", "MistralForCausalLM", true),
        "llama" => ("llama", "LlamaForCausalLM", true),
        "qwen2" => ("qwen2", "Qwen2ForCausalLM", false),
        other => {
            return Err(ImportError::Unsupported {
                path: gguf.path().into(),
                message: format!(
                    "general.architecture {other:?} is not supported (supported: \"llama\", \"qwen2\")"
                ),
            });
        }
    };
    let key = |k: &str| format!("{arch}.{k}");
    let hidden = gguf.usize(&key("embedding_length"))?;
    let n_head = gguf.usize(&key("attention.head_count"))?;
    let n_head_kv = gguf.opt_uint(&key("attention.head_count_kv"))?.map_or(n_head, |n| n as usize);
    if n_head == 0 || n_head_kv == 0 {
        return Err(ImportError::Metadata {
            path: gguf.path().into(),
            key: key("attention.head_count"),
            message: "head counts must be positive".into(),
        });
    }
    let head_dim = gguf.opt_uint(&key("attention.key_length"))?.map_or(hidden / n_head, |d| d as usize);
    let (vocab, embed_hidden) = match gguf.tensor_info("token_embd.weight") {
        Some(([v, h], _)) => (*v, *h),
        Some((dims, _)) => {
            return Err(ImportError::Shape {
                path: gguf.path().into(),
                tensor: "token_embd.weight".into(),
                expected: vec![0, hidden],
                got: dims.to_vec(),
            });
        }
        None => {
            return Err(ImportError::Unsupported {
                path: gguf.path().into(),
                message: "tensor token_embd.weight is missing".into(),
            });
        }
    };
    if embed_hidden != hidden {
        return Err(ImportError::Shape {
            path: gguf.path().into(),
            tensor: "token_embd.weight".into(),
            expected: vec![vocab, hidden],
            got: vec![vocab, embed_hidden],
        });
    }
    let tied = gguf.tensor_info("output.weight").is_none();
    let attention_bias = gguf.tensor_info("blk.0.attn_q.bias").is_some();
    let mut c = Map::new();
    c.insert("architectures".into(), json!([class]));
    c.insert("model_type".into(), model_type.into());
    c.insert("vocab_size".into(), vocab.into());
    c.insert("hidden_size".into(), hidden.into());
    c.insert("intermediate_size".into(), gguf.usize(&key("feed_forward_length"))?.into());
    c.insert("num_hidden_layers".into(), gguf.usize(&key("block_count"))?.into());
    c.insert("num_attention_heads".into(), n_head.into());
    c.insert("num_key_value_heads".into(), n_head_kv.into());
    c.insert("head_dim".into(), head_dim.into());
    c.insert("hidden_act".into(), "silu".into());
    let max_pos = gguf.opt_uint(&key("context_length"))?.unwrap_or(2048);
    c.insert("max_position_embeddings".into(), max_pos.into());
    let eps = gguf.opt_f64(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6);
    c.insert("rms_norm_eps".into(), json_f32(eps));
    let theta = gguf.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0);
    c.insert("rope_theta".into(), json_f32(theta));
    c.insert("rope_scaling".into(), rope_scaling(gguf, &arch)?);
    c.insert("tie_word_embeddings".into(), tied.into());
    if model_type == "mistral" {
        // llama.cpp keeps no sliding window; MistralConfig's default (4096) would invent one.
        c.insert("sliding_window".into(), Value::Null);
    }
    if model_type != "qwen2" {
        c.insert("attention_bias".into(), attention_bias.into());
        c.insert("mlp_bias".into(), false.into());
    }
    c.insert("initializer_range".into(), json_f32(0.02));
    c.insert("use_cache".into(), true.into());
    for (gguf_key, hf_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(id) = gguf.opt_uint(gguf_key)? {
            c.insert(hf_key.into(), id.into());
        }
    }
    Ok(ModelMeta {
        architecture: arch,
        model_type: model_type.into(),
        n_head,
        n_head_kv,
        permuted_qk,
        config: c,
    })
}

/// A float stored as f32 in GGUF, written with the shortest decimal that reads back as that f32 (1e-5, not
/// 9.999999747378752e-6), as transformers writes the value it parsed.
fn json_f32(x: f64) -> Value {
    let shortest: f64 = format!("{}", x as f32).parse().unwrap_or(x);
    json!(shortest)
}

fn rope_scaling(gguf: &Gguf, arch: &str) -> Result<Value> {
    let kind_key = format!("{arch}.rope.scaling.type");
    let Some(kind) = gguf.opt_str(&kind_key)? else { return Ok(Value::Null) };
    let factor_key = format!("{arch}.rope.scaling.factor");
    let factor = || {
        gguf.opt_f64(&factor_key)?.ok_or_else(|| ImportError::Metadata {
            path: gguf.path().into(),
            key: factor_key.clone(),
            message: format!("missing (needed by {kind:?} RoPE scaling)"),
        })
    };
    Ok(match kind {
        "none" => Value::Null,
        "linear" => json!({"rope_type": "linear", "factor": json_f32(factor()?)}),
        "yarn" => {
            let orig = gguf.opt_uint(&format!("{arch}.rope.scaling.original_context_length"))?;
            let mut v = json!({"rope_type": "yarn", "factor": json_f32(factor()?)});
            if let Some(o) = orig {
                v["original_max_position_embeddings"] = o.into();
            }
            v
        }
        other => {
            return Err(ImportError::Unsupported {
                path: gguf.path().into(),
                message: format!("{kind_key} {other:?} is not supported (supported: none, linear, yarn)"),
            });
        }
    })
}

/// `generation_config.json`: the special token ids of the config.
pub fn generation_config(config: &Map<String, Value>) -> Value {
    let mut g = Map::new();
    for k in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        if let Some(v) = config.get(k) {
            g.insert(k.into(), v.clone());
        }
    }
    Value::Object(g)
}
