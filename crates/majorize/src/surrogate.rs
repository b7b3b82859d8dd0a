//! The surrogate contract: objectives, surrogates built at an anchor, their minimisers.
//!
//! A surrogate of an objective `f` built at an anchor `y` is a function `g(.|y)` with
//!
//! 1. `g(x|y) >= f(x)` for every admissible `x` (majorization),
//! 2. `g(y|y) = f(y)` (touching at the anchor),
//! 3. `grad g(y|y) = grad f(y)` where `f` is differentiable (tangency).
//!
//! Minimising `g(.|y)` and moving the anchor there never increases `f`
//! (`f(x+) <= g(x+|y) <= g(y|y) = f(y)`): this is majorization-minimization (MM),
//! see Hunter & Lange, "A tutorial on MM algorithms", Amer. Statist. 58 (2004).
//! Any point `x+` with `g(x+|y) <= g(y|y)` keeps the guarantee, so an inexact inner solve
//! that only decreases `g` is still a valid MM step.
//!
//! Parameters are flat vectors (`DVector<T>`); a matrix parameter is flattened
//! column-major (nalgebra's storage order).

use autodiff::Real;
use nalgebra::DVector;

use crate::error::{MajorizeError, Result};

/// A differentiable objective on flat parameter vectors.
pub trait Objective<T: Real> {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// `f(x)`. Errors if `x` has the wrong length or lies outside the domain.
    fn value(&self, x: &DVector<T>) -> Result<T>;
    /// `grad f(x)` written into `grad` (same length as `x`).
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()>;
}

/// How a surrogate's minimiser was obtained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinimizerKind {
    /// Exact closed form.
    ClosedForm,
    /// An iterative inner solve (see [`InnerSolve`]); `converged` says whether the
    /// stated tolerance was reached. Even when it was not, the returned point has a
    /// surrogate value no larger than at the anchor, so it is still a valid MM step.
    Inner {
        /// Iterations spent.
        iterations: usize,
        /// Final relative gradient norm `||grad g(x)|| / max(1, ||grad g(y)||)`.
        residual: f64,
        /// Whether `residual <= tol`.
        converged: bool,
    },
}

/// A minimiser of a surrogate, with how it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimizer<T: Real> {
    /// The point `argmin_x g(x|y)`.
    pub point: DVector<T>,
    /// Closed form or inner solve.
    pub kind: MinimizerKind,
}

/// Settings of the generic inner solve used by surrogates without a closed-form
/// minimiser: gradient descent with a Barzilai-Borwein trial step and Armijo
/// backtracking (every accepted step decreases `g`), started at the anchor, rejecting
/// trial points outside [`Surrogate::admissible`].
/// Stops when `||grad g(x)||_2 <= tol * max(1, ||grad g(anchor)||_2)` or after
/// `max_iter` iterations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InnerSolve {
    /// Relative gradient-norm tolerance (default 1e-10).
    pub tol: f64,
    /// Iteration cap (default 10 000).
    pub max_iter: usize,
}

impl Default for InnerSolve {
    fn default() -> Self {
        Self {
            tol: 1e-10,
            max_iter: 10_000,
        }
    }
}

/// A surrogate `g(.|y)` built at an anchor `y` (see the module doc for the contract).
pub trait Surrogate<T: Real> {
    /// The anchor `y`.
    fn anchor(&self) -> &DVector<T>;
    /// `g(x|y)`.
    fn value(&self, x: &DVector<T>) -> Result<T>;
    /// `grad_x g(x|y)` written into `grad`.
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()>;
    /// Whether `x` lies in the surrogate's domain (default: everywhere).
    fn admissible(&self, _x: &DVector<T>) -> bool {
        true
    }
    /// `argmin_x g(x|y)`: closed form where one exists (implementations override),
    /// otherwise the generic inner solve [`inner_minimize`].
    fn minimize(&self, inner: &InnerSolve) -> Result<Minimizer<T>> {
        inner_minimize(self, inner)
    }
}

/// Builds a surrogate of one objective at any anchor.
pub trait SurrogateBuilder<T: Real> {
    /// The surrogate type produced.
    type Surrogate: Surrogate<T>;
    /// The surrogate `g(.|anchor)`.
    fn build(&self, anchor: &DVector<T>) -> Result<Self::Surrogate>;
}

impl<T: Real, S: Surrogate<T> + ?Sized> Surrogate<T> for Box<S> {
    fn anchor(&self) -> &DVector<T> {
        (**self).anchor()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        (**self).value(x)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        (**self).gradient(x, grad)
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        (**self).admissible(x)
    }
    fn minimize(&self, inner: &InnerSolve) -> Result<Minimizer<T>> {
        (**self).minimize(inner)
    }
}

impl<T: Real, O: Objective<T> + ?Sized> Objective<T> for &O {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        (**self).value(x)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        (**self).gradient(x, grad)
    }
}

impl<T: Real, O: Objective<T> + ?Sized> Objective<T> for Box<O> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        (**self).value(x)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        (**self).gradient(x, grad)
    }
}

impl<T: Real, B: SurrogateBuilder<T> + ?Sized> SurrogateBuilder<T> for &B {
    type Surrogate = B::Surrogate;
    fn build(&self, anchor: &DVector<T>) -> Result<Self::Surrogate> {
        (**self).build(anchor)
    }
}

/// Checks that `x` has length `n`.
pub(crate) fn check_len<T: Real>(op: &'static str, x: &DVector<T>, n: usize) -> Result<()> {
    if x.len() != n {
        return Err(crate::error::shape_err(
            op,
            format!("parameter vector has length {}, expected {n}", x.len()),
        ));
    }
    Ok(())
}

/// The generic inner solve of [`InnerSolve`] on any surrogate (monotone gradient
/// descent with Barzilai-Borwein trial steps and Armijo backtracking, from the anchor).
pub fn inner_minimize<T: Real, S: Surrogate<T> + ?Sized>(
    s: &S,
    inner: &InnerSolve,
) -> Result<Minimizer<T>> {
    if !(inner.tol > 0.0 && inner.tol.is_finite()) {
        return Err(MajorizeError::InvalidParameter {
            name: "InnerSolve::tol",
            value: inner.tol,
            reason: "must be positive and finite",
        });
    }
    let mut x = s.anchor().clone();
    let n = x.len();
    let mut g = DVector::zeros(n);
    s.gradient(&x, &mut g)?;
    let mut fx = s.value(&x)?.to_f64();
    let scale = g.norm().to_f64().max(1.0);
    let mut trial = DVector::zeros(n);
    let mut g_new = DVector::zeros(n);
    let mut step = 1.0 / scale;
    let mut residual = g.norm().to_f64() / scale;
    let mut it = 0;
    while it < inner.max_iter && residual > inner.tol {
        it += 1;
        let gg = g.norm_squared().to_f64();
        let mut t = step;
        let mut accepted = false;
        for _ in 0..60 {
            trial.copy_from(&x);
            trial.axpy(T::of(-t), &g, T::one());
            if s.admissible(&trial) {
                let ft = s.value(&trial)?.to_f64();
                if ft.is_finite() && ft <= fx - 1e-4 * t * gg {
                    accepted = true;
                    break;
                }
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
        s.gradient(&trial, &mut g_new)?;
        // Barzilai-Borwein step for the next trial: <s, s> / <s, dg>.
        let mut ss = 0.0;
        let mut sy = 0.0;
        for i in 0..n {
            let si = (trial[i] - x[i]).to_f64();
            let yi = (g_new[i] - g[i]).to_f64();
            ss += si * si;
            sy += si * yi;
        }
        step = if sy > 0.0 { ss / sy } else { 2.0 * t };
        x.copy_from(&trial);
        g.copy_from(&g_new);
        fx = s.value(&x)?.to_f64();
        residual = g.norm().to_f64() / scale;
    }
    Ok(Minimizer {
        point: x,
        kind: MinimizerKind::Inner {
            iterations: it,
            residual,
            converged: residual <= inner.tol,
        },
    })
}
