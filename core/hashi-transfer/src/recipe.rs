//! Embedding-init strategies reduce to one recipe per new token:
//! `scale·(Σ wᵢ·old[idᵢ] + mean·μ) + noise·N(0, 1)`, where μ is the mean of the old rows. Strategies (Lua scripts,
//! via the CLI) choose recipes, reading the old embedding space through [`EmbeddingSpace`] (norms, nearest rows,
//! orthogonal matching pursuit); the rows are computed here in Rust over whole matrices, in parallel. For an
//! untied model the same recipe builds the token's `embed_tokens` and `lm_head` rows, each from its own matrix.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TransferError};
use crate::space::EmbeddingSpace;

/// What a strategy sees of a new token that has no counterpart in the old vocabulary.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    /// Id in the new vocabulary.
    pub id: u32,
    /// The piece in a spelling common to every tokenizer family: its canonical bytes with spaces as `▁` and
    /// bytes that are not UTF-8 on their own as `\xHH` (a byte-level `Ġthe` is `▁the`).
    pub piece: String,
    /// The piece as text (spaces as spaces; invalid UTF-8 as `\xHH`).
    pub text: String,
    /// Script category of its bytes (`latin`, `cjk`, `hiragana`, ...).
    pub category: String,
    /// The old tokenizer's pieces for the same bytes: its encoding of the text, or the old byte pieces of a piece
    /// that is not UTF-8 on its own.
    pub old_ids: Vec<u32>,
}

/// Facts about the transfer that strategies may use.
#[derive(Debug, Clone, Serialize)]
pub struct InitContext {
    /// Rows of the old matrices.
    pub old_vocab_size: usize,
    /// Rows of the new matrices.
    pub new_vocab_size: usize,
    /// Width of a row.
    pub hidden_size: usize,
    /// New tokens found in the old vocabulary.
    pub matched: usize,
    /// Mean L2 norm of the old embedding rows.
    pub old_row_norm: f64,
    /// Standard deviation of the old embedding entries around the mean row.
    pub old_std: f64,
}

/// How to build one new row.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// `(old_id, weight)` pairs.
    #[serde(default)]
    pub terms: Vec<(u32, f64)>,
    /// Weight of the mean old row.
    #[serde(default)]
    pub mean: f64,
    /// Standard deviation of added Gaussian noise.
    #[serde(default)]
    pub noise: f64,
    /// Factor applied to `Σ wᵢ·old[idᵢ] + mean·μ` (not to the noise); 1 when absent. A strategy sets a row's
    /// norm with it, e.g. to the mean norm of the rows it averages (norm correction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
}

/// A strategy: one recipe per unmatched new token.
pub trait EmbeddingInit {
    /// Name for reports.
    fn name(&self) -> String;
    /// The recipe of `token`; `space` is the old `embed_tokens` matrix.
    fn recipe(&self, token: &NewToken, ctx: &InitContext, space: &Arc<EmbeddingSpace>) -> Result<Recipe>;
}

impl Recipe {
    /// Checks ids and numbers.
    pub fn validate(&self, token: &NewToken, old_vocab: usize, strategy: &str) -> Result<()> {
        let bad = |m: String| {
            TransferError::Strategy(format!(
                "{strategy}: recipe for token {} ({:?}): {m}",
                token.id, token.piece
            ))
        };
        for &(id, w) in &self.terms {
            if id as usize >= old_vocab {
                return Err(bad(format!(
                    "old id {id} is out of range (old vocabulary has {old_vocab} rows)"
                )));
            }
            if !w.is_finite() {
                return Err(bad(format!("weight {w} of old id {id} is not finite")));
            }
        }
        if let Some(scale) = self.scale.filter(|s| !s.is_finite()) {
            return Err(bad(format!("scale {scale} is not finite")));
        }
        if !(self.mean.is_finite() && self.noise.is_finite() && self.noise >= 0.0) {
            return Err(bad(format!("mean {} / noise {} must be finite, noise >= 0", self.mean, self.noise)));
        }
        Ok(())
    }
}
