//! Majorization-minimization (MM) solvers: block MM and last-layer MM on MLPs
//! ([`BlockMm`]), and a generic MM driver over `majorize`'s surrogate traits
//! ([`GenericMm`] on a [`SurrogateProblem`]). ALGORITHMS.md sections 10 and 12.
//!
//! # Block MM on an MLP
//!
//! Objective `F(W) = sum_n w ell(Z_L[:, n], y_n) + (l2/2) sum_l ||W_l||_F^2` with
//! `w = 1` (sum) or `1/N` (mean), `Z_l = W_l A_{l-1} + b_l 1^T`, `A_l = h_l(Z_l)`. A block is
//! one layer's `Wb_l = [W_l b_l]`; with `Ab = [A_{l-1}; 1^T]`, `M = Ab Ab^T`, the block
//! gradient `G = Delta_l Ab^T + l2 [W_l 0]` (`Delta_l = dF/dZ_l` by backpropagation), and
//! a curvature `c > 0`, the quadratic model of the block is
//!
//! `q(D) = F(Wb) + <G, D> + (1/2) tr(D (c M + l2 P + r I) D^T)`,  `P = diag(1, .., 1, 0)`,
//!
//! minimised in closed form by `D = -G (c M + l2 P + r I)^{-1}` (Cholesky), with
//! `q(D) = F - (1/2) <G, G (c M + l2 P + r I)^{-1}>`; the ridge `r = ridge * c * tr(M)/dim`
//! only enlarges the model. The penalty is quadratic, so it enters exactly.
//!
//! - **Output layer** (`c = w beta`, certified): the data term is a loss of the linear map
//!   `Z_L = Wb Ab` and `Hess_z ell <= beta I` per sample, with `beta` = 1 (least squares;
//!   exact), 1/4 (logistic), 1/2 (softmax cross-entropy: the top eigenvalue of Böhning's
//!   `B = (1/2)(I - 1 1^T / K)`; since `1^T G = 0` for softmax, the step with `(1/2) I`
//!   equals Böhning-Lindsay's `W <- W - 2 (P - Y) A^T (A A^T)^{-1}` when l2 = 0), so
//!   `q >= F` in the block (ALGORITHMS.md 10.2-10.4) and the step is an MM step.
//! - **Hidden layer `l`**: a change `D` of the block changes `Z_l` by `D Ab` and the
//!   output by at most `prod_{k>l} Lip(h_{k-1}) ||W_k||_*` times that per sample, which
//!   suggests the structural curvature
//!   `c_l = w beta prod_{k>l} (Lip(h_{k-1}) ||W_k||_*)^2` on the Gram matrix `M`
//!   (a Gauss-Newton-type bound; multiplying by `||Ab||_*^2` instead of using `M` gives the
//!   isotropic constant of ALGORITHMS.md 10.5). It is NOT a certified majorizer: it ignores
//!   the curvature of the activations, and with ReLU the objective is only piecewise
//!   smooth in `W_l`. So hidden blocks backtrack: a trial at curvature `c` is accepted only
//!   if `F(Wb + D) <= q(D)` (and `<= F(Wb)`); otherwise `c <- increase * c`, up to
//!   `max_trials` trials (each counted as an inner solve and a forward pass); if none is
//!   accepted, the block keeps its old value. The first sweep starts at
//!   `initial_scale * c_l`; later sweeps start at `decrease * (last accepted c)`, so the
//!   curvature can shrink again and steps do not stay tiny. Spectral norms come from
//!   warm-started power iteration times a safety factor ([`spectral`]).
//! - **Certified hidden blocks** (`certified = true`, the default; `block-mm`): the
//!   direction is the block's MM step `D` at its structural curvature `c_l` (a scale
//!   fixed by the network, so a step size in units of it means the same from sweep to
//!   sweep), damped by the relative ridge `certified_ridge` (default 1, in place of
//!   `ridge`: `D = -G (c_l M + l2 P + r I)^{-1}`, `r = certified_ridge c_l tr(M)/dim`). `majorize::enclosure` encloses `phi(a) = F(Wb + a D)` on a trust region
//!   `[0, abar_l]` (k = 1; `EnclosureWorkspace` + `enclose_from_layer`, so no large buffer
//!   is allocated per call). Since `D` is zero below block `l`, the enclosure starts at
//!   the block from its kept input `A_{l-1}` (the trace; the layers below do not move),
//!   which is also where the forward pass that records the new objective starts, so
//!   the bound covers that record (issue #14); before the block's first step its base
//!   value is the recorded `F` and the trace's `Z_l` saves its first product, after a
//!   step it takes its own base value (no forward pass of `Sequential::objective`);
//!   the direction's product with the block input, `V A_{l-1} + beta`, is formed once
//!   per block (f64) and given to each of its enclosures.
//!   The step `a*` minimising the certified bound
//!   `q(a) >= phi(a)` is taken when `q(a*) < F` (the certificate of [`crate::certified`],
//!   floating point included; the new weights are formed as `fl(w + a* v)` entry by entry,
//!   exactly the rounding `enclosure::apply_step` does and the bound covers). Per block the
//!   trust region adapts as in the safe-* solvers: x2 when `a* >= abar_l / 2`, x1/2
//!   otherwise or when nothing is certified; it starts at `certified_trust_region` and is
//!   checkpointed. While a step reaches half the region, another certified step follows
//!   along the same `D`; an enclosure that certifies nothing before the first step is
//!   retried on the halved region (at most `certified_steps` enclosures per block and
//!   sweep), unless the slack alone exceeds the decrease `-g abar_l` the region allows
//!   to first order (then a smaller region cannot certify more). No backtracking
//!   trial is run; the remembered curvature becomes `c_l / sum(a*)`. When the enclosure
//!   does not apply (unsupported activation or loss) or certifies no decrease, the block
//!   takes the safeguarded backtracking path above (`certified = false`, registered as
//!   `block-mm-safeguarded`, takes it on every block). Trace: `path_l` (1 certified, 0
//!   safeguarded; the output layer always takes its closed-form step on the safeguarded
//!   path, where its structural bound makes the first trial succeed), `cert_steps_l`,
//!   `enclosures_l` and `trust_l` (after the update). With `top_block_bound` (default
//!   off), the top hidden block (ReLU under the output layer, softmax cross-entropy,
//!   f64) is certified by `majorize::enclosure::enclose_top_block`'s chord/tangent bound
//!   `value + slope a + curvature a² + slack` instead (same certificate rule, same
//!   trust region; each call counted as one forward pass, like an enclosure; `rays_l`
//!   counts them). With `lower_block_bound` (default on since session 18; off is
//!   registered as `block-mm-taylor`) the hidden ReLU blocks below the top one take
//!   `majorize::enclosure::enclose_ray_with`'s band bound the same way (anchored at the
//!   sweep's kept trace before the block's first step; `rays_l` counts them too; with
//!   `top_block_ray`, default off, registered as `block-mm-ray-top`, the top hidden block
//!   as well). A
//!   chord/tangent bound that does not apply (f32, another activation or loss) or fails
//!   gives way to the Taylor enclosure for that call; `bound_errors_l` counts the
//!   failures (errors other than "unsupported", of either kind of bound; a failed Taylor
//!   enclosure ends the block's certified steps). Cost of a certified block: one
//!   solve (inner solve), one enclosure of the layers from the block up per enclosure
//!   (counted as a forward pass) and one forward pass from the block up (each over the
//!   N samples).
//!
//! ## Certified or safeguarded hidden blocks: objective per data pass
//!
//! `cargo run --release -p bench-suite --example block_mm_paths -- --sweeps 50 --problems
//! digits-mlp,digits-mlp-deep,spirals,digits-softplus-mse,teacher-student` (runner
//! problems and initial weights, seed 0, f64, full batch): the best training objective
//! within a number of data passes (`epochs`), measured in session 9 before the ray bound
//! (every certified block on the Taylor enclosure): the safeguarded path, the certified
//! path (ridge 1, chosen on `mnist-synth-small`, in no suite), the same with ridge 0.1
//! (the best on digits-mlp), and the undamped direction (`certified_ridge = 1e-8`, the
//! previous opt-in path).
//!
//! | problem (activation) | passes | safeguarded | certified (default, ridge 1) | certified, ridge 0.1 | certified, undamped |
//! |---|---|---|---|---|---|
//! | digits-mlp (ReLU) | 100 | 0.0166 | 0.0417 | 0.0373 | 0.0672 |
//! | digits-mlp (ReLU) | 200 | 0.0117 | 0.0209 | 0.0178 | 0.0441 |
//! | digits-mlp-deep (ReLU) | 200 | 0.0221 | 0.0527 | 0.0501 | 0.0477 |
//! | digits-mlp-deep (ReLU) | 400 | 0.0093 | 0.0335 | 0.0319 | 0.0351 |
//! | spirals (ReLU) | 200 | 0.1755 | 0.2650 | 0.2425 | 0.3184 |
//! | spirals (ReLU) | 400 | 0.1225 | 0.1666 | 0.1321 | 0.2396 |
//! | digits-softplus-mse (softplus) | 100 | 0.1280 | 0.1277 | 0.1323 | 0.1285 |
//! | digits-softplus-mse (softplus) | 200 | 0.1148 | 0.1094 | 0.1160 | 0.1170 |
//! | teacher-student (tanh) | 200 | 0.00986 | 0.01046 | 0.01031 | 0.00914 |
//! | teacher-student (tanh) | 400 | 0.00564 | 0.00591 | 0.00666 | 0.00575 |
//!
//! Wall time of the 50 sweeps in the same run (load average 1-2 on 2 cores), safeguarded
//! / certified default: digits-mlp 0.49 / 2.2 s, digits-mlp-deep 2.3 / 16 s, spirals
//! 0.13 / 0.82 s, digits-softplus-mse 0.20 / 2.3 s, teacher-student 0.34 / 6.0 s.
//! (Table and times from before the enclosures started at the block, issue #14, which
//! changed the iterates by rounding only on one-hidden-layer networks and roughly
//! halved the certified sweep: docs/PERFORMANCE.md, "Certified block MM from the block".)
//!
//! Why the certified path trails on ReLU networks: along the block's direction the
//! bound's degree-2 coefficient stays nearly flat while the trust region is small, then
//! grows fast once the region reaches inputs whose range crosses a ReLU kink (each adds
//! up to `dz^2 / (4 |c0|)`, the first-order remainder `(|dz| a - |c0|)_+` written as
//! `Q a^2`). The true objective along the ray keeps decreasing well past that point
//! (measured on digits-mlp, sweep 3: the best certified decrease 0.065 at a = 4, the
//! true one 0.315 at a = 57), and backtracking finds those long steps. Damping the
//! direction (`certified_ridge`) keeps it off input directions of tiny variance that
//! move some pre-activations far, which halves the gap on digits-mlp and spirals; trust-region
//! rules (growth x4 or x16, growth to twice the bound's unconstrained minimiser, trust
//! = twice the last step) and more enclosures per block (1, 2, 8) changed the result by
//! about +-10% only. On smooth networks (softplus, tanh) the paths are on par. Each
//! enclosure costs several forward passes of arithmetic, so a certified sweep takes
//! several times the wall time of a safeguarded one.
//! In f32 the certificate stops holding once the decrease per sweep falls below the
//! slack (rounding); those blocks take the safeguarded path (monotone throughout,
//! `bench-suite/tests/certified.rs`).
//!
//! One step (sweep) visits the output layer, then the hidden layers downwards
//! ([`MmBlocks::AllLayers`]), or the output layer only ([`MmBlocks::LastLayer`]). The
//! objective never increases: every accepted block satisfies `F_new <= F`, every rejected
//! block is restored. Extras per sweep: `decreased` (1 if the objective went down),
//! `objective_start`, `rejected_blocks`, and per layer `curvature_l` (accepted or last
//! tried), `structural_l`, `trials_l`; `surrogate` is the model value of the last
//! accepted block (an upper bound on the objective after the sweep when that block was
//! the last one visited). Accounting: one forward pass over N samples per sweep start and
//! per trial, one (partial) backward pass per block. The sweep start's forward pass is
//! the trace the previous sweep left when the weights, the inputs (by content), the loss
//! and the targets are unchanged (issue #14; bit for bit the recomputed one, counted
//! alike); the safeguarded path forms the
//! hidden layers' Gram matrices as half products (`gram_sym`, rounding-level changes).
//! The certified path keeps the full GEMM, whose rounding its trust-region decisions
//! were found to depend on.
//!
//! Memory: the forward trace and a trial trace (`2 N sum_l d_l` numbers), a copy of `X`,
//! one `Delta_l` per layer, and `O(d_{l-1}^2 + d_l d_{l-1})` per layer for the solves.
//!
//! The last-layer problem is convex: last-layer MM converges to its minimiser (Böhning's
//! fixed-Hessian Newton converges linearly).

pub mod block;
mod certified_block;
pub mod config;
pub mod generic;
pub mod spectral;
mod workspace;

pub use block::BlockMm;
pub use config::{BlockMmConfig, MmBlocks};
pub use generic::{GenericMm, GenericMmConfig, SurrogateProblem};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_certified;
#[cfg(test)]
pub(crate) mod tests_extreme;
#[cfg(test)]
mod tests_ray_wiring;
