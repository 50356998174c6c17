//! The vocabulary matrices: decoding their storage dtype, statistics of the old rows, and the new matrix built
//! from copied rows and recipes, in parallel.

use std::path::Path;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::error::{Result, TransferError};
use crate::recipe::Recipe;

/// Decodes a matrix stored as `dtype` (a safetensors dtype name) in the file `path`.
pub(crate) fn decode(bytes: &[u8], dtype: &str, path: &Path) -> Result<Vec<f32>> {
    let d = Dtype::parse(dtype).ok_or_else(|| TransferError::Checkpoint {
        path: path.into(),
        message: format!("vocabulary matrix dtype {dtype} is not supported (F32, F16, BF16)"),
    })?;
    Ok(d.decode(bytes))
}

/// Mean row, mean row norm and entry std (around the mean row) of a `[rows, h]` matrix.
pub fn row_stats(old: &[f32], h: usize) -> (Vec<f32>, f64, f64) {
    let rows = old.len() / h;
    let mut mean = vec![0f64; h];
    let mut norm = 0f64;
    for r in old.chunks_exact(h) {
        let mut sq = 0f64;
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += f64::from(x);
            sq += f64::from(x) * f64::from(x);
        }
        norm += sq.sqrt();
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let mut var = 0f64;
    for r in old.chunks_exact(h) {
        for (m, &x) in mean.iter().zip(r) {
            var += (f64::from(x) - m).powi(2);
        }
    }
    let std = (var / old.len() as f64).sqrt();
    (mean.iter().map(|&m| m as f32).collect(), norm / rows as f64, std)
}

/// Storage dtypes of vocabulary matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// f32.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl Dtype {
    /// From a safetensors dtype name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::Bf16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        if self == Self::F32 { 4 } else { 2 }
    }

    /// Decodes little-endian elements.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Self::F32 => {
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Self::F16 => {
                bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Self::Bf16 => {
                bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
        }
    }

    fn encode_into(self, v: &[f32], out: &mut [u8]) {
        match self {
            Self::F32 => {
                v.iter().zip(out.chunks_exact_mut(4)).for_each(|(x, o)| o.copy_from_slice(&x.to_le_bytes()))
            }
            Self::F16 => v
                .iter()
                .zip(out.chunks_exact_mut(2))
                .for_each(|(x, o)| o.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes())),
            Self::Bf16 => v
                .iter()
                .zip(out.chunks_exact_mut(2))
                .for_each(|(x, o)| o.copy_from_slice(&half::bf16::from_f32(*x).to_le_bytes())),
        }
    }
}

/// Builds the new `[new_rows, h]` matrix directly in `dtype` bytes — matched rows copied (bit-identical, since
/// the f32 round trip of f16/bf16 is exact), the others from their recipes — and returns each row's L2 norm.
pub fn build_matrix(
    old: &[f32],
    h: usize,
    matches: &[Option<u32>],
    recipes: &[Option<Recipe>],
    seed: u64,
    dtype: Dtype,
) -> (Vec<u8>, Vec<f64>) {
    let (mean, _, _) = row_stats(old, h);
    let width = h * dtype.size();
    let mut out = vec![0u8; matches.len() * width];
    let norms: Vec<f64> = out
        .par_chunks_mut(width)
        .enumerate()
        .map_init(
            || vec![0f32; h],
            |row, (i, bytes)| {
                if let Some(old_id) = matches[i] {
                    let o = old_id as usize * h;
                    row.copy_from_slice(&old[o..o + h]);
                } else if let Some(r) = &recipes[i] {
                    let mut acc = vec![0f64; h];
                    for &(id, w) in &r.terms {
                        let o = id as usize * h;
                        for (a, &x) in acc.iter_mut().zip(&old[o..o + h]) {
                            *a += w * f64::from(x);
                        }
                    }
                    if r.mean != 0.0 {
                        for (a, &m) in acc.iter_mut().zip(&mean) {
                            *a += r.mean * f64::from(m);
                        }
                    }
                    if let Some(scale) = r.scale {
                        acc.iter_mut().for_each(|a| *a *= scale);
                    }
                    if r.noise > 0.0 {
                        let mut rng = rand::rngs::StdRng::seed_from_u64(
                            seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        );
                        for a in acc.iter_mut() {
                            let z: f64 = StandardNormal.sample(&mut rng);
                            *a += r.noise * z;
                        }
                    }
                    row.iter_mut().zip(acc).for_each(|(o, a)| *o = a as f32);
                } else {
                    row.fill(0.0);
                }
                dtype.encode_into(row, bytes);
                row.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
            },
        )
        .collect();
    (out, norms)
}

/// Mean of `norms[ids]` (0 for none).
pub fn mean_of(norms: &[f64], ids: impl Iterator<Item = usize>) -> f64 {
    let (mut sum, mut n) = (0f64, 0usize);
    for i in ids {
        sum += norms[i];
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}
