//! Greedy generation with stop strings, as the harnesses' `greedy_until`: the context is encoded with the
//! tokenizer's special tokens and cut from the left to leave room for the new tokens (counted as truncated);
//! generation stops at the model's end-of-sequence tokens, at `max_tokens`, or once the decoded continuation contains a
//! stop string, and the continuation is cut before the first stop string. Plus MGSM's context fitting and
//! answer extraction (`lm_eval/tasks/ja/mgsm.py`).

use candle_core::{Device, Tensor};
use hashi_model::{KvCache, Llama};
use hashi_tokenizer::Tokenizer;

/// A generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The continuation, cut before the first stop string.
    pub text: String,
    /// Tokens generated.
    pub tokens: usize,
    /// Whether the context was cut from the left to fit the model.
    pub truncated: bool,
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32
}

/// Greedy decoding of at most `max_tokens` tokens after `context`, until a string of `until`.
pub fn greedy_until(
    model: &Llama,
    tok: &Tokenizer,
    context: &str,
    until: &[&str],
    max_tokens: usize,
) -> Result<Generation, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let ids = tok.encode(context, true).map_err(|x| e(&x))?;
    let eos = &model.config().eos_token_ids;
    let Started { mut cache, mut logits, truncated } = start(model, None, ids, max_tokens)?;
    let mut out: Vec<u32> = vec![];
    let cut = |text: &str| until.iter().filter_map(|u| text.find(u)).min();
    for step in 0..max_tokens {
        if step > 0 {
            let x = Tensor::from_vec(vec![out[out.len() - 1]], (1, 1), &Device::Cpu).map_err(|x| e(&x))?;
            let l = model.forward_cached(&x, &mut cache).map_err(|x| e(&x))?;
            logits = l.squeeze(0).and_then(|l| l.to_vec1()).map_err(|x| e(&x))?;
        }
        let next = argmax(&logits);
        if eos.contains(&next) {
            break;
        }
        out.push(next);
        if cut(&tok.decode(&out, true).map_err(|x| e(&x))?).is_some() {
            break;
        }
    }
    let text = tok.decode(&out, true).map_err(|x| e(&x))?;
    let text = match cut(&text) {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    Ok(Generation { text, tokens: out.len(), truncated })
}

/// A prompt prefix shared by many prompts (a task's instruction and few-shot examples) with its key/value cache,
/// so that each prompt only computes the positions after it: [`greedy_batch`].
pub struct PromptPrefix {
    ids: Vec<u32>,
    cache: KvCache,
}

impl PromptPrefix {
    /// Runs the model over `ids` (the encoded prefix, special tokens as the prompts will have them) once.
    ///
    /// # Errors
    /// A message when the forward pass fails.
    pub fn new(model: &Llama, ids: Vec<u32>) -> Result<Self, String> {
        let mut cache = model.new_cache();
        if !ids.is_empty() {
            let x = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).map_err(|x| x.to_string())?;
            model.forward_cached(&x, &mut cache).map_err(|x| x.to_string())?;
        }
        Ok(Self { ids, cache })
    }
}

/// A prompt ready to run: the cache it continues (a prefix's, shared), the tokens still to feed, and whether it
/// was cut from the left.
struct Prepared {
    cache: KvCache,
    rest: Vec<u32>,
    truncated: bool,
}

/// Cuts `ids` from the left to leave room for `max_tokens` and reuses `prefix`'s cache for the longest run of
/// leading tokens shared with it (leaving at least one to feed; its keys and values shared, not copied).
fn prepare(
    model: &Llama,
    prefix: Option<&PromptPrefix>,
    mut ids: Vec<u32>,
    max_tokens: usize,
) -> Result<Prepared, String> {
    let room = model.config().max_position_embeddings.saturating_sub(max_tokens.max(1));
    if room == 0 {
        return Err(format!(
            "the model's context ({}) has no room for the prompt",
            model.config().max_position_embeddings
        ));
    }
    if ids.is_empty() {
        return Err("empty prompt".into());
    }
    let truncated = ids.len() > room;
    if truncated {
        ids.drain(..ids.len() - room);
    }
    let shared =
        prefix.map_or(0, |p| p.ids.iter().zip(&ids).take_while(|(a, b)| a == b).count().min(ids.len() - 1));
    let cache = match prefix {
        Some(p) if shared > 0 => {
            p.cache.truncated(shared).and_then(|c| c.fork()).map_err(|x| x.to_string())?
        }
        _ => model.new_cache(),
    };
    Ok(Prepared { cache, rest: ids.split_off(shared), truncated })
}

/// A prompt after prefill: its cache, the logits of its last position, and whether it was cut from the left.
struct Started {
    cache: KvCache,
    logits: Vec<f32>,
    truncated: bool,
}

/// [`prepare`], then the rest of the prompt through the model.
fn start(
    model: &Llama,
    prefix: Option<&PromptPrefix>,
    ids: Vec<u32>,
    max_tokens: usize,
) -> Result<Started, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let Prepared { mut cache, rest, truncated } = prepare(model, prefix, ids, max_tokens)?;
    let x = Tensor::from_vec(rest.clone(), (1, rest.len()), &Device::Cpu).map_err(|x| e(&x))?;
    let logits = model.forward_cached(&x, &mut cache).map_err(|x| e(&x))?;
    let logits = logits.squeeze(0).and_then(|l| l.to_vec1()).map_err(|x| e(&x))?;
    Ok(Started { cache, logits, truncated })
}

/// Greedy generation of at most `max_tokens` tokens (no stop strings; a sequence ends at the model's
/// end-of-sequence tokens) for many prompts, `batch` documents at a time: the prompts of a batch are prefilled
/// together (each after the part it shares with `prefix`), then decode together, one token of each per step
/// ([`Llama::forward_decode`]: the weights are read once for all of them). Each document's generation is the one
/// it would get decoded alone, up to the summation order of the batched products (tested to give the
/// same predictions at batch sizes 1, 8 and 32).
///
/// # Errors
/// A message naming the document (its index in `prompts`) whose prompt does not fit or whose step fails.
pub fn greedy_batch(
    model: &Llama,
    tok: &Tokenizer,
    prefix: Option<&PromptPrefix>,
    prompts: Vec<Vec<u32>>,
    max_tokens: usize,
    batch: usize,
    mut done: impl FnMut(usize),
) -> Result<Vec<Generation>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let eos = &model.config().eos_token_ids;
    let mut outs: Vec<(Vec<u32>, bool)> = Vec::with_capacity(prompts.len());
    let mut prompts = prompts.into_iter().enumerate().peekable();
    while prompts.peek().is_some() {
        // The batch's prompts prefilled together (each after its shared prefix), then (document, cache, next
        // token) of the documents still generating.
        let (mut docs, mut caches, mut rests) = (vec![], vec![], vec![]);
        for (i, ids) in prompts.by_ref().take(batch.max(1)) {
            let p = prepare(model, prefix, ids, max_tokens).map_err(|m| format!("document {i}: {m}"))?;
            outs.push((vec![], p.truncated));
            docs.push(i);
            caches.push(p.cache);
            rests.push(p.rest);
        }
        let seqs: Vec<&[u32]> = rests.iter().map(Vec::as_slice).collect();
        let logits = model
            .forward_ragged(&seqs, &mut caches)
            .map_err(|x| format!("document {}: {}", docs[0], e(&x)))?;
        let logits: Vec<Vec<f32>> = logits.to_vec2().map_err(|x| e(&x))?;
        let mut live: Vec<(usize, KvCache, u32)> =
            docs.into_iter().zip(caches).zip(&logits).map(|((i, c), l)| (i, c, argmax(l))).collect();
        for step in 0..max_tokens {
            live.retain(|(i, _, next)| {
                let ended = eos.contains(next);
                if !ended {
                    outs[*i].0.push(*next);
                }
                let finished = ended || step + 1 == max_tokens;
                if finished {
                    done(*i);
                }
                !finished
            });
            if live.is_empty() {
                break;
            }
            let ids: Vec<u32> = live.iter().map(|l| l.2).collect();
            let mut caches: Vec<KvCache> = live.iter_mut().map(|l| std::mem::take(&mut l.1)).collect();
            let logits = model.forward_decode(&ids, &mut caches).map_err(|x| e(&x))?;
            let logits: Vec<Vec<f32>> = logits.to_vec2().map_err(|x| e(&x))?;
            for ((l, c), row) in live.iter_mut().zip(caches).zip(&logits) {
                l.1 = c;
                l.2 = argmax(row);
            }
        }
    }
    outs.into_iter()
        .map(|(ids, truncated)| {
            Ok(Generation { text: tok.decode(&ids, true).map_err(|x| e(&x))?, tokens: ids.len(), truncated })
        })
        .collect()
}

/// MGSM's `_extract_answer`: the last number-like match (`-?[0-9.,]+`), dots stripped at both ends, commas
/// removed; `None` unless it parses as an integer value.
pub fn mgsm_answer(completion: &str) -> Option<f64> {
    let is_num = |c: char| c.is_ascii_digit() || c == '.' || c == ',';
    let mut last: Option<String> = None;
    let chars: Vec<char> = completion.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        if chars[i] == '-' && chars.get(i + 1).is_some_and(|&c| is_num(c)) {
            i += 1;
        }
        if i < chars.len() && is_num(chars[i]) {
            while i < chars.len() && is_num(chars[i]) {
                i += 1;
            }
            last = Some(chars[start..i].iter().collect());
        } else {
            i = start + 1;
        }
    }
    let s = last?.trim_matches('.').replace(',', "");
    let v: f64 = s.parse().ok()?;
    (v.fract() == 0.0 && v.is_finite()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mgsm_answers_follow_the_upstream_regex() {
        assert_eq!(mgsm_answer("答えは1,234です。"), Some(1234.0));
        assert_eq!(mgsm_answer("3個と5個で8."), Some(8.0));
        assert_eq!(mgsm_answer("-12 度"), Some(-12.0));
        assert_eq!(mgsm_answer("2.5 kg"), None);
        assert_eq!(mgsm_answer("なし"), None);
        assert_eq!(mgsm_answer("a-b 7"), Some(7.0));
    }
}
