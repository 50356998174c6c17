//! Curricula and corpora: a curriculum script with an experiment's `plan_overrides`, resolved against prepared
//! shards; the shards stage (`hashi data prepare`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hashi_core::Reporter;
use hashi_data::{CorpusDecl, Manifest, PrepareOptions};
use hashi_script::{Script, ScriptOptions};
use serde::{Deserialize, Serialize};

/// Prepares the corpora declared in `corpora` (Lua) into shards in `out` with `threads` tokenizer threads (all
/// cores when `None`).
pub fn prepare(
    corpora: &Path,
    tokenizer: &Path,
    out: &Path,
    opts: &PrepareOptions,
    threads: Option<usize>,
    progress: &dyn Reporter,
) -> Result<Manifest> {
    let script = Script::load(corpora, &ScriptOptions::default())?;
    let decls: Vec<CorpusDecl> = script.exports()?;
    hashi_data::check_decls(&decls).with_context(|| corpora.display().to_string())?;
    let base = corpora.parent().map(PathBuf::from).unwrap_or_default();
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("thread pool")?;
    pool.install(|| hashi_data::prepare(&decls, &base, tokenizer, out, opts, progress)).map_err(|e| match e {
        // Declaration problems (a path that is a directory or missing) name the declaration file too.
        hashi_data::DataError::Input(m) => anyhow::anyhow!("{}: {m}", corpora.display()),
        e => e.into(),
    })
}

/// Top-level fields of a curriculum that an experiment replaces (`plan_overrides`): one data plan at several
/// scales. `hashi run` sets `seed` to the variant's seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanOverrides {
    /// Tokens per sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_len: Option<usize>,
    /// Sequences per micro-batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// What fractional phase budgets are fractions of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<f64>,
    /// Seed of the data order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The curriculum's declaration with `overrides` applied to its top-level fields.
pub fn plan_decl(script: &Script, overrides: &PlanOverrides) -> hashi_script::Result<hashi_data::PlanDecl> {
    if *overrides == PlanOverrides::default() {
        return script.exports();
    }
    let mut v: serde_json::Value = script.exports()?;
    if let (Some(obj), Ok(serde_json::Value::Object(o))) =
        (v.as_object_mut(), serde_json::to_value(overrides))
    {
        obj.extend(o);
    }
    serde_json::from_value(v).map_err(|e| hashi_script::ScriptError::Decode {
        path: script.path().into(),
        what: "plan (with the experiment's plan_overrides)".into(),
        message: e.to_string(),
    })
}

/// Loads a curriculum script, applies `overrides`, and resolves it against `shards/manifest.json`.
pub fn load_plan(
    curriculum: &Path,
    shards: &Path,
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

/// The inputs of a corpus declaration file as `LANG:FIELD=PATH` specs (paths resolved against the file).
pub fn corpus_inputs(file: &Path) -> Result<Vec<hashi_tokenizer::input::InputSpec>> {
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

/// A resolved plan as a text table: a summary line, then one row per phase, language and source.
pub fn table(plan: &hashi_data::ResolvedPlan) -> String {
    use std::fmt::Write as _;
    macro_rules! w {
        ($o:expr, $($t:tt)*) => {{ let _ = writeln!($o, $($t)*); }};
    }
    let mut out = String::new();
    let d = &plan.decl;
    w!(
        out,
        "{}: {} phases, {} batches of {} x {} tokens = {} tokens (seed {}, on_exhausted {:?})",
        d.name,
        plan.phases.len(),
        plan.total_batches(),
        d.batch_size,
        d.seq_len,
        plan.total_batches() * plan.tokens_per_batch(),
        d.seed,
        d.on_exhausted
    );
    w!(
        out,
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
    );
    for p in &plan.phases {
        for l in &p.langs {
            for s in &l.sources {
                w!(
                    out,
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
                );
            }
        }
    }
    if plan.phases.iter().any(|p| p.training.is_some()) {
        w!(out, "\n{:<14} {}", "phase", "training (the experiment's settings where a phase sets none)");
        for p in &plan.phases {
            let what = p.training.as_ref().map_or_else(|| "the experiment's".to_string(), |t| t.summary());
            w!(out, "{:<14} {what}", p.name);
        }
    }
    out.trim_end().to_string()
}
