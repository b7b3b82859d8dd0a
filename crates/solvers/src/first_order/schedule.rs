//! Learning-rate schedules: a multiplicative factor of the base rate as a function of
//! the number of updates already made (t = 0 for the first update).

use serde::{Deserialize, Serialize};

use crate::SolverError;

/// A learning-rate schedule; the rate of update `t` (0-based, counted in parameter
/// updates, i.e. mini-batches) is `lr * factor(t)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Schedule {
    /// factor = 1.
    #[default]
    Constant,
    /// Step decay: factor = gamma^floor(t / every) (PyTorch `StepLR`).
    Step {
        /// Updates between decays (>= 1).
        every: u64,
        /// Multiplier per decay, in (0, 1].
        gamma: f64,
    },
    /// Cosine annealing over `total` updates to `min_factor`:
    /// factor = min + (1 - min)(1 + cos(pi min(t, total) / total)) / 2
    /// (Loshchilov & Hutter 2017, without restarts).
    Cosine {
        /// Length of the annealing (>= 1); constant at `min_factor` afterwards.
        total: u64,
        /// Final factor, in [0, 1].
        min_factor: f64,
    },
    /// Inverse power decay: factor = (1 + t)^-power (INNA's `decaypower`).
    InversePower {
        /// Exponent (>= 0).
        power: f64,
    },
    /// Linear warm-up: factor = (t + 1) / steps for t < steps, then `then` restarted at
    /// t - steps.
    Warmup {
        /// Warm-up length in updates (>= 1).
        steps: u64,
        /// Schedule after the warm-up.
        then: Box<Schedule>,
    },
}

impl Schedule {
    /// The factor of update `t` (0-based).
    pub fn factor(&self, t: u64) -> f64 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::Step { every, gamma } => gamma.powi((t / (*every).max(1)) as i32),
            Schedule::Cosine { total, min_factor } => {
                let total = (*total).max(1);
                let frac = t.min(total) as f64 / total as f64;
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
            }
            Schedule::InversePower { power } => (1.0 + t as f64).powf(-power),
            Schedule::Warmup { steps, then } => {
                if t < *steps {
                    (t + 1) as f64 / *steps as f64
                } else {
                    then.factor(t - steps)
                }
            }
        }
    }

    /// Checks the schedule's parameters (`solver` names the owner in the error).
    pub fn validate(&self, solver: &'static str) -> Result<(), SolverError> {
        let err = |p, v: f64, r| Err(SolverError::config(solver, p, v, r));
        match self {
            Schedule::Constant => Ok(()),
            Schedule::Step { every, gamma } => {
                if *every == 0 {
                    return err("schedule.every", 0.0, "must be >= 1");
                }
                if !(*gamma > 0.0 && *gamma <= 1.0) {
                    return err("schedule.gamma", *gamma, "must be in (0, 1]");
                }
                Ok(())
            }
            Schedule::Cosine { total, min_factor } => {
                if *total == 0 {
                    return err("schedule.total", 0.0, "must be >= 1");
                }
                if !(0.0..=1.0).contains(min_factor) {
                    return err("schedule.min_factor", *min_factor, "must be in [0, 1]");
                }
                Ok(())
            }
            Schedule::InversePower { power } => {
                if !(*power >= 0.0 && power.is_finite()) {
                    return err("schedule.power", *power, "must be finite and >= 0");
                }
                Ok(())
            }
            Schedule::Warmup { steps, then } => {
                if *steps == 0 {
                    return err("schedule.warmup steps", 0.0, "must be >= 1");
                }
                then.validate(solver)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors() {
        let s = Schedule::Step {
            every: 10,
            gamma: 0.5,
        };
        assert_eq!(
            (s.factor(0), s.factor(9), s.factor(10), s.factor(25)),
            (1.0, 1.0, 0.5, 0.25)
        );
        let c = Schedule::Cosine {
            total: 100,
            min_factor: 0.1,
        };
        assert_eq!(c.factor(0), 1.0);
        assert!((c.factor(50) - 0.55).abs() < 1e-15);
        assert!((c.factor(100) - 0.1).abs() < 1e-15);
        assert!((c.factor(1000) - 0.1).abs() < 1e-15);
        let w = Schedule::Warmup {
            steps: 4,
            then: Box::new(Schedule::InversePower { power: 0.5 }),
        };
        assert_eq!((w.factor(0), w.factor(3), w.factor(4)), (0.25, 1.0, 1.0));
        assert!((w.factor(7) - 0.5).abs() < 1e-15); // (1 + 3)^-1/2
    }
}
