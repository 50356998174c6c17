//! hashi's experiment layer, between the command line and the stage crates: the typed experiment
//! ([`ExperimentDecl`]) and run file ([`run_file::RunDecl`]), the Lua policies as the stage crates' traits (a
//! schedule as `hashi_train::LrSchedule`, a curriculum as `hashi_train::PlanUpdates`, an init strategy as
//! `hashi_transfer::EmbeddingInit`), and the stages as functions with typed inputs and outputs — tokenizer,
//! transfer, shards, init, training, evaluation — that `hashi run` ([`run()`]) calls directly, each cached by
//! the hashes of its settings and inputs ([`cache`]).

pub mod cache;
pub mod experiment;
pub mod export;
mod model;
pub mod paths;
pub mod plan;
mod run;
pub mod run_file;
pub mod tokenizer;
pub mod train;
pub mod transfer;

pub use experiment::ExperimentDecl;
pub use model::init_model;
pub use run::{RunOptions, run};
pub use train::{ExperimentRecord, TrainOptions, load_experiment, train};
pub use transfer::{TransferComparison, TransferSettings, transfer};
