//! The [`BetaNmf`] solver and its validated configuration.

use autodiff::Real;
use majorize::nmf::sklearn::SklearnStop;
use majorize::nmf::{self, NmfConfig, Penalties, Rule};
use serde::{Deserialize, Serialize};

use super::{NmfProblem, from_majorize};
use crate::{Context, Solver, SolverError, StepReport};

/// Configuration of [`BetaNmf`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaNmfConfig {
    /// beta of the divergence (finite; 2 Euclidean, 1 KL, 0 Itakura-Saito).
    pub beta: f64,
    /// Update rule (MM exponent gamma(beta), heuristic exponent 1, or ME).
    pub rule: Rule,
    /// Relaxation of [`Rule::Me`] for beta >= 1, `h = h_MM + theta (h_ME - h_MM)`
    /// (`majorize::nmf::NmfConfig::me_theta`; default 0.95 as in Févotte & Idier's
    /// reference implementation, 1 = the exact equalization point).
    #[serde(default = "default_me_theta")]
    pub me_theta: f64,
    /// Follow scikit-learn's `NMF(solver='mu')` exactly (MM only).
    pub sklearn_compatible: bool,
    /// L1/L2 penalties (already scaled; see `majorize::nmf::Penalties::sklearn`).
    pub penalties: Penalties,
    /// scikit-learn's stopping rule: every 10 iterations, stop when the relative decrease
    /// of `sqrt(2 D)` since the last check, divided by its initial value, is below `tol`.
    /// 0 disables it (the default; the driver's budget then ends the run).
    pub tol: f64,
}

fn default_me_theta() -> f64 {
    nmf::DEFAULT_ME_THETA
}

impl Default for BetaNmfConfig {
    fn default() -> Self {
        Self {
            beta: 2.0,
            rule: Rule::Mm,
            me_theta: nmf::DEFAULT_ME_THETA,
            sklearn_compatible: false,
            penalties: Penalties::default(),
            tol: 0.0,
        }
    }
}

impl BetaNmfConfig {
    /// Checks every field (typed errors naming the parameter).
    pub fn validate(&self) -> Result<(), SolverError> {
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(SolverError::config(
                "BetaNmf",
                "tol",
                self.tol,
                "must be >= 0 and finite",
            ));
        }
        if self.sklearn_compatible && self.rule != Rule::Mm {
            return Err(SolverError::config(
                "BetaNmf",
                "rule",
                format!("{:?}", self.rule),
                "must be Mm when sklearn_compatible is set",
            ));
        }
        self.nmf_config().validate().map_err(super::from_majorize)
    }
    pub(crate) fn nmf_config(&self) -> NmfConfig {
        NmfConfig {
            beta: self.beta,
            rule: self.rule,
            me_theta: self.me_theta,
            penalties: self.penalties,
            sklearn_compatible: self.sklearn_compatible,
        }
    }
}

/// Multiplicative-update beta-NMF (Févotte & Idier 2011; `majorize::nmf`): each step
/// updates `W` then `H`. MM and ME never increase the objective.
///
/// Accounting per step (data passes, `crate::Counters`): `forward += 2` and
/// `backward += 2`, `samples_seen += 4N` (each factor update forms `W H` over the N
/// columns and one gradient split, products with the data); the per-entry root solves
/// of ME (and of MM with `l2` for beta < 2) are not counted as inner solves.
#[derive(Clone, Debug)]
pub struct BetaNmf {
    config: BetaNmfConfig,
    stop: Option<SklearnStop>,
}

#[derive(Serialize, Deserialize)]
struct State {
    config: BetaNmfConfig,
    stop: Option<StopState>,
}

#[derive(Serialize, Deserialize)]
struct StopState {
    tol: f64,
    init: f64,
    previous: f64,
}

impl BetaNmf {
    /// A solver with a validated configuration.
    pub fn new(config: BetaNmfConfig) -> Result<Self, SolverError> {
        config.validate()?;
        Ok(Self { config, stop: None })
    }
    /// The configuration.
    pub fn config(&self) -> &BetaNmfConfig {
        &self.config
    }
    fn check_problem<T: Real>(&self, p: &NmfProblem<T>) -> Result<(), SolverError> {
        if p.beta() != self.config.beta
            || p.penalties() != self.config.penalties
            || p.sklearn_objective() != self.config.sklearn_compatible
        {
            return Err(SolverError::config(
                "BetaNmf",
                "beta/penalties/sklearn_compatible",
                format!(
                    "solver beta {} vs problem beta {}",
                    self.config.beta,
                    p.beta()
                ),
                "must match the problem's objective (build both from the same BetaNmfConfig)",
            ));
        }
        Ok(())
    }
}

impl<T: Real> Solver<NmfProblem<T>> for BetaNmf {
    fn name(&self) -> String {
        format!(
            "BetaNmf(beta={}, rule={:?}{})",
            self.config.beta,
            self.config.rule,
            if self.config.sklearn_compatible {
                ", sklearn"
            } else {
                ""
            }
        )
    }
    fn init(&mut self, problem: &mut NmfProblem<T>, _ctx: &mut Context) -> Result<(), SolverError> {
        self.check_problem(problem)?;
        if self.config.tol > 0.0 {
            self.stop = Some(SklearnStop::new(self.config.tol, problem.divergence()?));
        }
        Ok(())
    }
    fn step(
        &mut self,
        problem: &mut NmfProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.check_problem(problem)?;
        let cfg = self.config.nmf_config();
        let n = problem.v().ncols() as u64;
        let (v, w, h, ws) = problem.parts();
        nmf::iterate(v, w, h, &cfg, ws).map_err(from_majorize)?;
        // Per factor update: `W H` (a forward over the N columns) and the numerator /
        // denominator products (a backward over them): four data passes per iteration.
        ctx.counters.add_forward_n(2, n as usize);
        ctx.counters.add_backward(n as usize);
        ctx.counters.add_backward(n as usize);
        let mut report = StepReport::new();
        if self.config.tol > 0.0 && ctx.iteration.is_multiple_of(10) {
            let d = problem.divergence()?;
            if self.stop.is_none() {
                return Err(SolverError::Problem(
                    "BetaNmf: stopping rule used before init".into(),
                ));
            }
            if let Some(stop) = self.stop.as_mut()
                && stop.should_stop(ctx.iteration as usize, d)
            {
                report.converged = Some(format!(
                    "scikit-learn rule: relative decrease of sqrt(2D) below tol = {}",
                    self.config.tol
                ));
            }
        }
        Ok(report)
    }
    fn save_state(&self) -> serde_json::Value {
        let stop = self.stop.map(|s| {
            let (tol, init, previous) = s.parts();
            StopState {
                tol,
                init,
                previous,
            }
        });
        serde_json::to_value(State {
            config: self.config,
            stop,
        })
        .unwrap_or(serde_json::Value::Null)
    }
    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let s: State = serde_json::from_value(v.clone())?;
        if let Some(st) = &s.stop {
            for (field, x) in [
                ("stop.tol", st.tol),
                ("stop.init", st.init),
                ("stop.previous", st.previous),
            ] {
                crate::state_check::check_range("BetaNmf", field, x, 0.0, f64::MAX)?;
            }
        }
        if s.config != self.config {
            return Err(SolverError::Checkpoint(
                "BetaNmf: checkpoint was made with another configuration".into(),
            ));
        }
        self.stop = s
            .stop
            .map(|s| SklearnStop::from_parts(s.tol, s.init, s.previous));
        Ok(())
    }
}
