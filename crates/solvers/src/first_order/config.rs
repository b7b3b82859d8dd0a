//! Validated configurations of the gradient baselines. Defaults are PyTorch's (2.x)
//! unless stated; every config checks its ranges once, in `validate`, and `build`
//! produces a solver only from a valid config.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::{
    AdagradRule, AdamRule, CoupledL2, Decoupled, FirstOrder, RmsPropRule, Schedule, SgdRule,
};
use crate::{Batching, SolverError};

fn positive(solver: &'static str, param: &'static str, v: f64) -> Result<(), SolverError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(SolverError::config(
            solver,
            param,
            v,
            "must be finite and > 0",
        ))
    }
}

fn nonneg(solver: &'static str, param: &'static str, v: f64) -> Result<(), SolverError> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(SolverError::config(
            solver,
            param,
            v,
            "must be finite and >= 0",
        ))
    }
}

fn unit(solver: &'static str, param: &'static str, v: f64) -> Result<(), SolverError> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(SolverError::config(solver, param, v, "must be in [0, 1)"))
    }
}

/// SGD / GD, with optional heavy-ball or Nesterov momentum and coupled L2 weight decay.
/// Defaults: lr = 1e-3 (PyTorch 2.x), momentum 0, no Nesterov, weight decay 0,
/// constant schedule, shuffled mini-batches of 64 (not a PyTorch default: PyTorch has
/// no batching in the optimiser). [`SgdConfig::gd`] is full-batch gradient descent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate (> 0).
    pub lr: f64,
    /// Momentum in [0, 1).
    pub momentum: f64,
    /// Nesterov momentum (requires momentum > 0).
    pub nesterov: bool,
    /// Coupled L2 weight decay (>= 0).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Full batch or mini-batches.
    pub batching: Batching,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            batching: Batching::mini(64),
        }
    }
}

/// The rule of an SGD config (plain, or with coupled L2).
pub type SgdUpdate = CoupledL2<SgdRule>;

impl SgdConfig {
    /// Full-batch gradient descent with step `lr`.
    pub fn gd(lr: f64) -> Self {
        SgdConfig {
            lr,
            batching: Batching::Full,
            ..Default::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        positive("SGD", "lr", self.lr)?;
        unit("SGD", "momentum", self.momentum)?;
        if self.nesterov && self.momentum == 0.0 {
            return Err(SolverError::config(
                "SGD",
                "momentum",
                0,
                "must be > 0 with Nesterov",
            ));
        }
        nonneg("SGD", "weight_decay", self.weight_decay)?;
        self.schedule.validate("SGD")?;
        self.batching.validate("SGD")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<FirstOrder<T, SgdUpdate>, SolverError> {
        self.validate()?;
        let rule = CoupledL2 {
            inner: SgdRule {
                momentum: self.momentum,
                nesterov: self.nesterov,
            },
            wd: self.weight_decay,
        };
        FirstOrder::new(rule, self.lr, self.schedule, self.batching)
    }
}

/// Adam (Kingma & Ba 2015) with PyTorch's defaults: lr = 1e-3, betas (0.9, 0.999),
/// eps = 1e-8 added to the bias-corrected sqrt(v) (outside the root), coupled L2 weight
/// decay 0; constant schedule; shuffled mini-batches of 64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate (> 0).
    pub lr: f64,
    /// beta1 in [0, 1).
    pub beta1: f64,
    /// beta2 in [0, 1).
    pub beta2: f64,
    /// eps > 0.
    pub eps: f64,
    /// Coupled L2 weight decay (>= 0); see [`AdamWConfig`] for the decoupled form.
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Full batch or mini-batches.
    pub batching: Batching,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            batching: Batching::mini(64),
        }
    }
}

fn check_adam(
    solver: &'static str,
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
) -> Result<(), SolverError> {
    positive(solver, "lr", lr)?;
    unit(solver, "beta1", b1)?;
    unit(solver, "beta2", b2)?;
    positive(solver, "eps", eps)?;
    nonneg(solver, "weight_decay", wd)
}

impl AdamConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        check_adam(
            "Adam",
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
        )?;
        self.schedule.validate("Adam")?;
        self.batching.validate("Adam")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<FirstOrder<T, CoupledL2<AdamRule>>, SolverError> {
        self.validate()?;
        let rule = CoupledL2 {
            inner: AdamRule {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
            },
            wd: self.weight_decay,
        };
        FirstOrder::new(rule, self.lr, self.schedule, self.batching)
    }
}

/// AdamW (Loshchilov & Hutter, ICLR 2019): Adam with decoupled weight decay
/// `p <- (1 - lr wd) p` before the Adam step. PyTorch defaults: lr = 1e-3,
/// betas (0.9, 0.999), eps = 1e-8, weight_decay = 1e-2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Learning rate (> 0).
    pub lr: f64,
    /// beta1 in [0, 1).
    pub beta1: f64,
    /// beta2 in [0, 1).
    pub beta2: f64,
    /// eps > 0.
    pub eps: f64,
    /// Decoupled weight decay (>= 0).
    pub weight_decay: f64,
    /// Learning-rate schedule (the decay uses the scheduled rate).
    pub schedule: Schedule,
    /// Full batch or mini-batches.
    pub batching: Batching,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            schedule: Schedule::Constant,
            batching: Batching::mini(64),
        }
    }
}

impl AdamWConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        check_adam(
            "AdamW",
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
        )?;
        self.schedule.validate("AdamW")?;
        self.batching.validate("AdamW")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<FirstOrder<T, Decoupled<AdamRule>>, SolverError> {
        self.validate()?;
        let rule = Decoupled {
            inner: AdamRule {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
            },
            wd: self.weight_decay,
        };
        FirstOrder::new(rule, self.lr, self.schedule, self.batching)
    }
}

/// RMSProp with PyTorch's defaults: lr = 1e-2, alpha = 0.99, eps = 1e-8 (outside the
/// root), momentum 0, not centred, weight decay 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmsPropConfig {
    /// Learning rate (> 0).
    pub lr: f64,
    /// Smoothing constant in [0, 1).
    pub alpha: f64,
    /// eps > 0.
    pub eps: f64,
    /// Momentum in [0, 1).
    pub momentum: f64,
    /// Coupled L2 weight decay (>= 0).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Full batch or mini-batches.
    pub batching: Batching,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            batching: Batching::mini(64),
        }
    }
}

impl RmsPropConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        positive("RMSProp", "lr", self.lr)?;
        unit("RMSProp", "alpha", self.alpha)?;
        positive("RMSProp", "eps", self.eps)?;
        unit("RMSProp", "momentum", self.momentum)?;
        nonneg("RMSProp", "weight_decay", self.weight_decay)?;
        self.schedule.validate("RMSProp")?;
        self.batching.validate("RMSProp")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<FirstOrder<T, CoupledL2<RmsPropRule>>, SolverError> {
        self.validate()?;
        let rule = CoupledL2 {
            inner: RmsPropRule {
                alpha: self.alpha,
                eps: self.eps,
                momentum: self.momentum,
            },
            wd: self.weight_decay,
        };
        FirstOrder::new(rule, self.lr, self.schedule, self.batching)
    }
}

/// Adagrad with PyTorch's defaults: lr = 1e-2, eps = 1e-10 (outside the root), initial
/// accumulator 0, no lr decay, weight decay 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdagradConfig {
    /// Learning rate (> 0).
    pub lr: f64,
    /// eps > 0.
    pub eps: f64,
    /// Initial accumulator value (>= 0).
    pub initial_accumulator: f64,
    /// Coupled L2 weight decay (>= 0).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Full batch or mini-batches.
    pub batching: Batching,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            eps: 1e-10,
            initial_accumulator: 0.0,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            batching: Batching::mini(64),
        }
    }
}

impl AdagradConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        positive("Adagrad", "lr", self.lr)?;
        positive("Adagrad", "eps", self.eps)?;
        nonneg("Adagrad", "initial_accumulator", self.initial_accumulator)?;
        nonneg("Adagrad", "weight_decay", self.weight_decay)?;
        self.schedule.validate("Adagrad")?;
        self.batching.validate("Adagrad")
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<FirstOrder<T, CoupledL2<AdagradRule>>, SolverError> {
        self.validate()?;
        let rule = CoupledL2 {
            inner: AdagradRule {
                eps: self.eps,
                initial_accumulator: self.initial_accumulator,
            },
            wd: self.weight_decay,
        };
        FirstOrder::new(rule, self.lr, self.schedule, self.batching)
    }
}
