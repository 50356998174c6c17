//! Bits per byte on held-out text: the summed next-token loss in nats / ln 2 / UTF-8 bytes. Unlike perplexity it
//! compares models with different vocabularies — provided every model reads the same bytes and every token of
//! them is scored. So:
//!
//! - The budget is in bytes, never tokens: whole documents are taken in file order until their UTF-8 bytes reach
//!   `max_bytes`, whatever the tokenizer (a token budget made two tokenizers read different text).
//! - Every token of every document is scored exactly once, as lm-evaluation-harness' rolling log-likelihood
//!   (`loglikelihood_rolling`, `lm_eval.utils.get_rolling_token_windows` with `context_len = 1`): the document's
//!   tokens (no special tokens) follow one prefix token — the tokenizer's BOS where its post-processor adds one,
//!   else the model's document separator (the first `eos_token_id`, as lm-eval uses EOT) — and are cut into
//!   windows of at most `window` predictions, each predicted token seeing up to `window` tokens before it.

use candle_core::{Device, Tensor};
use hashi_model::{IGNORE_INDEX, Llama, next_token_loss};
use hashi_tokenizer::Tokenizer;
use serde::Serialize;

/// Longest window (tokens of context + prediction) bits per byte is scored with.
pub const BPB_WINDOW: usize = 512;

/// Bits per byte of one language's text.
#[derive(Debug, Clone, Serialize)]
pub struct Bpb {
    /// Language tag.
    pub lang: String,
    /// The measure.
    pub bits_per_byte: f64,
    /// Tokens scored (every token of the documents read, the prefix token excluded).
    pub tokens: usize,
    /// UTF-8 bytes of the documents read.
    pub bytes: usize,
    /// Documents read.
    pub documents: usize,
}

/// The documents a byte budget reads: the first documents of `docs` whose UTF-8 bytes together reach `max_bytes`
/// (all of them if they do not). The same for every tokenizer.
pub fn documents_within(docs: &[String], max_bytes: usize) -> &[String] {
    let mut bytes = 0;
    for (i, d) in docs.iter().enumerate() {
        if bytes >= max_bytes {
            return &docs[..i];
        }
        bytes += d.len();
    }
    docs
}

/// lm-eval's rolling windows over `tokens` after `prefix`: `(input ids, targets)` per window, where window `k`
/// predicts `tokens[a..b]` from `[prefix, tokens..][s..b]` with `s = b - window` (or 0); position `i` of the
/// input predicts `tokens[s + i]`, and positions before `a - s` (context only) have target [`IGNORE_INDEX`].
fn rolling_windows(prefix: u32, tokens: &[u32], window: usize) -> Vec<(Vec<u32>, Vec<i64>)> {
    let full: Vec<u32> = std::iter::once(prefix).chain(tokens.iter().copied()).collect();
    let mut out = vec![];
    let mut a = 0;
    while a < tokens.len() {
        let b = (a + window).min(tokens.len());
        let s = b.saturating_sub(window);
        let targets =
            (s..b).map(|j| if j >= a { i64::from(tokens[j]) } else { IGNORE_INDEX }).collect::<Vec<_>>();
        out.push((full[s..b].to_vec(), targets));
        a = b;
    }
    out
}

/// The prefix token and the tokens of `doc`: the BOS the tokenizer adds, else `separator`.
fn document_tokens(tok: &Tokenizer, doc: &str, separator: Option<u32>) -> Result<(u32, Vec<u32>), String> {
    let plain = tok.encode(doc, false).map_err(|e| e.to_string())?;
    let with = tok.encode(doc, true).map_err(|e| e.to_string())?;
    let prefix = match with.split_first() {
        Some((&bos, rest)) if with.len() == plain.len() + 1 && rest == plain.as_slice() => bos,
        _ => separator.ok_or_else(|| {
            format!(
                "{}: the tokenizer adds no BOS and the model's config has no eos_token_id to separate \
                 documents with, so the first token of a document cannot be scored",
                tok.path().display()
            )
        })?,
    };
    Ok((prefix, plain))
}

/// Bits per byte of `model` on the documents of `docs` within `max_bytes` (see the module docs).
///
/// Errors: tokenizer failures, ids outside the model's vocabulary, a model without a document separator when the
/// tokenizer adds no BOS.
pub fn bits_per_byte(
    model: &Llama,
    tok: &Tokenizer,
    lang: &str,
    docs: &[String],
    max_bytes: usize,
) -> Result<Bpb, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let window = model.config().max_position_embeddings.min(BPB_WINDOW);
    let separator = model.config().eos_token_ids.first().copied();
    let docs = documents_within(docs, max_bytes);
    let (mut nats, mut tokens, mut bytes) = (0f64, 0usize, 0usize);
    for doc in docs {
        let (prefix, ids) = document_tokens(tok, doc, separator)?;
        for (input, targets) in rolling_windows(prefix, &ids, window) {
            let count = targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
            let n = input.len();
            let x = Tensor::from_vec(input, (1, n), &Device::Cpu).map_err(|x| e(&x))?;
            let y = Tensor::from_vec(targets, (1, n), &Device::Cpu).map_err(|x| e(&x))?;
            let logits = model.forward(&x).map_err(|x| e(&x))?;
            let loss =
                next_token_loss(&logits, &y).and_then(|l| Ok(l.to_scalar::<f32>()?)).map_err(|x| e(&x))?;
            nats += f64::from(loss) * count as f64;
            tokens += count;
        }
        bytes += doc.len();
    }
    Ok(Bpb {
        lang: lang.into(),
        bits_per_byte: nats / std::f64::consts::LN_2 / bytes.max(1) as f64,
        tokens,
        bytes,
        documents: docs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lm-eval 0.4's `get_rolling_token_windows(list(range(1, 8)), prefix_token=0, max_seq_len=3, context_len=1)`
    /// gives inputs `[0,1,2] [3,4,5] [4,5,6]` predicting `[1,2,3] [4,5,6] [7]` (made disjoint): every token once,
    /// the last window keeping `max_seq_len` tokens of input where the document has them.
    #[test]
    fn windows_score_every_token_once_like_lm_eval() {
        let tokens: Vec<u32> = (1..8).collect();
        let w = rolling_windows(0, &tokens, 3);
        let inputs: Vec<Vec<u32>> = w.iter().map(|(i, _)| i.clone()).collect();
        assert_eq!(inputs, vec![vec![0, 1, 2], vec![3, 4, 5], vec![4, 5, 6]]);
        let scored: Vec<i64> =
            w.iter().flat_map(|(_, t)| t.iter().copied()).filter(|&t| t != IGNORE_INDEX).collect();
        assert_eq!(scored, (1..8).collect::<Vec<i64>>());
        assert_eq!(w[2].1, vec![IGNORE_INDEX, IGNORE_INDEX, 7]);
        assert!(rolling_windows(0, &[], 3).is_empty());
    }

    #[test]
    fn byte_budget_takes_whole_documents_in_order() {
        let docs: Vec<String> = ["abc", "de", "fghij", "k"].map(String::from).to_vec();
        assert_eq!(documents_within(&docs, 4).len(), 2);
        assert_eq!(documents_within(&docs, 3).len(), 1);
        assert_eq!(documents_within(&docs, 1000).len(), 4);
        assert_eq!(documents_within(&docs, 0).len(), 0);
    }
}
