//! One type per file hashi writes that more than one crate reads, each with its reader: the trainer's state
//! (`trainer_state.json` in every checkpoint), the metrics (`metrics.jsonl`) and the mixer's cursor inside the
//! state. Evaluation results are `hashi_eval::EvalResults`, the export request [`crate::ExportRequest`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Trainer-state format version.
pub const STATE_VERSION: u32 = 1;

/// Read position in one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPos {
    /// Epoch (0 = first pass).
    pub epoch: u64,
    /// Position in this epoch's document order.
    pub doc: u64,
    /// Token offset inside that document.
    pub offset: u64,
}

/// Where the mixer stands: everything needed to continue exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Current phase.
    pub phase: usize,
    /// Sequence slots filled in this phase.
    pub slot: u64,
    /// Sequences per language in this phase (plan order).
    pub lang_taken: Vec<u64>,
    /// Sequences per source per language in this phase.
    pub source_taken: Vec<Vec<u64>>,
    /// Read positions by source name.
    pub streams: BTreeMap<String, StreamPos>,
    /// Batches produced so far.
    pub batches: u64,
}

/// Everything besides weights and optimizer that resume needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// [`STATE_VERSION`].
    pub format_version: u32,
    /// Optimizer steps done.
    pub step: u64,
    /// Mixer position after the last step.
    pub cursor: Cursor,
    /// Tokens trained on, per language and per source.
    pub tokens_by_lang: BTreeMap<String, u64>,
    /// Tokens per source.
    pub tokens_by_source: BTreeMap<String, u64>,
    /// Running mean of the loss (spike detection).
    pub loss_ema: Option<f64>,
    /// Consecutive skipped steps.
    pub bad_steps: usize,
    /// Skipped steps in total.
    pub skipped: u64,
    /// Whether this checkpoint ends a phase (kept by pruning).
    pub phase_end: bool,
    /// Hashes of the scripts in force.
    pub scripts: BTreeMap<String, String>,
    /// Schedule generation in force.
    pub generation: u64,
    /// Curriculum edits applied so far.
    #[serde(default)]
    pub curriculum_generation: u64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    /// Step number (1-based: steps done).
    pub step: u64,
    /// Phase.
    pub phase: usize,
    /// Mean loss of the step's micro-batches (NaN-free: skipped steps report the bad value as a string).
    pub loss: Option<f64>,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: Option<f64>,
    /// Whether the step was skipped.
    pub skipped: bool,
    /// Tokens so far per language.
    pub tokens_by_lang: BTreeMap<String, u64>,
    /// Tokens so far per source.
    pub tokens_by_source: BTreeMap<String, u64>,
    /// Schedule generation.
    pub generation: u64,
    /// Curriculum generation.
    #[serde(default)]
    pub curriculum_generation: u64,
    /// Wall time of the step.
    pub seconds: f64,
    /// Throughput of the step.
    pub tokens_per_s: f64,
}

impl TrainerState {
    /// Reads `DIR/trainer_state.json` of a checkpoint.
    ///
    /// # Errors
    /// A message naming the file when it cannot be read or is not a trainer state.
    pub fn read(checkpoint: &Path) -> Result<Self, String> {
        let p = checkpoint.join("trainer_state.json");
        let text = std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a trainer state: {e}", p.display()))
    }

    /// Tokens trained on, all languages.
    pub fn tokens(&self) -> u64 {
        self.tokens_by_lang.values().sum()
    }
}

impl Metrics {
    /// Every line of a `metrics.jsonl` (lines that do not parse, e.g. a torn last line after a kill, are skipped).
    ///
    /// # Errors
    /// A message naming the file when it cannot be read.
    pub fn read_all(path: &Path) -> Result<Vec<Self>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}
