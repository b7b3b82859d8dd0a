//! # solvers
//!
//! One solver interface for every algorithm family (gradient baselines, MM, ADMM,
//! lifted/penalty/block-coordinate methods), a driver that owns the loop, and fair
//! accounting of every run.
//!
//! This crate does no file I/O except through checkpoint and observer implementations
//! that a caller attaches, and must never depend on `bench-suite`.

mod batch;
pub mod bcd;
pub mod checkpoint;
mod context;
mod driver;
mod error;
pub mod first_order;
pub mod mac;
pub mod observer;
mod problem;
mod solver;
mod status;
pub mod testing;
mod trace;

pub use batch::{BatchSampler, Batching};
pub use checkpoint::{CheckpointStore, CheckpointV1, FileStore, MemoryStore};
pub use context::{Context, Counters, StepReport};
pub use driver::{Budget, DivergenceRule, Driver, RunOutcome};
pub use error::SolverError;
pub use observer::{Control, Frequency, Observer};
pub use problem::{Differentiable, Evaluation, Problem};
pub use solver::Solver;
pub use status::{BudgetKind, Status};
pub use trace::{Record, Trace};
