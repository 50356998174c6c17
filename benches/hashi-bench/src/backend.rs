//! `hashi bench backend`: full training steps (forward, backward, AdamW) through a backend plugin, side by side
//! with PyTorch + transformers on the same device (`gpu_peer.py`, eager and `torch.compile`), same config,
//! batch and sequence length. Reports tokens/s, model FLOP utilisation and memory, as JSON.
//!
//! FLOPs per token (for MFU, the same formula for every side): `6·N + 12·L·d·s`, with `N` the parameters that
//! do matrix work (all but the input embedding table), `L` layers, `d` the attention width and `s` the
//! sequence length (attention scores and values, forward and backward, without the causal halving).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_model::Config;
use hashi_train::Backend;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const GPU_PEER: &str = include_str!("../peers/gpu_peer.py");

#[derive(Args)]
pub struct BackendBenchArgs {
    /// The backend plugin's name (e.g. torch).
    #[arg(long)]
    backend: String,
    /// A plugin library to load (repeatable), besides the discovered ones.
    #[arg(long = "plugin", value_name = "LIB")]
    plugins: Vec<PathBuf>,
    /// Options for the backend, as a JSON object (e.g. '{"device": "cuda"}').
    #[arg(long, default_value = "{}")]
    options: String,
    #[command(flatten)]
    shape: super::ShapeArgs,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Peak dense bf16 TFLOP/s of the device, for MFU (H100 SXM: 989).
    #[arg(long, default_value_t = 989.0)]
    peak_tflops: f64,
    /// Python with torch + transformers on the same device: runs the peer in each of `--peer-modes`.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Peer modes, comma-separated: eager, compile.
    #[arg(long, default_value = "eager,compile")]
    peer_modes: String,
    /// Also compare the backend's log-probabilities of the first two sequences with the built-in CPU backend's.
    #[arg(long)]
    check_logprobs: bool,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// FLOPs of one token of a training step (see the module docs).
fn flops_per_token(c: &Config, seq: usize) -> f64 {
    let (d, l) = (c.hidden_size as f64, c.num_layers as f64);
    let attn_w = (c.num_heads * c.head_dim) as f64;
    let kv_w = (c.num_kv_heads * c.head_dim) as f64;
    let per_layer = d * (attn_w + 2.0 * kv_w) + attn_w * d + 3.0 * d * c.intermediate_size as f64;
    let n = l * per_layer + c.vocab_size as f64 * d;
    6.0 * n + 12.0 * l * attn_w * seq as f64
}

/// Largest GPU memory (MiB) that nvidia-smi reports for `pid` while `f` runs (None without nvidia-smi).
fn with_gpu_memory<T>(pid: u32, f: impl FnOnce() -> T) -> (T, Option<f64>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak: Option<f64> = None;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(out) = Command::new("nvidia-smi")
                .args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
                .output()
            else {
                return None;
            };
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut it = line.split(',').map(str::trim);
                if it.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid)
                    && let Some(m) = it.next().and_then(|m| m.parse::<f64>().ok())
                {
                    peak = Some(peak.map_or(m, |p: f64| p.max(m)));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        peak
    });
    let r = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (r, sampler.join().ok().flatten())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

pub fn run(a: BackendBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let (config, _) = a.shape.resolve()?;
    if a.steps == 0 {
        bail!("need --steps >= 1");
    }
    let work = tempfile::tempdir()?;
    let hf = config.to_hf("float32");
    let model_dir = work.path().join("model");
    let params = hashi_model::ParamStore::random(&config, 0)?;
    hashi_model::save_pretrained(&config, &params, &model_dir, Default::default(), progress)?;
    drop(params);
    let registry = hashi_plugin_host::Registry::discover(&a.plugins, &hashi_plugin_host::default_dirs())?;
    let plugin = registry.backend(&a.backend)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let batch: Vec<Vec<u32>> = (0..a.shape.batch)
        .map(|_| (0..=a.shape.seq).map(|_| rng.random_range(0..config.vocab_size as u32)).collect())
        .collect();
    let fpt = flops_per_token(&config, a.shape.seq);
    let tokens = (a.shape.batch * a.shape.seq) as f64;
    // The same steps through the plugin in this process, then in its worker process (how `hashi train` runs it):
    // the difference is the cost of isolation.
    let mut sides = serde_json::Map::new();
    let mut medians = vec![];
    for (side, isolated) in [("in_process", false), ("worker_process", true)] {
        let mut backend: Box<dyn Backend> = if isolated {
            plugin.isolated_backend(&model_dir, &a.options)?
        } else {
            Box::new(plugin.backend(&model_dir, &a.options)?)
        };
        progress.start(&format!("steps ({side})"), Some((a.warmup + a.steps) as u64), "steps");
        let (times, mem) = with_gpu_memory(std::process::id(), || -> Result<Vec<f64>> {
            let mut times = vec![];
            for i in 0..a.warmup + a.steps {
                let t0 = Instant::now();
                backend.accumulate(&batch)?;
                backend.apply(1e-4)?;
                if i >= a.warmup {
                    times.push(t0.elapsed().as_secs_f64());
                }
                progress.advance(1);
            }
            Ok(times)
        });
        progress.finish();
        let times = times?;
        let tps = tokens / median(&times);
        medians.push(median(&times));
        sides.insert(
            side.into(),
            json!({
                "impl": backend.name(),
                "tokens_per_s": tps,
                "mfu": tps * fpt / (a.peak_tflops * 1e12),
                "step_s": times,
                "gpu_memory_mib": mem,
            }),
        );
    }
    let mut result = json!({
        "bench": "backend training step (forward + backward + AdamW)",
        "config": hf,
        "batch": a.shape.batch,
        "seq": a.shape.seq,
        "flops_per_token": fpt,
        "peak_tflops": a.peak_tflops,
        "hashi": sides["in_process"].clone(),
        "hashi_worker_process": sides["worker_process"].clone(),
        "worker_over_in_process_step": medians[1] / medians[0],
    });
    if a.check_logprobs {
        let rows: Vec<Vec<u32>> = batch.iter().take(2).cloned().collect();
        let fresh = plugin.backend(&model_dir, &a.options)?.logprobs(&rows)?;
        let mut cpu = hashi_train::CpuBackend::new(hashi_model::Llama::load(&model_dir)?, Default::default());
        let want = cpu.logprobs(&rows)?;
        let diff = fresh
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let mean = fresh
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .map(|(x, y)| f64::from((x - y).abs()))
            .sum::<f64>()
            / (2 * a.shape.seq) as f64;
        result["logprobs_vs_cpu"] =
            json!({"max_abs_diff": diff, "mean_abs_diff": mean, "tokens": 2 * a.shape.seq});
    }
    if let Some(py) = &a.peer_python {
        let cfg_path = model_dir.join("config.json");
        let script = work.path().join("gpu_peer.py");
        std::fs::write(&script, GPU_PEER)?;
        let mut peers = serde_json::Map::new();
        for mode in a.peer_modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            tracing::info!(mode, "peer");
            let child = Command::new(py)
                .arg(&script)
                .args(["--config", &cfg_path.display().to_string(), "--mode", mode])
                .args(["--batch", &a.shape.batch.to_string(), "--seq", &a.shape.seq.to_string()])
                .args(["--warmup", &a.warmup.to_string(), "--steps", &a.steps.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("{} does not start", py.display()))?;
            let pid = child.id();
            let (out, mem) = with_gpu_memory(pid, || child.wait_with_output());
            let out = out?;
            if !out.status.success() {
                peers.insert(mode.into(), json!({"error": String::from_utf8_lossy(&out.stderr).lines().rev().take(5).collect::<Vec<_>>()}));
                continue;
            }
            let mut v: Value = serde_json::from_slice(&out.stdout).context("peer output")?;
            let ptps = v["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
            v["mfu"] = json!(ptps * fpt / (a.peak_tflops * 1e12));
            v["gpu_memory_mib"] = json!(mem);
            v["hashi_speedup"] = json!(tokens / medians[0] / ptps);
            peers.insert(mode.into(), v);
        }
        result["peer"] = Value::Object(peers);
    }
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(p) = &a.out {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, &text)?;
    }
    crate::print(&text)?;
    Ok(())
}
