//! Certified degree-2 Taylor enclosures of a network's training objective along a few
//! directions (issue #11): for weights `x`, directions `v_1..v_k` and a trust region
//! `B = [0, ᾱ_1] x ... x [0, ᾱ_k]`, with
//!
//! ```text
//! phi(alpha) = F(x + sum_i alpha_i v_i)       (F = data term on the given batch + L2 penalty)
//! ```
//!
//! [`enclose`] returns `phi(0)`, the one-sided derivatives at `0+` and an interval matrix
//! `[Q_lo, Q_hi]` such that for every `alpha` in `B`, `alpha != 0`,
//!
//! ```text
//! phi(0) + g.alpha + alpha^T Q_lo alpha - slack  <=  phi(alpha)  <=  phi(0) + g.alpha + alpha^T Q_hi alpha + slack
//! ```
//!
//! **Convention**: the degree-2 coefficient has no factor 1/2 (`phi ∈ phi(0) + g·α + αᵀ[Q]α`).
//! Since `alpha >= 0`, every monomial `alpha_i alpha_j >= 0`, so `Q_hi` gives an upper
//! bound (a majorizer on the box) even when it is indefinite.
//!
//! **How** (interval Taylor arithmetic in the style of AutoBound, Streeter & Dillon,
//! arXiv:2212.11429 §3, with the sharp 1-D rules of arXiv:2308.00679): every intermediate
//! matrix carries, per sample and unit, a value, k first-order coefficients and k x k
//! interval second-order coefficients (`model`); dense layers are bilinear in weights
//! and activations and propagate with GEMMs, folding degree 3 into degree 2 with the box;
//! activations use 1-D remainder enclosures on the range of their input (`activation`,
//! `elementwise`); the losses close the chain (`loss`). Samples are independent until
//! the loss sums them, so the sweep (`sweep`) runs the models block by block of samples,
//! which keeps each block's buffers in cache, and adds the blocks' sums outward-rounded.
//!
//! **Floating point** (`fp`): the bound holds for what the driver computes, not only in
//! exact arithmetic. (a) Every interval endpoint of the enclosure's own arithmetic is
//! rounded outward; GEMM results get the a-priori bound `γ_n |A||B|`. (b) The weights
//! written by [`apply_step`] are `fl(w + Σ α_i v_i)`, off by at most
//! `γ_{2k+2}(|w| + Σ ᾱ_i |v_i|)`; this perturbation enters every layer's degree-0 radius.
//! (c) The driver's own evaluation of `F` (nets' `predict` + `Loss::value` + penalty, in
//! `T`) is bounded a priori operation by operation (GEMM `γ_{n+1}`, libm functions
//! within `fp::LIBM_ULPS` roundoffs, sums in f64, final roundings to `T`) and added to
//! the same radius. Each model's invariant is that it contains both the exact value and
//! the driver's floating-point value of every intermediate, for every α in the box, so
//! (a)-(c) compose layer by layer. The remaining degree-0 radius becomes `slack`.
//! With one direction (`k = 1`) the elementwise steps and the MSE loss run on scalars
//! (`scalar1`) with the general rules' operations in the same order, so the bounds are the
//! same bit for bit (tests/fast.rs compares both paths). The `k = 1` softmax
//! cross-entropy (`loss1`) is computed in plain `f64` per sample (`ce_plain`), with one
//! a-priori rounding-error term per output coefficient from the standard model
//! `fl(a op b) = (a op b)(1 + δ)` instead of outward rounding per operation; its module
//! doc gives that argument, and samples outside its guard take the interval path.
//! [`enclose_from_layer`] starts the sweep at a dense layer from the caller's activation
//! when the directions are zero below it (block MM's per-layer directions), which
//! certifies the objective as computed from that activation (`from_layer`).
//! docs/MAJORIZE.md gives the full argument and what is not certified.

// Loops over the k directions index several parallel arrays (coefficients, box, models).
#![allow(clippy::needless_range_loop)]

pub(crate) mod activation;
mod api;
mod apply;
mod ce_block;
mod ce_plain;
mod degree0;
pub(crate) mod elementwise;
mod expo;
pub use expo::{EXP_ULPS, exp_nonpos};
mod extreme;
pub(crate) mod fp;
mod from_layer;
pub use from_layer::{FromLayer, enclose_from_layer};
pub(crate) mod loss;
mod loss1;
pub(crate) mod model;
pub(crate) mod ray;
pub(crate) mod relu1;
pub(crate) mod scalar1;
mod sparse;
mod sweep;
pub(crate) mod top_block;
pub use ray::{RayWorkspace, enclose_ray, enclose_ray_with};
pub use top_block::{RayBound, TopBlockWorkspace, enclose_top_block};
#[cfg(test)]
mod tests;
mod workspace;

pub use api::{
    EnclosureRequest, EnclosureSurrogate, QuadraticEnclosure, enclose, enclose_with,
    enclose_with_value, enclose_with_value_first,
};
pub use apply::apply_step;
pub use workspace::EnclosureWorkspace;

/// `x` as a `Y` when `X` is `Y` (e.g. a `DMatrix<T>` as a `DMatrix<f64>` when `T = f64`):
/// the one downcast behind the f64-only fast paths and bounds of this module.
fn downcast<X: 'static, Y: 'static>(x: &X) -> Option<&Y> {
    (x as &dyn std::any::Any).downcast_ref::<Y>()
}
