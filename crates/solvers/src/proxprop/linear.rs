//! The proximal step of one linear layer (Frerix et al., ICLR 2018, section 4; the
//! reference code's `optimization_step`), in "delta" form.
//!
//! Layer `z = W a + b` on a batch `A` (`in x B`, samples as columns), incoming gradient
//! `G = d loss / d Z` (`out x B`). With `Ab = [A; 1^T]` and `Theta = [W b]`, ProxProp takes
//!
//! ```text
//! Theta_new = argmin_Theta (1/2) ||Theta Ab - (Z - G)||^2 + (1/(2 tau)) ||Theta - Theta_old||^2
//! ```
//!
//! whose optimality condition gives `D := Theta_old - Theta_new` as the solution of
//!
//! ```text
//! D M = G Ab^T,    M = Ab Ab^T + I / tau     (SPD, (in+1) x (in+1)),
//! ```
//!
//! i.e. the plain gradient `G Ab^T = [G A^T, G 1]` preconditioned by `M^{-1}`
//! ((derived) from the prox problem; `D -> tau * G Ab^T` as `tau -> 0`). `D` is what the
//! reference code writes into the `.grad` fields.
//!
//! **L2 penalty** ([`LinearProx::solve_penalized`]): with the problem's weight penalty
//! `(l2/2)||W||^2` the prox problem takes it in, `+ (l2/2)||W||^2` (bias unpenalised):
//! `D M_l2 = G Ab^T + l2 [W_old 0]` with `M_l2 = M + l2 P`, `P = diag(1, .., 1, 0)`. The
//! right-hand side is the gradient of the penalised objective, so `D = 0` exactly at its
//! stationary points. (Adding `l2 W` to the preconditioned `D` instead, as before round
//! 2, has fixed points `G Ab^T M^{-1} = -l2 [W 0]`, which are not stationary points of
//! the penalised objective: ProxProp then minimised another objective.)
//!
//! Solvers: exact (Cholesky of M, built from `A A^T`, `A 1` and B), or block conjugate
//! gradient on `M D^T = Ab G^T` started at `D = 0` (the same iterates as the reference's
//! warm start at `Theta_old`), one CG system per output unit, stopped after `iters`
//! steps or when the largest squared residual is below `tol^2` times the mean initial
//! squared residual (reference: `conjugate_gradient_block`, tol = 1e-2). Difference from
//! the reference: it adds `1e-6` to the CG denominators; here only exact zeros are
//! guarded (the shift would change the step once gradient norms are below ~1e-3).

use autodiff::{Real, Transpose};
use nalgebra::{Cholesky, DMatrix};

use crate::SolverError;
use crate::linalg::fit;
use crate::linalg::gemm;

/// How the proximal linear system is solved.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ProxSolve {
    /// Cholesky factorisation of the `(in+1)`-dimensional SPD matrix M.
    Exact,
    /// At most `iters` block conjugate-gradient steps from `D = 0`, early stop at `tol`.
    Cg {
        /// Maximal CG steps (>= 1).
        iters: usize,
        /// Relative residual tolerance in (0, 1).
        tol: f64,
    },
}

/// Scratch for [`LinearProx::solve`]; reused across layers and batches (the Cholesky
/// factor reuses its matrix's allocation).
#[derive(Debug, Clone, Default)]
pub struct LinearProx<T: Real> {
    m: DMatrix<T>,
    rt: DMatrix<T>,
    // CG vectors: top part (in x out) and bias row (1 x out).
    xt: DMatrix<T>,
    xb: Vec<T>,
    r: DMatrix<T>,
    rb: Vec<T>,
    p: DMatrix<T>,
    pb: Vec<T>,
    ap: DMatrix<T>,
    apb: Vec<T>,
    q: DMatrix<T>,
    rs_old: Vec<f64>,
    rs_new: Vec<f64>,
}

impl<T: Real> LinearProx<T> {
    /// Solves `D M = G Ab^T` for the layer with input batch `a` (`in x B`) and incoming
    /// gradient `g` (`out x B`); writes `dW` (`out x in`) and `db` (`out`) and returns the
    /// number of inner solves (1 for Cholesky, CG steps otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn solve(
        &mut self,
        a: &DMatrix<T>,
        g: &DMatrix<T>,
        tau: f64,
        how: ProxSolve,
        dw: &mut DMatrix<T>,
        db: &mut [T],
        threads: usize,
    ) -> Result<usize, SolverError> {
        self.solve_penalized(a, g, tau, None, how, dw, db, threads)
    }

    /// [`LinearProx::solve`] with the weight penalty `(l2/2)||W||^2` inside the prox
    /// problem (module doc): `penalty = Some((l2, W_old))` solves
    /// `D (M + l2 P) = G Ab^T + l2 [W_old 0]`; `None` (or `l2 = 0`) is [`LinearProx::solve`].
    #[allow(clippy::too_many_arguments)]
    pub fn solve_penalized(
        &mut self,
        a: &DMatrix<T>,
        g: &DMatrix<T>,
        tau: f64,
        penalty: Option<(f64, &DMatrix<T>)>,
        how: ProxSolve,
        dw: &mut DMatrix<T>,
        db: &mut [T],
        threads: usize,
    ) -> Result<usize, SolverError> {
        let (din, bsz) = a.shape();
        let dout = g.nrows();
        if g.ncols() != bsz || db.len() != dout {
            return Err(SolverError::shape(
                "ProxProp layer",
                format!("gradient {dout}x{bsz}, bias {dout}"),
                format!("{:?}, bias {}", g.shape(), db.len()),
            ));
        }
        if let Some((_, w)) = penalty
            && w.shape() != (dout, din)
        {
            return Err(SolverError::shape(
                "ProxProp penalised layer weights",
                format!("{dout}x{din}"),
                format!("{:?}", w.shape()),
            ));
        }
        let penalty = penalty.filter(|(l2, _)| *l2 != 0.0);
        fit(dw, dout, din);
        match how {
            ProxSolve::Exact => {
                self.exact(a, g, tau, penalty, dw, db, threads)?;
                Ok(1)
            }
            ProxSolve::Cg { iters, tol } => {
                self.cg(a, g, tau, penalty, iters, tol, dw, db, threads)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exact(
        &mut self,
        a: &DMatrix<T>,
        g: &DMatrix<T>,
        tau: f64,
        penalty: Option<(f64, &DMatrix<T>)>,
        dw: &mut DMatrix<T>,
        db: &mut [T],
        threads: usize,
    ) -> Result<(), SolverError> {
        let (din, bsz) = a.shape();
        let dout = g.nrows();
        // M = [A A^T + I/tau, A 1; 1^T A^T, B + 1/tau]
        fit(&mut self.q, din, din);
        gemm(
            &mut self.q,
            1.0,
            a,
            Transpose::No,
            a,
            Transpose::Yes,
            0.0,
            threads,
        )?;
        fit(&mut self.m, din + 1, din + 1);
        let inv_tau = T::of(1.0 / tau);
        let diag = inv_tau + T::of(penalty.map_or(0.0, |(l2, _)| l2));
        for j in 0..din {
            for i in 0..din {
                self.m[(i, j)] = self.q[(i, j)];
            }
            self.m[(j, j)] += diag;
            let s = a.row(j).sum();
            self.m[(j, din)] = s;
            self.m[(din, j)] = s;
        }
        self.m[(din, din)] = T::of(bsz as f64) + inv_tau;
        // RHS^T = Ab G^T = [A G^T; (G 1)^T]
        fit(&mut self.xt, din, dout);
        gemm(
            &mut self.xt,
            1.0,
            a,
            Transpose::No,
            g,
            Transpose::Yes,
            0.0,
            threads,
        )?;
        fit(&mut self.rt, din + 1, dout);
        for j in 0..dout {
            for i in 0..din {
                self.rt[(i, j)] = self.xt[(i, j)];
            }
            self.rt[(din, j)] = g.row(j).sum();
        }
        if let Some((l2, w)) = penalty {
            let l2 = T::of(l2);
            for j in 0..dout {
                for i in 0..din {
                    self.rt[(i, j)] += l2 * w[(j, i)];
                }
            }
        }
        let m = std::mem::replace(&mut self.m, DMatrix::zeros(0, 0));
        let chol = Cholesky::new(m).ok_or_else(|| {
            SolverError::NonFinite("ProxProp: proximal matrix not positive definite".into())
        })?;
        chol.solve_mut(&mut self.rt);
        self.m = chol.unpack();
        for i in 0..dout {
            for j in 0..din {
                dw[(i, j)] = self.rt[(j, i)];
            }
            db[i] = self.rt[(din, i)];
        }
        Ok(())
    }

    /// `ap = M p` for `p = [p_top; p_b]` (matrix-free: two GEMMs with A); `l2` adds
    /// `l2 p_top` (the penalty's `l2 P`).
    fn apply_m(
        &mut self,
        a: &DMatrix<T>,
        inv_tau: T,
        l2: f64,
        threads: usize,
    ) -> Result<(), SolverError> {
        let (din, bsz) = a.shape();
        let dout = self.p.ncols();
        #[cfg(test)]
        tally::note();
        // Q = A^T P_top + 1 p_b^T  (B x out)
        fit(&mut self.q, bsz, dout);
        gemm(
            &mut self.q,
            1.0,
            a,
            Transpose::Yes,
            &self.p,
            Transpose::No,
            0.0,
            threads,
        )?;
        for (mut col, &pb) in self.q.column_iter_mut().zip(self.pb.iter()) {
            col.iter_mut().for_each(|v| *v += pb);
        }
        // AP_top = A Q + P_top / tau ; AP_b = 1^T Q + p_b / tau
        fit(&mut self.ap, din, dout);
        self.ap.copy_from(&self.p);
        gemm(
            &mut self.ap,
            1.0,
            a,
            Transpose::No,
            &self.q,
            Transpose::No,
            inv_tau.to_f64() + l2,
            threads,
        )?;
        self.apb.resize(dout, T::zero());
        for (j, col) in self.q.column_iter().enumerate() {
            self.apb[j] = col.sum() + inv_tau * self.pb[j];
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn cg(
        &mut self,
        a: &DMatrix<T>,
        g: &DMatrix<T>,
        tau: f64,
        penalty: Option<(f64, &DMatrix<T>)>,
        iters: usize,
        tol: f64,
        dw: &mut DMatrix<T>,
        db: &mut [T],
        threads: usize,
    ) -> Result<usize, SolverError> {
        let din = a.nrows();
        let dout = g.nrows();
        let inv_tau = T::of(1.0 / tau);
        // X = 0, R = RHS = [A G^T; (G 1)^T], P = R.
        fit(&mut self.r, din, dout);
        gemm(
            &mut self.r,
            1.0,
            a,
            Transpose::No,
            g,
            Transpose::Yes,
            0.0,
            threads,
        )?;
        self.rb.clear();
        self.rb.extend((0..dout).map(|j| g.row(j).sum()));
        if let Some((l2, w)) = penalty {
            let l2 = T::of(l2);
            for j in 0..dout {
                for i in 0..din {
                    self.r[(i, j)] += l2 * w[(j, i)];
                }
            }
        }
        let l2 = penalty.map_or(0.0, |(l2, _)| l2);
        fit(&mut self.xt, din, dout);
        self.xt.fill(T::zero());
        self.xb.clear();
        self.xb.resize(dout, T::zero());
        fit(&mut self.p, din, dout);
        self.p.copy_from(&self.r);
        self.pb.clone_from(&self.rb);
        let col_sq = |m: &DMatrix<T>, v: &[T], out: &mut Vec<f64>| {
            out.clear();
            out.extend(m.column_iter().zip(v).map(|(c, &b)| {
                c.iter().map(|x| x.to_f64().powi(2)).sum::<f64>() + b.to_f64().powi(2)
            }));
        };
        let mut rs_old = std::mem::take(&mut self.rs_old);
        let mut rs_new = std::mem::take(&mut self.rs_new);
        col_sq(&self.r, &self.rb, &mut rs_old);
        let scale = rs_old.iter().sum::<f64>() / dout.max(1) as f64;
        let mut k = 0usize;
        loop {
            if scale == 0.0 {
                break; // zero gradient: D = 0
            }
            k += 1;
            self.apply_m(a, inv_tau, l2, threads)?;
            #[allow(clippy::needless_range_loop)] // j indexes eight parallel buffers
            for j in 0..dout {
                let pap: f64 = self
                    .p
                    .column(j)
                    .iter()
                    .zip(self.ap.column(j).iter())
                    .map(|(x, y)| x.to_f64() * y.to_f64())
                    .sum::<f64>()
                    + self.pb[j].to_f64() * self.apb[j].to_f64();
                let alpha = if pap > 0.0 { rs_old[j] / pap } else { 0.0 };
                let at = T::of(alpha);
                for (x, &p) in self
                    .xt
                    .column_mut(j)
                    .iter_mut()
                    .zip(self.p.column(j).iter())
                {
                    *x += at * p;
                }
                self.xb[j] += at * self.pb[j];
                for (r, &q) in self
                    .r
                    .column_mut(j)
                    .iter_mut()
                    .zip(self.ap.column(j).iter())
                {
                    *r -= at * q;
                }
                self.rb[j] -= at * self.apb[j];
            }
            if k >= iters {
                break;
            }
            col_sq(&self.r, &self.rb, &mut rs_new);
            let worst = rs_new.iter().cloned().fold(0.0f64, f64::max);
            if worst < tol * tol * scale {
                break;
            }
            for j in 0..dout {
                let beta = if rs_old[j] > 0.0 {
                    rs_new[j] / rs_old[j]
                } else {
                    0.0
                };
                let bt = T::of(beta);
                for (p, &r) in self.p.column_mut(j).iter_mut().zip(self.r.column(j).iter()) {
                    *p = r + bt * *p;
                }
                self.pb[j] = self.rb[j] + bt * self.pb[j];
            }
            std::mem::swap(&mut rs_old, &mut rs_new);
        }
        self.rs_old = rs_old;
        self.rs_new = rs_new;
        for i in 0..dout {
            for j in 0..din {
                dw[(i, j)] = self.xt[(j, i)];
            }
            db[i] = self.xb[i];
        }
        Ok(k)
    }
}

/// Test-only tally of the matrix-free products `M P` (each touches every sample of the
/// batch through the layer twice: `A^T P`, then `A Q`), counted where they happen,
/// independently of the solver's pass counters.
#[cfg(test)]
pub(crate) mod tally {
    use std::cell::Cell;
    thread_local! {
        static PRODUCTS: Cell<u64> = const { Cell::new(0) };
    }
    pub(crate) fn note() {
        PRODUCTS.with(|v| v.set(v.get() + 1));
    }
    /// Products `M P` so far on this thread.
    pub(crate) fn read() -> u64 {
        PRODUCTS.with(Cell::get)
    }
}
