//! `hashi data ...`: prepare declared corpora into Megatron indexed datasets.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hashi_core::Reporter;
use hashi_data::PrepareOptions;
use hashi_experiment::plan::PlanOverrides;
use hashi_script::{Script, ScriptOptions};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Tokenize the corpora declared in a Lua file into one .bin/.idx shard per corpus, with manifest.json.
    Prepare(PrepareArgs),
    /// Resolve a curriculum (Lua) against prepared shards: table per phase and source, and a picture.
    Plan(PlanArgs),
}

#[derive(Args)]
pub struct PlanArgs {
    /// An experiment file (its `curriculum` and `shards` are used), or a curriculum: a Lua file returning
    /// { name=, seq_len=, batch_size=, total_tokens=, phases={...} }.
    curriculum: PathBuf,
    /// Directory of prepared shards (with manifest.json); required for a curriculum file.
    #[arg(long)]
    shards: Option<PathBuf>,
    /// Write the picture (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// JSON (the resolved plan) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PrepareArgs {
    /// Lua file returning a list of corpora: { {name=, lang=, tier=, paths={...}, field=}, ... }.
    corpora: PathBuf,
    /// The tokenizer (tokenizer.json or its directory).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Skip bad records (counted per reason, listed in NAME.rejects.jsonl) instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Redo corpora that are up to date, and write into an --out that is not empty although it holds no
    /// earlier shards (its files are overwritten).
    #[arg(long)]
    force: bool,
    /// Tokenizer threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(cmd: DataCommand, progress: &dyn Reporter) -> Result<()> {
    match cmd {
        DataCommand::Prepare(a) => prepare(a, progress),
        DataCommand::Plan(a) => plan(a),
    }
}

fn prepare(a: PrepareArgs, progress: &dyn Reporter) -> Result<()> {
    let opts = PrepareOptions { skip_bad: a.skip_bad, force: a.force };
    let manifest =
        hashi_experiment::plan::prepare(&a.corpora, &a.tokenizer, &a.out, &opts, a.threads, progress)?;
    outln!(
        "{:<16} {:<5} {:<7} {:>10} {:>12} {:>12}  rejected",
        "corpus",
        "lang",
        "tier",
        "documents",
        "tokens",
        "MB"
    )?;
    for e in &manifest.corpora {
        let rejected: Vec<String> = e.rejected.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!(
            "{:<16} {:<5} {:<7} {:>10} {:>12} {:>12.2}  {}",
            e.corpus.name,
            e.corpus.lang,
            e.corpus.tier.as_deref().unwrap_or("-"),
            e.documents,
            e.tokens,
            e.text_bytes as f64 / 1e6,
            rejected.join(" ")
        )?;
    }
    Ok(())
}

fn plan(a: PlanArgs) -> Result<()> {
    // An experiment names its curriculum and shards (relative to itself).
    let script = Script::load(&a.curriculum, &ScriptOptions::default())?;
    let base = a.curriculum.parent().map(PathBuf::from).unwrap_or_default();
    let (curriculum, shards) =
        match (script.field::<Option<String>>("curriculum")?, script.field::<Option<String>>("shards")?) {
            (Some(c), Some(s)) => (base.join(c), a.shards.clone().unwrap_or_else(|| base.join(s))),
            _ => (
                a.curriculum.clone(),
                a.shards.clone().context("--shards is required with a curriculum file")?,
            ),
        };
    let overrides: Option<PlanOverrides> = script.field("plan_overrides")?;
    let plan = hashi_experiment::plan::load_plan(&curriculum, &shards, &overrides.unwrap_or_default())?;
    if let Some(svg) = &a.svg {
        std::fs::write(svg, hashi_report::svg::plan(&plan))
            .with_context(|| format!("writing {}", svg.display()))?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&plan)?)?;
        return Ok(());
    }
    outln!("{}", hashi_experiment::plan::table(&plan))?;
    Ok(())
}
