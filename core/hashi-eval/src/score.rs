//! Log-likelihood scoring of choices, with EleutherAI lm-evaluation-harness's token semantics (HF backend):
//! trailing whitespace of the context moves to the front of the continuation; the context is encoded alone,
//! `context + continuation` is encoded whole, and the continuation tokens are the whole encoding past the
//! context's length; the model reads `context tokens + continuation tokens`, with the tokenizer's own special
//! tokens (a leading `<s>` for Llama tokenizers, as lm-eval's default `add_special_tokens` gives). The context is
//! run once — its last position scores every continuation's first token — and its KV cache is shared by one
//! batched forward over the rest of all the continuations (the harnesses recompute the context per choice).

use candle_core::{D, Device, Tensor};
use hashi_model::Llama;
use hashi_tokenizer::Tokenizer;

/// Log-likelihood of one continuation and whether it is the greedy continuation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Sum of the continuation tokens' log-probabilities.
    pub loglikelihood: f64,
    /// Whether every continuation token is the argmax.
    pub is_greedy: bool,
    /// Number of continuation tokens.
    pub tokens: usize,
}

/// The token ids lm-evaluation-harness scores for `(context, continuation)`: (context ids, continuation ids).
pub fn encode_pair(
    tok: &Tokenizer,
    context: &str,
    continuation: &str,
) -> Result<(Vec<u32>, Vec<u32>), String> {
    let trimmed = context.trim_end();
    let (ctx, cont) = (trimmed, format!("{}{continuation}", &context[trimmed.len()..]));
    let whole = tok.encode(&format!("{ctx}{cont}"), true).map_err(|e| e.to_string())?;
    let ctx_ids = tok.encode(ctx, true).map_err(|e| e.to_string())?;
    let cont_ids = whole.get(ctx_ids.len()..).unwrap_or(&[]).to_vec();
    if cont_ids.is_empty() {
        return Err(format!("the continuation {continuation:?} adds no token after the context"));
    }
    Ok((ctx_ids, cont_ids))
}

/// Scores every continuation after `context`.
pub fn score_choices(
    model: &Llama,
    tok: &Tokenizer,
    context: &str,
    continuations: &[String],
) -> Result<Vec<Scored>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let max = model.config().max_position_embeddings;
    let pairs = continuations.iter().map(|c| encode_pair(tok, context, c)).collect::<Result<Vec<_>, _>>()?;
    if pairs.iter().any(|(ctx, _)| ctx != &pairs[0].0) {
        return Err("the continuations change the context's encoding; cannot share it".into());
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (ctx, cont) in &pairs {
        let n = ctx.len() + cont.len();
        if n > max {
            return Err(format!("context + continuation ({n} tokens) exceed the model's {max} positions"));
        }
    }
    // All pairs share the context encoding: run it once, keeping its cache and the last position's
    // log-probabilities, which score every continuation's first token.
    let ctx_ids = &pairs[0].0;
    let mut base = model.new_cache();
    let x = Tensor::from_vec(ctx_ids.clone(), (1, ctx_ids.len()), &Device::Cpu).map_err(|x| e(&x))?;
    let last = model.forward_cached(&x, &mut base).map_err(|x| e(&x))?;
    let first_lsm = log_softmax(&last).map_err(|x| e(&x))?.remove(0);
    // The continuations' later tokens in one batch over the shared cache: row i feeds continuation i but its
    // last token (rows padded at the end, which causal attention never lets earlier positions see). One
    // forward per question, so the weights are streamed once, not once per choice.
    let feeds: Vec<&[u32]> = pairs.iter().map(|(_, cont)| &cont[..cont.len() - 1]).collect();
    let width = feeds.iter().map(|f| f.len()).max().unwrap_or(0);
    let mut later: Vec<Vec<Vec<f32>>> = vec![vec![]; feeds.len()];
    if width > 0 {
        let mut flat = vec![0u32; feeds.len() * width];
        for (row, f) in feeds.iter().enumerate() {
            flat[row * width..row * width + f.len()].copy_from_slice(f);
        }
        let mut cache = base.repeat_batch(feeds.len()).map_err(|x| e(&x))?;
        let x = Tensor::from_vec(flat, (feeds.len(), width), &Device::Cpu).map_err(|x| e(&x))?;
        let logits = model.forward_cached_all(&x, &mut cache).map_err(|x| e(&x))?;
        for (row, f) in feeds.iter().enumerate() {
            if !f.is_empty() {
                let rows = logits.get(row).and_then(|l| l.narrow(0, 0, f.len())).map_err(|x| e(&x))?;
                later[row] = log_softmax(&rows).map_err(|x| e(&x))?;
            }
        }
    }
    for ((_, cont), rows) in pairs.iter().zip(&later) {
        let (mut ll, mut greedy) = (0f64, true);
        for (i, &target) in cont.iter().enumerate() {
            let row = if i == 0 { &first_lsm } else { &rows[i - 1] };
            ll += f64::from(row[target as usize]);
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b });
            greedy &= best.0 == target as usize;
        }
        out.push(Scored { loglikelihood: ll, is_greedy: greedy, tokens: cont.len() });
    }
    Ok(out)
}

fn log_softmax(logits: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let max = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)?.to_vec2()
}

/// Log-probabilities of every next token of each row (see [`score_choices_with`]).
pub type LogProbs<'a> = dyn FnMut(&[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> + 'a;

/// Scores every continuation after `context` with a log-probability function over whole sequences (a training
/// backend, e.g. a plugin): each `context + continuation` is one row (rows padded at the end to one length);
/// `logprobs(rows)[r][t]` is the log-probability of token `t + 1` of row `r`. Same token semantics as
/// [`score_choices`]; `is_greedy` cannot be known this way and is `false`.
pub fn score_choices_with(
    logprobs: &mut LogProbs<'_>,
    tok: &Tokenizer,
    max_positions: usize,
    context: &str,
    continuations: &[String],
) -> Result<Vec<Scored>, String> {
    let pairs = continuations.iter().map(|c| encode_pair(tok, context, c)).collect::<Result<Vec<_>, _>>()?;
    let width = pairs.iter().map(|(c, k)| c.len() + k.len()).max().unwrap_or(0);
    if width > max_positions {
        return Err(format!(
            "context + continuation ({width} tokens) exceed the model's {max_positions} positions"
        ));
    }
    let rows: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(c, k)| {
            let mut r: Vec<u32> = c.iter().chain(k).copied().collect();
            r.resize(width.max(2), 0);
            r
        })
        .collect();
    let lp = logprobs(&rows)?;
    Ok(pairs
        .iter()
        .zip(&lp)
        .map(|((c, k), row)| Scored {
            loglikelihood: (0..k.len()).map(|i| f64::from(row[c.len() - 1 + i])).sum(),
            is_greedy: false,
            tokens: k.len(),
        })
        .collect())
}
