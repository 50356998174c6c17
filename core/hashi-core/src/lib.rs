//! Shared vocabulary of the hashi crates.
//!
//! This crate sits at the bottom of the dependency graph and has no heavy dependencies. It holds the
//! [`Reporter`] trait through which library crates report progress: only the CLI knows how progress is
//! drawn (a terminal bar, JSON lines, or nothing), as in `tokenizers`' and `uv`'s reporters.

pub mod artifacts;
mod backend;
mod engine;
mod export;
pub mod heldout;
mod optim;
mod panics;
pub mod plan;
mod reporter;
mod util;

pub use backend::{Backend, BackendError, BackendResult, OPTIMIZER_FILE, StepStats};
pub use engine::{DecayStyle, EngineSchedule};
pub use export::{Cluster, ExportCorpus, ExportModel, ExportRequest};
pub use optim::{AdamWConfig, Trainable};
pub use panics::catch_panic;
pub use reporter::{NoReporter, Reporter};
pub use util::{Fnv1a, check_out_dir, cpu_model, fnv1a, peak_rss_mib, tmp_path, write_atomic};
