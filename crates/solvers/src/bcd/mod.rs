//! Proximal block coordinate descent (BCD) for MLP training, three-splitting form.
//!
//! Source: J. Zeng, T. T.-K. Lau, S. Lin, Y. Yao, "Global Convergence of Block
//! Coordinate Descent in Deep Learning", ICML 2019 (arXiv 1803.00225); reference code
//! timlautk/BCD-for-DNNs-PyTorch (ALGORITHMS.md section 4, corrections 2 and 3).
//!
//! # Problem
//!
//! With `V_0 = X`, hidden activations `h_l`, identity at the output, the method
//! minimises over `W, b, U, V` (sum form, see [`LiftedData`]):
//!
//! ```text
//! Phi = sum_n ell(V_L[:, n], y_n) + (l2/2) sum_l ||W_l||^2
//!     + (gamma/2) sum_{l<L} ||V_l - h_l(U_l)||^2 + (gamma/2) ||V_L - U_L||^2
//!     + (rho/2) sum_l ||U_l - W_l V_{l-1} - b_l 1^T||^2
//! ```
//!
//! The reference code uses `ell = (1/2)||v - y||^2` against one-hot targets and no L2;
//! here any loss with an output prox works (MSE closed form; softmax cross-entropy and
//! logistic by `nets`' Newton prox), and the L2 penalty of the problem's loss enters the
//! W step.
//!
//! # One iteration = one backward sweep (ALGORITHMS.md 4.2, as in the reference code)
//!
//! 1. `V_L <- argmin ell(V) + (gamma/2)||V - U_L||^2 + (alpha/2)||V - V_L_old||^2`
//!    (MSE: `(Y + gamma U_L + alpha V_old)/(1 + gamma + alpha)`).
//! 2. `U_L <- (gamma V_L + rho (W_L V_{L-1} + b_L 1^T)) / (gamma + rho)`.
//! 3. For `l = L, ..., 1`:
//!    * the weight block (W_l, b_l) (see below);
//!    * if `l >= 2`: `V_{l-1} <- (rho W_l^T W_l + gamma I)^{-1} (rho W_l^T (U_l - b_l 1^T)
//!      + gamma h(U_{l-1}))` with the NEW W_l, b_l;
//!    * if `l >= 2`: `U_{l-1} <- argmin (gamma/2)(V_{l-1} - h(U))^2 + (rho/2)(U - W_{l-1}
//!      V_{l-2} - b_{l-1})^2 + (alpha/2)(U - U_old)^2`, entrywise by
//!      [`nets::prox::prox_weighted`] (closed form for ReLU: the reference's `relu_prox`
//!      with `g = (rho + alpha)/gamma`).
//!
//! The U_L and V_{l<L} steps carry no proximal term (as in the code): their subproblems
//! are strongly convex, so exact minimisation still decreases `Phi` (correction 2).
//!
//! # The weight block (correction 2) and why it is monotone
//!
//! [`WbUpdate::Jacobi`] (default, the reference code): both halves from the previous
//! pair, `W_new = (alpha W + rho (U - b 1^T) V^T)(alpha I + rho V V^T + l2 I)^{-1}`,
//! `b_new = (alpha b + rho (U - W V) 1)/(rho N + alpha)`. Write `f(W, b)` for the part of
//! `Phi` depending on the pair: a convex quadratic with Hessian `H = [[A, C], [C^T, B]]`.
//! The Jacobi step is `x+ = x - D^{-1} g` with `D = diag(A + alpha I, B + alpha I)`, so
//! `f(x+) = f(x) - (1/2) d^T (2D - H) d` with `d = x+ - x`, and
//! `2D - H = [[A, -C], [-C^T, B]] + 2 alpha I >= 2 alpha I` because the sign-flipped
//! Hessian is PSD too. Hence `f(x+) <= f(x) - alpha ||d||^2`: the PAIR is one monotone
//! block (the b half alone is not; +7.3% was observed). Tests check `Phi` after the pair.
//! [`WbUpdate::Sequential`] computes b from the new W: two exact block minimisations,
//! each checked on its own.
//!
//! [`WeightStep::ProxLinear`]: `(W, b) <- (W, b) - grad f / (L + alpha)` with
//! `L >= lambda_max` of the block Hessian (`rho ||[V; 1]||_2^2 + l2`), estimated by power
//! iteration and certified by checking the quadratic upper bound at the new point
//! (doubling L on failure), so `f` never increases. This follows the prox-linear idea of
//! ALGORITHMS.md 4.2 \[memory\]; it avoids the `d^3` solve but converges more slowly.
//!
//! # Defaults and verification status
//!
//! `gamma = rho = 1`, `alpha = 5` (3 hidden layers x 1500) or `alpha = 1`
//! ([`BcdConfig::deep`], 10 hidden layers x 600); the reference initialises
//! `W ~ 0.01 N(0, 1)`, `b = 0.1` ([`reference_init`]). Verified here against the
//! reference notebook `bcd_dnn_mlp_mnist_deep.ipynb` (read with the search tool):
//! `gamma = rho = alpha = 1`, the 0.01 N(0,1) / 0.1 initialisation, the W/b formulas
//! with b fed the old W, the V formula without alpha, and `relu_prox(V, (rho (W V + b) +
//! alpha U)/(rho + alpha), (rho + alpha)/gamma)`. The paper's own text (two-splitting
//! form, prox-linear variant, the exact statement of its rate) could not be retrieved;
//! those remain \[memory\] in ALGORITHMS.md.
//!
//! # Cost and memory
//!
//! Per layer and sweep: `V V^T` (a half product, `crate::linalg`'s `gram_sym`, for
//! hidden inputs; layer 1's factor is kept) and `W^T U` GEMMs (`d^2 N`), two Cholesky
//! solves of size `d_{l-1}` (`d^3`), one prox per entry of `U`, and the objective's
//! layer products after the sweep, which the next sweep's U steps reuse (issue #14).
//! Memory: `U_l, V_l` and the kept products `W_l V_{l-1} + b_l` for all samples,
//! `3 N sum_{l>=1} d_l` numbers, plus `d x N` scratch matrices. Full batch.
//!
//! Accounting per sweep ([`BcdState::sweep`]): one data pass per block update (each
//! block touches every sample once through its layer; docs/RESULTS_SCHEMA.md counts a
//! pass through one layer as a whole pass): forward-type for `V_L`, `U_L` and the hidden
//! `U_l`, backward-type for the weight/bias blocks and the hidden `V_l`, plus one forward
//! per prox-linear trial; with exact Jacobi steps `L + 1` forward and `2L - 1` backward
//! passes (`samples_seen += (3L) N`). (Until round 2 a whole sweep counted as one pass,
//! which gave BCD about `3L` times more sweeps than the unit allows.) `inner_solves +=`
//! Cholesky solves + prox maps (one per block) + prox-linear trials.

mod config;
mod data;
pub(crate) mod net_io;
mod state;
#[cfg(test)]
pub(crate) mod tests;
mod u_kernel;

pub use config::{BcdConfig, WbUpdate, WeightStep};
pub use data::LiftedData;
pub use state::{BcdBlock, BcdState};

use autodiff::Real;
use nets::{Dataset, Loss, Sequential};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Context, NetProblem, Solver, SolverError, StepReport};

/// The proximal BCD solver (see the module doc). Build it from a validated
/// [`BcdConfig`]. Full batch: one step is one backward sweep over all blocks.
#[derive(Clone, Debug)]
pub struct Bcd<T: Real> {
    config: BcdConfig,
    state: Option<BcdState<T>>,
    /// The training set the state's data-derived caches were computed from.
    stamp: crate::linalg::DataStamp,
    pending: Option<state::SavedUv<T>>,
    sweeps: u64,
}

/// What [`Bcd`] checkpoints (weights are in the network).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Saved<T: Real> {
    sweeps: u64,
    uv: Option<state::SavedUv<T>>,
}

impl<T: Real> Bcd<T> {
    /// A solver from `config` (validated here).
    pub fn new(config: BcdConfig) -> Result<Self, SolverError> {
        config.validate()?;
        Ok(Bcd {
            config,
            state: None,
            stamp: crate::linalg::DataStamp::default(),
            pending: None,
            sweeps: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BcdConfig {
        &self.config
    }

    /// The lifted state (None before `init`).
    pub fn state(&self) -> Option<&BcdState<T>> {
        self.state.as_ref()
    }

    /// Sweeps done so far.
    pub fn sweeps(&self) -> u64 {
        self.sweeps
    }

    /// Display name with the hyperparameters.
    pub fn display_name(&self) -> String {
        let c = &self.config;
        format!(
            "BCD(gamma={},rho={},alpha={},{:?},{:?})",
            c.gamma, c.rho, c.alpha, c.wb_update, c.weight_step
        )
    }

    /// Initialises U, V from the forward pass of `net` on the training inputs.
    pub fn init_parts(
        &mut self,
        net: &Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
    ) -> Result<(), SolverError> {
        net_io::check_loss(loss, "BCD")?;
        self.state = Some(BcdState::from_net(net, train.inputs())?);
        self.pending = None;
        self.sweeps = 0;
        Ok(())
    }

    /// One sweep on explicit parts (what [`crate::Solver::step`] does on a network
    /// problem): reads W, b from `net`, sweeps, writes W, b back.
    pub fn step_parts(
        &mut self,
        net: &mut Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.step_with_hook(net, train, loss, ctx, &mut |_, _| {})
    }

    /// [`Bcd::step_parts`] calling `hook` after every block update.
    pub fn step_with_hook(
        &mut self,
        net: &mut Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
        ctx: &mut Context,
        hook: &mut dyn FnMut(BcdBlock, &BcdState<T>),
    ) -> Result<StepReport, SolverError> {
        net_io::check_loss(loss, "BCD")?;
        if self.state.is_none() {
            // Resumed from a checkpoint (or stepped without init): rebuild from the net.
            self.state = Some(BcdState::from_net(net, train.inputs())?);
        }
        let data = LiftedData::new(train, loss);
        let cfg = self.config;
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| SolverError::Problem("BCD state missing".into()))?;
        if let Some(saved) = self.pending.take() {
            state.restore(saved)?;
        }
        if net_io::reload_layers(net, &mut state.w, &mut state.b, "BCD")? {
            state.forget_products();
        }
        if self.stamp.changed(train) {
            // Another data set (its inputs may sit at the old one's address).
            state.forget_data();
        }
        state.sweep(&data, &cfg, ctx.threads, ctx.counters, hook)?;
        net_io::write_layers(net, &state.w, &state.b, "BCD")?;
        self.sweeps += 1;
        let (phi, violations) = state.objective_and_violations_keep(&data, &cfg, ctx.threads)?;
        if !phi.is_finite() {
            return Err(SolverError::NonFinite(format!(
                "BCD penalised objective after sweep {}",
                self.sweeps
            )));
        }
        let mut report = StepReport::new()
            .with_surrogate(phi * data.weight())
            .with("gamma", cfg.gamma)
            .with("rho", cfg.rho)
            .with("alpha", cfg.alpha);
        for (l, (lin, act)) in violations.into_iter().enumerate() {
            report = report
                .with(&format!("viol_lin_{}", l + 1), lin)
                .with(&format!("viol_act_{}", l + 1), act);
        }
        Ok(report)
    }

    /// The solver state as JSON (sweep count and U, V; the weights are in the network).
    pub fn save_json(&self) -> serde_json::Value {
        let saved = Saved {
            sweeps: self.sweeps,
            uv: self.state.as_ref().map(|s| s.saved()),
        };
        serde_json::to_value(saved).unwrap_or(serde_json::Value::Null)
    }

    /// Restores [`Bcd::save_json`]; U, V are applied at the next step (whose network
    /// must hold the checkpointed weights).
    pub fn load_json(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let saved: Saved<T> = serde_json::from_value(v.clone())?;
        self.sweeps = saved.sweeps;
        self.state = None;
        self.pending = saved.uv;
        Ok(())
    }
}

/// The reference code's initialisation (ALGORITHMS.md 4.3, verified in
/// `bcd_dnn_mlp_mnist_deep.ipynb`): every `W_l ~ 0.01 N(0, 1)`, every `b_l = 0.1`.
/// (At width 64 this init is too small for BCD itself to train a 10-hidden-layer net;
/// see docs/LIFTED.md and [`normal_init`].)
pub fn reference_init<T: Real, R: Rng + ?Sized>(
    net: &mut Sequential<T>,
    rng: &mut R,
) -> Result<(), SolverError> {
    normal_init(net, 0.01, 0.1, rng)
}

/// Every `W_l ~ std N(0, 1)` (column-major draws from [`nets::init::normal_pair`]) and
/// every `b_l = bias`: the reference initialisation with another scale.
pub fn normal_init<T: Real, R: Rng + ?Sized>(
    net: &mut Sequential<T>,
    std: f64,
    bias: f64,
    rng: &mut R,
) -> Result<(), SolverError> {
    if !(std.is_finite() && std >= 0.0 && bias.is_finite()) {
        return Err(SolverError::config(
            "normal_init",
            "std",
            std,
            "must be finite and >= 0 (and bias finite)",
        ));
    }
    for l in 0..net.num_dense() {
        let d = net
            .dense_mut(l)
            .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
        let mut pending: Option<f64> = None;
        for w in d.weight.iter_mut() {
            let z = match pending.take() {
                Some(z) => z,
                None => {
                    let (a, b) = nets::init::normal_pair(rng);
                    pending = Some(b);
                    a
                }
            };
            *w = T::of(std * z);
        }
        d.bias.fill(T::of(bias));
    }
    Ok(())
}

impl<T: Real> Solver<NetProblem<T>> for Bcd<T> {
    fn name(&self) -> String {
        self.display_name()
    }

    /// Builds the state from a forward pass of the network (one data pass, counted).
    fn init(&mut self, problem: &mut NetProblem<T>, ctx: &mut Context) -> Result<(), SolverError> {
        self.init_parts(&problem.net, &problem.train, &problem.loss)?;
        ctx.counters.add_forward(problem.train.len());
        Ok(())
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.step_parts(&mut problem.net, &problem.train, &problem.loss, ctx)
    }

    fn save_state(&self) -> serde_json::Value {
        self.save_json()
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.load_json(v)
    }

    /// Saved U_l, V_l must be `d_l x N` for every layer l = 1..L.
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        crate::state_check::check_count("BCD", "sweeps", self.sweeps)?;
        let Some(uv) = &self.pending else {
            return Err(SolverError::Checkpoint(
                "BCD: checkpoint has no U/V (`uv`) (a checkpoint is written after init)".into(),
            ));
        };
        let widths = problem.net.mlp_view()?.widths;
        let n = problem.train.len();
        crate::state_check::check_layer_matrices("BCD", "u", &uv.u, &widths[1..], n)?;
        crate::state_check::check_layer_matrices("BCD", "v", &uv.v, &widths[1..], n)
    }
}
