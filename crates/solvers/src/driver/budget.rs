//! The [`Driver`](super::Driver)'s stopping rules: the resource [`Budget`] and the
//! [`DivergenceRule`] that declares a run diverged.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SolverError;

/// When a run stops for lack of resources. Every limit that is set applies; the first
/// one reached ends the run. At least one of iterations, epochs or time must be set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Budget {
    /// Maximum number of steps.
    pub max_iterations: Option<u64>,
    /// Maximum number of data passes (samples_seen / N), checked before each step.
    pub max_epochs: Option<f64>,
    /// Maximum cumulative solver wall time (evaluation excluded), checked before each
    /// step.
    pub max_time: Option<Duration>,
    /// Stop as soon as the true training objective is `<= target`.
    pub target_objective: Option<f64>,
}

impl Budget {
    /// At most `n` iterations.
    pub fn iterations(n: u64) -> Self {
        Budget {
            max_iterations: Some(n),
            ..Default::default()
        }
    }
    /// At most `e` data passes.
    pub fn epochs(e: f64) -> Self {
        Budget {
            max_epochs: Some(e),
            ..Default::default()
        }
    }
    /// At most `t` of solver wall time.
    pub fn time(t: Duration) -> Self {
        Budget {
            max_time: Some(t),
            ..Default::default()
        }
    }
    /// Adds a target objective.
    pub fn with_target(mut self, target: f64) -> Self {
        self.target_objective = Some(target);
        self
    }
    /// Adds an iteration limit.
    pub fn with_iterations(mut self, n: u64) -> Self {
        self.max_iterations = Some(n);
        self
    }
    /// Adds an epoch limit.
    pub fn with_epochs(mut self, e: f64) -> Self {
        self.max_epochs = Some(e);
        self
    }
    /// Adds a wall-time limit.
    pub fn with_time(mut self, t: Duration) -> Self {
        self.max_time = Some(t);
        self
    }

    /// Checks the budget: something must bound the run; limits must be positive.
    pub fn validate(&self) -> Result<(), SolverError> {
        let bad = |m: String| Err(SolverError::InvalidBudget(m));
        if self.max_iterations.is_none() && self.max_epochs.is_none() && self.max_time.is_none() {
            return bad("set at least one of max_iterations, max_epochs, max_time".into());
        }
        if self.max_iterations == Some(0) {
            return bad("max_iterations = 0 must be >= 1".into());
        }
        if let Some(e) = self.max_epochs
            && !(e > 0.0 && e.is_finite())
        {
            return bad(format!("max_epochs = {e} must be finite and > 0"));
        }
        if self.max_time == Some(Duration::ZERO) {
            return bad("max_time = 0 must be > 0".into());
        }
        if let Some(t) = self.target_objective
            && t.is_nan()
        {
            return bad("target_objective is NaN".into());
        }
        Ok(())
    }
}

/// When a run counts as diverged (documented setting of the driver).
///
/// After every step (and at iteration 0) the run stops with [`crate::Status::Diverged`] if the
/// true objective is NaN or infinite, or if `objective > blowup_factor * |f_0|` with
/// `f_0` the objective at iteration 0 (a run that rises to ten times its starting value
/// has diverged, whatever its budget), or (when `check_params`) if
/// [`crate::Problem::params_finite`] is false. Default: `blowup_factor = 10`,
/// `check_params = true`. (Until round 2 the limit was `1e3 * max(|f_0|, 1)`, which let
/// MAC on spirals rise from 1.22 to 262 and end with a budget status.) With `f_0 = 0`
/// any positive objective fires. At iteration 0 the driver's reason adds "at the initial
/// point (iteration 0, before any step)": the data or the initial weights give no finite
/// objective, and no step has run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DivergenceRule {
    /// Blow-up factor relative to `|f_0|`; `f64::INFINITY` disables the test.
    pub blowup_factor: f64,
    /// Also check the parameters for NaN/Inf.
    pub check_params: bool,
}

/// The default [`DivergenceRule::blowup_factor`]: 10 (issue #12: "a run whose objective
/// rises 10x above its starting value is diverged").
pub const DEFAULT_BLOWUP_FACTOR: f64 = 10.0;

impl Default for DivergenceRule {
    fn default() -> Self {
        DivergenceRule {
            blowup_factor: DEFAULT_BLOWUP_FACTOR,
            check_params: true,
        }
    }
}

impl DivergenceRule {
    /// `Some(reason)` if the rule fires.
    pub fn check(&self, objective: f64, initial: f64, params_finite: bool) -> Option<String> {
        if !objective.is_finite() {
            return Some(format!("objective is {objective}"));
        }
        if self.check_params && !params_finite {
            return Some("parameters contain NaN or Inf".into());
        }
        let limit = self.blowup_factor * initial.abs();
        if objective > limit {
            return Some(format!(
                "objective {objective:.6e} > {} * |f_0| = {limit:.6e}",
                self.blowup_factor
            ));
        }
        None
    }
}
