//! INNA, the Inertial Newton Algorithm (Castera, Bolte, Févotte, Pauwels, "An Inertial
//! Newton Algorithm for Deep Learning", JMLR 22(134), 2021).
//!
//! INNA discretises the dynamical inertial Newton system
//! `theta'' + alpha theta' + beta Hess J(theta) theta' + grad J(theta) = 0`
//! in a Hessian-free first-order form with an auxiliary variable psi. With a stochastic
//! gradient v_k and step gamma_k, one update is
//!
//! ```text
//! P_k         = (alpha - 1/beta) theta_k + (1/beta) psi_k
//! psi_{k+1}   = psi_k   - gamma_k P_k
//! theta_{k+1} = theta_k - gamma_k (P_k + beta v_k)
//! ```
//!
//! with `psi_0 = (1 - alpha beta) theta_0` (so the initial velocity is
//! `-beta grad J(theta_0)`), and `gamma_k = lr / (1 + k)^decay_power`, k counting
//! updates (mini-batches).
//!
//! Verified (this session, against the authors' PyTorch code,
//! camcastera/INNA-for-DeepLearning, `INNA_for_pytorch/inna.py`): the update above, the
//! psi initialisation, the defaults lr = 0.1, alpha = 0.5, beta = 0.1,
//! decaypower = 0, and that the built-in decay counts optimizer steps. Unverified: the
//! values used in the paper's experiments (the authors' README schedules per epoch,
//! gamma_0 / sqrt(epoch + 1); use [`crate::first_order::Schedule`] for that by building
//! [`FirstOrder`] directly) and the convergence conditions (sum gamma_k = infinity,
//! gamma_k = o(1/log k)), recalled from the paper.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use crate::first_order::{FirstOrder, Schedule, Update};
use crate::{Batching, SolverError};

/// The INNA update rule (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InnaRule {
    /// alpha > 0 (viscous damping).
    pub alpha: f64,
    /// beta > 0 (Newtonian/geometric damping).
    pub beta: f64,
}

/// State of [`InnaRule`]: the auxiliary variable psi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InnaState<T> {
    /// psi_k.
    pub psi: Vec<T>,
}

impl<T: Real> Update<T> for InnaRule {
    type State = InnaState<T>;
    fn name(&self, lr: f64) -> String {
        format!("INNA(lr={lr}, alpha={}, beta={})", self.alpha, self.beta)
    }
    fn init(&self, params: &[T]) -> Self::State {
        let c = T::of(1.0 - self.alpha * self.beta);
        InnaState {
            psi: params.iter().map(|p| c * *p).collect(),
        }
    }
    fn apply(&self, s: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        let a = T::of(self.alpha - 1.0 / self.beta);
        let ib = T::of(1.0 / self.beta);
        let b = T::of(self.beta);
        for ((p, g), psi) in params.iter_mut().zip(grad).zip(s.psi.iter_mut()) {
            let phase = a * *p + ib * *psi;
            *psi -= lr * phase;
            *p -= lr * (phase + b * *g);
        }
    }
}

/// INNA hyperparameters; defaults are the authors' code defaults: lr = 0.1,
/// alpha = 0.5, beta = 0.1, decay_power = 0 (constant step); mini-batches of 64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InnaConfig {
    /// Initial step gamma_0 (> 0).
    pub lr: f64,
    /// alpha > 0.
    pub alpha: f64,
    /// beta > 0.
    pub beta: f64,
    /// gamma_k = lr / (1 + k)^decay_power (>= 0), k = updates so far.
    pub decay_power: f64,
    /// Full batch or mini-batches.
    pub batching: Batching,
}

impl Default for InnaConfig {
    fn default() -> Self {
        InnaConfig {
            lr: 0.1,
            alpha: 0.5,
            beta: 0.1,
            decay_power: 0.0,
            batching: Batching::mini(64),
        }
    }
}

impl InnaConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        let e = |p, v: f64, r| Err(SolverError::config("INNA", p, v, r));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return e("lr", self.lr, "must be finite and > 0");
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return e("alpha", self.alpha, "must be finite and > 0");
        }
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return e("beta", self.beta, "must be finite and > 0");
        }
        if !(self.decay_power >= 0.0 && self.decay_power.is_finite()) {
            return e("decay_power", self.decay_power, "must be finite and >= 0");
        }
        self.batching.validate("INNA")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<FirstOrder<T, InnaRule>, SolverError> {
        self.validate()?;
        let schedule = if self.decay_power > 0.0 {
            Schedule::InversePower {
                power: self.decay_power,
            }
        } else {
            Schedule::Constant
        };
        let rule = InnaRule {
            alpha: self.alpha,
            beta: self.beta,
        };
        FirstOrder::new(rule, self.lr, schedule, self.batching)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_velocity_is_minus_beta_gradient() {
        // psi_0 = (1 - alpha beta) theta_0 gives P_0 = alpha theta_0 - alpha theta_0 = 0,
        // so the first move is -gamma beta g (the derived initial velocity).
        let r = InnaRule {
            alpha: 0.5,
            beta: 0.1,
        };
        let mut p = vec![3.0f64, -1.0];
        let mut s = Update::<f64>::init(&r, &p);
        r.apply(&mut s, 0.1, &mut p, &[2.0, 4.0]);
        assert!((p[0] - (3.0 - 0.1 * 0.1 * 2.0)).abs() < 1e-14);
        assert!((p[1] - (-1.0 - 0.1 * 0.1 * 4.0)).abs() < 1e-14);
        // psi moved by -gamma P_0 = 0.
        assert!((s.psi[0] - 0.95 * 3.0).abs() < 1e-14);
    }
}
