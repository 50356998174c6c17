//! `hashi export --backend TARGET EXPERIMENT.lua --out DIR`: hands an experiment to a cluster engine through an
//! export plugin (`hashi_experiment::export::build_request`, then the plugin).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct ExportArgs {
    /// The experiment (Lua), as for `hashi train`; its optional `cluster` table sets nodes and parallelism.
    experiment: PathBuf,
    /// Export target: megatron (Megatron-LM on GPUs) or neuron (NeuronX Distributed Training on Trainium).
    #[arg(long)]
    backend: String,
    /// Output directory (created; must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    plugins: crate::plugins::PluginArgs,
}

pub fn run(a: ExportArgs) -> Result<()> {
    if a.out.exists() && std::fs::read_dir(&a.out)?.next().is_some() {
        bail!("{}: the output directory is not empty", a.out.display());
    }
    let request = hashi_experiment::export::build_request(&a.experiment, &a.backend)?;
    let registry = a.plugins.registry()?;
    let plugin = registry.exporter(&a.backend)?;
    std::fs::create_dir_all(&a.out)?;
    let summary = plugin.export(&a.backend, &serde_json::to_string(&request)?, &a.out)?;
    request.write(&a.out.join("request.json"))?;
    let v: Value = serde_json::from_str(&summary).context("the exporter's summary is not JSON")?;
    outln!("{}", v["table"].as_str().unwrap_or(&summary))?;
    outln!("written to {} by plugin {} {}", a.out.display(), plugin.info().name, plugin.info().version)?;
    Ok(())
}
