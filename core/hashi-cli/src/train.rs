//! `hashi train EXPERIMENT.lua`: curriculum continued pretraining on the CPU backend, with the learning-rate
//! schedule as a hot-reloaded Lua policy, checkpoints at every data switch, and `--resume`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_model::{Llama, LlamaConfig, ParamStore};
use hashi_script::{HotScript, Reload, Script, ScriptOptions};
use hashi_train::{
    AdamWConfig, Backend, CpuBackend, LrSchedule, StepInfo, Trainer, TrainerOptions, TrainerState,
};
use serde::Deserialize;

#[derive(Args)]
pub struct TrainArgs {
    /// The experiment (Lua): model or init, shards, curriculum, schedule, optimizer, checkpoints, out.
    /// Optional with `--resume RUN_DIR`, which remembers it.
    experiment: Option<PathBuf>,
    /// Continue from the latest complete checkpoint: of the experiment's run directory, or of RUN_DIR.
    #[arg(long, num_args = 0..=1, value_name = "RUN_DIR")]
    resume: Option<Option<PathBuf>>,
    /// Do not follow edits of the schedule script.
    #[arg(long)]
    freeze_scripts: bool,
    /// Stop after this many optimizer steps (the run can be resumed).
    #[arg(long)]
    stop_after: Option<u64>,
    #[command(flatten)]
    plugins: crate::plugins::PluginArgs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InitDecl {
    pub(crate) config: String,
    #[serde(default)]
    pub(crate) seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleDecl {
    pub(crate) script: String,
    pub(crate) params: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointDecl {
    #[serde(default)]
    every: u64,
    #[serde(default = "default_keep")]
    keep: usize,
}

fn default_keep() -> usize {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StopDecl {
    #[serde(default = "default_spike")]
    spike: f64,
    #[serde(default = "default_bad")]
    max_bad_steps: usize,
}

fn default_spike() -> f64 {
    3.0
}
fn default_bad() -> usize {
    3
}

/// What an experiment file returns (paths relative to it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExperimentDecl {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) init: Option<InitDecl>,
    /// Tokenizer directory whose files go into every checkpoint (default: the model's own).
    #[serde(default)]
    pub(crate) tokenizer: Option<String>,
    pub(crate) shards: String,
    pub(crate) curriculum: String,
    pub(crate) schedule: ScheduleDecl,
    #[serde(default)]
    pub(crate) optimizer: AdamWConfig,
    #[serde(default = "one")]
    pub(crate) accumulation: usize,
    /// Tokens per optimizer step; sets the accumulation (a multiple of the plan's batch of tokens).
    #[serde(default)]
    pub(crate) batch_tokens: Option<u64>,
    /// Compute backend: the built-in "cpu", or the name of a backend plugin.
    #[serde(default = "cpu")]
    pub(crate) backend: String,
    /// Options for a plugin backend (a table, passed as JSON next to `optimizer`).
    #[serde(default)]
    pub(crate) backend_options: serde_json::Map<String, serde_json::Value>,
    /// Cluster layout for `hashi export` (nodes, devices, parallelism); ignored by `hashi train`.
    #[serde(default)]
    pub(crate) cluster: hashi_core::Cluster,
    /// Replaces top-level fields of the curriculum (sizes, seed): one data plan at several scales.
    #[serde(default)]
    pub(crate) plan_overrides: crate::data::PlanOverrides,
    #[serde(default)]
    pub(crate) checkpoint: Option<CheckpointDecl>,
    #[serde(default)]
    pub(crate) stop: Option<StopDecl>,
    pub(crate) out: String,
}

impl ExperimentDecl {
    /// Checks the settings that need no model or plan: accumulation and batch_tokens, the optimizer's numbers,
    /// checkpoint retention and the stop rule. Messages name the experiment file and the setting.
    pub(crate) fn validate(&self, experiment: &Path) -> Result<()> {
        let e = experiment.display();
        if self.accumulation == 0 {
            bail!("{e}: accumulation = 0; the micro-batches per optimizer step must be at least 1");
        }
        if self.batch_tokens == Some(0) {
            bail!("{e}: batch_tokens = 0; the tokens per optimizer step must be positive");
        }
        self.optimizer.validate().map_err(|m| anyhow::anyhow!("{e}: {m}"))?;
        if let Some(c) = &self.checkpoint
            && c.keep == 0
        {
            bail!(
                "{e}: checkpoint.keep = 0; at least the latest checkpoint must be kept (keep >= 1) to resume"
            );
        }
        if let Some(st) = &self.stop
            && (st.spike.is_nan() || st.spike <= 1.0)
        {
            bail!(
                "{e}: stop.spike = {}; it must be above 1 (a step is skipped when its loss exceeds spike x the \
                 running mean; math.huge turns the check off)",
                st.spike
            );
        }
        Ok(())
    }

    /// Micro-batches per optimizer step: `accumulation`, or `batch_tokens` over the plan's batch.
    pub(crate) fn accumulation_for(
        &self,
        plan: &hashi_data::ResolvedPlan,
        experiment: &Path,
    ) -> Result<usize> {
        Ok(match self.batch_tokens {
            None => self.accumulation,
            Some(t) if t > 0 && t % plan.tokens_per_batch() == 0 => (t / plan.tokens_per_batch()) as usize,
            Some(t) => bail!(
                "{}: batch_tokens {t} is not a multiple of the plan's batch ({} tokens)",
                experiment.display(),
                plan.tokens_per_batch()
            ),
        })
    }
}

fn one() -> usize {
    1
}

fn cpu() -> String {
    "cpu".into()
}

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

impl LrSchedule for LuaSchedule {
    fn lr(&mut self, at: &StepInfo) -> hashi_train::Result<f64> {
        let script = self.hot.script();
        let lr: f64 = script
            .call("lr", &[at, &self.params])
            .map_err(|e| hashi_train::TrainError::State(e.to_string()))?;
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
    overrides: crate::data::PlanOverrides,
}

impl hashi_train::PlanUpdates for LuaPlan {
    fn poll(&mut self) -> Option<std::result::Result<hashi_data::ResolvedPlan, String>> {
        match self.hot.poll() {
            Reload::Unchanged => None,
            Reload::Rejected(e) => Some(Err(e.to_string())),
            Reload::Swapped { .. } => Some(
                crate::data::plan_decl(self.hot.script(), &self.overrides)
                    .map_err(|e| e.to_string())
                    .and_then(|d| hashi_data::resolve(&d, &self.manifest).map_err(|e| e.to_string())),
            ),
        }
    }
}

fn plan_loader(
    manifest: hashi_data::Manifest,
    overrides: crate::data::PlanOverrides,
) -> hashi_script::Loader {
    Box::new(move |path, opts| {
        let s = Script::load(path, opts)?;
        let decl = crate::data::plan_decl(&s, &overrides)?;
        hashi_data::resolve(&decl, &manifest).map_err(|e| hashi_script::ScriptError::Decode {
            path: path.into(),
            what: "plan".into(),
            message: e.to_string(),
        })?;
        Ok(s)
    })
}

fn schedule_loader(params: serde_json::Map<String, serde_json::Value>) -> hashi_script::Loader {
    Box::new(move |path, opts| {
        let s = Script::load(path, opts)?;
        // Self-check: the hook answers a finite, non-negative number on probe inputs.
        for (step, phase_step, phase_steps) in [(0u64, 0u64, 10u64), (5, 5, 10), (9, 9, 10)] {
            let probe = StepInfo {
                step,
                total_steps: 10,
                phase: 0,
                phase_step,
                phase_steps,
                steps_per_phase: vec![10],
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

pub(crate) fn rel(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

pub(crate) fn must_exist(p: &Path, what: &str, experiment: &Path) -> Result<()> {
    if !p.exists() {
        bail!("{}: {what} {} does not exist", experiment.display(), p.display());
    }
    Ok(())
}

pub fn run(a: TrainArgs, progress: &dyn Reporter) -> Result<()> {
    let resume = a.resume.is_some();
    let experiment = match (&a.experiment, &a.resume) {
        (Some(e), _) => e.clone(),
        (None, Some(Some(run_dir))) => {
            let p = run_dir.join("experiment.json");
            let text = std::fs::read_to_string(&p).with_context(|| {
                format!("{}: not a run directory (cannot read {})", run_dir.display(), p.display())
            })?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not the JSON that `hashi train` writes", p.display()))?;
            PathBuf::from(
                v["experiment"].as_str().with_context(|| format!("{}: names no experiment", p.display()))?,
            )
        }
        _ => bail!("give an EXPERIMENT.lua, or --resume RUN_DIR"),
    };
    let exp_script = Script::load(&experiment, &ScriptOptions::default())?;
    let exp: ExperimentDecl = exp_script.exports()?;
    exp.validate(&experiment)?;
    let base = experiment.parent().map(PathBuf::from).unwrap_or_default();
    let (shards, curriculum, schedule_path, out) = (
        rel(&base, &exp.shards),
        rel(&base, &exp.curriculum),
        rel(&base, &exp.schedule.script),
        rel(&base, &exp.out),
    );
    must_exist(&shards.join("manifest.json"), "shards manifest", &experiment)?;
    must_exist(&curriculum, "curriculum", &experiment)?;
    must_exist(&schedule_path, "schedule script", &experiment)?;
    let plan = crate::data::load_plan(&curriculum, &shards, &exp.plan_overrides)?;
    if exp.backend == "cpu" && !exp.backend_options.is_empty() {
        bail!("{}: backend_options are for plugin backends; \"cpu\" takes none", experiment.display());
    }
    let accumulation = exp.accumulation_for(&plan, &experiment)?;
    // The run folder is ours until we return (a second process on it is refused; the trainer shares this lock).
    // A folder made here for the lock is removed again if the experiment is refused below.
    let made_folder = !out.exists();
    std::fs::create_dir_all(&out).with_context(|| {
        format!("{}: cannot create the run folder `out` = {}", experiment.display(), out.display())
    })?;
    let _lock = hashi_train::RunLock::acquire(&out)?;
    let resume_from = if resume {
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
    let (source, mut extra_files) = match (&resume_from, &exp.model, &exp.init) {
        (Some(ckpt), _, _) => (ModelSource::Dir(ckpt.clone()), tokenizer_files(ckpt)),
        (None, Some(m), None) => {
            let dir = rel(&base, m);
            must_exist(&dir, "model", &experiment)?;
            let files = tokenizer_files(&dir);
            (ModelSource::Dir(dir), files)
        }
        (None, None, Some(init)) => {
            let cfg_path = rel(&base, &init.config);
            must_exist(&cfg_path, "init config", &experiment)?;
            let cfg = LlamaConfig::from_file(&cfg_path)?.to_config(&cfg_path)?;
            (ModelSource::Random(Box::new(cfg), init.seed), vec![])
        }
        _ => bail!(
            "{}: give exactly one of `model` (continued pretraining) or `init` (from scratch)",
            experiment.display()
        ),
    };
    if let Some(t) = &exp.tokenizer {
        let dir = rel(&base, t);
        must_exist(&dir, "tokenizer", &experiment)?;
        extra_files = tokenizer_files(&dir);
    }
    // Freeze prefixes and row ranges are checked against the parameters of the model to train.
    let shapes = source.shapes()?;
    if let Err(m) = exp.optimizer.check_params(&shapes) {
        if made_folder {
            drop(_lock);
            let _ = std::fs::remove_dir_all(&out);
        }
        bail!("{}: {m}", experiment.display());
    }
    let model_vocab =
        shapes.iter().find(|(n, _)| n == "model.embed_tokens.weight").and_then(|(_, d)| d.first().copied());
    std::fs::create_dir_all(&out).with_context(|| {
        format!("{}: cannot create the run folder `out` = {}", experiment.display(), out.display())
    })?;
    let abs = std::fs::canonicalize(&experiment).unwrap_or_else(|_| experiment.clone());
    let exp_json = out.join("experiment.json");
    std::fs::write(&exp_json, serde_json::json!({"experiment": abs}).to_string() + "\n")
        .with_context(|| format!("writing {}", exp_json.display()))?;
    let registry;
    let mut backend: Box<dyn Backend> = if exp.backend == "cpu" {
        Box::new(CpuBackend::new(source.load()?, exp.optimizer.clone()))
    } else {
        registry = a.plugins.registry()?;
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
            let p = ckpt.join("trainer_state.json");
            Some(
                serde_json::from_str(
                    &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| p.display().to_string())?,
            )
        }
        None => None,
    };
    let hot = HotScript::new(
        &schedule_path,
        ScriptOptions::default(),
        schedule_loader(exp.schedule.params.clone()),
        a.freeze_scripts,
    )?;
    let mut scripts: BTreeMap<String, String> = BTreeMap::new();
    scripts.insert("experiment".to_string(), exp_script.hash().to_string());
    scripts.insert("schedule".to_string(), hot.script().hash().to_string());
    let mut schedule = LuaSchedule { hot, params: exp.schedule.params.clone() };
    let ck = exp.checkpoint.unwrap_or(CheckpointDecl { every: 0, keep: default_keep() });
    let stop = exp.stop.unwrap_or(StopDecl { spike: default_spike(), max_bad_steps: default_bad() });
    let opts = TrainerOptions {
        out: out.clone(),
        accumulation,
        checkpoint_every: ck.every,
        keep_last: ck.keep,
        spike_factor: stop.spike,
        max_bad_steps: stop.max_bad_steps,
        extra_files,
        script_hashes: scripts.clone(),
        stop_after: a.stop_after,
    };
    tracing::info!(experiment = %exp.name, steps = plan.total_batches() / accumulation as u64, "training");
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
        let fixed = (s.cursor.phase + usize::from(s.cursor.slot > 0)).min(old.phases.len());
        if plan.phases.len() < fixed || plan.phases[..fixed] != old.phases[..fixed] {
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
        a.freeze_scripts,
    )?;
    scripts.insert("curriculum".to_string(), hot_plan.script().hash().to_string());
    let mut lua_plan = LuaPlan { hot: hot_plan, manifest, overrides: exp.plan_overrides.clone() };
    let opts = TrainerOptions { script_hashes: scripts, ..opts };
    let trainer =
        Trainer::new(&mut *backend, &mut schedule, plan, &shards, opts, state, Some(&mut lua_plan))?;
    let final_state = trainer.run(progress)?;
    write_plots(&out)?;
    outln!(
        "{}: {} steps ({} skipped), tokens {:?}; checkpoints in {}",
        exp.name,
        final_state.step,
        final_state.skipped,
        final_state.tokens_by_lang,
        out.join("ckpt").display()
    )?;
    Ok(())
}

/// Where the weights to train come from.
enum ModelSource {
    /// An HF directory (a source model or a checkpoint).
    Dir(PathBuf),
    /// Random initialisation of a config with a seed (training from scratch).
    Random(Box<hashi_model::Config>, u64),
}

impl ModelSource {
    /// The name and shape of every parameter (from the config; no weights are read).
    fn shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        Ok(match self {
            ModelSource::Dir(d) => {
                let p = d.join("config.json");
                hashi_model::param_shapes(&LlamaConfig::from_file(&p)?.to_config(&p)?)
            }
            ModelSource::Random(cfg, _) => hashi_model::param_shapes(cfg),
        })
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
    ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

/// `plots/loss.svg` and `plots/lr.svg` from `metrics.jsonl`.
fn write_plots(out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl"))?;
    let metrics: Vec<hashi_train::Metrics> =
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let loss: Vec<(f64, f64)> = metrics.iter().filter_map(|m| m.loss.map(|l| (m.step as f64, l))).collect();
    let lr: Vec<(f64, f64)> = metrics.iter().map(|m| (m.step as f64, m.lr)).collect();
    let bounds: Vec<f64> =
        metrics.windows(2).filter(|w| w[0].phase != w[1].phase).map(|w| w[0].step as f64 + 0.5).collect();
    let dir = out.join("plots");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("loss.svg"),
        hashi_train::plot::line_svg("training loss", "loss", &loss, &bounds),
    )?;
    std::fs::write(dir.join("lr.svg"), hashi_train::plot::line_svg("learning rate", "lr", &lr, &bounds))?;
    // The mix: share of each language among the tokens seen so far.
    let langs: Vec<String> =
        metrics.last().map(|m| m.tokens_by_lang.keys().cloned().collect()).unwrap_or_default();
    for lang in langs {
        let share: Vec<(f64, f64)> = metrics
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
        std::fs::write(
            dir.join(format!("mix_{lang}.svg")),
            hashi_train::plot::line_svg(&title, "share", &share, &bounds),
        )?;
    }
    Ok(())
}
