//! `hashi bench data`: `data prepare` throughput at 1 and 2 threads next to Python `tokenizers` `encode_batch`
//! over the same files (the peer reads and parses the JSON too, but writes nothing), and the mixer's cost per
//! batch of a curriculum.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use serde_json::json;

const PEER_SCRIPT: &str = include_str!("../peers/data_peer.py");

#[derive(Args)]
pub struct DataBenchArgs {
    /// Corpus declarations (Lua), as for `hashi data prepare`.
    #[arg(long)]
    corpora: PathBuf,
    /// The tokenizer.
    #[arg(long)]
    tokenizer: PathBuf,
    /// A curriculum to time the mixer on.
    #[arg(long)]
    curriculum: PathBuf,
    /// Batches to draw from the mixer.
    #[arg(long, default_value_t = 200)]
    mixer_batches: usize,
    /// Python with `tokenizers`; without it only hashi is measured.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: DataBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let shards = dir.path().join("shards");
    let exe = std::env::current_exe()?;
    let mut ours = serde_json::Map::new();
    let mut manifest = None;
    for threads in [1usize, 2] {
        progress.start(&format!("prepare x{threads}"), None, "");
        let t0 = Instant::now();
        let out = Command::new(&exe)
            .args(["-q", "data", "prepare"])
            .arg(&a.corpora)
            .arg("--tokenizer")
            .arg(&a.tokenizer)
            .arg("--out")
            .arg(&shards)
            .args(["--force", "--threads", &threads.to_string()])
            .output()?;
        let dt = t0.elapsed().as_secs_f64();
        progress.finish();
        if !out.status.success() {
            bail!("data prepare failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let m = hashi_data::Manifest::load(&shards)?;
        let bytes: u64 = m.corpora.iter().map(|c| c.text_bytes).sum();
        manifest = Some(m);
        ours.insert(
            format!("threads_{threads}"),
            json!({"seconds": dt, "mb_per_s": bytes as f64 / dt / 1e6, "text_bytes": bytes}),
        );
    }
    let mut peer = serde_json::Map::new();
    if let Some(py) = &a.peer_python {
        let script = dir.path().join("data_peer.py");
        std::fs::write(&script, PEER_SCRIPT)?;
        let manifest = manifest.context("no manifest")?;
        let files: Vec<String> =
            manifest.corpora.iter().flat_map(|c| &c.inputs).map(|i| i.path.display().to_string()).collect();
        let tok = manifest.tokenizer.display().to_string();
        for threads in [1usize, 2] {
            progress.start(&format!("peer x{threads}"), None, "");
            let out = Command::new(py)
                .arg(&script)
                .arg(&tok)
                .args(&files)
                .env("RAYON_NUM_THREADS", threads.to_string())
                .output()?;
            progress.finish();
            if !out.status.success() {
                bail!("peer failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            peer.insert(format!("threads_{threads}"), serde_json::from_slice(&out.stdout)?);
        }
    }
    let plan = hashi_experiment::plan::load_plan(&a.curriculum, &shards, &Default::default())?;
    let mut mixer = hashi_data::Mixer::new(plan.clone(), &shards)?;
    let n = a.mixer_batches.min(plan.total_batches() as usize).max(1);
    progress.start("mixer", Some(n as u64), "batches");
    let t0 = Instant::now();
    for _ in 0..n {
        mixer.next_batch()?.context("plan ended early")?;
        progress.advance(1);
    }
    let per_batch = t0.elapsed().as_secs_f64() / n as f64;
    progress.finish();
    let result = json!({
        "bench": "data",
        "prepare": {"hashi": ours, "tokenizers_python": peer},
        "mixer": {
            "curriculum": a.curriculum,
            "batch_size": plan.decl.batch_size,
            "seq_len": plan.decl.seq_len,
            "batches": n,
            "seconds_per_batch": per_batch,
            "tokens_per_batch": plan.tokens_per_batch(),
        },
    });
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(out) = &a.out {
        std::fs::write(out, format!("{text}\n")).with_context(|| format!("writing {}", out.display()))?;
    }
    crate::print(&text)?;
    Ok(())
}
