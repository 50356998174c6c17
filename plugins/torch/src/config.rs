//! The subset of an HF Llama `config.json` this backend runs (v4 and v5 RoPE layouts).

use serde::Deserialize;
use serde_json::Value;

/// A Llama configuration, checked for what this backend supports.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_scaling: Option<Value>,
    #[serde(default)]
    pub rope_parameters: Option<Value>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default = "silu")]
    pub hidden_act: String,
}

fn eps() -> f64 {
    1e-6
}

fn silu() -> String {
    "silu".into()
}

impl Config {
    /// Reads and checks `dir/config.json`.
    pub fn load(dir: &std::path::Path) -> Result<Config, String> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: Config = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let unsupported = |what: &str| Err(format!("{}: {what} is not supported by the torch backend", path.display()));
        if c.attention_bias || c.mlp_bias {
            return unsupported("bias in attention or MLP");
        }
        if c.hidden_act != "silu" {
            return unsupported(&format!("hidden_act {:?}", c.hidden_act));
        }
        if c.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported("rope_scaling");
        }
        if let Some(t) = c.rope_parameters.as_ref().and_then(|p| p.get("rope_type")).and_then(Value::as_str)
            && t != "default"
        {
            return unsupported(&format!("rope_type {t:?}"));
        }
        if c.num_attention_heads == 0 || c.num_attention_heads % c.kv_heads() != 0 {
            return Err(format!("{}: heads {} not a multiple of kv heads {}", path.display(), c.num_attention_heads, c.kv_heads()));
        }
        Ok(c)
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads).max(1)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    pub fn theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|p| p.get("rope_theta")).and_then(Value::as_f64))
            .unwrap_or(10_000.0)
    }
}
