//! The inner solver of every lifted block: accelerated projected gradient (FISTA, Beck &
//! Teboulle, SIAM J. Imaging Sci. 2009) with backtracking on the descent-lemma test and a
//! monotone restart (O'Donoghue & Candès, Found. Comput. Math. 2015): an iterate that
//! would increase the block objective is rejected and the momentum reset, so accepted
//! iterates never increase the block objective (and hence the lifted objective).
//!
//! Stopping rule (relative): the gradient-mapping norm `L ||x+ - y||` falls below
//! `tol` times its value at the starting point, or `max_iters` iterations are made.

use autodiff::Real;
use nalgebra::DMatrix;

use super::blocks::Lanes;
use crate::SolverError;
use crate::linalg::fit;

/// A smooth convex block objective over a tuple of matrices, optionally constrained to
/// the nonnegative orthant (projection = clamp at 0).
pub(crate) trait SmoothBlock<T: Real> {
    /// The block objective at `x` (accumulated in f64).
    fn value(&mut self, x: &[DMatrix<T>]) -> Result<f64, SolverError>;
    /// The block objective and its gradient (written into `g`, same shapes as `x`).
    fn value_grad(&mut self, x: &[DMatrix<T>], g: &mut [DMatrix<T>]) -> Result<f64, SolverError>;
    /// Whether the feasible set is `x >= 0` (otherwise unconstrained).
    fn nonnegative(&self) -> bool;
    /// A preconditioner for an unconstrained block: writes `p = M^{-1} g` for a fixed
    /// symmetric positive definite metric `M` (the same for the whole solve) and returns
    /// `true`, or returns `false` without touching `p` when the block has none (the
    /// Euclidean metric). Must return `false` for nonnegative blocks.
    fn precondition(
        &mut self,
        _g: &[DMatrix<T>],
        _p: &mut [DMatrix<T>],
    ) -> Result<bool, SolverError> {
        Ok(false)
    }
    /// Image caching for a preconditioned block `f(x) = term(K x) + h(x)` with `K`
    /// affine (issue #14): the solver then asks for the images `K x`, `K y`, `K xn`
    /// through the methods below instead of recomputing them, since `K` of an
    /// extrapolated point or of a trial step is the same combination of images. Returns
    /// `Some(f(x))` after storing `K x` (and `K y = K x`) when supported, else `None`
    /// (then the other `image_*` methods are never called).
    fn image_start(&mut self, _x: &[DMatrix<T>]) -> Result<Option<f64>, SolverError> {
        Ok(None)
    }
    /// `f(y)` and its gradient from the stored image `K y`.
    fn image_value_grad(
        &mut self,
        _y: &[DMatrix<T>],
        _g: &mut [DMatrix<T>],
    ) -> Result<f64, SolverError> {
        unreachable!("image_value_grad without image_start")
    }
    /// Stores the image of the direction `p` (its linear part `K p - K 0`).
    fn image_direction(&mut self, _p: &[DMatrix<T>]) -> Result<(), SolverError> {
        unreachable!("image_direction without image_start")
    }
    /// `f(xn)` for `xn = y - step p`, its image `K y - step K p` stored.
    fn image_trial(&mut self, _xn: &[DMatrix<T>], _step: T) -> Result<f64, SolverError> {
        unreachable!("image_trial without image_start")
    }
    /// The solver moved: `K y <- K xn + beta (K xn - K x)`, `K x <- K xn`.
    fn image_moved(&mut self, _beta: T) {}
    /// The solver restarted: `K y <- K x`.
    fn image_restart(&mut self) {}
}

/// What one inner solve did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InnerStats {
    /// Accelerated iterations made (gradient evaluations).
    pub iterations: usize,
    /// Function evaluations made by the backtracking test (trial points).
    pub trials: usize,
    /// Block objective at the start.
    pub start: f64,
    /// Block objective at the end (never above `start`).
    pub end: f64,
    /// Whether the relative tolerance was met.
    pub converged: bool,
    /// Whether the solve stopped because no step decreased the block objective any
    /// more (stationary to rounding: FISTA's trial after a restart, or every row of
    /// Newton-CG's line search, found no decrease) with the tolerance not met. When
    /// neither this nor `converged` holds, `max_iters` ran out.
    pub stalled: bool,
    /// Final Lipschitz estimate.
    pub lipschitz: f64,
}

/// Scratch of the inner solver (reused across blocks; resized without reallocating once
/// the largest block has been seen).
#[derive(Debug, Clone, Default)]
pub(crate) struct Apg<T: Real> {
    y: Vec<DMatrix<T>>,
    xn: Vec<DMatrix<T>>,
    g: Vec<DMatrix<T>>,
    p: Vec<DMatrix<T>>,
}

fn shape_like<T: Real>(buf: &mut Vec<DMatrix<T>>, x: &[DMatrix<T>]) {
    while buf.len() < x.len() {
        buf.push(DMatrix::zeros(0, 0));
    }
    for (b, xi) in buf.iter_mut().zip(x) {
        fit(b, xi.nrows(), xi.ncols());
    }
}

fn copy<T: Real>(dst: &mut [DMatrix<T>], src: &[DMatrix<T>]) {
    for (d, s) in dst.iter_mut().zip(src) {
        d.copy_from(s);
    }
}

impl<T: Real> Apg<T> {
    /// Minimises `block` starting from `x` (updated in place). `lip` is the Lipschitz
    /// estimate carried from the previous solve of this block: multiplied by `shrink`
    /// (in (0, 1]; 1 = warm start, 0.5 = the former halving) at the start, capped at
    /// `bound` (a known Lipschitz bound of the block's gradient in its metric, if any),
    /// doubled by backtracking, and updated.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn solve<B: SmoothBlock<T>>(
        &mut self,
        block: &mut B,
        x: &mut [DMatrix<T>],
        lip: &mut f64,
        shrink: f64,
        bound: Option<f64>,
        tol: f64,
        max_iters: usize,
    ) -> Result<InnerStats, SolverError> {
        let k = x.len();
        shape_like(&mut self.y, x);
        shape_like(&mut self.xn, x);
        shape_like(&mut self.g, x);
        shape_like(&mut self.p, x);
        let (y, xn, g, p) = (
            &mut self.y[..k],
            &mut self.xn[..k],
            &mut self.g[..k],
            &mut self.p[..k],
        );
        let proj = block.nonnegative();
        if proj {
            for m in x.iter_mut() {
                m.iter_mut().for_each(|v| *v = v.max(T::zero()));
            }
        }
        let imaged = if proj { None } else { block.image_start(x)? };
        let mut fx = match imaged {
            Some(f) => f,
            None => block.value(x)?,
        };
        let imaged = imaged.is_some();
        if !fx.is_finite() {
            return Err(SolverError::NonFinite(
                "lifted block objective at start".into(),
            ));
        }
        let start = fx;
        copy(y, x);
        let mut t = 1.0f64;
        let mut l = (*lip * shrink).max(1e-12);
        if let Some(b) = bound.filter(|b| b.is_finite() && *b > 0.0) {
            l = l.min(b);
        }
        let (mut iterations, mut trials) = (0usize, 0usize);
        let mut gm0: Option<f64> = None;
        let (mut converged, mut stalled) = (false, false);
        let mut restarted_last = false;
        // Rounding slack of the descent test, relative to the objective's size.
        let slack_rel = 16.0 * T::EPS.to_f64();
        while iterations < max_iters {
            let fy = if imaged {
                block.image_value_grad(y, g)?
            } else {
                block.value_grad(y, g)?
            };
            if !proj && block.precondition(g, p)? {
                if imaged {
                    block.image_direction(p)?;
                }
                // Preconditioned step xn = y - M^{-1} g / L. Descent test in the metric:
                // f(xn) <= f(y) + <g, d> + (L/2) d^T M d with d = -M^{-1} g / L, i.e.
                // f(xn) <= f(y) - <g, M^{-1} g> / (2 L). Stopping measure: the
                // Euclidean gradient norm ||g(y)||, which is what the Euclidean step's
                // gradient mapping L ||xn - y|| equals for an unconstrained block.
                let (mut gp, mut gg) = (0.0f64, 0.0f64);
                for (gm, pm) in g.iter().zip(p.iter()) {
                    for (&a, &b) in gm.iter().zip(pm.iter()) {
                        gp += a.to_f64() * b.to_f64();
                        gg += a.to_f64() * a.to_f64();
                    }
                }
                let fn_ = loop {
                    let step = T::of(1.0 / l);
                    for ((xm, ym), pm) in xn.iter_mut().zip(y.iter()).zip(p.iter()) {
                        for ((a, &b), &c) in xm.iter_mut().zip(ym.iter()).zip(pm.iter()) {
                            *a = b - step * c;
                        }
                    }
                    let f_new = if imaged {
                        block.image_trial(xn, step)?
                    } else {
                        block.value(xn)?
                    };
                    trials += 1;
                    let bound = fy - 0.5 * gp / l;
                    if f_new.is_finite() && f_new <= bound + slack_rel * (fy.abs() + 1.0) {
                        break f_new;
                    }
                    l = grow(l)?;
                };
                iterations += 1;
                let gm = gg.sqrt();
                let gm0v = *gm0.get_or_insert(gm);
                match accept(x, y, xn, fx, fn_, &mut t, &mut restarted_last) {
                    Accept::Stationary => {
                        converged = gm <= tol * gm0v || gm0v == 0.0;
                        stalled = !converged;
                        break;
                    }
                    Accept::Restarted => {
                        if imaged {
                            block.image_restart();
                        }
                        continue;
                    }
                    Accept::Moved(beta) => {
                        if imaged {
                            block.image_moved(beta);
                        }
                        fx = fn_
                    }
                }
                if gm <= tol * gm0v || gm0v == 0.0 {
                    converged = true;
                    break;
                }
                continue;
            }
            let (fn_, gm) = loop {
                // xn = P(y - g / L), and in the same pass the terms of the
                // descent-lemma test f(xn) <= f(y) + <g, d> + (L/2)||d||^2, d = xn - y.
                let step = T::of(1.0 / l);
                let (mut gd, mut dd) = (Lanes::default(), Lanes::default());
                for ((xm, ym), gm) in xn.iter_mut().zip(y.iter()).zip(g.iter()) {
                    let (xs, ys, gs) = (xm.as_mut_slice(), ym.as_slice(), gm.as_slice());
                    let n = xs.len().min(ys.len()).min(gs.len());
                    for e in 0..n {
                        let (b, c) = (ys[e], gs[e]);
                        let v = b - step * c;
                        let a = if proj { v.max(T::zero()) } else { v };
                        xs[e] = a;
                        let d = (a - b).to_f64();
                        gd.add(e, c.to_f64() * d);
                        dd.add(e, d * d);
                    }
                }
                let (gd, dd) = (gd.total(), dd.total());
                let f_new = block.value(xn)?;
                trials += 1;
                let bound = fy + gd + 0.5 * l * dd;
                if f_new.is_finite() && f_new <= bound + slack_rel * (fy.abs() + 1.0) {
                    break (f_new, l * dd.sqrt());
                }
                l = grow(l)?;
            };
            iterations += 1;
            let gm0v = *gm0.get_or_insert(gm);
            match accept(x, y, xn, fx, fn_, &mut t, &mut restarted_last) {
                Accept::Stationary => {
                    converged = gm <= tol * gm0v || gm0v == 0.0;
                    stalled = !converged;
                    break;
                }
                Accept::Restarted => continue,
                Accept::Moved(_) => fx = fn_,
            }
            if gm <= tol * gm0v || gm0v == 0.0 {
                converged = true;
                break;
            }
        }
        *lip = l;
        Ok(InnerStats {
            iterations,
            trials,
            start,
            end: fx,
            converged,
            stalled,
            lipschitz: l,
        })
    }
}

/// Doubles the Lipschitz estimate of a failed descent test; an error once it overflows.
fn grow(l: f64) -> Result<f64, SolverError> {
    let l = l * 2.0;
    if l.is_nan() || l >= 1e300 {
        return Err(SolverError::LineSearch(
            "lifted block: backtracking found no step (Lipschitz estimate overflow)".into(),
        ));
    }
    Ok(l)
}

/// What [`accept`] did with a trial point that passed the descent test.
enum Accept<T> {
    /// Moved to it and extrapolated with this momentum weight `beta`.
    Moved(T),
    /// It would increase the objective: rejected, momentum restarted from `x`.
    Restarted,
    /// It would increase the objective right after a restart: `x` is stationary to
    /// rounding.
    Stationary,
}

/// The monotone FISTA update: accept `xn` if `f(xn) <= f(x)` and extrapolate
/// `y = xn + beta (xn - x)`, `x = xn` (`beta = (t - 1) / t_new`,
/// `t_new = (1 + sqrt(1 + 4 t^2)) / 2`); otherwise restart the momentum (`y = x`, `t = 1`).
fn accept<T: Real>(
    x: &mut [DMatrix<T>],
    y: &mut [DMatrix<T>],
    xn: &[DMatrix<T>],
    fx: f64,
    fn_: f64,
    t: &mut f64,
    restarted_last: &mut bool,
) -> Accept<T> {
    if fn_ > fx {
        if *restarted_last {
            return Accept::Stationary;
        }
        *restarted_last = true;
        copy(y, x);
        *t = 1.0;
        return Accept::Restarted;
    }
    *restarted_last = false;
    let t_new = 0.5 * (1.0 + (1.0 + 4.0 * *t * *t).sqrt());
    let beta = T::of((*t - 1.0) / t_new);
    for ((ym, xm), xnm) in y.iter_mut().zip(x.iter_mut()).zip(xn.iter()) {
        let (ys, xs, ns) = (ym.as_mut_slice(), xm.as_mut_slice(), xnm.as_slice());
        for ((yv, xv), &nv) in ys.iter_mut().zip(xs.iter_mut()).zip(ns) {
            *yv = nv + beta * (nv - *xv);
            *xv = nv;
        }
    }
    *t = t_new;
    Accept::Moved(beta)
}
