//! Cross-entropy per row of logits `[rows, vocab]`: `loss_i = logsumexp(x_i) − x_i[t_i]`, 0 for ignored rows.
//!
//! Backward: `dx_i = dloss_i · (exp(x_i − logsumexp(x_i)) − onehot(t_i))`, reusing the forward's logsumexp.
//! Neither direction materialises a log-softmax tensor, which for a 32k vocabulary is the largest activation
//! of a training step.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, D, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, exp_in_place, f32_inputs, max};

/// Targets of each row; `None` = ignored.
type Targets = Arc<Vec<Option<u32>>>;

/// Forward: `[rows, 2]` = (loss, logsumexp) per row.
struct CrossEntropy {
    targets: Targets,
}

fn log_sum_exp(x: &[f32], scratch: &mut Vec<f32>) -> f32 {
    let m = max(x);
    scratch.clear();
    scratch.extend(x.iter().map(|&v| v - m));
    m + exp_in_place(scratch).ln()
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "hashi-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let (rows, cols) = l.shape().dims2()?;
        if rows != self.targets.len() {
            return Err(candle_core::Error::Msg(format!(
                "{rows} rows of logits, {} targets",
                self.targets.len()
            )));
        }
        let mut out = vec![0f32; 2 * rows];
        out.par_chunks_mut(2).zip(x.par_chunks(cols).zip(self.targets.par_iter())).for_each_init(
            Vec::new,
            |scratch, (o, (x, t))| {
                if let Some(t) = *t {
                    let lse = log_sum_exp(x, scratch);
                    o[0] = lse - x[t as usize];
                    o[1] = lse;
                }
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, 2))))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let lse = res.narrow(D::Minus1, 1, 1)?.contiguous()?;
        let g = grad.narrow(D::Minus1, 0, 1)?.contiguous()?;
        Ok(Some(x.apply_op3_no_bwd(&lse, &g, &CrossEntropyBackward { targets: self.targets.clone() })?))
    }
}

struct CrossEntropyBackward {
    targets: Targets,
}

impl CustomOp3 for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "hashi-cross-entropy-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let [x, lse, g] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let (_, cols) = l1.shape().dims2()?;
        let mut dx = vec![0f32; x.len()];
        let per_row = self.targets.par_iter().zip(lse.par_iter().zip(g.par_iter()));
        dx.par_chunks_mut(cols).zip(x.par_chunks(cols)).zip(per_row).for_each(
            |((dx, x), (t, (&lse, &g)))| {
                let Some(t) = *t else { return };
                for (d, &v) in dx.iter_mut().zip(x) {
                    *d = v - lse;
                }
                exp_in_place(dx);
                dx.iter_mut().for_each(|d| *d *= g);
                dx[t as usize] -= g;
            },
        );
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Per-row cross-entropy of `logits` `[rows, vocab]` (f32, CPU) against `targets` (one per row, `None` =
/// ignored, loss 0). Target ids must be `< vocab` (checked by the caller). Differentiable in `logits`.
pub fn cross_entropy_rows(logits: &Tensor, targets: Vec<Option<u32>>) -> Result<Tensor> {
    let both = logits.contiguous()?.apply_op1(CrossEntropy { targets: Arc::new(targets) })?;
    both.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{diff, randn};

    #[test]
    fn matches_composed_log_softmax_nll_and_its_gradient() -> Result<()> {
        let x = randn(&[6, 50], 4.0, 7);
        let targets = vec![Some(3), None, Some(49), Some(0), None, Some(17)];
        let ours = cross_entropy_rows(x.as_tensor(), targets.clone())?;
        let xs = x.as_tensor();
        let lsm = xs.broadcast_sub(&xs.max_keepdim(D::Minus1)?.detach())?;
        let lsm = lsm.broadcast_sub(&lsm.exp()?.sum_keepdim(D::Minus1)?.log()?)?;
        let idx: Vec<u32> = targets.iter().map(|t| t.unwrap_or(0)).collect();
        let mask: Vec<f32> = targets.iter().map(|t| if t.is_some() { 1.0 } else { 0.0 }).collect();
        let idx = Tensor::from_vec(idx, (6, 1), xs.device())?;
        let mask = Tensor::from_vec(mask, 6, xs.device())?;
        let theirs = (lsm.gather(&idx, D::Minus1)?.squeeze(1)?.neg()? * mask)?;
        assert!(diff(&ours, &theirs) < 1e-5);
        let weights = Tensor::new(&[1f32, 2.0, 3.0, 4.0, 5.0, 6.0], xs.device())?;
        let g1 = (ours * &weights)?.sum_all()?.backward()?;
        let g2 = (theirs * &weights)?.sum_all()?.backward()?;
        let (a, b) = (g1.get(xs).expect("grad"), g2.get(xs).expect("grad"));
        assert!(diff(a, b) < 1e-5, "grad differs by {}", diff(a, b));
        Ok(())
    }
}
