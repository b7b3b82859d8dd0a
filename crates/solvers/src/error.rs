//! The one error type of the crate.

/// Everything that can go wrong in a solver, a problem, the driver or a checkpoint store.
///
/// Messages name the solver or parameter and the offending value or shapes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolverError {
    /// A hyperparameter is out of its valid range (`solver`: e.g. `"Adam"`).
    #[error("invalid {solver} config: {param} = {value} {reason}")]
    InvalidConfig {
        /// Solver (or component) whose configuration is wrong.
        solver: &'static str,
        /// Name of the offending field.
        param: &'static str,
        /// The offending value, printed.
        value: String,
        /// What was expected, e.g. `"must be > 0"`.
        reason: &'static str,
    },
    /// The run budget is empty or malformed.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// A problem has no training samples or no parameters.
    #[error("empty data: {0}")]
    EmptyData(String),
    /// Two sizes that must agree do not.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was being checked.
        what: String,
        /// Expected size (or shape, printed).
        expected: String,
        /// Actual size (or shape, printed).
        got: String,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(String),
    /// A line search could not find an acceptable step.
    #[error("line search failed: {0}")]
    LineSearch(String),
    /// The problem itself failed (e.g. a network forward pass); the message is the cause.
    #[error("problem error: {0}")]
    Problem(String),
    /// Saving or restoring solver state / problem parameters / a checkpoint failed.
    #[error("checkpoint error: {0}")]
    Checkpoint(String),
    /// The solver does not support this problem (e.g. the lifted network on tanh hidden
    /// layers): not a failure of the run; a comparison reports it as skipped. The reason
    /// names the solver and what it requires.
    #[error("not applicable: {0}")]
    NotApplicable(String),
}

impl SolverError {
    /// Shorthand for [`SolverError::InvalidConfig`].
    pub fn config(
        solver: &'static str,
        param: &'static str,
        value: impl std::fmt::Display,
        reason: &'static str,
    ) -> Self {
        SolverError::InvalidConfig {
            solver,
            param,
            value: value.to_string(),
            reason,
        }
    }

    /// Shorthand for [`SolverError::ShapeMismatch`].
    pub fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        SolverError::ShapeMismatch {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

impl From<serde_json::Error> for SolverError {
    fn from(e: serde_json::Error) -> Self {
        SolverError::Checkpoint(format!("JSON: {e}"))
    }
}
