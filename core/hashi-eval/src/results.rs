//! The results file of an evaluation (`hashi eval --out`, `RUN/evals/*.json`), in lm-evaluation-harness' layout:
//! `results` by task, `versions`, `n-shot`, `config`, and hashi's `bits_per_byte`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bpb::Bpb;
use crate::harness::EvalError;

/// One task's scores. Choice tasks fill the accuracy family, QA tasks `exact_match`/`f1`, MGSM `acc`; scores are
/// fractions except `exact_match` and `f1` (×100, as upstream).
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
    /// MGSM: few-shot examples dropped to fit (upstream's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shots_dropped_to_fit: Option<usize>,
    /// JAQKET: context pieces dropped to fit (upstream's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pieces_dropped_to_fit: Option<usize>,
    /// QA: how the generation length was bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<String>,
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
