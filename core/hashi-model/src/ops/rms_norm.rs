//! RMSNorm as in Llama: `y = x · r · w` with `r = 1/√(mean(x²) + ε)` per row.
//!
//! Backward, with `x̂ = x·r` and `g = dy ⊙ w`: `dx = r · (g − x̂ · mean(g ⊙ x̂))`, `dw = Σ_rows dy ⊙ x̂`.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{dot, f32_inputs, with_f32};

struct RmsNorm {
    eps: f32,
}

fn inv_rms(x: &[f32], eps: f32) -> f32 {
    1.0 / (dot(x, x) / x.len() as f32 + eps).sqrt()
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "hashi-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let [x, w] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        Ok((CpuStorage::F32(normalize(x, w, self.eps)), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, dy) = (x.contiguous()?, dy.contiguous()?);
        let (dx, dw) = with_f32([&x, w, &dy], |[x, w, dy]| backward(x, w, dy, self.eps))?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

/// Rows per parallel task of the backward pass; each task sums its own rows' terms of `dw`.
const ROWS: usize = 64;

/// The normalized rows `y` of rows `x` `[rows, cols]` (row-major) with weight `w` `[cols]`.
pub(super) fn normalize(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let cols = w.len();
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(cols).zip(x.par_chunks(cols)).for_each(|(y, x)| {
        let r = inv_rms(x, eps);
        for ((yi, &xi), &wi) in y.iter_mut().zip(x).zip(w) {
            *yi = xi * r * wi;
        }
    });
    y
}

/// `(dx, dw)` of rows `x` and their gradient `dy` (`[rows, cols]`, row-major), weight `w` `[cols]`.
pub(super) fn backward(x: &[f32], w: &[f32], dy: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let cols = w.len();
    let mut dx = vec![0f32; x.len()];
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(ROWS * cols)
        .zip(x.par_chunks(ROWS * cols).zip(dy.par_chunks(ROWS * cols)))
        .map(|(dx, (x, dy))| {
            let mut dw = vec![0f32; cols];
            for (dx, (x, dy)) in dx.chunks_mut(cols).zip(x.chunks(cols).zip(dy.chunks(cols))) {
                let r = inv_rms(x, eps);
                let mut mean_gx = 0f32;
                for i in 0..cols {
                    let xh = x[i] * r;
                    dw[i] += dy[i] * xh;
                    mean_gx += dy[i] * w[i] * xh;
                }
                mean_gx /= cols as f32;
                for i in 0..cols {
                    dx[i] = r * (dy[i] * w[i] - x[i] * r * mean_gx);
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0f32; cols];
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    (dx, dw)
}

/// RMSNorm over the last dimension, differentiable in `x` and `w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(w, RmsNorm { eps: eps as f32 })
}

#[cfg(test)]
mod tests {
    use candle_core::D;

    use super::*;
    use crate::ops::testing::{diff, randn};

    fn reference(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
        x.broadcast_mul(&r)?.broadcast_mul(w)
    }

    #[test]
    fn matches_composed_rms_norm_and_its_gradients() -> Result<()> {
        // 14 rows (one backward task) and 300 (several, each with its own partial sum of dw).
        for rows in [7, 150] {
            let x = randn(&[2, rows, 24], 2.0, 3);
            let w = randn(&[24], 1.0, 4);
            let probe = randn(&[2, rows, 24], 1.0, 5).as_tensor().detach();
            let ours = rms_norm(x.as_tensor(), w.as_tensor(), 1e-6)?;
            let theirs = reference(x.as_tensor(), w.as_tensor(), 1e-6)?;
            assert!(diff(&ours, &theirs) < 1e-5);
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for v in [&x, &w] {
                let (a, b) = (g1.get(v.as_tensor()).expect("grad"), g2.get(v.as_tensor()).expect("grad"));
                assert!(diff(a, b) < 1e-4, "{rows} rows: grad differs by {}", diff(a, b));
            }
        }
        Ok(())
    }
}
