//! `hashi bench eval`: wall time and requests/s of `hashi eval` (log-likelihood tasks) next to EleutherAI
//! lm-evaluation-harness's HF backend scoring the very same requests on the same model and machine; the
//! log-likelihoods of both are compared request by request, and the per-document predictions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use serde_json::{Value, json};

const PEER_SCRIPT: &str = include_str!("../peers/eval_peer.py");

#[derive(Args)]
pub struct EvalBenchArgs {
    /// The model directory (with tokenizer.json), as for `hashi eval`.
    #[arg(long)]
    model: PathBuf,
    /// Log-likelihood tasks (e.g. jcommonsenseqa-1.1-0.3,jnli-1.3-0.3,mnli).
    #[arg(long)]
    tasks: String,
    /// Documents per task.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Few-shot examples.
    #[arg(long, default_value_t = 3)]
    shots: usize,
    /// Task data folder.
    #[arg(long, default_value = "../shared/data/eval")]
    data: PathBuf,
    /// Python with lm-eval; without it only hashi is measured.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// lm-eval's batch size.
    #[arg(long, default_value_t = 1)]
    peer_batch_size: usize,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn read_log(path: &std::path::Path) -> Result<Vec<Value>> {
    std::fs::read_to_string(path)?.lines().map(|l| serde_json::from_str(l).context("request log")).collect()
}

/// Per (task, doc): the index of the highest log-likelihood among its requests, in log order.
fn predictions(reqs: &[Value], lls: &[f64]) -> BTreeMap<(String, u64), usize> {
    let mut best: BTreeMap<(String, u64), (usize, usize, f64)> = BTreeMap::new();
    for (r, &ll) in reqs.iter().zip(lls) {
        let key = (r["task"].as_str().unwrap_or("").to_string(), r["doc"].as_u64().unwrap_or(0));
        let e = best.entry(key).or_insert((0, 0, f64::NEG_INFINITY));
        if ll > e.2 {
            *e = (e.1, e.1, ll);
        }
        e.1 += 1;
    }
    best.into_iter().map(|(k, (i, _, _))| (k, i)).collect()
}

pub fn run(a: EvalBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let work = tempfile::tempdir()?;
    let log = work.path().join("requests.jsonl");
    let threads = candle_core::utils::get_num_threads();
    progress.start("hashi eval", None, "");
    let t0 = Instant::now();
    let status = Command::new(std::env::current_exe()?)
        .args(["-q", "eval", "--model", &a.model.display().to_string(), "--tasks", &a.tasks])
        .args(["--limit", &a.limit.to_string(), "--shots", &a.shots.to_string()])
        .args(["--data", &a.data.display().to_string(), "--log-requests", &log.display().to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    let hashi_s = t0.elapsed().as_secs_f64();
    progress.finish();
    if !status.success() {
        bail!("hashi eval failed ({status})");
    }
    let reqs = read_log(&log)?;
    let ours: Vec<f64> = reqs.iter().map(|r| r["loglikelihood"].as_f64().unwrap_or(f64::NAN)).collect();
    let n = reqs.len() as f64;
    let mut result = json!({
        "bench": "log-likelihood evaluation, same requests",
        "model": a.model, "tasks": a.tasks, "limit": a.limit, "shots": a.shots, "requests": reqs.len(),
        "threads": threads,
        "hashi": {"impl": "hashi eval (shared-prefix KV cache, f32 CPU)", "total_s": hashi_s,
                  "requests_per_s": n / hashi_s},
    });
    if let Some(py) = &a.peer_python {
        let script = work.path().join("eval_peer.py");
        std::fs::write(&script, PEER_SCRIPT)?;
        progress.start("lm-eval", None, "");
        let args = [a.model.display().to_string(), log.display().to_string()];
        let args = [&args[..], &[a.peer_batch_size.to_string(), threads.to_string()]].concat();
        let run = super::python_peer(py, &script, &args);
        progress.finish();
        let mut peer: Value = run?;
        let theirs: Vec<f64> = peer["loglikelihoods"]
            .as_array()
            .context("peer log-likelihoods")?
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        let max_diff = ours.iter().zip(&theirs).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        let (p1, p2) = (predictions(&reqs, &ours), predictions(&reqs, &theirs));
        let same = p1.iter().filter(|(k, v)| p2.get(*k) == Some(*v)).count();
        let total_s = peer["total_s"].as_f64().unwrap_or(f64::NAN);
        peer.as_object_mut().map(|o| o.remove("loglikelihoods"));
        peer["requests_per_s"] = json!(n / total_s);
        result["peer"] = peer;
        result["hashi_speedup_total"] = json!(total_s / hashi_s);
        result["max_abs_loglikelihood_diff"] = json!(max_diff);
        result["same_prediction_docs"] = json!(format!("{same}/{}", p1.len()));
    }
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(p) = &a.out {
        std::fs::write(p, &text)?;
    }
    crate::print(&text)?;
    Ok(())
}
