//! Attention straight from a layer's packed projection `qkv = x [W_q; W_k; W_v]ᵀ` `[b·t, (heads + 2·kv)·d]`,
//! RoPE inside, output in the rows' layout `[b·t, heads·d]` that the output projection reads.
//!
//! One op where the training graph had, per layer, three head splits (a reshape, a transpose and a copy each),
//! two RoPE ops, the attention and a transpose back. Autograd gives every one of those nodes a zero-filled
//! gradient buffer and an accumulation pass per step; here the head layout lives only inside the op.
//!
//! Forward: each row's heads are unpacked into `[b, heads, t, d]` blocks, q and k rotated
//! ([`super::rope::rotate`]), [`Attention`] runs, and its output heads are written back side by side.
//! Backward: the unpacking is recomputed (nothing but the op's input and output is kept), [`Attention`]'s
//! backward gives dq, dk, dv, and the inverse rotation packs dq and dk (with dv) into the projection's layout.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::attention::{Attention, Dims};
use super::rope::rotate;
use super::{f32_inputs, with_f32};

/// The head layout of a packed projection.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Sequences in the batch; the rows are `batch · t`, sequence-major.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (`heads` is a multiple of it).
    pub kv_heads: usize,
    /// Size of one head (even, for RoPE's halves).
    pub head_dim: usize,
}

struct QkvAttention {
    attn: Attention,
    heads: Heads,
}

/// One group of heads inside a row-major `[b·t, width]` matrix: `count` heads of size `d` starting at column
/// `col`, rotated by `sign` (1: RoPE, −1: its inverse) or copied as they are (`None`).
struct Part<'a> {
    count: usize,
    col: usize,
    sign: Option<f32>,
    data: &'a [f32],
}

impl Part<'_> {
    /// One head's row `src` at position `p` into `dst`: rotated by this part's sign, or copied.
    fn place(&self, src: &[f32], dst: &mut [f32], p: usize, cos: &[f32], sin: &[f32]) {
        let d = src.len();
        match self.sign {
            Some(sign) => rotate(src, &cos[p * d..(p + 1) * d], &sin[p * d..(p + 1) * d], sign, dst),
            None => dst.copy_from_slice(src),
        }
    }
}

impl QkvAttention {
    /// The attention sizes of `qkv` `[b·t, (heads + 2·kv)·d]` with RoPE tables `[t, d]`.
    fn dims(&self, qkv: &[usize], cos: &[usize]) -> Result<Dims> {
        let err = |m: String| candle_core::Error::Msg(format!("qkv attention: {m}"));
        let Heads { batch, heads, kv_heads: kv, head_dim: d } = self.heads;
        let &[n, w] = qkv else {
            return Err(err(format!("qkv {qkv:?} must be [batch · positions, width]")));
        };
        if batch == 0 || kv == 0 || heads % kv != 0 || d % 2 != 0 {
            return Err(err(format!("{heads} heads over {kv} key/value heads of size {d}, batch {batch}")));
        }
        if n % batch != 0 || w != (heads + 2 * kv) * d {
            return Err(err(format!(
                "qkv {qkv:?} is not {batch} sequences of (heads + 2·kv)·d = {}",
                (heads + 2 * kv) * d
            )));
        }
        let t = n / batch;
        if cos != [t, d] {
            return Err(err(format!("rope tables {cos:?} do not fit {t} positions of {d}")));
        }
        Ok(Dims { b: batch, kv, groups: heads / kv, t, s: t, d })
    }

    /// Width of a row of `qkv`.
    fn width(g: Dims) -> usize {
        (g.kv * g.groups + 2 * g.kv) * g.d
    }

    /// `[b, count, t, d]` blocks from the heads `part` of row-major `src` `[b·t, width]`.
    fn heads_of(g: Dims, width: usize, part: &Part<'_>, cos: &[f32], sin: &[f32]) -> Vec<f32> {
        let (t, d) = (g.t, g.d);
        let mut out = vec![0f32; g.b * part.count * t * d];
        out.par_chunks_mut(t * d).enumerate().for_each(|(i, block)| {
            let (b, h) = (i / part.count, i % part.count);
            for p in 0..t {
                let at = (b * t + p) * width + part.col + h * d;
                part.place(&part.data[at..at + d], &mut block[p * d..(p + 1) * d], p, cos, sin);
            }
        });
        out
    }

    /// Row-major `[b·t, width]` with each `part`'s `[b, count, t, d]` blocks written at its columns.
    fn rows_of(g: Dims, width: usize, parts: &[Part<'_>], cos: &[f32], sin: &[f32]) -> Vec<f32> {
        let (t, d) = (g.t, g.d);
        let mut out = vec![0f32; g.b * t * width];
        out.par_chunks_mut(width).enumerate().for_each(|(r, row)| {
            let (b, p) = (r / t, r % t);
            for part in parts {
                for h in 0..part.count {
                    let at = ((b * part.count + h) * t + p) * d;
                    let dst = &mut row[part.col + h * d..part.col + (h + 1) * d];
                    part.place(&part.data[at..at + d], dst, p, cos, sin);
                }
            }
        });
        out
    }

    /// q `[b, heads, t, d]` and k, v `[b, kv, t, d]` of `qkv`, q and k rotated.
    fn unpack(g: Dims, qkv: &[f32], cos: &[f32], sin: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (w, h, d) = (Self::width(g), g.kv * g.groups, g.d);
        let part = |count, col, sign| Part { count, col, sign, data: qkv };
        (
            Self::heads_of(g, w, &part(h, 0, Some(1.0)), cos, sin),
            Self::heads_of(g, w, &part(g.kv, h * d, Some(1.0)), cos, sin),
            Self::heads_of(g, w, &part(g.kv, (h + g.kv) * d, None), cos, sin),
        )
    }
}

impl CustomOp3 for QkvAttention {
    fn name(&self) -> &'static str {
        "hashi-qkv-attention"
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
        let g = self.dims(l1.dims(), l2.dims())?;
        let [qkv, cos, sin] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        let (q, k, v) = Self::unpack(g, qkv, cos, sin);
        let y = self.attn.forward(g, &q, &k, &v)?;
        let hd = g.kv * g.groups * g.d;
        let y =
            Self::rows_of(g, hd, &[Part { count: g.kv * g.groups, col: 0, sign: None, data: &y }], cos, sin);
        Ok((CpuStorage::F32(y), Shape::from((g.b * g.t, hd))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let g = self.dims(qkv.dims(), cos.dims())?;
        let dqkv = with_f32([qkv, cos, sin, y, &dy], |[qkv, cos, sin, y, dy]| -> Result<Vec<f32>> {
            let (h, w) = (g.kv * g.groups, Self::width(g));
            let (q, k, v) = Self::unpack(g, qkv, cos, sin);
            let heads =
                |data| Self::heads_of(g, h * g.d, &Part { count: h, col: 0, sign: None, data }, cos, sin);
            let (dq, dk, dv) = self.attn.backward(g, &q, &k, &v, &heads(y), &heads(dy))?;
            let parts = [
                Part { count: h, col: 0, sign: Some(-1.0), data: &dq },
                Part { count: g.kv, col: h * g.d, sign: Some(-1.0), data: &dk },
                Part { count: g.kv, col: (h + g.kv) * g.d, sign: None, data: &dv },
            ];
            Ok(Self::rows_of(g, w, &parts, cos, sin))
        })??;
        Ok((Some(Tensor::from_vec(dqkv, qkv.shape(), qkv.device())?), None, None))
    }
}

/// Causal attention of the packed projection `qkv` `[batch · t, (heads + 2·kv_heads)·head_dim]` (per row: the
/// query heads, then the key heads, then the value heads; f32, CPU) with RoPE tables `cos`, `sin` `[t, head_dim]`
/// (positions 0..t), scores scaled by `scale`, a sliding `window` as in [`super::attention`]. Returns
/// `[batch · t, heads·head_dim]`; differentiable in `qkv` (the tables are constants).
///
/// # Errors
/// Shapes that do not fit `heads`, a window of 0, or tensors that are not f32 on the CPU.
pub fn qkv_attention(
    qkv: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    heads: Heads,
    scale: f64,
    window: Option<usize>,
) -> Result<Tensor> {
    if window == Some(0) {
        return Err(candle_core::Error::Msg("qkv attention: a sliding window of 0 sees no key".into()));
    }
    let op = QkvAttention { attn: Attention { scale: scale as f32, offset: 0, window }, heads };
    qkv.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use candle_core::D;

    use super::*;
    use crate::ops::testing::{diff, randn};
    use crate::ops::{attention, rope};

    /// The unfused path: split the heads, RoPE, attention, heads side by side again.
    fn reference(
        qkv: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        h: Heads,
        window: Option<usize>,
    ) -> Result<Tensor> {
        let (n, _) = qkv.dims2()?;
        let (b, d) = (h.batch, h.head_dim);
        let t = n / b;
        let split = |col: usize, count: usize| -> Result<Tensor> {
            qkv.narrow(1, col * d, count * d)?.reshape((b, t, count, d))?.transpose(1, 2)?.contiguous()
        };
        let q = rope(&split(0, h.heads)?, cos, sin)?;
        let k = rope(&split(h.heads, h.kv_heads)?, cos, sin)?;
        let v = split(h.heads + h.kv_heads, h.kv_heads)?;
        attention(&q, &k, &v, 0.3, 0, window)?.transpose(1, 2)?.reshape((n, h.heads * d))
    }

    #[test]
    fn matches_split_heads_rope_and_attention_with_gradients() -> Result<()> {
        for (batch, t, heads, kv_heads, window) in
            [(2, 5, 4, 4, None), (3, 7, 6, 2, None), (2, 6, 4, 1, Some(3))]
        {
            let h = Heads { batch, heads, kv_heads, head_dim: 8 };
            let qkv = randn(&[batch * t, (heads + 2 * kv_heads) * 8], 1.0, 41);
            let freqs = randn(&[t, 4], 1.0, 42).as_tensor().detach();
            let angles = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
            let (cos, sin) = (angles.cos()?, angles.sin()?);
            let probe = randn(&[batch * t, heads * 8], 1.0, 43).as_tensor().detach();
            let ours = qkv_attention(qkv.as_tensor(), &cos, &sin, h, 0.3, window)?;
            let theirs = reference(qkv.as_tensor(), &cos, &sin, h, window)?;
            let case = format!("batch={batch} t={t} heads={heads}/{kv_heads} window={window:?}");
            assert!(diff(&ours, &theirs) < 1e-5, "{case}: {}", diff(&ours, &theirs));
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            let (a, b) = (g1.get(qkv.as_tensor()).expect("grad"), g2.get(qkv.as_tensor()).expect("grad"));
            assert!(diff(a, b) < 1e-5, "{case}: dqkv differs by {}", diff(a, b));
        }
        Ok(())
    }

    #[test]
    fn refuses_projections_that_do_not_fit_the_heads() {
        let h = Heads { batch: 2, heads: 4, kv_heads: 2, head_dim: 8 };
        let tables = randn(&[3, 8], 1.0, 2).as_tensor().detach();
        let wide = randn(&[6, 7 * 8], 1.0, 1);
        let e = qkv_attention(wide.as_tensor(), &tables, &tables, h, 1.0, None).expect_err("7 heads wide");
        assert!(e.to_string().contains("(heads + 2·kv)·d = 64"), "{e}");
        let odd = randn(&[5, 8 * 8], 1.0, 1);
        assert!(
            qkv_attention(odd.as_tensor(), &tables, &tables, h, 1.0, None).is_err(),
            "5 rows for 2 sequences"
        );
        let fit = randn(&[6, 8 * 8], 1.0, 1);
        let short = randn(&[2, 8], 1.0, 2).as_tensor().detach();
        let e =
            qkv_attention(fit.as_tensor(), &short, &short, h, 1.0, None).expect_err("tables for 2 positions");
        assert!(e.to_string().contains("rope tables"), "{e}");
        assert!(qkv_attention(fit.as_tensor(), &tables, &tables, h, 1.0, Some(0)).is_err());
    }
}
