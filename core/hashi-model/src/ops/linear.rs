//! The linear layer's product `y = x Wᵀ` as one op with its own backward, so that the weight's gradient is
//! computed directly in the weight's `[out, in]` layout (`dW = dyᵀ x`) instead of as the gradient of a transposed
//! view, which candle's autograd would accumulate with a strided pass per step.
//!
//! Forward `y[n, out] = x[n, in] · W[out, in]ᵀ`; backward `dx = dy · W`, `dW = dyᵀ · x` (all f32, row-major).
//! The products run on [`super::gemm::sgemm`]: the `gemm` crate, or OpenBLAS with the `openblas` feature.
//!
//! Two fused forms take a decoder layer's neighbours into the same op, so that autograd keeps one node (one
//! zero-filled gradient and one accumulation per step) where it had two: [`norm_linear`], RMSNorm then the
//! product (the normalized rows are recomputed in the backward pass, not kept), and [`linear_residual`], the
//! product added onto the residual stream (`dr = dy`).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::gemm::{Operand, Out, sgemm};
use super::{f32_inputs, misfit, rms_norm, with_f32};

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
        let [a, b] = f32_inputs(self.name, [(s1, l1), (s2, l2)])?;
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
        let (dx, dw) = linear_grads(x, w, &dy.contiguous()?)?;
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

/// `[n, out]` = `x` `[n, in]` · `w` `[out, in]`ᵀ, added to `c` when `out` is [`Out::Add`].
fn product_t(
    x: &[f32],
    w: &[f32],
    rows: usize,
    (o, i): (usize, usize),
    c: &mut [f32],
    out: Out,
) -> Result<()> {
    sgemm(
        rows,
        o,
        i,
        Operand { data: x, rows, cols: i, transposed: false },
        Operand { data: w, rows: o, cols: i, transposed: true },
        c,
        out,
    )
}

/// `(dx, dW)` of `x · Wᵀ` from `dy` `[n, out]`: `dy · W` and `dyᵀ · x`.
fn linear_grads(x: &Tensor, w: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    let dx = dy.apply_op2_no_bwd(w, &MatMul { name: "hashi-linear-dx", ta: false, tb: false })?;
    let dw = dy.apply_op2_no_bwd(x, &MatMul { name: "hashi-linear-dw", ta: true, tb: false })?;
    Ok((dx, dw))
}

/// `rms_norm(x, g) · Wᵀ`.
struct NormLinear {
    eps: f32,
}

impl CustomOp3 for NormLinear {
    fn name(&self) -> &'static str {
        "hashi-norm-linear"
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
        let [x, g, w] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let ((rows, cols), (o, i)) = (l1.shape().dims2()?, l3.shape().dims2()?);
        if cols != i || g.len() != i {
            return Err(misfit(self.name(), &[("x", l1), ("norm weight", l2), ("W", l3)]));
        }
        let mut y = vec![0f32; rows * o];
        product_t(&rms_norm::normalize(x, g, self.eps), w, rows, (o, i), &mut y, Out::Write)?;
        Ok((CpuStorage::F32(y), Shape::from((rows, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        g: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let normed = with_f32([x, g], |[x, g]| rms_norm::normalize(x, g, self.eps))?;
        let normed = Tensor::from_vec(normed, x.shape(), x.device())?;
        let (dn, dw) = linear_grads(&normed, w, &dy)?;
        let (dx, dg) = with_f32([x, g, &dn], |[x, g, dn]| rms_norm::backward(x, g, dn, self.eps))?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dg, g.shape(), g.device())?),
            Some(dw),
        ))
    }
}

/// `r + x · Wᵀ`.
struct LinearResidual;

impl CustomOp3 for LinearResidual {
    fn name(&self) -> &'static str {
        "hashi-linear-residual"
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
        let [r, x, w] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let ((rows, o2), (xr, cols), (o, i)) =
            (l1.shape().dims2()?, l2.shape().dims2()?, l3.shape().dims2()?);
        if (xr, cols) != (rows, i) || o2 != o {
            return Err(misfit(self.name(), &[("residual", l1), ("x", l2), ("W", l3)]));
        }
        let mut y = r.to_vec();
        product_t(x, w, rows, (o, i), &mut y, Out::Add)?;
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _r: &Tensor,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let (dx, dw) = linear_grads(x, w, &dy)?;
        Ok((Some(dy), Some(dx), Some(dw)))
    }
}

/// `rms_norm(x, g, eps) · wᵀ` for f32 CPU rows `x` `[n, in]`, norm weight `g` `[in]` and `w` `[out, in]`, giving
/// `[n, out]`; differentiable in all three (the same values as [`super::rms_norm`] then [`linear`]).
///
/// # Errors
/// When the shapes do not fit or a tensor is not f32 on the CPU.
pub fn norm_linear(x: &Tensor, g: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&g.contiguous()?, &w.contiguous()?, NormLinear { eps: eps as f32 })
}

/// `r + x · wᵀ` for f32 CPU rows `r` `[n, out]`, `x` `[n, in]` and `w` `[out, in]`; differentiable in all three.
///
/// # Errors
/// When the shapes do not fit or a tensor is not f32 on the CPU.
pub fn linear_residual(r: &Tensor, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    r.contiguous()?.apply_op3(&x.contiguous()?, &w.contiguous()?, LinearResidual)
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
    fn fused_norm_and_residual_forms_match_the_composed_ops_and_their_gradients() -> Result<()> {
        // 150 rows: more than one task of the norm's backward.
        let (x, g, w) = (randn(&[150, 24], 2.0, 34), randn(&[24], 1.0, 35), randn(&[40, 24], 0.5, 36));
        let r = randn(&[150, 40], 1.0, 37);
        let probe = randn(&[150, 40], 1.0, 38).as_tensor().detach();
        let (xs, gs, ws, rs) = (x.as_tensor(), g.as_tensor(), w.as_tensor(), r.as_tensor());
        for (name, ours, theirs, vars) in [
            (
                "norm_linear",
                norm_linear(xs, gs, ws, 1e-5)?,
                linear(&crate::ops::rms_norm(xs, gs, 1e-5)?, ws)?,
                vec![&x, &g, &w],
            ),
            ("linear_residual", linear_residual(rs, xs, ws)?, (rs + linear(xs, ws)?)?, vec![&r, &x, &w]),
        ] {
            assert!(diff(&ours, &theirs) < 1e-4, "{name}: forward differs by {}", diff(&ours, &theirs));
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for v in vars {
                let (a, b) = (g1.get(v.as_tensor()).expect("grad"), g2.get(v.as_tensor()).expect("grad"));
                assert!(diff(a, b) < 1e-3, "{name}: grad differs by {}", diff(a, b));
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
