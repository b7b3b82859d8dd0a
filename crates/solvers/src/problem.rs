//! What a solver works on: [`Problem`] (evaluated and checkpointed by the driver) and
//! [`Differentiable`] (what gradient methods need).

use autodiff::Real;
use serde::{Deserialize, Serialize};

use crate::SolverError;

/// A full evaluation of the current parameters, made by the driver after every step.
///
/// `objective` is the TRUE training objective (data term + any regulariser of the
/// model a user would deploy), never a surrogate or a penalised value.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Evaluation {
    /// True training objective of the current parameters.
    pub objective: f64,
    /// Training accuracy in `[0, 1]`, for classification problems.
    pub train_accuracy: Option<f64>,
    /// Objective on the test set, if there is one.
    pub test_objective: Option<f64>,
    /// Test accuracy in `[0, 1]`, if it applies.
    pub test_accuracy: Option<f64>,
}

impl Evaluation {
    /// An evaluation with only a training objective.
    pub fn objective(objective: f64) -> Self {
        Evaluation {
            objective,
            ..Default::default()
        }
    }
}

/// What a solver works on. The driver only evaluates it and checkpoints it; each solver
/// family states the extra structure it needs by bounding `P` (e.g. [`Differentiable`],
/// or a concrete problem type such as a network problem whose layers it reads).
pub trait Problem {
    /// Full evaluation of the current parameters (true objective, accuracies). Called
    /// by the driver only; not charged to the budget (no counters, no solver time).
    fn evaluate(&mut self) -> Evaluation;
    /// Number of training samples N (data passes = samples_seen / N).
    fn num_samples(&self) -> usize;
    /// The parameters as JSON, for checkpoints.
    fn save_params(&self) -> serde_json::Value;
    /// Restores parameters saved by [`Problem::save_params`].
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError>;
    /// Whether every parameter is finite (the driver's divergence check). Defaults to
    /// `true`; problems that can check cheaply should.
    fn params_finite(&self) -> bool {
        true
    }
    /// Whether `flag` is true on any rank, for a problem whose data are sharded over
    /// several processes (see [`crate::distributed`]): a collective call, made by the
    /// driver at the same point on every rank so that all ranks take the same stopping
    /// decision (a wall-time budget is reached at slightly different moments). A
    /// single-process problem returns `flag`. A failed collective counts as `true`
    /// (stop rather than hang).
    fn any_rank(&mut self, flag: bool) -> bool {
        flag
    }
}

/// A problem with flat real parameters and a (mini-batch) gradient oracle: what every
/// gradient method uses. Implemented by network problems and by the test problems of
/// [`crate::testing`].
pub trait Differentiable: Problem {
    /// The scalar type of the parameters (f32 or f64).
    type Scalar: Real;
    /// Number of parameters p.
    fn dim(&self) -> usize;
    /// Copies the current parameters into `out` (length [`Differentiable::dim`]).
    fn params(&self, out: &mut [Self::Scalar]);
    /// Sets the parameters from `p` (length `dim`; errors otherwise).
    fn set_params(&mut self, p: &[Self::Scalar]) -> Result<(), SolverError>;
    /// Objective and its gradient on the given sample indices (`None` = full batch).
    /// The mini-batch objective is the same reduction as the full objective restricted
    /// to the batch (mean over the batch for mean losses) plus the full regulariser, so
    /// its expectation over uniform batches is the full objective.
    fn value_grad(
        &mut self,
        batch: Option<&[usize]>,
        grad: &mut [Self::Scalar],
    ) -> Result<Self::Scalar, SolverError>;
}
