//! General majorization rules and the operations that preserve majorization, so a
//! surrogate for a new objective can be assembled from parts (Hunter & Lange, "A
//! tutorial on MM algorithms", Amer. Statist. 58, 2004, section 3; Sun, Babu & Palomar,
//! "Majorization-minimization algorithms in signal processing", IEEE TSP 65, 2017).
//!
//! Rules (each a [`SurrogateBuilder`]):
//! - [`Tangent`]: a concave `f` lies below its tangent: `f(x) <= f(y) + <grad f(y), x - y>`.
//! - [`Jensen`]: for convex `phi`, `a >= 0`, `x, y > 0`:
//!   `phi(a^T x) <= sum_i (a_i y_i / a^T y) phi((a^T y) x_i / y_i)` (Jensen with weights
//!   `a_i y_i / a^T y`; De Pierro 1993, used by Févotte & Idier 2011).
//! - [`AmGm`]: for `c > 0`, `alpha_i >= 0`, `|alpha| = sum alpha_i > 0`, `x, y > 0`:
//!   `c prod x_i^alpha_i <= c prod y_i^alpha_i sum_i (alpha_i/|alpha|) (x_i/y_i)^|alpha|`
//!   (weighted AM-GM applied to `(x_i/y_i)^|alpha|`).
//! - The quadratic upper bound (descent lemma) is [`crate::quadratic::DescentLemma`].
//!
//! Operations (objective and builder at once):
//! - [`Sum`]: `g_1 + g_2` majorizes `f_1 + f_2`;
//! - [`Scaled`]: `c g` majorizes `c f` for `c > 0`;
//! - [`AffineComposition`]: `g(M x + c | M y + c)` majorizes `f(M x + c)`;
//! - [`BlockSeparable`]: `sum_i g_i(x_i | y_i)` majorizes `sum_i f_i(x_i)` for a split
//!   of `x` into consecutive blocks; its minimiser is the blocks' minimisers.
//!
//! Touching and tangency are preserved by all four (linear operations and the chain rule).
//!
//! A composed example: `f(x) = (1/2)||A x - b||^2 + 0.3 q(x)` with the concave
//! `q(x) = -sum_i softplus(x_i)`, majorized by the exact quadratic composed with the
//! affine map plus the scaled tangent of `q`; MM never increases `f`:
//!
//! ```
//! use majorize::prelude::*;
//! use majorize::rules::{AffineComposition, HalfSquaredNorm, Scaled, Sum, Tangent};
//! use nalgebra::{DMatrix, DVector};
//!
//! /// q(x) = -sum softplus(x_i), concave.
//! struct NegSoftplus(usize);
//! impl Objective<f64> for NegSoftplus {
//!     fn dim(&self) -> usize { self.0 }
//!     fn value(&self, x: &DVector<f64>) -> majorize::Result<f64> {
//!         Ok(-x.iter().map(|t| t.max(0.0) + (-t.abs()).exp().ln_1p()).sum::<f64>())
//!     }
//!     fn gradient(&self, x: &DVector<f64>, g: &mut DVector<f64>) -> majorize::Result<()> {
//!         for i in 0..x.len() { g[i] = -1.0 / (1.0 + (-x[i]).exp()); }
//!         Ok(())
//!     }
//! }
//!
//! let a = DMatrix::from_row_slice(3, 2, &[1.0, 0.5, -0.2, 1.0, 0.3, 0.3]);
//! let b = DVector::from_vec(vec![1.0, -1.0, 0.5]);
//! let f = Sum(
//!     AffineComposition::new(HalfSquaredNorm::new(3), a, -b)?,
//!     Scaled::new(Tangent::new(NegSoftplus(2)), 0.3)?,
//! );
//! let mut x = DVector::from_vec(vec![0.0, 0.0]);
//! let mut prev = f.value(&x)?;
//! for _ in 0..20 {
//!     x = f.build(&x)?.minimize(&InnerSolve::default())?.point;
//!     let now = f.value(&x)?;
//!     assert!(now <= prev + 1e-12);
//!     prev = now;
//! }
//! # Ok::<(), majorize::MajorizeError>(())
//! ```

use autodiff::Real;
use nalgebra::{DMatrix, DVector};

use crate::error::{MajorizeError, Result, shape_err};
use crate::surrogate::{
    InnerSolve, Minimizer, MinimizerKind, Objective, Surrogate, SurrogateBuilder, check_len,
};

mod compose;
pub use compose::{
    AffineComposition, AffineSurrogate, BlockSeparable, BlockSurrogate, DynPart, Scaled, Sum,
    SumSurrogate,
};

// ---------------------------------------------------------------------------------
// Basic objectives.

/// `f(z) = (1/2) ||z||^2` on `R^n`; its own exact surrogate (itself, minimiser 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HalfSquaredNorm {
    n: usize,
}

impl HalfSquaredNorm {
    /// On `R^n`.
    pub fn new(n: usize) -> Self {
        Self { n }
    }
}

impl<T: Real> Objective<T> for HalfSquaredNorm {
    fn dim(&self) -> usize {
        self.n
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        check_len("HalfSquaredNorm::value", x, self.n)?;
        Ok(x.norm_squared() / T::of(2.0))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("HalfSquaredNorm::gradient", x, self.n)?;
        check_len("HalfSquaredNorm::gradient", grad, self.n)?;
        grad.copy_from(x);
        Ok(())
    }
}

impl<T: Real> SurrogateBuilder<T> for HalfSquaredNorm {
    type Surrogate = crate::quadratic::IsotropicQuadratic<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<Self::Surrogate> {
        check_len("HalfSquaredNorm::build", anchor, self.n)?;
        crate::quadratic::IsotropicQuadratic::new(
            anchor.clone(),
            anchor.norm_squared() / T::of(2.0),
            anchor.clone(),
            T::one(),
        )
    }
}

// ---------------------------------------------------------------------------------
// Tangent of a concave objective.

/// Tangent (supporting hyperplane) majorizer of a **concave** objective (the user
/// asserts concavity): `g(x|y) = f(y) + <grad f(y), x - y>`. Linear, so it has no
/// minimiser alone; combine it with a coercive term ([`Sum`]).
#[derive(Clone, Debug)]
pub struct Tangent<O> {
    /// The concave objective.
    pub objective: O,
}

impl<O> Tangent<O> {
    /// Wraps a concave objective.
    pub fn new(objective: O) -> Self {
        Self { objective }
    }
}

/// `g(x) = f0 + <c, x - y>`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSurrogate<T: Real> {
    anchor: DVector<T>,
    f0: T,
    c: DVector<T>,
}

impl<T: Real> Surrogate<T> for LinearSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        check_len("LinearSurrogate::value", x, self.anchor.len())?;
        Ok(self.f0 + self.c.dot(&(x - &self.anchor)))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("LinearSurrogate::gradient", x, self.anchor.len())?;
        check_len("LinearSurrogate::gradient", grad, self.anchor.len())?;
        grad.copy_from(&self.c);
        Ok(())
    }
    fn minimize(&self, _inner: &InnerSolve) -> Result<Minimizer<T>> {
        if self.c.iter().all(|v| *v == T::zero()) {
            return Ok(Minimizer {
                point: self.anchor.clone(),
                kind: MinimizerKind::ClosedForm,
            });
        }
        Err(MajorizeError::NoMinimizer("Tangent (linear surrogate)"))
    }
}

impl<T: Real, O: Objective<T>> Objective<T> for Tangent<O> {
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

impl<T: Real, O: Objective<T>> SurrogateBuilder<T> for Tangent<O> {
    type Surrogate = LinearSurrogate<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<LinearSurrogate<T>> {
        let f0 = self.objective.value(anchor)?;
        let mut c = DVector::zeros(anchor.len());
        self.objective.gradient(anchor, &mut c)?;
        Ok(LinearSurrogate {
            anchor: anchor.clone(),
            f0,
            c,
        })
    }
}

// ---------------------------------------------------------------------------------
// Jensen.

/// A scalar function with its derivative (used by [`Jensen`]; the user asserts
/// convexity on `(0, inf)` or wherever it is evaluated).
pub trait ScalarFunction {
    /// `phi(t)`.
    fn value(&self, t: f64) -> f64;
    /// `phi'(t)`.
    fn derivative(&self, t: f64) -> f64;
}

impl<F: Fn(f64) -> f64, G: Fn(f64) -> f64> ScalarFunction for (F, G) {
    fn value(&self, t: f64) -> f64 {
        (self.0)(t)
    }
    fn derivative(&self, t: f64) -> f64 {
        (self.1)(t)
    }
}

/// `f(x) = phi(a^T x)` with `phi` convex, `a >= 0`, on `x > 0`, majorized by Jensen's
/// inequality (module doc). Separable surrogate; no closed-form minimiser in general
/// (generic inner solve).
#[derive(Clone, Debug)]
pub struct Jensen<F> {
    phi: F,
    a: Vec<f64>,
}

impl<F: ScalarFunction> Jensen<F> {
    /// Errors if some `a_i` is negative or non-finite, or all are zero.
    pub fn new(phi: F, a: Vec<f64>) -> Result<Self> {
        if let Some(i) = a.iter().position(|v| !(*v >= 0.0 && v.is_finite())) {
            return Err(MajorizeError::InvalidParameter {
                name: "Jensen::a",
                value: a[i],
                reason: "weights must be >= 0 and finite",
            });
        }
        if a.iter().all(|v| *v == 0.0) {
            return Err(MajorizeError::InvalidParameter {
                name: "Jensen::a",
                value: 0.0,
                reason: "at least one weight must be positive",
            });
        }
        Ok(Self { phi, a })
    }
    fn check<T: Real>(&self, op: &'static str, x: &DVector<T>) -> Result<()> {
        check_len(op, x, self.a.len())?;
        if let Some(i) = x.iter().position(|v| !(v.to_f64() > 0.0 && v.finite())) {
            return Err(MajorizeError::Domain {
                op,
                detail: format!("x[{i}] = {} must be positive", x[i]),
            });
        }
        Ok(())
    }
    fn dot<T: Real>(&self, x: &DVector<T>) -> f64 {
        self.a
            .iter()
            .zip(x.iter())
            .map(|(a, x)| a * x.to_f64())
            .sum()
    }
}

impl<T: Real, F: ScalarFunction> Objective<T> for Jensen<F> {
    fn dim(&self) -> usize {
        self.a.len()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.check("Jensen::value", x)?;
        Ok(T::of(self.phi.value(self.dot(x))))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        self.check("Jensen::gradient", x)?;
        check_len("Jensen::gradient", grad, self.a.len())?;
        let d = self.phi.derivative(self.dot(x));
        for (g, a) in grad.iter_mut().zip(&self.a) {
            *g = T::of(a * d);
        }
        Ok(())
    }
}

/// Jensen surrogate `sum_i (a_i y_i / s) phi(s x_i / y_i)`, `s = a^T y` (owns a copy
/// of the rule).
#[derive(Clone, Debug)]
pub struct JensenSurrogate<F, T: Real> {
    rule: Jensen<F>,
    anchor_f64: Vec<f64>,
    s: f64,
    anchor: DVector<T>,
}

impl<T: Real, F: ScalarFunction> Surrogate<T> for JensenSurrogate<F, T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.rule.check("JensenSurrogate::value", x)?;
        let mut g = 0.0;
        for (i, a) in self.rule.a.iter().enumerate() {
            if *a > 0.0 {
                let y = self.anchor_f64[i];
                g += a * y / self.s * self.rule.phi.value(self.s * x[i].to_f64() / y);
            }
        }
        Ok(T::of(g))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        self.rule.check("JensenSurrogate::gradient", x)?;
        check_len("JensenSurrogate::gradient", grad, self.rule.a.len())?;
        for (i, a) in self.rule.a.iter().enumerate() {
            let y = self.anchor_f64[i];
            grad[i] = T::of(a * self.rule.phi.derivative(self.s * x[i].to_f64() / y));
        }
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        x.iter().all(|v| v.to_f64() > 0.0 && v.finite())
    }
}

impl<T: Real, F: ScalarFunction + Clone> SurrogateBuilder<T> for Jensen<F> {
    type Surrogate = JensenSurrogate<F, T>;
    fn build(&self, anchor: &DVector<T>) -> Result<JensenSurrogate<F, T>> {
        self.check("Jensen::build", anchor)?;
        Ok(JensenSurrogate {
            rule: self.clone(),
            anchor_f64: anchor.iter().map(|v| v.to_f64()).collect(),
            s: self.dot(anchor),
            anchor: anchor.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------
// AM-GM.

/// `f(x) = c prod_i x_i^alpha_i` on `x > 0` (`c > 0`, `alpha_i >= 0`, `|alpha| > 0`),
/// majorized by the AM-GM inequality (module doc). The surrogate is separable and
/// unbounded below towards 0 alone: combine it with a coercive term.
#[derive(Clone, Debug, PartialEq)]
pub struct AmGm {
    c: f64,
    alpha: Vec<f64>,
}

impl AmGm {
    /// Validates `c > 0`, `alpha_i >= 0` finite, `sum alpha > 0`.
    pub fn new(c: f64, alpha: Vec<f64>) -> Result<Self> {
        if !(c > 0.0 && c.is_finite()) {
            return Err(MajorizeError::InvalidParameter {
                name: "AmGm::c",
                value: c,
                reason: "must be positive and finite",
            });
        }
        if let Some(i) = alpha.iter().position(|v| !(*v >= 0.0 && v.is_finite())) {
            return Err(MajorizeError::InvalidParameter {
                name: "AmGm::alpha",
                value: alpha[i],
                reason: "exponents must be >= 0 and finite",
            });
        }
        if alpha.iter().sum::<f64>() <= 0.0 {
            return Err(MajorizeError::InvalidParameter {
                name: "AmGm::alpha",
                value: 0.0,
                reason: "exponents must not all be zero",
            });
        }
        Ok(Self { c, alpha })
    }
    fn check<T: Real>(&self, op: &'static str, x: &DVector<T>) -> Result<()> {
        check_len(op, x, self.alpha.len())?;
        if let Some(i) = x.iter().position(|v| !(v.to_f64() > 0.0 && v.finite())) {
            return Err(MajorizeError::Domain {
                op,
                detail: format!("x[{i}] = {} must be positive", x[i]),
            });
        }
        Ok(())
    }
    fn mono<T: Real>(&self, x: &DVector<T>) -> f64 {
        self.c
            * self
                .alpha
                .iter()
                .zip(x.iter())
                .map(|(a, x)| x.to_f64().powf(*a))
                .product::<f64>()
    }
}

impl<T: Real> Objective<T> for AmGm {
    fn dim(&self) -> usize {
        self.alpha.len()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.check("AmGm::value", x)?;
        Ok(T::of(self.mono(x)))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        self.check("AmGm::gradient", x)?;
        check_len("AmGm::gradient", grad, self.alpha.len())?;
        let m = self.mono(x);
        for (i, a) in self.alpha.iter().enumerate() {
            grad[i] = T::of(m * a / x[i].to_f64());
        }
        Ok(())
    }
}

/// The AM-GM surrogate `m(y) sum_i (alpha_i/|alpha|) (x_i/y_i)^|alpha|`.
#[derive(Clone, Debug, PartialEq)]
pub struct AmGmSurrogate<T: Real> {
    anchor: DVector<T>,
    my: f64,
    alpha: Vec<f64>,
    total: f64,
}

impl<T: Real> Surrogate<T> for AmGmSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        check_len("AmGmSurrogate::value", x, self.alpha.len())?;
        let s: f64 = self
            .alpha
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a / self.total * (x[i].to_f64() / self.anchor[i].to_f64()).powf(self.total)
            })
            .sum();
        Ok(T::of(self.my * s))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("AmGmSurrogate::gradient", x, self.alpha.len())?;
        check_len("AmGmSurrogate::gradient", grad, self.alpha.len())?;
        for (i, a) in self.alpha.iter().enumerate() {
            let y = self.anchor[i].to_f64();
            grad[i] = T::of(self.my * a * (x[i].to_f64() / y).powf(self.total - 1.0) / y);
        }
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        x.iter().all(|v| v.to_f64() > 0.0 && v.finite())
    }
    fn minimize(&self, _inner: &InnerSolve) -> Result<Minimizer<T>> {
        Err(MajorizeError::NoMinimizer(
            "AmGm (infimum 0 at the boundary)",
        ))
    }
}

impl<T: Real> SurrogateBuilder<T> for AmGm {
    type Surrogate = AmGmSurrogate<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<AmGmSurrogate<T>> {
        self.check("AmGm::build", anchor)?;
        Ok(AmGmSurrogate {
            anchor: anchor.clone(),
            my: self.mono(anchor),
            alpha: self.alpha.clone(),
            total: self.alpha.iter().sum(),
        })
    }
}
