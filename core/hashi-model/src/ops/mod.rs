//! Fused CPU kernels with backward passes for the training path.
//!
//! candle's own fused ops (`softmax_last_dim`, `rms_norm`, `rope`) have no backward, and the composed versions
//! allocate one full tensor per primitive op. These kernels do one pass per row (rows in parallel with rayon)
//! and define `bwd`, so gradients flow. Each is checked against its composed reference (forward and gradients)
//! in its module's tests, and the whole model's gradients against PyTorch's autograd in `tests/`.
//! CPU only: other devices get candle's "no cuda/metal implementation" error.

mod attention;
mod cross_entropy;
mod gemm;
mod linear;
mod lm_head_loss;
mod math;
mod qkv_attention;
mod rms_norm;
mod rope;
mod swiglu;

pub use attention::attention;
pub use cross_entropy::cross_entropy_rows;
pub use gemm::matmul_backend;
pub use linear::{linear, linear_residual, norm_linear};
pub use lm_head_loss::lm_head_cross_entropy;
pub use qkv_attention::{Heads, qkv_attention};
pub use rms_norm::rms_norm;
pub use rope::rope;
pub use swiglu::swiglu;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

pub(crate) use math::{dot, exp_approx, exp_in_place, max};

/// The f32 elements of each contiguous input `(storage, layout)` of the op `op`, in order.
fn f32_inputs<'a, const N: usize>(op: &str, args: [(&'a CpuStorage, &Layout); N]) -> Result<[&'a [f32]; N]> {
    let mut out: [&[f32]; N] = [&[]; N];
    for (o, (s, l)) in out.iter_mut().zip(args) {
        *o = contiguous_f32(s, l, op)?;
    }
    Ok(out)
}

/// The error of an op whose inputs' shapes do not fit together: `op: x [..], W [..] do not fit`.
fn misfit(op: &str, inputs: &[(&str, &Layout)]) -> candle_core::Error {
    let listed: Vec<String> = inputs.iter().map(|(name, l)| format!("{name} {:?}", l.dims())).collect();
    candle_core::Error::Msg(format!("{op}: {} do not fit", listed.join(", ")))
}

/// The f32 elements of a contiguous tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::Msg(format!("{op}: input must be contiguous"))),
    }
}

/// `f` over the f32 elements of contiguous CPU tensors, read in place.
pub(crate) fn with_f32<const N: usize, R>(ts: [&Tensor; N], f: impl FnOnce([&[f32]; N]) -> R) -> Result<R> {
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices: Vec<&[f32]> = Vec::with_capacity(N);
    for (storage, layout) in &guards {
        let (Storage::Cpu(cpu), Some((a, b))) = (&**storage, layout.contiguous_offsets()) else {
            return Err(candle_core::Error::Msg("tensors must be contiguous f32 on the CPU".into()));
        };
        slices.push(&cpu.as_slice::<f32>()?[a..b]);
    }
    let arr: [&[f32]; N] = slices.try_into().map_err(|_| candle_core::Error::Msg("tensor count".into()))?;
    Ok(f(arr))
}

#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{Device, Tensor, Var};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// A random N(0, scale²) variable.
    pub fn randn(shape: &[usize], scale: f32, seed: u64) -> Var {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0, scale).expect("valid std");
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
        Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).expect("tensor")).expect("var")
    }

    /// Max |a - b|.
    pub fn diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .expect("sub")
            .abs()
            .expect("abs")
            .flatten_all()
            .expect("flat")
            .max(0)
            .expect("max")
            .to_scalar()
            .expect("scalar")
    }
}
