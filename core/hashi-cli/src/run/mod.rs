//! `hashi run EXPERIMENT.lua`: tokenizer → transfer → shards → training of every variant (and seed) →
//! evaluation of the base model, the starting points and every data-switch checkpoint → report, in one run
//! directory. Each stage is a plain `hashi` command whose key hashes its settings, its input files and the keys
//! of the stages it reads; a finished stage with the same key is reused, so a re-run redoes only what changed,
//! and `--resume` continues an unfinished training from its latest checkpoint.

mod decl;
mod stage;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_script::{Script, ScriptOptions};
use serde_json::{Value, json};

use crate::progress::Progress;
use decl::{RunDecl, input_spec, lua_literal, normalize, rel};
use stage::{Key, Plan};

#[derive(Args)]
pub struct RunArgs {
    /// The run file (Lua): base model, tokenizer, transfer, corpora, training, evaluation and variants.
    experiment: PathBuf,
    /// Continue an unfinished training from its latest checkpoint (finished stages are reused in any case).
    #[arg(long)]
    resume: bool,
    /// The run file's small setting (`hashi.quick` is true while it runs): for tests.
    #[arg(long)]
    quick: bool,
    /// Run directory (default: the run file's `out`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seeds to train every variant with (default: the run file's `seeds`).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Only these variants.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Do not write the report at the end.
    #[arg(long)]
    no_report: bool,
    /// The source model directory instead of the run file's `base` (e.g. one imported elsewhere).
    #[arg(long)]
    base: Option<PathBuf>,
}

/// The run directory and what the stages share.
struct Runner<'a> {
    out: PathBuf,
    progress: &'a Progress,
    resume: bool,
    quiet: bool,
    done: usize,
}

impl Runner<'_> {
    /// Runs `commands` as a stage (unless cached); `outputs` are removed before a fresh start.
    fn stage(&mut self, id: &str, key: &str, outputs: &[&Path], commands: Vec<Vec<String>>) -> Result<()> {
        self.stage_with(id, key, outputs, false, |_| commands)
    }

    /// A stage whose commands depend on whether it continues an unfinished execution.
    fn stage_with(
        &mut self,
        id: &str,
        key: &str,
        outputs: &[&Path],
        resumable: bool,
        commands: impl FnOnce(bool) -> Vec<Vec<String>>,
    ) -> Result<()> {
        self.done += 1;
        let marker = self.out.join("stages").join(format!("{id}.json"));
        let mut plan = stage::plan(&marker, key, resumable && self.resume);
        if plan == Plan::Cached && outputs.iter().any(|o| !o.exists()) {
            plan = Plan::Fresh; // finished once, but its outputs were removed since
        }
        if plan == Plan::Cached {
            self.say(&format!("[{}] {id}: cached", self.done));
            return Ok(());
        }
        if plan == Plan::Fresh {
            for o in outputs {
                remove(o)?;
            }
        }
        let commands = commands(plan == Plan::Continue);
        let verb = if plan == Plan::Continue { "resuming" } else { "running" };
        self.say(&format!("[{}] {id}: {verb}", self.done));
        let progress = self.progress;
        let seconds = stage::execute(&marker, key, &commands, || {
            for c in &commands {
                tracing::debug!(command = %c.join(" "), "stage command");
                crate::execute_args(c, progress)
                    .with_context(|| format!("stage {id}: hashi {}", c.join(" ")))?;
            }
            Ok(())
        })?;
        self.say(&format!("[{}] {id}: done in {seconds:.1} s", self.done));
        Ok(())
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("── {line}");
        }
    }
}

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))?;
    } else if p.exists() {
        std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// A model to evaluate, and the key that names its content.
struct EvalTarget {
    label: String,
    model: PathBuf,
    key: String,
}

/// What the shared stages made, for every variant: the run file, the tokenizer, the transfer and the shards.
struct Shared {
    experiment: PathBuf,
    /// The run file's folder (its paths are relative to it).
    base: PathBuf,
    base_model: PathBuf,
    heldout: Vec<(String, PathBuf)>,
    tok_dir: PathBuf,
    transferred: PathBuf,
    transfer_key: String,
    shards: PathBuf,
    shards_key: String,
}

pub fn run(a: RunArgs, progress: &Progress) -> Result<()> {
    let started = Instant::now();
    let experiment = normalize(&std::path::absolute(&a.experiment)?);
    let quick = a.quick;
    let script =
        Script::load_with(&experiment, &ScriptOptions::default(), |_, hashi| hashi.set("quick", quick))?;
    let mut d: RunDecl = script.exports()?;
    if let Some(b) = &a.base {
        d.base = std::path::absolute(b)?.display().to_string();
    }
    let base = experiment.parent().map(PathBuf::from).unwrap_or_default();
    validate(&d, &experiment, &base)?;
    let out = a
        .out
        .as_ref()
        .map_or_else(|| rel(&base, &d.out), |o| normalize(&std::path::absolute(o).unwrap_or(o.clone())));
    let seeds = if a.seeds.is_empty() { d.seeds.clone() } else { a.seeds.clone() };
    for name in &a.only {
        if !d.variants.iter().any(|v| &v.name == name) {
            bail!("{}: no variant {name:?}", experiment.display());
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // One process at a time in a run folder (a stale lock after a crash is recognised and taken over).
    let _lock = hashi_train::RunLock::acquire(&out)?;
    let mut r = Runner { out: out.clone(), progress, resume: a.resume, quiet: progress.is_quiet(), done: 0 };
    r.say(&format!("run {} ({}) in {}", d.name, experiment.display(), out.display()));

    let sh = shared_stages(&mut r, &d, experiment, base)?;
    let ev = Evaluator::new(&d.eval, &sh)?;
    let base_key = Key::new("model").content(&sh.base_model)?.finish();
    let base_eval =
        ev.eval(&mut r, &EvalTarget { label: "base".into(), model: sh.base_model.clone(), key: base_key })?;
    let transfer_eval = ev.eval(
        &mut r,
        &EvalTarget { label: "transfer".into(), model: sh.transferred.clone(), key: sh.transfer_key.clone() },
    )?;
    let mut variants = vec![];
    for seed in &seeds {
        for v in d.variants.iter().filter(|v| a.only.is_empty() || a.only.contains(&v.name)) {
            variants.push(train_variant(&mut r, &d, &sh, &ev, v, *seed, &transfer_eval)?);
        }
    }
    let index = json!({
        "name": d.name, "experiment": sh.experiment, "quick": quick, "seeds": seeds,
        "base": {"model": sh.base_model, "eval": rel_to(&out, &base_eval)},
        "tokenizer": {"dir": "tokenizer", "analysis": "tokenizer-analysis.json"},
        "transfer": {"dir": "transfer", "report": "transfer/transfer_report.json", "eval": rel_to(&out, &transfer_eval)},
        "variants": variants,
        "machine": machine(),
        "stage_seconds": stage_seconds(&out)?,
        "seconds_this_invocation": started.elapsed().as_secs_f64(),
    });
    hashi_core::write_atomic(
        &out.join("run.json"),
        (serde_json::to_string_pretty(&index)? + "\n").as_bytes(),
    )?;
    if !a.no_report {
        crate::report::write(std::slice::from_ref(&out), &out.join("report"))?;
        r.say(&format!("report: {}", out.join("report").join("report.md").display()));
    }
    r.say(&format!("run {} finished in {:.0} s", d.name, started.elapsed().as_secs_f64()));
    Ok(())
}

/// The stages every variant shares: the tokenizer (analysed on the held-out text against the base model's), the
/// vocabulary transfer of the base model, and the shards of the corpora.
fn shared_stages(r: &mut Runner, d: &RunDecl, experiment: PathBuf, base: PathBuf) -> Result<Shared> {
    let out = r.out.clone();
    let base_model = rel(&base, &d.base);
    crate::train::must_exist(&base_model.join("config.json"), "base model", &experiment)?;
    let inputs: Vec<(String, PathBuf)> =
        d.tokenizer.inputs.iter().map(|i| input_spec(&base, i)).collect::<Result<_>>()?;
    let heldout: Vec<(String, PathBuf)> =
        d.eval.bpb.iter().map(|i| input_spec(&base, i)).collect::<Result<_>>()?;
    let init = rel(&base, &d.transfer.init);
    check_transfer_inputs(&base_model, &init, &d.transfer.map_special, &experiment)?;

    let mut key = Key::new("tokenizer")
        .value("vocab", &d.tokenizer.vocab_size)?
        .value("sampling", &d.tokenizer.sampling)?;
    for (lang, p) in inputs.iter().chain(&heldout) {
        key = key.value("lang", lang)?;
        for f in expand(p)? {
            key = key.content(&f)?;
        }
    }
    let tok_key =
        key.content(&base_model.join("tokenizer.json"))?.value("expand", &d.tokenizer.expand)?.finish();
    let tok_dir = out.join("tokenizer");
    // With expansion the trained tokenizer is only the source of the pieces appended to the base's.
    let trained = if d.tokenizer.expand { out.join("tokenizer-trained") } else { tok_dir.clone() };
    let mut train_tok =
        args(&["tokenizer", "train", "--vocab-size", &d.tokenizer.vocab_size.to_string(), "--out"]);
    train_tok.push(s(&trained));
    for (lang, p) in &inputs {
        train_tok.extend(["--input".into(), format!("{lang}={}", s(p))]);
    }
    if let Some(sampling) = &d.tokenizer.sampling {
        train_tok.extend(["--sampling".into(), sampling.clone()]);
    }
    let mut analyze = args(&["tokenizer", "analyze", "--tokenizer"]);
    analyze.extend([s(&tok_dir), "--reference".into(), s(&base_model), "--out".into()]);
    analyze.push(s(&out.join("tokenizer-analysis.json")));
    for (lang, p) in &heldout {
        analyze.extend(["--text".into(), format!("{lang}={}", s(p))]);
    }
    let mut commands = vec![train_tok];
    if d.tokenizer.expand {
        let mut expand = args(&["tokenizer", "expand", "--base"]);
        expand.extend([s(&base_model), "--add".into(), s(&trained), "--out".into(), s(&tok_dir)]);
        commands.push(expand);
    }
    commands.push(analyze);
    let outputs: Vec<&Path> = if d.tokenizer.expand { vec![&tok_dir, &trained] } else { vec![&tok_dir] };
    r.stage("tokenizer", &tok_key, &outputs, commands)?;

    let mut key = Key::new("transfer")
        .upstream(&tok_key)
        .content(&base_model)?
        .value("seed", &d.transfer.seed)?
        .value("map_special", &d.transfer.map_special)?;
    for f in &script_files(&init) {
        key = key.content(f)?;
    }
    let transfer_key = key.finish();
    let transferred = out.join("transfer");
    let mut transfer = args(&["transfer", "--model"]);
    transfer.extend([s(&base_model), "--tokenizer".into(), s(&tok_dir), "--init".into(), s(&init)]);
    transfer.extend(["--out".into(), s(&transferred), "--seed".into(), d.transfer.seed.to_string()]);
    for m in &d.transfer.map_special {
        transfer.extend(["--map-special".into(), m.clone()]);
    }
    r.stage("transfer", &transfer_key, &[&transferred], vec![transfer])?;

    let corpora = rel(&base, &d.corpora);
    let mut key = Key::new("shards").upstream(&tok_key).content(&corpora)?;
    for f in corpus_files(&corpora)? {
        key = key.content(&f)?;
    }
    let shards_key = key.finish();
    let shards = out.join("shards");
    let mut prepare = args(&["data", "prepare"]);
    prepare.extend([s(&corpora), "--tokenizer".into(), s(&tok_dir), "--out".into(), s(&shards)]);
    r.stage("shards", &shards_key, &[&shards], vec![prepare])?;

    Ok(Shared {
        experiment,
        base,
        base_model,
        heldout,
        tok_dir,
        transferred,
        transfer_key,
        shards,
        shards_key,
    })
}

/// What the transfer stage will need, checked before any stage runs (no matrix is read): the base model's config,
/// tokenizer and special tokens, the special-token mappings, and the strategy script.
fn check_transfer_inputs(
    base_model: &Path,
    init: &Path,
    map_special: &[String],
    experiment: &Path,
) -> Result<()> {
    let in_run = || format!("{}: transfer", experiment.display());
    let special_tokens = map_special
        .iter()
        .map(|m| m.parse::<hashi_transfer::SpecialMapping>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()
        .with_context(in_run)?;
    let opts = hashi_transfer::TransferOptions { special_tokens, ..Default::default() };
    hashi_transfer::check_source(base_model, &opts).with_context(in_run)?;
    let scripts = ScriptOptions::default().lib_dirs(vec![PathBuf::from("scripts/lib")]);
    let index = std::sync::Arc::new(hashi_transfer::SimilarityIndex::new(&[]));
    crate::transfer::load_strategy(init, &scripts, index).with_context(in_run)?;
    Ok(())
}

/// Evaluates models with the run's settings; its key covers the settings, the task data and the held-out text.
struct Evaluator<'a> {
    d: &'a crate::run::decl::EvalDecl,
    data: PathBuf,
    heldout: &'a [(String, PathBuf)],
    key: String,
}

impl<'a> Evaluator<'a> {
    fn new(d: &'a crate::run::decl::EvalDecl, sh: &'a Shared) -> Result<Self> {
        let data = rel(&sh.base, &d.data);
        let mut settings = serde_json::to_value(d)?;
        settings["data"] = json!(data);
        let key = Key::new("eval-settings").value("eval", &settings)?.content(&data)?;
        let key = sh.heldout.iter().try_fold(key, |k, (_, p)| k.content(p))?.finish();
        Ok(Self { d, data, heldout: &sh.heldout, key })
    }

    /// `RUN/evals/LABEL.json` of `t` (a stage; written under a temporary name, renamed when complete).
    fn eval(&self, r: &mut Runner, t: &EvalTarget) -> Result<PathBuf> {
        let d = self.d;
        let file = r.out.join("evals").join(format!("{}.json", t.label));
        std::fs::create_dir_all(file.parent().context("evals")?)?;
        let tmp = hashi_core::tmp_path(&file);
        let mut c = args(&["eval", "--model"]);
        c.extend([s(&t.model), "--data".into(), s(&self.data), "--shots".into(), d.shots.to_string()]);
        c.extend(["--out".into(), s(&tmp), "--bpb-bytes".into(), d.bpb_bytes.to_string()]);
        if !d.tasks.is_empty() {
            c.extend(["--tasks".into(), d.tasks.join(",")]);
        }
        if let Some(n) = d.limit {
            c.extend(["--limit".into(), n.to_string()]);
        }
        if let Some(n) = d.max_gen_toks {
            c.extend(["--max-gen-toks".into(), n.to_string()]);
        }
        if d.truncate_overlong {
            c.push("--truncate-overlong".into());
        }
        for (lang, p) in self.heldout {
            c.extend(["--bpb".into(), format!("{lang}={}", s(p))]);
        }
        let key = Key::new("eval").upstream(&t.key).upstream(&self.key).finish();
        r.stage(&format!("eval-{}", t.label), &key, &[&file], vec![c])?;
        if tmp.exists() {
            std::fs::rename(&tmp, &file)?;
        }
        Ok(file)
    }
}

/// One variant with one seed: its starting point (the transfer, or a random init), its training, and the
/// evaluation of every data-switch checkpoint; returns its entry of `run.json`.
fn train_variant(
    r: &mut Runner,
    d: &RunDecl,
    sh: &Shared,
    ev: &Evaluator,
    v: &crate::run::decl::VariantDecl,
    seed: u64,
    transfer_eval: &Path,
) -> Result<Value> {
    let out = r.out.clone();
    let id = format!("{}-s{seed}", v.name);
    let vdir = out.join("variants").join(&id);
    std::fs::create_dir_all(&vdir)?;
    let curriculum = rel(&sh.base, &v.curriculum);
    let (start, start_key, start_eval) = if v.from_scratch {
        let dir = vdir.join("init");
        let key = Key::new("init").upstream(&sh.transfer_key).value("seed", &seed)?.finish();
        let mut c = args(&["model", "init", "--config"]);
        c.extend([s(&sh.transferred.join("config.json")), "--seed".into(), seed.to_string(), "--out".into()]);
        c.push(s(&dir));
        r.stage(&format!("init-{id}"), &key, &[&dir], vec![c])?;
        for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            std::fs::copy(sh.tok_dir.join(f), dir.join(f))?;
        }
        let e =
            ev.eval(r, &EvalTarget { label: format!("{id}-init"), model: dir.clone(), key: key.clone() })?;
        (dir, key, e)
    } else {
        (sh.transferred.clone(), sh.transfer_key.clone(), transfer_eval.to_path_buf())
    };
    let train_dir = vdir.join("train");
    let exp = experiment_table(d, sh, v, seed, &id, &start, &curriculum, &train_dir);
    let exp_text = format!(
        "-- Written by `hashi run` for variant {id} of {} (regenerated on every run).\nreturn {}\n",
        sh.experiment.display(),
        lua_literal(&Value::Object(exp.clone()))
    );
    let exp_file = vdir.join("experiment.lua");
    std::fs::write(&exp_file, &exp_text)?;
    let mut key = Key::new("train")
        .upstream(&start_key)
        .upstream(&sh.shards_key)
        .value("experiment", &exp_text)?
        .content(&curriculum)?;
    let schedule = exp["schedule"]["script"].as_str().map(PathBuf::from).unwrap_or_default();
    for f in [&curriculum, &schedule].into_iter().filter(|p| p.is_file()).flat_map(|p| script_files(p)) {
        key = key.content(&f)?;
    }
    let train_key = key.finish();
    let (exp_s, train_s) = (s(&exp_file), s(&train_dir));
    r.stage_with(&format!("train-{id}"), &train_key, &[&train_dir], true, |resuming| {
        if resuming && hashi_train::latest_checkpoint(&train_dir).is_some() {
            vec![args(&["train", "--resume", &train_s])]
        } else {
            // Killed before its first checkpoint: nothing to continue, start clean.
            let _ = std::fs::remove_dir_all(&train_dir);
            vec![args(&["train", &exp_s])]
        }
    })?;
    // Every data switch (and the end) is a kept checkpoint; evaluate each.
    let mut points = vec![json!({"step": 0, "tokens": 0, "eval": rel_to(&out, &start_eval)})];
    for ckpt in phase_checkpoints(&train_dir)? {
        let name = ckpt.file_name().and_then(|n| n.to_str()).context("checkpoint name")?.to_string();
        let state: hashi_train::TrainerState =
            serde_json::from_str(&std::fs::read_to_string(ckpt.join("trainer_state.json"))?)?;
        let target = EvalTarget {
            label: format!("{id}-{name}"),
            model: ckpt.clone(),
            key: Key::new("checkpoint").upstream(&train_key).value("name", &name)?.finish(),
        };
        let e = ev.eval(r, &target)?;
        points.push(json!({
            "step": state.step, "tokens": state.tokens_by_lang.values().sum::<u64>(),
            "tokens_by_lang": state.tokens_by_lang, "phase": state.cursor.phase,
            "checkpoint": rel_to(&out, &ckpt), "eval": rel_to(&out, &e),
        }));
    }
    let last = hashi_train::latest_checkpoint(&train_dir).context("no checkpoint after training")?;
    Ok(json!({
        "id": id, "name": v.name, "label": v.label.clone().unwrap_or_else(|| v.name.clone()), "seed": seed,
        "from_scratch": v.from_scratch, "curriculum": curriculum, "train": rel_to(&out, &train_dir),
        "plan": rel_to(&out, &last.join("plan.json")), "checkpoints": points,
    }))
}

/// Checks everything of a run file that can be checked without running a stage, in well under a second: every
/// variant's training settings (the run's `train` merged with the variant's, read as `hashi train` will read
/// them), the task names, and the files the run names. Errors name the run file and the field.
fn validate(d: &RunDecl, experiment: &Path, base: &Path) -> Result<()> {
    let file = experiment.display();
    for (i, v) in d.variants.iter().enumerate() {
        let mut exp = d.train.clone();
        exp.extend(v.train.clone());
        for (k, placeholder) in [("name", "check"), ("shards", "-"), ("curriculum", "-"), ("out", "-")] {
            exp.insert(k.into(), json!(placeholder));
        }
        serde_json::from_value::<crate::train::ExperimentDecl>(Value::Object(exp)).map_err(|e| {
            anyhow::anyhow!(
                "{file}: train (merged with variants[{}].train, variant {:?}): {e}",
                i + 1,
                v.name
            )
        })?;
        let curriculum = rel(base, &v.curriculum);
        if !curriculum.is_file() {
            bail!("{file}: variants[{}].curriculum: {} is not a file", i + 1, curriculum.display());
        }
    }
    if let Some(Value::String(p)) = d.train.get("schedule").and_then(|s| s.get("script")) {
        let script = rel(base, p);
        if !script.is_file() {
            bail!("{file}: train.schedule.script: {} is not a file", script.display());
        }
    }
    for (i, t) in d.eval.tasks.iter().enumerate() {
        if hashi_eval::Task::from_name(t).is_none() {
            let known: Vec<&str> = hashi_eval::Task::ALL.iter().map(|(n, _)| *n).collect();
            bail!("{file}: eval.tasks[{}]: unknown task {t:?} (known: {})", i + 1, known.join(", "));
        }
    }
    Ok(())
}

/// A variant's training experiment: the run's `train` fields, the variant's, then the run's own wiring (model,
/// tokenizer, shards, curriculum, output, and the seed as a plan override).
#[allow(clippy::too_many_arguments)]
fn experiment_table(
    d: &RunDecl,
    sh: &Shared,
    v: &crate::run::decl::VariantDecl,
    seed: u64,
    id: &str,
    start: &Path,
    curriculum: &Path,
    train_dir: &Path,
) -> serde_json::Map<String, Value> {
    let mut exp = d.train.clone();
    exp.extend(v.train.clone());
    if let Some(Value::Object(sched)) = exp.get_mut("schedule")
        && let Some(Value::String(p)) = sched.get("script").cloned()
    {
        sched.insert("script".into(), json!(rel(&sh.base, &p)));
    }
    let mut overrides = match exp.remove("plan_overrides") {
        Some(Value::Object(o)) => o,
        _ => serde_json::Map::new(),
    };
    overrides.insert("seed".into(), json!(seed));
    exp.insert("plan_overrides".into(), Value::Object(overrides));
    exp.insert("name".into(), json!(format!("{} {id}", d.name)));
    exp.insert("model".into(), json!(start));
    exp.insert("tokenizer".into(), json!(sh.tok_dir));
    exp.insert("shards".into(), json!(sh.shards));
    exp.insert("curriculum".into(), json!(curriculum));
    exp.insert("out".into(), json!(train_dir));
    exp
}

/// The CPU model and the threads available, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|p| p.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {threads} threads")
}

/// `path` relative to the run directory (the index stays valid when the directory moves).
fn rel_to(out: &Path, path: &Path) -> String {
    path.strip_prefix(out).unwrap_or(path).display().to_string()
}

/// Seconds of every finished stage, by stage id.
fn stage_seconds(out: &Path) -> Result<serde_json::Map<String, Value>> {
    let mut m = serde_json::Map::new();
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(out.join("stages"))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if let (Some(id), Some(mk)) = (p.file_stem().and_then(|s| s.to_str()), stage::Marker::read(&p))
            && mk.finished
        {
            m.insert(id.to_string(), json!(mk.seconds));
        }
    }
    Ok(m)
}

/// The checkpoints that end a phase, in step order.
fn phase_checkpoints(train_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(train_dir.join("ckpt"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("DONE").is_file())
        .collect();
    dirs.sort();
    let mut out = vec![];
    for d in dirs {
        let state: hashi_train::TrainerState =
            serde_json::from_str(&std::fs::read_to_string(d.join("trainer_state.json"))?)
                .with_context(|| d.display().to_string())?;
        if state.phase_end {
            out.push(d);
        }
    }
    Ok(out)
}

/// A script and every module it requires (the script alone if it does not load: its stage reports the error).
fn script_files(path: &Path) -> Vec<PathBuf> {
    Script::load(path, &ScriptOptions::default())
        .map(|s| s.files())
        .unwrap_or_else(|_| vec![path.to_path_buf()])
}

/// Files named by a corpora declaration (globs expanded).
fn corpus_files(corpora: &Path) -> Result<Vec<PathBuf>> {
    let decls: Vec<hashi_data::CorpusDecl> = Script::load(corpora, &ScriptOptions::default())?.exports()?;
    let base = corpora.parent().map(PathBuf::from).unwrap_or_default();
    let mut files = vec![];
    for d in decls {
        for p in &d.paths {
            files.extend(expand(&base.join(p))?);
        }
    }
    Ok(files)
}

fn expand(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let mut files: Vec<PathBuf> =
        glob::glob(&text).with_context(|| format!("bad pattern {text}"))?.filter_map(|p| p.ok()).collect();
    if files.is_empty() {
        bail!("{text}: no such file");
    }
    files.sort();
    Ok(files)
}
