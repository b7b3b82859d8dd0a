//! Caps on the inner-loop counts of solver configurations (#13 defect 10).
//!
//! A count of `usize::MAX` used to pass validation (only 0 was refused), and a single
//! step then ran for minutes: the driver checks the wall-time budget only between
//! steps. Every count that bounds a loop INSIDE one step (power iterations, inner
//! iterations, sweeps per step, backtracking trials, line-search evaluations, L-BFGS
//! history) is therefore at most [`MAX_INNER_ITERATIONS`]; `validate` rejects larger
//! values with [`SolverError::InvalidConfig`].

use crate::SolverError;

/// Largest count accepted for a loop inside one step (10^4; every default is <= 200).
pub const MAX_INNER_ITERATIONS: usize = 10_000;

/// Errors if `value > MAX_INNER_ITERATIONS` (`solver` and `param` name it).
pub fn check_inner_count(
    solver: &'static str,
    param: &'static str,
    value: usize,
) -> Result<(), SolverError> {
    if value > MAX_INNER_ITERATIONS {
        return Err(SolverError::config(
            solver,
            param,
            value,
            "must be <= 10000 (solvers::caps::MAX_INNER_ITERATIONS)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifted::LiftedConfig;
    use crate::mac::MacConfig;
    use crate::mm::BlockMmConfig;

    /// The reproductions: `usize::MAX` counts are configuration errors now.
    #[test]
    fn huge_inner_counts_are_rejected_by_validate() {
        // review4: GenericMM's inner count was the one left unchecked.
        let generic = crate::mm::GenericMmConfig {
            inner_max_iter: usize::MAX,
            ..Default::default()
        };
        assert!(
            generic
                .validate()
                .unwrap_err()
                .to_string()
                .contains("inner_max_iter")
        );
        assert!(crate::mm::GenericMmConfig::default().validate().is_ok());
        let mm = BlockMmConfig {
            power_iterations: usize::MAX,
            ..Default::default()
        };
        assert!(
            mm.validate()
                .unwrap_err()
                .to_string()
                .contains("power_iterations")
        );
        let mac = |z, o| MacConfig {
            z_steps: z,
            out_steps: o,
            ..Default::default()
        };
        assert!(
            mac(usize::MAX, 1)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("z_steps")
        );
        assert!(
            mac(1, usize::MAX)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("out_steps")
        );
        let lifted = |s, i| LiftedConfig {
            sweeps_per_step: s,
            inner_max_iters: i,
            ..Default::default()
        };
        assert!(
            lifted(usize::MAX, 50)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("sweeps_per_step")
        );
        assert!(
            lifted(1, usize::MAX)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("inner_max_iters")
        );
        let lb = crate::lbfgs::LbfgsConfig {
            history: usize::MAX,
            ..Default::default()
        };
        assert!(lb.validate().is_err());
        let dl = crate::admm::DlAdmmConfig {
            max_backtracks: usize::MAX,
            ..Default::default()
        };
        assert!(dl.validate().is_err());
        // The cap itself is accepted.
        let ok = BlockMmConfig {
            power_iterations: MAX_INNER_ITERATIONS,
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }
}
