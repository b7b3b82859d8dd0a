//! Configuration of the network MM solvers ([`BlockMmConfig`]) and its validation.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::block::BlockMm;
use crate::SolverError;

/// Which blocks one sweep visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MmBlocks {
    /// Every dense layer, output layer first (backward order), then down to the first.
    AllLayers,
    /// Only the output layer (last-layer MM: the hidden layers stay fixed).
    LastLayer,
}

/// Hyperparameters of block MM on an MLP (module doc of [`crate::mm`] for the maths).
///
/// This is our construction (ALGORITHMS.md 10.4-10.5 and correction 3), not a published
/// algorithm, so there are no authors' defaults; the defaults below were chosen on the
/// digits MLP (see the crate report) and are documented per field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockMmConfig {
    /// Blocks visited per sweep (default [`MmBlocks::AllLayers`]).
    pub blocks: MmBlocks,
    /// Relative ridge `rho >= 0` added to the block curvature matrix `C` as
    /// `rho * tr(C) / dim(C) * I` (default 1e-8). It only enlarges the model, so the
    /// output-layer bound stays a majorizer; it makes the solve well posed when an input
    /// row is identically zero (dead ReLU unit, constant pixel).
    pub ridge: f64,
    /// First trial curvature of a hidden block, as a multiple of its structural bound
    /// (default 1: start at the structural bound itself; values < 1 start below it and
    /// rely on backtracking).
    pub initial_scale: f64,
    /// After a hidden block is accepted at curvature `L`, the next sweep starts that block
    /// at `decrease * L` (default 0.5, in (0, 1]; 1 keeps the accepted value, so the
    /// curvature can only grow).
    pub decrease: f64,
    /// Backtracking factor: a rejected trial multiplies the curvature by this (> 1,
    /// default 2).
    pub increase: f64,
    /// Trials per block per sweep (>= 1, default 30). When none is accepted the block
    /// keeps its old value (the objective does not move).
    pub max_trials: usize,
    /// Power-iteration steps per spectral-norm estimate, warm-started across sweeps
    /// (default 3; 0 reuses the previous vector as is).
    pub power_iterations: usize,
    /// Safety factor `>= 1` multiplying each power-iteration estimate (default 1.05).
    pub safety: f64,
    /// Certified path for hidden blocks (default true): certified steps along the
    /// block's damped MM direction, each minimising the enclosure bound
    /// (`majorize::enclosure`, k = 1) over an adaptive trust region, with no
    /// backtracking trials; blocks the enclosure cannot certify (unsupported
    /// layer/loss, non-finite bound, no certified decrease, e.g. in f32 once the decrease
    /// falls below the rounding slack) take the safeguarded backtracking path. `false`
    /// is the safeguarded path everywhere ([`BlockMmConfig::safeguarded`], registered as
    /// `block-mm-safeguarded`). See [`crate::mm`]: on ReLU networks the certified steps
    /// are shorter than the backtracked ones (the enclosure counts every kink crossing),
    /// so per data pass it trails the safeguarded path there (module doc's table).
    pub certified: bool,
    /// Relative ridge of the certified path's direction (finite, >= 0; default 1): the
    /// hidden block's direction is `-G (c M + l2 P + r I)^{-1}` with
    /// `r = certified_ridge * c * tr(M)/dim`, a Levenberg-Marquardt damping between the
    /// Gram-preconditioned MM step (0) and the gradient (large). Damping keeps the
    /// direction off the input directions of tiny variance, which move some
    /// pre-activations far and make the enclosure count many ReLU kink crossings.
    /// The default was chosen outside the benchmark suites (issue #12's rule), on
    /// `mnist-synth-small` (784-128-10 ReLU, 1,000 Gaussian-blob samples, seed 0; the
    /// examples' problem, in no suite): the best objective after 50 sweeps of
    /// {1e-8, 1e-2, 1e-1, 1} (0.00347 / 0.00227 / 0.00165 / 0.00120; `block_mm_paths
    /// --problems mnist-synth-small`, docs/MAJORIZE.md).
    pub certified_ridge: f64,
    /// Initial trust region `[0, abar]` of the certified steps, in units of the block's
    /// MM step at its structural curvature (finite, > 0; default 2). It then adapts per
    /// block: x2 when a step reaches half of it, x1/2 otherwise or when nothing is
    /// certified.
    pub certified_trust_region: f64,
    /// Enclosures per hidden block per sweep (>= 1, default 4), each one forward pass:
    /// another certified step along the same direction follows while the last one
    /// reached half the trust region (the bound's minimum on the ray lies further out);
    /// before the first step, an enclosure that certifies nothing is retried on the
    /// halved region.
    pub certified_steps: usize,
    /// Certificate of the **top** hidden block's steps (default false): the chord/tangent
    /// bound [`majorize::enclosure::enclose_top_block`] (a ReLU block right under the
    /// output layer, softmax cross-entropy, f64; docs/MAJORIZE.md, "The top block's
    /// chord/tangent bound") instead of the Taylor enclosure. It reads only the block's
    /// `d x N` outputs, and a region that crosses ReLU kinks costs it slope, not the
    /// `P²/(4|Z0|)` curvature the Taylor model pays, so it certifies longer steps (docs/
    /// PERFORMANCE.md, "A chord/tangent certificate for the top block"). Where the bound
    /// does not apply (f32, another activation or loss) or fails, the top block keeps the
    /// Taylor enclosure; `false` is the Taylor enclosure on the top block. The lower
    /// blocks follow `lower_block_bound`.
    ///
    /// Not the default yet (session 15, `block_mm_paths --sweeps 100`, f64, seed 0): per
    /// data pass it is better on the one-hidden-layer problems (digits-mlp, best
    /// objective within 100 / 400 passes 0.0338 / 0.0114 against 0.0422 / 0.0132;
    /// mnist-synth-small within 200 passes 0.00112 against 0.00676) and mixed on spirals
    /// and digits-mlp-deep, and per sweep it still costs more than the Taylor enclosure
    /// it replaces (`sweep_ratios`: 8.9x against 5.9x a GD step on digits-mlp, 3.9x
    /// against 3.3x on mnist-synth; docs/PERFORMANCE.md).
    pub top_block_bound: bool,
    /// Certificate of the **lower** hidden blocks' steps (default true since session 18):
    /// the ray (band) bound [`majorize::enclosure::enclose_ray_with`] (a hidden ReLU block
    /// under (ReLU, dense) pairs only, softmax cross-entropy or, since session 19, squared
    /// error, f64; docs/MAJORIZE.md, "The ray bound of a lower block") instead of the
    /// Taylor enclosure through every layer above. It carries each entry above the block as an affine band exact at `a = 0`
    /// (chord above a ReLU, tangent below) and takes the anchors `a = 0` from the
    /// sweep's kept trace, so its cost is about one band pass (two GEMMs per layer
    /// above) against the Taylor enclosure's degree-2 models. The top hidden block
    /// follows `top_block_bound`. Where this bound does not apply (f32, another
    /// activation or loss, one hidden layer) or fails, the call takes the Taylor
    /// enclosure; `false` is the Taylor enclosure everywhere (registered as
    /// `block-mm-taylor`).
    ///
    /// Why the default (docs/PERFORMANCE.md, "The ray bound as block MM's default"):
    /// `strata-compare --full`, 5 seeds, medians [min, max], final objective on the
    /// problems it changes: digits-mlp-deep 0.0180 [0.0166, 0.0214] against 0.0359
    /// [0.0329, 0.0371] with the Taylor enclosure, spirals 0.0845 [0.0715, 0.0976] against
    /// 0.0952 [0.0757, 0.1021]; with `--tune`, 0.0166 against 0.0345 and 0.0880 against
    /// 0.0892. Per second it is ahead on digits-mlp-deep (time to target 1.21 against
    /// 1.85 s tuned) and level to 12% behind on spirals, where a sweep costs 1.2x.
    /// Under squared error (session 19, digits-autoencoder, the one registered problem
    /// it changes, with the centred bound of R3): 19.89 [17.54, 22.21] against 21.06
    /// [20.88, 22.36] after 400 passes (5 seeds, overlapping ranges), at 2.3x less time
    /// per pass; both far behind `block-mm-safeguarded` (17.20; docs/PERFORMANCE.md,
    /// session 19, which also gives seed 0's path to 800 passes).
    pub lower_block_bound: bool,
    /// The ray bound on the **top** hidden block too (default false; session 19): the
    /// same [`majorize::enclosure::enclose_ray_with`] call as the lower blocks (its `m =
    /// 1` case, anchored at the sweep's kept trace), under softmax cross-entropy or
    /// squared error. Its bound of the logits' change is centred (docs/MAJORIZE.md, R3),
    /// which the top block's own chord/tangent bound (`top_block_bound`, which takes
    /// precedence) is not. Registered as `block-mm-ray-top` (`--full`); a candidate for
    /// the default, measured in docs/PERFORMANCE.md, "The ray bound on the top block
    /// (session 19)" and, after its passes were vectorised, "The ray bound's per-entry
    /// passes vectorised (session 20)": ahead per data pass on digits-mlp and spirals,
    /// behind per second on digits-mlp and blobs.
    pub top_block_ray: bool,
}

impl Default for BlockMmConfig {
    fn default() -> Self {
        BlockMmConfig {
            blocks: MmBlocks::AllLayers,
            ridge: 1e-8,
            initial_scale: 1.0,
            decrease: 0.5,
            increase: 2.0,
            max_trials: 30,
            power_iterations: 3,
            safety: 1.05,
            certified: true,
            certified_ridge: 1.0,
            certified_trust_region: 2.0,
            certified_steps: 4,
            top_block_bound: false,
            lower_block_bound: true,
            top_block_ray: false,
        }
    }
}

impl BlockMmConfig {
    /// Last-layer MM (Böhning / least squares / logistic closed-form step on the output
    /// layer only), other fields at their defaults.
    pub fn last_layer() -> Self {
        BlockMmConfig {
            blocks: MmBlocks::LastLayer,
            ..Default::default()
        }
    }

    /// Block MM with the safeguarded (backtracking) path on every hidden block, as before
    /// the certified path became the default (registered as `block-mm-safeguarded`).
    pub fn safeguarded() -> Self {
        BlockMmConfig {
            certified: false,
            ..Default::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        let e = |p, v: f64, r| Err(SolverError::config("BlockMM", p, v, r));
        if !(self.ridge >= 0.0 && self.ridge.is_finite()) {
            return e("ridge", self.ridge, "must be finite and >= 0");
        }
        if !(self.initial_scale > 0.0 && self.initial_scale.is_finite()) {
            return e(
                "initial_scale",
                self.initial_scale,
                "must be finite and > 0",
            );
        }
        if !(self.decrease > 0.0 && self.decrease <= 1.0) {
            return e("decrease", self.decrease, "must lie in (0, 1]");
        }
        if !(self.increase > 1.0 && self.increase.is_finite()) {
            return e("increase", self.increase, "must be finite and > 1");
        }
        if self.max_trials == 0 {
            return e("max_trials", 0.0, "must be >= 1");
        }
        if !(self.safety >= 1.0 && self.safety.is_finite()) {
            return e("safety", self.safety, "must be finite and >= 1");
        }
        if !(self.certified_trust_region > 0.0 && self.certified_trust_region.is_finite()) {
            return e(
                "certified_trust_region",
                self.certified_trust_region,
                "must be finite and > 0",
            );
        }
        if !(self.certified_ridge >= 0.0 && self.certified_ridge.is_finite()) {
            return e(
                "certified_ridge",
                self.certified_ridge,
                "must be finite and >= 0",
            );
        }
        if self.certified_steps == 0 {
            return e("certified_steps", 0.0, "must be >= 1");
        }
        crate::caps::check_inner_count("BlockMM", "max_trials", self.max_trials)?;
        crate::caps::check_inner_count("BlockMM", "certified_steps", self.certified_steps)?;
        crate::caps::check_inner_count("BlockMM", "power_iterations", self.power_iterations)?;
        Ok(())
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<BlockMm<T>, SolverError> {
        self.validate()?;
        Ok(BlockMm::from_config(self))
    }
}
