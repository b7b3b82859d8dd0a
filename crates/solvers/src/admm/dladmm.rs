//! dlADMM (Wang, Yu, Chen, Zhao, KDD 2019; ALGORITHMS.md 3).
//!
//! Relaxed problem with one multiplier `U` on the output equation (sum scale):
//!
//! ```text
//! L_rho = R(Z_L) + sum_l (lambda_2 / (2 w)) ||W_l||^2
//!       + (nu / 2) sum_{l<L} ( ||Z_l - W_l A_{l-1} - b_l||^2 + ||A_l - h(Z_l)||^2 )
//!       + <U, Z_L - W_L A_{L-1} - b_L> + (rho / 2) ||Z_L - W_L A_{L-1} - b_L||^2
//! ```
//!
//! One iteration: a backward pass (layer L down to 1: `Z_l, b_l, W_l`, then
//! `A_{l-1}`), a forward pass (layer 1 up to L: `W_l, b_l, Z_l`, then `A_l`), and the
//! dual step `U <- U + rho (Z_L - W_L A_{L-1} - b_L)` (order as in the reference code,
//! ALGORITHMS.md 3.2; `W_1` is updated twice at the turning point).
//!
//! * W-step: one majorized step `W <- W - G / theta`, `G` the gradient of the W-terms,
//!   `theta` doubled (factor [`super::DlAdmmConfig::backtrack`]) from its base value
//!   until the quadratic upper bound holds. The terms are quadratic in W, so the
//!   bound test `phi(W - G/theta) <= phi(W) - ||G||^2 / theta + ||G||^2 / (2 theta)` is
//!   evaluated exactly from `c ||G A||^2 + (lambda_2 / w) ||G||^2 <= theta ||G||^2`,
//!   with `||G A||^2 = tr(G (A A^T) G^T)` from the sample sums (no extra pass over N),
//!   or, for a layer narrower than its input (not layer 1, whose `X X^T` is computed
//!   once), from the `d_out x N` product `G A`, which is cheaper than `A A^T`.
//!   Layer 1's W-step of the forward pass comes right after the backward pass's, with
//!   only `W_1` moved (by `-s G`) in between, so it forms `R X^T` as
//!   `R X^T + s G (X X^T)` from the previous step's sums and `G (X X^T)`, which that step
//!   formed for its curvature: no pass over the data and two `d_1 x d_0 x N` GEMMs fewer
//!   per iteration, equal to rounding (issue #14,
//!   `chained_layer1_w_step_matches_recomputation`).
//! * A-step: the same on `A_l` with `tau`.
//! * b-step: exact, `b <- b + mean over samples of the residual`.
//! * Z_l (hidden): exact entrywise `argmin (z - m)^2 + (a - h(z))^2` (nets prox).
//! * Z_L: `prox_{R / rho}(m - U / rho)`: Newton (exact) or the code's proximal-gradient
//!   iterations ([`ZlSolver::reference`], the default; not accelerated, the code's are),
//!   which for softmax cross-entropy
//!   run through a fused kernel (`output_pg`, `output_softmax`: one vectorised `exp` per
//!   entry instead of three libm calls, no allocation; the same iterates to rounding,
//!   issue #14). The exact Newton prox
//!   is not a faster replacement with the code's adaptive rho: at rho = 1e-6 the prox
//!   parameter is 1e6 and `nets::softmax_ce_prox` fails to converge (NaN residual) on
//!   digits-mlp and spirals.
//!
//! Data passes: every block step reads a layer map over the N columns; the W- and
//! A-steps add a gradient product and one curvature product; backtracking trials are
//! scalar tests that touch no sample (module `steps`, `DlAdmm::block_passes`,
//! docs/RESULTS_SCHEMA.md). Data-parallel runs
//! ([`crate::distributed::DistributedDlAdmm`]) keep the per-sample variables with their
//! samples and add the W-, b-, A- and output steps' sums over ranks (module `steps`,
//! docs/DISTRIBUTED.md).
//!
//! Checked against the reference code (issue #17, `tests_dladmm_ref`): with one fixed
//! penalty (`nu = rho`, as in the code) two iterations equal an independent NumPy
//! transcription of the code's loop to 1e-11 on a 5-4-3-3 problem, at rho = 1e-6 and
//! 0.5; on Fashion-MNIST 784-1000-1000-10 (2,000 images, f64 and f32) the training
//! objective and accuracy agree to 4 digits over 10 iterations when the output
//! iterations are run plain in both. The problem's L2 penalty `l2` enters at sum scale
//! (`l2 / w`), which the code does not have (docs/PAPERS.md).
//!
//! With a fixed rho every primal block step is a descent step of `L_rho` (MM steps and
//! exact minimisations); the dual step may increase it. The convergence theorem
//! (paper section 4) needs rho large relative to nu and to the Lipschitz constant of
//! `grad R`, plus coercivity; the exact threshold could not be checked against the
//! paper here (the paper text was not readable), so [`super::DlPenalty::Fixed`] lets the
//! user set it and the code's adaptive rule is [`super::DlPenalty::Adaptive`].

use autodiff::{Real, Reduction};
use nalgebra::DMatrix;
use nets::{Dataset, Loss, LossKind, Sequential, Targets};
use serde::{Deserialize, Serialize};

use super::config::{DlAdmmConfig, DlPenalty, ZlSolver};
use super::lifted::{Lifted, Residuals, dense_targets};
use super::linalg::{InputKey, SampleSums, SumsWork};
use super::output_pg::prox_gradient;
use super::output_softmax::SoftmaxWork;
use crate::SolverError;
use crate::linalg::{DataStamp, all_finite, ensure_shape, require_finite};

mod block;
mod data;
mod fused;
mod hidden_z;
mod lagrangian;
pub(crate) mod steps;
#[cfg(test)]
pub(crate) use steps::tally;
use steps::{note_pass, reduce};

fn not_init() -> SolverError {
    SolverError::Problem("DlAdmm: not initialised (call init / initialize first)".into())
}

fn nerr(e: nets::NetsError) -> SolverError {
    SolverError::Problem(format!("DlAdmm output step: {e}"))
}

/// One block of a dlADMM pass (0-based dense-layer index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DlBlock {
    /// Majorized W-step of layer l.
    Weights(usize),
    /// Exact bias step of layer l.
    Bias(usize),
    /// Exact Z-step (hidden: entrywise prox; last: output prox).
    PreActivations(usize),
    /// Majorized A-step of hidden layer l.
    Activations(usize),
}

/// What one dlADMM iteration did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DlStepInfo {
    /// Augmented Lagrangian `L_rho` (sum scale) before the dual step.
    pub augmented: f64,
    /// Primal residuals after the iteration.
    pub residuals: Residuals,
    /// `rho ||m_L - m_L_prev||_F` (dual residual of the output equation).
    pub dual_residual: f64,
    /// Penalties used in this iteration.
    pub nu: f64,
    /// Penalty of the output equation.
    pub rho: f64,
    /// Backtracking trials (W and A steps) plus output inner iterations.
    pub inner_solves: u64,
    /// Inner iterations of the output block (prox-gradient or Newton steps).
    pub output_inner: u64,
    /// Forward-type data passes of the iteration (`DlAdmm::block_passes`, plus one for
    /// the dual step).
    pub forward_passes: u64,
    /// Backward-type data passes of the iteration.
    pub backward_passes: u64,
}

/// dlADMM checkpoint.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct DlSaved<T: Real> {
    pub vars: Option<Lifted<T>>,
    pub u: DMatrix<T>,
    pub prev_m: DMatrix<T>,
    pub rho: f64,
    pub nu: f64,
    pub theta: f64,
    pub tau: f64,
    pub costs: Vec<f64>,
    pub iterations: u64,
}

/// The dlADMM solver (see the module doc).
#[derive(Debug)]
pub struct DlAdmm<T: Real> {
    config: DlAdmmConfig,
    vars: Option<Lifted<T>>,
    u: DMatrix<T>,
    prev_m: DMatrix<T>,
    rho: f64,
    nu: f64,
    theta: f64,
    tau: f64,
    costs: Vec<f64>,
    iterations: u64,
    sum_loss: Loss,
    sample_weight: f64,
    l2: f64,
    ready: bool,
    scratch: DMatrix<T>,
    scratch2: DMatrix<T>,
    /// The other layer shape's buffers of `scratch` and `scratch2` (`shape_pair`).
    scratch_alt: DMatrix<T>,
    scratch2_alt: DMatrix<T>,
    grad: DMatrix<T>,
    gw: DMatrix<T>,
    ggw: DMatrix<T>,
    sums: SampleSums<T>,
    sums_work: SumsWork<T>,
    /// Layer 1's sample sums (`X X^T` computed once, see `input_key`).
    sums0: SampleSums<T>,
    input_key: InputKey,
    /// Inputs and thread count the cached products were computed for.
    data_key: InputKey,
    /// The training set `prepare` ran on (the sample weight and the caches above derive
    /// from it).
    stamp: DataStamp,
    /// The loss `prepare` last ran with: a call on another data set reruns `prepare`
    /// with it (`sync_data`).
    loss: Option<Loss>,
    /// `W_l A_{l-1}` per layer, reused until `W_l` or `A_{l-1}` changes (issue #14:
    /// one iteration needs the product of each layer up to seven times but it changes
    /// at most four times).
    prods: Vec<DMatrix<T>>,
    prod_valid: Vec<bool>,
    /// The samples-contiguous copy of the output block for the fused softmax output
    /// iterations (`output_softmax`).
    softmax: SoftmaxWork<T>,
    /// Data-parallel mode ([`crate::distributed::DistributedDlAdmm`]): the communicator
    /// over which the sums over samples are added, and the global N.
    dist: Option<(std::sync::Arc<dyn crate::comm::Comm>, usize)>,
    dist_scratch: Vec<f64>,
    /// The b-step's row sums.
    bias_sums: Vec<f64>,
    /// Per-row accumulators of squared norms (`fused::row_sq_norm`).
    row_acc: Vec<f64>,
    /// The step `s` of a layer-1 W-step made by the block just run (`steps`): the next
    /// W-step of layer 1, if it comes right after, forms its `R X^T` from the kept one.
    w0_chain: Option<T>,
    /// Whether the last W-step of layer 1 did so (it then made no pass over the data).
    w0_reused: bool,
    /// Layer outputs of the adaptive rule's true-objective evaluation, one buffer per
    /// layer (reused: no reshaping between sweeps).
    pub(super) eval_bufs: Vec<DMatrix<T>>,
}

impl<T: Real> DlAdmm<T> {
    /// A solver from a validated config (errors name the bad hyperparameter).
    pub fn new(config: DlAdmmConfig) -> Result<Self, SolverError> {
        config.validate()?;
        let (nu, rho) = match config.penalty {
            DlPenalty::Fixed { nu, rho } => (nu, rho),
            DlPenalty::Adaptive { rho0, .. } => (rho0, rho0),
        };
        Ok(DlAdmm {
            theta: config.theta,
            tau: config.tau,
            config,
            vars: None,
            u: DMatrix::zeros(0, 0),
            prev_m: DMatrix::zeros(0, 0),
            rho,
            nu,
            costs: Vec::new(),
            iterations: 0,
            sum_loss: Loss::new(LossKind::Mse, Reduction::Sum),
            sample_weight: 1.0,
            l2: 0.0,
            ready: false,
            scratch: DMatrix::zeros(0, 0),
            scratch2: DMatrix::zeros(0, 0),
            scratch_alt: DMatrix::zeros(0, 0),
            scratch2_alt: DMatrix::zeros(0, 0),
            grad: DMatrix::zeros(0, 0),
            gw: DMatrix::zeros(0, 0),
            ggw: DMatrix::zeros(0, 0),
            sums: SampleSums::default(),
            sums_work: SumsWork::default(),
            sums0: SampleSums::default(),
            input_key: InputKey::default(),
            stamp: DataStamp::default(),
            loss: None,
            data_key: InputKey::default(),
            prods: Vec::new(),
            prod_valid: Vec::new(),
            softmax: SoftmaxWork::default(),
            dist: None,
            dist_scratch: Vec::new(),
            bias_sums: Vec::new(),
            row_acc: Vec::new(),
            w0_chain: None,
            w0_reused: false,
            eval_bufs: Vec::new(),
        })
    }

    /// Data-parallel mode: this process holds its shard of `global_n` samples (its
    /// columns of `X`, `Z_l`, `A_l`, `U`); every sum over samples a step needs (module
    /// `steps`, docs/DISTRIBUTED.md) is added over `comm`'s ranks.
    pub(crate) fn set_distributed(
        &mut self,
        comm: std::sync::Arc<dyn crate::comm::Comm>,
        global_n: usize,
    ) {
        self.dist = Some((comm, global_n));
    }

    /// The number of samples over all ranks (`local` on one process).
    fn global_n(&self, local: usize) -> usize {
        self.dist.as_ref().map_or(local, |d| d.1)
    }

    /// The configuration.
    pub fn config(&self) -> &DlAdmmConfig {
        &self.config
    }
    /// The lifted variables.
    pub fn lifted(&self) -> Option<&Lifted<T>> {
        self.vars.as_ref()
    }
    /// Current `(nu, rho)`.
    pub fn penalties(&self) -> (f64, f64) {
        (self.nu, self.rho)
    }
    /// Current backtracking bases `(theta, tau)`.
    pub fn curvature_bases(&self) -> (f64, f64) {
        (self.theta, self.tau)
    }
    /// The output multiplier U.
    pub fn multiplier(&self) -> &DMatrix<T> {
        &self.u
    }
    /// Mutable multiplier (tests).
    pub fn multiplier_mut(&mut self) -> &mut DMatrix<T> {
        &mut self.u
    }
    /// The sample weight of the problem's loss.
    pub fn sample_weight(&self) -> f64 {
        self.sample_weight
    }
    /// Iterations done.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Weights from `net`, lifted variables from its forward pass; `Z_L` from the
    /// targets (+1 / -1 one-hot for labels, the targets for dense) if configured; U = 0.
    pub fn initialize(
        &mut self,
        net: &Sequential<T>,
        loss: &Loss,
        train: &Dataset<T>,
    ) -> Result<(), SolverError> {
        let mut vars = Lifted::from_net(net, train.inputs())?;
        let last = vars.layers() - 1;
        let k = vars.z[last].nrows();
        if self.config.init_output_from_targets {
            let y = dense_targets(train.targets(), k)?;
            vars.z[last] = match train.targets() {
                Targets::Labels { .. } => y.map(|v| v + v - T::one()),
                Targets::Dense(_) => y,
            };
        }
        self.u = DMatrix::zeros(k, train.len());
        self.prev_m = DMatrix::zeros(0, 0);
        self.vars = Some(vars);
        self.iterations = 0;
        self.costs.clear();
        let (nu, rho) = match self.config.penalty {
            DlPenalty::Fixed { nu, rho } => (nu, rho),
            DlPenalty::Adaptive { rho0, .. } => (rho0, rho0),
        };
        self.nu = nu;
        self.rho = rho;
        self.theta = self.config.theta;
        self.tau = self.config.tau;
        self.prepare(loss, train)
    }

    /// The prox-gradient step actually used: the configured `eta`, unless it is beyond
    /// `2 / L` for the loss's curvature bound L (MSE: L = 1; logistic: 1/4; softmax CE:
    /// 1/2), where the iteration can diverge; then `1 / L`. The code's eta = 4 was
    /// chosen for softmax CE (= 2 / L there, kept).
    pub fn effective_eta(&self, eta: f64) -> f64 {
        let k = self.u.nrows().max(2);
        match self.sum_loss.curvature_bound(k).max_eigenvalue() {
            Some(l) if l > 0.0 && eta > 2.0 / l => 1.0 / l,
            _ => eta,
        }
    }

    /// The blocks of one iteration in order (backward pass, then forward pass).
    pub fn blocks(&self) -> Vec<DlBlock> {
        let l_count = self.vars.as_ref().map_or(0, |v| v.layers());
        let mut out = Vec::new();
        for l in (0..l_count).rev() {
            out.push(DlBlock::PreActivations(l));
            out.push(DlBlock::Bias(l));
            out.push(DlBlock::Weights(l));
            if l > 0 {
                out.push(DlBlock::Activations(l - 1));
            }
        }
        for l in 0..l_count {
            out.push(DlBlock::Weights(l));
            out.push(DlBlock::Bias(l));
            out.push(DlBlock::PreActivations(l));
            if l + 1 < l_count {
                out.push(DlBlock::Activations(l));
            }
        }
        out
    }

    /// Weight `c` of the coupling term of layer l (nu hidden, rho output).
    fn coupling(&self, l: usize, l_count: usize) -> f64 {
        if l + 1 == l_count { self.rho } else { self.nu }
    }

    /// One iteration: backward and forward passes, then the dual step. `train` may be
    /// another data set than the one the solver was prepared on: it is then checked
    /// against the lifted variables (a `ShapeMismatch` naming the input rows, samples
    /// or target width; the iterates are left as they were) and the derived parts are
    /// rebuilt from it with the loss of the last `prepare`, as a fresh solver prepared
    /// on it would.
    pub fn iterate(
        &mut self,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<DlStepInfo, SolverError> {
        self.sync_data(train)?;
        let mut inner = 0;
        let mut out_inner = 0;
        let l_count = self.vars.as_ref().ok_or_else(not_init)?.layers();
        // The dual step reads the output layer map: one forward pass.
        let (mut forward, mut backward) = (1, 0);
        for block in self.blocks() {
            let k = self.run_block(block, train, threads)?;
            if block == DlBlock::PreActivations(l_count - 1) {
                out_inner += k;
            }
            inner += k;
            let (f, b) = self.block_passes(block, k);
            forward += f;
            backward += b;
        }
        self.iterations += 1;
        // Diagnostics (not counted as passes) and the dual step; in a data-parallel run
        // every sum over samples and the finiteness verdict are reduced in one call.
        let mut r = self.residuals_cached(train.inputs(), threads)?;
        let [loss, ur] = self.lagrangian_samples(train, threads)?;
        let x = train.inputs();
        let last = l_count - 1;
        self.affine_cached(last, x, threads)?;
        note_pass!(FORWARD);
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let dual2 = if self.prev_m.shape() == self.scratch.shape() {
            self.scratch
                .as_slice()
                .iter()
                .zip(self.prev_m.as_slice())
                .map(|(a, b)| (a.to_f64() - b.to_f64()).powi(2))
                .sum::<f64>()
        } else {
            0.0
        };
        let rt = T::of(self.rho);
        for ((u, &z), &m) in self
            .u
            .as_mut_slice()
            .iter_mut()
            .zip(vars.z[last].as_slice())
            .zip(self.scratch.as_slice())
        {
            *u += rt * (z - m);
        }
        ensure_shape(&mut self.prev_m, self.scratch.nrows(), self.scratch.ncols());
        self.prev_m.copy_from(&self.scratch);
        let local_err = vars.check_finite("DlAdmm", self.iterations).err();
        let bad = local_err.is_some() || !all_finite(&self.u);
        let mut extra = [loss, ur, dual2, if bad { 1.0 } else { 0.0 }];
        self.reduce_residuals(&mut r, &mut extra)?;
        let augmented = self.lagrangian_combine(&r, [extra[0], extra[1]])?;
        if let Some(e) = local_err {
            return Err(e);
        }
        if extra[3] > 0.0 || !augmented.is_finite() {
            return Err(SolverError::NonFinite(format!(
                "DlAdmm: U or L_rho at iteration {}{}",
                self.iterations,
                if bad { "" } else { " (on another rank)" }
            )));
        }
        Ok(DlStepInfo {
            augmented,
            residuals: r,
            dual_residual: self.rho * extra[2].sqrt(),
            nu: self.nu,
            rho: self.rho,
            inner_solves: inner,
            output_inner: out_inner,
            forward_passes: forward,
            backward_passes: backward,
        })
    }

    /// The code's adaptive rule, fed with the TRUE training objective after each
    /// iteration: if it rose in each of the last three iterations, rho (and nu, one
    /// parameter in the code) grows by `factor` up to `rho_max`, and when the widest
    /// hidden layer has at least 100 units theta and tau grow by `factor` too. Returns whether rho changed. No-op in
    /// the fixed mode.
    pub fn adapt(&mut self, true_objective: f64, max_hidden_width: usize) -> bool {
        let DlPenalty::Adaptive {
            rho_max, factor, ..
        } = self.config.penalty
        else {
            return false;
        };
        self.costs.push(true_objective);
        if self.costs.len() > 4 {
            self.costs.remove(0);
        }
        let c = &self.costs;
        if c.len() == 4 && c[3] > c[2] && c[2] > c[1] && c[1] > c[0] {
            self.rho = (self.rho * factor).min(rho_max);
            self.nu = self.rho;
            if max_hidden_width >= 100 {
                self.theta *= factor;
                self.tau *= factor;
            }
            return true;
        }
        false
    }

    /// Writes the current weights into `net`.
    pub fn write_weights(&self, net: &mut Sequential<T>) -> Result<(), SolverError> {
        self.vars.as_ref().ok_or_else(not_init)?.write_to(net)
    }
}
