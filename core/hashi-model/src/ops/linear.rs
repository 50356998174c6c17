//! The linear layer's product `y = x Wᵀ` as one op with its own backward, so that the weight's gradient is
//! computed directly in the weight's `[out, in]` layout (`dW = dyᵀ x`) instead of as the gradient of a transposed
//! view, which candle's autograd would accumulate with a strided pass per step.
//!
//! Forward `y[n, out] = x[n, in] · W[out, in]ᵀ`; backward `dx = dy · W`, `dW = dyᵀ · x` (all f32, row-major).
//! The products run on [`super::gemm::sgemm`]: the `gemm` crate, or OpenBLAS with the `openblas` feature.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::contiguous_f32;
use super::gemm::{Operand, Out, sgemm};

/// `op(A) · op(B)` of two contiguous row-major f32 matrices, `op` = identity or transpose.
struct MatMul {
    name: &'static str,
    /// Whether A is used transposed.
    ta: bool,
    /// Whether B is used transposed.
    tb: bool,
}

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (contiguous_f32(s1, l1, self.name)?, contiguous_f32(s2, l2, self.name)?);
        let ((ar, ac), (br, bc)) = (l1.shape().dims2()?, l2.shape().dims2()?);
        let (m, k) = if self.ta { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if self.tb { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(candle_core::Error::Msg(format!(
                "{}: inner sizes differ ({:?} vs {:?})",
                self.name,
                l1.dims(),
                l2.dims()
            )));
        }
        let mut c = vec![0f32; m * n];
        sgemm(
            m,
            n,
            k,
            Operand { data: a, rows: ar, cols: ac, transposed: self.ta },
            Operand { data: b, rows: br, cols: bc, transposed: self.tb },
            &mut c,
            Out::Write,
        )?;
        Ok((CpuStorage::F32(c), Shape::from((m, n))))
    }
}

/// `x · Wᵀ` (the differentiable op).
struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "hashi-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        MatMul { name: self.name(), ta: false, tb: true }.cpu_fwd(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = dy.apply_op2_no_bwd(w, &MatMul { name: "hashi-linear-dx", ta: false, tb: false })?;
        let dw = dy.apply_op2_no_bwd(x, &MatMul { name: "hashi-linear-dw", ta: true, tb: false })?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `x · wᵀ` for f32 CPU matrices `x` `[n, in]` and `w` `[out, in]`, giving `[n, out]`; differentiable in both,
/// with `w`'s gradient in `w`'s own layout.
///
/// # Errors
/// When either is not 2-D f32 on the CPU or the inner sizes differ.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{diff, randn};

    #[test]
    fn matches_candles_matmul_and_its_gradients() -> Result<()> {
        for (n, i, o) in [(1, 7, 5), (37, 64, 96), (130, 33, 257)] {
            let x = randn(&[n, i], 1.0, 31);
            let w = randn(&[o, i], 0.5, 32);
            let probe = randn(&[n, o], 1.0, 33).as_tensor().detach();
            let ours = linear(x.as_tensor(), w.as_tensor())?;
            let theirs = x.as_tensor().matmul(&w.as_tensor().t()?)?;
            assert!(diff(&ours, &theirs) < 1e-4, "forward differs by {}", diff(&ours, &theirs));
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for v in [&x, &w] {
                let (a, b) = (g1.get(v.as_tensor()).expect("grad"), g2.get(v.as_tensor()).expect("grad"));
                assert!(a.is_contiguous(), "gradients come in the parameter's layout");
                assert!(diff(a, b) < 1e-4, "grad differs by {}", diff(a, b));
            }
        }
        Ok(())
    }

    #[test]
    fn refuses_mismatched_inner_sizes() {
        let (x, w) = (randn(&[3, 4], 1.0, 1), randn(&[5, 6], 1.0, 2));
        let e = linear(x.as_tensor(), w.as_tensor()).expect_err("4 vs 6");
        assert!(e.to_string().contains("inner sizes differ"), "{e}");
    }
}
