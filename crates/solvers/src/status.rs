//! How a run ended.

use serde::{Deserialize, Serialize};

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BudgetKind {
    /// The maximum number of iterations (steps).
    Iterations,
    /// The maximum number of data passes (epochs = samples_seen / N).
    Epochs,
    /// The maximum solver wall time.
    WallTime,
    /// The true objective reached the target (`objective <= target`).
    TargetObjective,
}

/// How a run ended. The trace is kept in every case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    /// The solver's own stopping test held (e.g. gradient norm below tolerance).
    Converged {
        /// The solver's reason.
        reason: String,
    },
    /// A budget ran out (or the target objective was reached).
    BudgetExhausted(BudgetKind),
    /// The divergence rule fired (see [`crate::DivergenceRule`]).
    Diverged {
        /// Which test fired, with the values.
        reason: String,
    },
    /// The solver (or a checkpoint store) returned an error.
    Failed {
        /// The error message.
        error: String,
    },
    /// An observer asked to stop (e.g. early stopping).
    Stopped {
        /// The observer's reason.
        reason: String,
    },
    /// The solver does not support the problem ([`crate::SolverError::NotApplicable`]
    /// from `init` or a step): not a failure; a comparison reports the pair as skipped.
    NotApplicable {
        /// The solver's reason (what it requires).
        reason: String,
    },
}
