//! Classification metrics as the upstream harness computes them: `balanced_mean` (mean over gold classes of the
//! per-class accuracy), Matthews correlation (scikit-learn's multiclass formula, 0 when undefined) and macro-F1
//! (scikit-learn's `f1_score(average="macro")` over the labels seen in golds or predictions, 0 for a class with
//! no predictions or no golds).

use std::collections::BTreeSet;

/// Mean over gold classes of the share of that class's items predicted correctly.
pub fn balanced_accuracy(golds: &[i64], preds: &[i64]) -> f64 {
    let classes: BTreeSet<i64> = golds.iter().copied().collect();
    let per: Vec<f64> = classes
        .iter()
        .map(|&c| {
            let (hit, n) = golds
                .iter()
                .zip(preds)
                .filter(|(g, _)| **g == c)
                .fold((0, 0), |(h, n), (_, p)| (h + usize::from(*p == c), n + 1));
            hit as f64 / n as f64
        })
        .collect();
    per.iter().sum::<f64>() / per.len().max(1) as f64
}

/// Matthews correlation coefficient (multiclass).
pub fn mcc(golds: &[i64], preds: &[i64]) -> f64 {
    let labels: Vec<i64> = golds.iter().chain(preds).copied().collect::<BTreeSet<_>>().into_iter().collect();
    let s = golds.len() as f64;
    let c = golds.iter().zip(preds).filter(|(g, p)| g == p).count() as f64;
    let (mut pt, mut pp, mut tt) = (0.0, 0.0, 0.0);
    for l in &labels {
        let t = golds.iter().filter(|g| *g == l).count() as f64;
        let p = preds.iter().filter(|x| *x == l).count() as f64;
        pt += p * t;
        pp += p * p;
        tt += t * t;
    }
    let denom = ((s * s - pp) * (s * s - tt)).sqrt();
    if denom == 0.0 { 0.0 } else { (c * s - pt) / denom }
}

/// Macro-averaged F1 over the labels present in golds or predictions.
pub fn macro_f1(golds: &[i64], preds: &[i64]) -> f64 {
    let labels: BTreeSet<i64> = golds.iter().chain(preds).copied().collect();
    let f1s: Vec<f64> = labels
        .iter()
        .map(|&l| {
            let tp = golds.iter().zip(preds).filter(|(g, p)| **g == l && **p == l).count() as f64;
            let fp = golds.iter().zip(preds).filter(|(g, p)| **g != l && **p == l).count() as f64;
            let fneg = golds.iter().zip(preds).filter(|(g, p)| **g == l && **p != l).count() as f64;
            if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fneg) }
        })
        .collect();
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

/// Mean and sample standard deviation (`n − 1` in the denominator; 0 for fewer than two values) of `xs`;
/// `None` when `xs` is empty. The standard error of the mean is `sd / √n` (lm-eval's `mean_stderr`).
pub fn mean_and_sd(xs: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let m = xs.iter().sum::<f64>() / n as f64;
    let sd =
        if n > 1 { (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    Some((m, sd))
}
