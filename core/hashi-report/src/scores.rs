//! Scores read from evaluation results (the method's metric per task, on a 0–100 scale), their statistics over
//! seeds, the paper's orderings, and the tables of the tokenizer, transfer and timing sections.

use std::collections::BTreeMap;
use std::path::Path;

use hashi_core::artifacts::{RunCheckpoint, RunIndex, Vocabulary};
use hashi_eval::EvalResults;
use hashi_tokenizer::analyze::{Composition, TokenizerAnalysis};
use hashi_transfer::TransferReport;

use super::doc::Block;

/// The method's metric for a task (Table 1), its scale to 0–100, and the task's language.
fn metric(task: &str) -> Option<(&'static str, f64, &'static str)> {
    if let Some(t) = hashi_eval::llmjp::LlmJpTask::ALL.iter().find(|(n, _)| *n == task).map(|(_, t)| t) {
        // Swallow's protocol: its official metric, averaged apart from the method's Japanese tasks.
        return Some((t.metric().name(), 100.0, "llmjp"));
    }
    let family = task.split('-').next().unwrap_or(task);
    Some(match family {
        "jcommonsenseqa" | "jnli" | "marc_ja" => ("acc", 100.0, "ja"),
        "mgsm" => ("acc", 100.0, "ja"),
        "jcola" => ("balanced_acc", 100.0, "ja"),
        "jsquad" | "jaquad" | "jaqket_v2" => ("f1", 1.0, "ja"),
        "mnli" | "qnli" => ("acc", 100.0, "en"),
        _ => return None,
    })
}

/// A task name without its versions, for table headers.
pub fn short_name(task: &str) -> String {
    let family = match task.strip_prefix(hashi_eval::llmjp::PROTOCOL) {
        Some(t) => format!("llm-jp-eval {}", t.trim_start_matches(':')),
        None => task.split('-').next().unwrap_or(task).to_string(),
    };
    match metric(task) {
        Some((m, _, _)) => format!("{family} ({m})"),
        None => family.to_string(),
    }
}

/// One evaluation: the method's metric per task (0–100), its standard error, and bits per byte per language.
#[derive(Debug, Default, Clone)]
pub struct Scores {
    pub tasks: BTreeMap<String, f64>,
    pub stderr: BTreeMap<String, f64>,
    pub bpb: BTreeMap<String, f64>,
    /// UTF-8 bytes of held-out text each bits per byte was measured on.
    pub bpb_bytes: BTreeMap<String, u64>,
    /// Datasets scored under both protocols (jp-stable and llm-jp-eval).
    pub protocol_deltas: Vec<hashi_eval::ProtocolDelta>,
    /// Tasks evaluated as Swallow's columns (its protocol's tasks with its shots, `hashi_eval::is_swallow_column`):
    /// averaged in "Swallow avg", not in "JA avg".
    pub swallow: std::collections::BTreeSet<String>,
}

impl Scores {
    pub fn from_eval(v: &EvalResults) -> Self {
        let mut s = Scores::default();
        for (name, r) in &v.results {
            if let Some((m, scale, _)) = metric(name)
                && let Some(x) = r.metric(m)
            {
                s.tasks.insert(name.clone(), x * scale);
                if hashi_eval::is_swallow_column(name, v.n_shot.get(name).copied().unwrap_or(0)) {
                    s.swallow.insert(name.clone());
                }
                // balanced_acc has no stderr of its own upstream; acc's is the closest.
                let se = r.metric(&format!("{m}_stderr")).or(r.acc_stderr);
                s.stderr.insert(name.clone(), se.unwrap_or(0.0) * scale);
            }
        }
        s.protocol_deltas = v.protocol_deltas.clone();
        for b in &v.bits_per_byte {
            s.bpb.insert(b.lang.clone(), b.bits_per_byte);
            s.bpb_bytes.insert(b.lang.clone(), b.bytes as u64);
        }
        s
    }

    /// The mean (and its standard error) of the tasks of a group: "ja", "en", or "swallow" (Swallow's columns).
    fn avg(&self, group: &str) -> Option<(f64, f64)> {
        let xs: Vec<(&String, &f64)> = self
            .tasks
            .iter()
            .filter(|(t, _)| match group {
                "swallow" => self.swallow.contains(*t),
                _ => !self.swallow.contains(*t) && metric(t).is_some_and(|m| m.2 == group),
            })
            .collect();
        if xs.is_empty() {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().map(|x| x.1).sum::<f64>() / n;
        let se =
            xs.iter().map(|x| self.stderr.get(x.0).copied().unwrap_or(0.0).powi(2)).sum::<f64>().sqrt() / n;
        Some((mean, se))
    }

    pub fn ja_avg(&self) -> Option<f64> {
        self.avg("ja").map(|a| a.0)
    }

    pub fn en_avg(&self) -> Option<f64> {
        self.avg("en").map(|a| a.0)
    }

    /// The mean of Swallow's columns evaluated (llm-jp-eval's tasks with their official metrics, MGSM at 4
    /// shots).
    pub fn swallow_avg(&self) -> Option<f64> {
        self.avg("swallow").map(|a| a.0)
    }
}

/// Mean, sample standard deviation and count of the values present.
pub struct Stat {
    pub mean: Option<f64>,
    pub sd: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: impl Iterator<Item = Option<f64>>) -> Self {
        let xs: Vec<f64> = values.flatten().collect();
        let stat = hashi_eval::metrics::mean_and_sd(&xs);
        Self { mean: stat.map(|s| s.0), sd: stat.map_or(0.0, |s| s.1), n: xs.len() }
    }

    pub fn show(&self, digits: usize) -> String {
        match (self.mean, self.n) {
            (None, _) => "–".into(),
            (Some(m), 1) => format!("{m:.digits$}"),
            (Some(m), _) => format!("{m:.digits$} ± {:.digits$}", self.sd),
        }
    }
}

/// Task columns of Table 2: every task with a known metric, Japanese first.
pub fn task_columns<'a>(scores: impl Iterator<Item = &'a Scores>) -> Vec<String> {
    let mut tasks: Vec<String> = vec![];
    for s in scores {
        for t in s.tasks.keys() {
            if !tasks.contains(t) {
                tasks.push(t.clone());
            }
        }
    }
    tasks.sort_by_key(|t| (metric(t).map_or("zz", |m| m.2) != "ja", t.clone()));
    tasks
}

/// The paragraph under Table 2: what each average holds. `swallow`: the tasks evaluated as Swallow's columns.
pub fn legend(tasks: &[String], swallow: &std::collections::BTreeSet<String>) -> String {
    let columns: Vec<String> = tasks
        .iter()
        .filter(|t| swallow.contains(*t))
        .map(|t| match t.starts_with(hashi_eval::llmjp::PROTOCOL) {
            true => short_name(t),
            false => format!("{t} (acc)"),
        })
        .collect();
    let swallow_note = match columns.is_empty() {
        true => String::new(),
        false => format!(
            " Swallow avg averages the Swallow columns evaluated (llm-jp-eval v1.3.0: 4-shot, JMMLU 5-shot, greedy \
             generation, the answer before the first blank line, char_f1 or exact_match ×100; MGSM: the Japanese \
             harness's prompt version 0.0 at 4 shots): {}.",
            columns.join(", ")
        ),
    };
    format!(
        "Scores on a 0–100 scale with the method's metric per task (Table 1); JA avg averages the Japanese tasks \
         evaluated here ({}), EN avg MNLI and QNLI; bits per byte on held-out text (lower is better). With several \
         seeds: mean ± standard deviation.{swallow_note}",
        tasks
            .iter()
            .filter(|t| !swallow.contains(*t) && metric(t).is_some_and(|m| m.2 == "ja"))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The mean over runs of a per-checkpoint value (curves of one variant share their checkpoints).
pub fn mean_curve(curves: &[Vec<(f64, Scores)>], f: &dyn Fn(&Scores) -> Option<f64>) -> Vec<(f64, f64)> {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .filter_map(|i| {
            let x = curves[0][i].0;
            Stat::of(curves.iter().map(|c| f(&c[i].1))).mean.map(|y| (x, y))
        })
        .collect()
}

/// The in-loop bits per byte of `lang` (`metrics.jsonl`'s `bpb`) against tokens trained, averaged over the seeds'
/// runs (`per_seed`) point by point, up to the shortest.
pub fn in_loop_curve(per_seed: &[Vec<hashi_core::artifacts::Metrics>], lang: &str) -> Vec<(f64, f64)> {
    let points: Vec<Vec<(f64, f64)>> = per_seed
        .iter()
        .map(|m| {
            m.iter()
                .filter_map(|m| m.bpb.get(lang).map(|&b| (m.tokens_by_lang.values().sum::<u64>() as f64, b)))
                .collect()
        })
        .collect();
    let len = points.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .filter_map(|i| Stat::of(points.iter().map(|p| Some(p[i].1))).mean.map(|y| (points[0][i].0, y)))
        .collect()
}

/// Centered moving average over `window` points.
pub fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let h = window / 2;
    (0..points.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(h), (i + h + 1).min(points.len()));
            let ys = &points[lo..hi];
            (points[i].0, ys.iter().map(|p| p.1).sum::<f64>() / ys.len() as f64)
        })
        .collect()
}

/// A measure compared across variants: a task average (higher is better) or bits per byte (lower is better).
#[derive(Clone, Copy)]
enum Measure {
    Avg(&'static str),
    Bpb(&'static str),
}

impl Measure {
    /// The value of one evaluation (bits per byte negated, so higher is better throughout) and its standard error
    /// from evaluation sampling (none for bits per byte: the text is fixed).
    fn of(self, s: &Scores) -> Option<(f64, f64)> {
        match self {
            Measure::Avg(lang) => s.avg(lang),
            Measure::Bpb(lang) => s.bpb.get(lang).map(|v| (-v, 0.0)),
        }
    }
}

/// The mean over seeds of `m` and its standard error (evaluation noise plus seed spread; `None` for bits per
/// byte of a single seed, which has no variance estimate).
fn side(s: &[&Scores], m: Measure) -> Option<(f64, Option<f64>)> {
    let vals: Vec<(f64, f64)> = s.iter().filter_map(|x| m.of(x)).collect();
    if vals.is_empty() {
        return None;
    }
    let n = vals.len() as f64;
    let st = Stat::of(vals.iter().map(|v| Some(v.0)));
    let eval_se = vals.iter().map(|v| v.1.powi(2)).sum::<f64>().sqrt() / n;
    let se = match (m, vals.len()) {
        (Measure::Bpb(_), 1) => None,
        _ => Some((eval_se.powi(2) + st.sd.powi(2) / n).sqrt()),
    };
    Some((st.mean.unwrap_or(0.0), se))
}

/// "difference ± se: verdict" of `a` over `b`: holds when the difference exceeds twice its standard error.
fn compare(a: &[&Scores], b: &[&Scores], m: Measure) -> String {
    let (Some((va, ea)), Some((vb, eb))) = (side(a, m), side(b, m)) else { return "–".into() };
    let d = va - vb;
    let (digits, shown) = match m {
        Measure::Avg(_) => (1, d),
        Measure::Bpb(_) => (3, d),
    };
    match ea.zip(eb).map(|(x, y)| (x * x + y * y).sqrt()) {
        None => format!(
            "{shown:+.digits$}: {} (one seed, no variance estimate)",
            if d > 0.0 { "holds" } else { "reversed" }
        ),
        Some(se) => {
            let verdict = if d > 2.0 * se {
                "holds"
            } else if d < -2.0 * se {
                "reversed"
            } else {
                "tie within noise"
            };
            format!("{shown:+.digits$} ± {se:.digits$}: {verdict}")
        }
    }
}

/// The paper's claims (a better than b), checked on the task averages and on bits per byte per language.
pub fn orderings(
    finals: &BTreeMap<&String, Vec<&Scores>>,
    base: &[Scores],
) -> (Vec<String>, Vec<Vec<String>>) {
    let get = |name: &str| -> Option<Vec<&Scores>> {
        if name == "base" {
            return (!base.is_empty()).then(|| base.iter().collect());
        }
        finals.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v.clone())
    };
    // (a, b, paper JA a > b, paper EN a > b)
    let claims: [(&str, &str, &str, &str); 5] = [
        ("exp0", "exp1", "70.0 > 69.1", "54.8 > 52.8"),
        ("exp1", "exp3", "69.1 > 68.2", "52.8 > 52.3"),
        ("exp0", "exp3", "70.0 > 68.2", "54.8 > 52.3"),
        ("exp3", "exp2", "68.2 ≫ 29.1", "52.3 > 41.8"),
        ("exp0", "base", "70.0 > 63.6", "–"),
    ];
    let head = [
        "claim: a better than b",
        "paper JA avg",
        "JA avg",
        "JA bits/byte",
        "paper EN avg",
        "EN avg",
        "EN bits/byte",
    ]
    .map(String::from)
    .into();
    let mut rows = vec![];
    for (a, b, pja, pen) in claims {
        let (Some(sa), Some(sb)) = (get(a), get(b)) else { continue };
        let name = |x: &str| if x == "base" { "English base".to_string() } else { x.to_string() };
        rows.push(vec![
            format!("{} > {}", name(a), name(b)),
            pja.to_string(),
            compare(&sa, &sb, Measure::Avg("ja")),
            compare(&sa, &sb, Measure::Bpb("ja")),
            pen.to_string(),
            compare(&sa, &sb, Measure::Avg("en")),
            compare(&sa, &sb, Measure::Bpb("en")),
        ]);
    }
    (head, rows)
}

/// The tokenizer's composition by script and its length per token on the held-out text, beside the base model's,
/// under the heading `title`.
pub fn tokenizer_blocks(title: &str, a: &TokenizerAnalysis) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, title.into())];
    // Categories in the analysis's own order (Latin, CJK, Hiragana, Katakana, ...), then the Japanese total.
    let comp = |c: &Composition| -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> =
            c.by_category.iter().map(|(k, n)| (k.name().to_string(), *n as f64)).collect();
        v.push(("japanese (CJK + kana)".into(), c.japanese as f64));
        v
    };
    let reference = a.reference.as_ref();
    let ours = comp(&a.composition);
    let theirs = reference.map(|r| comp(&r.composition)).unwrap_or_default();
    let (t1, t2) = (a.composition.total as f64, reference.map_or(1.0, |r| r.composition.total as f64));
    let rows = ours
        .iter()
        .map(|(k, v)| {
            let r = theirs.iter().find(|t| &t.0 == k).map_or(0.0, |t| t.1);
            let pct = |x: f64, t: f64| format!("{:.1}%", 100.0 * x / t);
            vec![k.clone(), format!("{v:.0}"), pct(*v, t1), format!("{r:.0}"), pct(r, t2)]
        })
        .collect();
    blocks.push(Block::Table {
        head: ["script", "bilingual", "share", "English base", "share"].map(String::from).into(),
        rows,
    });
    let mut rows = vec![];
    for (i, l) in a.lengths.iter().enumerate() {
        let r = reference.and_then(|r| r.lengths.get(i));
        rows.push(vec![
            l.lang.clone(),
            format!("{:.3}", l.chars_per_token),
            r.map_or("–".into(), |r| format!("{:.3}", r.chars_per_token)),
            format!("{:.0}", l.tokens),
            r.map_or("–".into(), |r| format!("{:.0}", r.tokens)),
            format!("{:.4}", l.fallback_rate),
        ]);
    }
    blocks.push(Block::Table {
        head: [
            "held-out text",
            "chars/token",
            "base: chars/token",
            "tokens",
            "base: tokens",
            "byte fallback",
        ]
        .map(String::from)
        .into(),
        rows,
    });
    blocks
}

/// The transfer's kept and initialised rows by script and their norms, under the heading `title`.
pub fn transfer_blocks(title: &str, t: &TransferReport) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, title.into())];
    blocks.push(Block::Para(format!(
        "Strategy `{}`: {} of {} new tokens exist in the old vocabulary ({}) and keep their embedding and lm_head \
         rows; the rest are initialised by the strategy.",
        t.strategy, t.matched, t.new_vocab_size, t.old_vocab_size
    )));
    let rows = t
        .by_category
        .iter()
        .map(|c| vec![c.category.clone(), c.matched.to_string(), c.unmatched.to_string()])
        .collect();
    blocks.push(Block::Table {
        head: ["script", "kept (matched)", "initialised"].map(String::from).into(),
        rows,
    });
    let rows = t
        .norms
        .iter()
        .map(|n| {
            let f = |x: f64| format!("{x:.4}");
            vec![n.tensor.clone(), f(n.old), f(n.matched), f(n.initialised)]
        })
        .collect();
    blocks.push(Block::Table {
        head: ["tensor", "mean row norm: old", "kept rows", "initialised rows"].map(String::from).into(),
        rows,
    });
    blocks
}

/// What each variant trained on by its last checkpoint: tokens and text per language. A token budget is the same
/// number of tokens for every variant, but a different amount of text under each vocabulary.
pub fn text_read_blocks(variants: &[(String, Vocabulary, &RunCheckpoint)]) -> Vec<Block> {
    let langs: std::collections::BTreeSet<&String> =
        variants.iter().flat_map(|(_, _, c)| c.tokens_by_lang.iter().flatten().map(|(l, _)| l)).collect();
    if langs.is_empty() {
        return vec![];
    }
    let mut head: Vec<String> = vec!["model".into(), "vocabulary".into(), "tokens".into()];
    head.extend(langs.iter().map(|l| format!("{l} tokens")));
    // KB, or MB from 10 MB on.
    let most =
        variants.iter().flat_map(|(_, _, c)| c.text_bytes_by_lang.iter().flatten().map(|(_, b)| *b)).max();
    let (unit, scale) = if most.unwrap_or(0) >= 10_000_000 { ("MB", 1e6) } else { ("KB", 1e3) };
    head.extend(langs.iter().map(|l| format!("{l} text ({unit})")));
    let rows = variants
        .iter()
        .map(|(name, v, c)| {
            let mut r = vec![name.clone(), v.name().to_string(), c.tokens.to_string()];
            let tokens = |l: &String| c.tokens_by_lang.as_ref().and_then(|m| m.get(l)).map(u64::to_string);
            let text = |l: &String| {
                c.text_bytes_by_lang
                    .as_ref()
                    .and_then(|m| m.get(l))
                    .map(|b| format!("{:.1}", *b as f64 / scale))
            };
            r.extend(langs.iter().map(|l| tokens(l).unwrap_or_else(|| "–".into())));
            r.extend(langs.iter().map(|l| text(l).unwrap_or_else(|| "–".into())));
            r
        })
        .collect();
    vec![
        Block::Table { head, rows },
        Block::Para(
            "Text trained on by the last checkpoint: tokens per language, and the UTF-8 text they hold (each \
             language's tokens times the bytes per token of its corpora in the variant's shards). A token budget is \
             a different amount of text under each vocabulary."
                .into(),
        ),
    ]
}

pub fn timing_blocks(runs: &[(&Path, &RunIndex)]) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, "Time per stage".into())];
    for (dir, index) in runs {
        let mut groups: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        for (id, s) in &index.stage_seconds {
            let group = match id.split_once('-') {
                Some((kind @ ("eval" | "train" | "init"), _)) => kind.to_string(),
                _ => id.clone(),
            };
            let e = groups.entry(group).or_default();
            e.0 += 1;
            e.1 += s;
        }
        if groups.is_empty() {
            continue;
        }
        let total: f64 = groups.values().map(|g| g.1).sum();
        let mut rows: Vec<Vec<String>> =
            groups.into_iter().map(|(k, (n, s))| vec![k, n.to_string(), format!("{s:.1}")]).collect();
        rows.push(vec!["**all stages**".into(), String::new(), format!("**{total:.1}**")]);
        blocks.push(Block::Para(format!("`{}`:", super::shown(dir))));
        blocks.push(Block::Table { head: ["stage", "count", "seconds"].map(String::from).into(), rows });
    }
    blocks
}

/// What the bits-per-byte columns were measured on: per language the bytes every evaluation read, or a warning
/// naming the languages whose evaluations read different text (then they are not comparable).
pub fn bpb_bytes_note<'a>(all: impl Iterator<Item = &'a Scores>) -> Option<String> {
    let mut seen: BTreeMap<&str, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for s in all {
        for (lang, n) in &s.bpb_bytes {
            seen.entry(lang).or_default().insert(*n);
        }
    }
    if seen.is_empty() {
        return None;
    }
    let same: Vec<String> = seen
        .iter()
        .filter(|(_, n)| n.len() == 1)
        .map(|(l, n)| format!("{l} {} bytes", n.iter().next().copied().unwrap_or(0)))
        .collect();
    let differ: Vec<&str> = seen.iter().filter(|(_, n)| n.len() > 1).map(|(l, _)| *l).collect();
    let mut note = String::new();
    if !same.is_empty() {
        note += &format!(
            "Bits per byte: every model was scored on the same held-out text ({}), every token of it once.",
            same.join(", ")
        );
    }
    if !differ.is_empty() {
        note += &format!(
            " Warning: the evaluations read different amounts of held-out text for {}; their bits per byte are not \
             comparable (re-run the evaluations with one byte budget).",
            differ.join(", ")
        );
    }
    Some(note.trim().to_string())
}

/// Rows of the protocol table: per model and dataset scored under both protocols, the two scores, their
/// difference, chance and the majority-answer baselines (percent; means over seeds).
pub fn protocol_rows(models: &[(String, Vec<&Scores>)]) -> Vec<Vec<String>> {
    let mut rows = vec![];
    for (name, runs) in models {
        let Some(first) = runs.first() else { continue };
        for d in &first.protocol_deltas {
            let of = |f: &dyn Fn(&hashi_eval::ProtocolDelta) -> Option<f64>| {
                Stat::of(
                    runs.iter()
                        .map(|r| r.protocol_deltas.iter().find(|x| x.dataset == d.dataset).and_then(f)),
                )
                .show(1)
            };
            rows.push(vec![
                name.clone(),
                d.dataset.clone(),
                format!("{} ({})", of(&|x| Some(x.jp_stable.2)), d.jp_stable.1),
                format!("{} ({})", of(&|x| Some(x.llmjp.2)), d.llmjp.1),
                of(&|x| Some(x.delta)),
                d.chance.map_or("–".into(), |c| format!("{c:.1}")),
                format!("{} / {}", of(&|x| x.majority.0), of(&|x| x.majority.1)),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(ja: f64, en: f64) -> Scores {
        let results: EvalResults = serde_json::from_value(json!({
            "results": {
                "jcommonsenseqa-1.1-0.1": {"acc": ja, "acc_stderr": 0.01, "docs": 10},
                "jsquad-1.1-0.1": {"f1": ja * 100.0, "f1_stderr": 1.0, "docs": 10},
                "mnli": {"acc": en, "acc_stderr": 0.01, "docs": 10},
            },
            "bits_per_byte": [{"lang": "ja", "bits_per_byte": 1.5, "tokens": 10, "bytes": 40, "documents": 1,
                               "by_script": []}],
            "versions": {}, "n-shot": {},
            "config": {"model": "m", "num_fewshot": 3, "limit": null, "data": "d", "truncate_overlong": false,
                       "harness": "h"},
        }))
        .expect("results");
        Scores::from_eval(&results)
    }

    #[test]
    fn averages_use_the_methods_metric_on_one_scale() {
        let s = eval(0.4, 0.5);
        assert!((s.ja_avg().unwrap_or(0.0) - 40.0).abs() < 1e-9);
        assert!((s.en_avg().unwrap_or(0.0) - 50.0).abs() < 1e-9);
        assert_eq!(s.bpb.get("ja"), Some(&1.5));
        assert_eq!(Stat::of([Some(1.0), None, Some(3.0)].into_iter()).show(1), "2.0 ± 1.4");
    }

    #[test]
    fn swallow_columns_average_apart_from_the_methods_japanese_tasks() {
        let results: EvalResults = serde_json::from_value(json!({
            "results": {
                "jcommonsenseqa-1.1-0.1": {"acc": 0.4, "docs": 10},
                "mgsm-1.0-0.3": {"acc": 0.1, "docs": 10},
                "mgsm-1.0-0.0": {"acc": 0.2, "docs": 10},
                "llmjp-1.3.0:niilc": {"char_f1": 0.3, "docs": 10},
            },
            "bits_per_byte": [], "versions": {},
            "n-shot": {"jcommonsenseqa-1.1-0.1": 3, "mgsm-1.0-0.3": 3, "mgsm-1.0-0.0": 4, "llmjp-1.3.0:niilc": 4},
            "config": {"model": "m", "num_fewshot": 3, "limit": null, "data": "d", "truncate_overlong": false,
                       "harness": "h"},
        }))
        .expect("results");
        let s = Scores::from_eval(&results);
        let want: std::collections::BTreeSet<String> =
            ["llmjp-1.3.0:niilc", "mgsm-1.0-0.0"].map(String::from).into();
        assert_eq!(s.swallow, want, "MGSM 0.0 at Swallow's 4 shots is a Swallow column");
        assert!((s.swallow_avg().unwrap_or(0.0) - 25.0).abs() < 1e-9);
        assert!((s.ja_avg().unwrap_or(0.0) - 25.0).abs() < 1e-9, "JA avg: the jp-stable tasks only");
        let tasks = task_columns([&s].into_iter());
        let legend = legend(&tasks, &s.swallow);
        assert!(legend.contains("(jcommonsenseqa-1.1-0.1, mgsm-1.0-0.3)"), "{legend}");
        assert!(legend.contains("mgsm-1.0-0.0 (acc), llm-jp-eval niilc (char_f1)."), "{legend}");
        // The same prompt at other shots is not Swallow's column.
        let mut other = results.clone();
        other.n_shot.insert("mgsm-1.0-0.0".into(), 3);
        let o = Scores::from_eval(&other);
        assert!(!o.swallow.contains("mgsm-1.0-0.0"));
        assert!((o.swallow_avg().unwrap_or(0.0) - 30.0).abs() < 1e-9);
    }

    #[test]
    fn orderings_tell_holds_from_noise() {
        let (a, b, c) = (eval(0.9, 0.5), eval(0.1, 0.5), eval(0.1, 0.5));
        let (n0, n1, n3) = ("exp0".to_string(), "exp1".to_string(), "exp3".to_string());
        let finals: BTreeMap<&String, Vec<&Scores>> =
            [(&n0, vec![&a]), (&n1, vec![&b]), (&n3, vec![&c])].into();
        let (head, rows) = orderings(&finals, &[]);
        let cell = |claim: &str, col: &str| {
            let i = head.iter().position(|h| h == col).expect("column");
            rows.iter().find(|r| r[0] == claim).map(|r| r[i].clone()).expect("row")
        };
        assert!(cell("exp0 > exp1", "JA avg").ends_with(": holds"), "{}", cell("exp0 > exp1", "JA avg"));
        assert!(cell("exp1 > exp3", "JA avg").ends_with("tie within noise"));
        assert!(cell("exp0 > exp1", "JA bits/byte").contains("no variance estimate"));
        // Two seeds each: bits per byte gets a spread, and a clear gap holds.
        let (mut a2, mut b2) = (eval(0.9, 0.5), eval(0.1, 0.5));
        a2.bpb.insert("ja".into(), 1.49);
        b2.bpb.insert("ja".into(), 2.01);
        let mut b1 = b.clone();
        b1.bpb.insert("ja".into(), 2.0);
        let finals: BTreeMap<&String, Vec<&Scores>> = [(&n0, vec![&a, &a2]), (&n1, vec![&b1, &b2])].into();
        let (_, rows) = orderings(&finals, &[]);
        assert!(rows[0][3].ends_with(": holds"), "{}", rows[0][3]);
        assert_eq!(rows.len(), 1, "claims about absent variants are left out");
    }

    #[test]
    fn tokenizer_tables_keep_the_analysis_order_and_add_the_japanese_total() {
        let a: TokenizerAnalysis = serde_json::from_value(json!({
            "tokenizer": "t",
            "composition": {"by_category": [["latin", 3], ["cjk", 2], ["hiragana", 1]], "japanese": 3, "total": 6},
            "reference": {"tokenizer": "r", "lengths": [],
                          "composition": {"by_category": [["latin", 6], ["cjk", 0], ["hiragana", 0]], "japanese": 0,
                                          "total": 6}},
            "lengths": [],
        }))
        .expect("analysis");
        let blocks = tokenizer_blocks("Tokenizer", &a);
        let Some(Block::Table { rows, .. }) = blocks.get(1) else { panic!("composition table") };
        let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, ["latin", "cjk", "hiragana", "japanese (CJK + kana)"]);
        assert_eq!(rows[3][1..], ["3", "50.0%", "0", "0.0%"]);
    }
}
