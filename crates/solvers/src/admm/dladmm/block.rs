//! One dlADMM block step ([`DlAdmm::run_block`]): the W-, b-, Z- and A-steps of one
//! layer, dispatched on [`DlBlock`] (ALGORITHMS.md 3; Wang et al., KDD 2019, Algorithm 1).

use super::*;

impl<T: Real> DlAdmm<T> {
    /// Runs one block step; returns the inner solves (backtracking trials, inner
    /// output iterations) it made. A data set other than the prepared one is prepared
    /// first (`DlAdmm::sync_data`).
    pub fn run_block(
        &mut self,
        block: DlBlock,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<u64, SolverError> {
        self.sync_data(train)?;
        let x = train.inputs();
        let n = x.ncols();
        // A chain of layer-1 W-steps holds only from one block to the next, on the
        // same data.
        let mut chain = self.w0_chain.take();
        if !self.data_key.hit(x, threads) {
            self.prod_valid.clear();
            chain = None;
        }
        let l_count = self.vars.as_ref().ok_or_else(not_init)?.layers();
        let layer = match block {
            DlBlock::Weights(l) | DlBlock::Bias(l) | DlBlock::PreActivations(l) => l,
            DlBlock::Activations(l) => l + 1,
        };
        if layer >= l_count {
            return Err(SolverError::Problem(format!(
                "DlAdmm: block {block:?} out of range for {l_count} layers"
            )));
        }
        match block {
            DlBlock::Bias(l) => {
                // Row sums of the residual over the samples (over all ranks).
                self.residual_sums(l, x, threads)?;
                note_pass!(FORWARD);
                let inv_n = 1.0 / self.global_n(n) as f64;
                let sums = &mut self.bias_sums;
                reduce(&self.dist, sums, &mut self.dist_scratch)?;
                let vars = self.vars.as_mut().ok_or_else(not_init)?;
                for (bi, s) in vars.b[l].iter_mut().zip(sums.iter()) {
                    *bi += T::of(s * inv_n);
                }
                Ok(0)
            }
            DlBlock::Weights(l) => self.weight_step(l, x, threads, chain),
            DlBlock::Activations(l) => self.activation_step(l, x, threads),
            DlBlock::PreActivations(l) => {
                let eta_eff = match self.config.zl_solver {
                    ZlSolver::ProxGradient { eta, .. } => self.effective_eta(eta),
                    ZlSolver::Newton => 0.0,
                };
                self.affine_cached(l, x, threads)?;
                note_pass!(FORWARD);
                let what = || format!("DlAdmm: W_{0} A_{1} + b_{0} before the Z-step", l + 1, l);
                let finite = require_finite(&self.scratch, what);
                if self.dist.is_some() {
                    // One decision for all ranks (a rank that stopped alone would leave
                    // the others waiting in the next collective).
                    let mut bad = [if finite.is_err() { 1.0 } else { 0.0 }];
                    reduce(&self.dist, &mut bad, &mut self.dist_scratch)?;
                    if bad[0] > 0.0 && finite.is_ok() {
                        return Err(SolverError::NonFinite(format!(
                            "{} (on another rank)",
                            what()
                        )));
                    }
                }
                finite?;
                let vars = self.vars.as_mut().ok_or_else(not_init)?;
                if l + 1 < l_count {
                    hidden_z::hidden_z_step(&vars.h[l], &vars.a[l], &self.scratch, &mut vars.z[l])?;
                    Ok(1)
                } else {
                    // v = m - U / rho; Z_L = prox_{R/rho}(v).
                    let inv_rho = T::of(1.0 / self.rho);
                    for (s, &u) in self
                        .scratch
                        .as_mut_slice()
                        .iter_mut()
                        .zip(self.u.as_slice())
                    {
                        *s -= u * inv_rho;
                    }
                    let z = &mut vars.z[l];
                    match self.config.zl_solver {
                        ZlSolver::Newton => {
                            // Column by column: no sum over samples.
                            self.sum_loss
                                .output_prox(train.targets(), &self.scratch, 1.0 / self.rho, z)
                                .map_err(nerr)?;
                            note_pass!(FORWARD);
                            Ok(1)
                        }
                        ZlSolver::ProxGradient { max_iter, tol, .. } => {
                            let (dist, scratch) = (&self.dist, &mut self.dist_scratch);
                            prox_gradient(
                                &self.sum_loss,
                                train.targets(),
                                &self.scratch,
                                self.rho,
                                eta_eff,
                                max_iter,
                                tol,
                                z,
                                &mut self.grad,
                                &mut self.softmax,
                                &mut |b: &mut [f64]| reduce(dist, b, scratch),
                            )
                        }
                    }
                }
            }
        }
    }
}
