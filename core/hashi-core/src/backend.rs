//! The `Backend` trait: what the trainer and the evaluation harness need from a compute engine. The built-in CPU
//! backend (`hashi_train::CpuBackend`) and every plugin backend implement it; the trainer knows only the trait.

use std::path::Path;

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The loss or the gradients are not finite: the trainer skips the step.
    #[error("non-finite values: {0}")]
    NonFinite(String),
    /// A call out of order or with inconsistent inputs (no gradients to apply, an id out of range).
    #[error("{0}")]
    State(String),
    /// The computation itself failed (a tensor error, a plugin call that failed or crashed).
    #[error("{0}")]
    Failed(String),
}

/// Result with [`BackendError`].
pub type BackendResult<T> = std::result::Result<T, BackendError>;

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether the gradients were scaled down.
    pub clipped: bool,
}

/// The file in a checkpoint that holds the optimizer state [`Backend::save`] writes (every backend uses this name,
/// so that a checkpoint kept for its weights only can drop it).
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// A compute engine for training and scoring.
pub trait Backend {
    /// Name for logs and metrics.
    fn name(&self) -> String;
    /// Forward + backward on one micro-batch of sequences (`seq_len + 1` tokens each: inputs and shifted
    /// labels); gradients accumulate until [`Backend::apply`] or [`Backend::discard`]. Returns the mean loss.
    fn accumulate(&mut self, sequences: &[Vec<u32>]) -> BackendResult<f64>;
    /// One optimizer step at `lr` with the accumulated gradients (averaged over the micro-batches).
    fn apply(&mut self, lr: f64) -> BackendResult<StepStats>;
    /// Drops the accumulated gradients (a skipped step).
    fn discard(&mut self);
    /// Log-probability of every next token of each sequence (`seq_len − 1` values per sequence), in f32.
    fn logprobs(&mut self, sequences: &[Vec<u32>]) -> BackendResult<Vec<Vec<f32>>>;
    /// Writes the weights (HF layout) and the optimizer state (as [`OPTIMIZER_FILE`]) into `dir`.
    fn save(&self, dir: &Path) -> BackendResult<()>;
    /// Reads the optimizer state saved by [`Backend::save`] (weights are loaded when the backend is built).
    fn load_optimizer(&mut self, dir: &Path) -> BackendResult<()>;
    /// From the next step on, updates only what `trainable` allows (`None`: back to the optimizer settings the
    /// backend was built with). Called at the start of every curriculum phase that sets its own recipe, and of
    /// the phase after it. Backends without per-phase control refuse (the default).
    fn set_trainable(&mut self, trainable: Option<&crate::Trainable>) -> BackendResult<()> {
        let _ = trainable;
        Err(BackendError::State(format!(
            "backend {} cannot change what trains per phase (a curriculum phase sets `training.params` or \
             `new_rows_only`)",
            self.name()
        )))
    }
    /// Restarts the optimizer: moments to zero, bias-correction step count to 0. Backends that cannot refuse (the
    /// default).
    fn reset_moments(&mut self) -> BackendResult<()> {
        Err(BackendError::State(format!(
            "backend {} cannot restart its optimizer moments (a curriculum phase sets `training.reset_moments`)",
            self.name()
        )))
    }
}
