//! Small dense linear-algebra helpers shared by the block-coordinate (BCD) and penalty
//! (MAC) solvers: every product goes through `autodiff::kernels::gemm_into`, SPD systems
//! through nalgebra's Cholesky.

use autodiff::{Real, Transpose, kernels};
use nalgebra::{DMatrix, DVector};

use crate::SolverError;

/// `c <- alpha op(a) op(b) + beta c`; with `beta = 0` a wrongly shaped `c` is resized
/// first (so callers can keep scratch buffers without tracking shapes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mm<T: Real>(
    c: &mut DMatrix<T>,
    alpha: f64,
    a: &DMatrix<T>,
    ta: Transpose,
    b: &DMatrix<T>,
    tb: Transpose,
    beta: f64,
    threads: usize,
) -> Result<(), SolverError> {
    let rows = if ta == Transpose::No {
        a.nrows()
    } else {
        a.ncols()
    };
    let cols = if tb == Transpose::No {
        b.ncols()
    } else {
        b.nrows()
    };
    if beta == 0.0 && c.shape() != (rows, cols) {
        *c = DMatrix::zeros(rows, cols);
    }
    kernels::gemm_into(c, T::of(alpha), a, ta, b, tb, T::of(beta), threads.max(1))
        .map_err(|e| SolverError::Problem(format!("gemm: {e}")))
}

/// Solves `m x = rhs` in place (`rhs <- m^{-1} rhs`) for a symmetric positive definite
/// `m` by Cholesky. `what` names the system in the error when `m` is not numerically SPD.
pub(crate) fn solve_spd<T: Real>(
    m: DMatrix<T>,
    rhs: &mut DMatrix<T>,
    what: &str,
) -> Result<(), SolverError> {
    let n = m.nrows();
    let chol = nalgebra::Cholesky::new(m).ok_or_else(|| {
        SolverError::NonFinite(format!(
            "{what}: the {n} x {n} system matrix is not positive definite (non-finite \
             entries or a vanishing ridge)"
        ))
    })?;
    chol.solve_mut(rhs);
    Ok(())
}

/// The inverse of a symmetric positive definite `m` (Cholesky, solved against the
/// identity), for systems with many right-hand sides: applying it is then one GEMM,
/// much faster than nalgebra's generic triangular solves on `d x N` blocks.
pub(crate) fn spd_inverse<T: Real>(m: DMatrix<T>, what: &str) -> Result<DMatrix<T>, SolverError> {
    let n = m.nrows();
    let mut inv = DMatrix::identity(n, n);
    solve_spd(m, &mut inv, what)?;
    // Symmetrise (rounding makes the two triangles differ in the last bits).
    let t = inv.transpose();
    inv += t;
    inv *= T::of(0.5);
    Ok(inv)
}

/// Adds `c` to the diagonal of the square matrix `m`.
pub(crate) fn add_diag<T: Real>(m: &mut DMatrix<T>, c: f64) {
    let c = T::of(c);
    for i in 0..m.nrows().min(m.ncols()) {
        m[(i, i)] += c;
    }
}

/// Squared Frobenius norm, accumulated in f64.
pub(crate) fn sq_norm<T: Real>(m: &DMatrix<T>) -> f64 {
    m.iter().map(|x| x.to_f64() * x.to_f64()).sum()
}

/// Squared Euclidean norm of a vector, in f64.
pub(crate) fn sq_norm_vec<T: Real>(v: &DVector<T>) -> f64 {
    v.iter().map(|x| x.to_f64() * x.to_f64()).sum()
}

/// Row sums `a 1` (length = rows of `a`).
pub(crate) fn row_sums<T: Real>(a: &DMatrix<T>) -> DVector<T> {
    let mut s = DVector::zeros(a.nrows());
    for col in a.column_iter() {
        s += col;
    }
    s
}

/// `m <- m + b 1^T` (the bias broadcast over columns).
pub(crate) fn add_bias<T: Real>(m: &mut DMatrix<T>, b: &DVector<T>) {
    for mut col in m.column_iter_mut() {
        col += b;
    }
}

/// Largest eigenvalue of the symmetric PSD matrix `g` by power iteration from the
/// all-ones vector (an estimate from below; callers certify with a backtracking check).
pub(crate) fn lambda_max_psd<T: Real>(g: &DMatrix<T>, iters: usize) -> f64 {
    let n = g.nrows();
    if n == 0 {
        return 0.0;
    }
    let gf = g.map(|x| x.to_f64());
    let mut v = DVector::from_element(n, 1.0 / (n as f64).sqrt());
    let mut lam = 0.0;
    for _ in 0..iters {
        let w = &gf * &v;
        let nw = w.norm();
        if nw == 0.0 || !nw.is_finite() {
            return nw;
        }
        lam = v.dot(&w);
        v = w / nw;
    }
    // Rayleigh quotient of the final vector (never above the true maximum).
    lam.max(v.dot(&(&gf * &v)))
}

/// Errors with [`SolverError::NonFinite`] naming `what` if any entry is NaN or infinite.
pub(crate) fn check_finite<T: Real>(m: &DMatrix<T>, what: &str) -> Result<(), SolverError> {
    if m.iter().all(|x| x.finite()) {
        Ok(())
    } else {
        Err(SolverError::NonFinite(what.to_string()))
    }
}

/// [`check_finite`] for vectors.
pub(crate) fn check_finite_vec<T: Real>(v: &DVector<T>, what: &str) -> Result<(), SolverError> {
    if v.iter().all(|x| x.finite()) {
        Ok(())
    } else {
        Err(SolverError::NonFinite(what.to_string()))
    }
}

/// `out = W input + b 1^T`.
pub(crate) fn linear<T: Real>(
    out: &mut DMatrix<T>,
    w: &DMatrix<T>,
    b: &DVector<T>,
    input: &DMatrix<T>,
    threads: usize,
) -> Result<(), SolverError> {
    mm(
        out,
        1.0,
        w,
        Transpose::No,
        input,
        Transpose::No,
        0.0,
        threads,
    )?;
    add_bias(out, b);
    Ok(())
}

/// `||a - b||_F^2` in f64 (same shapes).
pub(crate) fn sq_diff<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            let d = x.to_f64() - y.to_f64();
            d * d
        })
        .sum()
}
