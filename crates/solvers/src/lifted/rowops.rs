//! Row-wise helpers of the Newton-CG weights solve (super::newton): per-row dot
//! products and row-scaled updates of `d_out x k` matrices (column-major loops, f64 row
//! scalars), so every row of a weights block runs its own CG and line search on shared
//! GEMMs.

use autodiff::Real;
use nalgebra::DMatrix;

/// `out[i] = <x_i, y_i>` over the rows of the pairs `[W, b]` (f64 sums).
pub(super) fn row_dots<T: Real>(x: &[DMatrix<T>; 2], y: &[DMatrix<T>; 2], out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    for k in 0..2 {
        for (cx, cy) in x[k].column_iter().zip(y[k].column_iter()) {
            for ((o, &a), &b) in out.iter_mut().zip(cx.iter()).zip(cy.iter()) {
                *o += a.to_f64() * b.to_f64();
            }
        }
    }
}

/// `out[i] = ||w_i||^2`.
pub(super) fn row_sq_norms<T: Real>(w: &DMatrix<T>, out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    for c in w.column_iter() {
        for (o, &v) in out.iter_mut().zip(c.iter()) {
            *o += v.to_f64() * v.to_f64();
        }
    }
}

/// `y_i += a_i x_i` row-wise on pairs.
pub(super) fn axpy_rows<T: Real>(y: &mut [DMatrix<T>; 2], a: &[f64], x: &[DMatrix<T>; 2]) {
    for k in 0..2 {
        axpy_rows_mat(&mut y[k], a, &x[k]);
    }
}

/// `y_i += a_i x_i` row-wise.
pub(super) fn axpy_rows_mat<T: Real>(y: &mut DMatrix<T>, a: &[f64], x: &DMatrix<T>) {
    for (cy, cx) in y.column_iter_mut().zip(x.column_iter()) {
        for ((o, &v), &s) in cy.into_iter().zip(cx.iter()).zip(a) {
            if s != 0.0 {
                *o += T::of(s) * v;
            }
        }
    }
}

/// `p_i = z_i + b_i p_i` row-wise on pairs (rows with `b_i = 0` become `z_i`; they are
/// inactive and their alpha is 0 from now on).
pub(super) fn scale_add_rows<T: Real>(p: &mut [DMatrix<T>; 2], b: &[f64], z: &[DMatrix<T>; 2]) {
    for k in 0..2 {
        for (cp, cz) in p[k].column_iter_mut().zip(z[k].column_iter()) {
            for ((o, &v), &s) in cp.into_iter().zip(cz.iter()).zip(b) {
                *o = v + T::of(s) * *o;
            }
        }
    }
}
