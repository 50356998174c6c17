//! The tokenizer stage: train a bilingual tokenizer, optionally expand the base model's with its pieces, and
//! analyse it against the base's on held-out text.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hashi_core::Reporter;
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::analyze::{self, TokenizerAnalysis, TokenizerSide};
use hashi_tokenizer::hf::LlamaStyle;
use hashi_tokenizer::input::{InputSpec, read_inputs};
use hashi_tokenizer::train::{LangSampling, SPECIAL_TOKENS, TrainConfig, train};
use serde::{Deserialize, Serialize};

/// `equal` (same bytes per language), `all`, or weights like `ja=0.6,en=0.4`.
pub fn parse_sampling(s: &str) -> Result<LangSampling> {
    Ok(match s {
        "equal" => LangSampling::EqualBytes,
        "all" => LangSampling::All,
        weights => LangSampling::Weights(
            weights
                .split(',')
                .map(|kv| {
                    let (k, v) =
                        kv.split_once('=').with_context(|| format!("sampling weight {kv:?}: use LANG=W"))?;
                    let w: f64 = v.parse().with_context(|| format!("sampling weight {kv:?}"))?;
                    if !(w.is_finite() && w >= 0.0) {
                        bail!("sampling weight {kv:?} must be a non-negative number");
                    }
                    Ok((k.to_string(), w))
                })
                .collect::<Result<_>>()?,
        ),
    })
}

/// One language of the training text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LangUse {
    /// Language tag.
    pub lang: String,
    /// Documents read.
    pub docs: usize,
    /// UTF-8 bytes trained on.
    pub bytes_used: u64,
    /// UTF-8 bytes available.
    pub bytes: u64,
}

/// What `hashi tokenizer train` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The tokenizer folder.
    pub out: PathBuf,
    /// Pieces, special and byte tokens included.
    pub vocab_size: usize,
    /// Merges learned.
    pub merges: usize,
    /// Distinct pre-tokenized words.
    pub unique_words: usize,
    /// Distinct characters in the text.
    pub characters_seen: usize,
    /// Characters kept as pieces (the rest fall back to bytes).
    pub characters_kept: usize,
    /// Share of character occurrences covered by the kept characters.
    pub coverage: f64,
    /// The text used per language.
    pub languages: Vec<LangUse>,
    /// Wall time.
    pub seconds: f64,
    /// Peak resident memory (MiB), where the system says.
    pub peak_rss_mib: Option<f64>,
}

/// Trains a SentencePiece-style BPE tokenizer on `inputs` with `cfg` and writes it (HF tokenizer.json + configs)
/// into `out`.
pub fn train_tokenizer(
    inputs: &[InputSpec],
    cfg: &TrainConfig,
    model_max_length: usize,
    out: &Path,
    progress: &dyn Reporter,
) -> Result<TrainSummary> {
    let start = std::time::Instant::now();
    let texts = read_inputs(inputs)?;
    let vocab = train(&texts, cfg, progress)?;
    let style = LlamaStyle {
        register_specials: true,
        user_defined: (SPECIAL_TOKENS.len()..SPECIAL_TOKENS.len() + vocab.num_user_defined)
            .map(|i| i as u32)
            .collect(),
        pieces: vocab.pieces,
        merges: vocab.merges,
        unk_bos_eos: [0, 1, 2],
        add_dummy_prefix: true,
        nfkc: false,
    };
    style.save(out, model_max_length)?;
    let s = &vocab.stats;
    for (lang, docs, used, total) in &s.languages {
        tracing::info!("{lang}: {docs} documents, {used} of {total} bytes");
    }
    Ok(TrainSummary {
        out: out.to_path_buf(),
        vocab_size: style.pieces.len(),
        merges: s.merges,
        unique_words: s.unique_words,
        characters_seen: s.characters_seen,
        characters_kept: s.characters_kept,
        coverage: s.coverage,
        languages: s
            .languages
            .iter()
            .map(|(l, d, u, t)| LangUse { lang: l.clone(), docs: *d, bytes_used: *u, bytes: *t })
            .collect(),
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_mib: hashi_core::peak_rss_mib(),
    })
}

/// An analysis as text tables: the vocabulary by script, then length per token on each language's text, beside
/// the reference with ratios.
pub fn analysis_table(analysis: &TokenizerAnalysis) -> String {
    {
        use std::fmt::Write as _;
        macro_rules! w {
            ($o:expr, $($t:tt)*) => {{ let _ = writeln!($o, $($t)*); }};
        }
        let mut out = String::new();
        let (comp, lengths) = (&analysis.composition, &analysis.lengths);
        let reference = analysis.reference.as_ref().map(|r| (&r.composition, &r.lengths));
        // A ratio to a zero reference (no byte-fallback tokens, no text) has no value: `—`, never `inf%` or `NaN%`.
        let ratio = |x: f64, r: Option<f64>| {
            r.map_or(String::new(), |r| if r == 0.0 { "—".into() } else { format!("{:.2}%", 100.0 * x / r) })
        };
        let num = |r: Option<f64>, digits: usize| r.map_or(String::new(), |r| format!("{r:.digits$}"));
        w!(out, "Vocabulary by script ({} pieces)", comp.total);
        w!(out, "{:<12} {:>10} {:>8} {:>10} {:>8}", "category", "pieces", "share", "reference", "share");
        let rows = comp.by_category.iter().map(|(c, n)| (c.name(), *n)).chain([("japanese", comp.japanese)]);
        for (i, (name, n)) in rows.enumerate() {
            let r = reference.as_ref().map(|(rc, _)| {
                let rn = rc.by_category.get(i).map_or(rc.japanese, |x| x.1);
                (rn, rc.total)
            });
            let share = |n: usize, t: usize| format!("{:.1}%", 100.0 * n as f64 / t.max(1) as f64);
            let (rn, rs) =
                r.map_or((String::new(), String::new()), |(rn, rt)| (rn.to_string(), share(rn, rt)));
            w!(out, "{name:<12} {n:>10} {:>8} {rn:>10} {rs:>8}", share(n, comp.total));
        }
        for (i, l) in lengths.iter().enumerate() {
            let r = reference.as_ref().map(|(_, rl)| &rl[i]);
            w!(out, "\nLength on {} text ({} docs, {} chars)", l.lang, l.docs, l.chars);
            w!(out, "{:<22} {:>10} {:>10} {:>9}", "metric", "ours", "reference", "ratio");
            let metrics: [(&str, f64, Option<f64>, usize); 5] = [
                ("chars/token", l.chars_per_token, r.map(|r| r.chars_per_token), 3),
                ("bytes/token", l.bytes_per_token, r.map(|r| r.bytes_per_token), 3),
                (
                    if l.unit == "char" { "tokens/char" } else { "tokens/word" },
                    l.tokens_per_unit,
                    r.map(|r| r.tokens_per_unit),
                    3,
                ),
                ("byte-fallback rate", l.fallback_rate, r.map(|r| r.fallback_rate), 4),
                ("tokens", l.tokens as f64, r.map(|r| r.tokens as f64), 0),
            ];
            for (name, x, rx, d) in metrics {
                w!(out, "{name:<22} {x:>10.d$} {:>10} {:>9}", num(rx, d), ratio(x, rx));
            }
        }
        out.trim_end().to_string()
    }
}

/// Vocabulary by script and length per token on `texts`, for `tokenizer` and `reference`.
pub fn analyze_tokenizer(
    tokenizer: &Path,
    reference: Option<&Path>,
    texts: &[InputSpec],
) -> Result<TokenizerAnalysis> {
    let texts = if texts.is_empty() { vec![] } else { read_inputs(texts)? };
    let side = |path: &Path| -> Result<TokenizerSide> {
        let tok = Tokenizer::from_file(path)?;
        let lengths =
            texts.iter().map(|t| analyze::length_stats(&tok, &t.lang, &t.docs)).collect::<Result<_, _>>()?;
        Ok(TokenizerSide { tokenizer: path.to_path_buf(), composition: analyze::composition(&tok), lengths })
    };
    let ours = side(tokenizer)?;
    Ok(TokenizerAnalysis {
        tokenizer: ours.tokenizer,
        composition: ours.composition,
        lengths: ours.lengths,
        reference: reference.map(side).transpose()?,
    })
}

/// Vocabulary expansion: `base` with `add`'s missing pieces appended, written into `out` with the base's
/// tokenizer_config.json, special_tokens_map.json and chat template.
pub fn expand_tokenizer(
    base: &Path,
    add: &Path,
    out: &Path,
) -> Result<hashi_tokenizer::expand::ExpandReport> {
    let base = Tokenizer::from_file(base)?;
    let added = Tokenizer::from_file(add)?;
    let (json, report) = hashi_tokenizer::expand::expand(&base, &added)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let dir = base.path().parent().unwrap_or(Path::new("."));
    for f in ["tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"] {
        if dir.join(f).is_file() {
            std::fs::copy(dir.join(f), out.join(f))
                .with_context(|| format!("copying {}", dir.join(f).display()))?;
        }
    }
    let path = out.join("tokenizer.json");
    std::fs::write(&path, serde_json::to_string(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(report)
}
