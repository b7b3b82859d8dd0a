//! # solvers
//!
//! One solver interface for every algorithm family of strata (gradient baselines,
//! majorization-minimization, ADMM, lifted / penalty / block-coordinate methods), a
//! [`Driver`] that owns the loop, and fair accounting of every run.
//!
//! ## The pieces
//!
//! * [`Problem`]: what the driver needs: [`Problem::evaluate`] (the TRUE training
//!   objective of the current parameters, accuracies, test metrics; never charged to
//!   the budget), the number of samples, and parameters as JSON for checkpoints.
//!   [`Differentiable`] adds flat parameters and a (mini-batch) gradient oracle, which
//!   every gradient method uses. [`NetProblem`] is a network + loss + data sets;
//!   [`testing`] has a ridge least-squares problem and L2 logistic regression.
//! * [`Solver`]: a struct holding validated hyperparameters and state, with `init`
//!   (once, never on resume), `step` (one iteration; one epoch for mini-batch methods),
//!   and `save_state` / `load_state`. A solver states what it needs by bounding `P`:
//!   gradient methods take any `P: Differentiable`; layer-wise methods implement
//!   `Solver<NetProblem<T>>` and read the network's layers, the loss and the whole data
//!   set directly, keeping auxiliary variables (Z_l, A_l, multipliers, rho) in `self`.
//! * [`Context`]: the run's only RNG, the [`Counters`] the solver increments (samples
//!   seen = data passes, forward and backward passes, inner solves: linear systems,
//!   prox maps, line-search trials, inner MM loops), the iteration, the thread count.
//! * [`StepReport`]: what a step reports beside the true objective: the surrogate /
//!   penalised / augmented value it actually decreases, named extras (residuals, rho,
//!   step sizes), and an optional convergence reason.
//! * [`Driver`]: budget ([`Budget`]: iterations, epochs, solver wall time, target
//!   objective), [`Observer`]s attached at a [`Frequency`], the [`DivergenceRule`]
//!   (NaN/Inf, or objective > [`DEFAULT_BLOWUP_FACTOR`] `|f_0|` = 10 `|f_0|` by
//!   default), the [`EvalCadence`] (evaluate after every step, or on a grid of data
//!   passes), checkpoints through a
//!   [`CheckpointStore`] ([`MemoryStore`], [`FileStore`]; format [`CheckpointV1`]) with
//!   bit-identical resume. It records a [`Record`] per iteration, iteration 0 included,
//!   into a [`Trace`] (serde JSON), and ends with a [`Status`].
//! * Methods: [`first_order`] (one [`first_order::FirstOrder`] solver over optax-style
//!   [`first_order::Update`] rules: GD/SGD with heavy-ball or Nesterov momentum, Adam,
//!   AdamW, RMSProp, Adagrad, with [`first_order::Schedule`]s), [`lbfgs`] (full-batch
//!   L-BFGS with a strong-Wolfe line search), [`inna`] and [`step_tuned`]; structured
//!   methods: [`nmf`] (beta-NMF MM / heuristic / ME), [`mm`] (last-layer and block MM
//!   for MLPs, generic MM over `majorize`'s traits), [`agd`], [`admm`] (Taylor et al.,
//!   dlADMM), [`bcd`] (proximal block coordinate descent), [`mac`] (auxiliary
//!   coordinates), [`lifted`] (Fenchel / LPOM penalty) and [`proxprop`]; certified MM:
//!   [`certified`] (`safe-gd`, `safe-heavy-ball`, `safe-adam`, `safe-layerwise`: step
//!   sizes minimising a certified Taylor-enclosure bound of the objective, so every
//!   full-batch step provably does not increase it).
//! * Data-parallel training over ranks (docs/DISTRIBUTED.md): [`comm`] (the `Comm`
//!   trait: `LocalComm`, `ThreadComm`, and `MpiComm` behind the cargo feature `mpi`;
//!   sums over ranks in rank order) and [`distributed`] (sharded problems and the
//!   distributed solvers).
//! * Hostile input: [`caps`] (inner-loop count caps of solver configs) and
//!   [`state_check`] (checkpoint validation before a resume).
//!
//! Fair accounting: the driver times only `init` and `step` (evaluation and
//! checkpoints excluded), evaluates every iterate on the full training set with the
//! true objective, and records the counters after every step; same seed and thread
//! count give a bit-identical trace apart from wall times.
//!
//! This crate never depends on `bench-suite`, and does no file I/O except in
//! [`FileStore`] (and in observers the caller gives a writer to).
//!
//! ## Writing a new solver
//!
//! A solver is a struct and one trait impl. Here, gradient descent with a fixed step
//! on any differentiable problem, with its hyperparameter validated once:
//!
//! ```
//! use solvers::testing::LeastSquares;
//! use solvers::{Budget, Context, Differentiable, Driver, Solver, SolverError, Status, StepReport};
//!
//! struct FixedStep { step: f64, x: Vec<f64>, g: Vec<f64> }
//!
//! impl FixedStep {
//!     fn new(step: f64) -> Result<Self, SolverError> {
//!         if !(step > 0.0 && step.is_finite()) {
//!             return Err(SolverError::config("FixedStep", "step", step, "must be finite and > 0"));
//!         }
//!         Ok(FixedStep { step, x: Vec::new(), g: Vec::new() })
//!     }
//! }
//!
//! impl<P: Differentiable<Scalar = f64>> Solver<P> for FixedStep {
//!     fn name(&self) -> String { format!("FixedStep({})", self.step) }
//!     fn step(&mut self, p: &mut P, ctx: &mut Context) -> Result<StepReport, SolverError> {
//!         self.x.resize(p.dim(), 0.0);
//!         self.g.resize(p.dim(), 0.0);
//!         p.params(&mut self.x);
//!         p.value_grad(None, &mut self.g)?;           // full batch
//!         ctx.counters.add_value_grad(p.num_samples()); // fair accounting
//!         for (x, g) in self.x.iter_mut().zip(&self.g) { *x -= self.step * g; }
//!         p.set_params(&self.x)?;
//!         let gnorm = self.g.iter().map(|v| v * v).sum::<f64>().sqrt();
//!         Ok(StepReport::new().with("grad_norm", gnorm))
//!     }
//!     fn save_state(&self) -> serde_json::Value { serde_json::Value::Null } // stateless
//!     fn load_state(&mut self, _: &serde_json::Value) -> Result<(), SolverError> { Ok(()) }
//! }
//!
//! let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
//! let mut problem = LeastSquares::<f64>::random(5, 50, 0.1, &mut rng)?;
//! let out = Driver::new(Budget::iterations(200)).seed(0).run(&mut problem, &mut FixedStep::new(0.3)?)?;
//! assert_eq!(out.status, Status::BudgetExhausted(solvers::BudgetKind::Iterations));
//! let (first, last) = (&out.trace.records[0], out.trace.last().unwrap());
//! assert!(last.objective < 0.5 * first.objective);
//! assert_eq!((last.epochs, last.forward), (400.0, 200)); // a gradient = 2 data passes
//! assert_eq!(FixedStep::new(0.0).err().unwrap().to_string(),
//!            "invalid FixedStep config: step = 0 must be finite and > 0");
//! # Ok::<(), SolverError>(())
//! ```
//!
//! The built-in methods come from validated configs, e.g.
//! `solvers::first_order::AdamConfig::default().build::<f32>()?` (PyTorch defaults) or
//! `solvers::lbfgs::LbfgsConfig::default().build::<f64>()?`.
#![warn(missing_docs)]

pub mod admm;
pub mod agd;
mod batch;
pub mod bcd;
pub mod caps;
pub mod certified;
pub mod checkpoint;
pub mod comm;
mod context;
pub mod distributed;
mod driver;
mod error;
mod eval_cadence;
pub mod first_order;
pub mod inna;
pub mod lbfgs;
pub mod lifted;
mod linalg;
pub mod mac;
pub mod mm;
mod net_problem;
pub mod nmf;
pub mod observer;
mod problem;
pub mod proxprop;
mod solver;
pub mod state_check;
mod status;
pub mod step_tuned;
pub mod testing;
mod trace;

pub use batch::{BatchSampler, Batching};
pub use checkpoint::{CheckpointStore, CheckpointV1, FileStore, MemoryStore};
pub use context::{Context, Counters, StepReport};
pub use driver::{Budget, DEFAULT_BLOWUP_FACTOR, DivergenceRule, Driver, RunOutcome};
pub use error::SolverError;
pub use eval_cadence::EvalCadence;
pub use net_problem::NetProblem;
pub use nets::MAX_ACTIVATION_BYTES;
pub use observer::{Control, Frequency, Observer};
pub use problem::{Differentiable, Evaluation, Problem};
pub use solver::Solver;
pub use status::{BudgetKind, Status};
pub use trace::{Record, Trace};

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
