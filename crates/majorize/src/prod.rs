//! Matrix products used by this crate, all through the workspace GEMM wrapper
//! [`autodiff::kernels::gemm_into`] (strided `gemm` kernel; transposes are stride swaps,
//! no copies), on one thread. Shapes are checked by the callers before these are
//! reached, so a kernel error here is an internal bug; it is still returned, never a panic.

use autodiff::kernels::gemm_into;
use autodiff::{Real, Transpose};
use nalgebra::DMatrix;

use crate::error::Result;

/// `c <- op(a) op(b)` (no allocation).
pub(crate) fn gemm<T: Real>(
    c: &mut DMatrix<T>,
    a: &DMatrix<T>,
    ta: Transpose,
    b: &DMatrix<T>,
    tb: Transpose,
) -> Result<()> {
    gemm_into(c, T::one(), a, ta, b, tb, T::zero(), 1)?;
    Ok(())
}

/// `c <- c + a b` (no allocation; no transposes).
pub(crate) fn gemm_acc<T: Real>(c: &mut DMatrix<T>, a: &DMatrix<T>, b: &DMatrix<T>) -> Result<()> {
    gemm_into(c, T::one(), a, Transpose::No, b, Transpose::No, T::one(), 1)?;
    Ok(())
}

/// `a * b^T`, allocating (not for hot loops).
pub(crate) fn mul_nt<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> Result<DMatrix<T>> {
    Ok(autodiff::kernels::matmul(
        a,
        Transpose::No,
        b,
        Transpose::Yes,
    )?)
}

/// `a^T * b`, allocating (not for hot loops).
pub(crate) fn mul_tn<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> Result<DMatrix<T>> {
    Ok(autodiff::kernels::matmul(
        a,
        Transpose::Yes,
        b,
        Transpose::No,
    )?)
}

/// `a * b`, allocating (not for hot loops).
pub(crate) fn mul_nn<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> Result<DMatrix<T>> {
    Ok(autodiff::kernels::matmul(
        a,
        Transpose::No,
        b,
        Transpose::No,
    )?)
}
