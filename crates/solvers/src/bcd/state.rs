//! The lifted variables of BCD and the block updates of one backward sweep.

use autodiff::{Real, Transpose};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Sequential};
use serde::{Deserialize, Serialize};

use super::config::{BcdConfig, WbUpdate, WeightStep};
use super::data::LiftedData;
use crate::linalg::{
    GramScratch, InputKey, add_diag, affine, check_finite, check_finite_vec, diff_and_norm,
    gram_sym, lambda_max_psd, mm, row_sums, solve_spd, spd_inverse, sq_diff, sq_norm, sq_norm_vec,
};
use crate::{Counters, SolverError};

const N: Transpose = Transpose::No;

const Y: Transpose = Transpose::Yes;

mod sweep;

/// One block of a BCD sweep (layers are 1-based, as in the paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BcdBlock {
    /// The output activation V_L (loss prox).
    OutputV,
    /// The output pre-activation U_L.
    OutputU,
    /// The pair (W_l, b_l) as one block ([`WbUpdate::Jacobi`] or prox-linear).
    WeightBias(usize),
    /// W_l alone ([`WbUpdate::Sequential`]).
    Weight(usize),
    /// b_l alone, from the new W_l ([`WbUpdate::Sequential`]).
    Bias(usize),
    /// A hidden activation V_l (l < L).
    Activation(usize),
    /// A hidden pre-activation U_l (l < L, ReLU / activation prox).
    PreActivation(usize),
}

/// Weights and lifted variables of the three-splitting formulation (ALGORITHMS.md 4.1):
/// `w[l-1] = W_l`, `b[l-1] = b_l`, `u[l-1] = U_l`, `v[l-1] = V_l` for `l = 1..L`
/// (`V_0 = X` is not stored). Memory: `2 N sum_{l>=1} d_l` numbers for U and V, plus one
/// `d x N` scratch matrix.
#[derive(Clone, Debug)]
pub struct BcdState<T: Real> {
    /// W_1..W_L.
    pub w: Vec<DMatrix<T>>,
    /// b_1..b_L.
    pub b: Vec<DVector<T>>,
    /// U_1..U_L (pre-activations).
    pub u: Vec<DMatrix<T>>,
    /// V_1..V_L (activations; V_L is the output variable).
    pub v: Vec<DMatrix<T>>,
    /// h_1..h_{L-1}.
    pub acts: Vec<Activation>,
    scratch: DMatrix<T>,
    /// `q x N` work matrices of the Woodbury form of the V step.
    work_q: DMatrix<T>,
    work_q2: DMatrix<T>,
    /// Layer 1's W-step matrix `rho X X^T + (alpha + l2) I` never changes: its Cholesky
    /// factor and `X 1` are kept (issue #14), keyed by `input_key`.
    input_key: InputKey,
    input_factor: Option<nalgebra::Cholesky<T, nalgebra::Dyn>>,
    input_sums: DVector<T>,
    /// `lin[l-1] = W_l V_{l-1} + b_l 1^T` of every layer as the penalised objective after
    /// a sweep computed them ([`BcdState::objective_and_violations_keep`]). The next
    /// sweep's `U_L` and hidden `U_l` steps need exactly these products (W_l and V_{l-1}
    /// change only after the layer's U step), so they are reused instead of recomputed
    /// (issue #14: one forward pass per sweep). Valid while `lin_ready` and `lin_key`
    /// (inputs, threads) match; dropped when the weights were changed from outside.
    lin: Vec<DMatrix<T>>,
    lin_ready: bool,
    lin_key: InputKey,
    /// Buffers of the hidden layers' Gram matrices ([`gram_sym`]).
    gram_ws: GramScratch<T>,
}

/// Lifted variables as checkpointed (weights live in the network).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct SavedUv<T: Real> {
    pub u: Vec<DMatrix<T>>,
    pub v: Vec<DMatrix<T>>,
}

impl<T: Real> BcdState<T> {
    /// State from a network and its inputs: weights copied, `U_l = Z_l`, `V_l = A_l`
    /// from the forward pass (so every splitting term starts at 0).
    pub fn from_net(net: &Sequential<T>, x: &DMatrix<T>) -> Result<Self, SolverError> {
        let layers = super::net_io::read_layers(net, "BCD")?;
        let trace = net
            .forward_trace(x)
            .map_err(|e| SolverError::Problem(format!("BCD init: {e}")))?;
        let l_count = layers.w.len();
        let u = (1..=l_count).map(|l| trace.z[l].clone()).collect();
        let v = (1..=l_count).map(|l| trace.a[l].clone()).collect();
        Ok(BcdState {
            w: layers.w,
            b: layers.b,
            u,
            v,
            acts: layers.view.activations,
            scratch: DMatrix::zeros(0, 0),
            work_q: DMatrix::zeros(0, 0),
            work_q2: DMatrix::zeros(0, 0),
            input_key: InputKey::default(),
            input_factor: None,
            input_sums: DVector::zeros(0),
            lin: vec![DMatrix::zeros(0, 0); l_count],
            lin_ready: false,
            lin_key: InputKey::default(),
            gram_ws: GramScratch::default(),
        })
    }

    /// Number of layers L.
    pub fn num_layers(&self) -> usize {
        self.w.len()
    }

    pub(crate) fn saved(&self) -> SavedUv<T> {
        SavedUv {
            u: self.u.clone(),
            v: self.v.clone(),
        }
    }

    /// Restores U and V (shapes checked against the weights).
    pub(crate) fn restore(&mut self, s: SavedUv<T>) -> Result<(), SolverError> {
        if s.u.len() != self.u.len()
            || s.v.len() != self.v.len()
            || s.u.iter().zip(&self.u).any(|(a, b)| a.shape() != b.shape())
            || s.v.iter().zip(&self.v).any(|(a, b)| a.shape() != b.shape())
        {
            return Err(SolverError::Checkpoint(
                "BCD: saved U/V do not match the network and data shapes".into(),
            ));
        }
        self.u = s.u;
        self.v = s.v;
        self.input_key.clear();
        self.forget_products();
        Ok(())
    }

    /// Drops everything derived from the data set (the first layer's factorization and
    /// the kept layer products): the solver steps on another one.
    pub(crate) fn forget_data(&mut self) {
        self.input_key.clear();
        self.forget_products();
    }

    /// Drops the layer products kept from the last objective (the weights or lifted
    /// variables were changed from outside the sweep).
    pub(crate) fn forget_products(&mut self) {
        self.lin_ready = false;
        self.lin_key.clear();
    }

    /// The penalised objective in sum form (ALGORITHMS.md 4.1, three-splitting):
    ///
    /// ```text
    /// Phi = sum_n ell(V_L[:, n], y_n) + (l2_sum/2) sum_l ||W_l||^2
    ///     + (gamma/2) sum_{l<L} ||V_l - h_l(U_l)||^2 + (gamma/2) ||V_L - U_L||^2
    ///     + (rho/2) sum_l ||U_l - W_l V_{l-1} - b_l 1^T||^2
    /// ```
    pub fn objective(&self, data: &LiftedData<T>, cfg: &BcdConfig) -> Result<f64, SolverError> {
        let l_count = self.num_layers();
        let mut phi = data.data_term(&self.v[l_count - 1])?;
        let ls = data.l2_sum();
        let mut act = DMatrix::zeros(0, 0);
        let mut lin = DMatrix::zeros(0, 0);
        for i in 0..l_count {
            phi += 0.5 * ls * sq_norm(&self.w[i]);
            if i + 1 < l_count {
                self.acts[i].apply_matrix(&self.u[i], &mut act);
                phi += 0.5 * cfg.gamma * sq_diff(&self.v[i], &act);
            } else {
                phi += 0.5 * cfg.gamma * sq_diff(&self.v[i], &self.u[i]);
            }
            let input = if i == 0 { data.x } else { &self.v[i - 1] };
            affine(&self.w[i], &self.b[i], input, 1, &mut lin)?;
            phi += 0.5 * cfg.rho * sq_diff(&self.u[i], &lin);
        }
        Ok(phi)
    }

    /// Relative violations per layer: `||U_l - W_l V_{l-1} - b_l||_F / ||W_l V_{l-1} + b_l||_F`
    /// and `||V_l - h_l(U_l)||_F / ||h_l(U_l)||_F` (identity at l = L).
    pub fn violations(&self, x: &DMatrix<T>) -> Result<Vec<(f64, f64)>, SolverError> {
        let l_count = self.num_layers();
        let mut out = Vec::with_capacity(l_count);
        let mut lin = DMatrix::zeros(0, 0);
        let mut act = DMatrix::zeros(0, 0);
        for i in 0..l_count {
            let input = if i == 0 { x } else { &self.v[i - 1] };
            affine(&self.w[i], &self.b[i], input, 1, &mut lin)?;
            let r_lin = (sq_diff(&self.u[i], &lin) / sq_norm(&lin).max(1e-300)).sqrt();
            if i + 1 < l_count {
                self.acts[i].apply_matrix(&self.u[i], &mut act);
            } else {
                act = self.u[i].clone();
            }
            let r_act = (sq_diff(&self.v[i], &act) / sq_norm(&act).max(1e-300)).sqrt();
            out.push((r_lin, r_act));
        }
        Ok(out)
    }

    /// [`BcdState::objective`] and [`BcdState::violations`] from one pass over the layers
    /// (each layer's `W_l V_{l-1} + b_l` and `h_l(U_l)` computed once for both; the
    /// same arithmetic, so bit for bit the two separate calls).
    pub fn objective_and_violations(
        &mut self,
        data: &LiftedData<T>,
        cfg: &BcdConfig,
    ) -> Result<(f64, Vec<(f64, f64)>), SolverError> {
        self.forget_products();
        self.objective_and_violations_keep(data, cfg, 1)
    }

    /// [`BcdState::objective_and_violations`] that keeps every layer's `W_l V_{l-1} + b_l`
    /// (computed with `threads`) for the next [`BcdState::sweep`]'s U steps. Bit for bit
    /// the products the U steps would compute (the same [`affine`] call on the same
    /// operands), so the iterates do not change.
    pub(crate) fn objective_and_violations_keep(
        &mut self,
        data: &LiftedData<T>,
        cfg: &BcdConfig,
        threads: usize,
    ) -> Result<(f64, Vec<(f64, f64)>), SolverError> {
        self.lin_ready = false;
        let l_count = self.num_layers();
        let mut phi = data.data_term(&self.v[l_count - 1])?;
        let ls = data.l2_sum();
        let mut out = Vec::with_capacity(l_count);
        // Work buffers kept in the state (d x N each: no allocation per step).
        let mut act = std::mem::take(&mut self.work_q);
        let mut r = Ok(());
        for i in 0..l_count {
            phi += 0.5 * ls * sq_norm(&self.w[i]);
            let act = if i + 1 < l_count {
                self.acts[i].apply_matrix(&self.u[i], &mut act);
                &act
            } else {
                &self.u[i]
            };
            let (d_act, n_act) = diff_and_norm(&self.v[i], act);
            phi += 0.5 * cfg.gamma * d_act;
            let input = if i == 0 { data.x } else { &self.v[i - 1] };
            let lin = &mut self.lin[i];
            if let Err(e) = affine(&self.w[i], &self.b[i], input, threads, lin) {
                r = Err(e);
                break;
            }
            let (d_lin, n_lin) = diff_and_norm(&self.u[i], lin);
            phi += 0.5 * cfg.rho * d_lin;
            let r_lin = (d_lin / n_lin.max(1e-300)).sqrt();
            let r_act = (d_act / n_act.max(1e-300)).sqrt();
            out.push((r_lin, r_act));
        }
        self.work_q = act;
        r?;
        self.lin_ready = true;
        self.lin_key.hit(data.x, threads);
        Ok((phi, out))
    }
}
