//! The request `hashi export` sends is `hashi_core::ExportRequest`; this reads the model dimensions the engines'
//! flags need out of its HF config.

use hashi_core::ExportModel;

/// Model dimensions read from the HF config.
#[derive(Debug)]
pub struct Dims {
    pub layers: u64,
    pub hidden: u64,
    pub ffn: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub vocab: u64,
    pub max_pos: u64,
    pub eps: f64,
    pub theta: f64,
    pub tied: bool,
    pub init_std: f64,
}

impl Dims {
    /// The dimensions in `model.config`.
    pub fn of(model: &ExportModel) -> Result<Dims, String> {
        let c = &model.config;
        let u = |k: &str| {
            c.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| format!("model config: no {k}"))
        };
        let heads = u("num_attention_heads")?;
        let theta = c
            .get("rope_theta")
            .and_then(serde_json::Value::as_f64)
            .or_else(|| c.pointer("/rope_parameters/rope_theta").and_then(serde_json::Value::as_f64))
            .unwrap_or(10_000.0);
        Ok(Dims {
            layers: u("num_hidden_layers")?,
            hidden: u("hidden_size")?,
            ffn: u("intermediate_size")?,
            heads,
            kv_heads: c.get("num_key_value_heads").and_then(serde_json::Value::as_u64).unwrap_or(heads),
            vocab: u("vocab_size")?,
            max_pos: c.get("max_position_embeddings").and_then(serde_json::Value::as_u64).unwrap_or(4096),
            eps: c.get("rms_norm_eps").and_then(serde_json::Value::as_f64).unwrap_or(1e-6),
            theta,
            tied: c.get("tie_word_embeddings").and_then(serde_json::Value::as_bool).unwrap_or(false),
            init_std: c.get("initializer_range").and_then(serde_json::Value::as_f64).unwrap_or(0.02),
        })
    }
}
