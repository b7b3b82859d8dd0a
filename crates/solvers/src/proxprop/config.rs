//! Validated configuration of [`super::ProxProp`].

use serde::{Deserialize, Serialize};

use super::linear::ProxSolve;
use crate::SolverError;

/// How the proximal step of each ProxProp layer is computed (reference `optimization_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ProxMode {
    /// `prox_exact`: Cholesky of the `(in+1)`-dimensional SPD system.
    Exact,
    /// `prox_cgN`: at most `iters` conjugate-gradient steps, early stop at `cg_tol`.
    Cg {
        /// N >= 1.
        iters: usize,
    },
    /// `gradient`: the explicit step, i.e. plain backprop (for comparison).
    Gradient,
}

/// The outer optimiser that consumes the ProxProp direction as a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Outer {
    /// SGD (PyTorch convention) with optional (Nesterov) momentum; `lr = 1`, no
    /// momentum applies exactly the proximal step.
    Sgd {
        /// Learning rate > 0.
        lr: f64,
        /// Momentum in [0, 1).
        momentum: f64,
        /// Nesterov momentum (needs momentum > 0).
        nesterov: bool,
    },
    /// Adam (PyTorch convention).
    Adam {
        /// Learning rate > 0.
        lr: f64,
        /// beta1 in [0, 1).
        beta1: f64,
        /// beta2 in [0, 1).
        beta2: f64,
        /// eps > 0.
        eps: f64,
    },
}

impl Outer {
    /// Adam with PyTorch's defaults and this learning rate.
    pub fn adam(lr: f64) -> Self {
        Outer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// The paper's MLP setting: SGD with Nesterov momentum 0.95.
    pub fn nesterov(lr: f64) -> Self {
        Outer::Sgd {
            lr,
            momentum: 0.95,
            nesterov: true,
        }
    }

    /// Its learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Outer::Sgd { lr, .. } | Outer::Adam { lr, .. } => lr,
        }
    }
}

/// Hyperparameters of ProxProp. Defaults are the reference code's
/// (`proxprop_pytorch.py`): `tau_prox = 1`, mode `prox_cg1`, CG tolerance 1e-2,
/// batch 500, Adam with lr 1e-3, the output layer a plain linear layer (gradient step,
/// as in the reference `ProxPropMLP`). Weight decay comes from the problem's loss
/// (`l2`, coupled, as PyTorch's `weight_decay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxPropConfig {
    /// tau_prox > 0: the proximal step size (weight `1/(2 tau)` on `||theta - theta_old||^2`).
    pub tau_prox: f64,
    /// Exact / CG / gradient.
    pub mode: ProxMode,
    /// Relative CG residual tolerance in (0, 1).
    pub cg_tol: f64,
    /// Mini-batch size (>= 1; clamped to N).
    pub batch_size: usize,
    /// Reshuffle the samples every epoch.
    pub shuffle: bool,
    /// Whether the output layer also takes a proximal step (reference: no).
    pub prox_output_layer: bool,
    /// The outer optimiser.
    pub outer: Outer,
}

impl Default for ProxPropConfig {
    fn default() -> Self {
        ProxPropConfig {
            tau_prox: 1.0,
            mode: ProxMode::Cg { iters: 1 },
            cg_tol: 1e-2,
            batch_size: 500,
            shuffle: true,
            prox_output_layer: false,
            outer: Outer::adam(1e-3),
        }
    }
}

const NAME: &str = "ProxProp";

fn positive(param: &'static str, v: f64) -> Result<(), SolverError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(SolverError::config(
            NAME,
            param,
            v,
            "must be finite and > 0",
        ))
    }
}

fn unit(param: &'static str, v: f64) -> Result<(), SolverError> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(SolverError::config(NAME, param, v, "must be in [0, 1)"))
    }
}

impl ProxPropConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        positive("tau_prox", self.tau_prox)?;
        if let ProxMode::Cg { iters: 0 } = self.mode {
            return Err(SolverError::config(NAME, "cg iters", 0, "must be >= 1"));
        }
        if !(self.cg_tol > 0.0 && self.cg_tol < 1.0) {
            return Err(SolverError::config(
                NAME,
                "cg_tol",
                self.cg_tol,
                "must be in (0, 1)",
            ));
        }
        if self.batch_size == 0 {
            return Err(SolverError::config(NAME, "batch_size", 0, "must be >= 1"));
        }
        match self.outer {
            Outer::Sgd {
                lr,
                momentum,
                nesterov,
            } => {
                positive("lr", lr)?;
                unit("momentum", momentum)?;
                if nesterov && momentum == 0.0 {
                    return Err(SolverError::config(
                        NAME,
                        "momentum",
                        0,
                        "must be > 0 with Nesterov",
                    ));
                }
            }
            Outer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                positive("lr", lr)?;
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)?;
            }
        }
        Ok(())
    }

    /// The linear solve of a ProxProp layer (None in gradient mode).
    pub fn prox_solve(&self) -> Option<ProxSolve> {
        match self.mode {
            ProxMode::Exact => Some(ProxSolve::Exact),
            ProxMode::Cg { iters } => Some(ProxSolve::Cg {
                iters,
                tol: self.cg_tol,
            }),
            ProxMode::Gradient => None,
        }
    }

    /// The solver, from a valid config.
    pub fn build<T: autodiff::Real>(self) -> Result<super::ProxProp<T>, SolverError> {
        self.validate()?;
        Ok(super::ProxProp::from_config(self))
    }
}
