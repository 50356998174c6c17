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
//! - Per script (`by_script`): each token's bits are spread evenly over the bytes of its span in the document
//!   (the `tokenizers` library's offsets), each byte belongs to the script of the character it is part of
//!   ([`SCRIPTS`]), and a script's bits per byte is its bits over its bytes — so a byte-level piece holding half
//!   of a kana and a whole-kana piece are compared on the same bytes. The scripts' bits sum to the total.

use candle_core::{Device, Tensor};
use hashi_core::heldout::{HeldOutSet, ScoredWindow};
use hashi_model::{IGNORE_INDEX, Llama, next_token_losses};
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::script::Category;
use serde::{Deserialize, Serialize};

/// Longest window (tokens of context + prediction) bits per byte is scored with.
pub const BPB_WINDOW: usize = 512;

/// Bits per byte of one language's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The same measure per script of the bytes, for the scripts present (in [`SCRIPTS`] order).
    pub by_script: Vec<ScriptBpb>,
}

/// Bits per byte of the bytes of one script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptBpb {
    /// One of [`SCRIPTS`].
    pub script: String,
    /// Bits assigned to this script's bytes over their number.
    pub bits_per_byte: f64,
    /// UTF-8 bytes of this script in the documents read.
    pub bytes: usize,
}

/// Scripts of [`ScriptBpb`]: `kanji` (CJK ideographs and 々〆〇), `kana` (hiragana, katakana, ー), `latin`,
/// `digit`, `symbol` (punctuation, symbols, whitespace), `other` — classes of
/// [`hashi_tokenizer::script::Category::of_char`].
pub const SCRIPTS: [&str; 6] = ["kanji", "kana", "latin", "digit", "symbol", "other"];

fn script_of(c: char) -> usize {
    match Category::of_char(c) {
        _ if c.is_whitespace() => 4,
        Category::Cjk => 0,
        Category::Hiragana | Category::Katakana => 1,
        Category::Latin => 2,
        Category::Digit => 3,
        Category::Symbol => 4,
        _ => 5,
    }
}

/// Adds `bits` of each token to the bytes of its `spans` in a document of `len` bytes (evenly; an empty span
/// to the byte it starts at). A span starting after the bytes covered so far is extended back over the gap (a
/// byte-level tokenizer's offsets leave out a piece's leading space), so every byte up to the last token's end is
/// someone's.
fn spread(bits: &[f64], spans: &[(usize, usize)], len: usize) -> Vec<f64> {
    let mut per_byte = vec![0f64; len];
    if len == 0 {
        return per_byte;
    }
    let mut covered = 0;
    for (&b, &(s, e)) in bits.iter().zip(spans) {
        let s = s.min(covered);
        covered = covered.max(e);
        let (s, e) = (s.min(len - 1), e.min(len));
        if e > s {
            per_byte[s..e].iter_mut().for_each(|x| *x += b / (e - s) as f64);
        } else {
            per_byte[s] += b;
        }
    }
    per_byte
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

/// lm-eval's rolling windows over `tokens` after `prefix`: `(s, input ids, targets)` per window, where window `k`
/// predicts `tokens[a..b]` from `[prefix, tokens..][s..b]` with `s = b - window` (or 0); position `i` of the
/// input predicts `tokens[s + i]`, and positions before `a - s` (context only) have target [`IGNORE_INDEX`].
fn rolling_windows(prefix: u32, tokens: &[u32], window: usize) -> Vec<(usize, Vec<u32>, Vec<i64>)> {
    let full: Vec<u32> = std::iter::once(prefix).chain(tokens.iter().copied()).collect();
    let mut out = vec![];
    let mut a = 0;
    while a < tokens.len() {
        let b = (a + window).min(tokens.len());
        let s = b.saturating_sub(window);
        let targets =
            (s..b).map(|j| if j >= a { i64::from(tokens[j]) } else { IGNORE_INDEX }).collect::<Vec<_>>();
        out.push((s, full[s..b].to_vec(), targets));
        a = b;
    }
    out
}

/// The token every document follows: the BOS the tokenizer's post-processor adds (seen on `doc`; it adds the
/// same to every text), else `separator`.
fn prefix_token(tok: &Tokenizer, doc: &str, separator: Option<u32>) -> Result<u32, String> {
    let plain = tok.encode_with_library(doc, false).map_err(|e| e.to_string())?;
    let plain = plain.as_slice();
    let with = tok.encode_with_library(doc, true).map_err(|e| e.to_string())?;
    match with.split_first() {
        Some((&bos, rest)) if with.len() == plain.len() + 1 && rest == plain => Ok(bos),
        _ => separator.ok_or_else(|| {
            format!(
                "{}: the tokenizer adds no BOS and the model's config has no eos_token_id to separate \
                 documents with, so the first token of a document cannot be scored",
                tok.path().display()
            )
        }),
    }
}

/// Bits per byte of `model` on the documents of `docs` within `max_bytes`, in total and per script (see the
/// module docs).
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
    let (mut tokens, mut bytes) = (0usize, 0usize);
    let (mut script_bits, mut script_bytes) = ([0f64; SCRIPTS.len()], [0usize; SCRIPTS.len()]);
    let prefix = match docs.first() {
        Some(first) => prefix_token(tok, first, separator)?,
        None => 0,
    };
    for doc in docs {
        let (ids, spans): (Vec<u32>, Vec<(usize, usize)>) =
            tok.encode_with_offsets(doc).map_err(|x| e(&x))?.into_iter().unzip();
        let mut bits = vec![0f64; ids.len()];
        for (s, input, targets) in rolling_windows(prefix, &ids, window) {
            let n = input.len();
            let scored: Vec<bool> = targets.iter().map(|&t| t != IGNORE_INDEX).collect();
            let x = Tensor::from_vec(input, (1, n), &Device::Cpu).map_err(|x| e(&x))?;
            let y = Tensor::from_vec(targets, (1, n), &Device::Cpu).map_err(|x| e(&x))?;
            let logits = model.forward(&x).map_err(|x| e(&x))?;
            let nats = next_token_losses(&logits, &y).map_err(|x| e(&x))?;
            for (i, (&l, &yes)) in nats.iter().zip(&scored).enumerate() {
                if yes {
                    bits[s + i] = f64::from(l) / std::f64::consts::LN_2;
                    tokens += 1;
                }
            }
        }
        let per_byte = spread(&bits, &spans, doc.len());
        for (at, c) in doc.char_indices() {
            let k = script_of(c);
            script_bits[k] += per_byte[at..at + c.len_utf8()].iter().sum::<f64>();
            script_bytes[k] += c.len_utf8();
        }
        bytes += doc.len();
    }
    let by_script = SCRIPTS
        .iter()
        .zip(script_bits.iter().zip(script_bytes))
        .filter(|(_, (_, n))| *n > 0)
        .map(|(&script, (&b, n))| ScriptBpb {
            script: script.to_string(),
            bits_per_byte: b / n as f64,
            bytes: n,
        })
        .collect();
    Ok(Bpb {
        lang: lang.into(),
        bits_per_byte: script_bits.iter().sum::<f64>() / bytes.max(1) as f64,
        tokens,
        bytes,
        documents: docs.len(),
        by_script,
    })
}

/// `lang`'s documents of `docs` within `max_bytes`, tokenized once into the windows [`bits_per_byte`] scores
/// (`window` tokens at most, each document after the same prefix token), for scoring through a backend during
/// training ([`hashi_core::heldout::HeldOutSet::bits_per_byte`]): the same measure, on the same bytes.
///
/// `window` is the model's `max_position_embeddings` capped at [`BPB_WINDOW`]; `separator` its first
/// `eos_token_id`. Errors: as [`bits_per_byte`]'s tokenizer errors.
pub fn held_out(
    tok: &Tokenizer,
    lang: &str,
    docs: &[String],
    max_bytes: usize,
    window: usize,
    separator: Option<u32>,
) -> Result<HeldOutSet, String> {
    let docs = documents_within(docs, max_bytes);
    let prefix = match docs.first() {
        Some(first) => prefix_token(tok, first, separator)?,
        None => 0,
    };
    let mut windows = vec![];
    for doc in docs {
        let ids: Vec<u32> =
            tok.encode_with_offsets(doc).map_err(|e| e.to_string())?.into_iter().map(|(id, _)| id).collect();
        for (s, mut input, targets) in rolling_windows(prefix, &ids, window.min(BPB_WINDOW)) {
            let first_scored = targets.iter().position(|&t| t != IGNORE_INDEX).unwrap_or(targets.len());
            input.push(ids[s + targets.len() - 1]);
            windows.push(ScoredWindow { tokens: input, first_scored });
        }
    }
    Ok(HeldOutSet { lang: lang.into(), windows, bytes: docs.iter().map(String::len).sum() })
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
        let inputs: Vec<Vec<u32>> = w.iter().map(|(_, i, _)| i.clone()).collect();
        assert_eq!(inputs, vec![vec![0, 1, 2], vec![3, 4, 5], vec![4, 5, 6]]);
        let scored: Vec<i64> =
            w.iter().flat_map(|(_, _, t)| t.iter().copied()).filter(|&t| t != IGNORE_INDEX).collect();
        assert_eq!(scored, (1..8).collect::<Vec<i64>>());
        assert_eq!(w[2].2, vec![IGNORE_INDEX, IGNORE_INDEX, 7]);
        // Position i of a window predicts tokens[s + i].
        for (s, _, t) in &w {
            for (i, &y) in t.iter().enumerate().filter(|(_, y)| **y != IGNORE_INDEX) {
                assert_eq!(y, i64::from(tokens[s + i]));
            }
        }
        assert!(rolling_windows(0, &[], 3).is_empty());
    }

    #[test]
    fn bits_spread_over_token_spans_sum_to_the_total() {
        // "aあ": a token for "a", two byte-level tokens both spanning "あ" (bytes 1..4), an empty span.
        let per_byte = spread(&[1.0, 3.0, 6.0, 0.5], &[(0, 1), (1, 4), (1, 4), (4, 4)], 4);
        assert_eq!(per_byte, vec![1.0, 3.0, 3.0, 3.5]);
        // "a b" with offsets that leave out the space: the space goes to the token after it.
        assert_eq!(spread(&[1.0, 4.0], &[(0, 1), (2, 3)], 3), vec![1.0, 2.0, 2.0]);
        assert_eq!(script_of('あ'), 1);
        assert_eq!(script_of('漢'), 0);
        assert_eq!(script_of('\n'), 4);
        assert_eq!(script_of('7'), 3);
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
