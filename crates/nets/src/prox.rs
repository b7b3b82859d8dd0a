//! Proximal maps of activations, as used by ADMM, BCD and lifted training methods.
//!
//! The central map is the weighted two-term minimiser (ALGORITHMS.md 2.2, Z_l step of
//! Taylor et al., ICML 2016; and 4.2, `relu_prox` of Zeng et al., ICML 2019):
//!
//! ```text
//! prox_h(a, m; gamma, beta) = argmin_z  gamma (a - h(z))^2 + beta (z - m)^2,   gamma >= 0, beta > 0
//! ```
//!
//! BCD's `relu_prox(a, c, g) = argmin_u (a - relu(u))^2 + g (u - c)^2` is
//! `prox_weighted(a, c, 1, g)`; the penalty form `(a - h(z))^2 + rho (z - z0)^2` is
//! `prox_weighted(a, z0, 1, rho)`.
//!
//! * Piecewise-linear h (identity, ReLU, leaky ReLU): exact closed form. On each linear
//!   piece `h(z) = s z` the objective is a convex quadratic with minimiser
//!   `(gamma s a + beta m) / (gamma s^2 + beta)`; it is clamped to the piece and the
//!   better of the two pieces is kept (for ReLU this is the case analysis of 2.2 / 4.2).
//! * Other h (ELU, sigmoid, tanh, softplus): a 1-D numeric solve. Every minimiser lies in
//!   `[m - r, m + r]`, `r = sqrt(phi(m) / beta)` (since `phi(z) >= beta (z - m)^2`).
//!   For a nondecreasing h they also lie between `m` and `h^{-1}(a)` (moving z from
//!   outside towards that segment lowers both terms), which narrows the interval.
//!   The interval is cut into [`PROX_GRID_CELLS`] cells (plus a cut at the kink z = 0,
//!   using one-sided derivatives there); in every cell where `phi'`
//!   goes from `<= 0` to `>= 0` a safeguarded Newton-bisection iteration on `phi'`
//!   locates the local minimiser to `|z - z*| <= PROX_TOL (1 + |z*|)`, and the local
//!   minimiser with the smallest objective is returned. The result is a local minimiser
//!   to that tolerance, and the global one unless a better basin is narrower than one
//!   cell (at most `2 r / PROX_GRID_CELLS`): `phi` is a bounded wiggle plus a quadratic, and the
//!   tests compare with a 20 000-point brute-force search.

use autodiff::Real;
use nalgebra::DMatrix;

use crate::activation::{Activation, Monotonicity};
use crate::error::{NetsError, Result};
use crate::fenchel::inverse;

/// Relative tolerance on the minimiser of the numeric fallback.
pub const PROX_TOL: f64 = 1e-12;
/// Number of grid cells of the numeric fallback's bracketing pass.
pub const PROX_GRID_CELLS: usize = 64;

fn check_weights(op: &'static str, gamma: f64, beta: f64) -> Result<()> {
    if !(gamma.is_finite() && gamma >= 0.0) {
        return Err(NetsError::InvalidArgument {
            op,
            name: "gamma",
            value: gamma,
            reason: "must be finite and >= 0",
        });
    }
    if !(beta.is_finite() && beta > 0.0) {
        return Err(NetsError::InvalidArgument {
            op,
            name: "beta",
            value: beta,
            reason: "must be finite and > 0",
        });
    }
    Ok(())
}

/// Objective `gamma (a - h(z))^2 + beta (z - m)^2` of [`prox_weighted`].
pub fn prox_objective(h: &Activation, z: f64, a: f64, m: f64, gamma: f64, beta: f64) -> f64 {
    let r = a - h.apply(z);
    gamma * r * r + beta * (z - m) * (z - m)
}

/// `argmin_z gamma (a - h(z))^2 + beta (z - m)^2` (see the module doc for the method and
/// its tolerance). Errors on `gamma < 0`, `beta <= 0` or non-finite input.
pub fn prox_weighted(h: &Activation, a: f64, m: f64, gamma: f64, beta: f64) -> Result<f64> {
    const OP: &str = "prox_weighted";
    check_weights(OP, gamma, beta)?;
    h.validate()?;
    for (name, v) in [("a", a), ("m", m)] {
        if !v.is_finite() {
            return Err(NetsError::InvalidArgument {
                op: OP,
                name,
                value: v,
                reason: "must be finite",
            });
        }
    }
    if gamma == 0.0 {
        return Ok(m);
    }
    let z = match *h {
        Activation::Identity => two_piece(1.0, 1.0, a, m, gamma, beta),
        Activation::Relu => two_piece(1.0, 0.0, a, m, gamma, beta),
        Activation::LeakyRelu { slope } => two_piece(1.0, slope, a, m, gamma, beta),
        Activation::Elu { alpha: 0.0 } => two_piece(1.0, 0.0, a, m, gamma, beta),
        _ => numeric(h, a, m, gamma, beta)?,
    };
    Ok(z)
}

/// `argmin_z (a - h(z))^2 + rho (z - z0)^2`, i.e. [`prox_weighted`] with gamma = 1.
pub fn prox(h: &Activation, a: f64, z0: f64, rho: f64) -> Result<f64> {
    prox_weighted(h, a, z0, 1.0, rho)
}

/// Whether [`prox_weighted`] is exact closed form for `h` (otherwise numeric).
pub fn prox_is_closed_form(h: &Activation) -> bool {
    match *h {
        Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. } => true,
        Activation::Elu { alpha } => alpha == 0.0,
        _ => false,
    }
}

/// [`prox_weighted`] for one activation and fixed weights `gamma`, `beta`, with the
/// checks of the weights and of `h` made once in [`WeightedProx::new`] instead of once
/// per entry, and the closed form chosen once (for loops over every entry of a matrix:
/// the Z/U steps of ADMM, BCD and MAC; issue #14). [`WeightedProx::eval`] returns bit for
/// bit what [`prox_weighted`] returns, errors included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedProx {
    h: Activation,
    gamma: f64,
    beta: f64,
    /// Slopes `(pos, neg)` of a piecewise-linear h (closed form), None for the numeric
    /// fallback.
    pieces: Option<(f64, f64)>,
}

impl WeightedProx {
    /// Checks `gamma >= 0`, `beta > 0` (finite) and the activation's parameters, as
    /// [`prox_weighted`] does.
    pub fn new(h: &Activation, gamma: f64, beta: f64) -> Result<Self> {
        check_weights("prox_weighted", gamma, beta)?;
        h.validate()?;
        let pieces = match *h {
            Activation::Identity => Some((1.0, 1.0)),
            Activation::Relu => Some((1.0, 0.0)),
            Activation::LeakyRelu { slope } => Some((1.0, slope)),
            Activation::Elu { alpha: 0.0 } => Some((1.0, 0.0)),
            _ => None,
        };
        Ok(WeightedProx {
            h: *h,
            gamma,
            beta,
            pieces,
        })
    }

    /// The closed form of this map when there is one (piecewise-linear h and
    /// `gamma > 0`), as a branch-free kernel for loops the compiler can vectorize.
    pub fn closed_form(&self) -> Option<ClosedProx> {
        match self.pieces {
            Some((pos, neg)) if self.gamma != 0.0 => Some(ClosedProx {
                pos,
                neg,
                gamma: self.gamma,
                beta: self.beta,
            }),
            _ => None,
        }
    }

    /// `argmin_z gamma (a - h(z))^2 + beta (z - m)^2`, as [`prox_weighted`].
    #[inline]
    pub fn eval(&self, a: f64, m: f64) -> Result<f64> {
        if !(a.is_finite() && m.is_finite()) {
            // The error of prox_weighted, naming the offending argument.
            return prox_weighted(&self.h, a, m, self.gamma, self.beta);
        }
        if self.gamma == 0.0 {
            return Ok(m);
        }
        match self.pieces {
            Some((pos, neg)) => Ok(two_piece(pos, neg, a, m, self.gamma, self.beta)),
            None => numeric(&self.h, a, m, self.gamma, self.beta),
        }
    }
}

/// The closed-form case of [`WeightedProx`] (from [`WeightedProx::closed_form`]):
/// h has slope `pos` on `z >= 0` and `neg` on `z <= 0`, `gamma > 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClosedProx {
    pos: f64,
    neg: f64,
    gamma: f64,
    beta: f64,
}

impl ClosedProx {
    /// [`prox_weighted`]`(h, a, m, gamma, beta)` bit for bit when `a` and `m` are finite
    /// (the caller checks; non-finite inputs give a non-finite or meaningless result
    /// instead of an error). No branches on the data besides selects.
    #[inline(always)]
    pub fn eval(&self, a: f64, m: f64) -> f64 {
        two_piece(self.pos, self.neg, a, m, self.gamma, self.beta)
    }
}

/// Elementwise [`prox_weighted`]: `out_ij = prox(a_ij, m_ij; gamma, beta)`. `a` and `m`
/// must have the same shape; `out` is resized if needed.
pub fn prox_weighted_matrix<T: Real>(
    h: &Activation,
    a: &DMatrix<T>,
    m: &DMatrix<T>,
    gamma: f64,
    beta: f64,
    out: &mut DMatrix<T>,
) -> Result<()> {
    if a.shape() != m.shape() {
        return Err(NetsError::Shape {
            op: "prox_weighted_matrix",
            detail: format!("a is {:?} but m is {:?}", a.shape(), m.shape()),
        });
    }
    if out.shape() != a.shape() {
        *out = DMatrix::zeros(a.nrows(), a.ncols());
    }
    if a.is_empty() {
        return Ok(());
    }
    let prox = WeightedProx::new(h, gamma, beta)?;
    if let Some(cf) = prox.closed_form() {
        let (a, m) = (a.as_slice(), m.as_slice());
        if a.iter().chain(m).all(|v| v.finite()) {
            for ((o, &ai), &mi) in out.as_mut_slice().iter_mut().zip(a).zip(m) {
                *o = T::of(cf.eval(ai.to_f64(), mi.to_f64()));
            }
            return Ok(());
        }
    }
    for ((o, &ai), &mi) in out
        .as_mut_slice()
        .iter_mut()
        .zip(a.as_slice())
        .zip(m.as_slice())
    {
        *o = T::of(prox.eval(ai.to_f64(), mi.to_f64())?);
    }
    Ok(())
}

/// Exact minimiser when h(z) = `pos` z on z >= 0 and `neg` z on z <= 0.
#[inline(always)]
fn two_piece(pos: f64, neg: f64, a: f64, m: f64, gamma: f64, beta: f64) -> f64 {
    let piece = |s: f64| (gamma * s * a + beta * m) / (gamma * s * s + beta);
    let z_pos = piece(pos).max(0.0);
    let z_neg = piece(neg).min(0.0);
    let val = |s: f64, z: f64| {
        let r = a - s * z;
        gamma * r * r + beta * (z - m) * (z - m)
    };
    if val(pos, z_pos) <= val(neg, z_neg) {
        z_pos
    } else {
        z_neg
    }
}

/// phi'(z) / 2 and phi''(z) / 2.
fn derivs(h: &Activation, z: f64, a: f64, m: f64, gamma: f64, beta: f64) -> (f64, f64) {
    let hz = h.apply(z);
    let d1 = h.derivative(z);
    let d2 = h.second_derivative(z);
    let g = gamma * (hz - a) * d1 + beta * (z - m);
    let c = gamma * (d1 * d1 + (hz - a) * d2) + beta;
    (g, c)
}

/// phi'(z) / 2 only (cheaper than [`derivs`]).
fn dphi(h: &Activation, z: f64, a: f64, m: f64, gamma: f64, beta: f64) -> f64 {
    gamma * (h.apply(z) - a) * h.derivative(z) + beta * (z - m)
}

/// An interval that contains every minimiser: `[m - r, m + r]`, intersected for a
/// nondecreasing h with the segment between `m` and `h^{-1}(a)` (outside it, moving z
/// towards the segment lowers both terms); `h^{-1}(a) = -+infinity` when `a` lies
/// beyond the range of h.
fn bracket(h: &Activation, a: f64, m: f64, r: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (m - r, m + r);
    let s = h.structure();
    if s.monotonicity != Monotonicity::NotMonotone {
        let za = if a >= s.range.1 {
            f64::INFINITY
        } else if a <= s.range.0 {
            f64::NEG_INFINITY
        } else {
            inverse(h, a).unwrap_or(m)
        };
        lo = lo.max(m.min(za));
        hi = hi.min(m.max(za));
    }
    (lo, hi)
}

fn numeric(h: &Activation, a: f64, m: f64, gamma: f64, beta: f64) -> Result<f64> {
    let phi = |z: f64| prox_objective(h, z, a, m, gamma, beta);
    let r = (phi(m) / beta).sqrt();
    if r == 0.0 {
        return Ok(m);
    }
    let (lo, hi) = bracket(h, a, m, r);
    // lo == hi only when a = h(m) (then m is the minimiser); NaN cannot occur here.
    if hi <= lo {
        return Ok(m);
    }
    let width = (hi - lo) / PROX_GRID_CELLS as f64;
    let mut best_z = m;
    let mut best_v = phi(m);
    for z in [lo, hi] {
        let v = phi(z);
        if v < best_v {
            best_v = v;
            best_z = z;
        }
    }
    // Cells end at the uniform grid points and at the possible kink z = 0 (ELU), where
    // the one-sided derivatives are used so that no kink hides a sign change.
    let mut prev_z = lo;
    let mut prev_g = dphi(h, lo, a, m, gamma, beta);
    let mut i = 1;
    let mut kink_done = !(lo < 0.0 && hi > 0.0 && matches!(h, Activation::Elu { .. }));
    while i <= PROX_GRID_CELLS {
        let grid = if i == PROX_GRID_CELLS {
            hi
        } else {
            lo + width * i as f64
        };
        let (z, g_end, g_next) = if !kink_done && grid > 0.0 {
            kink_done = true;
            let left = dphi(h, 0.0, a, m, gamma, beta);
            let right = dphi(h, f64::MIN_POSITIVE, a, m, gamma, beta);
            // The kink itself is a candidate (a minimum when left < 0 < right).
            let v0 = phi(0.0);
            if v0 < best_v {
                best_v = v0;
                best_z = 0.0;
            }
            (0.0, left, right)
        } else {
            i += 1;
            let g = dphi(h, grid, a, m, gamma, beta);
            (grid, g, g)
        };
        if prev_g <= 0.0 && g_end >= 0.0 {
            let zs = refine(h, prev_z, z, a, m, gamma, beta)?;
            let v = phi(zs);
            if v < best_v {
                best_v = v;
                best_z = zs;
            }
        }
        prev_z = z;
        prev_g = g_next;
    }
    Ok(best_z)
}

/// Safeguarded Newton-bisection for phi'(z) = 0 on [lo, hi] with phi'(lo) <= 0 <= phi'(hi).
fn refine(h: &Activation, lo: f64, hi: f64, a: f64, m: f64, gamma: f64, beta: f64) -> Result<f64> {
    let (mut lo, mut hi) = (lo, hi);
    let mut z = 0.5 * (lo + hi);
    for _ in 0..200 {
        let (g, c) = derivs(h, z, a, m, gamma, beta);
        if g == 0.0 {
            return Ok(z);
        }
        if g < 0.0 {
            lo = z;
        } else {
            hi = z;
        }
        let newton = z - g / c;
        let next = if c > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let step = (next - z).abs();
        z = next;
        if step <= PROX_TOL * (1.0 + z.abs()) || hi - lo <= PROX_TOL * (1.0 + z.abs()) {
            return Ok(z);
        }
    }
    Err(NetsError::NoConvergence {
        op: "prox_weighted (numeric)",
        iterations: 200,
        residual: hi - lo,
    })
}

impl Activation {
    /// `argmin_z gamma (a - h(z))^2 + beta (z - m)^2`; see [`prox_weighted`].
    pub fn prox_weighted(&self, a: f64, m: f64, gamma: f64, beta: f64) -> Result<f64> {
        prox_weighted(self, a, m, gamma, beta)
    }

    /// `argmin_z (a - h(z))^2 + rho (z - z0)^2`; see [`prox`].
    pub fn prox(&self, a: f64, z0: f64, rho: f64) -> Result<f64> {
        prox(self, a, z0, rho)
    }
}
