//! The method of auxiliary coordinates (MAC) with a quadratic penalty.
//!
//! Source: M. Á. Carreira-Perpiñán, W. Wang, "Distributed optimization of deeply nested
//! systems", AISTATS 2014 (PMLR 33); ALGORITHMS.md section 5. The paper's text could not
//! be retrieved with the search tool here, so its schedule constants stay \[memory\]; what
//! is implemented below is stated exactly, with the reasons every step is monotone.
//!
//! # Formulation (where the layers are cut)
//!
//! Auxiliary coordinates are the hidden **pre-activations** `Z_l` (`l = 1..L-1`), one
//! column per sample; with `h(Z_0) := X` the constraints are
//! `Z_l = W_l h_l-1(Z_{l-1}) + b_l 1^T`, and the quadratic-penalty function (sum form,
//! see [`crate::bcd::LiftedData`]) is
//!
//! ```text
//! E_Q(W, Z; mu) = sum_n ell(W_L h(Z_{L-1}) + b_L, y_n) + (l2/2) sum_l ||W_l||^2
//!               + (mu/2) sum_{l<L} ||Z_l - W_l h(Z_{l-1}) - b_l 1^T||^2.
//! ```
//!
//! The paper puts the nonlinearity inside each layer's fit (`z_l = f_l(z_{l-1}; W_l)`),
//! which makes the W-step of a ReLU/sigmoid layer a nonlinear regression needing an inner
//! iterative solve. Cutting before the activation keeps the same nested function and the
//! same penalty theory but makes **every W-step an exact linear least-squares problem**,
//! and moves the activation into the Z-step, where it is handled by an exact proximal map.
//!
//! # Iteration (full batch)
//!
//! * **Z-step** (W fixed; separable over samples): for `l = 1..L-1`, `z_steps` times, one
//!   majorize-minimize step on `Z_l`. The term above, `phi(A)` with `A = h(Z_l)`
//!   (`(mu/2)||Z_{l+1} - W_{l+1} A - b||^2`, or the loss at `l = L-1`), has a Hessian in
//!   `A` bounded by `Lc = c ||W_{l+1}||_2^2` (`c = mu`, or the loss curvature: 1 for MSE,
//!   1/2 for softmax CE by Böhning, 1/4 logistic). The descent lemma gives
//!   `phi(A) <= phi(A0) + <Gamma, A - A0> + (Lc/2)||A - A0||^2`, `Gamma = W_{l+1}^T G`,
//!   so with `T = A0 - Gamma/Lc` the step minimises, entrywise,
//!   `(Lc/2)(t - h(z))^2 + (mu/2)(z - m)^2`, `m = W_l h(Z_{l-1}) + b_l`:
//!   [`nets::prox::prox_weighted`]`(h, t, m, Lc, mu)`, closed form for ReLU. Each entry
//!   keeps its old value if that is better on the majorizer, and `Lc` (estimated by power
//!   iteration) is certified by checking the quadratic bound at the new point, doubling
//!   `Lc` on failure. Hence `E_Q` never increases. This replaces the paper's
//!   Gauss-Newton Z-step by certified majorized steps.
//! * **W-step** (Z fixed; separable over layers): hidden layers and an MSE output layer
//!   are exact (ridge-proximal) least squares,
//!   `(c Abar Abar^T + Lambda + eps I) D^T = -(Abar G^T + Lambda Wbar^T)`, `Wbar += D`,
//!   `Abar = [h(Z_{l-1}); 1^T]`, `eps` the proximal ridge (`ridge`), `Lambda` the L2 on
//!   weights; for softmax CE / logistic the same formula is the Böhning / 1/4-bound MM
//!   step (monotone), repeated `out_steps` times.
//! * `mu` then follows the geometric schedule of [`MacConfig`].
//!
//! The network handed back is the weights `W, b` with the network's own forward pass (a
//! feasible point): the driver evaluates exactly that. `StepReport.surrogate` is `E_Q`
//! (times the reduction weight) at the `mu` used by the iteration; extras give `mu`, the
//! relative constraint violation per hidden layer and the inner-solve counts.
//!
//! Guarantee (standard quadratic-penalty theory, ALGORITHMS.md 5.3): for each fixed `mu`
//! the iterates decrease `E_Q` monotonically; as `mu -> infinity` with subproblems solved
//! to stationarity, limit points are KKT points of the nested problem. No rate.
//!
//! Cost per iteration: per layer `h(Z) h(Z)^T` (a half product for hidden inputs) and
//! `W^T G` GEMMs (`d^2 N`), one Cholesky of size `d_{l-1} + 1`, a power iteration, and
//! per Z-step MM one prox per entry and a forward of the layer above (plus one per
//! backtracking trial); the output's loss is evaluated once per output (issue #14).
//! Memory: `Z_l`, the cached `h(Z_l)`, the layer outputs `W_l h(Z_{l-1}) + b_l`, the
//! Z-step backups, the feasible candidate and the output gradient: about
//! `5 N sum_{l<L} d_l + 4 N d_L` numbers.
//!
//! Accounting (data passes, `crate::Counters`): `init` one forward pass; per iteration
//! a forward for the feasible candidate (a full forward pass), per Z-step a forward and
//! a backward (the term above and its gradient) plus one forward per backtracking trial,
//! per W-step a forward and a backward (its term's gradient); `inner_solves +=` W-step
//! solves + Z-step MM trials (+1 for the candidate).

mod config;
mod state;
#[cfg(test)]
mod tests;
mod z_kernel;

pub use config::MacConfig;
pub use state::{MacBlock, MacState};

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Dataset, Loss, Sequential};
use serde::{Deserialize, Serialize};

use crate::bcd::{LiftedData, net_io};
use crate::{Context, NetProblem, Solver, SolverError, StepReport};

/// The MAC solver (see the module doc). Full batch: one step is one Z-step + W-step.
#[derive(Clone, Debug)]
pub struct Mac<T: Real> {
    config: MacConfig,
    state: Option<MacState<T>>,
    /// The training set the state's data-derived caches were computed from.
    stamp: crate::linalg::DataStamp,
    pending: Option<Vec<DMatrix<T>>>,
    iters: u64,
}

/// What [`Mac`] checkpoints (weights are in the network).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Saved<T: Real> {
    iters: u64,
    z: Option<Vec<DMatrix<T>>>,
}

impl<T: Real> Mac<T> {
    /// A solver from `config` (validated here).
    pub fn new(config: MacConfig) -> Result<Self, SolverError> {
        config.validate()?;
        Ok(Mac {
            config,
            state: None,
            stamp: crate::linalg::DataStamp::default(),
            pending: None,
            iters: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MacConfig {
        &self.config
    }

    /// The auxiliary coordinates (None before `init`).
    pub fn state(&self) -> Option<&MacState<T>> {
        self.state.as_ref()
    }

    /// Iterations done so far.
    pub fn iterations(&self) -> u64 {
        self.iters
    }

    /// The penalty the next iteration will use.
    pub fn current_mu(&self) -> f64 {
        self.config.mu_at(self.iters)
    }

    /// Display name with the hyperparameters.
    pub fn display_name(&self) -> String {
        let c = &self.config;
        format!(
            "MAC(mu0={},x{}/{}it,z_steps={})",
            c.mu0, c.mu_factor, c.iters_per_mu, c.z_steps
        )
    }

    /// Initialises Z from the forward pass of `net` on the training inputs.
    pub fn init_parts(
        &mut self,
        net: &Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
    ) -> Result<(), SolverError> {
        net_io::check_loss(loss, "MAC")?;
        self.state = Some(MacState::from_net(net, train.inputs())?);
        self.pending = None;
        self.iters = 0;
        Ok(())
    }

    /// One iteration on explicit parts (what [`crate::Solver::step`] does on a network
    /// problem): reads W, b from `net`, Z-step, W-step, writes W, b back.
    pub fn step_parts(
        &mut self,
        net: &mut Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.step_with_hook(net, train, loss, ctx, &mut |_, _| {})
    }

    /// [`Mac::step_parts`] calling `hook` after every block.
    pub fn step_with_hook(
        &mut self,
        net: &mut Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
        ctx: &mut Context,
        hook: &mut dyn FnMut(MacBlock, &MacState<T>),
    ) -> Result<StepReport, SolverError> {
        net_io::check_loss(loss, "MAC")?;
        if self.state.is_none() {
            self.state = Some(MacState::from_net(net, train.inputs())?);
        }
        let data = LiftedData::new(train, loss);
        let cfg = self.config;
        let mu = cfg.mu_at(self.iters);
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| SolverError::Problem("MAC state missing".into()))?;
        if let Some(z) = self.pending.take() {
            state.restore(z)?;
        }
        if net_io::reload_layers(net, &mut state.w, &mut state.b, "MAC")? {
            // The network was changed between steps: drop the cached layer outputs.
            state.invalidate_all();
        }
        if self.stamp.changed(train) {
            // Another data set (its inputs may sit at the old one's address).
            state.invalidate_all();
        }
        state.check_data(data.x, ctx.threads);
        let solves_before = ctx.counters.inner_solves;
        state.iterate(&data, &cfg, mu, ctx.threads, ctx.counters, hook)?;
        net_io::write_layers(net, &state.w, &state.b, "MAC")?;
        self.iters += 1;
        let (e, violations) = state.objective_and_violations_cached(&data, mu, ctx.threads)?;
        if !e.is_finite() {
            return Err(SolverError::NonFinite(format!(
                "MAC penalised objective after iteration {}",
                self.iters
            )));
        }
        let mut report = StepReport::new()
            .with_surrogate(e * data.weight())
            .with("mu", mu)
            .with(
                "inner_solves",
                (ctx.counters.inner_solves - solves_before) as f64,
            );
        for (l, v) in violations.into_iter().enumerate() {
            report = report.with(&format!("viol_{}", l + 1), v);
        }
        Ok(report)
    }

    /// The solver state as JSON (iteration count and Z; the weights are in the network).
    pub fn save_json(&self) -> serde_json::Value {
        let saved = Saved {
            iters: self.iters,
            z: self.state.as_ref().map(|s| s.z.clone()),
        };
        serde_json::to_value(saved).unwrap_or(serde_json::Value::Null)
    }

    /// Restores [`Mac::save_json`]; Z is applied at the next step.
    pub fn load_json(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let saved: Saved<T> = serde_json::from_value(v.clone())?;
        self.iters = saved.iters;
        self.state = None;
        self.pending = saved.z;
        Ok(())
    }
}

impl<T: Real> Solver<NetProblem<T>> for Mac<T> {
    fn name(&self) -> String {
        self.display_name()
    }

    /// Builds the state from a forward pass of the network (one data pass, counted).
    fn init(&mut self, problem: &mut NetProblem<T>, ctx: &mut Context) -> Result<(), SolverError> {
        self.init_parts(&problem.net, &problem.train, &problem.loss)?;
        ctx.counters.add_forward(problem.train.len());
        Ok(())
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.step_parts(&mut problem.net, &problem.train, &problem.loss, ctx)
    }

    fn save_state(&self) -> serde_json::Value {
        self.save_json()
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.load_json(v)
    }

    /// Saved Z_l must be `d_l x N` for the hidden layers l = 1..L-1.
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        crate::state_check::check_count("MAC", "iters", self.iters)?;
        let Some(z) = &self.pending else {
            return Err(SolverError::Checkpoint(
                "MAC: checkpoint has no auxiliary coordinates `z` (a checkpoint is written after init)".into(),
            ));
        };
        let widths = problem.net.mlp_view()?.widths;
        let hidden = &widths[1..widths.len().saturating_sub(1).max(1)];
        crate::state_check::check_layer_matrices("MAC", "z", z, hidden, problem.train.len())
    }
}
