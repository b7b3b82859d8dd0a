//! placeholder
use std::marker::PhantomData;

use super::ProxPropConfig;

/// ProxProp on the common interface.
#[derive(Debug, Clone)]
pub struct ProxProp<T: autodiff::Real> {
    cfg: ProxPropConfig,
    _t: PhantomData<T>,
}

impl<T: autodiff::Real> ProxProp<T> {
    pub(crate) fn from_config(cfg: ProxPropConfig) -> Self {
        ProxProp {
            cfg,
            _t: PhantomData,
        }
    }
    /// The configuration.
    pub fn config(&self) -> &ProxPropConfig {
        &self.cfg
    }
}
