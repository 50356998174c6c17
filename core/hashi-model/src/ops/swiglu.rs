//! SwiGLU gate over the packed gate/up projection: each row of `gu` is `[g | u]` (the outputs of
//! `x [W_gate; W_up]ᵀ`, one product for both), and `y = silu(g) ⊙ u` with `silu(g) = g·σ(g)`.
//!
//! Backward, one kernel for both halves: `dg = dy ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g)))`, `du = dy ⊙ silu(g)`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, exp_approx, f32_inputs};

/// Output elements per parallel task (whole rows).
const CHUNK: usize = 1 << 14;

/// `σ(x)`, with the vectorisable `exp` of [`super::exp_in_place`].
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

/// Rows per parallel task for rows of `width` output elements.
fn rows_per_task(width: usize) -> usize {
    (CHUNK / width.max(1)).max(1)
}

/// The gate width `I` of `gu` `[.., 2·I]`.
fn half_width(l: &Layout, name: &str) -> Result<usize> {
    let w = l.dims().last().copied().unwrap_or(0);
    if w == 0 || w % 2 != 0 {
        return Err(candle_core::Error::Msg(format!(
            "{name}: last dimension {:?} is not [gate | up]",
            l.dims()
        )));
    }
    Ok(w / 2)
}

struct Swiglu;

impl CustomOp1 for Swiglu {
    fn name(&self) -> &'static str {
        "hashi-swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
        let gu = contiguous_f32(s1, l1, self.name())?;
        let i = half_width(l1, self.name())?;
        let mut y = vec![0f32; gu.len() / 2];
        let rows = rows_per_task(i);
        y.par_chunks_mut(rows * i).zip(gu.par_chunks(rows * 2 * i)).for_each(|(y, gu)| {
            for (y, gu) in y.chunks_mut(i).zip(gu.chunks(2 * i)) {
                let (g, u) = gu.split_at(i);
                for ((yi, &gi), &ui) in y.iter_mut().zip(g).zip(u) {
                    *yi = gi * sigmoid(gi) * ui;
                }
            }
        });
        let mut dims = l1.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = i;
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(&self, gu: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(gu.apply_op2_no_bwd(&dy.contiguous()?, &SwigluBackward)?))
    }
}

/// `d[g | u]` from `[g | u]` and `dy`.
struct SwigluBackward;

impl CustomOp2 for SwigluBackward {
    fn name(&self) -> &'static str {
        "hashi-swiglu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let [gu, dy] = f32_inputs(self.name(), [(s1, l1), (s2, l2)])?;
        let i = half_width(l1, self.name())?;
        let mut dgu = vec![0f32; gu.len()];
        let rows = rows_per_task(i);
        dgu.par_chunks_mut(rows * 2 * i)
            .zip(gu.par_chunks(rows * 2 * i).zip(dy.par_chunks(rows * i)))
            .for_each(|(dgu, (gu, dy))| {
                for (dgu, (gu, dy)) in dgu.chunks_mut(2 * i).zip(gu.chunks(2 * i).zip(dy.chunks(i))) {
                    let (dg, du) = dgu.split_at_mut(i);
                    let (g, u) = gu.split_at(i);
                    for j in 0..i {
                        let s = sigmoid(g[j]);
                        dg[j] = dy[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
                        du[j] = dy[j] * g[j] * s;
                    }
                }
            });
        Ok((CpuStorage::F32(dgu), l1.shape().clone()))
    }
}

/// `silu(g) ⊙ u` of `gu` `[.., 2·I]` (f32, CPU), each row `[g | u]`; returns `[.., I]`, differentiable in `gu`.
///
/// # Errors
/// When the last dimension is 0 or odd, or `gu` is not f32 on the CPU.
pub fn swiglu(gu: &Tensor) -> Result<Tensor> {
    gu.contiguous()?.apply_op1(Swiglu)
}

#[cfg(test)]
mod tests {
    use candle_core::D;

    use super::*;
    use crate::ops::testing::{diff, randn};

    #[test]
    fn matches_composed_silu_mul_and_its_gradients() -> Result<()> {
        // Scales 3 and 1 on the two halves: the gate's large values reach both tails of the sigmoid.
        let g = randn(&[4, 9, 33], 3.0, 21);
        let u = randn(&[4, 9, 33], 1.0, 22);
        let gu = candle_core::Var::from_tensor(&Tensor::cat(&[g.as_tensor(), u.as_tensor()], D::Minus1)?)?;
        let probe = randn(&[4, 9, 33], 1.0, 23).as_tensor().detach();
        let ours = swiglu(gu.as_tensor())?;
        let theirs = (g.as_tensor().silu()? * u.as_tensor())?;
        assert_eq!(ours.dims(), [4, 9, 33]);
        assert!(diff(&ours, &theirs) < 1e-5);
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        let expected = Tensor::cat(
            &[g2.get(g.as_tensor()).expect("grad"), g2.get(u.as_tensor()).expect("grad")],
            D::Minus1,
        )?;
        let ours = g1.get(gu.as_tensor()).expect("grad");
        assert!(diff(ours, &expected) < 1e-5, "grad differs by {}", diff(ours, &expected));
        Ok(())
    }

    #[test]
    fn refuses_an_odd_last_dimension() {
        let e = swiglu(randn(&[3, 5], 1.0, 1).as_tensor()).expect_err("5 is not [gate | up]");
        assert!(e.to_string().contains("[gate | up]"), "{e}");
    }
}
