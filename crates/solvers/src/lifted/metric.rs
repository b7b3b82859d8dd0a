//! The metric of a weights block (issue #14): a fixed quadratic upper bound on the
//! block's Hessian, used as the preconditioner of its inner solve.
//!
//! The `(W_l, b_l)` block is `f(W, b) = term(W A + b 1^T) + (ridge/2) ||W||_F^2`
//! ([`super::blocks::WBlock`]). Write the variable as the `d_out x (d_in + 1)` matrix
//! `D = [W, b]` and `Ã = [A; 1^T]`, so the pre-activation is `V = D Ã`. If the term's
//! Hessian in each column of `V` is bounded by `c I`, then for any direction `E`
//!
//! ```text
//! E : Hess f : E <= c ||E Ã||_F^2 + ridge ||E_W||_F^2 = tr(E M E^T),
//! M = c Ã Ã^T + ridge diag(1, ..., 1, 0)        ((d_in + 1) x (d_in + 1)),
//! ```
//!
//! so `f(D + E) <= f(D) + <∇f(D), E> + (1/2) tr(E M E^T)` (descent lemma in the metric
//! `M`; the majorization-minimization view of a layer, ALGORITHMS.md 10.3, and
//! majorize's layer surrogates). The constant `c`:
//! - hidden term `lam sum B(V, X_next)`: `B`'s second derivative in `v` is
//!   `1{v > 0} <= 1`, so `c = lam` (`lam` already holds the sample weight `s`);
//! - output term: `s` times the loss's stated bound ([`nets::Loss::curvature_bound`]:
//!   MSE 1, logistic 1/4, softmax cross-entropy Böhning's `(1/2)(I - 11^T/K) <= 1/2`).
//!
//! The preconditioned step `D+ = Y - (1/L) ∇f(Y) M^{-1}` then decreases `f` for `L = 1`;
//! the inner solver still backtracks on the descent test in this metric, so a bound that
//! does not hold (softmax with soft targets whose sum is not 1) only costs trials, never
//! monotonicity. `M` depends on `A` only, which is fixed during the block's solve: it is
//! formed and inverted once per block solve (`O(d_in^2 N)`, a fraction of one product
//! `W A`), and for layer 1 (`A` = the inputs) once per run.

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;

use crate::SolverError;
use crate::linalg::{InputKey, fit, gemm, spd_inverse_ridged};

/// `M^{-1}` for the metric `M = c Ã Ã^T + ridge diag(1, ..., 1, 0)` of the module docs,
/// written into `minv` (`(d_in + 1) x (d_in + 1)`, `d_in = a.nrows()`). The Gram matrix
/// is formed in `T` by one GEMM, then `M` in f64 gets a relative jitter
/// `sqrt(eps_T) * mean(diag M)` on its diagonal (a larger `M` is still an upper bound; it
/// keeps the inverse well conditioned when `A` has constant-zero rows, e.g. blank pixels)
/// and is inverted by Cholesky.
pub(crate) fn weights_metric_inverse<T: Real>(
    a: &DMatrix<T>,
    c: f64,
    ridge: f64,
    gram: &mut DMatrix<T>,
    minv: &mut DMatrix<T>,
    threads: usize,
) -> Result<(), SolverError> {
    let (d, n) = a.shape();
    fit(gram, d, d);
    gemm(gram, 1.0, a, Transpose::No, a, Transpose::Yes, 0.0, threads)?;
    let mut m = DMatrix::<f64>::zeros(d + 1, d + 1);
    for j in 0..d {
        for i in 0..d {
            m[(i, j)] = c * gram[(i, j)].to_f64();
        }
    }
    for i in 0..d {
        let r: f64 = a.row(i).iter().map(|v| v.to_f64()).sum();
        m[(i, d)] = c * r;
        m[(d, i)] = c * r;
        m[(i, i)] += ridge;
    }
    m[(d, d)] = c * n as f64;
    let mean_diag = m.trace() / (d + 1) as f64;
    let jitter = T::EPS.to_f64().sqrt() * mean_diag.max(f64::MIN_POSITIVE);
    for i in 0..=d {
        m[(i, i)] += jitter;
    }
    let (inv, _) = spd_inverse_ridged(&m, "lifted weights-block metric")?;
    fit(minv, d + 1, d + 1);
    for (o, v) in minv.iter_mut().zip(inv.iter()) {
        *o = T::of(*v);
    }
    Ok(())
}

/// The metric inverses of the weights blocks, one per layer, with the input key of layer
/// 1 (whose `A` is the constant input matrix, so its inverse is reused across sweeps
/// while the inputs, thread count, `c` and ridge are the same).
#[derive(Debug, Clone, Default)]
pub(crate) struct WeightMetrics<T: Real> {
    pub(crate) minv: Vec<DMatrix<T>>,
    gram: DMatrix<T>,
    first: InputKey,
}

impl<T: Real> WeightMetrics<T> {
    /// Forgets the first layer's cached metric inverse (the solver steps on another data
    /// set, whose inputs may sit at the old one's address).
    pub(crate) fn forget_data(&mut self) {
        self.first.clear();
    }

    /// Makes `minv[l]` the metric inverse of layer `l`'s block for input `a`, curvature
    /// `c` and `ridge` (recomputed unless `l == 0` and the cached one matches).
    pub(crate) fn prepare(
        &mut self,
        l: usize,
        a: &DMatrix<T>,
        c: f64,
        ridge: f64,
        threads: usize,
    ) -> Result<(), SolverError> {
        while self.minv.len() <= l {
            self.minv.push(DMatrix::zeros(0, 0));
        }
        if l == 0 && self.first.hit_with(a, threads, [c, ridge]) {
            return Ok(());
        }
        let res = weights_metric_inverse(a, c, ridge, &mut self.gram, &mut self.minv[l], threads);
        if res.is_err() && l == 0 {
            self.first.clear();
        }
        res
    }
}
