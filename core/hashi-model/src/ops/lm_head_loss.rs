//! The output projection and the cross-entropy as one op over chunks of rows, so that the logits `[n, vocab]`
//! (the largest activation of a training step: 192 MiB for SmolLM2 at 1,024 tokens) are never whole in memory,
//! and neither is their gradient. The approach of Liger Kernel's fused linear cross-entropy (Hsu et al. 2024,
//! "Liger Kernel: Efficient Triton Kernels for LLM Training", §3.2), on the CPU.
//!
//! Per chunk of rows `h` `[r, hidden]`: `z = h Wᵀ`; per row `lse = logsumexp(z)`, `loss = lse − z[t]` (0 for an
//! ignored row); then, for an upstream gradient `g` per row, `dz = g · (softmax(z) − onehot(t))`,
//! `dh = dz W`, `dW += dzᵀ h`. The forward pass computes the gradients for `g = 1` while the softmax is at
//! hand (one exponential per logit in all); the backward pass scales them, since a mean loss sends the same `g`
//! to every row. Any other upstream gradient is met by recomputing the chunks with its per-row `g`.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{Operand, Out, sgemm};
use super::{exp_in_place, f32_inputs, max, with_f32};

/// Logits per chunk (32 MiB of f32): the rows of a chunk are this over the vocabulary size.
const CHUNK: usize = 1 << 23;

/// `(loss per row, dh, dW)`.
type Pass = (Vec<f32>, Vec<f32>, Vec<f32>);

struct LmHeadLoss {
    targets: Arc<Vec<Option<u32>>>,
    /// Logits per chunk ([`CHUNK`]; smaller in tests).
    chunk: usize,
    /// `(dh, dW)` for `g = 1` on every row, left by the forward pass for the backward pass.
    unit: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl LmHeadLoss {
    /// Losses and gradients of rows `h` `[n, hidden]` under `w` `[vocab, hidden]`, each row's gradient scaled by
    /// `g[row]` (1 when `g` is `None`).
    fn pass(&self, h: &[f32], w: &[f32], hidden: usize, g: Option<&[f32]>) -> Result<Pass> {
        let (n, vocab) = (h.len() / hidden, w.len() / hidden);
        let (mut loss, mut dh, mut dw) = (vec![0f32; n], vec![0f32; n * hidden], vec![0f32; vocab * hidden]);
        let rows = (self.chunk / vocab.max(1)).clamp(1, n.max(1));
        let mut z = vec![0f32; rows * vocab];
        for r0 in (0..n).step_by(rows) {
            let r = rows.min(n - r0);
            let (hc, z) = (&h[r0 * hidden..(r0 + r) * hidden], &mut z[..r * vocab]);
            let x = Operand { data: hc, rows: r, cols: hidden, transposed: false };
            sgemm(
                r,
                vocab,
                hidden,
                x,
                Operand { data: w, rows: vocab, cols: hidden, transposed: true },
                z,
                Out::Write,
            )?;
            let targets = &self.targets[r0..r0 + r];
            z.par_chunks_mut(vocab)
                .zip(loss[r0..r0 + r].par_iter_mut())
                .zip(targets.par_iter())
                .enumerate()
                .for_each(|(i, ((z, loss), t))| {
                    let Some(t) = *t else {
                        z.fill(0.0);
                        return;
                    };
                    let (m, at_target) = (max(z), z[t as usize]);
                    z.iter_mut().for_each(|v| *v -= m);
                    let sum = exp_in_place(z);
                    *loss = m + sum.ln() - at_target;
                    let s = g.map_or(1.0, |g| g[r0 + i]);
                    let scale = s / sum;
                    z.iter_mut().for_each(|v| *v *= scale);
                    z[t as usize] -= s;
                });
            let dz = Operand { data: z, rows: r, cols: vocab, transposed: false };
            let wm = Operand { data: w, rows: vocab, cols: hidden, transposed: false };
            sgemm(r, hidden, vocab, dz, wm, &mut dh[r0 * hidden..(r0 + r) * hidden], Out::Write)?;
            let dzt = Operand { data: z, rows: r, cols: vocab, transposed: true };
            sgemm(vocab, hidden, r, dzt, x, &mut dw, Out::Add)?;
        }
        Ok((loss, dh, dw))
    }
}

impl CustomOp2 for LmHeadLoss {
    fn name(&self) -> &'static str {
        "hashi-lm-head-loss"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let [h, w] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let ((n, hidden), (_, cols)) = (l1.shape().dims2()?, l2.shape().dims2()?);
        if cols != hidden || n != self.targets.len() {
            return Err(candle_core::Error::Msg(format!(
                "{}: hidden rows {:?}, W {:?} and {} targets do not fit",
                self.name(),
                l1.dims(),
                l2.dims(),
                self.targets.len()
            )));
        }
        let (loss, dh, dw) = self.pass(h, w, hidden, None)?;
        *self.unit.lock().map_err(|_| candle_core::Error::Msg("lm-head loss: poisoned".into()))? =
            Some((dh, dw));
        Ok((CpuStorage::F32(loss), Shape::from(n)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        _loss: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g: Vec<f32> = grad.flatten_all()?.to_vec1()?;
        let mut scored = g.iter().zip(self.targets.iter()).filter(|(_, t)| t.is_some()).map(|(g, _)| *g);
        let first = scored.next().unwrap_or(0.0);
        let uniform = scored.all(|v| v == first);
        let unit =
            self.unit.lock().map_err(|_| candle_core::Error::Msg("lm-head loss: poisoned".into()))?.take();
        let (dh, dw) = match (uniform, unit) {
            (true, Some((mut dh, mut dw))) => {
                dh.par_iter_mut().for_each(|v| *v *= first);
                dw.par_iter_mut().for_each(|v| *v *= first);
                (dh, dw)
            }
            _ => {
                let hidden = h.dim(1)?;
                let (_, dh, dw) = with_f32([h, w], |[h, w]| self.pass(h, w, hidden, Some(&g)))??;
                (dh, dw)
            }
        };
        Ok((
            Some(Tensor::from_vec(dh, h.shape(), h.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

/// Per-row cross-entropy of the logits `hidden · wᵀ` (rows `hidden` `[n, h]`, output weight `w` `[vocab, h]`,
/// f32 on the CPU) against `targets` (one per row, `None` = ignored, loss 0; ids `< vocab`, checked by the
/// caller), without the logits tensor: `[n]`, differentiable in `hidden` and `w`. The same values as
/// [`super::linear`] then [`super::cross_entropy_rows`].
///
/// # Errors
/// When the shapes and targets do not fit or a tensor is not f32 on the CPU.
pub fn lm_head_cross_entropy(hidden: &Tensor, w: &Tensor, targets: Vec<Option<u32>>) -> Result<Tensor> {
    chunked(hidden, w, targets, CHUNK)
}

fn chunked(hidden: &Tensor, w: &Tensor, targets: Vec<Option<u32>>, chunk: usize) -> Result<Tensor> {
    let op = LmHeadLoss { targets: Arc::new(targets), chunk, unit: Mutex::new(None) };
    hidden.contiguous()?.apply_op2(&w.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{diff, randn};
    use crate::ops::{cross_entropy_rows, linear};

    #[test]
    fn matches_the_logits_then_cross_entropy_with_gradients() -> Result<()> {
        // Chunks of 2 rows: 5 chunks, the last one short.
        let (n, hidden, vocab) = (9, 16, 300);
        let h = randn(&[n, hidden], 1.0, 51);
        let w = randn(&[vocab, hidden], 0.02, 52);
        let targets: Vec<Option<u32>> =
            (0..n).map(|i| (i % 4 != 1).then_some((i * 7919 % vocab) as u32)).collect();
        let ours = chunked(h.as_tensor(), w.as_tensor(), targets.clone(), 2 * vocab)?;
        let theirs = cross_entropy_rows(&linear(h.as_tensor(), w.as_tensor())?, targets)?;
        assert!(diff(&ours, &theirs) < 1e-4, "losses differ by {}", diff(&ours, &theirs));
        // A mean (the same upstream gradient on every row: the scaled forward gradients) and per-row weights
        // (recomputed).
        let weights =
            Tensor::from_vec((0..n).map(|i| 1.0 + i as f32).collect::<Vec<_>>(), n, h.as_tensor().device())?;
        for (name, reduce) in [("mean", None), ("weighted", Some(&weights))] {
            let (a, b) = match reduce {
                None => ((ours.sum_all()? / 7.0)?, (theirs.sum_all()? / 7.0)?),
                Some(wt) => ((&ours * wt)?.sum_all()?, (&theirs * wt)?.sum_all()?),
            };
            let (g1, g2) = (a.backward()?, b.backward()?);
            for v in [&h, &w] {
                let (x, y) = (g1.get(v.as_tensor()).expect("grad"), g2.get(v.as_tensor()).expect("grad"));
                assert!(diff(x, y) < 1e-5, "{name}: grad differs by {}", diff(x, y));
            }
        }
        Ok(())
    }
}
