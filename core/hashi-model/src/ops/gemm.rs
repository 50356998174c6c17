//! The f32 matrix product behind the linear layers: the pure-Rust `gemm` crate (candle's own CPU kernel), or
//! the system's OpenBLAS (`cblas_sgemm`) when built with the `openblas` feature. Both use candle's thread count.

/// A row-major f32 matrix stored `[rows, cols]`, used as is or transposed.
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

/// Whether a product overwrites its output or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// `c = op(a) · op(b)`.
    Write,
    /// `c += op(a) · op(b)`.
    Add,
}

/// `c[m, n] = op(a)[m, k] · op(b)[k, n]` (row-major; `c` overwritten or added to, `out`), on candle's threads.
///
/// # Errors
/// A size beyond the library's index type (OpenBLAS: 32-bit).
pub(crate) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: Operand<'_>,
    b: Operand<'_>,
    c: &mut [f32],
    out: Out,
) -> candle_core::Result<()> {
    product(m, n, k, &a, &b, c, out, true)
}

/// [`sgemm`] on the calling thread only (for products that run inside parallel tasks); the OpenBLAS backend uses
/// its own threads either way.
///
/// # Errors
/// As [`sgemm`].
pub(crate) fn sgemm_serial(
    m: usize,
    n: usize,
    k: usize,
    a: Operand<'_>,
    b: Operand<'_>,
    c: &mut [f32],
    out: Out,
) -> candle_core::Result<()> {
    product(m, n, k, &a, &b, c, out, false)
}

#[allow(clippy::too_many_arguments)] // a BLAS call's arguments
fn product(
    m: usize,
    n: usize,
    k: usize,
    a: &Operand<'_>,
    b: &Operand<'_>,
    c: &mut [f32],
    out: Out,
    parallel: bool,
) -> candle_core::Result<()> {
    debug_assert_eq!(c.len(), m * n);
    debug_assert_eq!(a.data.len(), a.rows * a.cols);
    debug_assert_eq!(b.data.len(), b.rows * b.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if out == Out::Write {
            c.fill(0.0);
        }
        return Ok(());
    }
    backend::sgemm(m, n, k, a, b, c, out, parallel)
}

/// The matrix-product library the linear layers use, with its version and, for OpenBLAS, the kernel it chose
/// for this CPU (e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64").
pub fn matmul_backend() -> String {
    backend::name()
}

#[cfg(not(feature = "openblas"))]
#[allow(unsafe_code)] // One call into the `gemm` crate's raw-pointer API; the block says why it is sound.
mod backend {
    use super::{Operand, Out};

    pub(super) fn name() -> String {
        "gemm 0.19 (pure Rust, runtime-dispatched AVX-512/AVX2/FMA kernels)".into()
    }

    /// (column stride, row stride) of `op(x)` within `x`'s row-major storage.
    fn strides(x: &Operand<'_>) -> (isize, isize) {
        if x.transposed { (x.cols as isize, 1) } else { (1, x.cols as isize) }
    }

    #[allow(clippy::too_many_arguments)] // a BLAS call's arguments
    pub(super) fn sgemm(
        m: usize,
        n: usize,
        k: usize,
        a: &Operand<'_>,
        b: &Operand<'_>,
        c: &mut [f32],
        out: Out,
        parallel: bool,
    ) -> candle_core::Result<()> {
        let threads = candle_core::utils::get_num_threads();
        let par =
            if parallel && threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        let ((a_cs, a_rs), (b_cs, b_rs)) = (strides(a), strides(b));
        // SAFETY: the pointers cover `m·k`, `k·n` and `m·n` elements at the given strides (checked by the
        // callers' shapes: `a` is `[m, k]` or `[k, m]`, `b` `[k, n]` or `[n, k]`, `c` `[m, n]`, all row-major).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                out == Out::Add,
                a.data.as_ptr(),
                a_cs,
                a_rs,
                b.data.as_ptr(),
                b_cs,
                b_rs,
                // dst = alpha·dst + beta·a·b (alpha read only when dst is read).
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        Ok(())
    }
}

#[cfg(feature = "openblas")]
#[allow(unsafe_code)] // Calls through OpenBLAS's C API; each block says why it is sound.
mod backend {
    use super::{Operand, Out};
    use cblas_sys::{CBLAS_LAYOUT, CBLAS_TRANSPOSE, cblas_sgemm};

    unsafe extern "C" {
        fn openblas_set_num_threads(n: std::ffi::c_int);
        fn openblas_get_config() -> *const std::ffi::c_char;
    }

    pub(super) fn name() -> String {
        // SAFETY: OpenBLAS returns a static NUL-terminated string.
        let config = unsafe { std::ffi::CStr::from_ptr(openblas_get_config()) };
        config.to_string_lossy().trim().to_string()
    }

    /// OpenBLAS runs on one thread per call, set once: a parallel product is shared out over rayon's threads by
    /// rows of `c` instead, so that one pool serves both the products and the other kernels (OpenBLAS's own
    /// threads, spinning between calls, competed with rayon's for the same cores).
    fn single_threaded() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: a plain setter of the library's thread count.
        ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
    }

    /// Rows of `c` below which a product is not split.
    const MIN_ROWS: usize = 64;

    #[allow(clippy::too_many_arguments)] // a BLAS call's arguments
    pub(super) fn sgemm(
        m: usize,
        n: usize,
        k: usize,
        a: &Operand<'_>,
        b: &Operand<'_>,
        c: &mut [f32],
        out: Out,
        parallel: bool,
    ) -> candle_core::Result<()> {
        use rayon::prelude::*;
        single_threaded();
        let threads = if parallel { candle_core::utils::get_num_threads() } else { 1 };
        let rows = m.div_ceil(threads).max(MIN_ROWS);
        if rows >= m {
            return call(m, n, k, a, 0, b, c, out);
        }
        c.par_chunks_mut(rows * n)
            .enumerate()
            .try_for_each(|(i, c)| call(c.len() / n, n, k, a, i * rows, b, c, out))
    }

    /// `c` = rows `r0..r0 + m` of `op(a)` times `op(b)`.
    #[allow(clippy::too_many_arguments)] // a BLAS call's arguments
    fn call(
        m: usize,
        n: usize,
        k: usize,
        a: &Operand<'_>,
        r0: usize,
        b: &Operand<'_>,
        c: &mut [f32],
        out: Out,
    ) -> candle_core::Result<()> {
        let t = |x: &Operand<'_>| {
            if x.transposed { CBLAS_TRANSPOSE::CblasTrans } else { CBLAS_TRANSPOSE::CblasNoTrans }
        };
        let int = |v: usize| {
            i32::try_from(v).map_err(|_| {
                candle_core::Error::Msg(format!("matrix size {v} beyond OpenBLAS's 32-bit indices"))
            })
        };
        let (lda, ldb) = (int(a.cols.max(1))?, int(b.cols.max(1))?);
        // Row r0 of op(a): row r0 of a, or column r0 of a stored row-major (a transposed).
        let a_start = if a.transposed { r0 } else { r0 * a.cols };
        let (m, n, k) = (int(m)?, int(n)?, int(k)?);
        // SAFETY: row-major operands of the stated shapes; leading dimensions are the stored column counts, and
        // rows r0..r0 + m of op(a) lie within `a` (the caller's split of m).
        unsafe {
            cblas_sgemm(
                CBLAS_LAYOUT::CblasRowMajor,
                t(a),
                t(b),
                m,
                n,
                k,
                1.0,
                a.data[a_start..].as_ptr(),
                lda,
                b.data.as_ptr(),
                ldb,
                if out == Out::Add { 1.0 } else { 0.0 },
                c.as_mut_ptr(),
                n,
            );
        }
        Ok(())
    }
}
