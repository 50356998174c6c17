//! SwiGLU gate: `y = silu(g) ⊙ u` with `silu(g) = g·σ(g)`.
//!
//! Backward: `dg = dy ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g)))`, `du = dy ⊙ silu(g)`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::contiguous_f32;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

struct Swiglu;

impl CustomOp2 for Swiglu {
    fn name(&self) -> &'static str {
        "hashi-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = contiguous_f32(s1, l1, self.name())?;
        let u = contiguous_f32(s2, l2, self.name())?;
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK))).for_each(|(y, (g, u))| {
            for ((yi, &gi), &ui) in y.iter_mut().zip(g).zip(u) {
                *yi = gi * sigmoid(gi) * ui;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        g: &Tensor,
        u: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dg = g.apply_op3_no_bwd(u, &dy, &SwigluBackwardGate)?;
        let du = (g.silu()? * dy)?;
        Ok((Some(dg), Some(du)))
    }
}

struct SwigluBackwardGate;

impl CustomOp3 for SwigluBackwardGate {
    fn name(&self) -> &'static str {
        "hashi-swiglu-bwd"
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
        let g = contiguous_f32(s1, l1, self.name())?;
        let u = contiguous_f32(s2, l2, self.name())?;
        let dy = contiguous_f32(s3, l3, self.name())?;
        let mut dg = vec![0f32; g.len()];
        dg.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK))))
            .for_each(|(dg, (g, (u, dy)))| {
                for i in 0..dg.len() {
                    let s = sigmoid(g[i]);
                    dg[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
                }
            });
        Ok((CpuStorage::F32(dg), l1.shape().clone()))
    }
}

/// `silu(gate) ⊙ up` for f32 CPU tensors of equal shape, differentiable in both.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.dims() != up.dims() {
        return Err(candle_core::Error::Msg(format!("swiglu: {:?} vs {:?}", gate.dims(), up.dims())));
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, Swiglu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{diff, randn};

    #[test]
    fn matches_composed_silu_mul_and_its_gradients() -> Result<()> {
        let g = randn(&[4, 9, 33], 3.0, 21);
        let u = randn(&[4, 9, 33], 1.0, 22);
        let probe = randn(&[4, 9, 33], 1.0, 23).as_tensor().detach();
        let ours = swiglu(g.as_tensor(), u.as_tensor())?;
        let theirs = (g.as_tensor().silu()? * u.as_tensor())?;
        assert!(diff(&ours, &theirs) < 1e-5);
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        for v in [&g, &u] {
            let (a, b) = (g1.get(v.as_tensor()).expect("grad"), g2.get(v.as_tensor()).expect("grad"));
            assert!(diff(a, b) < 1e-5, "grad differs by {}", diff(a, b));
        }
        Ok(())
    }
}
