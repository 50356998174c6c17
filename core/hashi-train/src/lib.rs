//! Training for hashi. So far: [`AdamW`] with parameter groups, clipping, frozen parameters and saveable state.
//! The curriculum training loop, schedules, checkpoints and resume are the trainer issue's remaining work.

mod adamw;
mod error;

pub use adamw::{AdamW, AdamWConfig, StepStats};
pub use error::{Result, TrainError};
