//! Lifted ReLU networks with the biconvex Fenchel / LPOM penalty, trained by exact block
//! coordinate descent (ALGORITHMS.md section 6, with correction 4).
//!
//! # Formulation
//!
//! For an L-layer MLP with ReLU hidden layers (`Z_l = W_l X_{l-1} + b_l 1^T`, data
//! `X_0 = X`, `d_0 x N`), the lifted variables are the hidden activations
//! `X_1, ..., X_{L-1} >= 0` (`d_l x N`), and the objective is
//!
//! ```text
//! J(W, b, X) = loss(W_L X_{L-1} + b_L 1^T, Y)
//!            + sum_{l=1}^{L-1} lambda_l s sum_ij B(W_l X_{l-1} + b_l 1^T, X_l)_ij
//!            + ((l2 + rho)/2) sum_{l=1}^{L} ||W_l||_F^2
//! B(u, x) = x^2/2 - u x + relu(u)^2/2   (x >= 0)
//! ```
//!
//! - `loss` is the problem's true loss (softmax cross-entropy, MSE or logistic; its data
//!   term with the problem's reduction), `l2` its weight penalty (weights only, never
//!   biases), `rho >= 0` an optional extra ridge;
//! - `s = loss.sample_weight(N)` (1/N for mean-reduced losses, 1 for sums), so each
//!   penalty is normalised like the loss and `lambda_l` does not depend on N;
//! - `B` is the ReLU Fenchel-Young gap `F(x) + F*(u) - u x` with `F(x) = x^2/2 + i(x >= 0)`
//!   and `F*(u) = relu(u)^2/2`: `B >= 0`, zero iff `x = relu(u)` (nets::fenchel; the
//!   Fenchel lifted networks code's `neo` penalty is `2 B`, summed over the batch). LPOM
//!   writes the same penalty as `f(X_l) + g(W X_{l-1}) + ||X_l - W X_{l-1}||^2/2` with
//!   `f, g` the integrals of `h^{-1} - id` and `h - id` (equal to B, derived and
//!   checked numerically in nets).
//! - Biases are separate variables (not folded into W), unpenalised.
//!
//! When every `X_l = relu(W_l X_{l-1} + b_l)`, J equals the true training objective
//! plus `(rho/2) sum ||W_l||^2`. The deployed network is always the current `(W, b)`.
//!
//! # Algorithm
//!
//! `J` is convex in each block: in `X_l` (quadratic + the next layer's term composed with
//! an affine map, over `X_l >= 0`) and in `(W_l, b_l)` (the convex `relu(u)^2/2 - u x`,
//! or the convex loss, composed with an affine map, plus a ridge). One step sweeps the
//! blocks from the output to the input: `(W_L, b_L)`, `X_{L-1}`, `(W_{L-1}, b_{L-1})`,
//! ..., `X_1`, `(W_1, b_1)`. Each block is minimised from its current value by
//! accelerated projected gradient with backtracking and monotone restart
//! (FISTA with restart, see [`InnerStats`]); the inner solve stops when the gradient-mapping norm drops below
//! `inner_tol` times its starting value or after `inner_max_iters` iterations. Accepted
//! iterates never increase the block objective, so J never increases across a block
//! (up to floating-point rounding), whether or not the tolerance was reached.
//! Each solve starts from half the Lipschitz estimate the block's previous solve ended
//! with (or from the estimate itself with [`LiftedConfig::warm_step`], measured worse,
//! see its doc). Initialisation: `X_l` from a forward pass of the initial network (all
//! penalties 0).
//!
//! With [`LiftedConfig::curvature_bounds`] (the default since issue #14) the inner
//! solves use the blocks' known curvature:
//! - a weights block runs FISTA in the metric `M = c [A; 1][A; 1]^T + ridge diag(1, .., 1, 0)`
//!   (`A` the layer's input, `c` the curvature bound of what follows the layer:
//!   `lambda_l s` for the ReLU penalty, whose second derivative in the pre-activation is
//!   at most 1, `s` times the loss's bound at the output), which bounds its Hessian, so
//!   the preconditioned step `[W, b] - [gW, gb] M^{-1} / L` descends for `L = 1`
//!   (module `metric`); `M` is inverted once per block solve (once per run for layer 1,
//!   whose input is the data); the step search starts at most at `L = 1`; the solve
//!   keeps the pre-activation images `V(x)`, `V(y)`, `V(xn)` and `P [A; 1]` (the block
//!   map is affine), so an iteration makes two layer-sized GEMMs and a trial none;
//! - an X block starts its step search at most at its Lipschitz bound
//!   `lambda_l s + c ||W_{l+1}||_2^2` (power-iteration estimate) instead of an estimate
//!   carried from a previous solve that can be far too large (the carried estimate
//!   only halves once per solve, and starts at 1 while the mean-reduced X blocks have
//!   curvature of order 1/N).
//!
//! Since round 4 of issue #14 ([`LiftedConfig::weights_method`], default
//! [`WeightsMethod::NewtonCg`]) the hidden weights blocks are solved by semismooth
//! Newton-CG instead (module `newton`: per-row preconditioned CG on the generalized
//! Hessian in the same metric, a per-row line search that never increases a row), and
//! every block stops after `inner_max_iters = 5` evaluations by default (inexact blocks,
//! better per data pass than 50, docs/PERFORMANCE.md "Lifted network, round 4");
//! [`LiftedConfig::round3`] is the method before.
//!
//! Backtracking and the monotone restart stay, so monotonicity never rests on a bound.
//! The stopping rule is the same: for an unconstrained (weights) block the Euclidean
//! FISTA's gradient mapping `L ||x+ - y||` is the gradient norm `||g(y)||`, which the
//! preconditioned solve tests directly.
//!
//! This is the full-batch variant of the Fenchel lifted networks BCD; their reference
//! code (beeperman/Fenchel_Lifted_Networks, read for this implementation: nn.py
//! `neo`, layers.py `X_objective` / `Wb_objective`) solves each block with L-BFGS(-B),
//! weighs the next layer's term by `lbd_coef` (= 10 in `mnist_batch.py`) in the X
//! objective only (so its sweeps are not BCD on one objective), and adds a proximal
//! term `rhod ||W - W_0||^2` towards the previous mini-batch's weights. Neither is used
//! here: one objective, exact block minimisation to tolerance. LPOM (Li, Fang, Lin,
//! AAAI 2019; abstract read: block multi-convex, updates use only the activation map,
//! non-decreasing Lipschitz activations) solves the X blocks by a fixed-point iteration
//! instead; its exact update scheme was not verified against the paper text here.
//!
//! # Accounting
//!
//! Every evaluation of a block objective touches all N samples through its layer and
//! counts as data passes (docs/RESULTS_SCHEMA.md): the value at the start of each
//! block's inner solve and at each backtracking trial is one forward pass; the
//! value-and-gradient of each inner FISTA iteration is a forward and a backward pass.
//! Every inner iteration and every backtracking trial is also counted as an inner solve.
//! (Before round 2 the start values were not counted and an iteration counted as one
//! forward pass.)
//!
//! # Memory
//!
//! Lifted activations: `N * sum_{l<L} d_l` numbers. Scratch: three pre-activation
//! buffers of the largest `d_l x N`, and the inner solver's four copies of the block
//! being solved (at most `4 N max_l d_l` or four weight matrices). With
//! `curvature_bounds`: one `(d_{l-1} + 1)^2` metric inverse per layer, a
//! `d_{l-1} x d_{l-1}` Gram scratch and two `d_l x (d_{l-1} + 1)` gradient copies.

mod blocks;
mod config;
mod inner;
mod metric;
mod newton;
mod rowops;
mod solver;
mod state;

pub use config::{LiftedConfig, WeightsMethod};
pub use inner::InnerStats;
pub use solver::Lifted;
pub use state::{BlockId, LiftedState, SweepStats, check_network};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_metric;
#[cfg(test)]
mod tests_solver;
