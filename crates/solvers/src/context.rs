//! What the driver hands to every step: RNG, counters, iteration; and what a step hands
//! back.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Work done so far, incremented by the solvers themselves (fair accounting).
///
/// **The unit, a data pass** (docs/RESULTS_SCHEMA.md): one evaluation that touches every
/// training sample once, forward or backward. Every forward-type evaluation over a batch
/// `B` (a network forward pass, a line-search or backtracking trial, a MAC Z-step trial,
/// one inner FISTA iteration of a lifted block, the initial forward of a lifted / BCD /
/// MAC state) adds `|B|` to `samples_seen` and 1 to `forward`; every backward pass adds
/// `|B|` and 1 to `backward`. A value-and-gradient evaluation is therefore two passes.
/// Passes through part of the network (one layer, one block) count as whole passes.
/// Data passes = `samples_seen / N`; for a full-batch solver
/// `samples_seen = N (forward + backward)` at every record. Work done in `init` is
/// counted (it shows in the iteration-0 record). Evaluations made by the driver (and
/// values computed only for the step report) are never counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Training samples touched, one count per forward and per backward evaluation
    /// (data passes = `samples_seen / N`). A full-batch gradient (forward + backward)
    /// adds 2N; a mini-batch gradient twice its batch size.
    pub samples_seen: u64,
    /// Forward passes (function evaluations), one per batch evaluated.
    pub forward: u64,
    /// Backward passes (gradient evaluations), one per batch.
    pub backward: u64,
    /// Inner solves: linear systems, prox maps, line-search trials, inner MM loops.
    pub inner_solves: u64,
}

impl Counters {
    /// Records one forward + one backward pass over `samples` samples (two data passes
    /// when `samples = N`).
    pub fn add_value_grad(&mut self, samples: usize) {
        self.add_forward(samples);
        self.add_backward(samples);
    }

    /// Records `count` value-and-gradient evaluations (a forward and a backward pass
    /// each), each over `samples` samples.
    pub fn add_value_grad_n(&mut self, count: u64, samples: usize) {
        self.add_forward_n(count, samples);
        self.samples_seen += count * samples as u64;
        self.backward += count;
    }

    /// Records `count` forward-type evaluations, each over `samples` samples.
    pub fn add_forward_n(&mut self, count: u64, samples: usize) {
        self.samples_seen += count * samples as u64;
        self.forward += count;
    }

    /// Records one forward-type evaluation over `samples` samples.
    pub fn add_forward(&mut self, samples: usize) {
        self.add_forward_n(1, samples);
    }

    /// Records one backward pass over `samples` samples.
    pub fn add_backward(&mut self, samples: usize) {
        self.samples_seen += samples as u64;
        self.backward += 1;
    }

    /// Data passes so far for a training set of `n` samples: `samples_seen / n`.
    pub fn data_passes(&self, n: usize) -> f64 {
        self.samples_seen as f64 / n.max(1) as f64
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
