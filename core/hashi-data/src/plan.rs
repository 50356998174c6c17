//! Curriculum plans: what a Lua curriculum declares, and its resolution against prepared shards into exact
//! sequence budgets per phase, language and source — checked before any training.
//!
//! A phase has a token budget (absolute, or a fraction of the plan's `total_tokens`), language shares, and per
//! language an ordered list of sources read `sequential`ly (each source until it is used up, as in the method's
//! Wiki → CC100 → OSCAR order) or `blend`ed (in proportion to their sizes, or to given weights). Sources keep
//! their read position across phases. When a source runs out, `on_exhausted = "error"` stops with a clear
//! message and `"repeat"` starts another epoch of it (counted in the plan).

use std::collections::BTreeMap;

pub use hashi_core::plan::{
    Budget, LangPhase, OnExhausted, Order, Phase, PhaseDecl, PlanDecl, ResolvedPlan, SourceList, SourceShare,
};

use crate::error::{DataError, Result};
use crate::prepare::Manifest;

/// Splits `total` into integer parts proportional to `weights`, exactly (largest remainder; ties: first).
pub fn apportion(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if !(sum.is_finite() && sum > 0.0) || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = total.saturating_sub(parts.iter().sum::<u64>());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// Resolves `decl` against the prepared shards of `manifest` (after [`PlanDecl::validate`]).
pub fn resolve(decl: &PlanDecl, manifest: &Manifest) -> Result<ResolvedPlan> {
    let err = |m: String| DataError::Input(format!("plan {}: {m}", decl.name));
    decl.validate().map_err(DataError::Input)?;
    let available: BTreeMap<String, u64> = manifest
        .corpora
        .iter()
        .map(|e| (e.corpus.name.clone(), e.tokens.saturating_sub(1) / decl.seq_len as u64))
        .collect();
    let lang_of: BTreeMap<&str, &str> =
        manifest.corpora.iter().map(|e| (e.corpus.name.as_str(), e.corpus.lang.as_str())).collect();
    let mut used: BTreeMap<String, u64> = BTreeMap::new(); // sequences read so far, all epochs
    let mut phases = Vec::new();
    for p in &decl.phases {
        let perr = |m: String| err(format!("phase {}: {m}", p.name));
        let tokens = if p.tokens <= 1.0 {
            let total =
                decl.total_tokens.ok_or_else(|| perr("a fractional budget needs total_tokens".into()))?;
            p.tokens * total
        } else {
            p.tokens
        };
        if !(tokens.is_finite() && tokens > 0.0) {
            return Err(perr(format!("token budget {tokens} must be positive")));
        }
        let batches = ((tokens / (decl.seq_len * decl.batch_size) as f64).round() as u64).max(1);
        let langs: Vec<&String> = p.shares.keys().collect();
        let shares: Vec<f64> = langs.iter().map(|l| p.shares[*l]).collect();
        let per_lang = apportion(batches * decl.batch_size as u64, &shares);
        let mut out_langs = Vec::new();
        for ((lang, share), sequences) in langs.iter().zip(&shares).zip(per_lang) {
            let list = p.sources.get(*lang).ok_or_else(|| perr(format!("no sources for language {lang}")))?;
            if list.names.is_empty() {
                return Err(perr(format!("language {lang} has an empty source list")));
            }
            for n in &list.names {
                match lang_of.get(n.as_str()) {
                    None => return Err(perr(format!("source {n} is not in the prepared manifest"))),
                    Some(l) if l != lang => {
                        return Err(perr(format!("source {n} is {l}, listed under {lang}")));
                    }
                    _ => {}
                }
            }
            let takes: Vec<u64> = match list.order {
                Order::Sequential => {
                    let mut left = sequences;
                    let mut takes = vec![0; list.names.len()];
                    for (i, n) in list.names.iter().enumerate() {
                        let remaining = available[n].saturating_sub(used.get(n).copied().unwrap_or(0));
                        takes[i] = left.min(remaining);
                        left -= takes[i];
                    }
                    // Everything listed is used up: the first source is read again (or the check below fails).
                    takes[0] += left;
                    takes
                }
                Order::Blend => {
                    let w: Vec<f64> = match &list.weights {
                        Some(w) if w.len() == list.names.len() => w.clone(),
                        Some(_) => return Err(perr(format!("language {lang}: one blend weight per source"))),
                        None => list.names.iter().map(|n| available[n] as f64).collect(),
                    };
                    apportion(sequences, &w)
                }
            };
            let mut sources = Vec::new();
            for (n, t) in list.names.iter().zip(takes) {
                let total = used.entry(n.clone()).or_insert(0);
                *total += t;
                let avail = available[n];
                if *total > avail && decl.on_exhausted == OnExhausted::Error {
                    return Err(perr(format!(
                        "source {n} runs out: the plan reads {} sequences of {} tokens, it has {avail} \
                         (use on_exhausted = \"repeat\" to read it again, or lower the budget)",
                        *total, decl.seq_len
                    )));
                }
                if avail == 0 && t > 0 {
                    return Err(perr(format!("source {n} is shorter than one sequence")));
                }
                let epochs = if avail == 0 { 1 } else { (*total).div_ceil(avail).max(1) };
                sources.push(SourceShare { name: n.clone(), sequences: t, epochs });
            }
            out_langs.push(LangPhase {
                lang: (*lang).clone(),
                share: *share,
                sequences,
                order: list.order,
                sources,
            });
        }
        phases.push(Phase { name: p.name.clone(), batches, langs: out_langs, training: p.training.clone() });
    }
    Ok(ResolvedPlan { decl: decl.clone(), phases, available })
}
