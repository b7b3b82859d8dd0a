//! dlADMM (Wang et al., KDD 2019) with the samples (and their `Z_l`, `A_l`, `U`
//! columns) sharded over ranks.

use autodiff::Real;

use super::ShardedNetProblem;
use crate::admm::{DlAdmm, DlAdmmConfig, DlPenalty};
use crate::{Context, Solver, SolverError, StepReport};

/// [`DlAdmm`] on a [`ShardedNetProblem`]. Each rank holds its columns of `X`, `Z_l`,
/// `A_l` and the multiplier `U`, and the replicated weights. Per sample (no
/// communication): the hidden Z-steps (entrywise prox), the output Z-step's update, the
/// A-step's update and the dual step. Global (an all-reduce, fixed rank order, so every
/// rank computes bit-identical weights and takes the same backtracking decisions; the
/// steps and the byte counts are in docs/DISTRIBUTED.md):
///
/// * W-step of layer l: `R_l A_{l-1}^T` (`d_l d_{l-1}` values) and the curvature
///   piece of its majorizer, `A_{l-1} A_{l-1}^T` (`d_{l-1}^2`; layer 1's `X X^T` once
///   per run) or, for a layer narrower than its input, the scalar `||G A_{l-1}||^2`;
/// * b-step: the residual's row sums (`d_l`);
/// * A-step: `||G||^2` and `||W G||^2` (2 scalars: the backtracking of `tau` is one
///   decision over all samples);
/// * output Z-step (prox-gradient): the block objective's two parts at every inner
///   iterate (2 scalars each: the stopping test is on the sum over samples);
/// * per iteration: the residual norms, `L_rho`'s sample sums, the dual residual and a
///   finiteness flag (`2L + 3` values); the adaptive penalty's true objective (1).
#[derive(Debug)]
pub struct DistributedDlAdmm<T: Real> {
    inner: DlAdmm<T>,
}

impl<T: Real> DistributedDlAdmm<T> {
    /// A solver from a validated config.
    pub fn new(config: DlAdmmConfig) -> Result<Self, SolverError> {
        Ok(DistributedDlAdmm {
            inner: DlAdmm::new(config)?,
        })
    }

    /// The single-process engine (its lifted variables are this rank's columns).
    pub fn engine(&self) -> &DlAdmm<T> {
        &self.inner
    }
}

impl<T: Real> Solver<ShardedNetProblem<T>> for DistributedDlAdmm<T> {
    fn name(&self) -> String {
        <DlAdmm<T> as Solver<crate::NetProblem<T>>>::name(&self.inner)
    }

    /// Lifted variables from the forward pass of the local shard (one forward pass over
    /// the N samples in all).
    fn init(
        &mut self,
        problem: &mut ShardedNetProblem<T>,
        ctx: &mut Context,
    ) -> Result<(), SolverError> {
        let n = problem.num_samples_global();
        self.inner.set_distributed(problem.comm_arc(), n);
        self.inner
            .initialize(&problem.local.net, &problem.loss, &problem.local.train)?;
        ctx.counters.add_forward(n);
        Ok(())
    }

    /// One iteration as on one process (the same report and the same data-pass
    /// counts, in passes over all N samples).
    fn step(
        &mut self,
        problem: &mut ShardedNetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        if self.inner.lifted().is_none() {
            return Err(SolverError::Problem(
                "DistributedDlAdmm: step before init (resume needs init state)".into(),
            ));
        }
        // A run resumed from a checkpoint skips `init`: (re)attach the communicator.
        let n = problem.num_samples_global();
        self.inner.set_distributed(problem.comm_arc(), n);
        // After a restore, a replaced local shard or another loss: prepare from the
        // problem's own (`tests_data`).
        self.inner
            .sync_problem(&problem.loss, &problem.local.train)?;
        let threads = ctx.threads.max(1);
        let info = self.inner.iterate(&problem.local.train, threads)?;
        self.inner.write_weights(&mut problem.local.net)?;
        ctx.counters.add_forward_n(info.forward_passes, n);
        for _ in 0..info.backward_passes {
            ctx.counters.add_backward(n);
        }
        ctx.counters.inner_solves += info.inner_solves;
        if matches!(self.inner.config().penalty, DlPenalty::Adaptive { .. }) {
            let obj = problem.objective_global()?;
            ctx.counters.add_forward(n);
            let widest = self
                .inner
                .lifted()
                .map_or(0, |v| v.a.iter().map(|a| a.nrows()).max().unwrap_or(0));
            self.inner.adapt(obj, widest);
        }
        Ok(self.inner.report(&info))
    }

    /// The local lifted variables and multiplier columns (a checkpoint is per rank).
    fn save_state(&self) -> serde_json::Value {
        <DlAdmm<T> as Solver<crate::NetProblem<T>>>::save_state(&self.inner)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        <DlAdmm<T> as Solver<crate::NetProblem<T>>>::load_state(&mut self.inner, v)
    }
}
