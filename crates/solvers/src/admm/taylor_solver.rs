//! [`TaylorAdmm`] as a [`Solver`] of a [`NetProblem`].

use autodiff::Real;

use super::taylor::{TaylorAdmm, TaylorSaved};
use crate::{Context, NetProblem, Solver, SolverError, StepReport};

impl<T: Real> Solver<NetProblem<T>> for TaylorAdmm<T> {
    fn name(&self) -> String {
        let c = self.config();
        let start = match c.start {
            super::TaylorStart::ForwardPass => String::new(),
            super::TaylorStart::Gaussian { std } => format!(", start=N(0,{std}^2)"),
        };
        format!(
            "TaylorADMM(gamma={}, beta={}, warm={}, out={:?}{start})",
            c.gamma, c.beta, c.warm_start, c.output_loss
        )
    }

    /// The configured start ([`TaylorAdmm::initialize_with`]), the Gaussian draws from
    /// the run's RNG `ctx.rng`. `problem.net` keeps its initial weights until the first
    /// step (so the iteration-0 record is the same for every solver). Counted: one
    /// forward pass over the N samples (forward-pass start), or one backward-type pass
    /// per layer (the Gaussian start's W-steps).
    fn init(&mut self, problem: &mut NetProblem<T>, ctx: &mut Context) -> Result<(), SolverError> {
        let threads = ctx.threads.max(1);
        let (forward, backward) = self.initialize_with(
            &problem.net,
            &problem.loss,
            &problem.train,
            &mut *ctx.rng,
            threads,
        )?;
        let n = problem.train.len();
        ctx.counters.add_forward_n(forward, n);
        for _ in 0..backward {
            ctx.counters.add_backward(n);
        }
        Ok(())
    }

    /// One sweep, the multiplier step after the warm start, weights written into
    /// `problem.net`. Data passes: one per block over the N samples, `L` forward
    /// (Z-steps) and `2L - 1` backward (W- and A-steps; see the module doc of
    /// [`TaylorAdmm`]). Extras: residuals per layer
    /// and totals, `dual_residual`, `gamma`, `beta`, `multiplier_on`, `inner_solves`.
    /// Surrogate: the augmented objective times the problem's sample weight.
    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        if self.needs_prepare()
            && let Some(v) = self.lifted()
        {
            // After a restore: the network must fit the restored lifted variables.
            v.check_shapes(&problem.net, problem.train.inputs())?;
        }
        // The derived parts from the problem's own loss and data: after a restore, or
        // when either is not the prepared one (the data set is checked against the
        // lifted variables first).
        self.sync_problem(&problem.loss, &problem.train)?;
        let threads = ctx.threads.max(1);
        let info = self.iterate(&problem.train, threads)?;
        self.write_weights(&mut problem.net)?;
        let n = problem.train.len();
        info.count_passes(ctx.counters, n);
        ctx.counters.inner_solves += info.inner_solves;
        let mut report = StepReport::new().with_surrogate(info.augmented * self.sample_weight());
        info.residuals.push_extras(&mut report.extras);
        report = report
            .with("dual_residual", info.dual_residual)
            .with("gamma", self.config().gamma)
            .with("beta", self.config().beta)
            .with(
                "multiplier_on",
                if info.multiplier_updated { 1.0 } else { 0.0 },
            )
            .with("inner_solves", info.inner_solves as f64);
        Ok(report)
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(self.saved()).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let s: TaylorSaved<T> = serde_json::from_value(v.clone())?;
        crate::state_check::check_count("TaylorADMM", "iterations", s.iterations)?;
        self.restore(s);
        Ok(())
    }

    /// Lifted variables, the multiplier lambda (`K x N`) and the previous output
    /// (`K x N` or empty) must match the network and data.
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let s = self.saved();
        let Some(vars) = &s.vars else {
            return Err(SolverError::Checkpoint(
                "TaylorADMM: checkpoint has no lifted variables `vars` (a checkpoint is written after init)".into(),
            ));
        };
        super::checks::check_lifted("TaylorADMM", vars, problem)?;
        super::checks::check_output_sized("TaylorADMM", "lambda", &s.lambda, problem, false)?;
        super::checks::check_output_sized("TaylorADMM", "prev_m", &s.prev_m, problem, true)
    }
}
