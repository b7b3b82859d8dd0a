//! Quadratic upper bounds from curvature (ALGORITHMS.md section 10).
//!
//! - [`DescentLemma`]: for `f` with `L`-Lipschitz gradient,
//!   `f(x) <= f(y) + <grad f(y), x - y> + (L/2) ||x - y||^2` (Nesterov, "Introductory
//!   Lectures on Convex Optimization", 2004, Lemma 1.2.3). Valid for any `f` (convex or
//!   not) whose gradient is `L`-Lipschitz on a convex set containing `x` and `y`. The
//!   minimiser is the gradient step `y - grad f(y) / L`.
//! - [`LinearModelLoss`]: a loss of a linear model `Z = W A` (bias folded into `A` as a
//!   row of ones), parameter `W` (`K x d`, flattened column-major), with the bound
//!   `f(W + D) <= f(W) + <G, D> + (1/2) tr(D^T B D M)`, `G = grad f(W) = R A^T`,
//!   `M = A A^T + ridge I` and an output curvature `B` with `Hess_z ell <= B` per sample:
//!   least squares `B = I` (exact when ridge = 0), logistic (binary cross-entropy on
//!   logits) `B = I/4` since `sigma' <= 1/4`, softmax cross-entropy Böhning's
//!   `B = (1/2)(I - 1 1^T / K)` (D. Böhning, Ann. Inst. Statist. Math. 44, 1992).
//!   Since `Hess f = (A (x) I) diag(Hess_z ell) (A^T (x) I) <= M (x) B` (Kronecker
//!   ordering for the column-major `vec(W)`), the bound holds for every `W`, `D`.

use autodiff::Real;
use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

use crate::error::{MajorizeError, Result, shape_err};
use crate::prod::{mul_nn, mul_nt};
use crate::surrogate::{
    InnerSolve, Minimizer, MinimizerKind, Objective, Surrogate, SurrogateBuilder, check_len,
};

/// Descent-lemma builder: wraps an objective whose gradient is `L`-Lipschitz.
#[derive(Clone, Debug)]
pub struct DescentLemma<O, T: Real> {
    /// The objective `f`.
    pub objective: O,
    /// The Lipschitz constant `L > 0` of `grad f` (the user asserts it).
    pub lipschitz: T,
}

impl<O, T: Real> DescentLemma<O, T> {
    /// A descent-lemma builder; errors if `lipschitz` is not positive and finite.
    pub fn new(objective: O, lipschitz: T) -> Result<Self> {
        if !(lipschitz > T::zero() && lipschitz.finite()) {
            return Err(MajorizeError::InvalidParameter {
                name: "lipschitz",
                value: lipschitz.to_f64(),
                reason: "must be positive and finite",
            });
        }
        Ok(Self {
            objective,
            lipschitz,
        })
    }
}

/// `g(x|y) = f(y) + <c, x - y> + (L/2) ||x - y||^2` with `c = grad f(y)`; minimiser
/// `y - c / L` in closed form.
#[derive(Clone, Debug, PartialEq)]
pub struct IsotropicQuadratic<T: Real> {
    anchor: DVector<T>,
    f0: T,
    g0: DVector<T>,
    l: T,
}

impl<T: Real> IsotropicQuadratic<T> {
    /// A quadratic with value `f0` and gradient `g0` at `anchor` and curvature `l` (> 0).
    /// Errors on a NaN or infinite `anchor`, `f0` or `g0` entry (a NaN would otherwise
    /// reach the closed-form minimiser and every value).
    pub fn new(anchor: DVector<T>, f0: T, g0: DVector<T>, l: T) -> Result<Self> {
        const OP: &str = "IsotropicQuadratic::new";
        check_len(OP, &g0, anchor.len())?;
        crate::validate::finite_slice(OP, "anchor", anchor.as_slice())?;
        crate::validate::finite_slice(OP, "f0", &[f0])?;
        crate::validate::finite_slice(OP, "g0", g0.as_slice())?;
        if !(l > T::zero() && l.finite()) {
            return Err(MajorizeError::InvalidParameter {
                name: "curvature",
                value: l.to_f64(),
                reason: "must be positive and finite",
            });
        }
        Ok(Self { anchor, f0, g0, l })
    }
}

impl<T: Real> Surrogate<T> for IsotropicQuadratic<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        check_len("IsotropicQuadratic::value", x, self.anchor.len())?;
        let d = x - &self.anchor;
        Ok(self.f0 + self.g0.dot(&d) + self.l * d.norm_squared() / T::of(2.0))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("IsotropicQuadratic::gradient", x, self.anchor.len())?;
        check_len("IsotropicQuadratic::gradient", grad, self.anchor.len())?;
        for i in 0..x.len() {
            grad[i] = self.g0[i] + self.l * (x[i] - self.anchor[i]);
        }
        Ok(())
    }
    fn minimize(&self, _inner: &InnerSolve) -> Result<Minimizer<T>> {
        Ok(Minimizer {
            point: &self.anchor - &self.g0 / self.l,
            kind: MinimizerKind::ClosedForm,
        })
    }
}

/// A descent-lemma builder is also its objective (so it can be a part of
/// [`crate::rules`] compositions).
impl<T: Real, O: Objective<T>> Objective<T> for DescentLemma<O, T> {
    fn dim(&self) -> usize {
        self.objective.dim()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.objective.value(x)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        self.objective.gradient(x, grad)
    }
}

impl<T: Real, O: Objective<T>> SurrogateBuilder<T> for DescentLemma<O, T> {
    type Surrogate = IsotropicQuadratic<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<IsotropicQuadratic<T>> {
        check_len("DescentLemma::build", anchor, self.objective.dim())?;
        let f0 = self.objective.value(anchor)?;
        let mut g0 = DVector::zeros(anchor.len());
        self.objective.gradient(anchor, &mut g0)?;
        IsotropicQuadratic::new(anchor.clone(), f0, g0, self.lipschitz)
    }
}

/// The loss of a linear model `Z = W A` (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LinearLoss {
    /// `(1/2) ||W A - Y||_F^2`; output curvature `I` (exact).
    LeastSquares,
    /// Binary cross-entropy on logits summed over outputs and samples,
    /// `sum softplus(z) - y z`, targets in [0, 1]; output curvature `I/4`.
    Logistic,
    /// Softmax cross-entropy summed over samples, `sum_n logsumexp(z_n) - y_n^T z_n`,
    /// target columns on the simplex; output curvature Böhning's `(1/2)(I - 11^T/K)`.
    SoftmaxCrossEntropy,
}

impl LinearLoss {
    /// The factor `c` of the closed-form MM step `W <- W - c G M^{-1}`: 1, 4 and 2.
    pub fn step_factor(self) -> f64 {
        match self {
            LinearLoss::LeastSquares => 1.0,
            LinearLoss::Logistic => 4.0,
            LinearLoss::SoftmaxCrossEntropy => 2.0,
        }
    }

    /// Loss value at logits `z` (`K x N`) and the residual `R = d loss / d z` written
    /// into `r` (`Z - Y`, `sigma(Z) - Y` or `softmax(Z) - Y`). Shapes are the caller's job.
    pub(crate) fn value_residual<T: Real>(
        self,
        z: &DMatrix<T>,
        y: &DMatrix<T>,
        r: &mut DMatrix<T>,
    ) -> T {
        let mut total = 0.0f64;
        match self {
            LinearLoss::LeastSquares => {
                for i in 0..z.len() {
                    r[i] = z[i] - y[i];
                    total += 0.5 * r[i].to_f64().powi(2);
                }
            }
            LinearLoss::Logistic => {
                for i in 0..z.len() {
                    let zi = z[i].to_f64();
                    let yi = y[i].to_f64();
                    let sp = zi.max(0.0) + (-zi.abs()).exp().ln_1p();
                    total += sp - yi * zi;
                    let sig = if zi >= 0.0 {
                        1.0 / (1.0 + (-zi).exp())
                    } else {
                        let e = zi.exp();
                        e / (1.0 + e)
                    };
                    r[i] = T::of(sig - yi);
                }
            }
            LinearLoss::SoftmaxCrossEntropy => {
                let k = z.nrows();
                for n in 0..z.ncols() {
                    let col = z.column(n);
                    let m = col.iter().fold(f64::NEG_INFINITY, |a, v| a.max(v.to_f64()));
                    let s: f64 = col.iter().map(|v| (v.to_f64() - m).exp()).sum();
                    let lse = m + s.ln();
                    for j in 0..k {
                        let zj = z[(j, n)].to_f64();
                        let yj = y[(j, n)].to_f64();
                        total -= yj * zj;
                        r[(j, n)] = T::of((zj - lse).exp() - yj);
                    }
                    total += lse * (0..k).map(|j| y[(j, n)].to_f64()).sum::<f64>();
                }
            }
        }
        T::of(total)
    }

    /// `B X` for the output curvature `B` of this loss (`X` is `K x d`).
    fn apply_curvature<T: Real>(self, x: &DMatrix<T>) -> DMatrix<T> {
        match self {
            LinearLoss::LeastSquares => x.clone(),
            LinearLoss::Logistic => x * T::of(0.25),
            LinearLoss::SoftmaxCrossEntropy => {
                let k = T::of(x.nrows() as f64);
                let mut out = x.clone();
                for j in 0..x.ncols() {
                    let mean = x.column(j).sum() / k;
                    for i in 0..x.nrows() {
                        out[(i, j)] = (x[(i, j)] - mean) * T::of(0.5);
                    }
                }
                out
            }
        }
    }
}

/// A loss of the linear model `Z = W A` as an [`Objective`] of `vec(W)` (column-major,
/// `W` is `K x d`) and its curvature-bound [`SurrogateBuilder`] (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModelLoss<T: Real> {
    kind: LinearLoss,
    a: DMatrix<T>,
    y: DMatrix<T>,
    ridge: T,
}

impl<T: Real> LinearModelLoss<T> {
    /// Loss `kind` with inputs `a` (`d x N`, samples as columns; append a row of ones for
    /// a bias) and targets `y` (`K x N`). Checks shapes, finiteness, logistic targets in
    /// [0, 1], softmax target columns summing to 1 (within 1e-6), and that `W` (`K x d`)
    /// and the Gram matrix (`d x d`) fit in [`crate::MAX_ENTRIES`].
    pub fn new(kind: LinearLoss, a: DMatrix<T>, y: DMatrix<T>) -> Result<Self> {
        const OP: &str = "LinearModelLoss::new";
        if a.ncols() != y.ncols() {
            return Err(shape_err(
                OP,
                format!(
                    "A is {}x{} but Y is {}x{} (columns = samples must agree)",
                    a.nrows(),
                    a.ncols(),
                    y.nrows(),
                    y.ncols()
                ),
            ));
        }
        crate::validate::entries(OP, "W (outputs x inputs)", &[y.nrows(), a.nrows()])?;
        crate::validate::entries(OP, "Gram matrix A A^T", &[a.nrows(), a.nrows()])?;
        crate::validate::finite(OP, "A", &a)?;
        crate::validate::finite(OP, "Y", &y)?;
        crate::validate::targets(OP, kind, &y)?;
        Ok(Self {
            kind,
            a,
            y,
            ridge: T::zero(),
        })
    }
    /// Adds `ridge * I` to the Gram matrix of the bound (needed when `A A^T` is
    /// singular; a larger curvature keeps the bound valid). Errors if negative.
    pub fn with_ridge(mut self, ridge: T) -> Result<Self> {
        if !(ridge >= T::zero() && ridge.finite()) {
            return Err(MajorizeError::InvalidParameter {
                name: "ridge",
                value: ridge.to_f64(),
                reason: "must be >= 0 and finite",
            });
        }
        self.ridge = ridge;
        Ok(self)
    }
    /// Number of outputs `K`.
    pub fn outputs(&self) -> usize {
        self.y.nrows()
    }
    /// Input dimension `d`.
    pub fn inputs(&self) -> usize {
        self.a.nrows()
    }
    fn unflatten(&self, x: &DVector<T>) -> Result<DMatrix<T>> {
        check_len("LinearModelLoss", x, self.dim())?;
        Ok(DMatrix::from_column_slice(
            self.outputs(),
            self.inputs(),
            x.as_slice(),
        ))
    }
    fn value_grad(&self, w: &DMatrix<T>) -> Result<(T, DMatrix<T>)> {
        let z = mul_nn(w, &self.a)?;
        let mut r = DMatrix::zeros(z.nrows(), z.ncols());
        let v = self.kind.value_residual(&z, &self.y, &mut r);
        Ok((v, mul_nt(&r, &self.a)?))
    }
}

impl<T: Real> Objective<T> for LinearModelLoss<T> {
    fn dim(&self) -> usize {
        self.outputs() * self.inputs()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        let w = self.unflatten(x)?;
        let z = mul_nn(&w, &self.a)?;
        let mut r = DMatrix::zeros(z.nrows(), z.ncols());
        Ok(self.kind.value_residual(&z, &self.y, &mut r))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let w = self.unflatten(x)?;
        check_len("LinearModelLoss::gradient", grad, self.dim())?;
        let (_, g) = self.value_grad(&w)?;
        grad.as_mut_slice().copy_from_slice(g.as_slice());
        Ok(())
    }
}

/// The curvature-bound surrogate of a [`LinearModelLoss`]:
/// `g(W + D | W) = f(W) + <G, D> + (1/2) tr(D^T B D M)`, minimiser
/// `W - c G M^{-1}` in closed form (Cholesky of `M`), `c = 1, 4, 2`
/// ([`LinearLoss::step_factor`]); for softmax the minimiser is the one with
/// `1^T D = 0` (the loss and the bound are invariant along `1`).
#[derive(Clone, Debug)]
pub struct KroneckerQuadratic<T: Real> {
    kind: LinearLoss,
    anchor: DVector<T>,
    k: usize,
    d: usize,
    f0: T,
    g0: DMatrix<T>,
    m: DMatrix<T>,
    chol: Cholesky<T, Dyn>,
}

impl<T: Real> KroneckerQuadratic<T> {
    fn delta(&self, x: &DVector<T>) -> Result<DMatrix<T>> {
        check_len("KroneckerQuadratic", x, self.k * self.d)?;
        Ok(DMatrix::from_fn(self.k, self.d, |i, j| {
            x[i + j * self.k] - self.anchor[i + j * self.k]
        }))
    }
}

impl<T: Real> Surrogate<T> for KroneckerQuadratic<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        let d = self.delta(x)?;
        let bdm = self.kind.apply_curvature(&mul_nn(&d, &self.m)?);
        Ok(self.f0 + self.g0.dot(&d) + d.dot(&bdm) / T::of(2.0))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let d = self.delta(x)?;
        check_len("KroneckerQuadratic::gradient", grad, self.k * self.d)?;
        let bdm = self.kind.apply_curvature(&mul_nn(&d, &self.m)?);
        for i in 0..grad.len() {
            grad[i] = self.g0[i] + bdm[i];
        }
        Ok(())
    }
    fn minimize(&self, _inner: &InnerSolve) -> Result<Minimizer<T>> {
        // D^T = -c M^{-1} G^T.
        let dt = self.chol.solve(&self.g0.transpose());
        let c = T::of(self.kind.step_factor());
        let mut point = self.anchor.clone();
        for i in 0..self.k {
            for j in 0..self.d {
                point[i + j * self.k] -= c * dt[(j, i)];
            }
        }
        Ok(Minimizer {
            point,
            kind: MinimizerKind::ClosedForm,
        })
    }
}

impl<T: Real> SurrogateBuilder<T> for LinearModelLoss<T> {
    type Surrogate = KroneckerQuadratic<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<KroneckerQuadratic<T>> {
        let w = self.unflatten(anchor)?;
        let (f0, g0) = self.value_grad(&w)?;
        let mut m = mul_nt(&self.a, &self.a)?;
        for i in 0..m.nrows() {
            m[(i, i)] += self.ridge;
        }
        let chol = Cholesky::new(m.clone()).ok_or(MajorizeError::NotPositiveDefinite {
            op: "LinearModelLoss::build (A A^T + ridge I)",
            size: m.nrows(),
        })?;
        Ok(KroneckerQuadratic {
            kind: self.kind,
            anchor: anchor.clone(),
            k: self.outputs(),
            d: self.inputs(),
            f0,
            g0,
            m,
            chol,
        })
    }
}
