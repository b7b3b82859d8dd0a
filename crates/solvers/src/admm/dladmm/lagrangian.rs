//! dlADMM's augmented Lagrangian `L_rho` (module doc of `dladmm`) from its sums over
//! samples, the reduction of those sums and of the residual norms over the ranks of a
//! data-parallel run, and the data passes of each block step.

use autodiff::Real;
use nets::Dataset;

use super::steps::reduce;
use super::{DlAdmm, DlBlock, ZlSolver, nerr, not_init};
use crate::SolverError;
use crate::admm::lifted::Residuals;
use crate::linalg::{dot, sq_norm};

impl<T: Real> DlAdmm<T> {
    /// `L_rho` of the module doc (sum scale) at the current variables (over all samples
    /// in a data-parallel run: a collective call there).
    pub fn augmented_lagrangian(
        &mut self,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<f64, SolverError> {
        self.sync_data(train)?;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let mut r = vars.residuals(train.inputs(), threads, &mut self.scratch)?;
        let mut parts = self.lagrangian_samples(train, threads)?;
        self.reduce_residuals(&mut r, &mut parts)?;
        self.lagrangian_combine(&r, parts)
    }

    /// The sums over (this rank's) samples in `L_rho` other than the residual norms:
    /// `[R(Z_L), <U, r_L>]`.
    pub(super) fn lagrangian_samples(
        &mut self,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<[f64; 2], SolverError> {
        let last = self.vars.as_ref().ok_or_else(not_init)?.layers() - 1;
        // r_L as a matrix for <U, r_L>: scratch = Z_L - m_L + U/rho, so
        // <U, r_L> = <U, scratch> - ||U||^2 / rho.
        self.residual_into(last, train.inputs(), threads)?;
        let ur = dot(&self.u, &self.scratch) - sq_norm(&self.u) / self.rho;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let loss = self
            .sum_loss
            .value(&vars.z[last], train.targets())
            .map_err(nerr)?
            .to_f64();
        Ok([loss, ur])
    }

    /// `L_rho` from the residual norms and [`Self::lagrangian_samples`]'s sums (the L2
    /// term of the replicated weights added once).
    pub(super) fn lagrangian_combine(
        &self,
        r: &Residuals,
        parts: [f64; 2],
    ) -> Result<f64, SolverError> {
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let last = vars.layers() - 1;
        let mut v = parts[0];
        let lin2: Vec<f64> = r.linear.iter().map(|x| x * x).collect();
        v += 0.5 * self.nu * lin2[..last].iter().sum::<f64>();
        v += 0.5 * self.nu * r.activation.iter().map(|x| x * x).sum::<f64>();
        v += parts[1] + 0.5 * self.rho * lin2[last];
        if self.l2 > 0.0 {
            v += self.l2 / (2.0 * self.sample_weight) * vars.w.iter().map(sq_norm).sum::<f64>();
        }
        Ok(v)
    }

    /// Data-parallel mode: the residual norms over all samples (squares added over
    /// ranks) and `extra` added over ranks, in one reduction; identity on one process.
    pub(super) fn reduce_residuals(
        &mut self,
        r: &mut Residuals,
        extra: &mut [f64],
    ) -> Result<(), SolverError> {
        if self.dist.is_none() {
            return Ok(());
        }
        let (nl, na) = (r.linear.len(), r.activation.len());
        let mut pack: Vec<f64> = Vec::with_capacity(nl + na + extra.len());
        pack.extend(r.linear.iter().chain(&r.activation).map(|x| x * x));
        pack.extend_from_slice(extra);
        reduce(&self.dist, &mut pack, &mut self.dist_scratch)?;
        for (x, s) in r
            .linear
            .iter_mut()
            .chain(r.activation.iter_mut())
            .zip(&pack)
        {
            *x = s.sqrt();
        }
        extra.copy_from_slice(&pack[nl + na..]);
        Ok(())
    }

    /// Data passes of one block step that returned `k` (docs/RESULTS_SCHEMA.md, "Data
    /// passes"): `(forward, backward)`. Every block reads a layer map `W_l A_{l-1} + b_l`
    /// over the N columns (forward; from the product cache or not: the unit counts
    /// touches of the samples); the W- and A-steps add their gradient's product with a
    /// transposed factor (`R A^T`, `W^T R`: backward) and, when the gradient is not zero,
    /// one product along it for the curvature (`G A` for a narrow layer, `W G` for the
    /// A-step: forward; a wide layer's `tr(G (A A^T) G^T)` reuses the Gram formed in the
    /// same pass as `R A^T`). A layer-1 W-step that formed `R X^T` from the previous
    /// one's (`DlAdmm::w0_reused`, module `steps`) touches no sample and adds nothing.
    /// Backtracking trials add nothing: each is one scalar test
    /// (module `steps`). The output block adds one loss evaluation over the N columns
    /// per prox-gradient iterate (`1 + k`), one for the Newton prox.
    pub(super) fn block_passes(&self, block: DlBlock, k: u64) -> (u64, u64) {
        let Some(vars) = self.vars.as_ref() else {
            return (0, 0);
        };
        match block {
            DlBlock::Bias(_) => (1, 0),
            DlBlock::PreActivations(l) if l + 1 < vars.layers() => (1, 0),
            DlBlock::PreActivations(_) => match self.config.zl_solver {
                ZlSolver::Newton => (2, 0),
                ZlSolver::ProxGradient { .. } => (2 + k, 0),
            },
            DlBlock::Weights(0) if self.w0_reused => (0, 0),
            DlBlock::Weights(l) => {
                let narrow = l > 0 && vars.w[l].nrows() < vars.w[l].ncols();
                (1 + u64::from(narrow && k > 0), 1)
            }
            DlBlock::Activations(_) => (1 + u64::from(k > 0), 1),
        }
    }
}
