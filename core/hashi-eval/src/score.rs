//! Log-likelihood scoring of choices, with EleutherAI lm-evaluation-harness's token semantics (HF backend):
//! trailing whitespace of the context moves to the front of the continuation; the context is encoded alone,
//! `context + continuation` is encoded whole, and the continuation tokens are the whole encoding past the
//! context's length; the model reads `context tokens + continuation tokens`, with the tokenizer's own special
//! tokens (a leading `<s>` for Llama tokenizers, as lm-eval's default `add_special_tokens` gives). The context is
//! run once — its last position scores every continuation's first token — and its KV cache is shared by the rest
//! of all the continuations (the harnesses recompute the context per choice), which are fed together across a
//! batch of questions ([`score_questions`]).

use candle_core::{D, Tensor};
use hashi_model::{KvCache, Llama};
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

/// One question of a choice task: its context and the continuations to score after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The prompt (few-shot examples and the question).
    pub context: String,
    /// The answer choices, each scored as a continuation of `context`.
    pub choices: Vec<String>,
}

/// A question's token ids: its context's and each continuation's.
struct Encoded {
    context: Vec<u32>,
    conts: Vec<Vec<u32>>,
}

fn encode(model: &Llama, tok: &Tokenizer, q: &Question) -> Result<Encoded, String> {
    let max = model.config().max_position_embeddings;
    let pairs = q.choices.iter().map(|c| encode_pair(tok, &q.context, c)).collect::<Result<Vec<_>, _>>()?;
    let Some((ctx_ids, _)) = pairs.first() else {
        return Err("a question without choices".into());
    };
    if pairs.iter().any(|(ctx, _)| ctx != ctx_ids) {
        return Err("the continuations change the context's encoding; cannot share it".into());
    }
    if let Some(n) = pairs.iter().map(|(c, k)| c.len() + k.len()).find(|&n| n > max) {
        return Err(format!("context + continuation ({n} tokens) exceed the model's {max} positions"));
    }
    Ok(Encoded { context: ctx_ids.clone(), conts: pairs.into_iter().map(|(_, k)| k).collect() })
}

/// Scores every continuation of every question, `batch` questions at a time, in order of context length
/// (longest first, as lm-evaluation-harness orders its requests). Each context runs once — the batch's contexts
/// together in one ragged forward ([`Llama::forward_ragged`]) — and its cache is shared by its continuations
/// ([`KvCache::fork`], not copied); then the continuations' later tokens of all questions in the batch are fed
/// together, one token of every unfinished continuation per step ([`Llama::forward_decode`]), so the weights
/// are read once per step for the whole batch. A question's scores are those it gets scored alone, up to the summation
/// order of a matrix product over more rows (tested: the same predictions and log-likelihoods within 1e-5 at
/// batch sizes 1, 8 and 32). `done(i)` is called as question `i` is finished.
///
/// # Errors
/// The index of the question whose prompt does not fit or whose computation fails, with a message.
pub fn score_questions(
    model: &Llama,
    tok: &Tokenizer,
    questions: &[Question],
    batch: usize,
    mut done: impl FnMut(usize),
) -> Result<Vec<Vec<Scored>>, (usize, String)> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let encoded = questions
        .iter()
        .enumerate()
        .map(|(i, q)| encode(model, tok, q).map_err(|m| (i, m)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut order: Vec<usize> = (0..questions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].context.len()));
    let mut out: Vec<Vec<Scored>> = vec![vec![]; questions.len()];
    for group in order.chunks(batch.max(1)) {
        // The contexts of the group in one ragged forward; each last position scores its continuations' first
        // tokens.
        let mut contexts: Vec<KvCache> = group.iter().map(|_| model.new_cache()).collect();
        let seqs: Vec<&[u32]> = group.iter().map(|&i| encoded[i].context.as_slice()).collect();
        let fail = |x: &dyn std::fmt::Display| (group[0], e(x));
        let last = model.forward_ragged(&seqs, &mut contexts).map_err(|x| fail(&x))?;
        let firsts = log_softmax(&last).map_err(|x| fail(&x))?;
        let runs: Vec<(&Encoded, &Vec<f32>)> = group.iter().map(|&i| &encoded[i]).zip(&firsts).collect();
        // Rows: (question in the group, choice); row r feeds its continuation but the last token.
        let rows: Vec<(usize, usize)> =
            runs.iter().enumerate().flat_map(|(g, r)| (0..r.0.conts.len()).map(move |c| (g, c))).collect();
        // Each row continues its question's cache, sharing the context's keys and values (not copying them).
        let mut caches: Vec<KvCache> =
            rows.iter().map(|&(g, _)| contexts[g].fork()).collect::<Result<_, _>>().map_err(|x| fail(&x))?;
        let mut later: Vec<Vec<Vec<f32>>> = vec![vec![]; rows.len()];
        let feed = |r: usize| &runs[rows[r].0].0.conts[rows[r].1];
        for step in 0.. {
            let live: Vec<usize> = (0..rows.len()).filter(|&r| feed(r).len() > step + 1).collect();
            if live.is_empty() {
                break;
            }
            let ids: Vec<u32> = live.iter().map(|&r| feed(r)[step]).collect();
            let mut step_caches: Vec<KvCache> =
                live.iter().map(|&r| std::mem::take(&mut caches[r])).collect();
            let fail = |x: &dyn std::fmt::Display| (group[rows[live[0]].0], e(x));
            let logits = model.forward_decode(&ids, &mut step_caches).map_err(|x| fail(&x))?;
            let lsm = log_softmax(&logits).map_err(|x| fail(&x))?;
            for ((&r, c), row) in live.iter().zip(step_caches).zip(lsm) {
                caches[r] = c;
                later[r].push(row);
            }
        }
        let mut scored: Vec<Vec<Scored>> = runs.iter().map(|r| Vec::with_capacity(r.0.conts.len())).collect();
        for (r, &(g, c)) in rows.iter().enumerate() {
            let (first, cont) = (runs[g].1, &runs[g].0.conts[c]);
            let (mut ll, mut greedy) = (0f64, true);
            for (i, &target) in cont.iter().enumerate() {
                let row = if i == 0 { first } else { &later[r][i - 1] };
                ll += f64::from(row[target as usize]);
                let best = row
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b });
                greedy &= best.0 == target as usize;
            }
            scored[g].push(Scored { loglikelihood: ll, is_greedy: greedy, tokens: cont.len() });
        }
        for (g, s) in scored.into_iter().enumerate() {
            out[group[g]] = s;
            done(group[g]);
        }
    }
    Ok(out)
}

/// Scores every continuation after `context`: [`score_questions`] for one question.
///
/// # Errors
/// A message when the prompt does not fit or the computation fails.
pub fn score_choices(
    model: &Llama,
    tok: &Tokenizer,
    context: &str,
    continuations: &[String],
) -> Result<Vec<Scored>, String> {
    let q = Question { context: context.to_string(), choices: continuations.to_vec() };
    let mut all = score_questions(model, tok, &[q], 1, |_| ()).map_err(|(_, m)| m)?;
    Ok(all.remove(0))
}

fn log_softmax(logits: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let max = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)?.to_vec2()
}

/// Log-probabilities of every next token of each row (see [`score_choices_with`]).
pub type LogProbs<'a> = dyn FnMut(&[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> + 'a;

/// Scores every continuation of every question with a log-probability function over whole sequences (a
/// training backend, e.g. a plugin), `batch` questions per call, in order of length (longest first): each
/// `context + continuation` is one row, the rows of a call padded at the end to one length;
/// `logprobs(rows)[r][t]` is the log-probability of token `t + 1` of row `r`. Same token semantics as
/// [`score_questions`]; `is_greedy` cannot be known this way and is `false`. `done(i)` is called as question `i`
/// is finished.
///
/// # Errors
/// The index of the question whose prompt does not fit or whose call fails, with a message.
pub fn score_questions_with(
    logprobs: &mut LogProbs<'_>,
    tok: &Tokenizer,
    max_positions: usize,
    questions: &[Question],
    batch: usize,
    mut done: impl FnMut(usize),
) -> Result<Vec<Vec<Scored>>, (usize, String)> {
    let pairs = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let p = q.choices.iter().map(|c| encode_pair(tok, &q.context, c)).collect::<Result<Vec<_>, _>>();
            let p = p.map_err(|m| (i, m))?;
            match p.iter().map(|(c, k)| c.len() + k.len()).max() {
                Some(n) if n > max_positions => Err((
                    i,
                    format!(
                        "context + continuation ({n} tokens) exceed the model's {max_positions} positions"
                    ),
                )),
                Some(_) => Ok(p),
                None => Err((i, "a question without choices".into())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let width = |i: usize| pairs[i].iter().map(|(c, k)| c.len() + k.len()).max().unwrap_or(0);
    let mut order: Vec<usize> = (0..questions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(width(i)));
    let mut out: Vec<Vec<Scored>> = vec![vec![]; questions.len()];
    for group in order.chunks(batch.max(1)) {
        let w = group.iter().map(|&i| width(i)).max().unwrap_or(0).max(2);
        let rows: Vec<Vec<u32>> = group
            .iter()
            .flat_map(|&i| &pairs[i])
            .map(|(c, k)| {
                let mut r: Vec<u32> = c.iter().chain(k).copied().collect();
                r.resize(w, 0);
                r
            })
            .collect();
        let lp = logprobs(&rows).map_err(|m| (group[0], m))?;
        if lp.len() != rows.len() || lp.iter().any(|r| r.len() + 1 < w) {
            return Err((
                group[0],
                format!("the backend returned {} rows of log-probabilities for {}", lp.len(), rows.len()),
            ));
        }
        let mut lp = lp.iter();
        for &i in group {
            out[i] = pairs[i]
                .iter()
                .zip(lp.by_ref())
                .map(|((c, k), row)| Scored {
                    loglikelihood: (0..k.len()).map(|t| f64::from(row[c.len() - 1 + t])).sum(),
                    is_greedy: false,
                    tokens: k.len(),
                })
                .collect();
            done(i);
        }
    }
    Ok(out)
}
