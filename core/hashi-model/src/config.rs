//! Model configuration: the HF `config.json` mirror and the plain runtime config.
//!
//! [`LlamaConfig`] mirrors the `config.json` of transformers' Llama-shaped decoders (v4 and v5 layouts: top-level
//! `rope_theta`/`rope_scaling`, or v5's `rope_parameters`). It tolerates and preserves unknown keys, since real
//! configs carry many; the keys only one family has (`sliding_window`, `use_sliding_window`,
//! `max_window_layers`, `layer_types`) are read from those extras. [`Config`] is what the model runs on,
//! validated; it has presets for tests, benchmarks, the Llama 2 sizes and SmolLM2-135M.
//!
//! Families, by `model_type` (absent means `llama`), each as transformers' `modeling_<family>.py` builds it:
//! - `llama` (Llama 1–3, SmolLM2): `attention_bias` on q/k/v/o, `mlp_bias`, `head_dim`.
//! - `mistral`: no biases; `sliding_window` (4096 when the key is absent, `null` for full attention) limits every
//!   layer's attention to the last `sliding_window` positions.
//! - `qwen2` (Qwen2, Qwen2.5): biases on q/k/v but not o_proj; with `use_sliding_window`, layers from
//!   `max_window_layers` on use `sliding_window`.
//!
//! RoPE types: see the `rotary` module (`default`, `linear`, `dynamic`, `llama3`, `yarn`). Anything else (another
//! `model_type`, `hidden_act`, RoPE type, or a value that would make the outputs NaN) is refused with the key
//! and value named.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::rotary::RopeKeys;
pub use crate::rotary::RopeScaling;

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
    /// Whether q/k/v/o projections have biases (Llama only; written only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attention_bias: bool,
    /// Whether the MLP projections have biases (Llama only; written only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
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

/// The model families hashi builds, by `model_type`: one Llama decoder with small switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `llama` (also SmolLM2 and every Llama-architecture model).
    Llama,
    /// `mistral`: sliding-window attention, no biases.
    Mistral,
    /// `qwen2`: q/k/v biases, optional sliding window on the upper layers.
    Qwen2,
}

impl Family {
    /// The `model_type` of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
        }
    }

    /// The transformers class of the causal LM (`architectures` of `config.json`).
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    fn from_model_type(s: &str) -> Option<Self> {
        [Self::Llama, Self::Mistral, Self::Qwen2].into_iter().find(|f| f.model_type() == s)
    }
}

/// The validated configuration the model runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Which transformers model this is (`model_type`).
    pub family: Family,
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
    /// Longest sequence (positions); for `dynamic` RoPE, the length past which the base grows.
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
    /// Llama's `attention_bias`: biases on q/k/v/o (Qwen2's q/k/v biases come with the family, see
    /// [`Config::qkv_bias`]).
    pub attention_bias: bool,
    /// Biases on MLP projections.
    pub mlp_bias: bool,
    /// Attention window in positions of the sliding layers (a query sees itself and the `w − 1` positions before
    /// it); `None` means full causal attention everywhere.
    pub sliding_window: Option<usize>,
    /// Qwen2's `max_window_layers`: layers `0..max_window_layers` attend to everything, the rest slide (0 for
    /// Mistral, whose every layer slides).
    pub max_window_layers: usize,
    /// Id of the beginning-of-sequence token (written back to `config.json`).
    pub bos_token_id: Option<u32>,
    /// Id of the padding token (written back to `config.json`).
    pub pad_token_id: Option<u32>,
    /// End-of-sequence ids (generation stops on any).
    pub eos_token_ids: Vec<u32>,
}

impl LlamaConfig {
    /// Reads and parses `config.json`; errors name the file, line and column.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| ModelError::config(path, e.to_string()))
    }

    /// Validates and turns into the runtime [`Config`]; `path` is only used in error messages, which name the
    /// key at fault and its value.
    pub fn to_config(&self, path: &Path) -> Result<Config> {
        let err = |m: String| ModelError::config(path, m);
        let family = match self.extra.get("model_type") {
            None | Some(Value::Null) => Family::Llama,
            Some(Value::String(mt)) => Family::from_model_type(mt).ok_or_else(|| {
                err(format!(
                    "model_type {mt:?} is not supported (supported: \"llama\", \"mistral\", \"qwen2\")"
                ))
            })?,
            Some(v) => return Err(err(format!("model_type must be a string, got {v}"))),
        };
        if self.hidden_act != "silu" {
            return Err(err(format!("hidden_act {:?} is not supported (only \"silu\")", self.hidden_act)));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return Err(err(format!("{name} must be positive")));
            }
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return Err(err(format!("rms_norm_eps must be a finite number >= 0, got {}", self.rms_norm_eps)));
        }
        if !(self.initializer_range.is_finite() && self.initializer_range >= 0.0) {
            return Err(err(format!(
                "initializer_range must be a finite number >= 0, got {}",
                self.initializer_range
            )));
        }
        if family != Family::Llama {
            for (key, set) in [("attention_bias", self.attention_bias), ("mlp_bias", self.mlp_bias)] {
                if set {
                    return Err(err(format!(
                        "{key} = true, but {} has no such switch (its biases are fixed by the family: {})",
                        family.architecture(),
                        if family == Family::Qwen2 { "q/k/v only" } else { "none" }
                    )));
                }
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
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(err(format!(
                "head_dim ({head_dim}) must be even and positive for rotary embeddings"
            )));
        }
        let (rope_theta, rope_scaling) = RopeScaling::from_hf(&RopeKeys {
            rope_theta: self.rope_theta,
            rope_scaling: self.rope_scaling.as_ref(),
            rope_parameters: self.rope_parameters.as_ref(),
            original_max_position_embeddings: self.extra.get("original_max_position_embeddings"),
            max_position_embeddings: self.max_position_embeddings,
        })
        .map_err(err)?;
        if rope_scaling.is_dynamic() && head_dim <= 2 {
            return Err(err(format!(
                "dynamic RoPE needs head_dim > 2 (its exponent is dim / (dim - 2)), got {head_dim}"
            )));
        }
        let (sliding_window, max_window_layers) = self.attention_window(family).map_err(err)?;
        let eos_token_ids = match &self.eos_token_id {
            None | Some(Value::Null) => vec![],
            Some(v) => serde_json::from_value::<EosIds>(v.clone())
                .map_err(|e| err(format!("eos_token_id: {e}")))?
                .into_vec(),
        };
        let named_ids = eos_token_ids
            .iter()
            .map(|&id| ("eos_token_id", id))
            .chain(self.bos_token_id.map(|id| ("bos_token_id", id)))
            .chain(self.pad_token_id.map(|id| ("pad_token_id", id)));
        for (key, id) in named_ids {
            if id as usize >= self.vocab_size {
                return Err(err(format!(
                    "{key} {id} is outside the vocabulary (vocab_size {})",
                    self.vocab_size
                )));
            }
        }
        let config = Config {
            family,
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
            sliding_window,
            max_window_layers,
            bos_token_id: self.bos_token_id,
            pad_token_id: self.pad_token_id,
            eos_token_ids,
        };
        if crate::params::param_count(&config).is_none() {
            return Err(err(format!(
                "the sizes overflow: vocab_size {}, hidden_size {}, intermediate_size {} and num_hidden_layers {} \
                 make a parameter count beyond 64 bits",
                self.vocab_size, self.hidden_size, self.intermediate_size, self.num_hidden_layers
            )));
        }
        Ok(config)
    }

    /// `(sliding_window, max_window_layers)` as the family's config class resolves them (`MistralConfig`:
    /// every layer, default window 4096; `Qwen2Config.__post_init__`: only with `use_sliding_window`, layers
    /// from `max_window_layers` (default 28) on, or as an explicit `layer_types` list says).
    fn attention_window(&self, family: Family) -> std::result::Result<(Option<usize>, usize), String> {
        let window = |v: Option<&Value>| -> std::result::Result<Option<usize>, String> {
            match v {
                None => Ok(Some(4096)),
                Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(w) if w > 0 => Ok(Some(w as usize)),
                    _ => Err(format!("sliding_window must be a positive integer or null, got {v}")),
                },
            }
        };
        match family {
            Family::Llama => Ok((None, 0)),
            Family::Mistral => Ok((window(self.extra.get("sliding_window"))?, 0)),
            Family::Qwen2 => {
                let use_sliding = match self.extra.get("use_sliding_window") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(v) => return Err(format!("use_sliding_window must be true or false, got {v}")),
                };
                let max_window_layers = match self.extra.get("max_window_layers") {
                    None | Some(Value::Null) => 28,
                    Some(v) => v
                        .as_u64()
                        .ok_or_else(|| format!("max_window_layers must be a non-negative integer, got {v}"))?
                        as usize,
                };
                let sliding_window = match use_sliding {
                    true => window(self.extra.get("sliding_window"))?,
                    false => None,
                };
                if use_sliding && sliding_window.is_none() {
                    return Err("use_sliding_window is true but sliding_window is null".into());
                }
                if let Some(given) = self.extra.get("layer_types").filter(|v| !v.is_null()) {
                    let derived: Vec<&str> = (0..self.num_hidden_layers)
                        .map(|i| match sliding_window.is_some() && i >= max_window_layers {
                            true => "sliding_attention",
                            false => "full_attention",
                        })
                        .collect();
                    if *given != serde_json::json!(derived) {
                        return Err(format!(
                            "layer_types {given} is not the pattern use_sliding_window = {use_sliding} and \
                             max_window_layers = {max_window_layers} give ({derived:?}); other per-layer patterns \
                             are not supported"
                        ));
                    }
                }
                Ok((sliding_window, max_window_layers))
            }
        }
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
    /// Whether `q_proj`, `k_proj` and `v_proj` have biases: Llama's `attention_bias`, always for Qwen2.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.family == Family::Qwen2
    }

    /// Whether `o_proj` has a bias: Llama's `attention_bias` (never for Mistral or Qwen2).
    pub fn o_bias(&self) -> bool {
        self.attention_bias
    }

    /// The attention window of decoder layer `layer` (`None`: full causal attention).
    pub fn layer_window(&self, layer: usize) -> Option<usize> {
        self.sliding_window.filter(|_| layer >= self.max_window_layers)
    }

    /// The longest sequence generation may reach: `max_position_embeddings`, except for `dynamic` RoPE, whose
    /// purpose is to run past it (`None`: no limit).
    pub fn generation_limit(&self) -> Option<usize> {
        (!self.rope_scaling.is_dynamic()).then_some(self.max_position_embeddings)
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

    /// The shape of SmolLM2-135M (`HuggingFaceTB/SmolLM2-135M`'s config.json): hidden 576, 30 layers, GQA 9:3,
    /// MLP 1536, vocab 49152, tied embeddings, rope_theta 100000, context 8192, eps 1e-5, bos/eos 0.
    pub fn smollm2_135m() -> Self {
        Self {
            max_position_embeddings: 8192,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            tie_word_embeddings: true,
            initializer_range: 0.041_666_666_666_666_664,
            bos_token_id: Some(0),
            eos_token_ids: vec![0],
            ..Self::sized(49152, 576, 1536, 30, 9, 3)
        }
    }

    /// Names of the presets, for messages.
    pub const PRESETS: [&str; 6] =
        ["tiny-test", "bench-a", "bench-b", "llama2-7b", "llama2-13b", "smollm2-135m"];

    /// A named preset: one of [`Config::PRESETS`].
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "tiny-test" => Self::tiny_test(),
            "bench-a" => Self::bench_a(),
            "bench-b" => Self::bench_b(),
            "llama2-7b" => Self::llama2_7b(),
            "llama2-13b" => Self::llama2_13b(),
            "smollm2-135m" => Self::smollm2_135m(),
            _ => return None,
        })
    }

    fn sized(vocab: usize, hidden: usize, mlp: usize, layers: usize, heads: usize, kv_heads: usize) -> Self {
        Self {
            family: Family::Llama,
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
            sliding_window: None,
            max_window_layers: 0,
            bos_token_id: Some(1),
            pad_token_id: None,
            eos_token_ids: vec![2],
        }
    }

    /// The HF `config.json` for this config (transformers v4 layout, which v5 also reads), with the family's
    /// `model_type`, `architectures` and window keys.
    pub fn to_hf(&self, dtype: &str) -> LlamaConfig {
        let mut extra = Map::new();
        extra.insert("model_type".into(), self.family.model_type().into());
        extra.insert("architectures".into(), Value::from(vec![self.family.architecture()]));
        extra.insert("torch_dtype".into(), dtype.into());
        extra.insert("use_cache".into(), true.into());
        match self.family {
            Family::Llama => {}
            Family::Mistral => {
                extra.insert("sliding_window".into(), self.sliding_window.into());
            }
            Family::Qwen2 => {
                extra.insert("use_sliding_window".into(), self.sliding_window.is_some().into());
                extra.insert("sliding_window".into(), self.sliding_window.into());
                extra.insert("max_window_layers".into(), self.max_window_layers.into());
            }
        }
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
            rope_scaling: self.rope_scaling.to_hf_json(),
            rope_parameters: None,
            attention_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
            bos_token_id: self.bos_token_id,
            eos_token_id: match self.eos_token_ids.as_slice() {
                [] => None,
                [one] => Some((*one).into()),
                many => Some(many.into()),
            },
            pad_token_id: self.pad_token_id,
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

    const BASE: &str = r#""vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,
        "num_attention_heads":2"#;

    fn with(extra: &str) -> Result<Config> {
        parse(&format!("{{{BASE}{}{extra}}}", if extra.is_empty() { "" } else { "," }))
    }

    #[test]
    fn v5_rope_parameters_and_defaults() {
        let c = with(
            r#""rope_parameters":{"rope_type":"default","rope_theta":500000.0},
                "eos_token_id":[2,7],"some_future_key":{"x":1}"#,
        )
        .expect("valid config");
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.num_kv_heads, 2);
        assert_eq!(c.head_dim, 4);
        assert_eq!(c.eos_token_ids, vec![2, 7]);
        assert_eq!(c.family, Family::Llama);
    }

    #[test]
    fn v4_rope_scaling_wins_over_rope_parameters_like_transformers() {
        let c = with(
            r#""rope_theta":1000.0,"rope_scaling":{"rope_type":"linear","factor":2.0},
                "rope_parameters":{"rope_type":"default","rope_theta":7.0}"#,
        )
        .expect("valid");
        assert_eq!((c.rope_theta, c.rope_scaling), (1000.0, RopeScaling::Linear { factor: 2.0 }));
    }

    #[test]
    fn families_set_their_switches() {
        let q = with(r#""model_type":"qwen2","tie_word_embeddings":true"#).expect("qwen2");
        assert_eq!(
            (q.family, q.qkv_bias(), q.o_bias(), q.sliding_window),
            (Family::Qwen2, true, false, None)
        );
        let q = with(
            r#""model_type":"qwen2","use_sliding_window":true,"sliding_window":5,"max_window_layers":1,
               "layer_types":["full_attention","sliding_attention"]"#,
        )
        .expect("qwen2 sliding");
        assert_eq!((q.layer_window(0), q.layer_window(1)), (None, Some(5)));
        let m = with(r#""model_type":"mistral""#).expect("mistral");
        assert_eq!(
            (m.layer_window(0), m.qkv_bias()),
            (Some(4096), false),
            "absent key: MistralConfig's 4096"
        );
        let m = with(r#""model_type":"mistral","sliding_window":null"#).expect("mistral");
        assert_eq!(m.sliding_window, None);
    }

    /// Each refused config names the key at fault (and the value where there is one).
    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (r#""model_type":"gemma""#, "model_type \"gemma\""),
            (r#""hidden_act":"gelu""#, "hidden_act \"gelu\""),
            (r#""max_position_embeddings":0"#, "max_position_embeddings must be positive"),
            (r#""rms_norm_eps":-1e-6"#, "rms_norm_eps"),
            (r#""rope_theta":0.0"#, "rope_theta must be a positive finite number, got 0"),
            (r#""rope_theta":-5.0"#, "rope_theta"),
            (r#""rope_parameters":{"rope_type":"default","rope_theta":-1.0}"#, "rope_parameters.rope_theta"),
            (r#""rope_scaling":{"rope_type":"yarn2","factor":4.0}"#, "rope_scaling.rope_type \"yarn2\""),
            (r#""rope_scaling":{"rope_type":"longrope","factor":4.0}"#, "\"longrope\" is not supported"),
            (r#""rope_scaling":{"rope_type":"linear"}"#, "rope_scaling.factor is missing"),
            (
                r#""rope_scaling":{"rope_type":"linear","factor":0.0}"#,
                "rope_scaling.factor must be a positive",
            ),
            (
                r#""rope_scaling":{"rope_type":"dynamic","factor":"2"}"#,
                "rope_scaling.factor must be a number",
            ),
            (
                r#""rope_parameters":{"rope_type":"llama3","factor":8.0,"high_freq_factor":4.0}"#,
                "rope_parameters.low_freq_factor is missing",
            ),
            (
                r#""rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":4.0,"high_freq_factor":1.0}"#,
                "rope_scaling.high_freq_factor (1) must be greater than rope_scaling.low_freq_factor (4)",
            ),
            (
                r#""rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                   "original_max_position_embeddings":0}"#,
                "rope_scaling.original_max_position_embeddings must be positive",
            ),
            (
                r#""rope_scaling":{"rope_type":"yarn","factor":4.0,"attention_factor":-1.0}"#,
                "rope_scaling.attention_factor must be positive",
            ),
            (r#""rope_scaling":{"rope_type":"yarn","factor":4.0,"truncate":1}"#, "rope_scaling.truncate"),
            (
                r#""rope_scaling":{"rope_type":"linear","factor":2.0,"partial_rotary_factor":0.5}"#,
                "rope_scaling.partial_rotary_factor",
            ),
            (r#""model_type":"mistral","sliding_window":0"#, "sliding_window must be a positive integer"),
            (
                r#""model_type":"qwen2","use_sliding_window":true,"sliding_window":null"#,
                "sliding_window is null",
            ),
            (
                r#""model_type":"qwen2","use_sliding_window":"yes""#,
                "use_sliding_window must be true or false",
            ),
            (
                r#""model_type":"qwen2","layer_types":["sliding_attention","full_attention"]"#,
                "layer_types [\"sliding_attention\",\"full_attention\"]",
            ),
            (r#""model_type":"qwen2","attention_bias":true"#, "attention_bias = true"),
            (r#""model_type":"mistral","mlp_bias":true"#, "mlp_bias = true"),
        ];
        for (extra, want) in cases {
            let e = with(extra).expect_err(extra).to_string();
            assert!(e.starts_with("c.json: invalid model config: "), "{e}");
            assert!(e.contains(want), "{extra}: {e:?} should contain {want:?}");
        }
    }

    #[test]
    fn refuses_bad_gqa() {
        let e = parse(
            r#"{"vocab_size":10,"hidden_size":12,"intermediate_size":16,"num_hidden_layers":1,
                "num_attention_heads":3,"num_key_value_heads":2}"#,
        )
        .expect_err("3 heads over 2 kv heads");
        assert!(e.to_string().contains("multiple of num_key_value_heads"), "{e}");
    }

    #[test]
    fn round_trips_through_hf_layout() {
        let llama3 = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        let yarn = RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 32,
            attention_factor: Some(1.2),
            beta_fast: None,
            beta_slow: Some(2.0),
            mscale: None,
            mscale_all_dim: None,
            truncate: Some(false),
        };
        let tiny = Config::tiny_test();
        for c in [
            tiny.clone(),
            Config::smollm2_135m(),
            Config { rope_scaling: llama3, bos_token_id: None, pad_token_id: Some(0), ..tiny.clone() },
            Config { rope_scaling: RopeScaling::Dynamic { factor: 2.0 }, ..tiny.clone() },
            Config { family: Family::Mistral, sliding_window: Some(7), rope_scaling: yarn, ..tiny.clone() },
            Config { family: Family::Mistral, ..tiny.clone() },
            Config { family: Family::Qwen2, sliding_window: Some(3), max_window_layers: 1, ..tiny.clone() },
            Config {
                family: Family::Qwen2,
                max_window_layers: 28,
                tie_word_embeddings: true,
                ..tiny.clone()
            },
        ] {
            let hf = c.to_hf("float32");
            let text = serde_json::to_string(&hf).expect("json");
            let back: LlamaConfig = serde_json::from_str(&text).expect("parse");
            assert_eq!(back.to_config(Path::new("x")).expect("valid"), c, "{text}");
        }
    }

    #[test]
    fn special_token_ids_outside_the_vocabulary_are_refused() {
        for key in ["eos_token_id", "bos_token_id", "pad_token_id"] {
            let json = format!(
                r#"{{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
                    "num_attention_heads":2,"{key}":99999}}"#
            );
            let e = parse(&json).expect_err(key);
            assert!(e.to_string().contains(&format!("{key} 99999 is outside the vocabulary")), "{e}");
        }
    }
}
