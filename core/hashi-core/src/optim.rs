//! Optimizer settings: what an experiment's `optimizer` table holds, read by the built-in AdamW, the plugin
//! backends and the export plugin alike (one type, no mirrors).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Optimizer settings; `Default` is the method's (β = 0.9/0.95, ε = 1e-8, wd = 0.1, clip 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay of the decay group.
    pub weight_decay: f64,
    /// Global gradient-norm limit (0 = no clipping).
    pub clip: f64,
    /// Parameters whose name starts with one of these are not updated.
    pub freeze: Vec<String>,
    /// Row ranges `[start, end)` of matrices that are not updated (e.g. the copied rows of a transferred
    /// embedding, to train only the new ones).
    pub freeze_rows: BTreeMap<String, Vec<[usize; 2]>>,
    /// Freezing lasts this many optimizer steps (0: the whole run).
    pub freeze_steps: u64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            clip: 1.0,
            freeze: vec![],
            freeze_rows: BTreeMap::new(),
            freeze_steps: 0,
        }
    }
}

impl AdamWConfig {
    /// Checks the numbers: β₁ and β₂ in `[0, 1)`, ε finite and above 0, weight decay and clip finite and not
    /// negative, row ranges not empty. The message names the setting (`optimizer.beta1 = 1.5: ...`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return Err(format!("optimizer.{name} = {b} must be in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(format!("optimizer.eps = {} must be a finite number above 0", self.eps));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "optimizer.weight_decay = {} must be a finite number, 0 or more",
                self.weight_decay
            ));
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return Err(format!(
                "optimizer.clip = {} must be a finite number, 0 or more (0: no clipping)",
                self.clip
            ));
        }
        if let Some(p) = self.freeze.iter().find(|p| p.is_empty()) {
            return Err(format!(
                "optimizer.freeze: the prefix {p:?} is empty (it would freeze every parameter)"
            ));
        }
        for (name, ranges) in &self.freeze_rows {
            for [a, b] in ranges {
                if a >= b {
                    return Err(format!(
                        "optimizer.freeze_rows[\"{name}\"]: the range {{ {a}, {b} }} is empty (rows [start, end), start < end)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the names against the model's parameters (`(name, shape)`): every `freeze` prefix matches at least
    /// one parameter, every `freeze_rows` entry names a matrix and its ranges lie within its rows.
    pub fn check_params(&self, shapes: &[(String, Vec<usize>)]) -> std::result::Result<(), String> {
        for p in &self.freeze {
            if !shapes.iter().any(|(n, _)| n.starts_with(p.as_str())) {
                return Err(format!(
                    "optimizer.freeze: the prefix {p:?} matches no parameter of the model (e.g. {})",
                    example_names(shapes)
                ));
            }
        }
        for (name, ranges) in &self.freeze_rows {
            let Some((_, dims)) = shapes.iter().find(|(n, _)| n == name) else {
                return Err(format!(
                    "optimizer.freeze_rows: {name:?} is not a parameter of the model (e.g. {})",
                    example_names(shapes)
                ));
            };
            if dims.len() < 2 {
                return Err(format!(
                    "optimizer.freeze_rows: {name} has shape {dims:?}, not a matrix with rows"
                ));
            }
            for [a, b] in ranges {
                if *b > dims[0] {
                    return Err(format!(
                        "optimizer.freeze_rows[\"{name}\"]: the range {{ {a}, {b} }} goes beyond the matrix's {} rows",
                        dims[0]
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What trains during one curriculum phase that sets its own recipe (`PhaseTraining`), as the trainer hands it
/// to a backend: it replaces [`AdamWConfig`]'s `freeze`, `freeze_rows` and `freeze_steps` until the next call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trainable {
    /// Only parameters whose names start with one of these prefixes are updated (`None`: all).
    pub only: Option<Vec<String>>,
    /// Row ranges `[start, end)` of matrices that are not updated (value and moments kept).
    pub frozen_rows: BTreeMap<String, Vec<[usize; 2]>>,
}

impl Trainable {
    /// Whether parameter `name` is updated at all.
    pub fn trains(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|p| name.starts_with(p.as_str())))
    }
}

fn example_names(shapes: &[(String, Vec<usize>)]) -> String {
    let v: Vec<&str> = shapes.iter().take(3).map(|(n, _)| n.as_str()).collect();
    v.join(", ")
}
