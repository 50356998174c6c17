//! The old embedding matrix as strategies see it: row norms, cosine nearest neighbours and orthogonal matching
//! pursuit over old rows. Strategies (Lua) only name rows and read numbers back; the arithmetic is done here over
//! the whole `[old_vocab, hidden]` matrix, in parallel.

use rayon::prelude::*;

use crate::error::{Result, TransferError};

/// A vector of the old embedding space named by old rows: one row, or `Σ wᵢ·old[idᵢ]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The old row of this id.
    Row(u32),
    /// A weighted sum of old rows, `(old_id, weight)` pairs.
    Combination(Vec<(u32, f64)>),
}

/// The old `embed_tokens` matrix (f32, row-major `[rows, hidden]`) with its row norms.
pub struct EmbeddingSpace {
    data: Vec<f32>,
    hidden: usize,
    norms: Vec<f64>,
}

fn dot(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, &y)| x * f64::from(y)).sum()
}

impl EmbeddingSpace {
    /// Wraps a row-major `[rows, hidden]` matrix (`data.len()` a multiple of `hidden`).
    pub fn new(data: Vec<f32>, hidden: usize) -> Self {
        let norms = data
            .par_chunks_exact(hidden)
            .map(|r| r.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt())
            .collect();
        Self { data, hidden, norms }
    }

    /// The matrix, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Rows (the old vocabulary size).
    pub fn rows(&self) -> usize {
        self.norms.len()
    }

    /// Width of a row.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    fn row(&self, id: u32) -> Result<&[f32]> {
        let i = id as usize;
        if i >= self.rows() {
            return Err(TransferError::Strategy(format!(
                "old id {id} is out of range (the old embedding matrix has {} rows)",
                self.rows()
            )));
        }
        Ok(&self.data[i * self.hidden..(i + 1) * self.hidden])
    }

    /// The vector `target` names, in f64 (`[hidden]`).
    ///
    /// Errors: an id outside the old vocabulary, a weight that is not finite.
    pub fn vector(&self, target: &Target) -> Result<Vec<f64>> {
        let mut v = vec![0f64; self.hidden];
        let terms: &[(u32, f64)] = match target {
            Target::Row(id) => &[(*id, 1.0)],
            Target::Combination(t) => t,
        };
        for &(id, w) in terms {
            if !w.is_finite() {
                return Err(TransferError::Strategy(format!("weight {w} of old id {id} is not finite")));
            }
            for (a, &x) in v.iter_mut().zip(self.row(id)?) {
                *a += w * f64::from(x);
            }
        }
        Ok(v)
    }

    /// L2 norm of `target`.
    pub fn norm(&self, target: &Target) -> Result<f64> {
        match target {
            Target::Row(id) => self.row(*id).map(|_| self.norms[*id as usize]),
            Target::Combination(_) => Ok(self.vector(target)?.iter().map(|x| x * x).sum::<f64>().sqrt()),
        }
    }

    /// The `k` old rows with the highest cosine similarity to `target`, best first (ties: lower id), leaving out
    /// `exclude` and zero rows; `(id, cosine)` pairs. Cost: one pass over the matrix.
    pub fn nearest(&self, target: &Target, k: usize, exclude: &[u32]) -> Result<Vec<(u32, f64)>> {
        let v = self.vector(target)?;
        let vn = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if vn == 0.0 || k == 0 {
            return Ok(vec![]);
        }
        let mut scored: Vec<(u32, f64)> = self
            .data
            .par_chunks_exact(self.hidden)
            .enumerate()
            .filter(|(i, _)| self.norms[*i] > 0.0 && !exclude.contains(&(*i as u32)))
            .map(|(i, r)| (i as u32, dot(&v, r) / (vn * self.norms[i])))
            .collect();
        let k = k.min(scored.len());
        let by_score = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if k < scored.len() {
            scored.select_nth_unstable_by(k, by_score);
            scored.truncate(k);
        }
        scored.sort_by(by_score);
        Ok(scored)
    }

    /// Orthogonal matching pursuit (Pati, Rezaiifar & Krishnaprasad, 1993): up to `k` of the old rows
    /// `candidates` (all rows when empty), chosen greedily by the largest normalised correlation with the
    /// residual, with least-squares weights refitted after each choice, so that `Σ wᵢ·old[idᵢ]` approximates
    /// `target`. Stops early when the residual falls below 1e-6 of the target's norm. `(id, weight)` pairs in
    /// the order chosen. Cost: `k` passes over the candidates plus a `k × k` solve per step.
    ///
    /// Errors: ids outside the old vocabulary.
    pub fn omp(&self, target: &Target, candidates: &[u32], k: usize) -> Result<Vec<(u32, f64)>> {
        let t = self.vector(target)?;
        let all: Vec<u32>;
        let candidates = if candidates.is_empty() {
            all = (0..self.rows() as u32).collect();
            &all
        } else {
            for &c in candidates {
                self.row(c)?;
            }
            candidates
        };
        let tn = t.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut chosen: Vec<u32> = vec![];
        let mut weights: Vec<f64> = vec![];
        let mut residual = t.clone();
        let mut rows: Vec<Vec<f64>> = vec![];
        while chosen.len() < k.min(candidates.len()) {
            let rn = residual.iter().map(|x| x * x).sum::<f64>().sqrt();
            if rn <= 1e-6 * tn {
                break;
            }
            let best = candidates
                .par_iter()
                .filter(|c| !chosen.contains(c) && self.norms[**c as usize] > 0.0)
                .map(|&c| {
                    let r = &self.data[c as usize * self.hidden..(c as usize + 1) * self.hidden];
                    (c, dot(&residual, r).abs() / self.norms[c as usize])
                })
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
            let Some((c, _)) = best else { break };
            chosen.push(c);
            rows.push(self.vector(&Target::Row(c))?);
            let gram: Vec<Vec<f64>> = rows
                .iter()
                .map(|a| rows.iter().map(|b| a.iter().zip(b).map(|(x, y)| x * y).sum()).collect())
                .collect();
            let rhs: Vec<f64> = rows.iter().map(|a| a.iter().zip(&t).map(|(x, y)| x * y).sum()).collect();
            weights = solve_spd(gram, rhs);
            residual.clone_from(&t);
            for (row, w) in rows.iter().zip(&weights) {
                for (r, x) in residual.iter_mut().zip(row) {
                    *r -= w * x;
                }
            }
        }
        Ok(chosen.into_iter().zip(weights).collect())
    }
}

/// Solves `A x = b` for a symmetric positive semi-definite `A` by Cholesky with a tiny ridge (`1e-10 · trace/n`),
/// so that nearly collinear rows still give finite weights.
fn solve_spd(mut a: Vec<Vec<f64>>, b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    let ridge = 1e-10 * (0..n).map(|i| a[i][i]).sum::<f64>() / n as f64;
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += ridge.max(f64::MIN_POSITIVE);
    }
    // a = L Lᵀ, L stored in the lower triangle.
    for j in 0..n {
        let d = (a[j][j] - (0..j).map(|k| a[j][k] * a[j][k]).sum::<f64>()).max(f64::MIN_POSITIVE).sqrt();
        a[j][j] = d;
        for i in j + 1..n {
            a[i][j] = (a[i][j] - (0..j).map(|k| a[i][k] * a[j][k]).sum::<f64>()) / d;
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| a[i][k] * y[k]).sum::<f64>()) / a[i][i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| a[k][i] * x[k]).sum::<f64>()) / a[i][i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> EmbeddingSpace {
        // Rows: e0, e1, e2, e0+e1, 0.
        EmbeddingSpace::new(vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 1., 1., 0., 0., 0., 0.], 3)
    }

    #[test]
    fn norms_and_combinations() {
        let s = space();
        assert_eq!(s.norm(&Target::Row(3)).expect("ok"), 2f64.sqrt());
        let v = s.vector(&Target::Combination(vec![(0, 2.0), (2, -1.0)])).expect("ok");
        assert_eq!(v, vec![2.0, 0.0, -1.0]);
        assert!(s.norm(&Target::Row(5)).is_err());
        assert!(s.vector(&Target::Combination(vec![(0, f64::NAN)])).is_err());
    }

    #[test]
    fn nearest_by_cosine_skips_zero_and_excluded_rows() {
        let s = space();
        let near = s.nearest(&Target::Row(0), 3, &[0]).expect("ok");
        assert_eq!(near.iter().map(|p| p.0).collect::<Vec<_>>(), vec![3, 1, 2]);
        assert!((near[0].1 - 1.0 / 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.nearest(&Target::Row(4), 2, &[]).expect("ok"), vec![]);
    }

    #[test]
    fn omp_recovers_a_sparse_combination() {
        let s = space();
        // 2·e0 + 3·e2 from all rows: exactly two atoms.
        let target = Target::Combination(vec![(0, 2.0), (2, 3.0)]);
        let mut w = s.omp(&target, &[], 3).expect("ok");
        w.sort_by_key(|p| p.0);
        assert_eq!(w.len(), 2);
        assert!((w[0].1 - 2.0).abs() < 1e-9 && w[0].0 == 0);
        assert!((w[1].1 - 3.0).abs() < 1e-9 && w[1].0 == 2);
        // Restricted to {e0+e1, e1}: least squares over the chosen rows.
        let w = s.omp(&Target::Row(0), &[3, 1], 2).expect("ok");
        let v = s.vector(&Target::Combination(w)).expect("ok");
        assert!(v.iter().zip([1.0, 0.0, 0.0]).all(|(a, b)| (a - b).abs() < 1e-9));
        assert!(s.omp(&Target::Row(0), &[9], 1).is_err());
    }
}
