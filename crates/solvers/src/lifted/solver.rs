//! The lifted solver on the common interface (added once `NetProblem` exists).

use std::marker::PhantomData;

use autodiff::Real;

use super::LiftedConfig;

/// Lifted ReLU network trained by exact BCD on the Fenchel / LPOM penalty (module docs).
#[derive(Debug, Clone)]
pub struct Lifted<T: Real> {
    cfg: LiftedConfig,
    _t: PhantomData<T>,
}

impl<T: Real> Lifted<T> {
    pub(crate) fn from_config(cfg: LiftedConfig) -> Self {
        Lifted {
            cfg,
            _t: PhantomData,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LiftedConfig {
        &self.cfg
    }
}
