//! The convex block problems of the lifted ReLU network (see the module docs of
//! [`crate::lifted`] for the objective): one X-block (hidden activations, `X >= 0`)
//! and one (W, b)-block per layer, with value and gradient computed through
//! `autodiff::kernels::gemm_into` into preallocated scratch.

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;
use nets::{CurvatureBound, Loss, Targets};

use super::inner::SmoothBlock;
use crate::SolverError;
use crate::linalg::{fit, gemm, sq_norm};

fn nets_err(e: nets::NetsError) -> SolverError {
    SolverError::Problem(format!("lifted loss: {e}"))
}

/// `sum_ij B(u_ij, x_ij)` for the ReLU Fenchel / LPOM penalty on `x >= 0` (its smooth
/// extension `x^2/2 - u x + relu(u)^2/2` elsewhere), ALGORITHMS.md 6.1.
pub(crate) fn relu_penalty_sum<T: Real>(u: &DMatrix<T>, x: &DMatrix<T>) -> f64 {
    let mut lanes = Lanes::default();
    let (u, x) = (u.as_slice(), x.as_slice());
    let n = u.len().min(x.len());
    for e in 0..n {
        lanes.add(e, penalty_entry(u[e].to_f64(), x[e].to_f64()));
    }
    lanes.total()
}

/// `B(u, x) = x^2/2 - u x + max(u, 0)^2/2` for one entry, in f64.
#[inline(always)]
pub(crate) fn penalty_entry(u: f64, x: f64) -> f64 {
    let r = u.max(0.0);
    0.5 * x * x - u * x + 0.5 * r * r
}

/// A sum over a matrix's entries in four interleaved partial sums (entry `e` goes to
/// lane `e mod 4`), totalled as `(s0 + s1) + (s2 + s3)`: the adds of one lane no longer
/// wait on the previous entry's, so the loops over `d x N` blocks vectorise. Every sum
/// of the block objectives and their gradients' entries goes through it, so a block's
/// value and its value-and-gradient agree bit for bit.
#[derive(Default, Clone, Copy)]
pub(crate) struct Lanes([f64; 4]);

impl Lanes {
    /// Adds `v` (the term of entry `e`) to its lane.
    #[inline(always)]
    pub(crate) fn add(&mut self, e: usize, v: f64) {
        self.0[e & 3] += v;
    }
    /// The sum of all lanes.
    #[inline(always)]
    pub(crate) fn total(&self) -> f64 {
        (self.0[0] + self.0[1]) + (self.0[2] + self.0[3])
    }
}

/// `v = W a + b 1^T` (v resized to fit, reusing its allocation).
pub(crate) fn affine_into<T: Real>(
    v: &mut DMatrix<T>,
    w: &DMatrix<T>,
    b: &DMatrix<T>,
    a: &DMatrix<T>,
    threads: usize,
) -> Result<(), SolverError> {
    fit(v, w.nrows(), a.ncols());
    gemm(v, 1.0, w, Transpose::No, a, Transpose::No, 0.0, threads)?;
    let rows = v.nrows().max(1);
    let b = &b.as_slice()[..v.nrows().min(b.len())];
    for col in v.as_mut_slice().chunks_exact_mut(rows) {
        for (c, &bi) in col.iter_mut().zip(b) {
            *c += bi;
        }
    }
    Ok(())
}

/// What follows an affine map `v = W a + b 1^T`: the penalty against the next hidden
/// activation, or the true loss at the output.
#[derive(Clone, Copy)]
pub(crate) enum Term<'a, T: Real> {
    /// `lam * sum B(v, x_next)` (`lam` already includes the sample weight).
    Hidden { x_next: &'a DMatrix<T>, lam: f64 },
    /// `loss(v, Y)` (data term only).
    Output {
        loss: &'a Loss,
        targets: &'a Targets<T>,
    },
}

impl<T: Real> Term<'_, T> {
    /// A bound `c` on the term's Hessian in each column of `v` (`H <= c I`), or `None`
    /// when there is none: `lam` for the hidden penalty (`B`'s second derivative in `v`
    /// is `1{v > 0}`), `s` times the loss's stated per-sample bound for the output
    /// (nets::Loss::curvature_bound; Böhning's `(1/2)(I - 11^T/K) <= I/2`), `s` the
    /// sample weight.
    pub(crate) fn curvature(&self, s: f64) -> Option<f64> {
        match *self {
            Term::Hidden { lam, .. } => Some(lam),
            // (The class count only labels Böhning's bound; its scale is 1/2 for any K.)
            Term::Output { loss, .. } => match loss.curvature_bound(1) {
                CurvatureBound::ScaledIdentity(c) => Some(s * c),
                CurvatureBound::Bohning { .. } => Some(0.5 * s),
                CurvatureBound::NotSmooth => None,
            },
        }
    }

    /// The term at `v`; with `gv`, also its gradient in `v`.
    pub(crate) fn eval(
        &self,
        v: &DMatrix<T>,
        gv: Option<&mut DMatrix<T>>,
    ) -> Result<f64, SolverError> {
        match *self {
            Term::Hidden { x_next, lam } => {
                let Some(gv) = gv else {
                    return Ok(lam * relu_penalty_sum(v, x_next));
                };
                // Value and gradient in one pass (the same operations and summation
                // order as `relu_penalty_sum`).
                fit(gv, v.nrows(), v.ncols());
                let lt = T::of(lam);
                let mut lanes = Lanes::default();
                let (gs, vs, xs) = (gv.as_mut_slice(), v.as_slice(), x_next.as_slice());
                let n = gs.len().min(vs.len()).min(xs.len());
                for e in 0..n {
                    let (vi, xi) = (vs[e], xs[e]);
                    gs[e] = lt * (vi.max(T::zero()) - xi);
                    lanes.add(e, penalty_entry(vi.to_f64(), xi.to_f64()));
                }
                Ok(lam * lanes.total())
            }
            Term::Output { loss, targets } => match gv {
                Some(gv) => Ok(loss
                    .value_and_output_grad(v, targets, gv)
                    .map_err(nets_err)?
                    .to_f64()),
                None => Ok(loss.value(v, targets).map_err(nets_err)?.to_f64()),
            },
        }
    }
}

/// The X_l block: `lam_own * sum B(U, X) + term(W_next X + b_next 1^T)` over `X >= 0`,
/// with `U = W_l X_{l-1} + b_l 1^T` fixed.
pub(crate) struct XBlock<'a, T: Real> {
    pub(crate) u: &'a DMatrix<T>,
    pub(crate) lam_own: f64,
    pub(crate) w_next: &'a DMatrix<T>,
    pub(crate) b_next: &'a DMatrix<T>,
    pub(crate) term: Term<'a, T>,
    pub(crate) v: &'a mut DMatrix<T>,
    pub(crate) gv: &'a mut DMatrix<T>,
    pub(crate) threads: usize,
}

impl<T: Real> SmoothBlock<T> for XBlock<'_, T> {
    fn value(&mut self, x: &[DMatrix<T>]) -> Result<f64, SolverError> {
        #[cfg(test)]
        tally::note(&tally::VALUES);
        let own = self.lam_own * relu_penalty_sum(self.u, &x[0]);
        affine_into(self.v, self.w_next, self.b_next, &x[0], self.threads)?;
        Ok(own + self.term.eval(self.v, None)?)
    }

    fn value_grad(&mut self, x: &[DMatrix<T>], g: &mut [DMatrix<T>]) -> Result<f64, SolverError> {
        #[cfg(test)]
        tally::note(&tally::VALUE_GRADS);
        // Own penalty (as `relu_penalty_sum`) and its gradient `lam_own (X - U)` in one
        // pass; then g += W_next^T G_v.
        let lt = T::of(self.lam_own);
        let mut lanes = Lanes::default();
        let (gs, xs, us) = (g[0].as_mut_slice(), x[0].as_slice(), self.u.as_slice());
        let n = gs.len().min(xs.len()).min(us.len());
        for e in 0..n {
            let (xi, ui) = (xs[e], us[e]);
            gs[e] = lt * (xi - ui);
            lanes.add(e, penalty_entry(ui.to_f64(), xi.to_f64()));
        }
        let own = self.lam_own * lanes.total();
        affine_into(self.v, self.w_next, self.b_next, &x[0], self.threads)?;
        let next = self.term.eval(self.v, Some(self.gv))?;
        gemm(
            &mut g[0],
            1.0,
            self.w_next,
            Transpose::Yes,
            self.gv,
            Transpose::No,
            1.0,
            self.threads,
        )?;
        Ok(own + next)
    }

    fn nonnegative(&self) -> bool {
        true
    }
}

/// The (W_l, b_l) block: `term(W A + b 1^T) + (ridge/2) ||W||^2`, unconstrained; the
/// variable is `[W, b]` with `b` a `d_l x 1` matrix.
pub(crate) struct WBlock<'a, T: Real> {
    pub(crate) a: &'a DMatrix<T>,
    pub(crate) term: Term<'a, T>,
    pub(crate) ridge: f64,
    pub(crate) v: &'a mut DMatrix<T>,
    pub(crate) gv: &'a mut DMatrix<T>,
    pub(crate) threads: usize,
    /// The preconditioner: `M^{-1}` of the block's metric (super::metric), or `None`
    /// for the Euclidean metric.
    pub(crate) metric: Option<Metric<'a, T>>,
}

/// The inverse metric of a weights block, scratch for `[gW, gb]` and `[gW, gb] M^{-1}`,
/// and the pre-activation images `V(x), V(y), V(xn)` and the direction's `P [A; 1]`
/// (`d_out x N` each) that the preconditioned solve keeps instead of recomputing
/// `W A + b 1^T` (SmoothBlock::image_start).
pub(crate) struct Metric<'a, T: Real> {
    pub(crate) minv: &'a DMatrix<T>,
    pub(crate) gcat: &'a mut DMatrix<T>,
    pub(crate) pcat: &'a mut DMatrix<T>,
    pub(crate) img: &'a mut [DMatrix<T>; 4],
}

/// Value and gradient of a weights block at `x = [W, b]` from its pre-activation
/// `v = W A + b 1^T`: `gW = G_v A^T + ridge W`, `gb = G_v 1`.
#[allow(clippy::too_many_arguments)]
fn weights_grad<T: Real>(
    term: &Term<'_, T>,
    a: &DMatrix<T>,
    ridge: f64,
    v: &DMatrix<T>,
    gv: &mut DMatrix<T>,
    x: &[DMatrix<T>],
    g: &mut [DMatrix<T>],
    threads: usize,
) -> Result<f64, SolverError> {
    let f = term.eval(v, Some(gv))? + 0.5 * ridge * sq_norm(&x[0]);
    let (gw, gb) = g.split_at_mut(1);
    weights_backward(gv, a, &x[0], ridge, &mut gw[0], &mut gb[0], threads)?;
    Ok(f)
}

/// The backward product of a weights block `[W, b]` from a gradient `G_v` in its
/// pre-activation `V = W A + b 1^T`: `gW = G_v A^T + s W` (one GEMM) and `gb = G_v 1`
/// (row sums, column by column). Shared by the FISTA blocks (`s` = the ridge) and the
/// Newton-CG Hessian products (`s` = the regularised ridge).
pub(crate) fn weights_backward<T: Real>(
    gv: &DMatrix<T>,
    a: &DMatrix<T>,
    w: &DMatrix<T>,
    s: f64,
    gw: &mut DMatrix<T>,
    gb: &mut DMatrix<T>,
    threads: usize,
) -> Result<(), SolverError> {
    gw.copy_from(w);
    gemm(gw, 1.0, gv, Transpose::No, a, Transpose::Yes, s, threads)?;
    gb.fill(T::zero());
    for col in gv.column_iter() {
        for (gbi, &c) in gb.iter_mut().zip(col.iter()) {
            *gbi += c;
        }
    }
    Ok(())
}

impl<T: Real> SmoothBlock<T> for WBlock<'_, T> {
    fn value(&mut self, x: &[DMatrix<T>]) -> Result<f64, SolverError> {
        #[cfg(test)]
        tally::note(&tally::VALUES);
        affine_into(self.v, &x[0], &x[1], self.a, self.threads)?;
        Ok(self.term.eval(self.v, None)? + 0.5 * self.ridge * sq_norm(&x[0]))
    }

    fn value_grad(&mut self, x: &[DMatrix<T>], g: &mut [DMatrix<T>]) -> Result<f64, SolverError> {
        #[cfg(test)]
        tally::note(&tally::VALUE_GRADS);
        affine_into(self.v, &x[0], &x[1], self.a, self.threads)?;
        weights_grad(
            &self.term,
            self.a,
            self.ridge,
            self.v,
            self.gv,
            x,
            g,
            self.threads,
        )
    }

    fn image_start(&mut self, x: &[DMatrix<T>]) -> Result<Option<f64>, SolverError> {
        let Some(m) = self.metric.as_mut() else {
            return Ok(None);
        };
        #[cfg(test)]
        tally::note(&tally::VALUES);
        let [vx, vy, ..] = &mut *m.img;
        affine_into(vx, &x[0], &x[1], self.a, self.threads)?;
        fit(vy, vx.nrows(), vx.ncols());
        vy.copy_from(vx);
        Ok(Some(
            self.term.eval(vx, None)? + 0.5 * self.ridge * sq_norm(&x[0]),
        ))
    }

    fn image_value_grad(
        &mut self,
        y: &[DMatrix<T>],
        g: &mut [DMatrix<T>],
    ) -> Result<f64, SolverError> {
        #[cfg(test)]
        tally::note(&tally::VALUE_GRADS);
        let m = self.metric.as_mut().expect("image_start made the images");
        weights_grad(
            &self.term,
            self.a,
            self.ridge,
            &m.img[1],
            self.gv,
            y,
            g,
            self.threads,
        )
    }

    fn image_direction(&mut self, p: &[DMatrix<T>]) -> Result<(), SolverError> {
        let m = self.metric.as_mut().expect("image_start made the images");
        let q = &mut m.img[3];
        fit(q, p[0].nrows(), self.a.ncols());
        gemm(
            q,
            1.0,
            &p[0],
            Transpose::No,
            self.a,
            Transpose::No,
            0.0,
            self.threads,
        )?;
        for mut col in q.column_iter_mut() {
            for (c, &bi) in col.iter_mut().zip(p[1].iter()) {
                *c += bi;
            }
        }
        Ok(())
    }

    fn image_trial(&mut self, xn: &[DMatrix<T>], step: T) -> Result<f64, SolverError> {
        #[cfg(test)]
        tally::note(&tally::VALUES);
        let m = self.metric.as_mut().expect("image_start made the images");
        let [_, vy, vn, q] = &mut *m.img;
        fit(vn, vy.nrows(), vy.ncols());
        for ((n, &y), &d) in vn.iter_mut().zip(vy.iter()).zip(q.iter()) {
            *n = y - step * d;
        }
        Ok(self.term.eval(vn, None)? + 0.5 * self.ridge * sq_norm(&xn[0]))
    }

    fn image_moved(&mut self, beta: T) {
        if let Some(m) = self.metric.as_mut() {
            let [vx, vy, vn, _] = &mut *m.img;
            for ((y, x), &n) in vy.iter_mut().zip(vx.iter_mut()).zip(vn.iter()) {
                *y = n + beta * (n - *x);
                *x = n;
            }
        }
    }

    fn image_restart(&mut self) {
        if let Some(m) = self.metric.as_mut() {
            let [vx, vy, ..] = &mut *m.img;
            vy.copy_from(vx);
        }
    }

    fn nonnegative(&self) -> bool {
        false
    }

    /// `[pW, pb] = [gW, gb] M^{-1}` (one `d_out x (d_in+1) x (d_in+1)` GEMM).
    fn precondition(
        &mut self,
        g: &[DMatrix<T>],
        p: &mut [DMatrix<T>],
    ) -> Result<bool, SolverError> {
        let Some(m) = self.metric.as_mut() else {
            return Ok(false);
        };
        let (rows, d) = g[0].shape();
        fit(m.gcat, rows, d + 1);
        m.gcat.columns_mut(0, d).copy_from(&g[0]);
        m.gcat.column_mut(d).copy_from(&g[1].column(0));
        fit(m.pcat, rows, d + 1);
        gemm(
            m.pcat,
            1.0,
            m.gcat,
            Transpose::No,
            m.minv,
            Transpose::No,
            0.0,
            self.threads,
        )?;
        p[0].copy_from(&m.pcat.columns(0, d));
        p[1].column_mut(0).copy_from(&m.pcat.column(d));
        Ok(true)
    }
}

/// Test instrument (data-pass accounting, docs/RESULTS_SCHEMA.md): every evaluation of a
/// block objective touches all N samples through one layer. The tests count the calls
/// here, independently of the solver's counters.
#[cfg(test)]
pub(crate) mod tally {
    use std::cell::Cell;
    thread_local! {
        /// Block objective values (`SmoothBlock::value`).
        pub(crate) static VALUES: Cell<u64> = const { Cell::new(0) };
        /// Block values with gradient (`SmoothBlock::value_grad`).
        pub(crate) static VALUE_GRADS: Cell<u64> = const { Cell::new(0) };
    }
    pub(crate) fn note(c: &'static std::thread::LocalKey<Cell<u64>>) {
        c.with(|v| v.set(v.get() + 1));
    }
    /// (values, value_grads) so far on this thread.
    pub(crate) fn read() -> (u64, u64) {
        (VALUES.with(Cell::get), VALUE_GRADS.with(Cell::get))
    }
}
