//! Log-likelihood scoring of choices, with EleutherAI lm-evaluation-harness's token semantics (HF backend):
//! trailing whitespace of the context moves to the front of the continuation; the context is encoded alone,
//! `context + continuation` is encoded whole, and the continuation tokens are the whole encoding past the
//! context's length; the model reads `context tokens + continuation tokens`, with the tokenizer's own special
//! tokens (a leading `<s>` for Llama tokenizers, as lm-eval's default `add_special_tokens` gives). The context is
//! run once and its KV cache shared by every continuation of the question (the harnesses recompute it per choice).

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
    let mut out = Vec::with_capacity(pairs.len());
    // All pairs share the context encoding: run all of it but its last token once.
    let ctx_ids = &pairs[0].0;
    let mut base = model.new_cache();
    if ctx_ids.len() > 1 {
        let prefix = &ctx_ids[..ctx_ids.len() - 1];
        let x = Tensor::from_vec(prefix.to_vec(), (1, prefix.len()), &Device::Cpu).map_err(|x| e(&x))?;
        model.prefill(&x, &mut base).map_err(|x| e(&x))?;
    }
    for (ctx, cont) in &pairs {
        let n = ctx.len() + cont.len();
        if n > max {
            return Err(format!("context + continuation ({n} tokens) exceed the model's {max} positions"));
        }
    }
    // All continuations in one batch over the shared cache: each row feeds the context's last token and the
    // continuation but its last token (rows padded at the end, which causal attention never lets earlier
    // positions see). One forward per question, so the weights are streamed once, not once per choice.
    let from = ctx_ids.len().saturating_sub(1);
    let feeds: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(ctx, cont)| ctx[from..].iter().chain(&cont[..cont.len() - 1]).copied().collect())
        .collect();
    let width = feeds.iter().map(Vec::len).max().unwrap_or(1);
    let mut flat = vec![0u32; feeds.len() * width];
    for (row, f) in feeds.iter().enumerate() {
        flat[row * width..row * width + f.len()].copy_from_slice(f);
    }
    let mut cache = if ctx_ids.len() > 1 {
        base.repeat_batch(feeds.len()).map_err(|x| e(&x))?
    } else {
        model.new_cache()
    };
    let x = Tensor::from_vec(flat, (feeds.len(), width), &Device::Cpu).map_err(|x| e(&x))?;
    let logits = model.forward_cached_all(&x, &mut cache).map_err(|x| e(&x))?;
    for (row, ((ctx, cont), f)) in pairs.iter().zip(&feeds).enumerate() {
        let rows = logits.get(row).and_then(|l| l.narrow(0, 0, f.len())).map_err(|x| e(&x))?;
        let lsm = log_softmax(&rows).map_err(|x| e(&x))?;
        // Row r predicts the token after feed[r]; continuation token i is predicted by row (ctx.len() - 1 - from) + i.
        let first = ctx.len() - 1 - from;
        let (mut ll, mut greedy) = (0f64, true);
        for (i, &target) in cont.iter().enumerate() {
            let row = &lsm[first + i];
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
