//! The built-in CPU backend (candle) of the [`Backend`] trait (`hashi_core`); plugins (CUDA and others) implement
//! the same trait.

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};
use hashi_model::{Llama, SaveOptions, next_token_losses};

use hashi_core::{Backend, BackendResult};

use crate::adamw::{AdamW, AdamWConfig, StepStats};
use crate::error::{Result, TrainError};

/// A micro-batch as a `(batch, seq_len)` tensor, checked.
fn batch_tensor(sequences: &[Vec<u32>]) -> Result<(Tensor, usize)> {
    let (b, t) = (sequences.len(), sequences.first().map_or(0, Vec::len));
    if b == 0 || t < 2 || sequences.iter().any(|s| s.len() != t) {
        return Err(TrainError::State("a micro-batch needs equal sequences of at least 2 tokens".into()));
    }
    Ok((Tensor::from_vec(sequences.concat(), (b, t), &Device::Cpu)?, t))
}

/// Training on the CPU with candle and our AdamW.
pub struct CpuBackend {
    model: Llama,
    opt: AdamW,
    grads: Option<GradStore>,
    micro: usize,
}

impl CpuBackend {
    /// A backend training `model` with `cfg`.
    pub fn new(model: Llama, cfg: AdamWConfig) -> Self {
        let opt = AdamW::new(cfg, model.params());
        Self { model, opt, grads: None, micro: 0 }
    }

    /// The model being trained.
    pub fn model(&self) -> &Llama {
        &self.model
    }
}

impl CpuBackend {
    fn try_accumulate(&mut self, sequences: &[Vec<u32>]) -> Result<f64> {
        let (all, t) = batch_tensor(sequences)?;
        let inputs = all.narrow(1, 0, t - 1)?.contiguous()?;
        let targets = all.to_dtype(DType::I64)?.narrow(1, 1, t - 1)?;
        let loss = self.model.next_token_loss(&inputs, &targets)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(TrainError::NonFinite(format!("loss is {value}")));
        }
        let g = loss.backward()?;
        self.grads = Some(match self.grads.take() {
            None => g,
            Some(mut acc) => {
                for (_, var) in self.model.params().iter() {
                    if let Some(new) = g.get(var.as_tensor()) {
                        let sum = match acc.get(var.as_tensor()) {
                            Some(old) => (old + new)?,
                            None => new.clone(),
                        };
                        acc.insert(var.as_tensor(), sum);
                    }
                }
                acc
            }
        });
        self.micro += 1;
        Ok(value)
    }

    fn try_apply(&mut self, lr: f64) -> Result<StepStats> {
        let grads = self.grads.take().ok_or_else(|| TrainError::State("no gradients to apply".into()))?;
        let scale = 1.0 / self.micro.max(1) as f64;
        self.micro = 0;
        self.opt.step(self.model.params(), &grads, lr, scale)
    }

    fn try_logprobs(&mut self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let (all, t) = batch_tensor(sequences)?;
        let vocab = self.model.config().vocab_size;
        if let Some(&bad) = sequences.iter().flatten().find(|&&id| id as usize >= vocab) {
            return Err(TrainError::State(format!("token id {bad} is out of range (vocabulary {vocab})")));
        }
        let logits = self.model.forward(&all.narrow(1, 0, t - 1)?.contiguous()?)?.to_dtype(DType::F32)?;
        // The evaluation stage's per-token cross-entropy (`next_token_losses`), negated.
        let targets = all.to_dtype(DType::I64)?.narrow(1, 1, t - 1)?;
        let nats = next_token_losses(&logits, &targets)?;
        Ok(nats.chunks(t - 1).map(|row| row.iter().map(|&x| -x).collect()).collect())
    }

    fn try_save(&self, dir: &Path) -> Result<()> {
        hashi_model::save_pretrained(
            self.model.config(),
            self.model.params(),
            dir,
            SaveOptions::default(),
            &hashi_core::NoReporter,
        )?;
        self.opt.save(&dir.join(hashi_core::OPTIMIZER_FILE))
    }

    fn try_load_optimizer(&mut self, dir: &Path) -> Result<()> {
        self.opt.load(&dir.join(hashi_core::OPTIMIZER_FILE))
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu (candle, f32)".into()
    }

    fn accumulate(&mut self, sequences: &[Vec<u32>]) -> BackendResult<f64> {
        Ok(self.try_accumulate(sequences)?)
    }

    fn apply(&mut self, lr: f64) -> BackendResult<StepStats> {
        Ok(self.try_apply(lr)?)
    }

    fn discard(&mut self) {
        self.grads = None;
        self.micro = 0;
    }

    fn logprobs(&mut self, sequences: &[Vec<u32>]) -> BackendResult<Vec<Vec<f32>>> {
        Ok(self.try_logprobs(sequences)?)
    }

    fn save(&self, dir: &Path) -> BackendResult<()> {
        Ok(self.try_save(dir)?)
    }

    fn load_optimizer(&mut self, dir: &Path) -> BackendResult<()> {
        Ok(self.try_load_optimizer(dir)?)
    }

    fn set_trainable(&mut self, trainable: Option<&hashi_core::Trainable>) -> BackendResult<()> {
        self.opt.set_trainable(trainable.cloned());
        Ok(())
    }

    fn reset_moments(&mut self) -> BackendResult<()> {
        self.opt.reset_moments();
        Ok(())
    }
}
