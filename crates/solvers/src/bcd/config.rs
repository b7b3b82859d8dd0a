//! Hyperparameters of proximal BCD, validated once.

use serde::{Deserialize, Serialize};

use super::Bcd;
use crate::SolverError;
use autodiff::Real;

/// How the pair (W_l, b_l) is updated (ALGORITHMS.md correction 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WbUpdate {
    /// As the reference code: W_l and b_l both computed from the previous (W_l, b_l)
    /// (a Jacobi step on the two sub-blocks). The pair is ONE block: it decreases the
    /// penalised objective by at least `alpha ||(dW, db)||^2` (proof in the module doc);
    /// the b half alone can increase it.
    Jacobi,
    /// W_l from the old b_l, then b_l from the NEW W_l: two exact proximal block
    /// minimisations, each monotone on its own.
    Sequential,
}

/// How the weight block is minimised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightStep {
    /// Exact proximal minimisation: one `d_{l-1} x d_{l-1}` Cholesky solve per layer
    /// (the reference code).
    Exact,
    /// Prox-linear: one gradient step on the joint (W_l, b_l) block with step
    /// `1 / (L + alpha)`, `L` the block Lipschitz constant
    /// `rho lambda_max([V;1][V;1]^T) + l2`, estimated by power iteration and certified by backtracking (L doubled until
    /// the quadratic upper bound holds at the new point). No cubic solve.
    ProxLinear,
}

/// Configuration of [`Bcd`]. Defaults are the reference code's for its 3-hidden-layer
/// MNIST network (`gamma = rho = 1`, `alpha = 5`; ALGORITHMS.md 4.3 \[code\]);
/// [`BcdConfig::deep`] gives its 10-hidden-layer setting (`alpha = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BcdConfig {
    /// Weight gamma of the activation splitting `(gamma/2)||V_l - h(U_l)||^2` (> 0).
    pub gamma: f64,
    /// Weight rho of the linear splitting `(rho/2)||U_l - W_l V_{l-1} - b_l 1^T||^2` (> 0).
    pub rho: f64,
    /// Proximal weight alpha of `(alpha/2)||block - old||^2` on W, b, U_{l<L}, V_L (> 0).
    pub alpha: f64,
    /// Update of the (W_l, b_l) pair.
    pub wb_update: WbUpdate,
    /// Exact or prox-linear weight step.
    pub weight_step: WeightStep,
}

impl Default for BcdConfig {
    fn default() -> Self {
        BcdConfig {
            gamma: 1.0,
            rho: 1.0,
            alpha: 5.0,
            wb_update: WbUpdate::Jacobi,
            weight_step: WeightStep::Exact,
        }
    }
}

impl BcdConfig {
    /// The reference code's setting for its 10-hidden-layer net: `gamma = rho = alpha = 1`.
    pub fn deep() -> Self {
        BcdConfig {
            alpha: 1.0,
            ..Self::default()
        }
    }

    /// Checks every range: gamma, rho, alpha finite and > 0.
    pub fn validate(&self) -> Result<(), SolverError> {
        for (name, v) in [
            ("gamma", self.gamma),
            ("rho", self.rho),
            ("alpha", self.alpha),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(SolverError::config(
                    "BCD",
                    name,
                    v,
                    "must be finite and > 0",
                ));
            }
        }
        Ok(())
    }

    /// A solver from a valid config.
    pub fn build<T: Real>(self) -> Result<Bcd<T>, SolverError> {
        Bcd::new(self)
    }
}
