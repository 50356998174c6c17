//! Greedy generation with stop strings, as the harnesses' `greedy_until`: the context is encoded with the
//! tokenizer's special tokens and cut from the left to leave room for the new tokens (counted as truncated);
//! generation stops at the model's end-of-sequence tokens, at `max_tokens`, or once the decoded continuation contains a
//! stop string, and the continuation is cut before the first stop string. Plus MGSM's context fitting and
//! answer extraction (`lm_eval/tasks/ja/mgsm.py`).

use candle_core::{Device, Tensor};
use hashi_model::Llama;
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
    let ids = tok.encode(context, true).map_err(|x| x.to_string())?;
    greedy_from_ids(model, tok, ids, until, max_tokens)
}

/// [`greedy_until`] after a context already encoded (`ids`, with whatever special tokens the caller chose).
pub fn greedy_from_ids(
    model: &Llama,
    tok: &Tokenizer,
    mut ids: Vec<u32>,
    until: &[&str],
    max_tokens: usize,
) -> Result<Generation, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let room = model.config().max_position_embeddings.saturating_sub(max_tokens.max(1));
    if room == 0 {
        return Err(format!(
            "the model's context ({}) has no room for the prompt",
            model.config().max_position_embeddings
        ));
    }
    let truncated = ids.len() > room;
    if truncated {
        ids.drain(..ids.len() - room);
    }
    let eos = &model.config().eos_token_ids;
    let mut cache = model.new_cache();
    let mut input = ids;
    let mut out: Vec<u32> = vec![];
    let cut = |text: &str| until.iter().filter_map(|u| text.find(u)).min();
    for _ in 0..max_tokens {
        let x = Tensor::from_vec(input.clone(), (1, input.len()), &Device::Cpu).map_err(|x| e(&x))?;
        let logits = model.forward_cached(&x, &mut cache).map_err(|x| e(&x))?;
        let logits: Vec<f32> = logits.squeeze(0).and_then(|l| l.to_vec1()).map_err(|x| e(&x))?;
        let next = argmax(&logits);
        if eos.contains(&next) {
            break;
        }
        out.push(next);
        input = vec![next];
        if !until.is_empty() && cut(&tok.decode(&out, true).map_err(|x| e(&x))?).is_some() {
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

/// MGSM's `preprocess_ctx`: while the context (without special tokens) is longer than `max_len` tokens, drop
/// the first few-shot example (split on `問題：`); an error if even the zero-shot prompt does not fit.
pub fn fit_mgsm_context(tok: &Tokenizer, ctx: &str, max_len: usize) -> Result<(String, usize), String> {
    let mut ctx = ctx.to_string();
    let mut dropped = 0;
    loop {
        if tok.encode(&ctx, false).map_err(|e| e.to_string())?.len() <= max_len {
            return Ok((ctx, dropped));
        }
        let mut parts: Vec<&str> = ctx.split("問題：").collect();
        if parts.len() < 2 {
            return Err(format!("the 0-shot prompt does not fit in {max_len} tokens"));
        }
        parts.remove(1);
        ctx = parts.join("問題：");
        dropped += 1;
    }
}

/// JaQKET v2's `preprocess_ctx`: while the context (with the tokenizer's special tokens) is longer than
/// `max_len` tokens, split off the description at the first `sep`, split the rest on `sep`, drop the first
/// piece and join again — upstream's rule, which drops a whole example only when examples contain no `sep`.
pub fn fit_by_separator(
    tok: &Tokenizer,
    ctx: &str,
    max_len: usize,
    sep: &str,
) -> Result<(String, usize), String> {
    let mut ctx = ctx.to_string();
    let mut dropped = 0;
    loop {
        if tok.encode(&ctx, true).map_err(|e| e.to_string())?.len() <= max_len {
            return Ok((ctx, dropped));
        }
        let (description, rest) =
            ctx.split_once(sep).ok_or_else(|| format!("the prompt does not fit in {max_len} tokens"))?;
        let mut pieces: Vec<&str> = rest.split(sep).collect();
        if pieces.len() < 2 {
            return Err(format!("the 0-shot prompt does not fit in {max_len} tokens"));
        }
        pieces.remove(0);
        let mut all = vec![description];
        all.extend(pieces);
        ctx = all.join(sep);
        dropped += 1;
    }
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
