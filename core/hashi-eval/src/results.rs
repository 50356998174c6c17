//! The results file of an evaluation (`hashi eval --out`, `RUN/evals/*.json`), in lm-evaluation-harness' layout:
//! `results` by task, `versions`, `n-shot`, `config`, and hashi's `bits_per_byte`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bpb::Bpb;
use crate::harness::EvalError;
use crate::protocols::{ProtocolDelta, deltas_table};

/// One task's scores, each on its upstream's scale. jp-stable: choice tasks fill the accuracy family, QA tasks
/// `exact_match`/`f1` (×100, as upstream), MGSM `acc`. llm-jp-eval (`llmjp-1.3.0:*`): `exact_match` and `char_f1`
/// as fractions in [0, 1] (as Swallow reports them), with `main_metric` naming the official one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Documents scored.
    pub docs: usize,
    /// Accuracy (argmax of the log-likelihoods; MGSM: the extracted number equals the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc: Option<f64>,
    /// Standard error of `acc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc_stderr: Option<f64>,
    /// Accuracy with log-likelihoods divided by the choice's characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// Standard error of `acc_norm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc_norm_stderr: Option<f64>,
    /// Mean recall over the gold classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balanced_acc: Option<f64>,
    /// Matthews correlation coefficient (JCoLA's metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<f64>,
    /// F1 averaged over the classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Exact match over MeCab words, ×100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_match: Option<f64>,
    /// Standard error of `exact_match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_match_stderr: Option<f64>,
    /// Token F1 over MeCab words, ×100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// Standard error of `f1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1_stderr: Option<f64>,
    /// Prompts cut from the left to fit the model's positions (`truncate_overlong`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_contexts: Option<usize>,
    /// MGSM and JaQKET: few-shot examples dropped to fit, summed over documents (upstream's rule: drawn again
    /// with one shot fewer while the prompt leaves no room for the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shots_dropped_to_fit: Option<usize>,
    /// QA: how the generation length was bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<String>,
    /// llm-jp-eval's `char_f1` (fuzzywuzzy's token-sort ratio / 100), in [0, 1] as Swallow reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_f1: Option<f64>,
    /// Standard error of `char_f1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_f1_stderr: Option<f64>,
    /// The task's official metric (`acc`, `exact_match`, `char_f1`, ...), where the protocol names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_metric: Option<String>,
    /// Expected score of a uniform random answer under the main metric (multiple choice: 1 / choices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chance: Option<f64>,
    /// Score of always giving the evaluated documents' most frequent gold answer, under the main metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub majority_baseline: Option<f64>,
    /// Micro-averaged main metric by category (JMMLU: STEM, humanities, social sciences, other).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_category: BTreeMap<String, f64>,
    /// Greedy generations that hit the token limit without ending (llm-jp-eval tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generations_at_limit: Option<usize>,
}

impl TaskResult {
    /// A metric by its lm-eval name (`acc`, `f1`, ...), if this task has it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "acc" => self.acc,
            "acc_stderr" => self.acc_stderr,
            "acc_norm" => self.acc_norm,
            "acc_norm_stderr" => self.acc_norm_stderr,
            "balanced_acc" => self.balanced_acc,
            "mcc" => self.mcc,
            "macro_f1" => self.macro_f1,
            "exact_match" => self.exact_match,
            "exact_match_stderr" => self.exact_match_stderr,
            "f1" => self.f1,
            "f1_stderr" => self.f1_stderr,
            "char_f1" => self.char_f1,
            "char_f1_stderr" => self.char_f1_stderr,
            _ => None,
        }
    }
}

/// How the results were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// The model directory.
    pub model: PathBuf,
    /// Few-shot examples per prompt.
    pub num_fewshot: usize,
    /// Documents per task (after the upstream shuffle), if limited.
    pub limit: Option<usize>,
    /// The task data folder.
    pub data: PathBuf,
    /// Whether overlong prompts were cut instead of refused.
    pub truncate_overlong: bool,
    /// Whose prompts and scoring these are.
    pub harness: String,
    /// llm-jp-eval tasks: whether the prompt was encoded with the tokenizer's special tokens (BOS where the
    /// tokenizer adds one, as transformers' text-generation pipeline does); upstream does not pin this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llmjp_add_special_tokens: Option<bool>,
}

/// A whole results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    /// Scores by task name (upstream form, e.g. `jnli-1.3-0.3`).
    pub results: BTreeMap<String, TaskResult>,
    /// Bits per byte on each language's held-out text.
    pub bits_per_byte: Vec<Bpb>,
    /// Task versions (the part of the name after the first `-`).
    pub versions: BTreeMap<String, String>,
    /// Shots by task.
    #[serde(rename = "n-shot")]
    pub n_shot: BTreeMap<String, usize>,
    /// The settings.
    pub config: EvalConfig,
    /// Datasets scored under both protocols (jp-stable and llm-jp-eval), side by side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol_deltas: Vec<ProtocolDelta>,
}

impl EvalResults {
    /// Reads a results file.
    ///
    /// # Errors
    /// [`EvalError::Io`] when it cannot be read, [`EvalError::Input`] naming the file when it is not this layout.
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
        serde_json::from_str(&text)
            .map_err(|e| EvalError::Input(format!("{}: not an evaluation results file: {e}", path.display())))
    }

    /// What `hashi eval` prints: bits per byte per language, a line per task with its metrics (and, where
    /// known, chance and majority baselines and JMMLU's categories), and the protocol deltas as a table.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for b in &self.bits_per_byte {
            out += &format!(
                "bits per byte, {}: {:.4} ({} documents, {} bytes, {} tokens)\n",
                b.lang, b.bits_per_byte, b.documents, b.bytes, b.tokens
            );
        }
        if self.results.is_empty() {
            return out;
        }
        out += &format!("{:<28} {:>6}  metrics\n", "task", "docs");
        for (name, r) in &self.results {
            let shown: Vec<String> =
                ["acc", "acc_norm", "balanced_acc", "mcc", "exact_match", "f1", "char_f1"]
                    .iter()
                    .filter_map(|k| r.metric(k).map(|v| format!("{k} {v:.4}")))
                    .collect();
            let baselines: Vec<String> = [("chance", r.chance), ("majority answer", r.majority_baseline)]
                .iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k} {v:.4}")))
                .collect();
            let baselines =
                if baselines.is_empty() { String::new() } else { format!(" ({})", baselines.join(", ")) };
            out += &format!("{name:<28} {:>6}  {}{baselines}\n", r.docs, shown.join(", "));
            if !r.by_category.is_empty() {
                let cats: Vec<String> = r.by_category.iter().map(|(c, v)| format!("{c} {v:.4}")).collect();
                out += &format!("{:<28} by category: {}\n", "", cats.join(", "));
            }
            if let Some(n) = r.truncated_contexts.filter(|&n| n > 0) {
                out += &format!("{:<28} {n} prompts cut from the left to fit the model's positions\n", "");
            }
            if let Some(n) = r.shots_dropped_to_fit.filter(|&n| n > 0) {
                out += &format!("{:<28} {n} few-shot pieces dropped to fit (upstream's rule)\n", "");
            }
        }
        if !self.protocol_deltas.is_empty() {
            out += "\nThe same datasets under both protocols (scores in percent):\n\n";
            out += &deltas_table(&self.protocol_deltas);
        }
        out
    }

    /// Writes it as pretty JSON, atomically.
    ///
    /// # Errors
    /// [`EvalError::Io`] naming the file.
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| EvalError::Input(e.to_string()))? + "\n";
        hashi_core::write_atomic(path, text.as_bytes())
            .map_err(|source| EvalError::Io { path: path.into(), source })
    }
}
