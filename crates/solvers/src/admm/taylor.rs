//! Taylor et al. (ICML 2016): ADMM / Bregman training without gradients.
//!
//! With layers `l = 1..L`, input `A_0 = X`, the method minimises (ALGORITHMS.md 2.1,
//! biases added, all sums over samples):
//!
//! ```text
//! J = ell(Z_L) + <Z_L, Lambda> + beta ||Z_L - W_L A_{L-1} - b_L||^2
//!     + sum_{l<L} [ gamma ||A_l - h(Z_l)||^2 + beta ||Z_l - W_l A_{l-1} - b_l||^2 ]
//!     + (lambda_2 / (2 w)) sum_l ||W_l||^2
//! ```
//!
//! (`w` the problem's sample weight, 1 for Sum and 1/N for Mean: the L2 term of the
//! true objective, rescaled to the sum scale). One iteration is the forward sweep of
//! ALGORITHMS.md 2.2, each block an exact minimiser of J with Lambda fixed:
//!
//! * `W_l, b_l` (least squares): `[W b] (A~ A~^T + D) = [Z A^T, Z 1] + eps [W b]_old`
//!   with `A~ = [A_{l-1}; 1^T]` (a constant row appended: the bias), `D` the L2 term and
//!   a proximal ridge `eps` (relative, [`super::TaylorConfig::ridge`]) that keeps the
//!   system positive definite when a ReLU unit is dead (correction 1); f64 Cholesky.
//!   `A A^T`, `Z A^T` are summed over fixed 256-column chunks, data-parallel.
//! * `A_l` (hidden): `(beta W_{l+1}^T W_{l+1} + gamma I) A = beta W_{l+1}^T (Z_{l+1} -
//!   b_{l+1} 1^T) + gamma h(Z_l)`, via the f64 Cholesky inverse and one GEMM.
//! * `Z_l` (hidden): entrywise `argmin gamma (a - h(z))^2 + beta (z - m)^2`,
//!   `m = W_l A_{l-1} + b_l`: `nets::prox::prox_weighted` (the ReLU case analysis of
//!   2.2 in closed form; numeric for smooth activations).
//! * `Z_L`: `argmin ell(z) + lambda z + beta (z - m)^2` per column: closed form for least
//!   squares and the binary hinge, Newton prox of `nets` for the problem's loss.
//!
//! After the sweep, unless in the first `warm_start` iterations, the Bregman /
//! multiplier step ACCUMULATES: `Lambda <- Lambda + beta (Z_L - W_L A_{L-1} - b_L)`
//! (ALGORITHMS.md 2.7 warns against the third-party port that overwrites it). Note the
//! penalty has no 1/2, so the classical method-of-multipliers step would be `2 beta`;
//! the `beta` of the paper's presentation (ALGORITHMS.md 2.2, [memory]) is used.
//!
//! Option `full_lagrangian` (not in the paper): the W_L and A_{L-1} steps also carry
//! `-<Lambda, W_L A_{L-1} + b_L>` (they fit `Z_L + Lambda / (2 beta)`), J includes that
//! term, and the dual step is `2 beta`.
//!
//! Guarantee (correction 1): with Lambda fixed, every block step does not increase J
//! INCLUDING `<Z_L, Lambda>` (the W-step decreases `J + beta eps ||dW~||^2`); the
//! multiplier step can increase it. No convergence theorem is claimed by the paper for
//! the nonconvex problem. Fixed points: the W-steps never see Lambda, so the iteration
//! stops at feasible points that remember the warm start; for one layer the limit is
//! `(P Y + beta P Z_w) / (1 + beta)` (P: projection on the row space of `[X; 1^T]`,
//! `Z_w`: the output when the multiplier starts), tested and discussed in docs/ADMM.md.
//!
//! Data passes (docs/RESULTS_SCHEMA.md; the rule BCD follows): each block update
//! touches every sample once through its layer and counts as one pass, even when it
//! reuses cached sums (layer 1's `X X^T`: `Z_1 X^T` is still formed over all samples).
//! Forward-type: the `L` Z-steps (layer map over the samples, then the prox; `Z_L`
//! against every target). Backward-type: the `L` W-steps (sums over samples with the
//! layer input) and the `L - 1` A-steps (products with `W_{l+1}^T`). An iteration is
//! thus `L` forward + `2L - 1` backward passes ([`TaylorStepInfo::forward_passes`],
//! [`TaylorStepInfo::backward_passes`]), plus one forward pass at initialisation. The
//! multiplier step is no pass: it reads the `Z_L` step's kept product `W_L A_{L-1} +
//! b_L` and touches neither the data nor a layer map. The augmented objective and the
//! residuals are step-report values (not counted, as BCD's penalised objective).
//! Until round 2 (issue #12) a whole iteration counted as one forward pass.
//!
//! Start ([`super::TaylorStart`]): by default `Z_l`, `A_l` come from a forward pass of
//! the problem's weights (every residual 0); the paper's start draws them i.i.d.
//! `N(0, 1)` and fits every `W_l` to the draws first ([`TaylorAdmm::initialize_with`];
//! Section 6, PDF p. 6 of the PMLR camera-ready).
//!
//! Verification: the update equations follow ALGORITHMS.md 2.2 (checked numerically
//! there against brute-force minimisation) and Algorithm 1 of the paper (p. 3); the
//! defaults gamma = 10, beta = 1 are the paper's (Section 6, p. 6; see
//! [`super::TaylorConfig`]).

use autodiff::{Real, Transpose};
use nalgebra::{DMatrix, DVector};
use nets::{Dataset, Loss, Sequential};
use serde::{Deserialize, Serialize};

use super::config::{TaylorConfig, TaylorStart};
use super::lifted::{Lifted, Residuals};
use super::linalg::{
    InputKey, LsInverse, SampleSums, SumsWork, least_squares_w, sample_sums, sample_sums_keep,
};
use super::output::OutputTerm;
use crate::SolverError;
use crate::linalg::{
    DataStamp, affine, dot, ensure_shape, gemm, require_finite, spd_inverse_ridged, sq_norm,
};

mod blocks;
mod data;
#[cfg(test)]
pub(crate) mod tally;

/// `out <- z + lambda / (2 beta)` (the target of the full-Lagrangian W_L / A_{L-1} steps).
fn shifted<T: Real>(z: &DMatrix<T>, lambda: &DMatrix<T>, beta: f64, out: &mut DMatrix<T>) {
    ensure_shape(out, z.nrows(), z.ncols());
    let c = T::of(0.5 / beta);
    for ((o, &zi), &li) in out.iter_mut().zip(z.iter()).zip(lambda.iter()) {
        *o = zi + c * li;
    }
}

/// `dst <- src`, keeping `dst`'s storage when the shapes agree.
fn copy_into<T: Real>(dst: &mut DMatrix<T>, src: &DMatrix<T>) {
    crate::linalg::fit(dst, src.nrows(), src.ncols());
    dst.copy_from(src);
}

fn not_init() -> SolverError {
    SolverError::Problem("TaylorAdmm: not initialised (call init / initialize first)".into())
}

/// One block of Taylor's sweep (0-based dense-layer index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaylorBlock {
    /// `W_l, b_l` by least squares.
    Weights(usize),
    /// `A_l` (hidden layers) in closed form.
    Activations(usize),
    /// `Z_l`: entrywise prox (hidden) or the output step (last layer).
    PreActivations(usize),
}

impl TaylorBlock {
    /// Whether the block's one data pass (docs/RESULTS_SCHEMA.md, "Data passes") is
    /// forward-type: the Z-steps evaluate the layer map `W_l A_{l-1} + b_l` over every
    /// sample (and, for `Z_L`, the loss prox against every target). The W-steps (sums
    /// `A A^T`, `Z A^T` over the samples) and the A-steps (products with the transposed
    /// weights `W_{l+1}^T`) are backward-type, as BCD's weight and `V_l` blocks.
    pub fn is_forward_pass(self) -> bool {
        matches!(self, TaylorBlock::PreActivations(_))
    }
}

/// What one Taylor iteration did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaylorStepInfo {
    /// Augmented objective `J` (sum scale) after the sweep, before the multiplier step.
    pub augmented: f64,
    /// Primal residuals after the iteration.
    pub residuals: Residuals,
    /// `beta ||m_L - m_L_prev||_F`, `m_L = W_L A_{L-1} + b_L` (dual residual of the
    /// output equation; 0 in the first iteration).
    pub dual_residual: f64,
    /// Whether the multiplier was updated.
    pub multiplier_updated: bool,
    /// Linear systems and prox maps solved.
    pub inner_solves: u64,
    /// Forward-type data passes over this process's samples: one per Z-step (`L`).
    pub forward_passes: u64,
    /// Backward-type data passes over this process's samples: one per W-step and per
    /// A-step (`2L - 1`).
    pub backward_passes: u64,
}

impl TaylorStepInfo {
    /// Adds this iteration's data passes to `counters`: `forward_passes` forward and
    /// `backward_passes` backward evaluations, each over `n` samples (the distributed
    /// solver passes the global N, so it counts the same as one process).
    pub(crate) fn count_passes(&self, counters: &mut crate::Counters, n: usize) {
        counters.add_forward_n(self.forward_passes, n);
        for _ in 0..self.backward_passes {
            counters.add_backward(n);
        }
    }
}

/// Taylor et al.'s ADMM solver (see the module doc). Build with [`TaylorAdmm::new`];
/// as a [`crate::Solver`] it trains a `NetProblem`; the engine methods below also run
/// on a bare network and data set (tests, block-by-block inspection).
#[derive(Debug)]
pub struct TaylorAdmm<T: Real> {
    config: TaylorConfig,
    vars: Option<Lifted<T>>,
    lambda: DMatrix<T>,
    prev_m: DMatrix<T>,
    iterations: u64,
    output: Option<OutputTerm<T>>,
    sample_weight: f64,
    l2: f64,
    scratch: DMatrix<T>,
    scratch2: DMatrix<T>,
    scratch3: DMatrix<T>,
    /// `W_l A_{l-1} + b_l` of every layer as computed by the Z-steps of the current
    /// [`TaylorAdmm::iterate`] (unchanged until its end: W_l and A_{l-1} are updated
    /// before Z_l), reused for the residuals and the multiplier step (issue #14).
    products: Vec<DMatrix<T>>,
    keep_products: bool,
    sums: SampleSums<T>,
    sums_work: SumsWork<T>,
    /// Layer 1's sample sums: `X X^T`, `X 1` are computed once (`input_key`) and its
    /// normal-equation inverse kept (`ls_inverse`), since X never changes.
    sums0: SampleSums<T>,
    input_key: InputKey,
    ls_inverse: LsInverse,
    /// The training set `prepare` ran on (its output term and the caches above derive
    /// from it).
    stamp: DataStamp,
    /// The loss `prepare` last ran with: a call on another data set reruns `prepare`
    /// with it (`sync_data`).
    loss: Option<Loss>,
    /// Data-parallel mode ([`crate::distributed::DistributedTaylorAdmm`]): the
    /// communicator over which the W-step's sample sums are added, and the global N.
    dist: Option<(std::sync::Arc<dyn crate::comm::Comm>, usize)>,
    dist_scratch: Vec<f64>,
}

/// What [`TaylorAdmm`] checkpoints.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct TaylorSaved<T: Real> {
    pub vars: Option<Lifted<T>>,
    pub lambda: DMatrix<T>,
    pub prev_m: DMatrix<T>,
    pub iterations: u64,
}

impl<T: Real> TaylorAdmm<T> {
    /// A solver from a validated config (errors name the bad hyperparameter).
    pub fn new(config: TaylorConfig) -> Result<Self, SolverError> {
        config.validate()?;
        Ok(TaylorAdmm {
            config,
            vars: None,
            lambda: DMatrix::zeros(0, 0),
            prev_m: DMatrix::zeros(0, 0),
            iterations: 0,
            output: None,
            sample_weight: 1.0,
            l2: 0.0,
            scratch: DMatrix::zeros(0, 0),
            scratch2: DMatrix::zeros(0, 0),
            scratch3: DMatrix::zeros(0, 0),
            products: Vec::new(),
            keep_products: false,
            sums: SampleSums::default(),
            sums_work: SumsWork::default(),
            sums0: SampleSums::default(),
            input_key: InputKey::default(),
            stamp: DataStamp::default(),
            loss: None,
            ls_inverse: LsInverse::default(),
            dist: None,
            dist_scratch: Vec::new(),
        })
    }

    /// Data-parallel mode: this process holds `global_n`'s shard of the samples; the
    /// W-step's sums over samples are added over `comm`'s ranks before the solve, and
    /// the sample weight of the L2 term is that of the global N.
    pub(crate) fn set_distributed(
        &mut self,
        comm: std::sync::Arc<dyn crate::comm::Comm>,
        global_n: usize,
    ) {
        self.dist = Some((comm, global_n));
    }

    /// The configuration.
    pub fn config(&self) -> &TaylorConfig {
        &self.config
    }

    /// The lifted variables (after [`TaylorAdmm::initialize`]).
    pub fn lifted(&self) -> Option<&Lifted<T>> {
        self.vars.as_ref()
    }

    /// The output multiplier Lambda (`d_L x N`).
    pub fn multiplier(&self) -> &DMatrix<T> {
        &self.lambda
    }

    /// Mutable multiplier (tests: evaluate the block steps at an arbitrary Lambda).
    pub fn multiplier_mut(&mut self) -> &mut DMatrix<T> {
        &mut self.lambda
    }

    /// Iterations done.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Weights from `net`, lifted variables from its forward pass on the training
    /// inputs, Lambda = 0 ([`TaylorStart::ForwardPass`]). A config with the Gaussian
    /// start needs the run's RNG: this then returns an error naming
    /// [`TaylorAdmm::initialize_with`].
    pub fn initialize(
        &mut self,
        net: &Sequential<T>,
        loss: &Loss,
        train: &Dataset<T>,
    ) -> Result<(), SolverError> {
        if let TaylorStart::Gaussian { .. } = self.config.start {
            return Err(SolverError::Problem(
                "TaylorAdmm: the Gaussian start draws from the run's RNG: call initialize_with"
                    .into(),
            ));
        }
        let vars = Lifted::from_net(net, train.inputs())?;
        #[cfg(test)]
        tally::note(&tally::LAYER_MAPS);
        self.start_from(vars, loss, train)
    }

    /// The configured start ([`TaylorConfig::start`]), Lambda = 0:
    ///
    /// * [`TaylorStart::ForwardPass`]: as [`TaylorAdmm::initialize`] (`rng` unused); one
    ///   forward pass over the samples;
    /// * [`TaylorStart::Gaussian`] (Taylor et al., Section 6, p. 6): `Z_l`, `A_l` i.i.d.
    ///   `N(0, std^2)` from `rng` ([`Lifted::gaussian`]), then the W-step of every layer,
    ///   in order, from those draws (`A_0 = X`), so the weights of `net` enter only
    ///   through the W-step's relative proximal ridge ([`TaylorConfig::ridge`], 1e-8):
    ///   `L` backward-type passes, no forward pass.
    ///
    /// Returns the data passes it made over the samples, `(forward, backward)`.
    pub fn initialize_with<R: rand::Rng + ?Sized>(
        &mut self,
        net: &Sequential<T>,
        loss: &Loss,
        train: &Dataset<T>,
        rng: &mut R,
        threads: usize,
    ) -> Result<(u64, u64), SolverError> {
        let TaylorStart::Gaussian { std } = self.config.start else {
            self.initialize(net, loss, train)?;
            return Ok((1, 0));
        };
        let vars = Lifted::gaussian(net, train.len(), std, rng)?;
        self.start_from(vars, loss, train)?;
        let l_count = self.vars_ref()?.layers();
        for l in 0..l_count {
            self.run_block(TaylorBlock::Weights(l), train, threads)?;
        }
        self.vars_ref()?
            .check_finite("TaylorAdmm (Gaussian start)", 0)?;
        Ok((0, l_count as u64))
    }

    /// Takes `vars` as the lifted variables, Lambda = 0, no previous output, then
    /// [`TaylorAdmm::prepare`].
    fn start_from(
        &mut self,
        vars: Lifted<T>,
        loss: &Loss,
        train: &Dataset<T>,
    ) -> Result<(), SolverError> {
        let out = &vars.z[vars.layers() - 1];
        self.lambda = DMatrix::zeros(out.nrows(), out.ncols());
        self.prev_m = DMatrix::zeros(0, 0);
        self.vars = Some(vars);
        self.iterations = 0;
        self.prepare(loss, train)
    }

    /// The blocks of one sweep in order: for each hidden layer `W_l, A_l, Z_l`, then
    /// `W_L, Z_L` (ALGORITHMS.md 2.2).
    pub fn blocks(&self) -> Vec<TaylorBlock> {
        let l_count = self.vars.as_ref().map_or(0, |v| v.layers());
        let mut out = Vec::with_capacity(3 * l_count);
        for l in 0..l_count {
            out.push(TaylorBlock::Weights(l));
            if l + 1 < l_count {
                out.push(TaylorBlock::Activations(l));
            }
            out.push(TaylorBlock::PreActivations(l));
        }
        out
    }

    fn vars_ref(&self) -> Result<&Lifted<T>, SolverError> {
        self.vars.as_ref().ok_or_else(not_init)
    }

    /// The augmented objective `J` of the module doc (sum scale, INCLUDING
    /// `<Z_L, Lambda>` and the rescaled L2 term) at the current variables.
    pub fn augmented_objective(
        &mut self,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<f64, SolverError> {
        self.sync_data(train)?;
        let r = self.vars.as_ref().ok_or_else(not_init)?.residuals(
            train.inputs(),
            threads,
            &mut self.scratch,
        )?;
        self.augmented_from(&r, train, threads)
    }

    fn augmented_from(
        &mut self,
        r: &Residuals,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<f64, SolverError> {
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        #[cfg(test)]
        tally::note(&tally::REPORT);
        let mut lagr = 0.0;
        if self.config.full_lagrangian {
            let l = vars.layers() - 1;
            affine(
                &vars.w[l],
                &vars.b[l],
                vars.input(train.inputs(), l),
                threads,
                &mut self.scratch2,
            )?;
            lagr = -dot(&self.lambda, &self.scratch2);
        }
        let out = self
            .output
            .as_ref()
            .ok_or_else(|| SolverError::Problem("TaylorAdmm: not prepared".into()))?;
        let zl = &vars.z[vars.layers() - 1];
        let mut j = out.value(zl, train.targets())? + dot(zl, &self.lambda) + lagr;
        j += self.config.beta * r.linear.iter().map(|x| x * x).sum::<f64>();
        j += self.config.gamma * r.activation.iter().map(|x| x * x).sum::<f64>();
        if self.l2 > 0.0 {
            let w2: f64 = vars.w.iter().map(sq_norm).sum();
            j += self.l2 / (2.0 * self.sample_weight) * w2;
        }
        Ok(j)
    }

    /// The multiplier step `Lambda += beta (Z_L - W_L A_{L-1} - b_L)`; returns
    /// `beta ||m_L - m_L_prev||` (dual residual) and stores `m_L`.
    fn multiplier_step(
        &mut self,
        x: &DMatrix<T>,
        threads: usize,
        update: bool,
        from_products: bool,
    ) -> Result<f64, SolverError> {
        let beta = self.config.beta;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let l = vars.layers() - 1;
        let mut m = std::mem::take(&mut self.scratch2);
        match self.products.get(l) {
            // The output product of this iteration's Z_L step (same arithmetic).
            Some(p) if from_products => copy_into(&mut m, p),
            _ => {
                #[cfg(test)]
                tally::note(&tally::LAYER_MAPS);
                affine(&vars.w[l], &vars.b[l], vars.input(x, l), threads, &mut m)?
            }
        }
        let dual = if self.prev_m.shape() == m.shape() {
            beta * m
                .iter()
                .zip(self.prev_m.iter())
                .map(|(a, b)| (a.to_f64() - b.to_f64()).powi(2))
                .sum::<f64>()
                .sqrt()
        } else {
            0.0
        };
        if update {
            let bt = T::of(if self.config.full_lagrangian {
                2.0 * beta
            } else {
                beta
            });
            for ((lam, &z), &mi) in self.lambda.iter_mut().zip(vars.z[l].iter()).zip(m.iter()) {
                *lam += bt * (z - mi);
            }
        }
        ensure_shape(&mut self.prev_m, m.nrows(), m.ncols());
        self.prev_m.copy_from(&m);
        self.scratch2 = m;
        Ok(dual)
    }

    /// [`Lifted::residuals`] from the layer products kept by the Z-steps of this
    /// iteration (bit for bit the same arithmetic, without recomputing the products).
    fn residuals_from_products(&mut self) -> Result<Residuals, SolverError> {
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let scratch = &mut self.scratch;
        let mut r = Residuals::default();
        for l in 0..vars.layers() {
            copy_into(scratch, &self.products[l]);
            *scratch -= &vars.z[l];
            r.linear.push(sq_norm(scratch).sqrt());
            if l + 1 < vars.layers() {
                ensure_shape(scratch, vars.z[l].nrows(), vars.z[l].ncols());
                vars.h[l].apply_matrix(&vars.z[l], scratch);
                *scratch -= &vars.a[l];
                r.activation.push(sq_norm(scratch).sqrt());
            }
        }
        Ok(r)
    }

    /// One full iteration: the sweep, then (after the warm start) the multiplier step.
    /// The returned info counts the sweep's data passes over this process's samples
    /// (one per block, see the module doc). `train` may be another data set than the
    /// one the solver was prepared on: it is then checked against the lifted variables
    /// (a `ShapeMismatch` naming the input rows, samples or target width; the iterates
    /// are left as they were) and the output term and caches are rebuilt from it with
    /// the loss of the last `prepare`, as a fresh solver prepared on it from the same
    /// state would.
    pub fn iterate(
        &mut self,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<TaylorStepInfo, SolverError> {
        self.sync_data(train)?;
        let l_count = self.vars_ref()?.layers();
        self.products.resize_with(l_count, || DMatrix::zeros(0, 0));
        self.keep_products = true;
        let (mut inner, mut forward, mut backward) = (0, 0, 0);
        let mut swept = Ok(());
        for block in self.blocks() {
            match self.run_block(block, train, threads) {
                Ok(k) => {
                    inner += k;
                    if block.is_forward_pass() {
                        forward += 1;
                    } else {
                        backward += 1;
                    }
                }
                Err(e) => {
                    swept = Err(e);
                    break;
                }
            }
        }
        self.keep_products = false;
        swept?;
        self.iterations += 1;
        let r = self.residuals_from_products()?;
        let augmented = self.augmented_from(&r, train, threads)?;
        let update = self.iterations > self.config.warm_start;
        let dual = self.multiplier_step(train.inputs(), threads, update, true)?;
        self.vars_ref()?
            .check_finite("TaylorAdmm", self.iterations)?;
        if !self.lambda.iter().all(|v| v.finite()) {
            return Err(SolverError::NonFinite(format!(
                "TaylorAdmm: Lambda at iteration {}",
                self.iterations
            )));
        }
        Ok(TaylorStepInfo {
            augmented,
            residuals: r,
            dual_residual: dual,
            multiplier_updated: update,
            inner_solves: inner,
            forward_passes: forward,
            backward_passes: backward,
        })
    }

    /// Writes the current weights into `net`.
    pub fn write_weights(&self, net: &mut Sequential<T>) -> Result<(), SolverError> {
        self.vars_ref()?.write_to(net)
    }

    /// The sample weight of the problem's loss (1 for Sum, 1/N for Mean).
    pub fn sample_weight(&self) -> f64 {
        self.sample_weight
    }
}
