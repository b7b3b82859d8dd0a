//! Certified majorization-minimization ("certified MM"): first-order directions whose
//! step sizes come from a certified upper bound of the training objective, so that
//! every full-batch step provably does not increase it, with no learning rate.
//!
//! # The bound
//!
//! Let `F` be the training objective (data term + L2 penalty, full batch), `x` the
//! current weights and `v_1..v_k` directions. `majorize::enclosure::enclose` computes a
//! degree-2 Taylor enclosure of `phi(a) = F(x + sum_i a_i v_i)` on the trust-region box
//! `B = [0, abar_1] x ... x [0, abar_k]`: the value `phi(0)`, the slopes
//! `g_i = d phi / d a_i (0)`, and an interval `[C_lo, C_hi]` (entrywise) such that for
//! every `a` in `B`, `phi(a) = phi(0) + g^T a + a^T C a` for some `C` in the interval
//! (plus a slack `s >= 0` for floating-point effects). Since `a >= 0` on `B`, every
//! monomial `a_i a_j` is nonnegative, so `a^T C a <= a^T C_hi a` even when `C_hi` is
//! indefinite (AUTOMM.md 1.4, "a derived fact"), and
//!
//! `phi(a) <= q(a) = phi(0) + g^T a + (1/2) a^T Q a + s`,  `Q = 2 C_hi`,  for all a in B.
//!
//! # SafeRate as MM on the bound (`safe-<base>`, k = 1)
//!
//! With one direction `v` (the step a first-order rule would take at learning rate 1:
//! GD, heavy ball or Adam, computed by the rules of [`crate::first_order`]), `q` is a
//! 1-D quadratic on `[0, abar]` and its minimiser is closed-form ([`boxqp::minimize_1d`]):
//! `a* = clamp(-g/Q, 0, abar)` if `Q > 0`, else the better endpoint. This is Streeter &
//! Dillon's SafeRate (AutoBound, arXiv:2212.11429 v1 ch. 5; the learning rate is the
//! minimiser of the 1-D majorant), i.e. one MM step on the ray. The step is taken only
//! when the certified bound strictly improves, `upper_bound(a*) < phi(0) - s`; otherwise
//! `a = 0`, which is trivially safe.
//!
//! # One step size per layer (`safe-layerwise`, k = number of dense layers)
//!
//! `v_l` is the base direction restricted to layer `l`'s weights and bias, so each layer
//! gets its own step size. Minimising `q` over the box is a small nonconvex box QP
//! ([`boxqp::minimize_box_qp`]): exact for `k <= max_exact_dim` by enumerating the
//! `3^k` faces (each coordinate at 0, at `abar_i`, or free with the reduced linear system
//! solved; the best feasible candidate, `a = 0` included), projected Newton beyond, which
//! only accepts decreasing iterates and so keeps `q(a) <= q(0)`.
//! (Streeter 2023, "Universal majorization-minimization algorithms", arXiv:2308.00190,
//! describes such per-tensor step sizes; AUTOMM.md marks its details unverified, and
//! this construction does not rely on them.)
//!
//! # The guarantee
//!
//! In exact arithmetic, `phi(a*) <= q(a*) <= q(0) = phi(0)`: the step does not increase
//! the objective, and decreases it whenever `q(a*) < phi(0)`. Floating point adds three
//! things, handled as follows: the enclosure rounds every interval endpoint outward and
//! carries the slack `s`, so that its `upper_bound` bounds the floating-point evaluation
//! of the objective the driver records (see `majorize::enclosure`'s doc for the
//! argument); the step sizes are rounded to `T` before the certificate is checked, and
//! the certificate is checked at exactly those values; the new weights are formed by
//! `majorize::enclosure::apply_step`, the same rounding the enclosure accounts for. The
//! driver records `data term + penalty` with its own rounding (in f32 the data term is
//! rounded to f32, the penalty summed in f64). `phi(0)` is the value the gradient pass
//! returned (`majorize::enclosure::enclose_with_value`, which saves a forward pass); the
//! enclosure's slack is computed against it, so the driver's record at the base point
//! differs from `phi(0)` by at most the slack `s`, and a step is taken only if
//! `upper_bound(a*) < phi(0) - s` strictly: then
//! `recorded F(new) <= upper_bound(a*) < phi(0) - s <= recorded F(old)`.
//!
//! What is certified: the full-batch training objective, as evaluated by the driver, in
//! f64 and f32, for the networks and losses the enclosure supports (it returns a typed
//! error naming any other layer, activation or loss). There is no mini-batch mode: a
//! bound on a mini-batch would certify only that batch's objective.
//!
//! # Trust region
//!
//! Each step size has its own `abar_i`, starting at [`CertifiedConfig::trust_region`]
//! (the main hyperparameter; default 1e-3). After a certified step, `abar_i` grows
//! (x `grow`, default 2) if `a_i >= abar_i / 2` (the step reached the edge: AutoBound's
//! rule) and shrinks (x `shrink`, default 1/2) otherwise; every `abar_i` shrinks when the
//! step was not certified or the bound was not finite (AutoBound's notebook tests
//! `safe_eta > safe_eta`, always false, so a NaN step doubled its trust region
//! (AUTOMM.md 1.4); here a NaN can only shrink it). The solver reports convergence when
//! every `abar_i` is below `min_trust_region`.
//!
//! # Cost
//!
//! One gradient (forward + backward over N samples), the base rule's update, one
//! enclosure pass over the N samples (counted as one more forward pass; its arithmetic
//! is that of a few forward passes, see docs/MAJORIZE.md for measured ratios), and a
//! k x k box QP.

pub mod boxqp;
mod config;
mod solver;

pub use config::{BaseDirection, CertifiedConfig, StepSizes};
pub use solver::CertifiedMm;
pub(crate) use solver::choose_step;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extreme;
