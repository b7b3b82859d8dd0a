//! The [`Solver`] trait: a struct with its hyperparameters and state, and one step.

use crate::{Context, Problem, SolverError, StepReport};

/// One optimisation algorithm: a struct holding its (validated) hyperparameters and its
/// state, advanced one iteration at a time by a [`crate::Driver`], which owns the loop,
/// the budget, evaluation, observers and checkpoints.
///
/// A solver states what it needs from the problem by bounding `P`: gradient methods
/// take any `P: Differentiable`; layer-wise methods (MM, ADMM, lifted, BCD) implement
/// `Solver<NetProblem<T>>` and read the network, the loss and the whole data set
/// directly, keeping their auxiliary variables (Z_l, A_l, multipliers) in `self`.
pub trait Solver<P: Problem> {
    /// Short human-readable name, e.g. `"Adam(lr=0.001)"`.
    fn name(&self) -> String;
    /// Called once before the first step (never on resume): allocate buffers, build
    /// auxiliary variables from the initial parameters. Work done here is counted.
    fn init(&mut self, _problem: &mut P, _ctx: &mut Context) -> Result<(), SolverError> {
        Ok(())
    }
    /// One iteration (for mini-batch methods, by default one epoch of mini-batches).
    /// Must leave the problem holding the parameters the method would hand back now.
    fn step(&mut self, problem: &mut P, ctx: &mut Context) -> Result<StepReport, SolverError>;
    /// All state needed to continue bit-identically after a restore (moments, history,
    /// auxiliary variables, step counts), as JSON.
    fn save_state(&self) -> serde_json::Value;
    /// Restores state saved by [`Solver::save_state`] (the problem's parameters are
    /// restored separately by the driver).
    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError>;
}
