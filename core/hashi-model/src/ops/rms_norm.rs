//! RMSNorm as in Llama: `y = x · r · w` with `r = 1/√(mean(x²) + ε)` per row.
//!
//! Backward, with `x̂ = x·r` and `g = dy ⊙ w`: `dx = r · (g − x̂ · mean(g ⊙ x̂))`, `dw = Σ_rows dy ⊙ x̂`.

use candle_core::{CpuStorage, CustomOp2, D, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, dot};

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
        let x = contiguous_f32(s1, l1, self.name())?;
        let w = contiguous_f32(s2, l2, self.name())?;
        let cols = w.len();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(cols).zip(x.par_chunks(cols)).for_each(|(y, x)| {
            let r = inv_rms(x, self.eps);
            for ((yi, &xi), &wi) in y.iter_mut().zip(x).zip(w) {
                *yi = xi * r * wi;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let cols = w.elem_count();
        let dy = dy.contiguous()?;
        // [rows, 2·cols]: dx in the first half, the per-row terms of dw in the second.
        let both = x.apply_op3_no_bwd(w, &dy, &RmsNormBackward { eps: self.eps })?;
        let dx = both.narrow(D::Minus1, 0, cols)?.reshape(x.shape())?;
        let dw = both.narrow(D::Minus1, cols, cols)?.sum(0)?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw)))
    }
}

struct RmsNormBackward {
    eps: f32,
}

impl candle_core::CustomOp3 for RmsNormBackward {
    fn name(&self) -> &'static str {
        "hashi-rms-norm-bwd"
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
        let x = contiguous_f32(s1, l1, self.name())?;
        let w = contiguous_f32(s2, l2, self.name())?;
        let dy = contiguous_f32(s3, l3, self.name())?;
        let cols = w.len();
        let rows = x.len() / cols;
        let mut out = vec![0f32; 2 * x.len()];
        out.par_chunks_mut(2 * cols).zip(x.par_chunks(cols).zip(dy.par_chunks(cols))).for_each(
            |(o, (x, dy))| {
                let r = inv_rms(x, self.eps);
                let (dx, dw) = o.split_at_mut(cols);
                let mut mean_gx = 0f32;
                for i in 0..cols {
                    let xh = x[i] * r;
                    dw[i] = dy[i] * xh;
                    mean_gx += dy[i] * w[i] * xh;
                }
                mean_gx /= cols as f32;
                for i in 0..cols {
                    dx[i] = r * (dy[i] * w[i] - x[i] * r * mean_gx);
                }
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, 2 * cols))))
    }
}

/// RMSNorm over the last dimension, differentiable in `x` and `w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(w, RmsNorm { eps: eps as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{diff, randn};

    fn reference(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
        x.broadcast_mul(&r)?.broadcast_mul(w)
    }

    #[test]
    fn matches_composed_rms_norm_and_its_gradients() -> Result<()> {
        let x = randn(&[2, 7, 24], 2.0, 3);
        let w = randn(&[24], 1.0, 4);
        let probe = randn(&[2, 7, 24], 1.0, 5).as_tensor().detach();
        let ours = rms_norm(x.as_tensor(), w.as_tensor(), 1e-6)?;
        let theirs = reference(x.as_tensor(), w.as_tensor(), 1e-6)?;
        assert!(diff(&ours, &theirs) < 1e-5);
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        for v in [&x, &w] {
            let (a, b) = (g1.get(v.as_tensor()).expect("grad"), g2.get(v.as_tensor()).expect("grad"));
            assert!(diff(a, b) < 1e-4, "grad differs by {}", diff(a, b));
        }
        Ok(())
    }
}
