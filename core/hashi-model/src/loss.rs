//! Language-modelling losses. [`causal_lm_loss`] has `transformers`' semantics: logits at position t predict
//! label t+1; [`next_token_loss`] takes the targets already shifted (Megatron's `tokens[:-1]` / `labels[1:]`).
//! Labels equal to [`IGNORE_INDEX`] (padding, masked documents) are left out; the mean is over the rest.

use candle_core::{DType, Tensor};

use crate::error::{ModelError, Result};
use crate::ops::cross_entropy_rows;

/// Label value that contributes nothing to the loss (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Mean next-token cross-entropy of `logits` `[batch, seq, vocab]` against `labels` `[batch, seq]` (i64,
/// unshifted: the same layout as the input ids, as in `LlamaForCausalLM(labels=...)`).
pub fn causal_lm_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (b, t, _) = logits.dims3()?;
    if labels.dims2()? != (b, t) {
        return Err(ModelError::Input(format!(
            "labels {:?} do not match logits {:?}",
            labels.dims(),
            logits.dims()
        )));
    }
    if t < 2 {
        return Err(ModelError::Input("a causal LM loss needs sequences of at least 2 tokens".into()));
    }
    next_token_loss(&logits.narrow(1, 0, t - 1)?, &labels.narrow(1, 1, t - 1)?)
}

/// Mean cross-entropy of `logits` `[batch, seq, vocab]` against `targets` `[batch, seq]` (i64): position i is
/// scored against `targets[i]`, no shift. [`crate::Llama::next_token_loss`] is the same loss of a model's
/// logits without the logits tensor (training).
pub fn next_token_loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (rows, targets) = scored_rows(logits, targets)?;
    mean(&cross_entropy_rows(&rows, targets.clone())?, &targets)
}

/// The mean of per-row losses `[rows]` over the rows with a target.
pub(crate) fn mean(losses: &Tensor, targets: &[Option<u32>]) -> Result<Tensor> {
    let count = targets.iter().filter(|t| t.is_some()).count();
    if count == 0 {
        return Err(ModelError::Input("every label is ignored: the loss is undefined".into()));
    }
    Ok((losses.sum_all()? / count as f64)?)
}

/// Per-position cross-entropy in nats of `logits` `[batch, seq, vocab]` against `targets` `[batch, seq]` (i64),
/// row-major `[batch · seq]`, 0 where the target is [`IGNORE_INDEX`]. Not differentiable (evaluation).
pub fn next_token_losses(logits: &Tensor, targets: &Tensor) -> Result<Vec<f32>> {
    let (rows, targets) = scored_rows(logits, targets)?;
    Ok(cross_entropy_rows(&rows, targets)?.to_vec1()?)
}

/// `logits` `[batch, seq, vocab]` as `[batch · seq, vocab]` rows and their targets, checked: shapes agree, ids
/// within the vocabulary.
fn scored_rows(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Vec<Option<u32>>)> {
    let (b, t, v) = logits.dims3()?;
    if targets.dims2()? != (b, t) {
        return Err(ModelError::Input(format!(
            "targets {:?} do not match logits {:?}",
            targets.dims(),
            logits.dims()
        )));
    }
    Ok((logits.reshape((b * t, v))?, row_targets(targets, v)?))
}

/// `targets` `[batch, seq]` (i64) row-major, [`IGNORE_INDEX`] as `None`, checked against a vocabulary of `v`.
pub(crate) fn row_targets(targets: &Tensor, v: usize) -> Result<Vec<Option<u32>>> {
    let labels: Vec<i64> = targets.to_dtype(DType::I64)?.flatten_all()?.to_vec1()?;
    let targets = labels
        .iter()
        .map(|&y| match y {
            IGNORE_INDEX => Ok(None),
            y if (0..v as i64).contains(&y) => Ok(Some(y as u32)),
            y => Err(ModelError::Input(format!("label {y} is out of range for a vocabulary of {v}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(targets)
}
