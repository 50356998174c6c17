//! Causal, scaled softmax over attention scores: for query row `i` of `t` new positions after `offset` cached
//! ones, `y_j = exp(s·x_j − m) / Σ_k exp(s·x_k − m)` over the visible keys `j ≤ offset + i`, and `y_j = 0` beyond.
//! With a sliding window `w` the visible keys are also `j > offset + i − w` (transformers' `masking_utils`:
//! `sliding_window_overlay` and `causal_mask_function`, as Mistral and Qwen2 use them).
//! Scaling and masking are folded into the one pass (no mask tensor, no separate scale op).
//!
//! Backward: `dx = s · y ⊙ (dy − ⟨dy, y⟩)` (masked entries have `y = 0`, hence no gradient).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, dot, exp_in_place, max};

struct CausalSoftmax {
    scale: f32,
    offset: usize,
    window: Option<usize>,
}

impl CausalSoftmax {
    /// Range of the visible keys of row `r` (global row index over `[.., t, s]`).
    fn visible(&self, r: usize, t: usize) -> std::ops::Range<usize> {
        let end = self.offset + r % t + 1;
        let start = self.window.map_or(0, |w| end.saturating_sub(w));
        start..end
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "hashi-causal-softmax"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(st, l, self.name())?;
        let dims = l.dims();
        let (t, s) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        if self.offset + t != s {
            return Err(candle_core::Error::Msg(format!(
                "causal softmax: {t} queries + {} cached ≠ {s} keys",
                self.offset
            )));
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(s).zip(x.par_chunks(s)).enumerate().for_each(|(r, (y, x))| {
            let keys = self.visible(r, t);
            let (y, x) = (&mut y[keys.clone()], &x[keys]);
            let m = max(x) * self.scale;
            for (yi, &xi) in y.iter_mut().zip(x) {
                *yi = xi * self.scale - m;
            }
            let z = exp_in_place(y);
            let inv = 1.0 / z;
            y.iter_mut().for_each(|v| *v *= inv);
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxBackward { scale: self.scale })?))
    }
}

struct SoftmaxBackward {
    scale: f32,
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "hashi-softmax-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, self.name())?;
        let dy = contiguous_f32(s2, l2, self.name())?;
        let cols = l1.dims().last().copied().unwrap_or(1).max(1);
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(cols).zip(y.par_chunks(cols).zip(dy.par_chunks(cols))).for_each(|(dx, (y, dy))| {
            let d = dot(dy, y);
            for ((o, &yi), &gi) in dx.iter_mut().zip(y).zip(dy) {
                *o = self.scale * yi * (gi - d);
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Softmax of `scale · scores` over the last dimension with a causal mask: `scores` is `[.., t, offset + t]`
/// (queries at positions `offset..offset + t` against all keys so far), f32. With `window = Some(w)` (w ≥ 1) a
/// query sees only itself and the `w − 1` keys before it. Differentiable in `scores`.
pub fn causal_softmax(scores: &Tensor, scale: f64, offset: usize, window: Option<usize>) -> Result<Tensor> {
    if window == Some(0) {
        return Err(candle_core::Error::Msg("causal softmax: a sliding window of 0 sees no key".into()));
    }
    scores.contiguous()?.apply_op1(CausalSoftmax { scale: scale as f32, offset, window })
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device};

    use super::*;
    use crate::ops::testing::{diff, randn};

    fn reference(x: &Tensor, scale: f64, offset: usize, window: Option<usize>) -> Result<Tensor> {
        let (t, s) = (x.dim(D::Minus2)?, x.dim(D::Minus1)?);
        let w = window.unwrap_or(usize::MAX);
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                let q = offset + i;
                (0..s).map(move |j| if j > q || q - j >= w { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        let x = (x * scale)?.broadcast_add(&Tensor::from_vec(mask, (t, s), &Device::Cpu)?)?;
        let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    }

    #[test]
    fn matches_masked_scaled_softmax_and_its_gradient() -> Result<()> {
        for (t, offset, window) in
            [(7, 0, None), (3, 4, None), (1, 6, None), (7, 0, Some(3)), (3, 4, Some(2)), (1, 6, Some(1))]
        {
            let x = randn(&[2, 3, t, offset + t], 3.0, 1);
            let w = randn(&[2, 3, t, offset + t], 1.0, 2).as_tensor().detach();
            let ours = causal_softmax(x.as_tensor(), 0.25, offset, window)?;
            let theirs = reference(x.as_tensor(), 0.25, offset, window)?;
            assert!(
                diff(&ours, &theirs) < 1e-6,
                "t={t} offset={offset} window={window:?}: {}",
                diff(&ours, &theirs)
            );
            let g1 = (ours * &w)?.sum_all()?.backward()?;
            let g2 = (theirs * &w)?.sum_all()?.backward()?;
            let (a, b) = (g1.get(x.as_tensor()).expect("grad"), g2.get(x.as_tensor()).expect("grad"));
            assert!(diff(a, b) < 1e-6, "grad differs by {}", diff(a, b));
        }
        Ok(())
    }
}
