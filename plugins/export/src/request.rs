//! The request `hashi export` sends: the resolved experiment (see `core/hashi-cli/src/export.rs`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole request.
#[derive(Debug, Deserialize)]
pub struct Request {
    pub experiment: String,
    pub seq_len: u64,
    pub global_batch_sequences: u64,
    pub steps_per_phase: Vec<u64>,
    pub plan: Plan,
    pub corpora: BTreeMap<String, Corpus>,
    pub model: Model,
    pub tokenizer: Option<String>,
    pub optimizer: Optimizer,
    pub schedules: Vec<Schedule>,
    pub lr: Vec<f64>,
    #[serde(default)]
    pub cluster: Cluster,
}

#[derive(Debug, Deserialize)]
pub struct Plan {
    pub decl: PlanDecl,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Deserialize)]
pub struct PlanDecl {
    pub batch_size: u64,
}

#[derive(Debug, Deserialize)]
pub struct Phase {
    pub name: String,
    pub batches: u64,
    pub langs: Vec<LangPhase>,
}

#[derive(Debug, Deserialize)]
pub struct LangPhase {
    pub lang: String,
    pub order: String,
    pub sources: Vec<SourceShare>,
}

#[derive(Debug, Deserialize)]
pub struct SourceShare {
    pub name: String,
    pub sequences: u64,
}

#[derive(Debug, Deserialize)]
pub struct Corpus {
    pub prefix: String,
    pub lang: String,
    pub tokens: u64,
}

#[derive(Debug, Deserialize)]
pub struct Model {
    /// The HF source model (continued pretraining), or none (from scratch).
    pub dir: Option<String>,
    pub config: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct Optimizer {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub clip: f64,
    pub freeze: Vec<String>,
    pub freeze_rows: BTreeMap<String, serde_json::Value>,
}

/// A phase's schedule in engine terms (hashi-train's `EngineSchedule`).
#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub style: String,
    pub max_lr: f64,
    pub min_lr: f64,
    pub warmup_init: f64,
    pub warmup_steps: u64,
    pub decay_steps: u64,
}

/// The experiment's `cluster` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// Machines.
    pub nodes: u64,
    /// Accelerators per machine (GPUs; NeuronCores for Trainium: 32 on a trn1.32xlarge).
    pub devices_per_node: u64,
    pub tensor_parallel: u64,
    pub pipeline_parallel: u64,
    /// Sequences per device per forward pass.
    pub micro_batch_size: u64,
    /// Free text: the machine type (documentation only).
    pub instance: String,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            nodes: 1,
            devices_per_node: 8,
            tensor_parallel: 1,
            pipeline_parallel: 1,
            micro_batch_size: 1,
            instance: String::new(),
        }
    }
}

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

impl Model {
    pub fn dims(&self) -> Result<Dims, String> {
        let c = &self.config;
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
