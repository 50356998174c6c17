//! `hashi bench in-loop-eval`: what in-loop evaluation costs a training, from the runs themselves — the seconds
//! its evaluations took (`eval_seconds` in `metrics.jsonl`, timed apart from the steps) against the seconds of the
//! training steps of the same runs (`seconds`), so both sides ran on the same machine at the same time.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_core::artifacts::Metrics;
use serde_json::json;

/// Options of `hashi bench in-loop-eval`.
#[derive(Args)]
pub struct InLoopBenchArgs {
    /// Training run folders (each with `metrics.jsonl` written with an experiment's `eval`); globs expanded by the
    /// shell, e.g. runs/mini/variants/*/train.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: InLoopBenchArgs, _progress: &dyn Reporter) -> Result<()> {
    let mut rows = vec![];
    let (mut all_train, mut all_eval) = (0f64, 0f64);
    for dir in &a.runs {
        let path = dir.join("metrics.jsonl");
        let m = Metrics::read_all(&path).map_err(anyhow::Error::msg)?;
        let evals: Vec<&Metrics> = m.iter().filter(|m| m.eval_seconds.is_some()).collect();
        if evals.is_empty() {
            bail!("{}: no in-loop evaluation (the experiment has no `eval`)", path.display());
        }
        let train: f64 = m.iter().map(|m| m.seconds).sum();
        let eval: f64 = evals.iter().filter_map(|m| m.eval_seconds).sum();
        let step = train / m.len().max(1) as f64;
        all_train += train;
        all_eval += eval;
        rows.push(json!({
            "run": dir, "steps": m.len(), "evaluations": evals.len(),
            "languages": evals[0].bpb.keys().collect::<Vec<_>>(),
            "train_seconds": train, "eval_seconds": eval, "overhead": eval / train,
            "seconds_per_step": step, "steps_per_evaluation": eval / evals.len() as f64 / step,
        }));
    }
    let result = json!({
        "benchmark": "in-loop evaluation overhead",
        "runs": rows,
        "total": { "train_seconds": all_train, "eval_seconds": all_eval, "overhead": all_eval / all_train },
    });
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(out) = &a.out {
        std::fs::write(out, format!("{text}\n"))?;
    }
    crate::print(&text)
}
