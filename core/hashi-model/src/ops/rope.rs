//! Rotary position embedding, HF layout (`rotate_half`): `y = x ⊙ cos + rotate_half(x) ⊙ sin` with
//! `rotate_half([x₁, x₂]) = [−x₂, x₁]` over the two halves of the head dimension.
//!
//! `cos`/`sin` are `[seq, head_dim]` with equal halves (`cat(freqs, freqs)`), so the transpose of the rotation
//! is the rotation by −θ: backward is the same kernel with `−sin`. `cos`/`sin` are constants (no gradient).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::f32_inputs;

struct Rope;

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "hashi-rope"
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
        let [x, cos, sin] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let (seq, d) = l2.shape().dims2()?;
        let table = seq * d;
        let mut y = vec![0f32; x.len()];
        // x is [.., seq, d]: every block of seq·d elements uses the whole table.
        y.par_chunks_mut(table).zip(x.par_chunks(table)).for_each(|(y, x)| {
            for p in 0..seq {
                let (c, s) = (&cos[p * d..(p + 1) * d], &sin[p * d..(p + 1) * d]);
                rotate(&x[p * d..(p + 1) * d], c, s, 1.0, &mut y[p * d..(p + 1) * d]);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = dy.contiguous()?.apply_op3_no_bwd(cos, &sin.neg()?, &Rope)?;
        Ok((Some(dx), None, None))
    }
}

/// One head's row `x` `[d]` rotated by the angles of one position (`cos`, `sin` `[d]`, equal halves) into `y`:
/// `sign = 1` applies RoPE, `sign = −1` its inverse (the rotation by −θ, which is the backward pass).
pub(super) fn rotate(x: &[f32], cos: &[f32], sin: &[f32], sign: f32, y: &mut [f32]) {
    let half = x.len() / 2;
    for i in 0..half {
        y[i] = x[i] * cos[i] - sign * x[i + half] * sin[i];
        y[i + half] = x[i + half] * cos[i + half] + sign * x[i] * sin[i + half];
    }
}

/// Applies RoPE to `x` `[batch, heads, seq, head_dim]` with tables `cos`, `sin` `[seq, head_dim]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (_, _, seq, d) = x.dims4()?;
    if cos.dims() != [seq, d] || sin.dims() != [seq, d] {
        return Err(candle_core::Error::Msg(format!(
            "rope tables {:?} do not fit x {:?}",
            cos.dims(),
            x.dims()
        )));
    }
    x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, Rope)
}

#[cfg(test)]
mod tests {
    use candle_core::D;

    use super::*;
    use crate::ops::testing::{diff, randn};

    #[test]
    fn matches_composed_rotate_half_and_its_gradient() -> Result<()> {
        let x = randn(&[2, 3, 5, 8], 1.0, 11);
        let freqs = randn(&[5, 4], 2.0, 12).as_tensor().detach();
        let angles = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        let xs = x.as_tensor();
        let ours = rope(xs, &cos, &sin)?;
        let rotated =
            Tensor::cat(&[&xs.narrow(D::Minus1, 4, 4)?.neg()?, &xs.narrow(D::Minus1, 0, 4)?], D::Minus1)?;
        let theirs = (xs.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?;
        assert!(diff(&ours, &theirs) < 1e-6);
        let probe = randn(&[2, 3, 5, 8], 1.0, 13).as_tensor().detach();
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        assert!(diff(g1.get(xs).expect("grad"), g2.get(xs).expect("grad")) < 1e-6);
        Ok(())
    }
}
