//! Matrix products used by this crate, in one place so they can be retargeted to the
//! workspace GEMM wrapper (`autodiff::kernels`) without touching the algorithms.
//!
//! Until that wrapper exists these go through nalgebra's `gemm` (backed by
//! `matrixmultiply` for f32/f64), never through `tr_mul`: transposed operands are
//! copied into caller-provided buffers first (an O(size) copy, no allocation).

use autodiff::Real;
use nalgebra::DMatrix;

/// `c <- alpha * a * b + beta * c` (shapes checked by the caller).
pub(crate) fn gemm_nn<T: Real>(
    c: &mut DMatrix<T>,
    alpha: T,
    a: &DMatrix<T>,
    b: &DMatrix<T>,
    beta: T,
) {
    c.gemm(alpha, a, b, beta);
}

/// `a * b^T`, allocating (not for hot loops).
pub(crate) fn mul_nt<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> DMatrix<T> {
    let bt = b.transpose();
    let mut c = DMatrix::zeros(a.nrows(), bt.ncols());
    gemm_nn(&mut c, T::one(), a, &bt, T::zero());
    c
}

/// `a * b`, allocating (not for hot loops).
pub(crate) fn mul_nn<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> DMatrix<T> {
    let mut c = DMatrix::zeros(a.nrows(), b.ncols());
    gemm_nn(&mut c, T::one(), a, b, T::zero());
    c
}
