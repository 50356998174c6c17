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
    let script = Script::load(&a.corpora, &ScriptOptions::default())?;
    let decls: Vec<CorpusDecl> = script.exports()?;
    hashi_data::check_decls(&decls).with_context(|| a.corpora.display().to_string())?;
    let base = a.corpora.parent().map(PathBuf::from).unwrap_or_default();
    let opts = PrepareOptions { skip_bad: a.skip_bad, force: a.force };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = a.threads {
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("thread pool")?;
    let manifest = pool
        .install(|| hashi_data::prepare(&decls, &base, &a.tokenizer, &a.out, &opts, progress))
        .map_err(|e| match e {
            // Declaration problems (a path that is a directory or missing) name the declaration file too.
            hashi_data::DataError::Input(m) => anyhow::anyhow!("{}: {m}", a.corpora.display()),
            e => e.into(),
        })?;
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

/// Top-level fields of a curriculum that an experiment replaces (`plan_overrides`: sizes, seed).
pub type PlanOverrides = serde_json::Map<String, serde_json::Value>;

/// The curriculum's declaration with `overrides` applied to its top-level fields.
pub fn plan_decl(script: &Script, overrides: &PlanOverrides) -> hashi_script::Result<hashi_data::PlanDecl> {
    if overrides.is_empty() {
        return script.exports();
    }
    let mut v: serde_json::Value = script.exports()?;
    if let Some(obj) = v.as_object_mut() {
        obj.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    serde_json::from_value(v).map_err(|e| hashi_script::ScriptError::Decode {
        path: script.path().into(),
        what: "plan (with the experiment's plan_overrides)".into(),
        message: e.to_string(),
    })
}

/// Loads a curriculum script, applies `overrides`, and resolves it against `shards/manifest.json`.
pub fn load_plan(
    curriculum: &std::path::Path,
    shards: &std::path::Path,
    overrides: &PlanOverrides,
) -> Result<hashi_data::ResolvedPlan> {
    let script = Script::load(curriculum, &ScriptOptions::default())?;
    let decl = plan_decl(&script, overrides)?;
    let manifest_path = shards.join("manifest.json");
    if !manifest_path.exists() {
        anyhow::bail!("{}: no such file; run `hashi data prepare` first", manifest_path.display());
    }
    let manifest = hashi_data::Manifest::load(shards)?;
    hashi_data::resolve(&decl, &manifest).with_context(|| curriculum.display().to_string())
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
    let plan = load_plan(&curriculum, &shards, &overrides.unwrap_or_default())?;
    if let Some(svg) = &a.svg {
        std::fs::write(svg, hashi_data::figure::plan_svg(&plan))
            .with_context(|| format!("writing {}", svg.display()))?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&plan)?)?;
        return Ok(());
    }
    let d = &plan.decl;
    outln!(
        "{}: {} phases, {} batches of {} x {} tokens = {} tokens (seed {}, on_exhausted {:?})",
        d.name,
        plan.phases.len(),
        plan.total_batches(),
        d.batch_size,
        d.seq_len,
        plan.total_batches() * plan.tokens_per_batch(),
        d.seed,
        d.on_exhausted
    )?;
    outln!(
        "\n{:<14} {:>8} {:<5} {:>6} {:<11} {:<16} {:>10} {:>12} {:>7}",
        "phase",
        "steps",
        "lang",
        "share",
        "order",
        "source",
        "sequences",
        "tokens",
        "epochs"
    )?;
    for p in &plan.phases {
        for l in &p.langs {
            for s in &l.sources {
                outln!(
                    "{:<14} {:>8} {:<5} {:>6.3} {:<11} {:<16} {:>10} {:>12} {:>7}",
                    p.name,
                    p.batches,
                    l.lang,
                    l.share,
                    format!("{:?}", l.order).to_lowercase(),
                    s.name,
                    s.sequences,
                    s.sequences * d.seq_len as u64,
                    s.epochs
                )?;
            }
        }
    }
    Ok(())
}

/// The inputs of a corpus declaration file as `LANG:FIELD=PATH` specs (paths resolved against the file).
pub fn corpus_inputs(file: &std::path::Path) -> Result<Vec<hashi_tokenizer::input::InputSpec>> {
    let decls: Vec<CorpusDecl> = Script::load(file, &ScriptOptions::default())?.exports()?;
    hashi_data::check_decls(&decls).with_context(|| file.display().to_string())?;
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let mut specs = Vec::new();
    for d in decls {
        for p in &d.paths {
            specs.push(hashi_tokenizer::input::InputSpec {
                lang: d.lang.clone(),
                field: d.field.clone(),
                pattern: base.join(p).display().to_string(),
            });
        }
    }
    Ok(specs)
}
