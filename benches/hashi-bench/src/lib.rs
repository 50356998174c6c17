//! `hashi bench ...` (this package, with its Python peers in `peers/`): speed and memory, measured side by side
//! with the Python peer in the same run.
//!
//! `hashi bench model` times forward + backward (loss over all positions, gradients of every parameter; no
//! optimizer step) of a randomly initialised Llama on random token ids, then runs the same measurement in
//! PyTorch + transformers (`torch_llama_step.py`, embedded in the binary) with the same config, batch, sequence
//! length and thread count, and writes both with their ratio as JSON. The two sides alternate for `--rounds` rounds; tokens/s are from
//! the median timed step over all rounds. Threads: `RAYON_NUM_THREADS` (candle's
//! own knob) or all cores; the peer gets `torch.set_num_threads` with the same number.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::{Args, Subcommand};
use hashi_core::Reporter;
use hashi_model::{Config, Llama, LlamaConfig, causal_lm_loss};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

mod backend;
mod data;
mod eval;
mod generate;
mod import;
mod in_loop;
mod tokenizer;
mod transfer;

/// Writes `text` and a newline to stdout; a failed write (a closed pipe, a full disk) is an error.
fn print(text: &str) -> Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{text}").context("writing standard output")
}

const PEER_SCRIPT: &str = include_str!("../peers/torch_llama_step.py");

/// The benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Forward+backward tokens/s of a Llama on CPU, hashi vs PyTorch/transformers.
    Model(ModelBenchArgs),
    /// Tokenizer training time/memory and encode throughput, hashi vs SentencePiece and HF tokenizers.
    Tokenizer(tokenizer::TokenizerBenchArgs),
    /// `data prepare` throughput vs Python tokenizers, and the mixer's cost per batch.
    Data(data::DataBenchArgs),
    /// `hashi eval` (log-likelihood tasks) vs lm-evaluation-harness's HF backend on the same requests.
    Eval(eval::EvalBenchArgs),
    /// `hashi eval` on llm-jp-eval generation tasks vs transformers' text-generation pipeline, same prompts.
    Generate(generate::GenerateBenchArgs),
    /// Training steps through a backend plugin (e.g. the GPU one) vs PyTorch eager and torch.compile.
    Backend(backend::BackendBenchArgs),
    /// Vocabulary transfer of a generated Llama-2-shaped checkpoint vs a plain copy: time and peak RSS.
    Transfer(transfer::TransferBenchArgs),
    /// `hashi model import` of a GGUF file vs transformers' GGUF loading + writing it out: time and peak RSS.
    Import(import::ImportBenchArgs),
    /// In-loop evaluation's share of training time, from training runs' own metrics.
    InLoopEval(in_loop::InLoopBenchArgs),
}

/// The model and batch of a step benchmark.
#[derive(Args)]
pub struct ShapeArgs {
    /// Built-in size: bench-a, bench-b (or any preset of `hashi model init`).
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    preset: Option<String>,
    /// An HF config.json instead of a preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Sequences per step.
    #[arg(long)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long)]
    seq: usize,
}

impl ShapeArgs {
    /// The runtime config and its name (preset or file), checking the batch shape.
    fn resolve(&self) -> Result<(Config, String)> {
        if self.batch == 0 || self.seq < 2 {
            bail!("need --batch >= 1 and --seq >= 2");
        }
        match (&self.preset, &self.config) {
            (Some(p), _) => {
                Ok((Config::preset(p).with_context(|| format!("unknown preset {p:?}"))?, p.clone()))
            }
            (None, Some(path)) => {
                Ok((LlamaConfig::from_file(path)?.to_config(path)?, path.display().to_string()))
            }
            (None, None) => bail!("give --preset or --config"),
        }
    }
}

/// Options of `hashi bench model`.
#[derive(Args)]
pub struct ModelBenchArgs {
    #[command(flatten)]
    shape: ShapeArgs,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Include the optimizer step (hashi's AdamW vs torch.optim.AdamW): a full training step.
    #[arg(long)]
    optimizer: bool,
    /// Rounds of (hashi, peer) measurements, alternating.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Python with torch + transformers to run the peer; without it only hashi is measured.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs one benchmark and prints its JSON.
pub fn run(cmd: BenchCommand, progress: &dyn Reporter) -> Result<()> {
    match cmd {
        BenchCommand::Model(a) => model(a, progress),
        BenchCommand::Tokenizer(a) => tokenizer::run(a, progress),
        BenchCommand::Transfer(a) => transfer::run(a, progress),
        BenchCommand::Data(a) => data::run(a, progress),
        BenchCommand::Backend(a) => backend::run(a, progress),
        BenchCommand::Eval(a) => eval::run(a, progress),
        BenchCommand::Generate(a) => generate::run(a, progress),
        BenchCommand::Import(a) => import::run(a, progress),
        BenchCommand::InLoopEval(a) => in_loop::run(a, progress),
    }
}

fn model(a: ModelBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let (config, name) = a.shape.resolve()?;
    if a.steps == 0 || a.rounds == 0 {
        bail!("need --steps >= 1 and --rounds >= 1");
    }
    let threads = candle_core::utils::get_num_threads();
    let model = Llama::random(config.clone(), 0)?;
    let mut opt =
        a.optimizer.then(|| hashi_train::AdamW::new(hashi_train::AdamWConfig::default(), model.params()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let ids: Vec<u32> =
        (0..a.shape.batch * a.shape.seq).map(|_| rng.random_range(0..config.vocab_size as u32)).collect();
    let ids = Tensor::from_vec(ids, (a.shape.batch, a.shape.seq), &Device::Cpu)?;
    let labels = ids.to_dtype(DType::I64)?;
    let tokens = (a.shape.batch * a.shape.seq) as f64;
    // Rounds alternate the two sides, so that a slow phase of a shared machine hits both.
    let (mut ours, mut theirs, mut peer_info) = (Vec::new(), Vec::new(), None);
    for round in 0..a.rounds {
        progress.start(
            &format!("hashi {}/{}", round + 1, a.rounds),
            Some((a.warmup + a.steps) as u64),
            "steps",
        );
        for step in 0..a.warmup + a.steps {
            let t0 = Instant::now();
            let loss = causal_lm_loss(&model.forward(&ids)?, &labels)?;
            let grads = loss.backward()?;
            if let Some(opt) = opt.as_mut() {
                opt.step(model.params(), &grads, 1e-4, 1.0)?;
            }
            if step >= a.warmup {
                ours.push(t0.elapsed().as_secs_f64());
            }
            progress.advance(1);
        }
        progress.finish();
        if let Some(py) = &a.peer_python {
            let peer = run_peer(py, &config, &a, threads, progress)?;
            let steps: Vec<f64> = serde_json::from_value(peer["step_s"].clone()).context("peer step_s")?;
            theirs.extend(steps);
            peer_info = Some(peer);
        }
    }
    let ours = json!({
        "impl": "hashi (candle CPU, f32)",
        "tokens_per_s": tokens / median(&ours),
        "step_s": ours,
        "peak_rss_mib": hashi_core::peak_rss_mib(),
    });
    let peer = peer_info.map(|p| {
        json!({
            "impl": p["impl"],
            "tokens_per_s": tokens / median(&theirs),
            "step_s": theirs,
            "peak_rss_mib": p["peak_rss_mib"],
            "matmul": p["matmul"],
        })
    });
    let ratio =
        peer.as_ref().and_then(|p| Some(ours["tokens_per_s"].as_f64()? / p["tokens_per_s"].as_f64()?));
    let result = json!({
        "bench": if a.optimizer { "model-train-step" } else { "model-forward-backward" },
        "config": name,
        "params": model.params().num_params(),
        "batch": a.shape.batch,
        "seq": a.shape.seq,
        "warmup": a.warmup,
        "steps": a.steps,
        "rounds": a.rounds,
        "threads": threads,
        "cpu": hashi_core::cpu_model(),
        "matmul": hashi_model::matmul_backend(),
        "hashi": ours,
        "peer": peer,
        "hashi_over_peer": ratio,
    });
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(out) = &a.out {
        std::fs::write(out, format!("{text}\n")).with_context(|| format!("writing {}", out.display()))?;
    }
    crate::print(&text)?;
    Ok(())
}

fn run_peer(
    py: &Path,
    config: &Config,
    a: &ModelBenchArgs,
    threads: usize,
    progress: &dyn Reporter,
) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("torch_llama_step.py");
    std::fs::write(&script, PEER_SCRIPT)?;
    let cfg_path = dir.path().join("config.json");
    std::fs::write(&cfg_path, serde_json::to_string(&config.to_hf("float32"))?)?;
    progress.start("torch fwd+bwd", None, "");
    let mut args: Vec<String> = vec!["--config".into(), cfg_path.to_string_lossy().into_owned()];
    for (k, v) in [("--batch", a.shape.batch), ("--seq", a.shape.seq), ("--warmup", a.warmup)] {
        args.extend([k.to_string(), v.to_string()]);
    }
    for (k, v) in [("--steps", a.steps), ("--threads", threads)] {
        args.extend([k.to_string(), v.to_string()]);
    }
    if a.optimizer {
        args.push("--optimizer".into());
    }
    let out = python_peer(py, &script, &args);
    progress.finish();
    out
}

/// Runs the Python peer `script` with `args` (offline, transformers quiet) and parses the JSON it prints on stdout.
pub(crate) fn python_peer(py: &Path, script: &Path, args: &[String]) -> Result<Value> {
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .with_context(|| format!("running the peer {} with {}", script.display(), py.display()))?;
    if !out.status.success() {
        bail!("peer {} failed ({}):\n{}", script.display(), out.status, String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("peer {} printed no JSON", script.display()))
}

/// Median of a non-empty sample.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}
