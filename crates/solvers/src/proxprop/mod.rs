//! ProxProp, proximal backpropagation (Frerix, Möllenhoff, Moeller, Cremers, ICLR 2018,
//! arXiv 1706.04638; ALGORITHMS.md section 7).
//!
//! # Method
//!
//! Backprop as usual, except at every ProxProp linear layer the explicit gradient step
//! on its parameters is replaced by an implicit one: with the layer's input batch `A`,
//! output `Z` and incoming gradient `G = d loss / d Z`, the target `Z - G` (explicit
//! unit step on Z) is fitted by the proximal problem
//! `argmin_theta (1/2)||W A + b 1^T - (Z - G)||^2 + (1/(2 tau_prox))||theta - theta_old||^2`,
//! solved exactly (Cholesky) or by N warm-started CG steps ([`LinearProx`]). The difference
//! `theta_old - theta_new` is handed to an outer optimiser as if it were a gradient
//! (SGD with lr 1 and no momentum takes exactly the proximal step; Nesterov SGD and
//! Adam are offered through the update rules of [`crate::first_order`]). The gradient
//! passed further down uses the ordinary `G` and the old weights. The output layer
//! takes a plain gradient step unless `prox_output_layer` (reference `ProxPropMLP`:
//! the last layer is a plain `nn.Linear`). Any activation works (only `h'` is used).
//!
//! Verified against the reference code (tfrerix/proxprop, ProxProp.py, models.py,
//! proxprop_pytorch.py): the prox problem and its exact/CG solution, CG warm start,
//! early stop `max residual^2 < tol^2 mean initial residual^2` with tol = 1e-2, the
//! `.grad = theta_old - theta_new` hand-off, the explicit gradient to the layer input,
//! the defaults (tau_prox 1, `prox_cg1`, batch 500, Adam lr 1e-3 or Nesterov momentum
//! 0.95). The paper's claim that the update is a descent direction (abstract, read) is
//! checked numerically in the tests: `D = G Ab^T M^{-1}` with `M` SPD, so
//! `<grad, D> = tr(G Ab^T M^{-1} Ab G^T) >= 0` layer by layer (derived).
//!
//! # Scaling note (ALGORITHMS.md 7.6)
//!
//! With a mean-reduced loss, `G` carries a factor `1/B` (B = batch size), so the
//! explicit step on Z is `1/B` per sample while the proximal term weighs the batch
//! sum: tau_prox values transfer between implementations only with the same reduction
//! and a comparable batch size. `D -> tau_prox * gradient` as `tau_prox -> 0`; for large
//! tau_prox, `D -> G Ab^T (Ab Ab^T)^{-1}`, a Gauss-Newton-like layer-wise least-squares
//! step independent of the loss scale.
//!
//! # Accounting
//!
//! Per mini-batch: one forward and one backward pass over its samples (counted as
//! such), and one inner solve per Cholesky solve or per CG step. Each CG step forms the
//! product `M P` matrix-free from the layer's input batch (`A^T P`, then `A Q`), so it
//! touches every sample of the batch again and counts one forward plus one backward
//! pass (docs/RESULTS_SCHEMA.md: inner iterations count, as the lifted network's FISTA
//! iterations); the Cholesky path's `A A^T` is formed in the layer's backward visit with
//! the gradient `G A^T` and adds none. With the defaults (1 CG step, prox on the hidden
//! layers) a batch is `2 + 2 (L - 1)` passes over its samples. (Until round 2, issue
//! #12, the CG steps were not counted.) One solver step is one epoch. `StepReport.surrogate` is `None` (ProxProp decreases no single surrogate);
//! extras report the mean batch loss, tau_prox, the outer learning rate, inner solves
//! per batch, and the ratio `<grad, D> / (||grad|| ||D||)` of the last batch.

mod config;
mod direction;
mod linear;
mod solver;

pub use config::{Outer, ProxMode, ProxPropConfig};
pub use direction::{Direction, DirectionStats, FlatLayout, LayerRule};
pub use linear::{LinearProx, ProxSolve};
pub use solver::ProxProp;

#[cfg(test)]
mod tests;
