//! Data-parallel training over a communicator ([`crate::comm`]): problems whose
//! training samples are sharded over ranks, and the solvers that run on them.
//!
//! | solver | how it runs distributed | communicated per iteration |
//! |---|---|---|
//! | every gradient method ([`crate::first_order`], [`crate::lbfgs`], INNA, Step-Tuned) | unchanged: they only need [`crate::Differentiable`], which [`ShardedNetProblem`] implements with gradients summed over ranks | `p + 1` values per gradient (p parameters) |
//! | Taylor ADMM ([`DistributedTaylorAdmm`]) | `Z_l`, `A_l` and the multiplier stay with their samples; the W-step's Gram sums `A A^T` and `Z A^T` are added over ranks | `sum_l d_l (d_{l-1} + 1) + (d_{l-1} + 1)^2` |
//! | beta-NMF MM / heuristic / ME ([`DistributedBetaNmf`]) | `H` columns stay with their `V` columns; the `W` update's numerator and denominator are added over ranks | `2 F K` |
//!
//! Every other solver takes a whole [`crate::NetProblem`] and cannot run on a sharded
//! problem (the type system refuses it; the runner reports a typed error naming it).
//! dlADMM: its W and b steps are backtracked quadratic majorizations whose sums over
//! samples could be reduced the same way, but each backtracking trial evaluates the
//! objective over all samples, so a distributed dlADMM needs one reduction per trial
//! (global) on top of the per-layer gradient sums; it is not distributed yet.
//!
//! Reproducibility: every reduction is [`crate::comm::allreduce_sum`] (fixed rank order),
//! so a fixed number of ranks gives bit-identical runs; the traces for different rank
//! counts agree up to the rounding of the sums (tests: 1e-9 relative after K
//! iterations, `tests/distributed.rs`).

mod admm;
mod net;
mod nmf;

pub use admm::DistributedTaylorAdmm;
pub use net::ShardedNetProblem;
pub use nmf::{DistributedBetaNmf, ShardedNmfProblem};
