//! Conversions from the types of `solvers` and to the types of `nets`: the boundary
//! between the comparison's own file format (mirror types in [`crate::results`] and
//! [`crate::problems`]) and the crates that do the work.

use std::collections::BTreeMap;

use autodiff::Reduction;
use serde_json::Value;

use crate::problems::{HiddenActivation, LossSpec};
use crate::results::{RunResult, RunStatus, TraceRecord};

/// A trace record of the results file from a driver record. Duplicate extras keep the
/// last value.
pub fn trace_record(r: &solvers::Record) -> TraceRecord {
    TraceRecord {
        iteration: r.iteration,
        epochs: r.epochs,
        samples_seen: Some(r.samples_seen),
        wall_time_s: r.wall_time_s,
        objective: r.objective,
        surrogate: r.surrogate,
        train_accuracy: r.train_accuracy,
        test_objective: r.test_objective,
        test_accuracy: r.test_accuracy,
        forward: r.forward,
        backward: r.backward,
        inner_solves: r.inner_solves,
        extras: r.extras.iter().cloned().collect::<BTreeMap<_, _>>(),
    }
}

/// The results-file status of a driver status: `Converged` and `Stopped` become
/// `completed` (with the reason; a stop is prefixed `stopped: `), budget kinds become
/// `budget_exhausted` with `which` = `iterations`, `epochs`, `wall_time` or
/// `target_objective`.
pub fn run_status(s: &solvers::Status) -> RunStatus {
    use solvers::{BudgetKind, Status};
    match s {
        Status::Converged { reason } => RunStatus::Completed {
            reason: Some(reason.clone()),
        },
        Status::Stopped { reason } => RunStatus::Completed {
            reason: Some(format!("stopped: {reason}")),
        },
        Status::BudgetExhausted(kind) => RunStatus::BudgetExhausted {
            which: Some(
                match kind {
                    BudgetKind::Iterations => "iterations",
                    BudgetKind::Epochs => "epochs",
                    BudgetKind::WallTime => "wall_time",
                    BudgetKind::TargetObjective => "target_objective",
                }
                .to_string(),
            ),
        },
        Status::Diverged { reason } => RunStatus::Diverged {
            reason: reason.clone(),
        },
        Status::Failed { error } => RunStatus::Failed {
            error: error.clone(),
        },
        Status::NotApplicable { reason } => RunStatus::Skipped {
            reason: format!("not applicable: {reason}"),
        },
    }
}

/// What the runner measured around one driver run, besides the outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct RunContext {
    /// Problem name.
    pub problem: String,
    /// Seed.
    pub seed: u64,
    /// Peak extra heap bytes of the run, if measured.
    pub peak_memory_bytes: Option<u64>,
    /// Wall time of the whole run, evaluations included.
    pub total_wall_time_s: f64,
    /// Hyperparameters used.
    pub hyperparameters: BTreeMap<String, Value>,
    /// Whether they were tuned.
    pub tuned: bool,
}

/// A results-file run from a driver outcome and what the runner measured around it.
pub fn run_result(outcome: &solvers::RunOutcome, ctx: RunContext) -> RunResult {
    RunResult {
        problem: ctx.problem,
        solver: outcome.trace.solver.clone(),
        seed: ctx.seed,
        status: run_status(&outcome.status),
        trace: outcome.trace.records.iter().map(trace_record).collect(),
        peak_memory_bytes: ctx.peak_memory_bytes,
        total_wall_time_s: ctx.total_wall_time_s,
        hyperparameters: ctx.hyperparameters,
        tuned: ctx.tuned,
        tuning: None,
        trained_objective: None,
        classification: None,
    }
}

impl HiddenActivation {
    /// The `nets` activation.
    pub fn to_nets(self) -> nets::Activation {
        match self {
            HiddenActivation::Relu => nets::Activation::Relu,
            HiddenActivation::Tanh => nets::Activation::Tanh,
            HiddenActivation::Softplus => nets::Activation::Softplus,
        }
    }
}

impl LossSpec {
    /// The `nets` loss: mean over samples, with the problem's default L2 weight penalty
    /// ([`LossSpec::l2`]: 1e-4 for cross-entropy, none for squared error).
    pub fn to_nets(self) -> nets::Loss {
        self.to_nets_with(None)
    }

    /// The `nets` loss: mean over samples, with the L2 weight penalty
    /// [`LossSpec::penalty`]`(l2)` (a problem's own `l2`, else the default).
    pub fn to_nets_with(self, l2: Option<f64>) -> nets::Loss {
        let kind = match self {
            LossSpec::SoftmaxCrossEntropy => nets::LossKind::SoftmaxCrossEntropy,
            LossSpec::Mse => nets::LossKind::Mse,
        };
        nets::Loss {
            kind,
            reduction: Reduction::Mean,
            l2: self.penalty(l2),
        }
    }
}
