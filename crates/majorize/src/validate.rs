//! Input checks shared by the crate (typed errors naming the offending entry).

use autodiff::Real;
use nalgebra::DMatrix;

use crate::error::{MajorizeError, Result};
use crate::quadratic::LinearLoss;

/// The number of entries of a buffer with dimensions `dims`; errors (before anything is
/// allocated) if the product overflows `usize` or exceeds [`crate::MAX_ENTRIES`].
pub(crate) fn entries(op: &'static str, what: &'static str, dims: &[usize]) -> Result<usize> {
    match dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) if n <= crate::MAX_ENTRIES => Ok(n),
        _ => Err(MajorizeError::TooLarge {
            op,
            what,
            dims: dims
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" x "),
            limit: crate::MAX_ENTRIES,
        }),
    }
}

/// Errors on the first NaN or infinite entry of `m`.
pub(crate) fn finite<T: Real>(op: &'static str, what: &'static str, m: &DMatrix<T>) -> Result<()> {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if !m[(i, j)].finite() {
                return Err(MajorizeError::NonFinite {
                    op,
                    what,
                    row: i,
                    col: j,
                });
            }
        }
    }
    Ok(())
}

/// Errors on the first NaN or infinite entry of a vector or slice (its index is the
/// error's row, column 0).
pub(crate) fn finite_slice<T: Real>(op: &'static str, what: &'static str, v: &[T]) -> Result<()> {
    match v.iter().position(|x| !x.finite()) {
        Some(row) => Err(MajorizeError::NonFinite {
            op,
            what,
            row,
            col: 0,
        }),
        None => Ok(()),
    }
}

/// Errors on the first non-finite or negative entry of `m`.
pub(crate) fn nonnegative<T: Real>(
    op: &'static str,
    what: &'static str,
    m: &DMatrix<T>,
) -> Result<()> {
    finite(op, what, m)?;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if m[(i, j)] < T::zero() {
                return Err(MajorizeError::Negative {
                    op,
                    what,
                    row: i,
                    col: j,
                    value: m[(i, j)].to_f64(),
                });
            }
        }
    }
    Ok(())
}

/// Errors on the first non-finite, negative or zero entry of `m`.
pub(crate) fn positive<T: Real>(
    op: &'static str,
    what: &'static str,
    m: &DMatrix<T>,
    reason: &'static str,
) -> Result<()> {
    nonnegative(op, what, m)?;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if m[(i, j)] == T::zero() {
                return Err(MajorizeError::Zero {
                    op,
                    what,
                    row: i,
                    col: j,
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Target checks of a linear-model loss: least-squares targets finite, logistic targets
/// in [0, 1], softmax target columns nonnegative and summing to 1 (within 1e-6).
pub(crate) fn targets<T: Real>(op: &'static str, kind: LinearLoss, y: &DMatrix<T>) -> Result<()> {
    match kind {
        LinearLoss::LeastSquares => finite(op, "Y", y),
        LinearLoss::Logistic => {
            for j in 0..y.ncols() {
                for i in 0..y.nrows() {
                    let v = y[(i, j)].to_f64();
                    if !(0.0..=1.0).contains(&v) {
                        return Err(MajorizeError::Domain {
                            op,
                            detail: format!(
                                "logistic target Y[({i}, {j})] = {v} is outside [0, 1]"
                            ),
                        });
                    }
                }
            }
            Ok(())
        }
        LinearLoss::SoftmaxCrossEntropy => {
            nonnegative(op, "Y", y)?;
            for j in 0..y.ncols() {
                let s: f64 = y.column(j).iter().map(|v| v.to_f64()).sum();
                if (s - 1.0).abs() > 1e-6 {
                    return Err(MajorizeError::Domain {
                        op,
                        detail: format!("softmax target column {j} sums to {s}, expected 1"),
                    });
                }
            }
            Ok(())
        }
    }
}
