//! `hashi data ...`: prepare declared corpora into Megatron indexed datasets.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hashi_core::Reporter;
use hashi_data::{CorpusDecl, PrepareOptions};
use hashi_script::{Script, ScriptOptions};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Tokenize the corpora declared in a Lua file into one .bin/.idx shard per corpus, with manifest.json.
    Prepare(PrepareArgs),
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
    /// Redo corpora that are up to date.
    #[arg(long)]
    force: bool,
    /// Tokenizer threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(cmd: DataCommand, progress: &dyn Reporter) -> Result<()> {
    match cmd {
        DataCommand::Prepare(a) => prepare(a, progress),
    }
}

fn prepare(a: PrepareArgs, progress: &dyn Reporter) -> Result<()> {
    let script = Script::load(&a.corpora, &ScriptOptions::default())?;
    let decls: Vec<CorpusDecl> = script.exports()?;
    let base = a.corpora.parent().map(PathBuf::from).unwrap_or_default();
    let opts = PrepareOptions { skip_bad: a.skip_bad, force: a.force };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = a.threads {
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("thread pool")?;
    let manifest =
        pool.install(|| hashi_data::prepare(&decls, &base, &a.tokenizer, &a.out, &opts, progress))?;
    println!(
        "{:<16} {:<5} {:<7} {:>10} {:>12} {:>12}  rejected",
        "corpus", "lang", "tier", "documents", "tokens", "MB"
    );
    for e in &manifest.corpora {
        let rejected: Vec<String> = e.rejected.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<16} {:<5} {:<7} {:>10} {:>12} {:>12.2}  {}",
            e.corpus.name,
            e.corpus.lang,
            e.corpus.tier.as_deref().unwrap_or("-"),
            e.documents,
            e.tokens,
            e.text_bytes as f64 / 1e6,
            rejected.join(" ")
        );
    }
    Ok(())
}
