//! Configuration of the certified-MM solvers ([`CertifiedConfig`]) and its validation.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::solver::CertifiedMm;
use crate::SolverError;

/// The first-order rule whose direction a certified solver scales. The rule is run with
/// learning rate 1 through the existing [`crate::first_order`] rules, and the direction
/// is the change it makes to the parameters: `v = rule(x, grad; lr = 1) - x`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BaseDirection {
    /// Steepest descent, `v = -grad` ([`crate::first_order::SgdRule`] without momentum).
    Gd,
    /// Heavy ball, PyTorch form: `b <- mu b + grad`, `v = -b`
    /// ([`crate::first_order::SgdRule`] with momentum `mu` in [0, 1)).
    HeavyBall {
        /// Momentum mu in [0, 1).
        momentum: f64,
    },
    /// Adam's step at learning rate 1 (Kingma & Ba 2015, Alg. 1, PyTorch's eps
    /// placement): `v = -mhat / (sqrt(vhat) + eps)` ([`crate::first_order::AdamRule`]).
    Adam {
        /// beta1 in [0, 1).
        beta1: f64,
        /// beta2 in [0, 1).
        beta2: f64,
        /// eps > 0.
        eps: f64,
    },
}

impl BaseDirection {
    /// Adam with PyTorch's betas (0.9, 0.999) and eps 1e-8.
    pub const ADAM: BaseDirection = BaseDirection::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    /// Short name used in the solver's name, e.g. `"adam"`.
    pub fn short_name(&self) -> String {
        match self {
            BaseDirection::Gd => "gd".into(),
            BaseDirection::HeavyBall { momentum } => format!("heavy-ball({momentum})"),
            BaseDirection::Adam { .. } => "adam".into(),
        }
    }
}

/// How many step sizes one step chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepSizes {
    /// One step size for the whole direction (k = 1): `safe-<base>`.
    Single,
    /// One step size per dense layer (k = number of dense layers; the direction of layer
    /// `l` is the base direction restricted to that layer's weights and bias):
    /// `safe-layerwise`.
    PerLayer,
}

/// Hyperparameters of the certified-MM solvers (module doc of [`crate::certified`] for
/// the maths). There is no learning rate: the step sizes come from minimising the
/// certified bound. The main hyperparameter is the initial trust region
/// ([`CertifiedConfig::trust_region`]), which the solver adapts on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CertifiedConfig {
    /// The base direction (default Adam with PyTorch's betas and eps).
    pub base: BaseDirection,
    /// One step size, or one per dense layer (default [`StepSizes::Single`]).
    pub step_sizes: StepSizes,
    /// Initial trust region `alpha_bar_0` of every step size (finite, > 0; default 1e-3,
    /// the scale of Adam's default learning rate, since an Adam direction has entries of
    /// size about 1). The box is `[0, alpha_bar]^k`; it doubles or halves every step
    /// (see `grow`, `shrink`), so a poor start costs about `|log2(alpha_bar_0 / good)|`
    /// steps.
    pub trust_region: f64,
    /// Factor applied to a step size's trust region when its step reaches the edge,
    /// i.e. `alpha_i >= alpha_bar_i / 2` (finite, > 1; default 2).
    pub grow: f64,
    /// Factor applied otherwise, and to every trust region when the bound is not finite
    /// or does not certify a decrease (in (0, 1); default 0.5).
    pub shrink: f64,
    /// Upper cap of every trust region (finite, >= `trust_region`; default 1e12), so that
    /// repeated growth cannot overflow.
    pub max_trust_region: f64,
    /// The solver reports convergence when every trust region has shrunk below this
    /// (>= 0, < `trust_region`; default 1e-20): no certified decrease is left at any
    /// resolvable step size. Trust regions never go below 1e-30, so 0 (or anything
    /// <= 1e-30) disables the test: the solver then keeps trying, without moving.
    pub min_trust_region: f64,
    /// Largest k solved exactly by face enumeration (3^k faces, k x k solves); larger k
    /// use projected Newton (default 6, at most 12).
    pub max_exact_dim: usize,
}

impl Default for CertifiedConfig {
    fn default() -> Self {
        CertifiedConfig {
            base: BaseDirection::ADAM,
            step_sizes: StepSizes::Single,
            trust_region: 1e-3,
            grow: 2.0,
            shrink: 0.5,
            max_trust_region: 1e12,
            min_trust_region: 1e-20,
            max_exact_dim: 6,
        }
    }
}

impl CertifiedConfig {
    /// `safe-adam`: Adam's direction, one certified step size.
    pub fn safe_adam() -> Self {
        Self::default()
    }

    /// `safe-gd`: the negative gradient, one certified step size.
    pub fn safe_gd() -> Self {
        CertifiedConfig {
            base: BaseDirection::Gd,
            ..Default::default()
        }
    }

    /// `safe-heavy-ball`: heavy-ball direction with momentum 0.9, one step size.
    pub fn safe_heavy_ball() -> Self {
        CertifiedConfig {
            base: BaseDirection::HeavyBall { momentum: 0.9 },
            ..Default::default()
        }
    }

    /// `safe-layerwise`: Adam's direction, one certified step size per dense layer.
    pub fn safe_layerwise() -> Self {
        CertifiedConfig {
            step_sizes: StepSizes::PerLayer,
            ..Default::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        let e = |p, v: f64, r| Err(SolverError::config("certified MM", p, v, r));
        match self.base {
            BaseDirection::Gd => {}
            BaseDirection::HeavyBall { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return e("base.momentum", momentum, "must be in [0, 1)");
                }
            }
            BaseDirection::Adam { beta1, beta2, eps } => {
                if !(0.0..1.0).contains(&beta1) {
                    return e("base.beta1", beta1, "must be in [0, 1)");
                }
                if !(0.0..1.0).contains(&beta2) {
                    return e("base.beta2", beta2, "must be in [0, 1)");
                }
                if !(eps > 0.0 && eps.is_finite()) {
                    return e("base.eps", eps, "must be finite and > 0");
                }
            }
        }
        if !(self.trust_region > 0.0 && self.trust_region.is_finite()) {
            return e(
                "trust_region",
                self.trust_region,
                "must be finite and > 0 (an empty trust region allows no step)",
            );
        }
        if !(self.grow > 1.0 && self.grow.is_finite()) {
            return e("grow", self.grow, "must be finite and > 1");
        }
        if !(self.shrink > 0.0 && self.shrink < 1.0) {
            return e("shrink", self.shrink, "must lie in (0, 1)");
        }
        if !(self.max_trust_region >= self.trust_region && self.max_trust_region.is_finite()) {
            return e(
                "max_trust_region",
                self.max_trust_region,
                "must be finite and >= trust_region",
            );
        }
        if !(self.min_trust_region >= 0.0 && self.min_trust_region < self.trust_region) {
            return e(
                "min_trust_region",
                self.min_trust_region,
                "must be >= 0 and < trust_region",
            );
        }
        if self.max_exact_dim > 12 {
            return e(
                "max_exact_dim",
                self.max_exact_dim as f64,
                "must be <= 12 (3^k faces are enumerated)",
            );
        }
        Ok(())
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<CertifiedMm<T>, SolverError> {
        self.validate()?;
        Ok(CertifiedMm::from_config(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: CertifiedConfig) -> String {
        c.build::<f64>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn bad_values_are_rejected_with_their_names() {
        let d = CertifiedConfig::default;
        assert_eq!(
            err(CertifiedConfig {
                trust_region: 0.0,
                ..d()
            }),
            "invalid certified MM config: trust_region = 0 must be finite and > 0 (an empty trust region allows no step)"
        );
        assert_eq!(
            err(CertifiedConfig {
                trust_region: f64::NAN,
                ..d()
            }),
            "invalid certified MM config: trust_region = NaN must be finite and > 0 (an empty trust region allows no step)"
        );
        assert_eq!(
            err(CertifiedConfig { grow: 1.0, ..d() }),
            "invalid certified MM config: grow = 1 must be finite and > 1"
        );
        assert_eq!(
            err(CertifiedConfig { shrink: 1.0, ..d() }),
            "invalid certified MM config: shrink = 1 must lie in (0, 1)"
        );
        assert_eq!(
            err(CertifiedConfig {
                max_trust_region: 1e-4,
                ..d()
            }),
            "invalid certified MM config: max_trust_region = 0.0001 must be finite and >= trust_region"
        );
        assert_eq!(
            err(CertifiedConfig {
                min_trust_region: 1.0,
                ..d()
            }),
            "invalid certified MM config: min_trust_region = 1 must be >= 0 and < trust_region"
        );
        assert_eq!(
            err(CertifiedConfig {
                max_exact_dim: 13,
                ..d()
            }),
            "invalid certified MM config: max_exact_dim = 13 must be <= 12 (3^k faces are enumerated)"
        );
        assert_eq!(
            err(CertifiedConfig {
                base: BaseDirection::HeavyBall { momentum: 1.0 },
                ..d()
            }),
            "invalid certified MM config: base.momentum = 1 must be in [0, 1)"
        );
        assert_eq!(
            err(CertifiedConfig {
                base: BaseDirection::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 0.0
                },
                ..d()
            }),
            "invalid certified MM config: base.eps = 0 must be finite and > 0"
        );
        for c in [
            CertifiedConfig::safe_adam(),
            CertifiedConfig::safe_gd(),
            CertifiedConfig::safe_heavy_ball(),
            CertifiedConfig::safe_layerwise(),
        ] {
            assert!(c.validate().is_ok());
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = CertifiedConfig::safe_layerwise();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["trust_region"], 1e-3);
        let back: CertifiedConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
