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
//! - **Certified hidden blocks** (`certified = true`; opt-in, see the table below):
//!   the direction is the block's MM step `D` at its structural curvature `c_l` (a scale
//!   fixed by the network, so a step size in units of it means the same from sweep to
//!   sweep). `majorize::enclosure` encloses `phi(a) = F(Wb + a D)` on a trust region
//!   `[0, abar_l]` (k = 1; `EnclosureWorkspace` + `enclose_with`, so no large buffer is
//!   allocated per call), and the step `a*` minimising the certified bound
//!   `q(a) >= phi(a)` is taken when `q(a*) < F` (the certificate of [`crate::certified`],
//!   floating point included; the new weights are formed as `fl(w + a* v)` entry by entry,
//!   exactly the rounding `enclosure::apply_step` does and the bound covers). Per block the
//!   trust region adapts as in the safe-* solvers: x2 when `a* >= abar_l / 2`, x1/2
//!   otherwise or when nothing is certified; it starts at `certified_trust_region` and is
//!   checkpointed. While a step reaches half the region, another certified step follows
//!   along the same `D`; an enclosure that certifies nothing before the first step is
//!   retried on the halved region (at most `certified_steps` enclosures per block and
//!   sweep). No backtracking
//!   trial is run; the remembered curvature becomes `c_l / sum(a*)`. When the enclosure
//!   does not apply (unsupported activation or loss) or certifies no decrease, the block
//!   takes the safeguarded backtracking path above. Trace: `path_l` (1 certified, 0
//!   safeguarded; the output layer always takes its closed-form step on the safeguarded
//!   path, where its structural bound makes the first trial succeed), `cert_steps_l`,
//!   `enclosures_l` and `trust_l` (after the update). Cost of a certified block: one
//!   solve (inner solve), one forward pass per enclosure and one forward pass from the
//!   block up (each over the N samples).
//!
//! ## Certified or safeguarded hidden blocks: objective per data pass
//!
//! `cargo run --release -p bench-suite --example block_mm_paths -- --sweeps 50` (runner
//! problems and initial weights, seed 0, f64, full batch): the best training objective
//! within a number of data passes (`epochs`), safeguarded path against the certified path
//! with at most 1 and 4 (default) enclosures per block and sweep.
//!
//! | problem (activation) | passes | safeguarded | certified, 1 enclosure | certified, <= 4 |
//! |---|---|---|---|---|
//! | digits-mlp (ReLU) | 100 | 0.0166 | 0.0671 | 0.0890 |
//! | digits-mlp (ReLU) | 200 | 0.0117 | 0.0447 | 0.0545 |
//! | digits-mlp-deep (ReLU) | 200 | 0.0221 | 0.0590 | 0.0435 |
//! | digits-mlp-deep (ReLU) | 400 | 0.0093 | 0.0416 | 0.0350 |
//! | spirals (ReLU) | 200 | 0.1755 | 0.3806 | 0.3245 |
//! | spirals (ReLU) | 400 | 0.1225 | 0.2960 | 0.2539 |
//! | digits-softplus-mse (softplus) | 100 | 0.1280 | 0.1298 | 0.1285 |
//! | digits-softplus-mse (softplus) | 200 | 0.1148 | 0.1155 | 0.1170 |
//! | teacher-student (tanh) | 200 | 0.00986 | 0.00827 | 0.00914 |
//! | teacher-student (tanh) | 400 | 0.00564 | 0.00480 | 0.00575 |
//!
//! On ReLU networks the certified path is 2-4x worse at equal data passes: its steps on
//! digits-mlp's hidden block correspond to curvatures 2e-3 to 4e-3, where backtracking
//! accepts 8e-6 to 3e-5, i.e. steps about 100x longer. The trust region is not what
//! limits it (it hovers around the step); the bound is loose: every ReLU input that
//! crosses its kink inside the trust region at distance `d` from it adds a degree-2
//! term up to `dz^2 / (4 d)` (a first-order remainder `(|dz| a - d)_+` written as
//! `Q a^2`), and with N x width inputs some `d` is always tiny. On smooth networks
//! (softplus, tanh) the certified path is as good per data pass (within 2% on
//! digits-softplus-mse, 15% better on teacher-student) but each enclosure costs several
//! forward passes of arithmetic (wall time per sweep 3-30x the safeguarded sweep). Hence
//! the safeguarded path stays the default.
//! In f32 the certificate stops holding once the decrease per sweep falls below the
//! slack (rounding): over 200 sweeps 76 of 200 hidden blocks were certified on
//! digits-mlp and 27 of 400 on spirals; the others took the safeguarded path.
//!
//! One step (sweep) visits the output layer, then the hidden layers downwards
//! ([`MmBlocks::AllLayers`]), or the output layer only ([`MmBlocks::LastLayer`]). The
//! objective never increases: every accepted block satisfies `F_new <= F`, every rejected
//! block is restored. Extras per sweep: `decreased` (1 if the objective went down),
//! `objective_start`, `rejected_blocks`, and per layer `curvature_l` (accepted or last
//! tried), `structural_l`, `trials_l`; `surrogate` is the model value of the last
//! accepted block (an upper bound on the objective after the sweep when that block was
//! the last one visited). Accounting: one forward pass over N samples per sweep start and
//! per trial, one (partial) backward pass per block.
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
