//! Validated configurations of the two ADMM solvers, with the authors' defaults.

use serde::{Deserialize, Serialize};

use crate::SolverError;

/// Columns per chunk of the data-parallel sample reductions (`A A^T`, `Z A^T`): the
/// chunk boundaries are fixed, so results depend only on the thread count.
pub const SAMPLE_CHUNK: usize = 256;

fn positive(solver: &'static str, param: &'static str, v: f64) -> Result<(), SolverError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(SolverError::config(
            solver,
            param,
            v,
            "must be finite and > 0",
        ))
    }
}

/// The loss the ADMM output block `Z_L` minimises.
///
/// The TRUE objective the driver records is always the problem's own `Loss` on the
/// network output; this only chooses the per-sample loss `ell` inside the splitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputLoss {
    /// `ell(z, y) = (1/2) ||z - y||^2` with `y` the dense targets or the one-hot labels
    /// (closed-form output step).
    LeastSquares,
    /// Entrywise binary hinge of Taylor et al. (ALGORITHMS.md 2.2), one output per
    /// class ("one-vs-all"): `ell(z, y) = sum_k [y_k max(1 - z_k, 0) + (1 - y_k)
    /// max(z_k, 0)]` with `y` one-hot labels (or dense 0/1 targets). Closed form.
    Hinge,
    /// The problem's own per-sample loss (MSE, softmax cross-entropy, logistic), with
    /// its prox from `nets::loss_prox` (closed form or Newton). The multiclass
    /// (Weston-Watkins) hinge has no prox there: an error at `init`.
    Problem,
}

/// How [`super::TaylorAdmm`] starts its lifted variables `Z_l`, `A_l`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TaylorStart {
    /// From a forward pass of the problem's initial weights: `Z_l = W_l A_{l-1} + b_l`,
    /// `A_l = h(Z_l)`, every residual 0, so the first W-steps return the initial weights
    /// (strata's default; not the paper's).
    ForwardPass,
    /// The paper's start (Taylor et al., ICML 2016, Section 6 "Implementation details",
    /// PDF p. 6 of the PMLR camera-ready `taylor16.pdf`): every `A_l` (hidden) and every
    /// `Z_l` (output included) i.i.d. `N(0, std^2)`, drawn from the run's seeded RNG; the
    /// paper uses unit variance and reports the results "fairly insensitive" to it. Since
    /// "the method updates the weights before anything else", the weights need no
    /// initialisation: every `W_l, b_l` is then set by its least-squares W-step from the
    /// random `Z_l`, `A_{l-1}` (`A_0 = X`) before the first sweep (Algorithm 1, p. 3,
    /// updates `A_l` with `W_{l+1}` before `W_{l+1}` itself, so without this pass the
    /// first A-steps would use the problem's weights). The multiplier starts at 0
    /// (Section 4.2, p. 4: "generally initialized to zero").
    Gaussian {
        /// Standard deviation of the draws (finite, > 0); the paper's 1.
        std: f64,
    },
}

/// Taylor et al. (ICML 2016), "Training Neural Networks Without Gradients: A Scalable
/// ADMM Approach" (arXiv 1605.02026); ALGORITHMS.md section 2.
///
/// Defaults: `gamma = 10`, `beta = 1` for every layer, as the paper's Section 6 (PMLR
/// camera-ready `taylor16.pdf`, PDF p. 6: "gamma_i = 10 and beta_i = 1 for all trials";
/// also the third-party NumPy port by L. Rutigliano). `warm_start = 10` iterations
/// without multiplier updates: the paper "frequently" warm starts by "running several
/// iterations without Lagrange multiplier updates" (same page) and gives no number; 10
/// is this crate's choice. Output loss: the paper's binary hinge. Start: a forward pass
/// of the problem's weights (strata's choice, default); the paper's i.i.d. `N(0, 1)`
/// start is [`TaylorConfig::with_gaussian_start`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaylorConfig {
    /// Weight `gamma_l` of `||A_l - h(Z_l)||^2` (> 0), the same for every hidden layer.
    pub gamma: f64,
    /// Weight `beta_l` of `||Z_l - W_l A_{l-1} - b_l||^2` (> 0), every layer.
    pub beta: f64,
    /// Iterations at the start that skip the multiplier (Bregman) step.
    pub warm_start: u64,
    /// Loss of the output block.
    pub output_loss: OutputLoss,
    /// Relative proximal ridge of the W-step (> 0): the step minimises the block
    /// objective plus `beta eps ||[W b] - [W b]_old||^2`, `eps = ridge * max(1,
    /// trace(A~ A~^T) / (d + 1))`. It keeps the normal equations positive definite when
    /// a ReLU unit is dead (A A^T singular, ALGORITHMS.md correction 1) and keeps every
    /// block step a descent step of the augmented objective.
    pub ridge: f64,
    /// Fit biases (the paper has none). With `false` the biases of the network are
    /// held at their initial values.
    pub biases: bool,
    /// NOT in the paper (default `false`): let the multiplier also enter the `W_L` and
    /// `A_{L-1}` steps through the Lagrangian term `-<Lambda, W_L A_{L-1} + b_L>` (they
    /// then fit `Z_L + Lambda / (2 beta)`), with the matching dual step `2 beta`: a
    /// standard method of multipliers on the output equation. The paper's Bregman form
    /// stops at points that depend on the warm start (docs/ADMM.md).
    pub full_lagrangian: bool,
    /// How `Z_l`, `A_l` (and, for the Gaussian start, the weights) start
    /// ([`TaylorStart`]); default [`TaylorStart::ForwardPass`].
    pub start: TaylorStart,
}

impl Default for TaylorConfig {
    fn default() -> Self {
        TaylorConfig {
            gamma: 10.0,
            beta: 1.0,
            warm_start: 10,
            output_loss: OutputLoss::Hinge,
            ridge: 1e-8,
            biases: true,
            full_lagrangian: false,
            start: TaylorStart::ForwardPass,
        }
    }
}

impl TaylorConfig {
    /// The paper's start (builder): `Z_l`, `A_l` i.i.d. `N(0, std^2)` from the run's RNG,
    /// the weights from least squares on them ([`TaylorStart::Gaussian`]; Taylor et al.
    /// Section 6, p. 6, use `std = 1`).
    pub fn with_gaussian_start(mut self, std: f64) -> Self {
        self.start = TaylorStart::Gaussian { std };
        self
    }

    /// Checks every range; the message names the parameter and its value.
    pub fn validate(&self) -> Result<(), SolverError> {
        positive("TaylorAdmm", "gamma", self.gamma)?;
        positive("TaylorAdmm", "beta", self.beta)?;
        positive("TaylorAdmm", "ridge", self.ridge)?;
        if let TaylorStart::Gaussian { std } = self.start {
            positive("TaylorAdmm", "start std", std)?;
        }
        Ok(())
    }
}

/// How dlADMM sets its penalty parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum DlPenalty {
    /// The paper's form: fixed `nu` (relaxation of the hidden-layer equations) and
    /// fixed `rho` (augmented Lagrangian of the output equation), separate. The
    /// convergence theorem needs `rho` large enough relative to `nu` and to the
    /// Lipschitz constant of the gradient of the output loss (exact threshold not
    /// verified here, ALGORITHMS.md 3.4).
    Fixed {
        /// Weight of the relaxed hidden-layer equations (> 0).
        nu: f64,
        /// Augmented-Lagrangian penalty of the output equation (> 0).
        rho: f64,
    },
    /// The reference code's rule (xianggebenben/dlADMM, MLP main.py): one `rho` for
    /// both roles, starting at `rho0`; whenever the TRUE training objective increased
    /// in each of the last three iterations, `rho <- min(factor rho, rho_max)` and,
    /// for hidden widths >= 100, the backtracking starts `theta`, `tau` are multiplied
    /// by `factor` as well.
    Adaptive {
        /// Initial rho (> 0); code: 1e-6.
        rho0: f64,
        /// Cap (>= rho0); code: 0.1.
        rho_max: f64,
        /// Growth factor (> 1); code: 10.
        factor: f64,
    },
}

/// How the dlADMM output block `Z_L` is minimised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ZlSolver {
    /// Column-wise Newton prox of `nets::loss_prox` (solved to 1e-12).
    Newton,
    /// The reference code's proximal-gradient iterations: step `eta`, at most
    /// `max_iter` iterations, stop when the objective changes by less than `tol`
    /// (code: eta = 4, 500, 1e-3).
    ProxGradient {
        /// Step on the loss gradient (> 0).
        eta: f64,
        /// Iteration cap (> 0).
        max_iter: usize,
        /// Stop when the objective changes by less than this (>= 0).
        tol: f64,
    },
}

impl ZlSolver {
    /// The reference code's output iterations: eta 4, at most 500 iterations, tolerance
    /// 1e-3 on the change of the (sum-scale) objective; run without the code's FISTA
    /// extrapolation (module doc of `admm::output_pg`).
    pub fn reference() -> Self {
        ZlSolver::ProxGradient {
            eta: 4.0,
            max_iter: 500,
            tol: 1e-3,
        }
    }
}

/// dlADMM: Wang, Yu, Chen, Zhao, "ADMM for Efficient Deep Learning with Global
/// Convergence", KDD 2019 (arXiv 1905.13611); ALGORITHMS.md section 3.
///
/// Defaults are the reference code's (ALGORITHMS.md 3.3, read in
/// xianggebenben/dlADMM MLP/pytorch_version/main.py): adaptive rho from 1e-6 capped
/// at 0.1, `theta = tau = 1` restarted at every call, backtracking factor 2, output
/// block by proximal iterations (eta 4, 500 iterations, tol 1e-3), output initialised
/// to +1 on the true class and -1 elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DlAdmmConfig {
    /// Penalty parameters (fixed as in the paper, or the code's adaptive rule).
    pub penalty: DlPenalty,
    /// Initial curvature `theta` of the W-step majorizer (> 0).
    pub theta: f64,
    /// Initial curvature `tau` of the A-step majorizer (> 0).
    pub tau: f64,
    /// Backtracking growth factor of theta and tau (> 1); code: 2.
    pub backtrack: f64,
    /// Solver of the output block.
    pub zl_solver: ZlSolver,
    /// Initialise `Z_L` to +1 / -1 on the true / other classes (code) instead of the
    /// network's output (needs labels or dense targets).
    pub init_output_from_targets: bool,
    /// Cap on backtracking doublings per block step (> 0).
    pub max_backtracks: usize,
}

impl Default for DlAdmmConfig {
    fn default() -> Self {
        DlAdmmConfig {
            penalty: DlPenalty::Adaptive {
                rho0: 1e-6,
                rho_max: 0.1,
                factor: 10.0,
            },
            theta: 1.0,
            tau: 1.0,
            backtrack: 2.0,
            zl_solver: ZlSolver::reference(),
            init_output_from_targets: true,
            max_backtracks: 200,
        }
    }
}

impl DlAdmmConfig {
    /// The paper's form (as far as it could be checked, ALGORITHMS.md 3.1/3.7): separate
    /// fixed `nu` and `rho` (no adaptive rule), the output block solved exactly (Newton
    /// prox), lifted variables from the network's forward pass. The reference code's
    /// choices (one adaptive rho, prox-gradient output, +/-1 output init) are
    /// [`DlAdmmConfig::default`].
    pub fn paper(nu: f64, rho: f64) -> Self {
        DlAdmmConfig {
            penalty: DlPenalty::Fixed { nu, rho },
            zl_solver: ZlSolver::Newton,
            init_output_from_targets: false,
            ..DlAdmmConfig::default()
        }
    }

    /// Checks every range; the message names the parameter and its value.
    pub fn validate(&self) -> Result<(), SolverError> {
        const S: &str = "DlAdmm";
        match self.penalty {
            DlPenalty::Fixed { nu, rho } => {
                positive(S, "nu", nu)?;
                positive(S, "rho", rho)?;
            }
            DlPenalty::Adaptive {
                rho0,
                rho_max,
                factor,
            } => {
                positive(S, "rho", rho0)?;
                if !(rho_max >= rho0 && rho_max.is_finite()) {
                    return Err(SolverError::config(
                        S,
                        "rho_max",
                        rho_max,
                        "must be finite and >= rho0",
                    ));
                }
                if !(factor > 1.0 && factor.is_finite()) {
                    return Err(SolverError::config(
                        S,
                        "factor",
                        factor,
                        "must be finite and > 1",
                    ));
                }
            }
        }
        positive(S, "theta", self.theta)?;
        positive(S, "tau", self.tau)?;
        if !(self.backtrack > 1.0 && self.backtrack.is_finite()) {
            return Err(SolverError::config(
                S,
                "backtrack",
                self.backtrack,
                "must be finite and > 1",
            ));
        }
        if self.max_backtracks == 0 {
            return Err(SolverError::config(S, "max_backtracks", 0, "must be > 0"));
        }
        crate::caps::check_inner_count(S, "max_backtracks", self.max_backtracks)?;
        if let ZlSolver::ProxGradient { eta, max_iter, tol } = self.zl_solver {
            positive(S, "eta", eta)?;
            if max_iter == 0 {
                return Err(SolverError::config(S, "max_iter", 0, "must be > 0"));
            }
            if !(tol >= 0.0 && tol.is_finite()) {
                return Err(SolverError::config(
                    S,
                    "tol",
                    tol,
                    "must be finite and >= 0",
                ));
            }
        }
        Ok(())
    }
}
