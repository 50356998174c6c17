//! `hashi bench generate`: documents/s of `hashi eval` on llm-jp-eval generation tasks (Swallow's protocol) next
//! to the upstream code path, a transformers text-generation pipeline generating greedily for the very same
//! prompts on the same model and machine; the generations and post-processed answers are compared document by
//! document.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use serde_json::{Value, json};

const PEER_SCRIPT: &str = include_str!("../peers/generate_peer.py");

#[derive(Args)]
pub struct GenerateBenchArgs {
    /// The model directory (with tokenizer.json; transformers must load it for the peer).
    #[arg(long)]
    model: PathBuf,
    /// llm-jp-eval tasks (default: all five of Swallow's protocol).
    #[arg(
        long,
        default_value = "llmjp-1.3.0:jemhopqa,llmjp-1.3.0:niilc,llmjp-1.3.0:jsquad,llmjp-1.3.0:jcommonsenseqa,llmjp-1.3.0:jmmlu"
    )]
    tasks: String,
    /// `hashi eval --batch-size`: documents decoded together.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Documents per task.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Task data folder.
    #[arg(long, default_value = "../shared/data/eval")]
    data: PathBuf,
    /// Python with transformers; without it only hashi is measured.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `hashi eval` on one task; returns its request log and the seconds of the whole process.
fn hashi_task(a: &GenerateBenchArgs, task: &str, log: &std::path::Path) -> Result<(Vec<Value>, f64)> {
    let t0 = Instant::now();
    let status = Command::new(std::env::current_exe()?)
        .args(["-q", "eval", "--model", &a.model.display().to_string(), "--tasks", task])
        .args(["--limit", &a.limit.to_string(), "--data", &a.data.display().to_string()])
        .args(["--batch-size", &a.batch_size.to_string(), "--log-requests", &log.display().to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    let seconds = t0.elapsed().as_secs_f64();
    if !status.success() {
        bail!("hashi eval --tasks {task} failed ({status})");
    }
    let reqs = std::fs::read_to_string(log)?
        .lines()
        .map(|l| serde_json::from_str(l).context("request log"))
        .collect::<Result<_>>()?;
    Ok((reqs, seconds))
}

pub fn run(a: GenerateBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let work = tempfile::tempdir()?;
    let threads = candle_core::utils::get_num_threads();
    let mut reqs: Vec<Value> = vec![];
    let mut per_task: Vec<(String, usize, f64)> = vec![];
    for task in a.tasks.split(',') {
        progress.start(&format!("hashi eval {task}"), None, "");
        let log = work.path().join(format!("{}.jsonl", per_task.len()));
        let run = hashi_task(&a, task, &log);
        progress.finish();
        let (r, s) = run?;
        per_task.push((task.to_string(), r.len(), s));
        reqs.extend(r);
    }
    let log = work.path().join("requests.jsonl");
    let lines: Vec<String> = reqs.iter().map(Value::to_string).collect();
    std::fs::write(&log, lines.join("\n") + "\n")?;
    let hashi_s: f64 = per_task.iter().map(|t| t.2).sum();
    let n = reqs.len() as f64;
    let mut result = json!({
        "bench": "llm-jp-eval greedy generation, same prompts",
        "model": a.model, "tasks": a.tasks, "limit": a.limit, "documents": reqs.len(), "threads": threads,
        "hashi": {"impl": format!("hashi eval (built-in model, f32 CPU, the task's shared prompt head computed once, \
                                   {} documents prefilled and decoded together; one process per task)", a.batch_size),
                  "total_s": hashi_s, "documents_per_s": n / hashi_s},
    });
    let mut tasks = serde_json::Map::new();
    for (t, docs, s) in &per_task {
        tasks.insert(t.clone(), json!({"documents": docs, "hashi_s": s}));
    }
    if let Some(py) = &a.peer_python {
        let script = work.path().join("generate_peer.py");
        std::fs::write(&script, PEER_SCRIPT)?;
        progress.start("transformers pipeline", None, "");
        let args =
            [a.model.display().to_string(), log.display().to_string(), threads.to_string(), "true".into()];
        let run = super::python_peer(py, &script, &args);
        progress.finish();
        let mut peer: Value = run?;
        let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        let theirs = |k: &str| -> Vec<String> {
            peer[k]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().into()).collect())
                .unwrap_or_default()
        };
        let (gens, preds) = (theirs("generations"), theirs("preds"));
        let same_gen = reqs.iter().zip(&gens).filter(|(r, g)| field(r, "generation") == **g).count();
        let same_pred = reqs.iter().zip(&preds).filter(|(r, p)| field(r, "pred") == **p).count();
        let seconds: Vec<f64> = peer["seconds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        for (r, s) in reqs.iter().zip(&seconds) {
            if let Some(t) = tasks.get_mut(r["task"].as_str().unwrap_or_default()) {
                t["peer_generating_s"] = json!(t["peer_generating_s"].as_f64().unwrap_or(0.0) + s);
            }
        }
        for t in tasks.values_mut() {
            let (h, p) = (
                t["hashi_s"].as_f64().unwrap_or(f64::NAN),
                t["peer_generating_s"].as_f64().unwrap_or(f64::NAN),
            );
            t["hashi_speedup_vs_peer_generating"] = json!(p / h);
        }
        let total_s = peer["total_s"].as_f64().unwrap_or(f64::NAN);
        if let Some(o) = peer.as_object_mut() {
            o.remove("generations");
            o.remove("preds");
            o.remove("seconds");
        }
        peer["documents_per_s"] = json!(n / total_s);
        result["peer"] = peer;
        result["hashi_speedup_total"] = json!(total_s / hashi_s);
        result["same_generation_docs"] = json!(format!("{same_gen}/{}", reqs.len()));
        result["same_answer_docs"] = json!(format!("{same_pred}/{}", reqs.len()));
    }
    result["per_task"] = Value::Object(tasks);
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(p) = &a.out {
        std::fs::write(p, &text)?;
    }
    crate::print(&text)?;
    Ok(())
}
