//! `hashi bench transfer`: time and peak RSS of `hashi transfer` on a generated Llama-2-shaped sharded
//! checkpoint (real shapes and shard sizes; zeros in every tensor but the two vocabulary matrices, which hold
//! small random values), next to a plain copy (`cp -r`) of the same files, in the same run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use half::bf16;
use hashi_core::Reporter;
use hashi_model::{Config, param_shapes};
use hashi_transfer::safetensors_io::{self, Source};
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Args)]
pub struct TransferBenchArgs {
    /// Shape: llama2-7b or llama2-13b.
    #[arg(long, default_value = "llama2-7b")]
    shape: String,
    /// The old tokenizer (32,000 pieces, like Llama 2's).
    #[arg(long)]
    old_tokenizer: PathBuf,
    /// The new tokenizer.
    #[arg(long)]
    new_tokenizer: PathBuf,
    /// Strategy for the unmatched rows.
    #[arg(long, default_value = "scripts/init/subword_mean.lua")]
    init: PathBuf,
    /// Working directory for the generated checkpoint, the copy and the output (removed afterwards).
    #[arg(long)]
    dir: PathBuf,
    /// Shard size in bytes (HF's Llama 2 checkpoints use 10 GB).
    #[arg(long, default_value_t = 10_000_000_000)]
    max_shard_bytes: u64,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: TransferBenchArgs, progress: &dyn Reporter) -> Result<()> {
    let cfg = Config::preset(&a.shape).with_context(|| format!("unknown shape {:?}", a.shape))?;
    if a.dir.exists() {
        bail!("{}: must not exist (it is removed afterwards)", a.dir.display());
    }
    let src = a.dir.join("source");
    std::fs::create_dir_all(&src)?;
    let result = (|| -> Result<serde_json::Value> {
        // Shards in HF order, split at max_shard_bytes.
        let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![vec![]];
        let mut size = 0u64;
        for (name, shape) in param_shapes(&cfg) {
            let bytes = shape.iter().product::<usize>() as u64 * 2;
            if size + bytes > a.max_shard_bytes && !shards.last().is_some_and(Vec::is_empty) {
                shards.push(vec![]);
                size = 0;
            }
            size += bytes;
            if let Some(s) = shards.last_mut() {
                s.push((name, shape));
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let vocab_bytes: Vec<u8> = (0..cfg.vocab_size * cfg.hidden_size)
            .flat_map(|_| bf16::from_f32(rng.random_range(-0.05f32..0.05)).to_le_bytes())
            .collect();
        let n = shards.len();
        let mut weight_map = serde_json::Map::new();
        let mut total = 0u64;
        progress.start("generating checkpoint", Some(n as u64), "shards");
        for (i, shard) in shards.iter().enumerate() {
            let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
            let tensors: Vec<(String, Source<'_>)> = shard
                .iter()
                .map(|(name, shape)| {
                    weight_map.insert(name.clone(), file.clone().into());
                    let src = if name.contains("embed_tokens") || name.starts_with("lm_head") {
                        Source::Memory { dtype: "BF16".into(), shape: shape.clone(), bytes: &vocab_bytes }
                    } else {
                        Source::Zeros { dtype: "BF16".into(), shape: shape.clone(), elem_bytes: 2 }
                    };
                    (name.clone(), src)
                })
                .collect();
            total += safetensors_io::write(&src.join(&file), &tensors, None)?;
            progress.advance(1);
        }
        progress.finish();
        let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        std::fs::write(src.join("model.safetensors.index.json"), serde_json::to_string_pretty(&index)?)?;
        std::fs::write(src.join("config.json"), serde_json::to_string_pretty(&cfg.to_hf("bfloat16"))?)?;
        let old_tok = if a.old_tokenizer.is_dir() {
            a.old_tokenizer.join("tokenizer.json")
        } else {
            a.old_tokenizer.clone()
        };
        std::fs::copy(&old_tok, src.join("tokenizer.json"))?;

        progress.start("plain copy", None, "");
        let copy = a.dir.join("copy");
        let t0 = Instant::now();
        let status = Command::new("cp").args(["-r", "--sparse=never"]).arg(&src).arg(&copy).status()?;
        let copy_s = t0.elapsed().as_secs_f64();
        progress.finish();
        if !status.success() {
            bail!("cp failed");
        }
        std::fs::remove_dir_all(&copy)?;

        progress.start("hashi transfer", None, "");
        let dst = a.dir.join("out");
        let t0 = Instant::now();
        let out = Command::new(std::env::current_exe()?)
            .args(["-q", "transfer", "--json", "--model"])
            .arg(&src)
            .arg("--tokenizer")
            .arg(&a.new_tokenizer)
            .arg("--init")
            .arg(&a.init)
            .arg("--out")
            .arg(&dst)
            .output()?;
        let transfer_s = t0.elapsed().as_secs_f64();
        progress.finish();
        if !out.status.success() {
            bail!("hashi transfer failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let report: hashi_experiment::TransferComparison =
            serde_json::from_slice(&out.stdout).context("transfer JSON")?;
        let first = &report.strategies.first().context("no strategy in the transfer JSON")?.report;
        Ok(json!({
            "bench": "transfer",
            "shape": a.shape,
            "dtype": "bf16",
            "checkpoint_bytes": total,
            "shards": n,
            "copy_seconds": copy_s,
            "transfer_seconds": transfer_s,
            "transfer_over_copy": transfer_s / copy_s,
            "transfer_peak_rss_mib": report.peak_rss_mib,
            "matched": first.matched,
            "new_vocab_size": first.new_vocab_size,
        }))
    })();
    let _ = std::fs::remove_dir_all(&a.dir);
    let result = result?;
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(out) = &a.out {
        std::fs::write(out, format!("{text}\n")).with_context(|| format!("writing {}", out.display()))?;
    }
    crate::print(&text)?;
    Ok(())
}
