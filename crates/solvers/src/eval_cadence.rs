//! When the [`crate::Driver`] evaluates the true training objective (issue #14).
//!
//! Every record of a trace holds [`crate::Problem::evaluate`]: the true objective and
//! accuracy of the current weights on the whole training set (and the test set). That
//! is a forward pass over all N samples, about 0.37 of an Adam epoch (batch 128) on an
//! MNIST-shaped network (docs/PERFORMANCE.md). Evaluating after every step therefore
//! nearly doubles the wall time of a mini-batch run whose step is one epoch, although
//! none of it is charged to the solver (`wall_time_s` and the time budget count solver
//! time only). [`EvalCadence::Passes`] evaluates less often, on a grid of data passes
//! that is the same for every solver, so a comparison stays fair: what changes is the
//! number of points on each curve, never the time or passes charged to a method.

use serde::{Deserialize, Serialize};

use crate::SolverError;

/// How often the driver evaluates the iterate and pushes a trace record.
///
/// Whatever the cadence, the driver also evaluates (and records):
/// - the initial point (iteration 0, the reference `f_0` of the divergence rule);
/// - the step after which the run ends by budget (iterations, data passes, time), so the
///   last record always holds the exact objective of the weights handed back;
/// - a step the solver reports as converged;
/// - a step after which a periodic checkpoint is saved (a checkpoint's trace ends at
///   its iteration, so a resumed run continues the same grid bit for bit).
///
/// Divergence, the target objective and observers are checked at records only: with a
/// sparse cadence a diverging run is stopped at the next record, and a target is
/// detected at the first record at or below it. In a distributed run the data-pass
/// counters and N are global (docs/DISTRIBUTED.md), so every rank takes the same
/// decision and the collective evaluation stays matched across ranks.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum EvalCadence {
    /// After every step: one record per iteration (the default).
    #[default]
    EveryStep,
    /// After a step that crosses a multiple of this many data passes: with `s` the
    /// samples seen before and `s'` after the step, when
    /// `floor(s' / (k N)) > floor(s / (k N))` (`k > 0`, finite). The grid is absolute
    /// (multiples of k passes from the start), so it does not depend on when the run
    /// was interrupted and resumed.
    Passes(f64),
}

impl EvalCadence {
    /// Checks the cadence: `Passes(k)` needs a finite `k > 0`.
    pub fn validate(&self) -> Result<(), SolverError> {
        match *self {
            EvalCadence::Passes(k) if !(k > 0.0 && k.is_finite()) => {
                Err(SolverError::InvalidBudget(format!(
                    "evaluation cadence of {k} data passes must be finite and > 0"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether a step that took the samples seen from `before` to `after` (N = `n`
    /// training samples) lands on the evaluation grid.
    pub fn due(&self, before: u64, after: u64, n: usize) -> bool {
        match *self {
            EvalCadence::EveryStep => true,
            EvalCadence::Passes(k) => {
                let grid = k * n as f64;
                (after as f64 / grid).floor() > (before as f64 / grid).floor()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_always_due() {
        assert!(EvalCadence::EveryStep.due(0, 0, 10));
        assert!(EvalCadence::EveryStep.due(5, 7, 10));
    }

    #[test]
    fn passes_fire_when_a_multiple_of_k_passes_is_crossed() {
        let c = EvalCadence::Passes(4.0); // N = 10: grid at 40, 80, ... samples
        assert!(!c.due(0, 20, 10));
        assert!(!c.due(20, 39, 10));
        assert!(c.due(20, 40, 10));
        assert!(c.due(39, 41, 10));
        assert!(!c.due(40, 79, 10));
        // A step of several passes crosses at most once but fires once.
        assert!(c.due(0, 100, 10));
        // Fractional cadences: every half pass of N = 10 is every 5 samples.
        let h = EvalCadence::Passes(0.5);
        assert!(h.due(4, 5, 10));
        assert!(!h.due(5, 9, 10));
    }

    #[test]
    fn invalid_cadences_are_refused_by_name() {
        for k in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = EvalCadence::Passes(k).validate().unwrap_err();
            assert!(e.to_string().contains("evaluation cadence"), "{e}");
        }
        assert!(EvalCadence::Passes(2.0).validate().is_ok());
        assert!(EvalCadence::EveryStep.validate().is_ok());
    }
}
