//! A generic MM driver over `majorize`'s traits: at the current point `y`, build the
//! surrogate `g(.|y)` ([`SurrogateBuilder::build`]), minimise it
//! ([`majorize::Surrogate::minimize`]: closed form or the generic inner solve) and move
//! there. If `g` is a majorizer, `f(x+) <= g(x+|y) <= g(y|y) = f(y)` (Hunter & Lange,
//! "A tutorial on MM algorithms", Amer. Statist. 58, 2004).
//!
//! Each step reports `surrogate = g(x+|y)` and extras `gap = g(x+|y) - f(x+)` (>= 0 for a
//! true majorizer; a negative gap exposes an invalid surrogate), `objective_anchor`,
//! `decrease = f(y) - f(x+)`, `step_norm` and `inner_iterations`.

use autodiff::Real;
use majorize::{InnerSolve, MajorizeError, MinimizerKind, Objective, Surrogate, SurrogateBuilder};
use nalgebra::DVector;
use serde::{Deserialize, Serialize};

use crate::{Context, Evaluation, Problem, Solver, SolverError, StepReport};

fn mj(e: MajorizeError) -> SolverError {
    SolverError::Problem(format!("majorize: {e}"))
}

/// An objective `f` on flat parameters, a surrogate builder for it, and the current
/// point. `evaluate` reports `f(x)` (the true objective). It counts as one "sample" for
/// data passes (one step = one pass).
#[derive(Debug, Clone)]
pub struct SurrogateProblem<T: Real, O, B> {
    /// The objective `f`.
    pub objective: O,
    /// Builds `g(.|y)` at any anchor `y`.
    pub builder: B,
    x: DVector<T>,
}

impl<T: Real, O: Objective<T>, B: SurrogateBuilder<T>> SurrogateProblem<T, O, B> {
    /// A problem started at `x0` (length `objective.dim()`, finite).
    pub fn new(objective: O, builder: B, x0: DVector<T>) -> Result<Self, SolverError> {
        if x0.len() != objective.dim() {
            return Err(SolverError::shape(
                "SurrogateProblem starting point",
                objective.dim(),
                x0.len(),
            ));
        }
        if !x0.iter().all(|v| v.finite()) {
            return Err(SolverError::NonFinite(
                "SurrogateProblem starting point".into(),
            ));
        }
        Ok(SurrogateProblem {
            objective,
            builder,
            x: x0,
        })
    }

    /// The current point.
    pub fn point(&self) -> &DVector<T> {
        &self.x
    }
}

impl<T: Real, O: Objective<T>, B: SurrogateBuilder<T>> Problem for SurrogateProblem<T, O, B> {
    fn evaluate(&mut self) -> Evaluation {
        Evaluation::objective(
            self.objective
                .value(&self.x)
                .map_or(f64::NAN, |v| v.to_f64()),
        )
    }
    fn num_samples(&self) -> usize {
        1
    }
    fn save_params(&self) -> serde_json::Value {
        serde_json::to_value(self.x.as_slice()).unwrap_or(serde_json::Value::Null)
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let x: Vec<T> = serde_json::from_value(v.clone())?;
        if x.len() != self.x.len() {
            return Err(SolverError::shape("loaded MM point", self.x.len(), x.len()));
        }
        // A number beyond the float's range (1e39 in f32) deserialises to infinity.
        crate::state_check::check_finite("SurrogateProblem", "x", &x)?;
        self.x.as_mut_slice().copy_from_slice(&x);
        Ok(())
    }
    fn params_finite(&self) -> bool {
        self.x.iter().all(|v| v.finite())
    }
}

/// Settings of [`GenericMm`]: the inner solve used when a surrogate has no closed-form
/// minimiser (defaults: majorize's `InnerSolve` defaults, tol 1e-10, 10 000 iterations),
/// and whether a step that increases `f` (possible only if the surrogate is not a
/// majorizer, or by rounding) is rejected (default true: the point stays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenericMmConfig {
    /// Relative gradient tolerance of the inner solve (> 0).
    pub inner_tol: f64,
    /// Iteration cap of the inner solve (in `1..=caps::MAX_INNER_ITERATIONS`).
    pub inner_max_iter: usize,
    /// Keep the anchor when `f(x+) > f(y)`.
    pub reject_increase: bool,
    /// Converged when `||x+ - y||_2 <= step_tol` (>= 0; default 0 = never by this test).
    pub step_tol: f64,
}

impl Default for GenericMmConfig {
    fn default() -> Self {
        let d = InnerSolve::default();
        GenericMmConfig {
            inner_tol: d.tol,
            inner_max_iter: d.max_iter,
            reject_increase: true,
            step_tol: 0.0,
        }
    }
}

impl GenericMmConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        let e = |p, v: f64, r| Err(SolverError::config("GenericMM", p, v, r));
        if !(self.inner_tol > 0.0 && self.inner_tol.is_finite()) {
            return e("inner_tol", self.inner_tol, "must be finite and > 0");
        }
        if self.inner_max_iter == 0 {
            return e("inner_max_iter", 0.0, "must be >= 1");
        }
        crate::caps::check_inner_count("GenericMM", "inner_max_iter", self.inner_max_iter)?;
        if !(self.step_tol >= 0.0 && self.step_tol.is_finite()) {
            return e("step_tol", self.step_tol, "must be finite and >= 0");
        }
        Ok(())
    }

    /// The solver, from a valid config.
    pub fn build(self) -> Result<GenericMm, SolverError> {
        self.validate()?;
        Ok(GenericMm {
            cfg: self,
            steps: 0,
        })
    }
}

/// The generic MM iteration (module doc). Counting per step: two objective values
/// (forward), one gradient in `build` (backward), one inner solve per inner iteration (or
/// one for a closed form), one data pass.
#[derive(Debug, Clone)]
pub struct GenericMm {
    cfg: GenericMmConfig,
    steps: u64,
}

impl<T, O, B> Solver<SurrogateProblem<T, O, B>> for GenericMm
where
    T: Real,
    O: Objective<T>,
    B: SurrogateBuilder<T>,
{
    fn name(&self) -> String {
        "GenericMM".into()
    }

    fn step(
        &mut self,
        p: &mut SurrogateProblem<T, O, B>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        let s = p.builder.build(&p.x).map_err(mj)?;
        let f0 = p.objective.value(&p.x).map_err(mj)?.to_f64();
        let inner = InnerSolve {
            tol: self.cfg.inner_tol,
            max_iter: self.cfg.inner_max_iter,
        };
        let m = s.minimize(&inner).map_err(mj)?;
        let iters = match m.kind {
            MinimizerKind::ClosedForm => 1,
            MinimizerKind::Inner { iterations, .. } => iterations.max(1),
        };
        if m.point.len() != p.x.len() || !m.point.iter().all(|v| v.finite()) {
            return Err(SolverError::NonFinite(
                "GenericMM: surrogate minimiser has non-finite entries or a wrong length".into(),
            ));
        }
        let g_new = s.value(&m.point).map_err(mj)?.to_f64();
        let f_new = p.objective.value(&m.point).map_err(mj)?.to_f64();
        // Surrogate build (value + gradient at the anchor) and the objective at the new
        // point, on a one-sample problem: three data passes.
        ctx.counters.add_forward_n(2, 1);
        ctx.counters.add_backward(1);
        ctx.counters.inner_solves += iters as u64;
        let step_norm = (&m.point - &p.x).norm().to_f64();
        let rejected = self.cfg.reject_increase && (f_new > f0 || f_new.is_nan());
        if !rejected {
            p.x.copy_from(&m.point);
        }
        self.steps += 1;
        let mut r = StepReport::new()
            .with_surrogate(g_new)
            .with("gap", g_new - f_new)
            .with("objective_anchor", f0)
            .with("decrease", f0 - f_new)
            .with("step_norm", step_norm)
            .with("inner_iterations", iters as f64)
            .with("rejected", if rejected { 1.0 } else { 0.0 });
        if step_norm <= self.cfg.step_tol {
            r.converged = Some(format!(
                "step norm {step_norm:e} <= {:e}",
                self.cfg.step_tol
            ));
        }
        Ok(r)
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::json!({ "steps": self.steps })
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.steps = v
            .get("steps")
            .and_then(|s| s.as_u64())
            .ok_or_else(|| SolverError::Checkpoint("GenericMM state: missing steps".into()))?;
        Ok(())
    }
}
