//! `hashi`: vocabulary-replacement continued pretraining of Llama models, from the command line.
//!
//! Results go to stdout, progress and logs to stderr (`-v`/`-q`, or `RUST_LOG` for fine-grained filters).

/// `println!` that returns an error instead of panicking when standard output cannot be written (a full disk,
/// `/dev/full`, a closed pipe): `outln!(...)?` ends hashi with "writing standard output: ..." and exit code 1.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(crate::stdout_error)
    }};
}

/// `print!` with the error handling of [`outln!`].
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*).map_err(crate::stdout_error)
    }};
}

mod alloc;
mod data;
mod eval;
mod export;
mod generate;
mod model;
mod plugins;
mod progress;
mod report;
mod run;
mod threads;
mod tokenizer;
mod train;
mod transfer;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// hashi (橋): turn an English Llama into a Japanese–English model by vocabulary replacement and curriculum
/// continued pretraining.
#[derive(Parser)]
#[command(name = "hashi", version, about, long_about = None)]
struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, inspect and run Llama checkpoints (HF directories).
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Train, analyse, import and run tokenizers.
    #[command(subcommand)]
    Tokenizer(tokenizer::TokenizerCommand),
    /// Replace a model's vocabulary by a new tokenizer's, initialising new rows with a Lua strategy.
    Transfer(transfer::TransferArgs),
    /// Prepare corpora into Megatron-LM indexed datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Curriculum continued pretraining (or from scratch) of an experiment, with checkpoints and --resume.
    Train(train::TrainArgs),
    /// Few-shot evaluation of choice tasks with the upstream harnesses' prompts; lm-eval-style results JSON.
    Eval(eval::EvalArgs),
    /// Continue a prompt with a model and its tokenizer.json.
    Generate(generate::GenerateArgs),
    /// Export an experiment to a cluster engine (Megatron-LM, Neuron) through an export plugin.
    Export(export::ExportArgs),
    /// Dynamically loaded backends and exporters.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Measure speed and memory side by side with the Python peers; writes JSON.
    #[command(subcommand)]
    Bench(hashi_bench::BenchCommand),
    /// An experiment end to end: tokenizer, transfer, shards, training of every variant, evaluation of every
    /// checkpoint, report; every stage cached by the hashes of its inputs.
    Run(run::RunArgs),
    /// The report of one or more runs: Table 2, Figures 1 and 2, curves, tokenizer and transfer (Markdown + HTML).
    Report(report::ReportArgs),
}

/// The error of a failed write to standard output.
pub(crate) fn stdout_error(e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("writing standard output: {e}")
}

fn main() -> std::process::ExitCode {
    alloc::keep_freed_memory();
    threads::pin_candle_threads();
    // A child serving a backend plugin's calls, so that a crash in the plugin does not end hashi.
    if let Some(code) = hashi_plugin_host::remote::worker_child_main() {
        std::process::exit(code);
    }
    // A child started to load a plugin library before this process trusts it (a crash there is a refusal).
    if let Some(code) = hashi_plugin_host::probe_child_main() {
        std::process::exit(code);
    }
    if let Ok(exe) = std::env::current_exe() {
        hashi_plugin_host::enable_probe(exe);
    }
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let progress = progress::Progress::new(cli.quiet);
    let result = execute(cli.command, &progress).and_then(|()| {
        use std::io::Write as _;
        std::io::stdout().flush().map_err(stdout_error)
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, progress: &progress::Progress) -> anyhow::Result<()> {
    match command {
        Command::Model(cmd) => model::run(cmd, progress),
        Command::Tokenizer(cmd) => tokenizer::run(cmd, progress),
        Command::Transfer(args) => transfer::run(args, progress),
        Command::Data(cmd) => data::run(cmd, progress),
        Command::Train(args) => train::run(args, progress),
        Command::Eval(args) => eval::run(args, progress),
        Command::Generate(args) => generate::run(args, progress),
        Command::Bench(cmd) => hashi_bench::run(cmd, progress),
        Command::Plugins(cmd) => plugins::run(cmd),
        Command::Export(args) => export::run(args),
        Command::Run(args) => run::run(args, progress),
        Command::Report(args) => report::run(args),
    }
}

/// An error and its causes on one line, each cause once: an I/O error that already names its cause in its own
/// message ("PATH: No space left on device") does not repeat it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1).map(ToString::to_string) {
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
