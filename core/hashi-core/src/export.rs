//! The request `hashi export` hands an export plugin (`request.json` in the output folder): an experiment with
//! everything resolved that needs hashi's own machinery, in the types the rest of hashi uses.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::EngineSchedule;
use crate::optim::AdamWConfig;
use crate::plan::ResolvedPlan;

/// What an export plugin receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The experiment's name.
    pub experiment: String,
    /// The export target (`megatron`, `neuron`).
    pub target: String,
    /// Tokens per sequence.
    pub seq_len: u64,
    /// Sequences per micro-batch (the plan's batch size).
    pub micro_batch_sequences: u64,
    /// Micro-batches per optimizer step.
    pub accumulation: u64,
    /// Sequences per optimizer step (`micro_batch_sequences × accumulation`).
    pub global_batch_sequences: u64,
    /// Optimizer steps of each phase.
    pub steps_per_phase: Vec<u64>,
    /// The curriculum resolved against the shards.
    pub plan: ResolvedPlan,
    /// The prepared corpora by name.
    pub corpora: BTreeMap<String, ExportCorpus>,
    /// The model to train.
    pub model: ExportModel,
    /// The tokenizer directory (HF files), if any.
    pub tokenizer: Option<String>,
    /// Optimizer settings.
    pub optimizer: AdamWConfig,
    /// Each phase's learning-rate schedule in engine terms.
    pub schedules: Vec<EngineSchedule>,
    /// The learning rate of every optimizer step (what the engine schedules must reproduce).
    pub lr: Vec<f64>,
    /// Nodes, devices and parallelism.
    pub cluster: Cluster,
}

impl ExportRequest {
    /// Writes the request as pretty JSON (`request.json`).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        crate::write_atomic(path, text.as_bytes())
    }
}

/// A prepared corpus: its Megatron-LM dataset prefix (absolute), language and size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportCorpus {
    /// `.bin`/`.idx` path without the extension.
    pub prefix: String,
    /// Language code.
    pub lang: String,
    /// Documents in the dataset.
    pub documents: u64,
    /// Tokens in the dataset.
    pub tokens: u64,
}

/// The model of an export: a source directory (continued pretraining) or none (from scratch), and its HF config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportModel {
    /// The HF source model directory (absolute), or none when training from scratch.
    pub dir: Option<String>,
    /// Its `config.json`.
    pub config: serde_json::Value,
}

/// An experiment's `cluster` table: the layout `hashi export` writes jobs for (ignored by `hashi train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// Machines.
    pub nodes: u64,
    /// Accelerators per machine (GPUs; NeuronCores for Trainium: 32 on a trn1.32xlarge).
    pub devices_per_node: u64,
    /// Tensor-parallel degree.
    pub tensor_parallel: u64,
    /// Pipeline-parallel degree.
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
