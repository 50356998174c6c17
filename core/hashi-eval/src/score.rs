//! Log-likelihood scoring of choices. The context is run once and its KV cache shared by every continuation of
//! the same question (the upstream harnesses recompute the context per choice). Token split as in EleutherAI's
//! harness: the whole `context + continuation` is encoded (no special tokens) and the continuation is what
//! follows the context's own encoding, so a merge across the boundary is scored with the continuation.

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

/// Scores every continuation after `context`.
pub fn score_choices(
    model: &Llama,
    tok: &Tokenizer,
    context: &str,
    continuations: &[String],
) -> Result<Vec<Scored>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let ctx_ids = tok.encode(context, false).map_err(|e| err(&e))?;
    let max = model.config().max_position_embeddings;
    let mut out = Vec::with_capacity(continuations.len());
    // Context once; each continuation continues a copy of its cache.
    let mut base = model.new_cache();
    if ctx_ids.len() > 1 {
        let prefix = &ctx_ids[..ctx_ids.len() - 1];
        if prefix.len() >= max {
            return Err(format!(
                "the context ({} tokens) exceeds the model's {max} positions",
                ctx_ids.len()
            ));
        }
        let x = Tensor::from_vec(prefix.to_vec(), (1, prefix.len()), &Device::Cpu).map_err(|e| err(&e))?;
        model.forward_cached_all(&x, &mut base).map_err(|e| err(&e))?;
    }
    for cont in continuations {
        let whole = tok.encode(&format!("{context}{cont}"), false).map_err(|e| err(&e))?;
        // The context tokens that the whole encoding shares with the context's own encoding.
        let shared = whole.iter().zip(&ctx_ids).take_while(|(a, b)| a == b).count();
        let start = shared.min(ctx_ids.len()).min(whole.len().saturating_sub(1)).max(1);
        if whole.len() > max {
            return Err(format!(
                "context + continuation ({} tokens) exceed the model's {max} positions",
                whole.len()
            ));
        }
        // Reuse the cached prefix when the new tokens start after it; otherwise recompute.
        let cached = base.len();
        let (mut cache, from) = if start > cached { (base.clone(), cached) } else { (model.new_cache(), 0) };
        let feed = &whole[from..whole.len() - 1];
        let x = Tensor::from_vec(feed.to_vec(), (1, feed.len()), &Device::Cpu).map_err(|e| err(&e))?;
        let logits =
            model.forward_cached_all(&x, &mut cache).map_err(|e| err(&e))?.squeeze(0).map_err(|e| err(&e))?;
        // Row r of `logits` predicts whole[from + r + 1].
        let lsm = log_softmax(&logits).map_err(|e| err(&e))?;
        let (mut ll, mut greedy) = (0f64, true);
        for (pos, &target) in whole.iter().enumerate().skip(start) {
            let row = &lsm[pos - 1 - from];
            ll += f64::from(row[target as usize]);
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            greedy &= best.0 == target as usize;
        }
        out.push(Scored { loglikelihood: ll, is_greedy: greedy, tokens: whole.len() - start });
    }
    Ok(out)
}

fn log_softmax(logits: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let max = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)?.to_vec2()
}
