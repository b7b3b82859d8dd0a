//! Certified degree-2 Taylor enclosures of a network's training objective along a few
//! directions (issue #11): for weights `x`, directions `v_1..v_k` and a trust region
//! `B = [0, ᾱ_1] x ... x [0, ᾱ_k]`, with
//!
//! ```text
//! phi(alpha) = F(x + sum_i alpha_i v_i)       (F = data term on the given batch + L2 penalty)
//! ```
//!
//! [`enclose`] returns `phi(0)`, the one-sided derivatives at `0+` and an interval matrix
//! `[Q_lo, Q_hi]` such that for every `alpha` in `B`
//!
//! ```text
//! phi(0) + g.alpha + alpha^T Q_lo alpha - slack  <=  phi(alpha)  <=  phi(0) + g.alpha + alpha^T Q_hi alpha + slack
//! ```
//!
//! **Convention**: the degree-2 coefficient has no factor 1/2 (`phi ∈ phi(0) + g·α + αᵀ[Q]α`).
//! Since `alpha >= 0`, every monomial `alpha_i alpha_j >= 0`, so `Q_hi` gives an upper
//! bound (a majorizer on the box) even when it is indefinite.
//!
//! The full derivation (rules per primitive, the floating-point argument) is in the
//! submodules and in `docs/MAJORIZE.md`.

mod api;

pub use api::{EnclosureRequest, EnclosureSurrogate, QuadraticEnclosure, apply_step, enclose};
