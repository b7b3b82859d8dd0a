//! Taylor et al.'s ADMM with the samples (and their `Z_l`, `A_l`, multiplier columns)
//! sharded over ranks.

use autodiff::Real;

use super::ShardedNetProblem;
use crate::admm::{TaylorAdmm, TaylorConfig};
use crate::comm::allreduce_sum;
use crate::{Context, Solver, SolverError, StepReport};

/// [`TaylorAdmm`] on a [`ShardedNetProblem`] (Taylor et al., ICML 2016, §5: the
/// per-sample variables live with their samples). Every block step except the W-step
/// is per sample (the A-step, the Z-steps and the multiplier step act column by column),
/// so it runs on each rank's columns unchanged; the W-step's least-squares system needs
/// `A A^T`, `Z A^T` and the column sums, which are added over ranks before the solve
/// (`sum_l (d_{l-1}^2 + d_l d_{l-1} + d_{l-1} + d_l)` values per sweep), so every rank
/// computes the same weights. The reported augmented objective, residuals and dual
/// residual are summed (norms: squares summed) over ranks.
#[derive(Debug)]
pub struct DistributedTaylorAdmm<T: Real> {
    inner: TaylorAdmm<T>,
    scratch: Vec<f64>,
}

impl<T: Real> DistributedTaylorAdmm<T> {
    /// A solver from a validated config.
    pub fn new(config: TaylorConfig) -> Result<Self, SolverError> {
        Ok(DistributedTaylorAdmm {
            inner: TaylorAdmm::new(config)?,
            scratch: Vec::new(),
        })
    }
}

impl<T: Real> Solver<ShardedNetProblem<T>> for DistributedTaylorAdmm<T> {
    fn name(&self) -> String {
        <TaylorAdmm<T> as Solver<crate::NetProblem<T>>>::name(&self.inner)
    }

    /// Lifted variables from the forward pass of the local shard (one forward pass over
    /// the N samples in all). The Gaussian start is refused (`NotApplicable`).
    fn init(
        &mut self,
        problem: &mut ShardedNetProblem<T>,
        ctx: &mut Context,
    ) -> Result<(), SolverError> {
        if let crate::admm::TaylorStart::Gaussian { .. } = self.inner.config().start {
            // Each rank would draw its shard from the same seeded RNG: not the law of
            // one process's draw over all N columns (no shard offset into the stream).
            return Err(SolverError::NotApplicable(
                "DistributedTaylorAdmm: the Gaussian start (TaylorStart::Gaussian) is not \
                 implemented for sharded runs; use the forward-pass start"
                    .into(),
            ));
        }
        let n = problem.num_samples_global();
        self.inner.set_distributed(problem.comm_arc(), n);
        self.inner
            .initialize(&problem.local.net, &problem.loss, &problem.local.train)?;
        ctx.counters.add_forward(n);
        Ok(())
    }

    fn step(
        &mut self,
        problem: &mut ShardedNetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        if self.inner.lifted().is_none() {
            return Err(SolverError::Problem(
                "DistributedTaylorAdmm: step before init (resume needs init state)".into(),
            ));
        }
        // A run resumed from a checkpoint skips `init`: (re)attach the communicator and
        // rebuild the output term, as the single-process solver does on resume.
        self.inner
            .set_distributed(problem.comm_arc(), problem.num_samples_global());
        // After a restore, a replaced local shard or another loss: prepare from the
        // problem's own (`tests_data`).
        self.inner
            .sync_problem(&problem.loss, &problem.local.train)?;
        let threads = ctx.threads.max(1);
        let mut info = self.inner.iterate(&problem.local.train, threads)?;
        self.inner.write_weights(&mut problem.local.net)?;
        // Diagnostics over all samples: sums, and norms through their squares.
        let (nl, na) = (info.residuals.linear.len(), info.residuals.activation.len());
        let mut pack: Vec<f64> = Vec::with_capacity(nl + na + 2);
        pack.push(info.augmented);
        pack.push(info.dual_residual * info.dual_residual);
        pack.extend(info.residuals.linear.iter().map(|r| r * r));
        pack.extend(info.residuals.activation.iter().map(|r| r * r));
        allreduce_sum(problem.comm(), &mut pack, &mut self.scratch)?;
        info.augmented = pack[0];
        info.dual_residual = pack[1].sqrt();
        for (r, s) in info.residuals.linear.iter_mut().zip(&pack[2..2 + nl]) {
            *r = s.sqrt();
        }
        for (r, s) in info.residuals.activation.iter_mut().zip(&pack[2 + nl..]) {
            *r = s.sqrt();
        }
        // The same passes as the single-process solver, each over the global N (every
        // rank runs every block on its shard).
        info.count_passes(ctx.counters, problem.num_samples_global());
        ctx.counters.inner_solves += info.inner_solves;
        let mut report =
            StepReport::new().with_surrogate(info.augmented * self.inner.sample_weight());
        info.residuals.push_extras(&mut report.extras);
        Ok(report
            .with("dual_residual", info.dual_residual)
            .with("gamma", self.inner.config().gamma)
            .with("beta", self.inner.config().beta)
            .with(
                "multiplier_on",
                if info.multiplier_updated { 1.0 } else { 0.0 },
            )
            .with("inner_solves", info.inner_solves as f64))
    }

    /// The local lifted variables and multiplier columns (a checkpoint is per rank).
    fn save_state(&self) -> serde_json::Value {
        <TaylorAdmm<T> as Solver<crate::NetProblem<T>>>::save_state(&self.inner)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        <TaylorAdmm<T> as Solver<crate::NetProblem<T>>>::load_state(&mut self.inner, v)
    }
}
