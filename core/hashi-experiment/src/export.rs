//! The export stage: an experiment resolved into the request an export plugin turns into cluster jobs
//! (Megatron-LM, NeuronX). hashi resolves everything that needs its own machinery — the curriculum against the
//! prepared shards, steps per phase from the batch settings, the learning rate of every step from the Lua
//! schedule and each phase's engine schedule (checked against it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hashi_core::{EngineSchedule, ExportCorpus, ExportModel, ExportRequest};
use hashi_script::{Script, ScriptOptions};
use hashi_train::StepInfo;
use serde_json::Value;

use crate::experiment::Start;
use crate::train::must_exist;

fn abs(p: &Path) -> Result<String> {
    let p = std::fs::canonicalize(p).with_context(|| p.display().to_string())?;
    p.to_str().map(String::from).with_context(|| format!("{} is not UTF-8", p.display()))
}

/// The learning rate of every step, and each phase's engine schedule (checked to draw the same curve).
fn schedules(
    script: &Script,
    params: &serde_json::Map<String, Value>,
    plan: &hashi_data::ResolvedPlan,
    steps: &[u64],
) -> Result<(Vec<f64>, Vec<EngineSchedule>)> {
    if !script.has_function("engine_schedule") {
        bail!(
            "{}: this schedule has no engine_schedule(s, p), so a cluster engine cannot reproduce it \
             (see scripts/README.md; rewarmup_cosine.lua has one)",
            script.path().display()
        );
    }
    let (mut lrs, mut engines, mut step) = (vec![], vec![], 0u64);
    for (phase, &n) in steps.iter().enumerate() {
        let info =
            |phase_step: u64| StepInfo::at(plan, steps, step + phase_step).context("a step of the plan");
        let first = info(0)?;
        let params = crate::train::phase_params(params, &first);
        let eng: EngineSchedule = script.call("engine_schedule", &[&first, &params])?;
        eng.validate().map_err(|e| {
            anyhow::anyhow!("{}: engine_schedule of phase {phase}: {e}", script.path().display())
        })?;
        for s in 0..n {
            let lr: f64 = script.call("lr", &[&info(s)?, &params])?;
            let want = eng.lr(s);
            if (lr - want).abs() > 1e-9 * want.abs().max(1e-12) {
                bail!(
                    "{}: engine_schedule of phase {phase} gives {want} at phase step {s}, lr() gives {lr}: \
                     the engine would train with another schedule",
                    script.path().display()
                );
            }
            lrs.push(lr);
        }
        engines.push(eng);
        step += n;
    }
    Ok((lrs, engines))
}

/// The request for exporting the experiment file `experiment` to `target`: the curriculum resolved against the
/// shards, steps per phase from the batch settings, the learning rate of every step from the Lua schedule and each
/// phase's engine schedule (checked to draw the same curve).
pub fn build_request(experiment: &Path, target: &str) -> Result<ExportRequest> {
    let (exp, _) = crate::train::load_experiment(experiment)?;
    let (shards, curriculum, schedule_path) =
        (PathBuf::from(&exp.shards), PathBuf::from(&exp.curriculum), PathBuf::from(&exp.schedule.script));
    must_exist(&shards.join("manifest.json"), "shards manifest", experiment)?;
    must_exist(&curriculum, "curriculum", experiment)?;
    must_exist(&schedule_path, "schedule script", experiment)?;
    let plan = crate::plan::load_plan(&curriculum, &shards, &exp.plan_overrides)?;
    let accumulation = exp.accumulation_for(&plan, experiment)?;
    // A phase's own schedule parameters become its job's schedule; what trains and how many micro-batches a step
    // takes are one setting per job in the engines' command lines, which the export does not vary per phase.
    if let Some(p) = plan.phases.iter().find(|p| {
        p.training.as_ref().is_some_and(|t| {
            t.params.is_some() || t.new_rows_only || t.reset_moments || t.accumulation.is_some()
        })
    }) {
        bail!(
            "{}: phase {} sets training.params / new_rows_only / reset_moments / accumulation, which `hashi export` \
             cannot hand to a cluster engine yet (per-phase schedule parameters it can)",
            curriculum.display(),
            p.name
        );
    }
    let steps = hashi_train::steps_per_phase(&plan, accumulation)?;
    crate::train::check_schedule(&exp, &plan.decl)?;
    let schedule = Script::load(&schedule_path, &ScriptOptions::default())?;
    let (lrs, engines) = schedules(&schedule, &exp.schedule.params, &plan, &steps)?;
    let manifest = hashi_data::Manifest::load(&shards)?;
    let shards_abs = PathBuf::from(abs(&shards)?);
    let corpora = manifest
        .corpora
        .iter()
        .map(|c| {
            let corpus = ExportCorpus {
                prefix: shards_abs.join(&c.prefix).display().to_string(),
                lang: c.corpus.lang.clone(),
                documents: c.documents,
                tokens: c.tokens,
            };
            (c.corpus.name.clone(), corpus)
        })
        .collect();
    let (model_dir, config_path) = match exp.start(experiment)? {
        Start::Model(dir) => (Some(abs(&dir)?), dir.join("config.json")),
        Start::Init(config, _) => (None, config),
    };
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&config_path)?)
        .with_context(|| config_path.display().to_string())?;
    let tokenizer = match (&exp.tokenizer, &model_dir) {
        (Some(t), _) => Some(abs(Path::new(t))?),
        (None, Some(m)) => Some(m.clone()),
        (None, None) => manifest.tokenizer.parent().map(|p| p.display().to_string()),
    };
    let request = ExportRequest {
        experiment: exp.name.clone(),
        target: target.to_string(),
        seq_len: plan.decl.seq_len as u64,
        micro_batch_sequences: plan.decl.batch_size as u64,
        accumulation: accumulation as u64,
        global_batch_sequences: (plan.decl.batch_size * accumulation) as u64,
        steps_per_phase: steps,
        plan,
        corpora,
        model: ExportModel { dir: model_dir, config },
        tokenizer,
        optimizer: exp.optimizer.clone(),
        schedules: engines,
        lr: lrs,
        cluster: exp.cluster.clone(),
    };
    Ok(request)
}
