//! Default budgets per problem: data passes and a solver wall-time cap per run, for the
//! quick suite and for `--full`. Every solver on a problem gets the SAME budget; the run
//! stops at the first limit reached (the driver checks both before every step).
//!
//! Quick budgets are sized so that `cargo xtask compare` (every quick solver on every
//! quick problem, one seed) finishes within 3 minutes on 2 cores in a release build,
//! even if every run hits its wall-time cap; the caps are reported per problem in
//! `results.json` (`metadata.problem_budgets`) and in `report.md`.

use crate::problems::{ProblemKind, ProblemSpec};
use crate::results::BudgetSpec;

fn budget(epochs: f64, seconds: f64) -> BudgetSpec {
    BudgetSpec {
        max_epochs: Some(epochs),
        max_wall_time_s: Some(seconds),
        max_iterations: None,
    }
}

/// The default budget of `spec` (quick or `full`). NMF problems count one data pass per
/// iteration (each iteration updates W then H once over all of V).
pub fn default_budget(spec: &ProblemSpec, full: bool) -> BudgetSpec {
    let (quick, long) = match spec.name.as_str() {
        "digits-mlp" => (budget(50.0, 6.0), budget(200.0, 60.0)),
        "digits-mlp-deep" | "digits-autoencoder" => (budget(50.0, 6.0), budget(200.0, 90.0)),
        "teacher-student" | "spirals" | "blobs" => (budget(100.0, 3.0), budget(500.0, 30.0)),
        "mnist-mlp" | "fashion-mnist-mlp" => (budget(5.0, 20.0), budget(20.0, 300.0)),
        _ => match spec.kind {
            ProblemKind::Nmf { .. } => (budget(500.0, 2.0), budget(2000.0, 30.0)),
            ProblemKind::Network { .. } => (budget(50.0, 6.0), budget(200.0, 60.0)),
        },
    };
    if full { long } else { quick }
}

/// `base` with the command-line overrides: `epochs` replaces the data-pass limit,
/// `time_s` the wall-time cap (0 removes the cap).
pub fn with_overrides(base: BudgetSpec, epochs: Option<f64>, time_s: Option<f64>) -> BudgetSpec {
    BudgetSpec {
        max_epochs: epochs.or(base.max_epochs),
        max_wall_time_s: match time_s {
            Some(0.0) => None,
            Some(t) => Some(t),
            None => base.max_wall_time_s,
        },
        max_iterations: base.max_iterations,
    }
}

/// The driver budget of a [`BudgetSpec`]. The wall-time cap is converted with
/// `Duration::try_from_secs_f64` (never panics): a value out of `Duration`'s range
/// (only possible if [`super::limits::validate_time_budget`] was bypassed) becomes
/// `Duration::MAX`, a negative or NaN one `Duration::ZERO`, which the driver's budget
/// validation then rejects as a failed run.
pub fn to_driver(b: &BudgetSpec) -> solvers::Budget {
    let secs = |t: f64| {
        std::time::Duration::try_from_secs_f64(t).unwrap_or(if t > 0.0 {
            std::time::Duration::MAX
        } else {
            std::time::Duration::ZERO
        })
    };
    solvers::Budget {
        max_iterations: b.max_iterations,
        max_epochs: b.max_epochs,
        max_time: b.max_wall_time_s.map(secs),
        target_objective: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::find_problem;

    #[test]
    fn overrides_replace_limits_and_zero_removes_the_cap() {
        let base = default_budget(&find_problem("digits-mlp").unwrap(), false);
        assert_eq!(base, budget(50.0, 6.0));
        let b = with_overrides(base.clone(), Some(2.0), Some(0.0));
        assert_eq!((b.max_epochs, b.max_wall_time_s), (Some(2.0), None));
        let d = to_driver(&with_overrides(base, None, Some(1.5)));
        assert_eq!(d.max_time, Some(std::time::Duration::from_millis(1500)));
        assert_eq!(d.max_epochs, Some(50.0));
        let nmf = default_budget(&find_problem("nmf-spectrogram-is").unwrap(), true);
        assert_eq!(nmf.max_epochs, Some(2000.0));
    }
}
