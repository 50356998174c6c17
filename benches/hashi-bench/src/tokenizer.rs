//! `hashi bench tokenizer`: training time and peak memory, and encode throughput at 1 and 2 threads, of hashi
//! vs SentencePiece and HF `tokenizers` (Python), all on the same text in the same run.
//!
//! The inputs are sampled as `hashi tokenizer train` would (equal bytes per language by default) and written as
//! one text file, one line per sentence; every trainer reads that file. Each trainer runs in its own process, so
//! its peak RSS (`VmHWM`) is its own (the Python peers' include the interpreter, ~20 MiB). Encode throughput is
//! measured on the same file with each side's own model: hashi and HF `tokenizers` run the hashi-trained
//! `tokenizer.json` (hashi in-process on a rayon pool of N threads, the peer with `RAYON_NUM_THREADS=N`),
//! SentencePiece its own model with `num_threads=N`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::input::{InputSpec, read_inputs};
use serde_json::{Value, json};

const PEER_SCRIPT: &str = include_str!("../peers/tokenizer_peers.py");

#[derive(Args)]
pub struct TokenizerBenchArgs {
    /// Inputs as for `hashi tokenizer train` (LANG=PATH, globs allowed).
    #[arg(long = "input", required = true)]
    inputs: Vec<InputSpec>,
    /// Vocabulary size.
    #[arg(long, default_value_t = 32_000)]
    vocab_size: usize,
    /// Character coverage (all trainers).
    #[arg(long, default_value_t = 0.9995)]
    character_coverage: f64,
    /// Python with sentencepiece + tokenizers; without it only hashi is measured.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: TokenizerBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let text = dir.path().join("train.txt");
    let inputs = read_inputs(&a.inputs)?;
    let min = inputs.iter().map(|l| l.bytes).min().unwrap_or(0);
    let mut lines = String::new();
    for lang in &inputs {
        let mut used = 0u64;
        for doc in &lang.docs {
            if used >= min {
                break;
            }
            used += doc.len() as u64;
            for l in doc.lines().filter(|l| !l.trim().is_empty()) {
                lines.push_str(l);
                lines.push('\n');
            }
        }
    }
    std::fs::write(&text, &lines)?;
    let text_mb = lines.len() as f64 / 1e6;
    let text_arg = text.display().to_string();
    let exe = std::env::current_exe()?;
    let vocab = a.vocab_size.to_string();
    let ours_dir = dir.path().join("hashi");

    progress.start("training: hashi", None, "");
    let out = Command::new(&exe)
        .args(["-q", "tokenizer", "train", "--input", &format!("text={text_arg}"), "--sampling", "all"])
        .args(["--vocab-size", &vocab, "--character-coverage", &a.character_coverage.to_string()])
        .args(["--out", &ours_dir.display().to_string()])
        .output()?;
    progress.finish();
    if !out.status.success() {
        bail!("hashi tokenizer train failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let ours_train: hashi_experiment::tokenizer::TrainSummary =
        serde_json::from_slice(&out.stdout).context("train summary")?;
    let tok = Tokenizer::from_file(&ours_dir)?;
    let docs: Vec<&str> = lines.lines().collect();
    let mut ours_encode = serde_json::Map::new();
    for threads in [1usize, 2] {
        progress.start(&format!("encoding: hashi x{threads}"), None, "");
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let t0 = Instant::now();
        let ids = pool.install(|| tok.encode_batch(&docs, false))?;
        let dt = t0.elapsed().as_secs_f64();
        progress.finish();
        let tokens: usize = ids.iter().map(Vec::len).sum();
        ours_encode.insert(
            format!("threads_{threads}"),
            json!({"seconds": dt, "mb_per_s": text_mb / dt, "tokens": tokens}),
        );
    }
    let mut result = json!({
        "bench": "tokenizer",
        "text_mb": text_mb,
        "vocab_size": a.vocab_size,
        "hashi": {"train": {"seconds": ours_train.seconds, "peak_rss_mib": ours_train.peak_rss_mib},
                  "encode": ours_encode},
    });
    if let Some(py) = &a.peer_python {
        let script = dir.path().join("tokenizer_peers.py");
        std::fs::write(&script, PEER_SCRIPT)?;
        let peer = |args: &[&str], threads: Option<usize>, what: &str| -> Result<Value> {
            progress.start(what, None, "");
            let mut cmd = Command::new(py);
            cmd.arg(&script).args(args);
            if let Some(n) = threads {
                cmd.env("RAYON_NUM_THREADS", n.to_string());
            }
            let out = cmd.output().with_context(|| format!("running {}", py.display()))?;
            progress.finish();
            if !out.status.success() {
                bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            serde_json::from_slice(&out.stdout).with_context(|| format!("{what}: no JSON"))
        };
        let sp_prefix = dir.path().join("sp").display().to_string();
        let cov = a.character_coverage.to_string();
        let sp_train =
            peer(&["train-sp", &text_arg, &vocab, &sp_prefix, &cov], None, "training: sentencepiece")?;
        let alphabet = ours_train.characters_kept.to_string();
        let hf_out = dir.path().join("hf.json").display().to_string();
        let hf_train =
            peer(&["train-hf", &text_arg, &vocab, &hf_out, &alphabet], None, "training: tokenizers")?;
        let model = format!("{sp_prefix}.model");
        let ours_json = ours_dir.join("tokenizer.json").display().to_string();
        let mut sp_enc = serde_json::Map::new();
        let mut hf_enc = serde_json::Map::new();
        for n in [1usize, 2] {
            let t = n.to_string();
            sp_enc.insert(
                format!("threads_{n}"),
                peer(&["encode-sp", &model, &text_arg, &t], None, "encoding: sp")?,
            );
            hf_enc.insert(
                format!("threads_{n}"),
                peer(&["encode-hf", &ours_json, &text_arg], Some(n), "encoding: hf")?,
            );
        }
        result["sentencepiece"] = json!({"train": sp_train, "encode": sp_enc});
        result["tokenizers_python"] = json!({"train": hf_train, "encode": hf_enc});
    }
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(out) = &a.out {
        write(out, &text)?;
    }
    crate::print(&text)?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}
