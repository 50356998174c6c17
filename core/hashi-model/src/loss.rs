//! Causal language-modelling loss with `transformers`' semantics: logits at position t predict label t+1,
//! labels equal to [`IGNORE_INDEX`] (padding, masked documents) are left out, and the mean is over the rest.

use candle_core::{D, DType, Tensor};

use crate::error::{ModelError, Result};
use crate::llama::log_softmax_last;

/// Label value that contributes nothing to the loss (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Mean next-token cross-entropy of `logits` `[batch, seq, vocab]` against `labels` `[batch, seq]` (i64,
/// unshifted: the same layout as the input ids, as in `LlamaForCausalLM(labels=...)`).
pub fn causal_lm_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (b, t, v) = logits.dims3()?;
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
    let targets: Vec<i64> = labels.to_dtype(DType::I64)?.narrow(1, 1, t - 1)?.flatten_all()?.to_vec1()?;
    let mut mask = Vec::with_capacity(targets.len());
    let mut index = Vec::with_capacity(targets.len());
    for &y in &targets {
        match y {
            IGNORE_INDEX => {
                mask.push(0f32);
                index.push(0u32);
            }
            y if (0..v as i64).contains(&y) => {
                mask.push(1.0);
                index.push(y as u32);
            }
            y => return Err(ModelError::Input(format!("label {y} is out of range for a vocabulary of {v}"))),
        }
    }
    let count: f32 = mask.iter().sum();
    if count == 0.0 {
        return Err(ModelError::Input("every label is ignored: the loss is undefined".into()));
    }
    let n = targets.len();
    let device = logits.device();
    let logits = logits.narrow(1, 0, t - 1)?.reshape((n, v))?;
    let index = Tensor::from_vec(index, (n, 1), device)?;
    let mask = Tensor::from_vec(mask, n, device)?;
    let picked = log_softmax_last(&logits)?.gather(&index, D::Minus1)?.squeeze(1)?;
    Ok(((picked * mask)?.sum_all()? * (-1.0 / f64::from(count)))?)
}
