//! Row primitives of the fused kernels, written so that the compiler vectorises them: eight independent
//! accumulators for reductions, and a branch-free `exp`.

/// Lanes of the independent accumulators.
const LANES: usize = 8;

/// Dot product with [`LANES`] accumulators (also closer to a pairwise sum than a serial loop).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Largest element (−∞ for an empty row).
pub(crate) fn max(xs: &[f32]) -> f32 {
    xs.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `e^x` for `x` in about [−87, 88] (clamped outside), within 2 ulp of `f32::exp`: Cody–Waite range reduction
/// `x = n·ln2 + r` and Cephes' degree-6 polynomial for `e^r`, assembled as `2ⁿ · e^r` through the exponent bits.
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without a rounding instruction.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    e_r * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Replaces each element by its exponential and returns their sum.
pub(crate) fn exp_in_place(xs: &mut [f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            c[i] = exp_approx(c[i]);
            acc[i] += c[i];
        }
    }
    let mut tail = 0.0;
    for v in chunks.into_remainder() {
        *v = exp_approx(*v);
        tail += *v;
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, libm) = (exp_approx(x), x.exp());
            worst = worst.max(((ours - libm) / libm).abs());
            x += 0.001_3;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        let mut v = vec![0.0, 1.0, -1.0, -200.0];
        let sum = exp_in_place(&mut v);
        assert!((v[1] - std::f32::consts::E).abs() < 1e-6 && v[3] < 1e-37 && (sum - 4.086_161).abs() < 1e-5);
    }

    #[test]
    fn reductions_match_serial_sums() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 5) as f32).collect();
        let serial: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - serial).abs() < 1e-4);
        assert_eq!(max(&a), 15.0);
    }
}
