//! Held-out text tokenized once, scored through any [`Backend`]: the in-loop bits per byte of training (the same
//! measure as the evaluation stage's, `hashi_eval::bits_per_byte`: lm-eval's rolling windows, every token of
//! every document scored once, summed nats / ln 2 / UTF-8 bytes). Built by `hashi_eval::held_out`.

use crate::backend::{Backend, BackendResult};

/// One window: `tokens[0..k]` is context, and every position from `first_scored` on predicts the next token
/// (`tokens.len() − 1 − first_scored` predictions).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredWindow {
    /// Context and predicted tokens (`seq + 1` ids, as [`Backend::logprobs`] takes them).
    pub tokens: Vec<u32>,
    /// Index of the first prediction that counts (earlier ones are context already scored in the window before).
    pub first_scored: usize,
}

/// One language's held-out documents as windows, and their UTF-8 bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutSet {
    /// Language tag.
    pub lang: String,
    /// Every document's windows, in order.
    pub windows: Vec<ScoredWindow>,
    /// UTF-8 bytes of the documents.
    pub bytes: usize,
}

/// Windows scored per [`Backend::logprobs`] call (windows of the same length go together).
const BATCH: usize = 8;

impl HeldOutSet {
    /// Bits per byte of the backend's current weights on this text: −Σ log p / ln 2 / bytes.
    ///
    /// # Errors
    /// What the backend reports (an id out of range, a failed computation).
    pub fn bits_per_byte(&self, backend: &mut dyn Backend) -> BackendResult<f64> {
        let mut order: Vec<&ScoredWindow> = self.windows.iter().collect();
        order.sort_by_key(|w| w.tokens.len());
        let mut nats = 0f64;
        for same in order.chunk_by(|a, b| a.tokens.len() == b.tokens.len()) {
            for batch in same.chunks(BATCH) {
                let seqs: Vec<Vec<u32>> = batch.iter().map(|w| w.tokens.clone()).collect();
                let lps = backend.logprobs(&seqs)?;
                for (w, lp) in batch.iter().zip(&lps) {
                    nats -= lp[w.first_scored..].iter().map(|&x| f64::from(x)).sum::<f64>();
                }
            }
        }
        Ok(nats / std::f64::consts::LN_2 / self.bytes.max(1) as f64)
    }
}
