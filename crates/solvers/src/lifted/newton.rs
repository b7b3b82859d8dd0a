//! Semismooth Newton-CG for the hidden weights blocks (issue #14, round 4).
//!
//! A hidden block `f(D) = lam sum_ij B(V_ij, X_ij) + (ridge/2) ||W||_F^2` with
//! `D = [W, b]`, `V = D Ã`, `Ã = [A; 1^T]`, `B(v, x) = x^2/2 - v x + relu(v)^2/2`
//! ([`super::blocks::WBlock`] with a hidden term) separates by output row `i`:
//! `f = sum_i f_i(d_i)`, each `f_i` convex and piecewise quadratic. Its gradient is
//! `lam (relu(V) - X) Ã^T + ridge [W, 0]` and its generalized Hessian (Clarke; the
//! derivative of `relu` taken as `1{v > 0}`) acts on a direction `E` as
//! `lam ((E Ã) ∘ 1{V > 0}) Ã^T + ridge [E_W, 0]`: two layer-sized GEMMs for all rows.
//!
//! One Newton step (semismooth Newton, Qi & Sun, Math. Program. 1993; inexact with CG,
//! Dembo, Eisenstat & Steihaug, SIAM J. Numer. Anal. 1982):
//! - solve `(H_i + mu M_i) d_i = -g_i` for every row by preconditioned CG with per-row
//!   scalars (the rows are independent systems sharing the GEMMs), preconditioner
//!   `M^{-1}` of the block's metric `M = lam Ã Ã^T + ridge diag(1, .., 1, 0)`
//!   ([`super::metric`]), regularisation `mu = REG`: with `c = lam` the regularised
//!   product is `lam ((E Ã) ∘ (1{V > 0} + mu)) Ã^T + (1 + mu) ridge [E_W, 0]`, no extra
//!   GEMM, and it keeps rows with few active samples positive definite; each row stops
//!   at the relative residual `eta = min(1/2, sqrt(||g|| / ||g_0||))` (in the `M^{-1}`
//!   norm) or after `CG_CAP` products;
//! - line search per row on `phi_i(t) = f_i(d_i + t dir_i)`, convex piecewise quadratic
//!   in `t`, from the kept images `V + t (dir Ã)` (no GEMM): safeguarded 1-D Newton on
//!   `phi_i'` with a bracket, at most `LS_PASSES` passes; each row takes the evaluated
//!   `t` with the lowest `phi_i` (0 included), so no row's value, and hence the block
//!   objective, ever increases.
//!
//! Stopping rule as the FISTA solve's: the Euclidean gradient norm below `tol` times its
//! value at the start, or `max_evals` gradient-sized evaluations (gradients plus
//! Hessian products) made. Accounting: every gradient and every Hessian product is a
//! forward and a backward product through the layer (an "iteration"), every line-search
//! pass an evaluation of the block objective over all samples (a "trial").

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;

#[cfg(test)]
use super::blocks::tally;
use super::blocks::{affine_into, penalty_entry, weights_backward};
use super::inner::InnerStats;
use super::rowops::{axpy_rows, axpy_rows_mat, row_dots, row_dots_mat, scale_add_rows};
use crate::SolverError;
use crate::linalg::{fit, gemm, sq_norm};

/// Regularisation `mu` of the Newton systems (relative to the metric `M`).
pub(crate) const REG: f64 = 1e-3;
/// Hessian products per Newton step at most.
pub(crate) const CG_CAP: usize = 25;
/// Line-search passes per Newton step at most.
pub(crate) const LS_PASSES: usize = 6;

/// A hidden weights block: `lam sum B(W A + b 1^T, x_next) + (ridge/2) ||W||^2` with the
/// inverse `minv` of its metric `lam Ã Ã^T + ridge diag(1, .., 1, 0)`.
pub(crate) struct HiddenW<'a, T: Real> {
    pub(crate) a: &'a DMatrix<T>,
    pub(crate) x_next: &'a DMatrix<T>,
    pub(crate) lam: f64,
    pub(crate) ridge: f64,
    pub(crate) minv: &'a DMatrix<T>,
    pub(crate) threads: usize,
}

/// Scratch of the Newton solve (resized without reallocating once the largest block has
/// been seen).
#[derive(Debug, Clone, Default)]
pub(crate) struct Newton<T: Real> {
    /// Images `d_out x N`: current `V`, the direction's `dir Ã`, a CG direction's
    /// `P Ã`, and the masked product / gradient in `V`.
    v: DMatrix<T>,
    qd: DMatrix<T>,
    qp: DMatrix<T>,
    wq: DMatrix<T>,
    /// `[W, b]`-shaped: gradient, residual, preconditioned residual, CG direction, its
    /// Hessian product, the Newton direction.
    g: [DMatrix<T>; 2],
    r: [DMatrix<T>; 2],
    z: [DMatrix<T>; 2],
    p: [DMatrix<T>; 2],
    hp: [DMatrix<T>; 2],
    d: [DMatrix<T>; 2],
    gcat: DMatrix<T>,
    pcat: DMatrix<T>,
    /// Per-row f64 scalars.
    rows: Rows,
}

#[derive(Debug, Clone, Default)]
struct Rows {
    rz: Vec<f64>,
    rz0: Vec<f64>,
    tmp: Vec<f64>,
    active: Vec<bool>,
    phi0: Vec<f64>,
    dphi0: Vec<f64>,
    t: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    best_t: Vec<f64>,
    best_phi: Vec<f64>,
    phi: Vec<f64>,
    dphi: Vec<f64>,
    ddphi: Vec<f64>,
    ww: Vec<f64>,
    wd: Vec<f64>,
    dd: Vec<f64>,
    open: Vec<bool>,
}

impl Rows {
    fn resize(&mut self, n: usize) {
        for v in [
            &mut self.rz,
            &mut self.rz0,
            &mut self.tmp,
            &mut self.phi0,
            &mut self.dphi0,
            &mut self.t,
            &mut self.lo,
            &mut self.hi,
            &mut self.best_t,
            &mut self.best_phi,
            &mut self.phi,
            &mut self.dphi,
            &mut self.ddphi,
            &mut self.ww,
            &mut self.wd,
            &mut self.dd,
        ] {
            v.resize(n, 0.0);
        }
        self.active.resize(n, false);
        self.open.resize(n, false);
    }
}

fn shape_pair<T: Real>(m: &mut [DMatrix<T>; 2], rows: usize, cols: usize) {
    fit(&mut m[0], rows, cols);
    fit(&mut m[1], rows, 1);
}

/// `dst = src M^{-1}` for a pair `[W, b]` (one `d_out x (d_in+1)^2` GEMM through the
/// concatenation `[W, b]`).
pub(crate) fn apply_minv<T: Real>(
    minv: &DMatrix<T>,
    src: &[DMatrix<T>],
    dst: &mut [DMatrix<T>],
    gcat: &mut DMatrix<T>,
    pcat: &mut DMatrix<T>,
    threads: usize,
) -> Result<(), SolverError> {
    let (rows, d) = src[0].shape();
    fit(gcat, rows, d + 1);
    gcat.columns_mut(0, d).copy_from(&src[0]);
    gcat.column_mut(d).copy_from(&src[1].column(0));
    fit(pcat, rows, d + 1);
    gemm(
        pcat,
        1.0,
        gcat,
        Transpose::No,
        minv,
        Transpose::No,
        0.0,
        threads,
    )?;
    dst[0].copy_from(&pcat.columns(0, d));
    dst[1].column_mut(0).copy_from(&pcat.column(d));
    Ok(())
}

impl<T: Real> HiddenW<'_, T> {
    /// Per-row penalty sums `out[i] = sum_j B(V_ij, X_ij)` (without `lam`) and, with
    /// `gv`, the gradient in `V`: `lam (relu(V) - X)`.
    fn rows_value(&self, v: &DMatrix<T>, gv: Option<&mut DMatrix<T>>, out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        let lt = T::of(self.lam);
        match gv {
            Some(gv) => {
                fit(gv, v.nrows(), v.ncols());
                for ((cg, cv), cx) in gv
                    .column_iter_mut()
                    .zip(v.column_iter())
                    .zip(self.x_next.column_iter())
                {
                    for (((o, g), &vi), &xi) in out.iter_mut().zip(cg).zip(cv.iter()).zip(cx.iter())
                    {
                        *g = lt * (vi.max(T::zero()) - xi);
                        *o += penalty_entry(vi.to_f64(), xi.to_f64());
                    }
                }
            }
            None => {
                for (cv, cx) in v.column_iter().zip(self.x_next.column_iter()) {
                    for ((o, &vi), &xi) in out.iter_mut().zip(cv.iter()).zip(cx.iter()) {
                        *o += penalty_entry(vi.to_f64(), xi.to_f64());
                    }
                }
            }
        }
    }

    /// The block objective at `[W, b]` (a fresh product; for tests).
    #[cfg(test)]
    pub(crate) fn value(&self, x: &[DMatrix<T>], v: &mut DMatrix<T>) -> Result<f64, SolverError> {
        affine_into(v, &x[0], &x[1], self.a, self.threads)?;
        let mut rows = vec![0.0; v.nrows()];
        self.rows_value(v, None, &mut rows);
        Ok(self.lam * rows.iter().sum::<f64>() + 0.5 * self.ridge * sq_norm(&x[0]))
    }

    /// `hp = (H + mu M) p` at the image `v` (mask `1{v > 0}`), with `qp = P Ã` and `wq`
    /// the weighted image; `mu = 0` gives the generalized Hessian's product.
    #[allow(clippy::too_many_arguments)]
    fn hess_prod(
        &self,
        v: &DMatrix<T>,
        p: &[DMatrix<T>; 2],
        mu: f64,
        qp: &mut DMatrix<T>,
        wq: &mut DMatrix<T>,
        hp: &mut [DMatrix<T>; 2],
    ) -> Result<(), SolverError> {
        affine_into(qp, &p[0], &p[1], self.a, self.threads)?;
        fit(wq, qp.nrows(), qp.ncols());
        let (on, off) = (T::of(self.lam * (1.0 + mu)), T::of(self.lam * mu));
        for ((w, &q), &vi) in wq.iter_mut().zip(qp.iter()).zip(v.iter()) {
            *w = if vi > T::zero() { on * q } else { off * q };
        }
        self.backward(wq, &p[0], (1.0 + mu) * self.ridge, hp)
    }

    /// `out = [G Ã^T + s W', G 1]`, i.e. `out_W = G A^T + s w`, `out_b = G 1`
    /// ([`weights_backward`], the FISTA blocks' backward product).
    fn backward(
        &self,
        gmat: &DMatrix<T>,
        w: &DMatrix<T>,
        s: f64,
        out: &mut [DMatrix<T>; 2],
    ) -> Result<(), SolverError> {
        let [ow, ob] = out;
        weights_backward(gmat, self.a, w, s, ow, ob, self.threads)
    }
}

impl<T: Real> Newton<T> {
    /// Minimises the hidden block `blk` from `x = [W, b]` (updated in place) to the
    /// relative gradient tolerance `tol`, with at most `max_evals` gradients plus
    /// Hessian products (see the module docs).
    pub(crate) fn solve(
        &mut self,
        blk: &HiddenW<'_, T>,
        x: &mut [DMatrix<T>],
        tol: f64,
        max_evals: usize,
    ) -> Result<InnerStats, SolverError> {
        // A weights block is the pair `[W, b]` (built by the solver, never user data).
        let x: &mut [DMatrix<T>; 2] = x
            .get_mut(..2)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| SolverError::Problem("lifted weights block: expected [W, b]".into()))?;
        let (dout, din) = x[0].shape();
        for m in [
            &mut self.g,
            &mut self.r,
            &mut self.z,
            &mut self.p,
            &mut self.hp,
            &mut self.d,
        ] {
            shape_pair(m, dout, din);
        }
        self.rows.resize(dout);
        let n = blk.a.ncols();
        fit(&mut self.qd, dout, n);
        // The start: one forward product (counted as the block's start value).
        #[cfg(test)]
        tally::note(&tally::VALUES);
        affine_into(&mut self.v, &x[0], &x[1], blk.a, blk.threads)?;
        let Newton {
            v,
            qd,
            qp,
            wq,
            g,
            r,
            z,
            p,
            hp,
            d,
            gcat,
            pcat,
            rows,
        } = self;
        let (mut iterations, mut trials) = (0usize, 0usize);
        let mut gm0: Option<f64> = None;
        let (mut converged, mut stalled) = (false, false);
        let mut start = f64::NAN;
        let mut fx;
        loop {
            // Value (per row) and gradient at x from the image v.
            blk.rows_value(v, Some(wq), &mut rows.phi0);
            let ridge_half = 0.5 * blk.ridge;
            row_dots_mat(&x[0], &x[0], &mut rows.ww);
            for (ph, &w2) in rows.phi0.iter_mut().zip(rows.ww.iter()) {
                *ph = blk.lam * *ph + ridge_half * w2;
            }
            fx = rows.phi0.iter().sum::<f64>();
            if !fx.is_finite() {
                return Err(SolverError::NonFinite(
                    "lifted weights block (Newton) objective".into(),
                ));
            }
            if start.is_nan() {
                start = fx;
            }
            blk.backward(wq, &x[0], blk.ridge, g)?;
            #[cfg(test)]
            tally::note(&tally::VALUE_GRADS);
            iterations += 1;
            let gm = (sq_norm(&g[0]) + sq_norm(&g[1])).sqrt();
            let gm0v = *gm0.get_or_insert(gm);
            if gm0v == 0.0 || (iterations > 1 && gm <= tol * gm0v) {
                converged = true;
                break;
            }
            if iterations >= max_evals {
                break;
            }
            // Preconditioned CG, per row, on (H + mu M) d = -g from d = 0.
            let eta = (gm / gm0v).sqrt().min(0.5);
            for k in 0..2 {
                r[k].copy_from(&g[k]);
                r[k].neg_mut();
                d[k].fill(T::zero());
            }
            qd.fill(T::zero());
            apply_minv(blk.minv, &r[..], &mut z[..], gcat, pcat, blk.threads)?;
            for k in 0..2 {
                p[k].copy_from(&z[k]);
            }
            row_dots(r, z, &mut rows.rz);
            for ((a, rz0), &rz) in rows
                .active
                .iter_mut()
                .zip(rows.rz0.iter_mut())
                .zip(&rows.rz)
            {
                *rz0 = rz;
                *a = rz > 0.0 && rz.is_finite();
            }
            let mut cg = 0usize;
            while cg < CG_CAP && iterations < max_evals && rows.active.iter().any(|a| *a) {
                blk.hess_prod(v, p, REG, qp, wq, hp)?;
                #[cfg(test)]
                tally::note(&tally::VALUE_GRADS);
                iterations += 1;
                cg += 1;
                row_dots(p, hp, &mut rows.tmp);
                // alpha per row (0 for finished rows or non-positive curvature).
                for ((t, a), &rz) in rows
                    .tmp
                    .iter_mut()
                    .zip(rows.active.iter_mut())
                    .zip(&rows.rz)
                {
                    let php = *t;
                    *t = if *a && php > 0.0 && php.is_finite() {
                        rz / php
                    } else {
                        *a = false;
                        0.0
                    };
                }
                axpy_rows(d, &rows.tmp, p);
                axpy_rows_mat(qd, &rows.tmp, qp);
                rows.tmp.iter_mut().for_each(|a| *a = -*a);
                axpy_rows(r, &rows.tmp, hp);
                apply_minv(blk.minv, &r[..], &mut z[..], gcat, pcat, blk.threads)?;
                // rz_new per row into tmp; beta; p = z + beta p.
                row_dots(r, z, &mut rows.tmp);
                for i in 0..dout {
                    if !rows.active[i] {
                        rows.tmp[i] = 0.0;
                        continue;
                    }
                    let rzn = rows.tmp[i];
                    if rzn <= eta * eta * rows.rz0[i] || !rzn.is_finite() {
                        rows.active[i] = false;
                        rows.tmp[i] = 0.0;
                    } else {
                        rows.tmp[i] = rzn / rows.rz[i];
                        rows.rz[i] = rzn;
                    }
                }
                scale_add_rows(p, &rows.tmp, z);
            }
            // Line search per row on phi_i(t) = f_i(x_i + t d_i).
            trials += line_search(blk, v, qd, &x[0], d, rows, g)?;
            let mut moved = false;
            for &t in &rows.best_t {
                moved |= t > 0.0;
            }
            if !moved {
                // No row can decrease: stationary to rounding, the tolerance not met
                // (checked above at this point's gradient).
                stalled = true;
                break;
            }
            // x += t d, v += t qd (row-wise t).
            axpy_rows(x, &rows.best_t, &*d);
            axpy_rows_mat(v, &rows.best_t, qd);
            if iterations >= max_evals {
                // Budget spent: the value at the new point is the line search's (no
                // gradient product).
                fx = rows.best_phi.iter().sum::<f64>();
                break;
            }
        }
        Ok(InnerStats {
            iterations,
            trials,
            start,
            end: fx,
            converged,
            stalled,
            lipschitz: 1.0,
        })
    }
}

/// The per-row line search of the module docs; leaves the chosen steps in
/// `rows.best_t` (0 for rows that cannot decrease). Returns the passes made.
fn line_search<T: Real>(
    blk: &HiddenW<'_, T>,
    v: &DMatrix<T>,
    qd: &DMatrix<T>,
    w: &DMatrix<T>,
    d: &[DMatrix<T>; 2],
    rows: &mut Rows,
    g: &[DMatrix<T>; 2],
) -> Result<usize, SolverError> {
    let dout = w.nrows();
    row_dots(g, d, &mut rows.dphi0);
    // ridge terms: ||w_i + t dw_i||^2 = ww + 2 t wd + t^2 dd.
    row_dots_mat(w, w, &mut rows.ww);
    row_dots_mat(w, &d[0], &mut rows.wd);
    row_dots_mat(&d[0], &d[0], &mut rows.dd);
    for i in 0..dout {
        rows.best_t[i] = 0.0;
        rows.best_phi[i] = rows.phi0[i];
        let open = rows.dphi0[i] < 0.0 && rows.dphi0[i].is_finite();
        rows.open[i] = open;
        rows.t[i] = if open { 1.0 } else { 0.0 };
        rows.lo[i] = 0.0;
        rows.hi[i] = f64::INFINITY;
    }
    let mut passes = 0usize;
    let lam = blk.lam;
    let ridge = blk.ridge;
    while passes < LS_PASSES && rows.open.iter().any(|o| *o) {
        passes += 1;
        #[cfg(test)]
        tally::note(&tally::VALUES);
        for i in 0..dout {
            rows.phi[i] = 0.0;
            rows.dphi[i] = 0.0;
            rows.ddphi[i] = 0.0;
        }
        for ((cv, cq), cx) in v
            .column_iter()
            .zip(qd.column_iter())
            .zip(blk.x_next.column_iter())
        {
            for i in 0..dout {
                if !rows.open[i] {
                    continue;
                }
                let t = T::of(rows.t[i]);
                // The same expression as the update v += t qd.
                let u = (cv[i] + t * cq[i]).to_f64();
                let (q, x) = (cq[i].to_f64(), cx[i].to_f64());
                let r = u.max(0.0);
                rows.phi[i] += penalty_entry(u, x);
                rows.dphi[i] += (r - x) * q;
                if u > 0.0 {
                    rows.ddphi[i] += q * q;
                }
            }
        }
        for i in 0..dout {
            if !rows.open[i] {
                continue;
            }
            let t = rows.t[i];
            let phi = lam * rows.phi[i]
                + 0.5 * ridge * (rows.ww[i] + 2.0 * t * rows.wd[i] + t * t * rows.dd[i]);
            let dphi = lam * rows.dphi[i] + ridge * (rows.wd[i] + t * rows.dd[i]);
            let dd = lam * rows.ddphi[i] + ridge * rows.dd[i];
            if phi.is_finite() && phi < rows.best_phi[i] {
                rows.best_phi[i] = phi;
                rows.best_t[i] = t;
            }
            if dphi.abs() <= 0.1 * rows.dphi0[i].abs() && rows.best_t[i] == t {
                rows.open[i] = false;
                continue;
            }
            if dphi < 0.0 {
                rows.lo[i] = t;
            } else {
                rows.hi[i] = t;
            }
            let (lo, hi) = (rows.lo[i], rows.hi[i]);
            let newton = if dd > 0.0 { t - dphi / dd } else { f64::NAN };
            rows.t[i] = if newton > lo && newton < hi {
                newton
            } else if hi.is_infinite() {
                4.0 * t
            } else {
                0.5 * (lo + hi)
            };
        }
    }
    Ok(passes)
}

#[cfg(test)]
#[path = "tests_newton.rs"]
mod tests;
