//! `hashi train EXPERIMENT.lua`: curriculum continued pretraining (`hashi_experiment::train`).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_experiment::{ExperimentRecord, TrainOptions};

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
    /// With --resume: continue although the schedule (or its parameters) now gives other learning rates for
    /// steps already taken than the run took (Megatron's `--override-opt_param-scheduler`).
    #[arg(long, requires = "resume")]
    override_schedule: bool,
    #[command(flatten)]
    plugins: crate::plugins::PluginArgs,
}

pub fn run(a: TrainArgs, progress: &dyn Reporter) -> Result<()> {
    let opts = TrainOptions {
        resume: a.resume.is_some(),
        freeze_scripts: a.freeze_scripts,
        stop_after: a.stop_after,
        override_schedule: a.override_schedule,
        plugins: a.plugins.plugins.clone(),
    };
    // An experiment file, or the experiment a run folder recorded (a `hashi run` variant's has no file).
    let (exp, origin, hash) = match (&a.experiment, &a.resume) {
        (Some(e), _) => {
            let (exp, hash) = hashi_experiment::load_experiment(e)?;
            (exp, e.clone(), hash)
        }
        (None, Some(Some(run_dir))) => {
            let record = ExperimentRecord::read(run_dir)?;
            match record.experiment {
                Some(file) => {
                    let (exp, hash) = hashi_experiment::load_experiment(&file)?;
                    (exp, file, hash)
                }
                None => {
                    let hash = format!(
                        "{:016x}",
                        hashi_core::fnv1a(serde_json::to_string(&record.settings)?.as_bytes())
                    );
                    (record.settings, run_dir.join("experiment.json"), hash)
                }
            }
        }
        _ => bail!("give an EXPERIMENT.lua, or --resume RUN_DIR"),
    };
    let s = hashi_experiment::train(&exp, &origin, &hash, &opts, progress)?;
    outln!(
        "{}: {} steps ({} skipped), tokens {:?}; checkpoints in {}",
        exp.name,
        s.step,
        s.skipped,
        s.tokens_by_lang,
        PathBuf::from(&exp.out).join("ckpt").display()
    )?;
    Ok(())
}
