//! Curriculum plan types: what a Lua curriculum declares ([`PlanDecl`]) and its resolution into exact sequence
//! budgets ([`ResolvedPlan`], written into every checkpoint and sent to export plugins). Resolution against
//! prepared shards is `hashi_data::resolve`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A budget: absolute tokens (> 1) or a fraction of `total_tokens` (≤ 1).
pub type Budget = f64;

/// How a language's sources are read within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// One after the other, each until it is used up.
    Sequential,
    /// Interleaved in proportion to size (or `weights`).
    Blend,
}

/// The sources of one language in one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceList {
    /// Reading order.
    pub order: Order,
    /// Corpus names (as prepared).
    pub names: Vec<String>,
    /// Blend weights (default: the sources' sizes).
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
}

/// One phase as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseDecl {
    /// Name (shown in tables and pictures).
    pub name: String,
    /// Token budget.
    pub tokens: Budget,
    /// Share of each language (must sum to 1).
    pub shares: BTreeMap<String, f64>,
    /// Sources of each language.
    pub sources: BTreeMap<String, SourceList>,
    /// What trains in this phase and how (default: the experiment's settings, as in every phase without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<PhaseTraining>,
}

/// A phase's own training recipe next to its data (all fields optional). A phase that sets `training` replaces
/// the experiment's `optimizer.freeze`, `freeze_rows` and `freeze_steps` for its steps; the next phase without
/// it returns to them.
///
/// Example (Lua): `training = { params = { "model.embed_tokens", "lm_head" }, new_rows_only = true,
/// reset_moments = true, schedule = { max_lr = 6.4e-4 }, accumulation = 2 }`: embeddings only, and of them only
/// the rows the transfer initialised (TokAlign's first stage).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseTraining {
    /// Only parameters whose names start with one of these prefixes train; every other one is frozen (value and
    /// moments). Default: every parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// In the vocabulary matrices (`model.embed_tokens.weight`, `lm_head.weight`) only the rows the vocabulary
    /// transfer initialised train: the rows it copied from the source model (the `matches` of its
    /// `transfer_report.json`, next to the model) are frozen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_rows_only: bool,
    /// The optimizer's moments and its bias-correction step count restart at this phase's first step (a fresh
    /// `torch.optim.AdamW`, as a new job would have).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_moments: bool,
    /// Schedule parameters in force during this phase, in place of the experiment's `schedule.params` of the
    /// same names (e.g. `{ max_lr = 6.4e-4 }`); the schedule must declare them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedule: BTreeMap<String, serde_json::Value>,
    /// Micro-batches per optimizer step in this phase (tokens per step = `accumulation × batch_size × seq_len`);
    /// default: the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulation: Option<usize>,
}

impl PhaseTraining {
    /// Checks the values (an empty prefix, accumulation 0); the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.params.iter().flatten().find(|p| p.is_empty()) {
            return Err(format!("training.params holds the empty prefix {p:?} (it names every parameter)"));
        }
        if self.params.as_ref().is_some_and(Vec::is_empty) {
            return Err("training.params is empty (nothing would train)".into());
        }
        if self.accumulation == Some(0) {
            return Err("training.accumulation must be 1 or more".into());
        }
        Ok(())
    }

    /// One line for tables and figures: `params: model.embed_tokens, lm_head; new rows only; moments restart;
    /// max_lr = 0.0006; accumulation 2`.
    pub fn summary(&self) -> String {
        let mut parts = vec![match &self.params {
            Some(p) => format!("params: {}", p.join(", ")),
            None => "all params".to_string(),
        }];
        if self.new_rows_only {
            parts.push("new rows only".into());
        }
        if self.reset_moments {
            parts.push("moments restart".into());
        }
        parts.extend(self.schedule.iter().map(|(k, v)| format!("{k} = {v}")));
        if let Some(a) = self.accumulation {
            parts.push(format!("accumulation {a}"));
        }
        parts.join("; ")
    }

    /// The prefixes of `params` that match no parameter of the model (`(name, shape)`), as a message.
    pub fn check_params(&self, phase: &str, shapes: &[(String, Vec<usize>)]) -> Result<(), String> {
        for p in self.params.iter().flatten() {
            if !shapes.iter().any(|(n, _)| n.starts_with(p.as_str())) {
                let e: Vec<&str> = shapes.iter().take(3).map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "phase {phase}: training.params: the prefix {p:?} matches no parameter of the model (e.g. {})",
                    e.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// What to do when a source runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnExhausted {
    /// Stop with an error naming the source.
    #[default]
    Error,
    /// Read it again (another epoch, counted).
    Repeat,
}

/// A curriculum as a Lua script returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDecl {
    /// Name.
    pub name: String,
    /// Tokens per training sequence.
    pub seq_len: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Total tokens (what fractional phase budgets refer to).
    #[serde(default)]
    pub total_tokens: Option<f64>,
    /// Seed of document shuffling.
    #[serde(default)]
    pub seed: u64,
    /// Exhaustion policy.
    #[serde(default)]
    pub on_exhausted: OnExhausted,
    /// Phases in order.
    pub phases: Vec<PhaseDecl>,
}

/// A source's part of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceShare {
    /// Corpus name.
    pub name: String,
    /// Sequences taken from it in this phase.
    pub sequences: u64,
    /// Epochs of this source started by the end of this phase (1 = first pass).
    pub epochs: u64,
}

/// One language in one resolved phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LangPhase {
    /// Language tag.
    pub lang: String,
    /// Planned share.
    pub share: f64,
    /// Sequences of this language in the phase.
    pub sequences: u64,
    /// Reading order.
    pub order: Order,
    /// Per source, in reading order.
    pub sources: Vec<SourceShare>,
}

/// One resolved phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Name.
    pub name: String,
    /// Batches.
    pub batches: u64,
    /// Languages.
    pub langs: Vec<LangPhase>,
    /// The phase's training recipe, as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<PhaseTraining>,
}

/// A plan with exact budgets: what the mixer follows and what a checkpoint records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedPlan {
    /// The declaration.
    pub decl: PlanDecl,
    /// Phases.
    pub phases: Vec<Phase>,
    /// Sequences available per source (from the manifest).
    pub available: BTreeMap<String, u64>,
}

impl ResolvedPlan {
    /// Tokens a batch trains on.
    pub fn tokens_per_batch(&self) -> u64 {
        (self.decl.seq_len * self.decl.batch_size) as u64
    }

    /// Total batches.
    pub fn total_batches(&self) -> u64 {
        self.phases.iter().map(|p| p.batches).sum()
    }

    /// Micro-batches per optimizer step of every phase: its own `training.accumulation`, or `default`.
    pub fn accumulation(&self, default: usize) -> Vec<usize> {
        self.phases
            .iter()
            .map(|p| p.training.as_ref().and_then(|t| t.accumulation).unwrap_or(default))
            .collect()
    }

    /// The rule for a curriculum that changes during a run (an edit, or a resume with another plan): the phases
    /// the mixer has started at `cursor` (finished ones and the one in progress) must be the same in `other`,
    /// which may change only later phases. Returns how many phases are fixed when `other` breaks the rule.
    pub fn keeps_started_phases(
        &self,
        other: &ResolvedPlan,
        cursor: &crate::artifacts::Cursor,
    ) -> Result<(), usize> {
        let fixed = (cursor.phase + usize::from(cursor.slot > 0)).min(self.phases.len());
        if other.phases.len() < fixed || other.phases[..fixed] != self.phases[..fixed] {
            Err(fixed)
        } else {
            Ok(())
        }
    }
}

impl PlanDecl {
    /// Checks every number of the declaration before it is used: sizes positive, budgets finite and positive,
    /// fractional budgets summing to at most 1, shares finite, in `[0, 1]` and summing to 1, blend weights
    /// finite and positive with one per source, no source listed twice. Messages name the phase and the field.
    pub fn validate(&self) -> Result<(), String> {
        let err = |m: String| format!("plan {}: {m}", self.name);
        if self.seq_len == 0 {
            return Err(err("seq_len must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(err("batch_size must be at least 1".into()));
        }
        if self.phases.is_empty() {
            return Err(err("phases: at least one phase is required".into()));
        }
        if let Some(t) = self.total_tokens
            && !(t.is_finite() && t > 0.0)
        {
            return Err(err(format!("total_tokens = {t} must be a finite number above 0")));
        }
        let mut fractions = 0.0;
        for p in &self.phases {
            let perr = |m: String| err(format!("phase {}: {m}", p.name));
            if !(p.tokens.is_finite() && p.tokens > 0.0) {
                return Err(perr(format!(
                    "tokens = {} must be a finite number above 0 (a fraction of total_tokens, or a count > 1)",
                    p.tokens
                )));
            }
            if p.tokens <= 1.0 {
                fractions += p.tokens;
            }
            if p.shares.is_empty() {
                return Err(perr("shares: at least one language is required".into()));
            }
            if let Some(t) = &p.training {
                t.validate().map_err(perr)?;
            }
            if let Some((lang, s)) = p.shares.iter().find(|(_, s)| !s.is_finite()) {
                return Err(perr(format!("the share of {lang} is {s}, not a finite number")));
            }
            if let Some((lang, s)) = p.shares.iter().find(|(_, s)| **s < 0.0) {
                return Err(perr(format!(
                    "the share of {lang} is {s}: negative (a share is between 0 and 1)"
                )));
            }
            if let Some((lang, s)) = p.shares.iter().find(|(_, s)| **s > 1.0) {
                return Err(perr(format!(
                    "the share of {lang} is {s}: above 1 (a share is between 0 and 1)"
                )));
            }
            let share_sum: f64 = p.shares.values().sum();
            if (share_sum - 1.0).abs() > 1e-6 {
                let list: Vec<String> = p.shares.iter().map(|(l, s)| format!("{l} = {s}")).collect();
                return Err(perr(format!(
                    "the language shares ({}) sum to {share_sum}; they must sum to 1",
                    list.join(", ")
                )));
            }
            for (lang, list) in &p.sources {
                let mut seen = std::collections::BTreeSet::new();
                for n in &list.names {
                    if !seen.insert(n.as_str()) {
                        return Err(perr(format!("sources of {lang}: {n} is listed twice")));
                    }
                }
                if let Some(w) = &list.weights {
                    if list.order != Order::Blend {
                        return Err(perr(format!(
                            "sources of {lang}: weights are for order = \"blend\", not \"sequential\""
                        )));
                    }
                    if w.len() != list.names.len() {
                        return Err(perr(format!(
                            "sources of {lang}: {} blend weights for {} sources (one weight per source)",
                            w.len(),
                            list.names.len()
                        )));
                    }
                    for (n, x) in list.names.iter().zip(w) {
                        if !(x.is_finite() && *x > 0.0) {
                            return Err(perr(format!(
                                "sources of {lang}: the blend weight of {n} is {x}; blend weights must be \
                                 finite and above 0 (leave a source out instead of weighting it 0)"
                            )));
                        }
                    }
                }
            }
        }
        if fractions > 1.0 + 1e-6 {
            return Err(err(format!(
                "the phases' fractional token budgets sum to {fractions}, more than 1 (the whole of \
                 total_tokens)"
            )));
        }
        Ok(())
    }
}
