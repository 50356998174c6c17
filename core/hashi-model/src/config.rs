//! Model configuration: the HF `config.json` mirror and the plain runtime config.
//!
//! [`LlamaConfig`] mirrors `transformers.LlamaConfig` as written to `config.json` (v4 and v5 layouts: top-level
//! `rope_theta`/`rope_scaling`, or v5's `rope_parameters`). It tolerates and preserves unknown keys, since real
//! configs carry many. [`Config`] is what the model runs on, validated; it has presets for tests and the Llama 2
//! sizes. Supported RoPE types: `default` and `linear`; others are refused with a message.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// `config.json` of a `LlamaForCausalLM` checkpoint, as transformers writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of `embed_tokens` and `lm_head`).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (GQA); defaults to `num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// MLP activation; only `silu` is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Longest sequence the model is meant for.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Standard deviation of the normal initialisation.
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Epsilon of RMSNorm.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Whether `lm_head` shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// RoPE base (transformers v4 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// RoPE scaling (transformers v4 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<Value>,
    /// RoPE parameters (transformers v5 layout: `rope_type`, `rope_theta`, `factor`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<Value>,
    /// Whether q/k/v/o projections have biases.
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether the MLP projections have biases.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Id of `<s>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// Id(s) of `</s>`: a number or a list in HF configs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<Value>,
    /// Id of the padding token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// Every other key, kept as it was so that a re-saved config loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_act() -> String {
    "silu".into()
}
fn default_max_pos() -> usize {
    2048
}
fn default_init_range() -> f64 {
    0.02
}
fn default_eps() -> f64 {
    1e-6
}

/// How rotary position embeddings are scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Positions divided by `factor` (`rope_type: "linear"`).
    Linear {
        /// The divisor.
        factor: f64,
    },
}

/// The validated configuration the model runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Longest sequence.
    pub max_position_embeddings: usize,
    /// Init standard deviation.
    pub initializer_range: f64,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Shared embedding and output matrix.
    pub tie_word_embeddings: bool,
    /// Biases on attention projections.
    pub attention_bias: bool,
    /// Biases on MLP projections.
    pub mlp_bias: bool,
    /// End-of-sequence ids (generation stops on any).
    pub eos_token_ids: Vec<u32>,
}

impl LlamaConfig {
    /// Reads and parses `config.json`; errors name the file, line and column.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| ModelError::config(path, e.to_string()))
    }

    /// Validates and turns into the runtime [`Config`]; `path` is only used in error messages.
    pub fn to_config(&self, path: &Path) -> Result<Config> {
        let err = |m: String| ModelError::config(path, m);
        if let Some(mt) = self.extra.get("model_type").and_then(Value::as_str)
            && !matches!(mt, "llama" | "mistral")
        {
            return Err(err(format!("model_type {mt:?} is not a Llama model")));
        }
        if self.hidden_act != "silu" {
            return Err(err(format!("hidden_act {:?} is not supported (only \"silu\")", self.hidden_act)));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
        ] {
            if v == 0 {
                return Err(err(format!("{name} must be positive")));
            }
        }
        let num_kv_heads = self.num_key_value_heads.unwrap_or(self.num_attention_heads);
        if num_kv_heads == 0 || !self.num_attention_heads.is_multiple_of(num_kv_heads) {
            return Err(err(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({num_kv_heads})",
                self.num_attention_heads
            )));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None if self.hidden_size.is_multiple_of(self.num_attention_heads) => {
                self.hidden_size / self.num_attention_heads
            }
            None => {
                return Err(err(format!(
                    "hidden_size ({}) is not a multiple of num_attention_heads ({}) and head_dim is not set",
                    self.hidden_size, self.num_attention_heads
                )));
            }
        };
        if !head_dim.is_multiple_of(2) {
            return Err(err(format!("head_dim ({head_dim}) must be even for rotary embeddings")));
        }
        let (rope_theta, rope_scaling) = self.rope(path)?;
        let eos_token_ids = match &self.eos_token_id {
            None | Some(Value::Null) => vec![],
            Some(v) => serde_json::from_value::<EosIds>(v.clone())
                .map_err(|e| err(format!("eos_token_id: {e}")))?
                .into_vec(),
        };
        Ok(Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads: self.num_attention_heads,
            num_kv_heads,
            head_dim,
            max_position_embeddings: self.max_position_embeddings,
            initializer_range: self.initializer_range,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: self.tie_word_embeddings,
            attention_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
            eos_token_ids,
        })
    }

    fn rope(&self, path: &Path) -> Result<(f64, RopeScaling)> {
        let params = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref()).filter(|v| !v.is_null());
        let theta_in_params = params.and_then(|p| p.get("rope_theta")).and_then(Value::as_f64);
        let theta = theta_in_params.or(self.rope_theta).unwrap_or(10_000.0);
        let Some(p) = params else { return Ok((theta, RopeScaling::None)) };
        let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(Value::as_str).unwrap_or("default");
        let scaling = match kind {
            "default" => RopeScaling::None,
            "linear" => {
                let factor = p.get("factor").and_then(Value::as_f64).ok_or_else(|| {
                    ModelError::config(path, "linear RoPE scaling needs a numeric \"factor\"")
                })?;
                RopeScaling::Linear { factor }
            }
            other => {
                return Err(ModelError::config(
                    path,
                    format!("RoPE type {other:?} is not supported (supported: \"default\", \"linear\")"),
                ));
            }
        };
        Ok((theta, scaling))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EosIds {
    One(u32),
    Many(Vec<u32>),
}

impl EosIds {
    fn into_vec(self) -> Vec<u32> {
        match self {
            Self::One(id) => vec![id],
            Self::Many(ids) => ids,
        }
    }
}

impl Config {
    /// Number of query heads sharing one key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }

    /// A two-layer model for unit tests (hidden 32, GQA 4:2, vocab 128).
    pub fn tiny_test() -> Self {
        Self::sized(128, 32, 88, 2, 4, 2)
    }

    /// Benchmark config A of the issue tracker: vocab 8000, hidden 256, 4 layers, 4 heads, MLP 688.
    pub fn bench_a() -> Self {
        Self::sized(8000, 256, 688, 4, 4, 4)
    }

    /// Benchmark config B: vocab 32000, hidden 512, 8 layers, 8 heads, MLP 1376.
    pub fn bench_b() -> Self {
        Self::sized(32000, 512, 1376, 8, 8, 8)
    }

    /// Llama-2-7B.
    pub fn llama2_7b() -> Self {
        Self {
            max_position_embeddings: 4096,
            rms_norm_eps: 1e-5,
            ..Self::sized(32000, 4096, 11008, 32, 32, 32)
        }
    }

    /// Llama-2-13B (the method's base model).
    pub fn llama2_13b() -> Self {
        Self {
            max_position_embeddings: 4096,
            rms_norm_eps: 1e-5,
            ..Self::sized(32000, 5120, 13824, 40, 40, 40)
        }
    }

    /// A named preset: `tiny-test`, `bench-a`, `bench-b`, `llama2-7b`, `llama2-13b`.
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "tiny-test" => Self::tiny_test(),
            "bench-a" => Self::bench_a(),
            "bench-b" => Self::bench_b(),
            "llama2-7b" => Self::llama2_7b(),
            "llama2-13b" => Self::llama2_13b(),
            _ => return None,
        })
    }

    fn sized(vocab: usize, hidden: usize, mlp: usize, layers: usize, heads: usize, kv_heads: usize) -> Self {
        Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: mlp,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim: hidden / heads,
            max_position_embeddings: 2048,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::None,
            tie_word_embeddings: false,
            attention_bias: false,
            mlp_bias: false,
            eos_token_ids: vec![2],
        }
    }

    /// The HF `config.json` for this config (transformers v4 layout, which v5 also reads).
    pub fn to_hf(&self, dtype: &str) -> LlamaConfig {
        let mut extra = Map::new();
        extra.insert("model_type".into(), "llama".into());
        extra.insert("architectures".into(), Value::from(vec!["LlamaForCausalLM"]));
        extra.insert("torch_dtype".into(), dtype.into());
        extra.insert("use_cache".into(), true.into());
        LlamaConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_layers,
            num_attention_heads: self.num_heads,
            num_key_value_heads: Some(self.num_kv_heads),
            head_dim: Some(self.head_dim),
            hidden_act: "silu".into(),
            max_position_embeddings: self.max_position_embeddings,
            initializer_range: self.initializer_range,
            rms_norm_eps: self.rms_norm_eps,
            tie_word_embeddings: self.tie_word_embeddings,
            rope_theta: Some(self.rope_theta),
            rope_scaling: match self.rope_scaling {
                RopeScaling::None => None,
                RopeScaling::Linear { factor } => {
                    Some(serde_json::json!({"rope_type": "linear", "factor": factor}))
                }
            },
            rope_parameters: None,
            attention_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
            bos_token_id: Some(1),
            eos_token_id: match self.eos_token_ids.as_slice() {
                [] => None,
                [one] => Some((*one).into()),
                many => Some(many.into()),
            },
            pad_token_id: None,
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config> {
        let cfg: LlamaConfig =
            serde_json::from_str(json).map_err(|e| ModelError::config("c.json", e.to_string()))?;
        cfg.to_config(Path::new("c.json"))
    }

    #[test]
    fn v5_rope_parameters_and_defaults() {
        let c = parse(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
                "num_attention_heads":2,"rope_parameters":{"rope_type":"default","rope_theta":500000.0},
                "eos_token_id":[2,7],"some_future_key":{"x":1}}"#,
        )
        .expect("valid config");
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.num_kv_heads, 2);
        assert_eq!(c.head_dim, 4);
        assert_eq!(c.eos_token_ids, vec![2, 7]);
    }

    #[test]
    fn refuses_bad_gqa_and_unknown_rope() {
        let e = parse(
            r#"{"vocab_size":10,"hidden_size":12,"intermediate_size":16,"num_hidden_layers":1,
                "num_attention_heads":3,"num_key_value_heads":2}"#,
        )
        .expect_err("3 heads over 2 kv heads");
        assert!(e.to_string().contains("multiple of num_key_value_heads"), "{e}");
        let e = parse(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
                "num_attention_heads":2,"rope_scaling":{"rope_type":"yarn","factor":4.0}}"#,
        )
        .expect_err("yarn unsupported");
        assert!(e.to_string().contains("\"yarn\" is not supported"), "{e}");
    }

    #[test]
    fn round_trips_through_hf_layout() {
        let c = Config::tiny_test();
        let back = c.to_hf("float32").to_config(Path::new("x")).expect("valid");
        assert_eq!(back, c);
    }
}
