//! Training for hashi: [`AdamW`] (parameter groups, clipping, frozen parameters, saveable state), the
//! [`Backend`] trait with the built-in [`CpuBackend`], and the curriculum [`Trainer`] with schedules as
//! policies ([`LrSchedule`]), skipped bad steps, atomic checkpoints and exact resume.

mod adamw;
mod backend;
mod durable;
mod error;
mod lock;
mod trainer;

pub use adamw::AdamW;
pub use backend::CpuBackend;
pub use error::{Result, TrainError};
pub use hashi_core::{AdamWConfig, Backend, BackendError, StepStats};
pub use lock::{LOCK_FILE, RunLock};
pub use trainer::{
    LrSchedule, Metrics, PhaseSpan, PlanUpdates, STATE_VERSION, StepInfo, Trainer, TrainerOptions,
    TrainerState, latest_checkpoint, steps_per_phase,
};
