//! Causal grouped-query attention as one op with its own backward: `y = P v`, `P = softmax(s·q kᵀ + mask)`, for
//! queries at positions `offset..offset + t` against keys `0..offset + t`; query row `i` sees keys
//! `j ≤ offset + i`, and with a sliding window `w` also only `j > offset + i − w` (transformers' `masking_utils`:
//! `causal_mask_function` and `sliding_window_overlay`, as Mistral and Qwen2 use them).
//!
//! Only the inputs and the output are kept for the backward pass; it recomputes `P` from `q` and `k` (the
//! approach of FlashAttention, Dao et al. 2022, §3.1, here without tiling): the `[heads, t, t]` scores and
//! probabilities of a layer never outlive its forward, which is what a training step's peak memory was made of.
//! Backward (with `D_r = ⟨dy_r, y_r⟩`): `dv = Pᵀ dy`, `dP = dy vᵀ`, `dS = s · P ⊙ (dP − D)`, `dq = dS k`,
//! `dk = dSᵀ q`. Grouped-query heads: query head `h` reads key/value head `h / groups`, so the `groups` query
//! heads of one key/value head are consecutive rows of one product.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{Operand, Out, sgemm, sgemm_serial};
use super::{dot, exp_in_place, f32_inputs, max, with_f32};

pub(super) struct Attention {
    pub(super) scale: f32,
    pub(super) offset: usize,
    pub(super) window: Option<usize>,
}

/// Sizes of one call: `q` `[b, kv·groups, t, d]`, `k` and `v` `[b, kv, s, d]`.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    pub(super) b: usize,
    pub(super) kv: usize,
    pub(super) groups: usize,
    pub(super) t: usize,
    pub(super) s: usize,
    pub(super) d: usize,
}

impl Dims {
    fn of(q: &[usize], k: &[usize], v: &[usize], offset: usize) -> Result<Dims> {
        let err = |m: String| candle_core::Error::Msg(format!("attention: {m}"));
        let (&[b, heads, t, d], &[kb, kv, s, kd]) = (q, k) else {
            return Err(err(format!("q {q:?} and k {k:?} must be [batch, heads, positions, head_dim]")));
        };
        if k != v || kb != b || kd != d || kv == 0 || heads % kv != 0 {
            return Err(err(format!("q {q:?}, k {k:?}, v {v:?} do not fit grouped-query attention")));
        }
        if offset + t != s {
            return Err(err(format!("{t} queries + {offset} cached ≠ {s} keys")));
        }
        Ok(Dims { b, kv, groups: heads / kv, t, s, d })
    }

    /// Whether the `(batch, query head)` tasks run in parallel (each product on one thread) rather than one
    /// after the other with parallel products: when there are enough of them to share out.
    fn parallel_heads(self) -> bool {
        self.b * self.kv * self.groups >= 2 * candle_core::utils::get_num_threads()
    }

    /// Offset (in elements) of the keys and values that task `i` = `(batch, query head)` reads: its key/value
    /// head's, `[s, d]` (query head `h` reads key/value head `h / groups`).
    fn keys_of(self, i: usize) -> usize {
        (i / self.groups) * self.s * self.d
    }
}

/// Query positions per tile. A tile's rows see only the keys up to its last position (and, with a window, from
/// its first row's window on), so its products skip the masked part of the scores: about half of a causal
/// attention's work at the sequence lengths of training (62% of the full products left at 256 positions, 53% at
/// 1,024).
const TILE: usize = 64;

/// Query rows `r0..r0 + rows` of one head (positions `offset + r0…`) and the keys `k0..k0 + keys` they see.
#[derive(Clone, Copy)]
struct Tile {
    r0: usize,
    rows: usize,
    k0: usize,
    keys: usize,
}

impl Attention {
    /// The tiles of `t` query positions.
    fn tiles(&self, t: usize) -> impl Iterator<Item = Tile> + '_ {
        (0..t).step_by(TILE).map(move |r0| {
            let end = self.offset + (r0 + TILE).min(t);
            let k0 = self.window.map_or(0, |w| (self.offset + r0 + 1).saturating_sub(w));
            Tile { r0, rows: (r0 + TILE).min(t) - r0, k0, keys: end - k0 }
        })
    }

    /// The probabilities `[tile.rows, tile.keys]` of the tile's query rows `q` over its keys `k`.
    fn probs(&self, q: &[f32], k: &[f32], tile: Tile, d: usize, mm: Gemm) -> Result<Vec<f32>> {
        let (rows, cols) = (tile.rows, tile.keys);
        let mut p = vec![0f32; rows * cols];
        mm(
            rows,
            cols,
            d,
            Operand { data: q, rows, cols: d, transposed: false },
            Operand { data: k, rows: cols, cols: d, transposed: true },
            &mut p,
            Out::Write,
        )?;
        let (scale, offset, window) = (self.scale, self.offset, self.window);
        p.par_chunks_mut(cols).enumerate().for_each(|(i, row)| {
            // Keys `start..end` (absolute) of the query at position `offset + r0 + i`.
            let end = offset + tile.r0 + i + 1;
            let start = window.map_or(0, |w| end.saturating_sub(w)).max(tile.k0);
            let (start, end) = (start - tile.k0, end - tile.k0);
            row[..start].fill(0.0);
            row[end..].fill(0.0);
            let x = &mut row[start..end];
            let m = max(x) * scale;
            x.iter_mut().for_each(|v| *v = *v * scale - m);
            let inv = 1.0 / exp_in_place(x);
            x.iter_mut().for_each(|v| *v *= inv);
        });
        Ok(p)
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "hashi-attention"
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
        let g = Dims::of(l1.dims(), l2.dims(), l3.dims(), self.offset)?;
        let [q, k, v] = f32_inputs(self.name(), [(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((CpuStorage::F32(self.forward(g, q, k, v)?), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let g = Dims::of(q.dims(), k.dims(), v.dims(), self.offset)?;
        let (dq, dk, dv) = with_f32([q, k, v, y, &dy], |[q, k, v, y, dy]| self.backward(g, q, k, v, y, dy))??;
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), q.device())?),
            Some(Tensor::from_vec(dk, k.shape(), k.device())?),
            Some(Tensor::from_vec(dv, v.shape(), v.device())?),
        ))
    }
}

pub(super) type Grads = (Vec<f32>, Vec<f32>, Vec<f32>);

/// A matrix product: [`sgemm`] (parallel) or [`sgemm_serial`].
type Gemm = fn(usize, usize, usize, Operand<'_>, Operand<'_>, &mut [f32], Out) -> Result<()>;

/// A row-major `[rows, cols]` operand.
fn m(data: &[f32], rows: usize, cols: usize, transposed: bool) -> Operand<'_> {
    Operand { data, rows, cols, transposed }
}

impl Attention {
    /// `y` `[b, heads, t, d]` of `q` `[b, heads, t, d]`, `k`, `v` `[b, kv, s, d]`.
    pub(super) fn forward(&self, g: Dims, q: &[f32], k: &[f32], v: &[f32]) -> Result<Vec<f32>> {
        let (d, head) = (g.d, g.t * g.d);
        let mut y = vec![0f32; q.len()];
        // One (batch, query head): its rows of y.
        let task = |(i, y): (usize, &mut [f32]), mm: Gemm| -> Result<()> {
            let (qh, kh) = (&q[i * head..(i + 1) * head], g.keys_of(i));
            for tile in self.tiles(g.t) {
                let rows = tile.r0 * d..(tile.r0 + tile.rows) * d;
                let keys = kh + tile.k0 * d..kh + (tile.k0 + tile.keys) * d;
                let p = self.probs(&qh[rows.clone()], &k[keys.clone()], tile, d, mm)?;
                let (probs, values) = (m(&p, tile.rows, tile.keys, false), m(&v[keys], tile.keys, d, false));
                mm(tile.rows, d, tile.keys, probs, values, &mut y[rows], Out::Write)?;
            }
            Ok(())
        };
        let tasks = y.chunks_mut(head).enumerate();
        match g.parallel_heads() {
            true => tasks.par_bridge().try_for_each(|t| task(t, sgemm_serial))?,
            false => tasks.into_iter().try_for_each(|t| task(t, sgemm))?,
        }
        Ok(y)
    }

    pub(super) fn backward(
        &self,
        g: Dims,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        y: &[f32],
        dy: &[f32],
    ) -> Result<Grads> {
        let (d, head, kvl) = (g.d, g.t * g.d, g.s * g.d);
        let mut dq = vec![0f32; q.len()];
        // One (batch, query head): its rows of dq, and its share of its key/value head's dk and dv (summed over
        // the head's tiles here, over the heads of a group below).
        let task = |(i, dq): (usize, &mut [f32]), mm: Gemm| -> Result<(usize, Vec<f32>, Vec<f32>)> {
            let (kh, qh) = (g.keys_of(i), i * head..(i + 1) * head);
            let (qh, yh, dyh) = (&q[qh.clone()], &y[qh.clone()], &dy[qh]);
            let (mut dk, mut dv) = (vec![0f32; kvl], vec![0f32; kvl]);
            for tile in self.tiles(g.t) {
                let (r, c) = (tile.rows, tile.keys);
                let rows = tile.r0 * d..(tile.r0 + r) * d;
                let keys = tile.k0 * d..(tile.k0 + c) * d;
                let (kt, vt) = (&k[kh + keys.start..kh + keys.end], &v[kh + keys.start..kh + keys.end]);
                let (qt, yt, dyt) = (&qh[rows.clone()], &yh[rows.clone()], &dyh[rows.clone()]);
                let p = self.probs(qt, kt, tile, d, mm)?;
                // dv += Pᵀ dy, dP = dy vᵀ.
                mm(c, d, r, m(&p, r, c, true), m(dyt, r, d, false), &mut dv[keys.clone()], Out::Add)?;
                let mut ds = vec![0f32; r * c];
                mm(r, c, d, m(dyt, r, d, false), m(vt, c, d, true), &mut ds, Out::Write)?;
                // dS = s · P ⊙ (dP − ⟨dy_r, y_r⟩), in place.
                ds.par_chunks_mut(c).zip(p.par_chunks(c)).enumerate().for_each(|(i, (ds, p))| {
                    let dd = dot(&dyt[i * d..(i + 1) * d], &yt[i * d..(i + 1) * d]);
                    ds.iter_mut().zip(p).for_each(|(o, &pi)| *o = self.scale * pi * (*o - dd));
                });
                // dq = dS k, dk += dSᵀ q.
                mm(r, d, c, m(&ds, r, c, false), m(kt, c, d, false), &mut dq[rows], Out::Write)?;
                mm(c, d, r, m(&ds, r, c, true), m(qt, r, d, false), &mut dk[keys], Out::Add)?;
            }
            Ok((kh, dk, dv))
        };
        let tasks = dq.chunks_mut(head).enumerate();
        let shares: Vec<_> = match g.parallel_heads() {
            true => tasks.par_bridge().map(|t| task(t, sgemm_serial)).collect::<Result<_>>()?,
            false => tasks.into_iter().map(|t| task(t, sgemm)).collect::<Result<_>>()?,
        };
        let (mut dk, mut dv) = (vec![0f32; k.len()], vec![0f32; v.len()]);
        for (at, sk, sv) in shares {
            dk[at..at + kvl].iter_mut().zip(&sk).for_each(|(a, b)| *a += b);
            dv[at..at + kvl].iter_mut().zip(&sv).for_each(|(a, b)| *a += b);
        }
        Ok((dq, dk, dv))
    }
}

/// Causal attention of `q` `[b, heads, t, d]` over `k`, `v` `[b, kv_heads, offset + t, d]` (f32, CPU;
/// `heads` a multiple of `kv_heads`), scores scaled by `scale`; with `window = Some(w)` (w ≥ 1) a query sees only
/// itself and the `w − 1` keys before it. Returns `[b, heads, t, d]`; differentiable in `q`, `k` and `v`.
///
/// # Errors
/// Shapes that do not fit, a window of 0, or tensors that are not f32 on the CPU.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    offset: usize,
    window: Option<usize>,
) -> Result<Tensor> {
    if window == Some(0) {
        return Err(candle_core::Error::Msg("attention: a sliding window of 0 sees no key".into()));
    }
    q.contiguous()?.apply_op3(
        &k.contiguous()?,
        &v.contiguous()?,
        Attention { scale: scale as f32, offset, window },
    )
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device};

    use super::*;
    use crate::ops::testing::{diff, randn};

    /// The composed reference: candle's matmul, an additive mask, softmax from primitives, matmul; the key/value
    /// heads repeated for the query heads.
    fn reference(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
        offset: usize,
        window: Option<usize>,
    ) -> Result<Tensor> {
        let (b, heads, t, d) = q.dims4()?;
        let (kv, s) = (k.dim(1)?, k.dim(2)?);
        let rep = |x: &Tensor| -> Result<Tensor> {
            x.unsqueeze(2)?.broadcast_as((b, kv, heads / kv, s, d))?.reshape((b, heads, s, d))
        };
        let (k, v) = (rep(k)?, rep(v)?);
        let w = window.unwrap_or(usize::MAX);
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                let p = offset + i;
                (0..s).map(move |j| if j > p || p - j >= w { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        let x =
            (q.matmul(&k.t()?)? * scale)?.broadcast_add(&Tensor::from_vec(mask, (t, s), &Device::Cpu)?)?;
        let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?.matmul(&v)
    }

    #[test]
    fn matches_composed_attention_and_its_gradients() -> Result<()> {
        // (t, offset, window, heads, kv heads)
        for (t, offset, window, heads, kv) in [
            (7, 0, None, 4, 4),
            (7, 0, None, 6, 2),
            (3, 4, None, 6, 3),
            (1, 6, None, 4, 1),
            (7, 0, Some(3), 6, 2),
            (3, 4, Some(2), 4, 2),
            (1, 6, Some(1), 2, 1),
            // Longer than a tile: the tiles' key ranges, with and without a window and a cache.
            (150, 0, None, 4, 2),
            (130, 5, Some(70), 4, 2),
            (100, 0, Some(3), 2, 1),
            // Two (batch, head) tasks: one after the other, with parallel products.
            (70, 0, None, 1, 1),
        ] {
            let s = offset + t;
            let q = randn(&[2, heads, t, 8], 1.0, 1);
            let k = randn(&[2, kv, s, 8], 1.0, 2);
            let v = randn(&[2, kv, s, 8], 1.0, 3);
            let probe = randn(&[2, heads, t, 8], 1.0, 4).as_tensor().detach();
            let ours = attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), 0.35, offset, window)?;
            let theirs = reference(q.as_tensor(), k.as_tensor(), v.as_tensor(), 0.35, offset, window)?;
            let case = format!("t={t} offset={offset} window={window:?} heads={heads}/{kv}");
            assert!(diff(&ours, &theirs) < 1e-5, "{case}: {}", diff(&ours, &theirs));
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for (name, x) in [("q", &q), ("k", &k), ("v", &v)] {
                let (a, b) = (g1.get(x.as_tensor()).expect("grad"), g2.get(x.as_tensor()).expect("grad"));
                assert!(diff(a, b) < 1e-5, "{case}: d{name} differs by {}", diff(a, b));
            }
        }
        Ok(())
    }

    #[test]
    fn refuses_shapes_that_do_not_fit() {
        let (q, k) = (randn(&[1, 3, 2, 4], 1.0, 1), randn(&[1, 2, 2, 4], 1.0, 2));
        let e =
            attention(q.as_tensor(), k.as_tensor(), k.as_tensor(), 1.0, 0, None).expect_err("3 heads over 2");
        assert!(e.to_string().contains("grouped-query"), "{e}");
        let k = randn(&[1, 3, 5, 4], 1.0, 3);
        let e =
            attention(q.as_tensor(), k.as_tensor(), k.as_tensor(), 1.0, 0, None).expect_err("5 keys for 2");
        assert!(e.to_string().contains("cached"), "{e}");
        assert!(attention(q.as_tensor(), q.as_tensor(), q.as_tensor(), 1.0, 0, Some(0)).is_err());
    }
}
