//! dlADMM's majorized W- and A-steps, and the sums over ranks of a data-parallel run.
//!
//! Both steps minimise a quadratic `phi` along its gradient `G` with the curvature
//! `theta` (W) or `tau` (A) doubled from its base until the quadratic upper bound
//! `phi(X - G/theta) <= phi(X) - ||G||^2 / (2 theta)` holds. Because `phi` is quadratic,
//! `phi(X - G/theta) = phi(X) - ||G||^2 / theta + curv / (2 theta^2)` exactly, with the
//! curvature `curv = c ||G A||^2 + (lambda_2 / w) ||G||^2` (W-step) or
//! `c ||W G||^2 + nu ||G||^2` (A-step); the bound reads `curv <= theta ||G||^2`. So
//! `curv` and `||G||^2` are computed once per step and every backtracking trial is one
//! scalar comparison: a trial after the first touches no sample (docs/RESULTS_SCHEMA.md,
//! "Data passes"). Layer 1's W-step of the forward pass, run right after the backward
//! pass's (the `chain` argument, set by that step and dropped by any other block), forms
//! `R' X^T = R X^T + s G (X X^T)` from the kept sums and `G (X X^T)` (`ggw`, formed for
//! the curvature) instead of a residual and a GEMM over the samples (issue #14; equal to
//! rounding, not bit for bit; one process only, a data-parallel run recomputes).
//!
//! Data-parallel mode (`crate::distributed::DistributedDlAdmm`): each rank holds its
//! columns of `X`, `Z_l`, `A_l` and `U`. The W-step needs the sums over ALL samples of
//! `R A^T` (`d_l x d_{l-1}`) and of its curvature piece (`A A^T`, `d_{l-1}^2`, or, for a
//! narrow layer, the scalar `||G A||^2`); the A-step's gradient is per sample but its
//! backtracking is one decision for all samples, so `||G||^2` and `||W G||^2` (two
//! scalars) are summed. Every sum goes through [`crate::comm::allreduce_sum`] (fixed rank
//! order), so every rank takes the same backtracking decisions and holds bit-identical
//! weights.

use autodiff::{Real, Transpose};

use super::fused::{row_sq_norm, shape_pair};
use super::{DlAdmm, not_init};
use crate::SolverError;
use crate::admm::linalg::{sample_sums, sample_sums_keep};
use crate::comm::allreduce_sum;
use crate::linalg::{dot, ensure_shape, gemm, sq_norm};

/// Notes one sample-touching evaluation in the test tally (no-op outside tests).
macro_rules! note_pass {
    ($c:ident) => {
        #[cfg(test)]
        $crate::admm::dladmm::steps::tally::note(&$crate::admm::dladmm::steps::tally::$c);
    };
}
pub(crate) use note_pass;

/// Sums `buf` over the ranks of `dist` (identity on one process).
pub(super) fn reduce<T: Real>(
    dist: &Option<(std::sync::Arc<dyn crate::comm::Comm>, usize)>,
    buf: &mut [T],
    scratch: &mut Vec<f64>,
) -> Result<(), SolverError> {
    match dist {
        Some((comm, _)) => allreduce_sum(&**comm, buf, scratch),
        None => Ok(()),
    }
}

impl<T: Real> DlAdmm<T> {
    /// The W-step of layer `l` (module doc); returns the backtracking trials (0 when the
    /// gradient vanishes). `self.scratch` must hold nothing of value.
    pub(super) fn weight_step(
        &mut self,
        l: usize,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
        chain: Option<T>,
    ) -> Result<u64, SolverError> {
        let l_count = self.vars.as_ref().ok_or_else(not_init)?.layers();
        // Layer 1's second W-step in a row (module doc): `R' X^T = R X^T + s G (X X^T)`.
        let chained = chain.filter(|_| {
            l == 0 && self.dist.is_none() && self.ggw.shape() == self.sums0.cross.shape()
        });
        self.w0_reused = chained.is_some();
        if chained.is_none() {
            self.residual_into(l, x, threads)?;
            note_pass!(FORWARD);
        }
        let c = self.coupling(l, l_count);
        let l2w = self.l2 / self.sample_weight;
        let vars = self.vars.as_mut().ok_or_else(not_init)?;
        let input = if l == 0 { x } else { &vars.a[l - 1] };
        // Narrow layers (d_out < d_in, not layer 1): `||G A||^2` from the d_out x N
        // product G A is cheaper than the d_in x d_in Gram A A^T.
        let narrow = l > 0 && vars.w[l].nrows() < vars.w[l].ncols();
        let (p, dist) = (input.nrows(), self.dist.is_some());
        let sums = if narrow {
            let (q, p) = vars.w[l].shape();
            ensure_shape(&mut self.sums.cross, q, p);
            gemm(
                &mut self.sums.cross,
                1.0,
                &self.scratch,
                Transpose::No,
                input,
                Transpose::Yes,
                0.0,
                threads,
            )?;
            reduce(
                &self.dist,
                self.sums.cross.as_mut_slice(),
                &mut self.dist_scratch,
            )?;
            &self.sums
        } else if let Some(s) = chained {
            for (ci, &gi) in self
                .sums0
                .cross
                .as_mut_slice()
                .iter_mut()
                .zip(self.ggw.as_slice())
            {
                *ci += s * gi;
            }
            &self.sums0
        } else if l == 0 {
            // X X^T is computed once (X never changes); in a data-parallel run the
            // cached Gram is the sum over ranks, reduced once.
            let hit = self.input_key.hit(input, threads);
            let kept = hit && self.sums0.gram.shape() == (p, p) && self.sums0.a_sum.len() == p;
            let r = sample_sums_keep(
                input,
                &self.scratch,
                threads,
                &mut self.sums_work,
                &mut self.sums0,
                hit,
            )
            .and_then(|()| {
                if !dist {
                    return Ok(());
                }
                self.sums0
                    .allreduce_w_step(&self.dist, !kept, &mut self.dist_scratch)
            });
            if r.is_err() {
                self.input_key.clear();
            }
            r?;
            &self.sums0
        } else {
            sample_sums(
                input,
                &self.scratch,
                threads,
                &mut self.sums_work,
                &mut self.sums,
            )?;
            if dist {
                self.sums
                    .allreduce_w_step(&self.dist, true, &mut self.dist_scratch)?;
            }
            &self.sums
        };
        if chained.is_none() {
            note_pass!(BACKWARD);
        }
        // G = -c R A^T + l2w W (buffers reused across calls), identical on every rank.
        let w = &mut vars.w[l];
        ensure_shape(&mut self.gw, w.nrows(), w.ncols());
        ensure_shape(&mut self.ggw, w.nrows(), w.ncols());
        for ((gi, &ci), &wi) in self
            .gw
            .as_mut_slice()
            .iter_mut()
            .zip(sums.cross.as_slice())
            .zip(w.as_slice())
        {
            *gi = T::of(-c * ci.to_f64() + l2w * wi.to_f64());
        }
        let g = &self.gw;
        let g2 = sq_norm(g);
        if g2 == 0.0 {
            return Ok(0);
        }
        let ga2 = if narrow {
            shape_pair(
                &mut self.scratch2,
                &mut self.scratch2_alt,
                g.nrows(),
                input.ncols(),
            );
            gemm(
                &mut self.scratch2,
                1.0,
                g,
                Transpose::No,
                input,
                Transpose::No,
                0.0,
                threads,
            )?;
            note_pass!(FORWARD);
            let mut s = [row_sq_norm(&self.scratch2, &mut self.row_acc)];
            reduce(&self.dist, &mut s, &mut self.dist_scratch)?;
            s[0]
        } else {
            gemm(
                &mut self.ggw,
                1.0,
                g,
                Transpose::No,
                &sums.gram,
                Transpose::No,
                0.0,
                1,
            )?;
            dot(&self.ggw, g)
        };
        let curv = c * ga2 + l2w * g2;
        let theta = backtrack(&self.config, self.theta, curv, g2, ("W", "theta"), l)?;
        let step = T::of(1.0 / theta.0);
        for (wi, &gi) in w.as_mut_slice().iter_mut().zip(g.as_slice()) {
            *wi -= step * gi;
        }
        // `ggw` keeps `G (X X^T)` for a following W-step of layer 1 (`chain`).
        if l == 0 && self.dist.is_none() {
            self.w0_chain = Some(step);
        }
        self.invalidate(l);
        Ok(theta.1)
    }

    /// The A-step of hidden layer `l`:
    /// `f(A_l) = (c/2)||R_{l+1}||^2 + (nu/2)||A_l - h(Z_l)||^2` (module doc).
    pub(super) fn activation_step(
        &mut self,
        l: usize,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
    ) -> Result<u64, SolverError> {
        let l_count = self.vars.as_ref().ok_or_else(not_init)?.layers();
        let n = x.ncols();
        self.residual_into(l + 1, x, threads)?;
        note_pass!(FORWARD);
        let c = self.coupling(l + 1, l_count);
        let nu = self.nu;
        let vars = self.vars.as_mut().ok_or_else(not_init)?;
        let d = vars.a[l].nrows();
        shape_pair(&mut self.scratch2, &mut self.scratch2_alt, d, n);
        vars.h[l].apply_matrix(&vars.z[l], &mut self.scratch2);
        let nt = T::of(nu);
        for (s, &a) in self
            .scratch2
            .as_mut_slice()
            .iter_mut()
            .zip(vars.a[l].as_slice())
        {
            *s = nt * (a - *s);
        }
        let w = &vars.w[l + 1];
        gemm(
            &mut self.scratch2,
            -c,
            w,
            Transpose::Yes,
            &self.scratch,
            Transpose::No,
            1.0,
            threads,
        )?;
        note_pass!(BACKWARD);
        // [||G||^2, ||W G||^2] over all samples; one process skips W G when G = 0.
        let mut s = [row_sq_norm(&self.scratch2, &mut self.row_acc), 0.0];
        if self.dist.is_some() || s[0] != 0.0 {
            gemm(
                &mut self.scratch,
                1.0,
                w,
                Transpose::No,
                &self.scratch2,
                Transpose::No,
                0.0,
                threads,
            )?;
            s[1] = row_sq_norm(&self.scratch, &mut self.row_acc);
            reduce(&self.dist, &mut s, &mut self.dist_scratch)?;
        }
        let [g2, wg2] = s;
        if g2 == 0.0 {
            return Ok(0);
        }
        note_pass!(FORWARD);
        let curv = c * wg2 + nu * g2;
        let tau = backtrack(&self.config, self.tau, curv, g2, ("A", "tau"), l)?;
        let step = T::of(1.0 / tau.0);
        let vars = self.vars.as_mut().ok_or_else(not_init)?;
        for (ai, &gi) in vars.a[l]
            .as_mut_slice()
            .iter_mut()
            .zip(self.scratch2.as_slice())
        {
            *ai -= step * gi;
        }
        self.invalidate(l + 1);
        Ok(tau.1)
    }
}

/// The smallest `base * backtrack^k` with `curv <= theta ||G||^2` and the number
/// of trials `k + 1` (each a scalar test, module doc); an error after
/// `max_backtracks` doublings.
fn backtrack(
    config: &super::DlAdmmConfig,
    base: f64,
    curv: f64,
    g2: f64,
    (what, param): (&str, &str),
    l: usize,
) -> Result<(f64, u64), SolverError> {
    let mut theta = base;
    let mut trials = 1;
    note_pass!(TRIALS);
    while curv > theta * g2 {
        if trials as usize > config.max_backtracks {
            return Err(SolverError::LineSearch(format!(
                "DlAdmm {what}-step of layer {}: {param} {theta:e} after {trials} trials",
                l + 1
            )));
        }
        theta *= config.backtrack;
        trials += 1;
        note_pass!(TRIALS);
    }
    Ok((theta, trials))
}

/// Test instrument (data-pass accounting, docs/RESULTS_SCHEMA.md): counts, where they
/// happen, the evaluations that touch all N samples, independently of the counters the
/// solver reports: layer maps `W_l A_{l-1} + b_l` read by a block (forward), loss
/// evaluations of the output block (forward), products along a direction for a
/// majorizer's curvature (`G A`, `W G`: forward), and products with a transposed
/// factor (`R A^T`, `W^T R`: backward).
#[cfg(test)]
pub(crate) mod tally {
    use std::cell::Cell;
    thread_local! {
        pub(crate) static FORWARD: Cell<u64> = const { Cell::new(0) };
        pub(crate) static BACKWARD: Cell<u64> = const { Cell::new(0) };
        pub(crate) static TRIALS: Cell<u64> = const { Cell::new(0) };
    }
    pub(crate) fn note(c: &'static std::thread::LocalKey<Cell<u64>>) {
        c.with(|v| v.set(v.get() + 1));
    }
    /// (forward, backward, backtracking trials) so far on this thread.
    pub(crate) fn read() -> (u64, u64, u64) {
        (
            FORWARD.with(Cell::get),
            BACKWARD.with(Cell::get),
            TRIALS.with(Cell::get),
        )
    }
}
