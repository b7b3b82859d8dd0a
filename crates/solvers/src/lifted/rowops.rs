//! Row-wise helpers of the Newton-CG weights solve (super::newton): per-row dot
//! products and row-scaled updates of `d_out x k` matrices (column-major loops over
//! contiguous column slices, f64 row scalars), so every row of a weights block runs its
//! own CG and line search on shared GEMMs.

use autodiff::Real;
use nalgebra::DMatrix;

/// The columns of a column-major matrix as contiguous slices (none when it has no rows,
/// which `chunks_exact(0)` would reject).
fn columns<T: Real>(m: &DMatrix<T>) -> std::slice::ChunksExact<'_, T> {
    m.as_slice().chunks_exact(m.nrows().max(1))
}

/// [`columns`], mutable.
fn columns_mut<T: Real>(m: &mut DMatrix<T>) -> std::slice::ChunksExactMut<'_, T> {
    let rows = m.nrows().max(1);
    m.as_mut_slice().chunks_exact_mut(rows)
}

/// `out[i] = <x_i, y_i>` over the rows of the pairs `[W, b]` (f64 sums).
pub(super) fn row_dots<T: Real>(x: &[DMatrix<T>; 2], y: &[DMatrix<T>; 2], out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    for k in 0..2 {
        add_row_dots(&x[k], &y[k], out);
    }
}

/// `out[i] = <x_i, y_i>` over the rows of two matrices (`x = y` gives `||x_i||^2`).
pub(super) fn row_dots_mat<T: Real>(x: &DMatrix<T>, y: &DMatrix<T>, out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    add_row_dots(x, y, out);
}

/// `out[i] += <x_i, y_i>`, column by column (f64 products and sums).
fn add_row_dots<T: Real>(x: &DMatrix<T>, y: &DMatrix<T>, out: &mut [f64]) {
    for (cx, cy) in columns(x).zip(columns(y)) {
        for ((o, &a), &b) in out.iter_mut().zip(cx).zip(cy) {
            *o += a.to_f64() * b.to_f64();
        }
    }
}

/// `y_i += a_i x_i` row-wise on pairs.
pub(super) fn axpy_rows<T: Real>(y: &mut [DMatrix<T>; 2], a: &[f64], x: &[DMatrix<T>; 2]) {
    for k in 0..2 {
        axpy_rows_mat(&mut y[k], a, &x[k]);
    }
}

/// `y_i += a_i x_i` row-wise (rows with `a_i = 0` are left untouched, not added `0 x_i`).
pub(super) fn axpy_rows_mat<T: Real>(y: &mut DMatrix<T>, a: &[f64], x: &DMatrix<T>) {
    for (cy, cx) in columns_mut(y).zip(columns(x)) {
        for ((o, &v), &s) in cy.iter_mut().zip(cx).zip(a) {
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
        for (cp, cz) in columns_mut(&mut p[k]).zip(columns(&z[k])) {
            for ((o, &v), &s) in cp.iter_mut().zip(cz).zip(b) {
                *o = v + T::of(s) * *o;
            }
        }
    }
}
