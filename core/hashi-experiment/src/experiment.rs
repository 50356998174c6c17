//! An experiment (`hashi train EXPERIMENT.lua`, and every variant of `hashi run`): one typed tree, read from Lua
//! or built by a run file, validated before anything runs.

use std::path::Path;

use anyhow::{Result, bail};
use hashi_core::AdamWConfig;
use serde::{Deserialize, Serialize};

use crate::paths::resolve;
use crate::plan::PlanOverrides;

/// Training from scratch: a random init of a config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitDecl {
    /// An HF `config.json`.
    pub config: String,
    /// Seed of the random weights.
    #[serde(default)]
    pub seed: u64,
}

/// The learning-rate schedule: a Lua script and the parameters its `lr(s, p)` receives as `p`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDecl {
    /// The schedule script.
    pub script: String,
    /// Its parameters.
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// Periodic checkpoints besides the one at every data switch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointDecl {
    /// Steps between periodic checkpoints (0: only at data switches and the end).
    #[serde(default)]
    pub every: u64,
    /// Periodic checkpoints kept (data-switch checkpoints are always kept).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Which checkpoints keep the optimizer state: `"all"` (the default), or `"latest"` (only the newest, the one a
    /// resume starts from; the others keep their weights for evaluation — on a 135M model that is 0.43 of 1.3 GB).
    #[serde(default)]
    pub optimizer_state: OptimizerState,
}

/// Which checkpoints keep the optimizer state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerState {
    /// Every checkpoint (any of them can be resumed from).
    #[default]
    All,
    /// The newest checkpoint only.
    Latest,
}

impl Default for CheckpointDecl {
    fn default() -> Self {
        Self { every: 0, keep: default_keep(), optimizer_state: OptimizerState::All }
    }
}

fn default_keep() -> usize {
    3
}

/// The stop rule for bad steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopDecl {
    /// A step is skipped when its loss exceeds `spike` × the running mean.
    #[serde(default = "default_spike")]
    pub spike: f64,
    /// Consecutive skipped steps that stop the run at its last checkpoint.
    #[serde(default = "default_bad")]
    pub max_bad_steps: usize,
}

impl Default for StopDecl {
    fn default() -> Self {
        Self { spike: default_spike(), max_bad_steps: default_bad() }
    }
}

fn default_spike() -> f64 {
    3.0
}
fn default_bad() -> usize {
    3
}

/// What an experiment file returns (paths relative to it), and what `hashi run` builds for each variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentDecl {
    /// Name for logs and the report.
    pub name: String,
    /// The model to continue pretraining (HF directory); or `init`.
    #[serde(default)]
    pub model: Option<String>,
    /// Training from scratch; or `model`.
    #[serde(default)]
    pub init: Option<InitDecl>,
    /// Tokenizer directory whose files go into every checkpoint (default: the model's own).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Prepared shards (with manifest.json).
    pub shards: String,
    /// The curriculum (Lua plan).
    pub curriculum: String,
    /// The learning-rate schedule.
    pub schedule: ScheduleDecl,
    /// Optimizer settings.
    #[serde(default)]
    pub optimizer: AdamWConfig,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub accumulation: usize,
    /// Tokens per optimizer step; sets the accumulation (a multiple of the plan's batch of tokens).
    #[serde(default)]
    pub batch_tokens: Option<u64>,
    /// Compute backend: the built-in "cpu", or the name of a backend plugin.
    #[serde(default = "cpu")]
    pub backend: String,
    /// Options for a plugin backend (a table, passed as JSON next to `optimizer`).
    #[serde(default)]
    pub backend_options: serde_json::Map<String, serde_json::Value>,
    /// Cluster layout for `hashi export` (nodes, devices, parallelism); ignored by `hashi train`.
    #[serde(default)]
    pub cluster: hashi_core::Cluster,
    /// Replaces top-level fields of the curriculum (sizes, seed): one data plan at several scales.
    #[serde(default)]
    pub plan_overrides: PlanOverrides,
    /// Periodic checkpoints.
    #[serde(default)]
    pub checkpoint: Option<CheckpointDecl>,
    /// The stop rule.
    #[serde(default)]
    pub stop: Option<StopDecl>,
    /// Bits per byte on held-out text inside the training loop.
    #[serde(default)]
    pub eval: Option<InLoopEvalDecl>,
    /// The run folder (checkpoints, metrics).
    pub out: String,
}

/// In-loop evaluation (`eval = { every = 50, bpb = { "ja=heldout/ja.jsonl", "en=heldout/en.jsonl" } }`): bits per
/// byte per language every `every` steps and at every data switch, written to `metrics.jsonl` (`bpb`,
/// `eval_seconds`). The text is tokenized once when training starts; the measure is the evaluation stage's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InLoopEvalDecl {
    /// Every this many optimizer steps (0: at data switches and the end only).
    #[serde(default)]
    pub every: u64,
    /// Held-out text, `LANG=PATH` or `LANG:FIELD=PATH` (paths relative to the experiment file). Under
    /// `hashi run`, empty means the run's `eval.bpb`.
    #[serde(default)]
    pub bpb: Vec<String>,
    /// UTF-8 bytes of held-out text per language (whole documents, in file order).
    #[serde(default = "in_loop_bytes")]
    pub bpb_bytes: usize,
}

fn in_loop_bytes() -> usize {
    20_000
}

impl ExperimentDecl {
    /// Checks the settings that need no model or plan: accumulation and batch_tokens, the optimizer's numbers,
    /// checkpoint retention and the stop rule. Messages name the experiment file and the setting.
    pub fn validate(&self, experiment: &Path) -> Result<()> {
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
        if let Some(ev) = &self.eval {
            if ev.bpb.is_empty() {
                bail!("{e}: eval.bpb is empty; give the held-out text as {{ \"LANG=PATH\", ... }}");
            }
            for (i, b) in ev.bpb.iter().enumerate() {
                b.parse::<hashi_tokenizer::input::InputSpec>()
                    .map_err(|m| anyhow::anyhow!("{e}: eval.bpb[{}]: {m}", i + 1))?;
            }
            if ev.bpb_bytes == 0 {
                bail!("{e}: eval.bpb_bytes = 0; at least one document must be read");
            }
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
    pub fn accumulation_for(&self, plan: &hashi_data::ResolvedPlan, experiment: &Path) -> Result<usize> {
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

/// Where an experiment's weights start.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// Continued pretraining of this model directory.
    Model(std::path::PathBuf),
    /// Training from scratch: a random init of this HF config with this seed.
    Init(std::path::PathBuf, u64),
}

impl ExperimentDecl {
    /// Exactly one of `model` and `init`, and that it exists; errors name `origin` (the experiment's file).
    pub fn start(&self, origin: &Path) -> Result<Start> {
        let (start, what, path) = match (&self.model, &self.init) {
            (Some(m), None) => (Start::Model(m.into()), "model", m),
            (None, Some(i)) => (Start::Init((&i.config).into(), i.seed), "init config", &i.config),
            _ => bail!(
                "{}: give exactly one of `model` (continued pretraining) or `init` (from scratch)",
                origin.display()
            ),
        };
        crate::train::must_exist(Path::new(path), what, origin)?;
        Ok(start)
    }

    /// The experiment with every path made absolute against `base` (the experiment file's folder), so that it can
    /// be recorded and resumed from anywhere.
    pub fn resolved(mut self, base: &Path) -> Self {
        let r = |p: &mut String| *p = resolve(base, p).display().to_string();
        for p in [&mut self.shards, &mut self.curriculum, &mut self.schedule.script, &mut self.out] {
            r(p);
        }
        for p in [self.model.as_mut(), self.tokenizer.as_mut(), self.init.as_mut().map(|i| &mut i.config)]
            .into_iter()
            .flatten()
        {
            r(p);
        }
        for spec in self.eval.iter_mut().flat_map(|e| e.bpb.iter_mut()) {
            if let Some((tag, path)) = spec.split_once('=') {
                *spec = format!("{tag}={}", resolve(base, path).display());
            }
        }
        self
    }
}
