//! Data-parallel training over a communicator ([`crate::comm`]): problems whose
//! training samples are sharded over ranks, and the solvers that run on them.
//!
//! | solver | how it runs distributed | communicated per iteration |
//! |---|---|---|
//! | every gradient method ([`crate::first_order`], [`crate::lbfgs`], INNA, Step-Tuned) | unchanged: they only need [`crate::Differentiable`], which [`ShardedNetProblem`] implements with gradients summed over ranks | `p + 1` values per gradient (p parameters) |
//! | Taylor ADMM ([`DistributedTaylorAdmm`]) | `Z_l`, `A_l` and the multiplier stay with their samples; the W-step's Gram sums `A A^T` and `Z A^T` are added over ranks | `sum_l d_l (d_{l-1} + 1) + (d_{l-1} + 1)^2` |
//! | dlADMM ([`DistributedDlAdmm`]) | `Z_l`, `A_l`, `U` stay with their samples; the W-step's `R A^T` and curvature piece, the b-step's row sums and the backtracking / stopping scalars are added over ranks | `sum_l d_l (d_{l-1} + 1)` per W/b pass plus `d_{l-1}^2` for wide layers, and a few scalars per A-step and output iterate (docs/DISTRIBUTED.md) |
//! | beta-NMF MM / heuristic / ME ([`DistributedBetaNmf`]) | `H` columns stay with their `V` columns; the `W` update's numerator and denominator are added over ranks | `2 F K` |
//!
//! Every other solver takes a whole [`crate::NetProblem`] and cannot run on a sharded
//! problem (the type system refuses it; the runner reports a typed error naming it).
//!
//! Reproducibility: every reduction is [`crate::comm::allreduce_sum`] (fixed rank order),
//! so a fixed number of ranks gives bit-identical runs; the traces for different rank
//! counts agree up to the rounding of the sums (tests: 1e-9 relative after K
//! iterations, `tests/distributed.rs`).

mod admm;
mod dladmm;
mod net;
mod nmf;
#[cfg(test)]
mod tests_data;

pub use admm::DistributedTaylorAdmm;
pub use dladmm::DistributedDlAdmm;
pub use net::ShardedNetProblem;
pub use nmf::{DistributedBetaNmf, ShardedNmfProblem};
