//! Closed-form MM steps for the last (linear) layer of a network (ALGORITHMS.md 10.2-10.4).
//!
//! With inputs `A` (`d x N`, the last hidden activations, samples as columns), the
//! layer `Z = W A + b 1^T` (`W` is `K x d`, `b` has length `K`) and a loss summed over
//! samples, fold the bias into `Ab = [A; 1^T]` and `Wb = [W b]`. The quadratic bound of
//! [`crate::quadratic`] with `M = Ab Ab^T + ridge I` is minimised by
//!
//! `Wb <- Wb - c R Ab^T M^{-1}`
//!
//! with `R = dloss/dZ` and `c` = 1 for least squares (`R = Z - Y`; with ridge = 0 this
//! is the least-squares solution `Y Ab^T (Ab Ab^T)^{-1}`; with ridge > 0 it is the
//! proximal step `(Y Ab^T + ridge Wb) M^{-1}`), 4 for logistic (`R = sigma(Z) - Y`,
//! curvature 1/4) and 2 for softmax cross-entropy (`R = softmax(Z) - Y`, Böhning's
//! bound, giving Böhning-Lindsay's fixed-Hessian Newton step
//! `W <- W - 2 (P - Y) A^T (A A^T)^{-1}`). Each step never increases the loss (MM);
//! ridge > 0 only enlarges the curvature, so the bound stays valid and the step stays
//! monotone. For a mean-reduced loss the step is the same (G and M scale alike) if the
//! ridge is scaled by `1/N` too: the ridge here is relative to the summed Gram matrix.
//!
//! [`GramFactor`] caches the Cholesky factor of `M` while `A` is fixed (e.g. inside a
//! block-coordinate sweep), so repeated steps cost two GEMMs and two triangular solves.

use autodiff::Real;
use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

use crate::error::{MajorizeError, Result, shape_err};
use crate::prod::{mul_nn, mul_nt};
use crate::quadratic::LinearLoss;

/// The Cholesky factor of `M = Ab Ab^T + ridge I` for fixed inputs `A`.
#[derive(Clone, Debug)]
pub struct GramFactor<T: Real> {
    chol: Cholesky<T, Dyn>,
    d: usize,
    n: usize,
    bias: bool,
}

impl<T: Real> GramFactor<T> {
    /// Factors `M` for inputs `a` (`d x N`); with `bias`, `Ab = [A; 1^T]`.
    /// Errors on non-finite input, negative ridge, a singular `M` (use ridge > 0), or
    /// `M` above [`crate::MAX_ENTRIES`] entries.
    pub fn new(a: &DMatrix<T>, bias: bool, ridge: T) -> Result<Self> {
        const OP: &str = "GramFactor::new";
        crate::validate::finite(OP, "A", a)?;
        if !(ridge >= T::zero() && ridge.finite()) {
            return Err(MajorizeError::InvalidParameter {
                name: "ridge",
                value: ridge.to_f64(),
                reason: "must be >= 0 and finite",
            });
        }
        let (d, n) = a.shape();
        let db = d.saturating_add(usize::from(bias));
        crate::validate::entries(OP, "Gram matrix", &[db, db])?;
        let mut m = DMatrix::zeros(db, db);
        let gram = mul_nt(a, a)?;
        m.view_mut((0, 0), (d, d)).copy_from(&gram);
        if bias {
            for i in 0..d {
                let s = a.row(i).sum();
                m[(i, d)] = s;
                m[(d, i)] = s;
            }
            m[(d, d)] = T::of(n as f64);
        }
        for i in 0..db {
            m[(i, i)] += ridge;
        }
        let chol =
            Cholesky::new(m).ok_or(MajorizeError::NotPositiveDefinite { op: OP, size: db })?;
        Ok(Self { chol, d, n, bias })
    }

    /// One MM step of the last layer for `loss` (see the module doc), updating `w`
    /// (`K x d`) and, if the factor was built with a bias, `b` (length `K`; required then).
    /// `targets` is `K x N` (one-hot or soft for softmax, in [0, 1] for logistic).
    /// Returns the loss at the weights before the step.
    pub fn step(
        &self,
        loss: LinearLoss,
        a: &DMatrix<T>,
        targets: &DMatrix<T>,
        w: &mut DMatrix<T>,
        b: Option<&mut DVector<T>>,
    ) -> Result<T> {
        const OP: &str = "GramFactor::step";
        let k = w.nrows();
        if a.shape() != (self.d, self.n) {
            return Err(shape_err(
                OP,
                format!(
                    "A is {:?}, the factor was built for {:?}",
                    a.shape(),
                    (self.d, self.n)
                ),
            ));
        }
        if w.ncols() != self.d || targets.shape() != (k, self.n) {
            return Err(shape_err(
                OP,
                format!(
                    "W is {:?}, Y is {:?}; expected W K x {} and Y K x {}",
                    w.shape(),
                    targets.shape(),
                    self.d,
                    self.n
                ),
            ));
        }
        if self.bias != b.is_some() {
            return Err(MajorizeError::Unsupported(format!(
                "{OP}: the factor was built with bias = {} but a bias vector was {}given",
                self.bias,
                if b.is_some() { "" } else { "not " }
            )));
        }
        if let Some(bv) = &b
            && bv.len() != k
        {
            return Err(shape_err(
                OP,
                format!("b has length {}, W has {k} rows", bv.len()),
            ));
        }
        crate::validate::finite(OP, "W", w)?;
        if let Some(bv) = &b
            && let Some(i) = bv.iter().position(|v| !v.finite())
        {
            return Err(MajorizeError::NonFinite {
                op: OP,
                what: "b",
                row: i,
                col: 0,
            });
        }
        crate::validate::targets(OP, loss, targets)?;
        let mut z = mul_nn(w, a)?;
        if let Some(bv) = &b {
            for j in 0..self.n {
                for i in 0..k {
                    z[(i, j)] += bv[i];
                }
            }
        }
        let mut r = DMatrix::zeros(k, self.n);
        let value = loss.value_residual(&z, targets, &mut r);
        // G^T = Ab R^T ((d + bias) x K).
        let mut gt = DMatrix::zeros(self.d + usize::from(self.bias), k);
        let top = mul_nt(a, &r)?;
        gt.view_mut((0, 0), (self.d, k)).copy_from(&top);
        if self.bias {
            for i in 0..k {
                gt[(self.d, i)] = r.row(i).sum();
            }
        }
        let dt = self.chol.solve(&gt);
        let c = T::of(loss.step_factor());
        for i in 0..k {
            for j in 0..self.d {
                w[(i, j)] -= c * dt[(j, i)];
            }
        }
        if let Some(bv) = b {
            for i in 0..k {
                bv[i] -= c * dt[(self.d, i)];
            }
        }
        Ok(value)
    }
}

/// One-hot targets (`K x N`) from labels; errors on a label `>= k` and on `k x N` above
/// [`crate::MAX_ENTRIES`].
pub fn one_hot<T: Real>(labels: &[usize], k: usize) -> Result<DMatrix<T>> {
    crate::validate::entries("one_hot", "targets (classes x samples)", &[k, labels.len()])?;
    let mut y = DMatrix::zeros(k, labels.len());
    for (n, &l) in labels.iter().enumerate() {
        if l >= k {
            return Err(MajorizeError::Domain {
                op: "one_hot",
                detail: format!("label {l} of sample {n} is >= the number of classes {k}"),
            });
        }
        y[(l, n)] = T::one();
    }
    Ok(y)
}

/// Least-squares last-layer MM step (exact minimiser of `(1/2)||W A + b 1^T - Y||^2`
/// when ridge = 0, proximal step otherwise). Returns the loss before the step.
pub fn least_squares_step<T: Real>(
    a: &DMatrix<T>,
    y: &DMatrix<T>,
    w: &mut DMatrix<T>,
    b: Option<&mut DVector<T>>,
    ridge: T,
) -> Result<T> {
    GramFactor::new(a, b.is_some(), ridge)?.step(LinearLoss::LeastSquares, a, y, w, b)
}

/// Logistic (binary cross-entropy on logits) last-layer MM step,
/// `Wb <- Wb - 4 (sigma(Z) - Y) Ab^T M^{-1}`. Returns the loss before the step.
pub fn logistic_step<T: Real>(
    a: &DMatrix<T>,
    y: &DMatrix<T>,
    w: &mut DMatrix<T>,
    b: Option<&mut DVector<T>>,
    ridge: T,
) -> Result<T> {
    GramFactor::new(a, b.is_some(), ridge)?.step(LinearLoss::Logistic, a, y, w, b)
}

/// Softmax cross-entropy last-layer MM step (Böhning),
/// `Wb <- Wb - 2 (P - Y) Ab^T M^{-1}`. Returns the loss before the step.
pub fn softmax_ce_step<T: Real>(
    a: &DMatrix<T>,
    y: &DMatrix<T>,
    w: &mut DMatrix<T>,
    b: Option<&mut DVector<T>>,
    ridge: T,
) -> Result<T> {
    GramFactor::new(a, b.is_some(), ridge)?.step(LinearLoss::SoftmaxCrossEntropy, a, y, w, b)
}

/// [`softmax_ce_step`] with integer labels (`labels[n] < W.nrows()`).
pub fn softmax_ce_step_labels<T: Real>(
    a: &DMatrix<T>,
    labels: &[usize],
    w: &mut DMatrix<T>,
    b: Option<&mut DVector<T>>,
    ridge: T,
) -> Result<T> {
    let y = one_hot(labels, w.nrows())?;
    softmax_ce_step(a, &y, w, b, ridge)
}
