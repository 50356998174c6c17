//! The training stage (`hashi train`, and every variant of `hashi run`): curriculum continued pretraining on the
//! CPU backend or a plugin backend, with the learning-rate schedule and the curriculum as hot-reloaded Lua
//! policies, checkpoints at every data switch, and resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hashi_core::Reporter;
use hashi_model::{Llama, LlamaConfig, ParamStore};
use hashi_script::{HotScript, Reload, Script, ScriptOptions};
use hashi_train::{Backend, CpuBackend, LrSchedule, StepInfo, Trainer, TrainerOptions, TrainerState};
use serde::{Deserialize, Serialize};

use crate::experiment::{ExperimentDecl, Start};
use crate::plan::PlanOverrides;

/// The schedule script, followed on disk unless frozen.
struct LuaSchedule {
    hot: HotScript,
    params: serde_json::Map<String, serde_json::Value>,
}

/// The largest learning rate a schedule may answer: AdamW moves every weight by about `lr` per step, so
/// anything above this (a misplaced exponent, a schedule's arithmetic gone wrong) destroys the model rather than
/// training it. Steps that large, short of it, are still caught by the loss-spike check.
const MAX_LR: f64 = 10.0;

/// Why `lr` is not a usable learning rate, if it is not.
fn bad_lr(lr: f64) -> Option<String> {
    if !lr.is_finite() {
        Some(format!("the learning rate {lr} is not a finite number"))
    } else if lr < 0.0 {
        Some(format!("the learning rate {lr} is negative"))
    } else if lr > MAX_LR {
        Some(format!("the learning rate {lr:e} is above {MAX_LR} (check max_lr in schedule.params)"))
    } else {
        None
    }
}

/// The schedule parameters of the step `at`: the experiment's `params`, with those the step's phase sets in its
/// `training.schedule` in their place.
pub(crate) fn phase_params(
    params: &serde_json::Map<String, serde_json::Value>,
    at: &StepInfo,
) -> serde_json::Map<String, serde_json::Value> {
    let mut p = params.clone();
    p.extend(at.schedule_params.iter().map(|(k, v)| (k.clone(), v.clone())));
    p
}

impl LrSchedule for LuaSchedule {
    fn lr(&mut self, at: &StepInfo) -> hashi_train::Result<f64> {
        let script = self.hot.script();
        // The experiment's parameters as they are, unless the phase replaces some (no copy per step).
        let own;
        let params = if at.schedule_params.is_empty() {
            &self.params
        } else {
            own = phase_params(&self.params, at);
            &own
        };
        let lr: f64 =
            script.call("lr", &[at, params]).map_err(|e| hashi_train::TrainError::State(e.to_string()))?;
        match bad_lr(lr) {
            None => Ok(lr),
            Some(m) => Err(hashi_train::TrainError::State(format!(
                "{}: lr() at step {}: {m}",
                script.path().display(),
                at.step
            ))),
        }
    }

    fn poll(&mut self) -> u64 {
        if let Reload::Rejected(e) = self.hot.poll() {
            tracing::error!("schedule edit rejected, keeping generation {}: {e}", self.hot.generation());
        }
        self.hot.generation()
    }
}

/// The curriculum, followed on disk unless frozen: every edit is resolved against the shards before it counts.
struct LuaPlan {
    hot: HotScript,
    manifest: hashi_data::Manifest,
    overrides: PlanOverrides,
}

impl hashi_train::PlanUpdates for LuaPlan {
    fn poll(&mut self) -> Option<std::result::Result<hashi_data::ResolvedPlan, String>> {
        match self.hot.poll() {
            Reload::Unchanged => None,
            Reload::Rejected(e) => Some(Err(e.to_string())),
            Reload::Swapped { .. } => Some(
                crate::plan::plan_decl(self.hot.script(), &self.overrides)
                    .map_err(|e| e.to_string())
                    .and_then(|d| hashi_data::resolve(&d, &self.manifest).map_err(|e| e.to_string())),
            ),
        }
    }
}

fn plan_loader(manifest: hashi_data::Manifest, overrides: PlanOverrides) -> hashi_script::Loader {
    Box::new(move |path, opts| {
        let s = Script::load(path, opts)?;
        let decl = crate::plan::plan_decl(&s, &overrides)?;
        hashi_data::resolve(&decl, &manifest).map_err(|e| hashi_script::ScriptError::Decode {
            path: path.into(),
            what: "plan".into(),
            message: e.to_string(),
        })?;
        Ok(s)
    })
}

/// A schedule that declares its parameters (`params = { name = "what it is", ... }`) gets exactly those: a name
/// it does not declare (a misspelt `max_Lr`) or one it declares but is not given is an error naming the script
/// and the parameter, before `lr` runs. A schedule without `params` reads whatever it is given.
fn check_schedule_params(
    s: &Script,
    path: &Path,
    params: &serde_json::Map<String, serde_json::Value>,
) -> hashi_script::Result<()> {
    let Some(declared) = s.field::<Option<BTreeMap<String, String>>>("params")? else { return Ok(()) };
    let err = |message: String| hashi_script::ScriptError::Decode {
        path: path.into(),
        what: "schedule.params".into(),
        message,
    };
    let names = || declared.keys().cloned().collect::<Vec<_>>().join(", ");
    if let Some(k) = params.keys().find(|k| !declared.contains_key(*k)) {
        return Err(err(format!("unknown parameter {k:?}: this schedule takes {}", names())));
    }
    if let Some((k, what)) = declared.iter().find(|(k, _)| !params.contains_key(*k)) {
        return Err(err(format!("missing parameter {k:?} ({what}): this schedule takes {}", names())));
    }
    Ok(())
}

fn schedule_loader(params: serde_json::Map<String, serde_json::Value>) -> hashi_script::Loader {
    Box::new(move |path, opts| {
        let s = Script::load(path, opts)?;
        check_schedule_params(&s, path, &params)?;
        // Self-check: the hook answers a finite, non-negative number on probe inputs.
        for (step, phase_step, phase_steps) in [(0u64, 0u64, 10u64), (5, 5, 10), (9, 9, 10)] {
            let probe = StepInfo {
                step,
                total_steps: 10,
                phase: 0,
                phase_step,
                phase_steps,
                steps_per_phase: vec![10],
                phases: vec![hashi_train::PhaseSpan { name: "probe".into(), first_step: 0, steps: 10 }],
                schedule_params: BTreeMap::new(),
            };
            let lr: f64 = s.call("lr", &[&probe, &params])?;
            if let Some(m) = bad_lr(lr) {
                return Err(hashi_script::ScriptError::Decode {
                    path: path.into(),
                    what: "lr()".into(),
                    message: format!("probe step {step} of 10: {m}"),
                });
            }
        }
        Ok(s)
    })
}

pub(crate) fn must_exist(p: &Path, what: &str, origin: &Path) -> Result<()> {
    if !p.exists() {
        bail!("{}: {what} {} does not exist", origin.display(), p.display());
    }
    Ok(())
}

/// How a training runs besides its experiment.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the latest complete checkpoint of the run folder.
    pub resume: bool,
    /// Do not follow edits of the schedule and curriculum scripts.
    pub freeze_scripts: bool,
    /// Stop after this many optimizer steps (the run can be resumed).
    pub stop_after: Option<u64>,
    /// On resume, continue although the schedule gives other learning rates for steps already taken.
    pub override_schedule: bool,
    /// Plugin libraries to load besides the discovered ones (for a plugin `backend`).
    pub plugins: Vec<PathBuf>,
}

/// `RUN/experiment.json`: the experiment a run folder trains, so that `hashi train --resume RUN` needs nothing
/// else. `file` is the experiment file it came from (none for a `hashi run` variant).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExperimentRecord {
    /// The experiment file, if the experiment came from one.
    pub experiment: Option<PathBuf>,
    /// The experiment with absolute paths.
    pub settings: ExperimentDecl,
}

impl ExperimentRecord {
    /// Reads `RUN/experiment.json`.
    pub fn read(run_dir: &Path) -> Result<Self> {
        let p = run_dir.join("experiment.json");
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!("{}: not a run directory (cannot read {})", run_dir.display(), p.display())
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not the JSON that `hashi train` writes", p.display()))
    }
}

/// Loads `exp`'s schedule as training will (declared parameters, the self-check of `lr`), once with the
/// experiment's parameters and once more for every phase of `plan` that sets its own (`training.schedule`): a run
/// checks every variant's schedule and curriculum this way before any stage.
pub fn check_schedule(exp: &ExperimentDecl, plan: &hashi_data::PlanDecl) -> Result<()> {
    let path = PathBuf::from(&exp.schedule.script);
    schedule_loader(exp.schedule.params.clone())(&path, &ScriptOptions::default())?;
    for p in &plan.phases {
        let Some(own) = p.training.as_ref().map(|t| &t.schedule).filter(|s| !s.is_empty()) else { continue };
        let mut params = exp.schedule.params.clone();
        params.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        schedule_loader(params)(&path, &ScriptOptions::default())
            .with_context(|| format!("{}: phase {}: training.schedule", exp.curriculum, p.name))?;
    }
    Ok(())
}

/// Reads an experiment file (paths made absolute against its folder) and checks its settings.
pub fn load_experiment(path: &Path) -> Result<(ExperimentDecl, String)> {
    let script = Script::load(path, &ScriptOptions::default())?;
    let exp: ExperimentDecl = script.exports()?;
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    let exp = exp.resolved(&base);
    exp.validate(path)?;
    Ok((exp, script.hash().to_string()))
}

/// Trains `exp` (absolute paths; `origin` names where it came from in messages; `hash` is recorded with the
/// scripts' hashes) and returns the final state.
pub fn train(
    exp: &ExperimentDecl,
    origin: &Path,
    hash: &str,
    opts: &TrainOptions,
    progress: &dyn Reporter,
) -> Result<TrainerState> {
    let experiment = origin;
    let (shards, curriculum, schedule_path, out) = (
        PathBuf::from(&exp.shards),
        PathBuf::from(&exp.curriculum),
        PathBuf::from(&exp.schedule.script),
        PathBuf::from(&exp.out),
    );
    must_exist(&shards.join("manifest.json"), "shards manifest", experiment)?;
    must_exist(&curriculum, "curriculum", experiment)?;
    must_exist(&schedule_path, "schedule script", experiment)?;
    let plan = crate::plan::load_plan(&curriculum, &shards, &exp.plan_overrides)?;
    check_schedule(exp, &plan.decl)?;
    if exp.backend == "cpu" && !exp.backend_options.is_empty() {
        bail!("{}: backend_options are for plugin backends; \"cpu\" takes none", experiment.display());
    }
    let accumulation = exp.accumulation_for(&plan, experiment)?;
    // The run folder is ours until we return (a second process on it is refused; the trainer shares this lock).
    // A folder made here for the lock is removed again if the experiment is refused below.
    let made_folder = !out.exists();
    std::fs::create_dir_all(&out).with_context(|| {
        format!("{}: cannot create the run folder `out` = {}", experiment.display(), out.display())
    })?;
    let _lock = hashi_train::RunLock::acquire(&out)?;
    let resume_from = if opts.resume {
        let ckpt = hashi_train::latest_checkpoint(&out)
            .with_context(|| format!("{}: no complete checkpoint to resume from", out.display()))?;
        tracing::info!(checkpoint = %ckpt.display(), "resuming");
        Some(ckpt)
    } else {
        if out.join("ckpt").join("latest").exists() {
            bail!("{}: a run exists there; use --resume to continue it", out.display());
        }
        None
    };
    // A resume starts from its checkpoint (the source model may be gone by then).
    let (source, mut extra_files) = match &resume_from {
        Some(ckpt) => (ModelSource::Dir(ckpt.clone()), tokenizer_files(ckpt)),
        None => match exp.start(experiment)? {
            Start::Model(dir) => {
                let files = tokenizer_files(&dir);
                (ModelSource::Dir(dir), files)
            }
            Start::Init(cfg_path, seed) => {
                let cfg = LlamaConfig::from_file(&cfg_path)?.to_config(&cfg_path)?;
                (ModelSource::Random(Box::new(cfg), seed), vec![])
            }
        },
    };
    if let Some(t) = &exp.tokenizer {
        let dir = PathBuf::from(t);
        must_exist(&dir, "tokenizer", experiment)?;
        extra_files = tokenizer_files(&dir);
    }
    // The transfer report says which vocabulary rows are new (a phase may train only those); a checkpoint
    // carries it on, so that a resume needs no source model.
    let report_dir = match (&resume_from, exp.start(experiment)) {
        (Some(ckpt), _) => Some(ckpt.clone()),
        (None, Ok(Start::Model(dir))) => Some(dir),
        _ => None,
    };
    let report = report_dir.map(|d| d.join(hashi_transfer::REPORT_FILE)).filter(|p| p.is_file());
    if let Some(r) = &report {
        extra_files.push(r.clone());
    }
    // Freeze prefixes and row ranges, and the phases' own parameter prefixes, are checked against the parameters
    // of the model to train.
    let shapes = source.shapes()?;
    let checked =
        exp.optimizer.check_params(&shapes).map_err(|m| format!("{}: {m}", experiment.display())).and_then(
            |()| {
                plan.phases.iter().try_for_each(|p| match &p.training {
                Some(t) if t.new_rows_only && report.is_none() => Err(format!(
                    "{}: phase {} sets training.new_rows_only, but the model has no {} (it was not made by \
                     `hashi transfer`, so no row is known to be new)",
                    curriculum.display(),
                    p.name,
                    hashi_transfer::REPORT_FILE
                )),
                Some(t) => {
                    t.check_params(&p.name, &shapes).map_err(|m| format!("{}: {m}", curriculum.display()))
                }
                None => Ok(()),
            })
            },
        );
    if let Err(m) = checked {
        if made_folder {
            drop(_lock);
            let _ = std::fs::remove_dir_all(&out);
        }
        bail!("{m}");
    }
    let held_out = match &exp.eval {
        Some(ev) => held_out_sets(ev, &extra_files, &source.config()?, experiment)?,
        None => vec![],
    };
    let matched_rows = match &report {
        Some(r) => Some(
            hashi_transfer::TransferReport::read(r.parent().context("report folder")?)
                .map_err(anyhow::Error::msg)?
                .matched_rows(),
        ),
        None => None,
    };
    let model_vocab =
        shapes.iter().find(|(n, _)| n == "model.embed_tokens.weight").and_then(|(_, d)| d.first().copied());
    let abs = std::fs::canonicalize(experiment).ok().filter(|p| p.extension().is_some_and(|e| e == "lua"));
    let record = ExperimentRecord { experiment: abs, settings: exp.clone() };
    let exp_json = out.join("experiment.json");
    hashi_core::write_atomic(&exp_json, (serde_json::to_string_pretty(&record)? + "\n").as_bytes())
        .with_context(|| format!("writing {}", exp_json.display()))?;
    let registry;
    let mut backend: Box<dyn Backend> = if exp.backend == "cpu" {
        Box::new(CpuBackend::new(source.load()?, exp.optimizer.clone()))
    } else {
        registry = hashi_plugin_host::Registry::discover(&opts.plugins, &hashi_plugin_host::default_dirs())?;
        let plugin = registry.backend(&exp.backend).with_context(|| experiment.display().to_string())?;
        let mut options = exp.backend_options.clone();
        options.insert("optimizer".into(), serde_json::to_value(&exp.optimizer)?);
        let dir = source.dir(&out)?;
        let b = plugin.isolated_backend(&dir, &serde_json::Value::Object(options).to_string())?;
        tracing::info!(backend = %b.name(), plugin = %plugin.info().path.display(), "plugin backend");
        b
    };
    let state: Option<TrainerState> = match &resume_from {
        Some(ckpt) => {
            backend.load_optimizer(ckpt)?;
            Some(TrainerState::read(ckpt).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let hot = HotScript::new(
        &schedule_path,
        ScriptOptions::default(),
        schedule_loader(exp.schedule.params.clone()),
        opts.freeze_scripts,
    )?;
    let mut scripts: BTreeMap<String, String> = BTreeMap::new();
    scripts.insert("experiment".to_string(), hash.to_string());
    scripts.insert("schedule".to_string(), hot.script().hash().to_string());
    let mut schedule = LuaSchedule { hot, params: exp.schedule.params.clone() };
    let ck = exp.checkpoint.clone().unwrap_or_default();
    let stop = exp.stop.clone().unwrap_or_default();
    let topts = TrainerOptions {
        out: out.clone(),
        accumulation,
        checkpoint_every: ck.every,
        keep_last: ck.keep,
        spike_factor: stop.spike,
        max_bad_steps: stop.max_bad_steps,
        extra_files,
        script_hashes: scripts.clone(),
        stop_after: opts.stop_after,
        optimizer_state_latest_only: ck.optimizer_state == crate::experiment::OptimizerState::Latest,
        matched_rows,
        held_out,
        eval_every: exp.eval.as_ref().map_or(0, |e| e.every),
        override_schedule: opts.override_schedule,
    };
    let steps: u64 = hashi_train::steps_per_phase(&plan, accumulation)?.iter().sum();
    tracing::info!(experiment = %exp.name, steps, "training");
    let manifest = hashi_data::Manifest::load(&shards)?;
    if let (Some(v), Some(rows)) = (manifest.vocab_size, model_vocab)
        && v > rows as u64
    {
        bail!(
            "{}: the shards were prepared with a tokenizer of {v} entries, but the model has {rows} embedding rows",
            shards.join("manifest.json").display()
        );
    }
    if let Some(s) = &state {
        // A resumed run must agree with its checkpoint on every phase already started.
        let ckpt = resume_from.as_ref().map(|c| c.join("plan.json")).context("checkpoint")?;
        let text = std::fs::read_to_string(&ckpt)
            .with_context(|| format!("reading {} (the checkpoint's plan)", ckpt.display()))?;
        let old: hashi_data::ResolvedPlan = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a resolved plan", ckpt.display()))?;
        if old.keeps_started_phases(&plan, &s.cursor).is_err() {
            bail!(
                "{}: the curriculum changed phases that the checkpoint already started",
                curriculum.display()
            );
        }
    }
    let hot_plan = HotScript::new(
        &curriculum,
        ScriptOptions::default(),
        plan_loader(manifest.clone(), exp.plan_overrides.clone()),
        opts.freeze_scripts,
    )?;
    scripts.insert("curriculum".to_string(), hot_plan.script().hash().to_string());
    let mut lua_plan = LuaPlan { hot: hot_plan, manifest, overrides: exp.plan_overrides.clone() };
    let topts = TrainerOptions { script_hashes: scripts, ..topts };
    let trainer =
        Trainer::new(&mut *backend, &mut schedule, plan, &shards, topts, state, Some(&mut lua_plan))?;
    let final_state = trainer.run(progress)?;
    write_plots(&out)?;
    Ok(final_state)
}

/// The in-loop evaluation's held-out text, tokenized once with the training's tokenizer (the folder of the
/// `tokenizer.json` among `files`) into the windows the evaluation stage scores for `cfg`'s model.
fn held_out_sets(
    ev: &crate::experiment::InLoopEvalDecl,
    files: &[PathBuf],
    cfg: &hashi_model::Config,
    experiment: &Path,
) -> Result<Vec<hashi_core::heldout::HeldOutSet>> {
    let dir = files
        .iter()
        .find(|f| f.file_name().is_some_and(|n| n == "tokenizer.json"))
        .and_then(|f| f.parent())
        .with_context(|| {
            format!(
                "{}: eval needs a tokenizer (give `tokenizer`, or a model with one)",
                experiment.display()
            )
        })?;
    let tok = hashi_tokenizer::Tokenizer::from_file(dir)?;
    let specs: Vec<hashi_tokenizer::input::InputSpec> =
        ev.bpb.iter().map(|b| b.parse().map_err(anyhow::Error::msg)).collect::<Result<_>>()?;
    let texts = hashi_tokenizer::input::read_inputs(&specs)
        .with_context(|| format!("{}: eval.bpb", experiment.display()))?;
    let window = cfg.max_position_embeddings;
    let separator = cfg.eos_token_ids.first().copied();
    let sets = texts
        .iter()
        .map(|t| hashi_eval::held_out(&tok, &t.lang, &t.docs, ev.bpb_bytes, window, separator))
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(|m| anyhow::anyhow!("{}: eval.bpb: {m}", experiment.display()))?;
    for s in &sets {
        tracing::info!(lang = %s.lang, windows = s.windows.len(), bytes = s.bytes, "in-loop held-out text");
    }
    Ok(sets)
}

/// Where the weights to train come from.
enum ModelSource {
    /// An HF directory (a source model or a checkpoint).
    Dir(PathBuf),
    /// Random initialisation of a config with a seed (training from scratch).
    Random(Box<hashi_model::Config>, u64),
}

impl ModelSource {
    /// The model's config (no weights are read).
    fn config(&self) -> Result<hashi_model::Config> {
        Ok(match self {
            ModelSource::Dir(d) => {
                let p = d.join("config.json");
                LlamaConfig::from_file(&p)?.to_config(&p)?
            }
            ModelSource::Random(cfg, _) => (**cfg).clone(),
        })
    }

    /// The name and shape of every parameter (from the config; no weights are read).
    fn shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        Ok(hashi_model::param_shapes(&self.config()?))
    }

    /// The model, in memory (built-in backend).
    fn load(self) -> Result<Llama> {
        Ok(match self {
            ModelSource::Dir(d) => Llama::load(&d)?,
            ModelSource::Random(cfg, seed) => Llama::new(*cfg.clone(), ParamStore::random(&cfg, seed)?)?,
        })
    }

    /// The model as a directory (plugin backends load weights themselves): a random init is written to
    /// `out/init` first.
    fn dir(self, out: &Path) -> Result<PathBuf> {
        match self {
            ModelSource::Dir(d) => Ok(d),
            ModelSource::Random(cfg, seed) => {
                let dir = out.join("init");
                let params = ParamStore::random(&cfg, seed)?;
                hashi_model::save_pretrained(
                    &cfg,
                    &params,
                    &dir,
                    hashi_model::SaveOptions::default(),
                    &hashi_core::NoReporter,
                )?;
                Ok(dir)
            }
        }
    }
}

fn tokenizer_files(dir: &Path) -> Vec<PathBuf> {
    hashi_tokenizer::TOKENIZER_FILES.iter().map(|f| dir.join(f)).filter(|p| p.is_file()).collect()
}

/// `plots/loss.svg`, `plots/lr.svg` and `plots/mix_LANG.svg` (the share of each language among the tokens seen
/// so far) from `metrics.jsonl`, with the data switches marked.
fn write_plots(out: &Path) -> Result<()> {
    use hashi_report::svg::{Series, lines};
    let metrics =
        hashi_core::artifacts::Metrics::read_all(&out.join("metrics.jsonl")).map_err(anyhow::Error::msg)?;
    let bounds: Vec<f64> =
        metrics.windows(2).filter(|w| w[0].phase != w[1].phase).map(|w| w[0].step as f64 + 0.5).collect();
    let one = |name: &str, points: Vec<(f64, f64)>| vec![Series { name: name.into(), points, dashed: false }];
    let dir = out.join("plots");
    std::fs::create_dir_all(&dir)?;
    let write = |file: String, svg: String| {
        std::fs::write(dir.join(&file), svg).with_context(|| format!("writing {}", dir.join(&file).display()))
    };
    let loss = metrics.iter().filter_map(|m| m.loss.map(|l| (m.step as f64, l))).collect();
    write("loss.svg".into(), lines("training loss", "step", "loss", &one("loss", loss), false, &bounds))?;
    let lr = metrics.iter().map(|m| (m.step as f64, m.lr)).collect();
    write("lr.svg".into(), lines("learning rate", "step", "lr", &one("lr", lr), false, &bounds))?;
    let langs: Vec<String> =
        metrics.last().map(|m| m.tokens_by_lang.keys().cloned().collect()).unwrap_or_default();
    for lang in langs {
        let share = metrics
            .iter()
            .map(|m| {
                let total: u64 = m.tokens_by_lang.values().sum();
                (
                    m.step as f64,
                    m.tokens_by_lang.get(&lang).copied().unwrap_or(0) as f64 / total.max(1) as f64,
                )
            })
            .collect();
        let title = format!("share of {lang} tokens seen so far");
        write(format!("mix_{lang}.svg"), lines(&title, "step", "share", &one(&lang, share), false, &bounds))?;
    }
    Ok(())
}
