//! One type per file hashi writes that more than one crate reads, each with its reader: the trainer's state
//! (`trainer_state.json` in every checkpoint), the metrics (`metrics.jsonl`) and the mixer's cursor inside the
//! state. Evaluation results are `hashi_eval::EvalResults`, the export request [`crate::ExportRequest`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// In-loop bits per byte per language on held-out text, after this step (at the steps where it is due).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bpb: BTreeMap<String, f64>,
    /// Wall time of that evaluation (not part of `seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_seconds: Option<f64>,
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

/// `RUN/run.json`: what `hashi run` made, with paths relative to the run folder (the index stays valid when the
/// folder moves); `hashi report` reads nothing else to find a run's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunIndex {
    /// The run's name.
    pub name: String,
    /// The run file.
    pub experiment: PathBuf,
    /// Whether it ran with `--quick`.
    pub quick: bool,
    /// Seeds every variant was trained with.
    pub seeds: Vec<u64>,
    /// The English source model and its evaluation.
    pub base: RunModel,
    /// The trained bilingual tokenizer's folder and its analysis.
    pub tokenizer: RunTokenizer,
    /// The transferred model of every vocabulary a variant starts from (replacement, expansion), in that order,
    /// with its report and its evaluation. Variants of the original vocabulary start from `base`.
    pub transfers: Vec<RunTransfer>,
    /// Every variant and seed trained.
    pub variants: Vec<RunVariant>,
    /// The CPU and threads.
    pub machine: String,
    /// Seconds of every finished stage, by stage id.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Wall time of the invocation that wrote this index.
    pub seconds_this_invocation: f64,
}

/// A model of a run and its evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunModel {
    /// The model directory.
    pub model: PathBuf,
    /// Its evaluation results (relative to the run folder).
    pub eval: String,
}

/// The tokenizer of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunTokenizer {
    /// Its folder (relative).
    pub dir: String,
    /// `tokenizer-analysis.json` (relative).
    pub analysis: String,
}

fn trained_tokenizer() -> String {
    "tokenizer".into()
}

fn trained_analysis() -> String {
    "tokenizer-analysis.json".into()
}

/// How a variant's model gets its vocabulary: the three starting points of a run's comparison matrix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Vocabulary {
    /// Vocabulary replacement: the trained tokenizer instead of the base model's, matched rows kept and the rest
    /// initialised by the transfer's strategy.
    #[default]
    Replace,
    /// Vocabulary expansion: the base model's tokenizer with the trained tokenizer's missing pieces appended
    /// (`hashi tokenizer expand`), every base row kept.
    Expand,
    /// The base model and its own tokenizer, untouched.
    Original,
}

impl Vocabulary {
    /// Every vocabulary, in the order runs and reports list them.
    pub const ALL: [Self; 3] = [Self::Replace, Self::Expand, Self::Original];

    /// Its name in run files (`"replace"`, `"expand"`, `"original"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Expand => "expand",
            Self::Original => "original",
        }
    }

    /// What reports call it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Replace => "vocabulary replaced",
            Self::Expand => "vocabulary expanded",
            Self::Original => "original vocabulary",
        }
    }
}

impl TryFrom<String> for Vocabulary {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown vocabulary {s:?} (known: \"replace\", \"expand\", \"original\")"))
    }
}

impl std::fmt::Display for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The transfer of a run to one vocabulary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunTransfer {
    /// Replacement or expansion (replacement in an index written before runs had several).
    #[serde(default)]
    pub vocabulary: Vocabulary,
    /// The tokenizer the transferred model reads with (relative).
    #[serde(default = "trained_tokenizer")]
    pub tokenizer: String,
    /// That tokenizer's analysis against the base model's on the held-out text (relative).
    #[serde(default = "trained_analysis")]
    pub analysis: String,
    /// The transferred model (relative).
    pub dir: String,
    /// `transfer_report.json` (relative).
    pub report: String,
    /// Its evaluation (relative).
    pub eval: String,
}

/// One variant and seed of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunVariant {
    /// `NAME-sSEED`.
    pub id: String,
    /// The variant's name.
    pub name: String,
    /// What the report calls it.
    pub label: String,
    /// Its seed.
    pub seed: u64,
    /// Trained from random weights.
    pub from_scratch: bool,
    /// The vocabulary it was trained with (and, unless from scratch, started from).
    #[serde(default)]
    pub vocabulary: Vocabulary,
    /// Its curriculum.
    pub curriculum: PathBuf,
    /// Its training folder (relative).
    pub train: String,
    /// The resolved plan of its last checkpoint (relative).
    pub plan: String,
    /// Step 0 and every data-switch checkpoint, with their evaluations.
    pub checkpoints: Vec<RunCheckpoint>,
}

/// A checkpoint of a variant (or its starting point, step 0) and its evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunCheckpoint {
    /// Optimizer steps done.
    pub step: u64,
    /// Tokens trained on.
    pub tokens: u64,
    /// Tokens per language (none at step 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_by_lang: Option<BTreeMap<String, u64>>,
    /// UTF-8 bytes of text those tokens hold per language (none at step 0): each language's tokens times the bytes
    /// per token of its corpora in the variant's shards (`text_bytes / tokens` of their manifest entries), so that
    /// variants of different vocabularies compare by text read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_bytes_by_lang: Option<BTreeMap<String, u64>>,
    /// The phase the checkpoint ends (none at step 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<usize>,
    /// The checkpoint folder (relative; none at step 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Its evaluation results (relative).
    pub eval: String,
}

impl RunIndex {
    /// Reads `RUN/run.json`.
    ///
    /// # Errors
    /// A message naming the folder when it is not a run folder, or the file when it is not a run index.
    pub fn read(run_dir: &Path) -> Result<Self, String> {
        let p = run_dir.join("run.json");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("{}: not a run directory ({e})", run_dir.display()))?;
        let bad = |e: serde_json::Error| format!("{}: not a run index: {e}", p.display());
        let mut value: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
        // An index written before runs had several vocabularies holds its one transfer as `transfer`.
        if let Some(map) = value.as_object_mut()
            && !map.contains_key("transfers")
            && let Some(t) = map.remove("transfer")
        {
            map.insert("transfers".into(), serde_json::Value::Array(vec![t]));
        }
        serde_json::from_value(value).map_err(bad)
    }

    /// Writes `RUN/run.json` atomically.
    ///
    /// # Errors
    /// A message naming the file.
    pub fn write(&self, run_dir: &Path) -> Result<(), String> {
        let p = run_dir.join("run.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())? + "\n";
        crate::write_atomic(&p, text.as_bytes()).map_err(|e| format!("writing {}: {e}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index written before runs had several vocabularies (one `transfer`, variants without `vocabulary`) reads
    /// as a run of one replaced vocabulary.
    #[test]
    fn an_index_with_one_transfer_reads_as_a_replaced_vocabulary() {
        let dir = std::env::temp_dir().join(format!("hashi-legacy-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let old = serde_json::json!({
            "name": "old", "experiment": "x.lua", "quick": false, "seeds": [1],
            "base": {"model": "base", "eval": "evals/base.json"},
            "tokenizer": {"dir": "tokenizer", "analysis": "tokenizer-analysis.json"},
            "transfer": {"dir": "transfer", "report": "transfer/transfer_report.json", "eval": "evals/transfer.json"},
            "variants": [{"id": "exp0-s1", "name": "exp0", "label": "exp0", "seed": 1, "from_scratch": false,
                          "curriculum": "c.lua", "train": "variants/exp0-s1/train", "plan": "p.json",
                          "checkpoints": []}],
            "machine": "cpu", "stage_seconds": {}, "seconds_this_invocation": 1.0
        });
        std::fs::write(dir.join("run.json"), old.to_string()).expect("write");
        let index = RunIndex::read(&dir).expect("an old index reads");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(index.transfers.len(), 1);
        let t = &index.transfers[0];
        assert_eq!(
            (t.vocabulary, t.dir.as_str(), t.tokenizer.as_str()),
            (Vocabulary::Replace, "transfer", "tokenizer")
        );
        assert_eq!(t.analysis, "tokenizer-analysis.json");
        assert_eq!(index.variants[0].vocabulary, Vocabulary::Replace);
    }

    #[test]
    fn vocabularies_are_named_as_in_run_files() {
        for v in Vocabulary::ALL {
            assert_eq!(serde_json::to_value(v).expect("json"), v.name());
            assert_eq!(serde_json::from_value::<Vocabulary>(v.name().into()).expect("reads"), v);
        }
        let e = serde_json::from_value::<Vocabulary>("expanded".into()).expect_err("unknown");
        assert!(e.to_string().contains("unknown vocabulary \"expanded\" (known: \"replace\""), "{e}");
    }
}
