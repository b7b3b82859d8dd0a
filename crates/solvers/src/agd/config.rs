//! AGD hyperparameters and validation.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::solver::Agd;
use crate::{Batching, SolverError};

/// AGD hyperparameters. Defaults are the authors': `gain = 1` (the reference code's
/// optional multiplier; its README suggests trying 10) and shuffled mini-batches of 128
/// (the paper's experiments; one solver step is one epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgdConfig {
    /// Multiplier of every step (> 0, finite).
    pub gain: f64,
    /// Full batch or mini-batches (size >= 1).
    pub batching: Batching,
}

impl Default for AgdConfig {
    fn default() -> Self {
        AgdConfig {
            gain: 1.0,
            batching: Batching::mini(128),
        }
    }
}

impl AgdConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        if !(self.gain > 0.0 && self.gain.is_finite()) {
            return Err(SolverError::config(
                "AGD",
                "gain",
                self.gain,
                "must be finite and > 0",
            ));
        }
        self.batching.validate("AGD")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<Agd<T>, SolverError> {
        self.validate()?;
        Ok(Agd::from_config(self))
    }
}
