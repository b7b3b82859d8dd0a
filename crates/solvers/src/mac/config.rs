//! Hyperparameters of MAC, validated once.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::Mac;
use crate::SolverError;

/// Configuration of [`Mac`]. The penalty follows `mu_k = min(mu0 * mu_factor^floor(k /
/// iters_per_mu), mu_max)` for iteration `k = 0, 1, ...` (a geometric schedule as in
/// the MAC paper, whose exact constants are \[memory\] in ALGORITHMS.md 5.2; the defaults
/// here were chosen on the digits benchmark and are documented in docs/LIFTED.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacConfig {
    /// Initial penalty mu_0 (> 0).
    pub mu0: f64,
    /// Factor applied to mu every `iters_per_mu` iterations (>= 1; 1 keeps mu fixed).
    pub mu_factor: f64,
    /// Iterations (Z-step + W-step) per value of mu (>= 1).
    pub iters_per_mu: usize,
    /// Cap on mu (>= mu0).
    pub mu_max: f64,
    /// Majorize-minimize steps per hidden layer in each Z-step (>= 1).
    pub z_steps: usize,
    /// Majorize-minimize steps of the output layer's W-step when the loss is not MSE
    /// (for MSE one step is the exact least-squares solution) (>= 1).
    pub out_steps: usize,
    /// Proximal ridge eps of the W-step, `(eps/2)||(W, b) - (W, b)_old||^2` (> 0): keeps
    /// the normal equations positive definite when a unit is dead, without moving the
    /// minimiser measurably and without breaking monotonicity.
    pub ridge: f64,
    /// Start every Z-step by trying the feasible point `Z = forward pass of (W, b)` and
    /// keeping it only if it lowers E_Q (a safeguard added here, not in the paper: once
    /// mu is large the alternation between Z and W is ill-conditioned and slow to reduce
    /// the violation, while the feasible point's E_Q does not grow with mu).
    pub feasible_candidate: bool,
}

impl Default for MacConfig {
    fn default() -> Self {
        MacConfig {
            mu0: 1.0,
            mu_factor: 1.5,
            iters_per_mu: 2,
            mu_max: 1e6,
            z_steps: 2,
            out_steps: 1,
            ridge: 1e-8,
            feasible_candidate: true,
        }
    }
}

fn positive(param: &'static str, v: f64) -> Result<(), SolverError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(SolverError::config(
            "MAC",
            param,
            v,
            "must be finite and > 0",
        ))
    }
}

impl MacConfig {
    /// Checks every range.
    pub fn validate(&self) -> Result<(), SolverError> {
        positive("mu0", self.mu0)?;
        positive("ridge", self.ridge)?;
        if !(self.mu_factor >= 1.0 && self.mu_factor.is_finite()) {
            return Err(SolverError::config(
                "MAC",
                "mu_factor",
                self.mu_factor,
                "must be finite and >= 1",
            ));
        }
        if !(self.mu_max >= self.mu0 && self.mu_max.is_finite()) {
            return Err(SolverError::config(
                "MAC",
                "mu_max",
                self.mu_max,
                "must be finite and >= mu0",
            ));
        }
        for (name, v) in [
            ("iters_per_mu", self.iters_per_mu),
            ("z_steps", self.z_steps),
            ("out_steps", self.out_steps),
        ] {
            if v == 0 {
                return Err(SolverError::config("MAC", name, v, "must be >= 1"));
            }
        }
        crate::caps::check_inner_count("MAC", "z_steps", self.z_steps)?;
        crate::caps::check_inner_count("MAC", "out_steps", self.out_steps)?;
        Ok(())
    }

    /// The penalty of iteration `k` (0-based).
    pub fn mu_at(&self, k: u64) -> f64 {
        let stage = (k / self.iters_per_mu as u64).min(i32::MAX as u64) as i32;
        (self.mu0 * self.mu_factor.powi(stage)).min(self.mu_max)
    }

    /// A solver from a valid config.
    pub fn build<T: Real>(self) -> Result<Mac<T>, SolverError> {
        Mac::new(self)
    }
}
