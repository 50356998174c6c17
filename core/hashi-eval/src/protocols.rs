//! The same datasets under two protocols: jp-stable (the method's Stability-AI harness) and llm-jp-eval (Swallow's).
//! [`protocol_deltas`] pairs, in one results file, each dataset scored under both and says what differs between
//! the two scorings, so that a score difference caused only by protocol (prompt format, shots, label words,
//! metric) can be read off next to the task's chance level and majority-answer baseline.

use serde::{Deserialize, Serialize};

use crate::results::{EvalResults, TaskResult};

/// One dataset under both protocols, every score in percent (0–100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolDelta {
    /// The dataset (`JCommonsenseQA`, `JSQuAD`).
    pub dataset: String,
    /// The jp-stable task, its metric and score.
    pub jp_stable: (String, String, f64),
    /// The llm-jp-eval task, its official metric and score.
    pub llmjp: (String, String, f64),
    /// llm-jp-eval minus jp-stable, in points.
    pub delta: f64,
    /// Uniform-random score (multiple choice), in percent.
    pub chance: Option<f64>,
    /// Majority-answer baseline under each protocol's metric (jp-stable, llm-jp-eval), in percent.
    pub majority: (Option<f64>, Option<f64>),
    /// Whether both scored the same documents (no `--limit`: jp-stable shuffles before cutting, llm-jp-eval cuts
    /// the file's first N).
    pub same_documents: bool,
    /// What differs between the two scorings.
    pub differs: String,
}

/// `(dataset, jp-stable family, llm-jp-eval task, jp-stable metric and scale to percent, what differs)`.
const PAIRS: [(&str, &str, &str, &str, f64, &str); 2] = [
    (
        "JCommonsenseQA",
        "jcommonsenseqa",
        "llmjp-1.3.0:jcommonsenseqa",
        "acc",
        100.0,
        "prompt (jp-stable's vs the Alpaca template with an instruction); shots (jp-stable's --shots vs 4, \
         fixed); label words (the choice's text scored by log-likelihood vs its number 0–4 generated); metric \
         (accuracy of the arg-max vs exact match of one greedy token)",
    ),
    (
        "JSQuAD",
        "jsquad",
        "llmjp-1.3.0:jsquad",
        "f1",
        1.0,
        "prompt (jp-stable's vs the Alpaca template with an instruction); shots (--shots vs 4, fixed); \
         generation (until a newline, at most the longest gold's tokens vs 25 tokens, cut at the first blank \
         line); metric (F1 over MeCab words of neologdn-normalised text vs character token-sort ratio of NFKC \
         text)",
    ),
];

fn percent(r: &TaskResult, metric: &str, scale: f64) -> Option<f64> {
    r.metric(metric).map(|x| x * scale)
}

/// Every dataset in `results` scored under both protocols.
pub fn protocol_deltas(results: &EvalResults) -> Vec<ProtocolDelta> {
    let mut out = vec![];
    for (dataset, family, llmjp, metric, scale, differs) in PAIRS {
        let Some(l) = results.results.get(llmjp) else { continue };
        let main = l.main_metric.clone().unwrap_or_else(|| "exact_match".into());
        let Some(ls) = percent(l, &main, 100.0) else { continue };
        let jp = results.results.iter().find(|(n, _)| n.split('-').next() == Some(family));
        let Some((jname, j)) = jp else { continue };
        let Some(js) = percent(j, metric, scale) else { continue };
        out.push(ProtocolDelta {
            dataset: dataset.into(),
            jp_stable: (jname.clone(), metric.into(), js),
            llmjp: (llmjp.into(), main, ls),
            delta: ls - js,
            chance: l.chance.or(j.chance).map(|c| 100.0 * c),
            majority: (j.majority_baseline.map(|m| 100.0 * m), l.majority_baseline.map(|m| 100.0 * m)),
            same_documents: results.config.limit.is_none(),
            differs: differs.into(),
        });
    }
    out
}

/// The deltas as a Markdown table (empty when no dataset was scored under both protocols).
pub fn deltas_table(deltas: &[ProtocolDelta]) -> String {
    if deltas.is_empty() {
        return String::new();
    }
    let show = |x: Option<f64>| x.map_or("–".into(), |v| format!("{v:.1}"));
    let mut t = String::from(
        "| dataset | jp-stable | llm-jp-eval | Δ (points) | chance | majority (jp-stable / llm-jp-eval) | same \
         documents | what differs |\n|---|---|---|---:|---:|---:|---|---|\n",
    );
    for d in deltas {
        t.push_str(&format!(
            "| {} | {} {} {:.1} | {} {} {:.1} | {:+.1} | {} | {} / {} | {} | {} |\n",
            d.dataset,
            d.jp_stable.0,
            d.jp_stable.1,
            d.jp_stable.2,
            d.llmjp.0,
            d.llmjp.1,
            d.llmjp.2,
            d.delta,
            show(d.chance),
            show(d.majority.0),
            show(d.majority.1),
            if d.same_documents { "yes" } else { "no (--limit)" },
            d.differs
        ));
    }
    t
}
