//! What the driver hands to every step: RNG, counters, iteration; and what a step hands
//! back.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Work done so far, incremented by the solvers themselves (fair accounting).
///
/// Evaluations made by the driver are never counted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Training samples touched (data passes = `samples_seen / N`). A full-batch
    /// gradient adds N; a mini-batch gradient adds its batch size.
    pub samples_seen: u64,
    /// Forward passes (function evaluations), one per batch evaluated.
    pub forward: u64,
    /// Backward passes (gradient evaluations), one per batch.
    pub backward: u64,
    /// Inner solves: linear systems, prox maps, line-search trials, inner MM loops.
    pub inner_solves: u64,
}

impl Counters {
    /// Records one forward + backward pass over `samples` samples.
    pub fn add_value_grad(&mut self, samples: usize) {
        self.samples_seen += samples as u64;
        self.forward += 1;
        self.backward += 1;
    }
}

/// Everything a step may use besides the problem: the run's only RNG (seeded by the
/// driver, checkpointed), the counters to increment, the index of the iteration being
/// computed (1 for the first step) and the thread count of the run.
pub struct Context<'a> {
    /// The run's RNG (all randomness of a run comes from here).
    pub rng: &'a mut ChaCha8Rng,
    /// Accounting to increment.
    pub counters: &'a mut Counters,
    /// Index of the iteration being computed (1-based; 0 during `init`).
    pub iteration: u64,
    /// Threads the solver may use (1 = sequential).
    pub threads: usize,
}

/// What one step reports besides the driver's own evaluation of the true objective.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepReport {
    /// Surrogate / penalised / augmented-Lagrangian value the method actually decreases
    /// (None for plain gradient methods).
    pub surrogate: Option<f64>,
    /// Named method-specific quantities: residuals, penalty parameter rho, step size,
    /// gradient norm, inner iteration counts, ...
    pub extras: Vec<(String, f64)>,
    /// `Some(reason)` if the solver's own stopping test holds (the driver then stops
    /// with [`crate::Status::Converged`]).
    pub converged: Option<String>,
}

impl StepReport {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named extra (builder style).
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.extras.push((name.to_string(), value));
        self
    }

    /// Sets the surrogate value (builder style).
    pub fn with_surrogate(mut self, value: f64) -> Self {
        self.surrogate = Some(value);
        self
    }
}
