//! Caps on the counts and durations a user passes to `strata-compare`, checked once,
//! before anything is allocated or run (issue #13: hostile inputs).
//!
//! | option | accepted | why |
//! |---|---|---|
//! | `--threads N` | `1 <= N <= 4 x available parallelism` ([`threads_cap`]), any `N >= 1` with `--force-threads` | a GEMM pool of 10^6 threads takes seconds to start and `usize::MAX` never returns |
//! | `--seeds` | at most [`MAX_SEEDS`] seeds, each `< 2^63` | the seed list is allocated; `--seeds 10^9` asked for 8 GB |
//! | `--time-budget T` | `0` (no cap) or `MIN_TIME_BUDGET_S <= T <= MAX_TIME_BUDGET_S` | below 1 ms the budget rounds to a zero `Duration` (every run fails); above ~116 days `Duration` conversion overflowed |
//! | `--epochs E` | `0 < E <= MAX_EPOCHS` | beyond, `E * N` samples is meaningless |
//! | `--memory-limit-gib G` | `0 < G <= MAX_MEMORY_LIMIT_GIB` ([`memory_limit_bytes`]) | NaN, 0 or a negative value became a 0-byte limit that refused every run; infinity saturated |
//! | `--max-train N`, `--max-test N` | `N >= 1` | 0 samples is an empty data set, not a smaller one |
//! | NMF rank `K` on `F x N` data ([`check_factor_entries`]) | `K (F + N) <= MAX_FACTOR_ENTRIES` | the initial factors are allocated from `K`: Python's `NMF(n_components=10**9)` aborted the process |

use std::time::Duration;

use crate::BenchError;

/// Most seeds one comparison accepts (each seed runs every solver on every problem).
pub const MAX_SEEDS: u64 = 10_000;
/// Smallest nonzero `--time-budget`, seconds.
pub const MIN_TIME_BUDGET_S: f64 = 1e-3;
/// Largest `--time-budget`, seconds (10^7 s, about 116 days).
pub const MAX_TIME_BUDGET_S: f64 = 1e7;
/// Largest `--epochs`.
pub const MAX_EPOCHS: f64 = 1e9;
/// Largest `--memory-limit-gib` (2^34 GiB = 2^64 bytes would not fit a `u64`).
pub const MAX_MEMORY_LIMIT_GIB: f64 = (1u64 << 33) as f64;
/// Most entries of the NMF factors W and H together (10^9, 8 GB in f64; defined as
/// `majorize::MAX_ENTRIES`, the workspace's one size cap).
pub const MAX_FACTOR_ENTRIES: usize = majorize::MAX_ENTRIES;
/// `--threads` may be at most this multiple of the available parallelism (unless
/// `--force-threads`).
pub const THREADS_FACTOR: usize = 4;

/// The `--threads` cap: [`THREADS_FACTOR`] x `std::thread::available_parallelism()`
/// (1 if unknown), so at least 4.
pub fn threads_cap() -> usize {
    THREADS_FACTOR * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a thread count: `>= 1`, and `<= `[`threads_cap`]`()` unless `force`.
pub fn validate_threads(threads: usize, force: bool) -> Result<(), BenchError> {
    if threads == 0 {
        return Err(BenchError::arg("threads", "must be >= 1"));
    }
    let cap = threads_cap();
    if threads > cap && !force {
        return Err(BenchError::arg(
            "threads",
            format!(
                "{threads} is above the cap {cap} ({THREADS_FACTOR} x the {} available \
                 cores); pass --force-threads to use it anyway",
                cap / THREADS_FACTOR
            ),
        ));
    }
    Ok(())
}

/// Checks `--time-budget` once, up front: 0 (no cap) or within
/// `[MIN_TIME_BUDGET_S, MAX_TIME_BUDGET_S]`, and convertible to a [`Duration`].
pub fn validate_time_budget(t: f64) -> Result<(), BenchError> {
    if t == 0.0 {
        return Ok(());
    }
    if !(MIN_TIME_BUDGET_S..=MAX_TIME_BUDGET_S).contains(&t)
        || Duration::try_from_secs_f64(t).is_err()
    {
        return Err(BenchError::arg(
            "time-budget",
            format!(
                "{t} s must be 0 (no wall-time cap) or between {MIN_TIME_BUDGET_S} and \
                 {MAX_TIME_BUDGET_S} s"
            ),
        ));
    }
    Ok(())
}

/// Checks `--epochs`: finite, `> 0` and `<= MAX_EPOCHS`.
pub fn validate_epochs(e: f64) -> Result<(), BenchError> {
    if !(e > 0.0 && e <= MAX_EPOCHS) {
        return Err(BenchError::arg(
            "epochs",
            format!("{e} must be finite, > 0 and <= {MAX_EPOCHS:e}"),
        ));
    }
    Ok(())
}

/// Checks `--memory-limit-gib` and converts it to bytes: finite, `> 0` and `<=`
/// [`MAX_MEMORY_LIMIT_GIB`] (so `G * 2^30` fits a `u64` exactly up to rounding).
pub fn memory_limit_bytes(gib: f64) -> Result<u64, BenchError> {
    if !(gib > 0.0 && gib <= MAX_MEMORY_LIMIT_GIB) {
        return Err(BenchError::arg(
            "memory-limit-gib",
            format!("{gib} must be finite, > 0 and <= {MAX_MEMORY_LIMIT_GIB} GiB"),
        ));
    }
    Ok((gib * (1u64 << 30) as f64) as u64)
}

/// Checks that rank-`k` factors of an `f x n` matrix (`W` f x k, `H` k x n) hold at most
/// [`MAX_FACTOR_ENTRIES`] entries, before they are allocated; `k >= 1`.
pub fn check_factor_entries(k: usize, f: usize, n: usize) -> Result<(), BenchError> {
    if k == 0 {
        return Err(BenchError::arg("rank", "must be at least 1"));
    }
    let entries = f.checked_add(n).and_then(|s| s.checked_mul(k));
    if entries.is_none_or(|e| e > MAX_FACTOR_ENTRIES) {
        return Err(BenchError::arg(
            "rank",
            format!(
                "rank {k} on a {f}x{n} matrix needs more than {MAX_FACTOR_ENTRIES} factor entries"
            ),
        ));
    }
    Ok(())
}

/// Checks a sample cap (`--max-train`, `--max-test`; `option` names it): at least 1.
pub fn validate_sample_cap(option: &'static str, n: Option<usize>) -> Result<(), BenchError> {
    if n == Some(0) {
        return Err(BenchError::arg(option, "must be >= 1"));
    }
    Ok(())
}

/// Checks the number of seeds a `--seeds` value asks for BEFORE the list is built.
pub fn check_seed_count(count: u64, text: &str) -> Result<(), BenchError> {
    if count > MAX_SEEDS {
        return Err(BenchError::arg(
            "seeds",
            format!("`{text}` asks for {count} seeds, more than the cap {MAX_SEEDS}"),
        ));
    }
    Ok(())
}

/// Whether every run of a comparison failed: at least one run ended `Failed` and none
/// produced a result (the others, if any, were skipped for missing data). The binary
/// then exits with status 3 (the results are still written, with the errors).
pub fn every_run_failed(results: &crate::results::ResultsFile) -> bool {
    use crate::results::RunStatus;
    results
        .runs
        .iter()
        .any(|r| matches!(r.status, RunStatus::Failed { .. }))
        && results.runs.iter().all(|r| {
            matches!(
                r.status,
                RunStatus::Failed { .. } | RunStatus::Skipped { .. }
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_capped_unless_forced() {
        let cap = threads_cap();
        assert!(cap >= THREADS_FACTOR);
        assert!(validate_threads(1, false).is_ok());
        assert!(validate_threads(cap, false).is_ok());
        for t in [0, cap + 1, 1_000_000, usize::MAX] {
            assert!(validate_threads(t, false).is_err(), "{t}");
        }
        assert!(validate_threads(cap + 1, true).is_ok());
        assert!(validate_threads(0, true).is_err());
    }

    #[test]
    fn time_budget_extremes_are_rejected_once() {
        for ok in [0.0, 1e-3, 1.5, 1e7] {
            assert!(validate_time_budget(ok).is_ok(), "{ok}");
        }
        for bad in [1e20, 1e-10, -1.0, f64::NAN, f64::INFINITY, 1e7 * 1.01] {
            let e = validate_time_budget(bad).unwrap_err();
            assert!(e.to_string().contains("time-budget"), "{e}");
        }
    }

    #[test]
    fn a_comparison_in_which_every_run_failed_is_detected() {
        use crate::results::{BudgetSpec, ResultsFile, RunMetadata, RunResult, RunStatus};
        let meta = RunMetadata::collect(
            crate::problems::Dtype::F64,
            1,
            vec![0],
            BudgetSpec {
                max_epochs: Some(1.0),
                max_wall_time_s: None,
                max_iterations: None,
            },
        );
        let mut r = ResultsFile::new(meta);
        assert!(!every_run_failed(&r), "no run is not 'every run failed'");
        let failed = |s: &str| {
            let mut x = RunResult::skipped("spirals", s, 0, "x");
            x.status = RunStatus::Failed {
                error: "time budget".into(),
            };
            x
        };
        r.runs = vec![failed("adam"), failed("lbfgs")];
        assert!(every_run_failed(&r));
        r.runs
            .push(RunResult::skipped("mnist-mlp", "adam", 0, "no data"));
        assert!(
            every_run_failed(&r),
            "skipped runs produce no result either"
        );
        r.runs.push(RunResult::skipped("blobs", "adam", 0, "x"));
        r.runs.last_mut().unwrap().status = RunStatus::BudgetExhausted { which: None };
        assert!(!every_run_failed(&r));
    }

    #[test]
    fn epochs_and_seed_counts() {
        assert!(validate_epochs(2.0).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e10] {
            assert!(validate_epochs(bad).is_err(), "{bad}");
        }
        assert!(check_seed_count(MAX_SEEDS, "x").is_ok());
        assert!(check_seed_count(MAX_SEEDS + 1, "x").is_err());
        assert!(check_factor_entries(2, 3, 4).is_ok());
        assert!(check_factor_entries(1, MAX_FACTOR_ENTRIES - 1, 1).is_ok());
        for (k, f, n) in [(0, 3, 4), (1, MAX_FACTOR_ENTRIES, 1), (usize::MAX, 2, 2)] {
            assert!(check_factor_entries(k, f, n).is_err(), "{k} {f} {n}");
        }
        assert_eq!(memory_limit_bytes(1.5).unwrap(), 3 << 29);
        assert_eq!(memory_limit_bytes(MAX_MEMORY_LIMIT_GIB).unwrap(), 1 << 63);
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            2.0 * MAX_MEMORY_LIMIT_GIB,
        ] {
            assert!(memory_limit_bytes(bad).is_err(), "{bad}");
        }
    }
}
