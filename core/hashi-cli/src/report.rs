//! `hashi report RUN_DIR...`: the report of one or more runs (`hashi_report::write`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct ReportArgs {
    /// Run directories written by `hashi run` (variants with the same name are averaged over them).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Output directory (report.md, report.html, figures/).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ReportArgs) -> Result<()> {
    hashi_report::write(&a.runs, &a.out)?;
    outln!("{}", a.out.join("report.md").display())?;
    Ok(())
}
