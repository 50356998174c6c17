//! `hashi run RUN_FILE.lua`: an experiment end to end (`hashi_experiment::run`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::progress::Progress;

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

pub fn run(a: RunArgs, progress: &Progress) -> Result<()> {
    let opts = hashi_experiment::RunOptions {
        resume: a.resume,
        quick: a.quick,
        out: a.out,
        seeds: a.seeds,
        only: a.only,
        no_report: a.no_report,
        base: a.base,
        quiet: progress.is_quiet(),
    };
    hashi_experiment::run(&a.experiment, &opts, progress)
}
