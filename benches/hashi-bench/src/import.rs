//! `hashi bench import`: `hashi model import` of a GGUF file next to transformers' GGUF loading of the same file
//! written out as an HF directory (`import_peer.py`, embedded), in the same run. Both sides run as their own
//! processes, so each peak RSS is that process's own (`VmHWM` for hashi, `ru_maxrss` for Python). The peer's time
//! excludes `import torch, transformers`, which is reported separately.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use serde_json::{Value, json};

const PEER_SCRIPT: &str = include_str!("../peers/import_peer.py");

#[derive(Args)]
pub struct ImportBenchArgs {
    /// The .gguf file.
    file: PathBuf,
    /// Storage dtype of the written weights: f32 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: hashi_import::OutDtype,
    /// Rounds of (hashi, peer) measurements, alternating; times are medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Python with torch + transformers + gguf to run the peer; without it only hashi is measured.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Write the JSON result here (it is printed on stdout too).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: ImportBenchArgs, progress: &dyn Reporter) -> Result<()> {
    if a.rounds == 0 {
        bail!("need --rounds >= 1");
    }
    let file_bytes = std::fs::metadata(&a.file).with_context(|| format!("{}", a.file.display()))?.len();
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("import_peer.py");
    std::fs::write(&script, PEER_SCRIPT)?;
    let (mut ours, mut theirs): (Vec<Value>, Vec<Value>) = (vec![], vec![]);
    let mut output_bytes = 0u64;
    for round in 0..a.rounds {
        progress.start(&format!("hashi import {}/{}", round + 1, a.rounds), None, "");
        let out_dir = dir.path().join(format!("hashi-{round}"));
        let t0 = Instant::now();
        let out = Command::new(std::env::current_exe()?)
            .args(["-q", "model", "import", "--json", "--dtype", dtype_flag(a.dtype)])
            .arg(&a.file)
            .arg("--out")
            .arg(&out_dir)
            .output()?;
        let seconds = t0.elapsed().as_secs_f64();
        progress.finish();
        if !out.status.success() {
            bail!("hashi model import failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let report: Value = serde_json::from_slice(&out.stdout).context("import JSON")?;
        output_bytes = dir_bytes(&out_dir)?;
        ours.push(json!({"seconds": seconds, "peak_rss_mib": report["peak_rss_mib"]}));
        std::fs::remove_dir_all(&out_dir)?;
        if let Some(py) = &a.peer_python {
            progress.start(&format!("transformers {}/{}", round + 1, a.rounds), None, "");
            let peer_dir = dir.path().join(format!("peer-{round}"));
            let args =
                [a.file.display().to_string(), peer_dir.display().to_string(), a.dtype.torch_name().into()];
            let run = super::python_peer(py, &script, &args);
            progress.finish();
            theirs.push(run?);
            std::fs::remove_dir_all(&peer_dir)?;
        }
    }
    let median_of = |runs: &[Value], key: &str| {
        let xs: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
        (!xs.is_empty()).then(|| super::median(&xs))
    };
    let hashi = json!({
        "impl": "hashi model import (candle GGUF reader, streamed)",
        "seconds": median_of(&ours, "seconds"),
        "peak_rss_mib": median_of(&ours, "peak_rss_mib"),
        "output_bytes": output_bytes,
        "runs": ours,
    });
    let peer = theirs.last().map(|p| {
        json!({
            "impl": p["impl"],
            "seconds": median_of(&theirs, "seconds"),
            "load_seconds": median_of(&theirs, "load_seconds"),
            "save_seconds": median_of(&theirs, "save_seconds"),
            "python_import_seconds": median_of(&theirs, "import_seconds"),
            "peak_rss_mib": median_of(&theirs, "peak_rss_mib"),
            "runs": theirs,
        })
    });
    let speedup = peer.as_ref().and_then(|p| Some(p["seconds"].as_f64()? / hashi["seconds"].as_f64()?));
    let result = json!({
        "bench": "import",
        "file": a.file,
        "file_bytes": file_bytes,
        "dtype": a.dtype.torch_name(),
        "rounds": a.rounds,
        "threads": candle_core::utils::get_num_threads(),
        "hashi": hashi,
        "peer": peer,
        "peer_seconds_over_hashi": speedup,
    });
    let text = serde_json::to_string_pretty(&result)?;
    if let Some(out) = &a.out {
        std::fs::write(out, format!("{text}\n")).with_context(|| format!("writing {}", out.display()))?;
    }
    crate::print(&text)?;
    Ok(())
}

fn dtype_flag(d: hashi_import::OutDtype) -> &'static str {
    match d {
        hashi_import::OutDtype::F32 => "f32",
        hashi_import::OutDtype::Bf16 => "bf16",
    }
}

fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        n += e?.metadata()?.len();
    }
    Ok(n)
}
