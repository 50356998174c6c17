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
