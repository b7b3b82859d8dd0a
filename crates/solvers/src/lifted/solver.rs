//! [`Lifted`] on the common solver interface.

use autodiff::Real;

use super::LiftedConfig;
use super::state::{LiftedState, SavedState};
use crate::{Context, NetProblem, Solver, SolverError, StepReport};

/// Lifted ReLU network trained by exact block-coordinate descent on the Fenchel / LPOM
/// penalty (see the [module docs](super) for the objective and the sweep).
///
/// Each step runs `sweeps_per_step` sweeps, writes `(W, b)` into `problem.net` (so the
/// driver evaluates the true objective of the deployed network) and reports the lifted
/// objective J as the surrogate, with extras `viol_l{l}` (`||X_l - relu(W_l X_{l-1} +
/// b_l)||_F`), `viol_rel_l{l}` (the same over `||relu(W_l X_{l-1} + b_l)||_F`),
/// `lambda_l{l}`, `rho`, `inner_iterations`, `backtracking_trials`,
/// `unconverged_blocks` (inner solves that hit their cap), `stalled_blocks` (inner solves
/// that stopped at rounding level above the tolerance).
#[derive(Debug, Clone)]
pub struct Lifted<T: Real> {
    cfg: LiftedConfig,
    state: Option<LiftedState<T>>,
    /// The training set the state's first-layer metric was computed from.
    stamp: crate::linalg::DataStamp,
}

impl<T: Real> Lifted<T> {
    pub(crate) fn from_config(cfg: LiftedConfig) -> Self {
        Lifted {
            cfg,
            state: None,
            stamp: crate::linalg::DataStamp::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LiftedConfig {
        &self.cfg
    }

    /// The lifted variables (after `init`).
    pub fn state(&self) -> Option<&LiftedState<T>> {
        self.state.as_ref()
    }
}

impl<T: Real> Solver<NetProblem<T>> for Lifted<T> {
    fn name(&self) -> String {
        match &self.cfg.layer_lambdas {
            Some(ls) => format!("Lifted(lambdas={ls:?}, rho={})", self.cfg.rho),
            None => format!("Lifted(lambda={}, rho={})", self.cfg.lambda, self.cfg.rho),
        }
    }

    fn init(&mut self, problem: &mut NetProblem<T>, ctx: &mut Context) -> Result<(), SolverError> {
        self.cfg.validate()?;
        let widths = super::check_network(&problem.net, &problem.loss)?;
        let hidden = widths.len() - 2;
        let lambdas = match &self.cfg.layer_lambdas {
            Some(ls) => ls.clone(),
            None => vec![self.cfg.lambda; hidden],
        };
        let st = LiftedState::from_forward(
            &problem.net,
            &problem.loss,
            problem.train.inputs(),
            lambdas,
            self.cfg.rho,
        )?;
        // The initial forward pass over the training set.
        ctx.counters.add_forward(problem.train.len());
        self.state = Some(st);
        Ok(())
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        let st = self
            .state
            .as_mut()
            .ok_or_else(|| SolverError::Checkpoint("Lifted: init not run".into()))?;
        st.read_weights(&problem.net)?;
        if self.stamp.changed(&problem.train) {
            st.forget_data();
        }
        st.warm_step = self.cfg.warm_step;
        st.curvature_bounds = self.cfg.curvature_bounds;
        st.weights_method = self.cfg.weights_method;
        let inputs = problem.train.inputs();
        let targets = problem.train.targets();
        let n = problem.train.len() as u64;
        let (mut iters, mut trials) = (0usize, 0usize);
        let (mut unconverged, mut stalled) = (0usize, 0usize);
        for _ in 0..self.cfg.sweeps_per_step {
            let s = st.sweep(
                inputs,
                targets,
                &problem.loss,
                self.cfg.inner_tol,
                self.cfg.inner_max_iters,
                ctx.threads.max(1),
                &mut |_, _, _| Ok(()),
            )?;
            // Every evaluation of a block objective touches all N samples through its
            // layer: the value at the start of each block's solve and at each
            // backtracking trial is a forward pass; the value-and-gradient of each inner
            // FISTA iteration a forward and a backward pass (the gradient's transposed
            // product), as a value-and-gradient counts everywhere.
            let evals = (s.iterations + s.trials) as u64;
            ctx.counters
                .add_forward_n((s.blocks + s.trials) as u64, n as usize);
            ctx.counters
                .add_value_grad_n(s.iterations as u64, n as usize);
            ctx.counters.inner_solves += evals;
            iters += s.iterations;
            trials += s.trials;
            unconverged += s.unconverged;
            stalled += s.stalled;
        }
        st.write_weights(&mut problem.net)?;
        let j = st.objective(inputs, targets, &problem.loss, ctx.threads.max(1))?;
        if !j.is_finite() {
            return Err(SolverError::NonFinite("Lifted objective".into()));
        }
        let mut report = StepReport::new().with_surrogate(j);
        for (l, (abs, rel)) in st
            .violations(inputs, ctx.threads.max(1))?
            .into_iter()
            .enumerate()
        {
            report = report
                .with(&format!("viol_l{}", l + 1), abs)
                .with(&format!("viol_rel_l{}", l + 1), rel);
        }
        for (l, lam) in st.lambdas.iter().enumerate() {
            report = report.with(&format!("lambda_l{}", l + 1), *lam);
        }
        Ok(report
            .with("rho", self.cfg.rho)
            .with("inner_iterations", iters as f64)
            .with("backtracking_trials", trials as f64)
            .with("unconverged_blocks", unconverged as f64)
            .with("stalled_blocks", stalled as f64))
    }

    fn save_state(&self) -> serde_json::Value {
        match &self.state {
            Some(st) => serde_json::to_value(st.saved()).unwrap_or(serde_json::Value::Null),
            None => serde_json::Value::Null,
        }
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        if v.is_null() {
            self.state = None;
            return Ok(());
        }
        let saved: SavedState<T> = serde_json::from_value(v.clone())?;
        use crate::state_check::check_range;
        check_range("Lifted", "ridge", saved.ridge, 0.0, f64::MAX)?;
        for (field, vals) in [
            ("lambdas", &saved.lambdas),
            ("lip_w", &saved.lip_w),
            ("lip_x", &saved.lip_x),
        ] {
            for (i, v) in vals.iter().enumerate() {
                check_range("Lifted", &format!("{field}[{i}]"), *v, 0.0, f64::MAX)?;
            }
        }
        self.state = Some(LiftedState::from_saved(saved)?);
        Ok(())
    }

    /// One Lipschitz estimate per layer and `X_l` of shape `d_l x N` for the hidden
    /// layers l = 1..L-1.
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let Some(st) = &self.state else {
            return Err(SolverError::Checkpoint(
                "Lifted: checkpoint has no state (null) (a checkpoint is written after init)"
                    .into(),
            ));
        };
        let widths = problem.net.mlp_view()?.widths;
        let layers = widths.len().saturating_sub(1);
        crate::state_check::check_len("Lifted", "lip_w", layers, st.lip_w.len())?;
        let hidden = &widths[1..layers.max(1)];
        crate::state_check::check_layer_matrices("Lifted", "x", &st.x, hidden, problem.train.len())
    }
}
