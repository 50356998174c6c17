//! Errors of the training crate.

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Loss or gradients are not finite.
    #[error("non-finite values: {0}")]
    NonFinite(String),
    /// Optimizer or checkpoint state is inconsistent.
    #[error("{0}")]
    State(String),
    /// The run folder belongs to another live process.
    #[error("{0}")]
    Locked(String),
    /// A backend call failed.
    #[error(transparent)]
    Backend(#[from] hashi_core::BackendError),
    /// A model error.
    #[error(transparent)]
    Model(#[from] hashi_model::ModelError),
    /// A tensor error.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;

impl From<TrainError> for hashi_core::BackendError {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::NonFinite(m) => Self::NonFinite(m),
            TrainError::State(m) => Self::State(m),
            TrainError::Backend(b) => b,
            other => Self::Failed(other.to_string()),
        }
    }
}
