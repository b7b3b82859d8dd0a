//! Per-problem, per-solver aggregates of a results document: what the report and the
//! terminal summary show.
//!
//! Aggregation over seeds: every number is the MEDIAN over seeds with a
//! distribution-free order-statistic interval ([`crate::stats`]: with 3 seeds, the
//! min-max range, a 75% interval for the median); peak memory is the MAXIMUM over seeds.
//!
//! Target loss (time- and epochs-to-target), per (problem, seed) instance. Let `f_best`
//! be the best (smallest) final training objective over the instance's runs (all
//! solvers that train the problem's objective) and `f_0` the initial objective
//! (iteration 0; all solvers of a seed start from the same weights). The target is
//! `f_target = f_best + tau (f_0 - f_best)` with `tau = `[`TARGET_TAU`]` = 0.01`: a run
//! reaches it when it has achieved 99% of the best decrease any method achieved on that
//! instance. This relative rule works for objectives whose minimum is 0
//! (teacher-student, exact NMF), where `f_best (1 + 1e-2)` would demand full
//! convergence. If `f_0 <= f_best` (nothing decreased), the target is `f_best`. A run
//! that never reaches it has time-to-target +infinity: the median over seeds is then
//! infinite when most seeds failed, and the count of seeds that reached is shown.
//!
//! Runs that train another objective ([`RunResult::trained_objective`], e.g. Taylor
//! ADMM's hinge output on a cross-entropy problem) are summarised but kept out of
//! `f_best`, the performance profile and the ranking.

use std::collections::BTreeMap;

use crate::results::{ResultsFile, RunResult, RunStatus};
use crate::stats::{Interval, median_interval, monotone_violations};

/// Fraction of the best decrease left at the target (see the module doc).
pub const TARGET_TAU: f64 = 0.01;

/// Aggregates of one solver on one problem (intervals over seeds, [`crate::stats`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SolverSummary {
    /// Solver name.
    pub solver: String,
    /// Number of runs (seeds) including skipped ones.
    pub runs: usize,
    /// Status counts, e.g. `"budget"` when all agree or `"2 budget, 1 diverged"`.
    pub status: String,
    /// Final training objective over runs with a finite one.
    pub final_objective: Option<Interval>,
    /// Final test loss (the data term on the test set).
    pub test_objective: Option<Interval>,
    /// Final test accuracy (in [0, 1]).
    pub test_accuracy: Option<Interval>,
    /// Solver wall time (s) to the instance's target, +infinity when not reached (over
    /// the runs that were not skipped).
    pub time_to_target_s: Option<Interval>,
    /// Data passes to the target, +infinity when not reached.
    pub epochs_to_target: Option<Interval>,
    /// Number of runs that reached their target.
    pub reached_target: usize,
    /// Number of runs that had a target (not skipped, not failed before a record).
    pub target_runs: usize,
    /// Final wall time / final epochs.
    pub time_per_epoch_s: Option<Interval>,
    /// Final solver time plus the `--tune` search's solver time (only tuned runs).
    pub time_incl_tuning_s: Option<Interval>,
    /// Final data passes plus the search's passes (full-training-set units).
    pub passes_incl_tuning: Option<Interval>,
    /// Chosen values per seed, e.g. `seed 0: /lr=0.00316`, when tuned.
    pub tuning: Vec<String>,
    /// Maximum peak memory over runs, bytes.
    pub peak_memory_bytes: Option<u64>,
    /// What the solver trains instead of the problem's objective, if it does.
    pub different_objective: Option<String>,
    /// Monotone methods only: (seed, increases, largest relative increase) of each run
    /// whose true objective rose by more than 1e-10 relative.
    pub monotone_violations: Vec<(u64, usize, f64)>,
}

/// Aggregates of one problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ProblemSummary {
    /// Problem name.
    pub problem: String,
    /// Target objective of each seed (instances with a finite objective).
    pub targets: BTreeMap<u64, f64>,
    /// One row per solver, in order of first appearance.
    pub solvers: Vec<SolverSummary>,
}

/// Median of the finite values; `None` when there is none.
pub fn median(values: &[f64]) -> Option<f64> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    median_interval(&v).map(|i| i.median)
}

fn final_objective(run: &RunResult) -> Option<f64> {
    run.last().map(|r| r.objective).filter(|o| o.is_finite())
}

/// Whether a run counts for targets, profiles and rankings: not skipped, trains the
/// problem's objective.
pub fn ranked(run: &RunResult) -> bool {
    run.trained_objective.is_none() && !matches!(run.status, RunStatus::Skipped { .. })
}

/// The target objective of a set of runs of ONE instance (see the module doc), with
/// `tau`.
pub fn target_objective(runs: &[&RunResult], tau: f64) -> Option<f64> {
    let best = runs
        .iter()
        .filter_map(|r| final_objective(r))
        .min_by(f64::total_cmp)?;
    let starts: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.trace.first().map(|t| t.objective))
        .collect();
    Some(match median(&starts) {
        Some(f0) if f0 > best => best + tau * (f0 - best),
        _ => best,
    })
}

/// The target of every (problem, seed) instance of `runs` (one problem): keyed by seed.
pub fn instance_targets(runs: &[&RunResult], tau: f64) -> BTreeMap<u64, f64> {
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    seeds
        .into_iter()
        .filter_map(|s| {
            let mine: Vec<&RunResult> = runs
                .iter()
                .copied()
                .filter(|r| r.seed == s && ranked(r))
                .collect();
            target_objective(&mine, tau).map(|t| (s, t))
        })
        .collect()
}

/// First record of `run` at or below `target`: (wall time, epochs).
pub fn first_reaching(run: &RunResult, target: f64) -> Option<(f64, f64)> {
    run.trace
        .iter()
        .find(|r| r.objective.is_finite() && r.objective <= target)
        .map(|r| (r.wall_time_s, r.epochs))
}

fn status_text(runs: &[&RunResult]) -> String {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in runs {
        *counts.entry(r.status.label()).or_default() += 1;
    }
    if counts.len() == 1 {
        return counts
            .keys()
            .next()
            .map_or(String::new(), |k| k.to_string());
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn promises_monotone(solver: &str) -> bool {
    crate::runner::tune::declaration(solver).is_some_and(|d| d.monotone)
}

fn summarize_solver(
    solver: &str,
    runs: &[&RunResult],
    targets: &BTreeMap<u64, f64>,
) -> SolverSummary {
    let finals: Vec<f64> = runs.iter().filter_map(|r| final_objective(r)).collect();
    let last = |f: fn(&crate::results::TraceRecord) -> Option<f64>| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| r.last().and_then(f))
            .filter(|v| v.is_finite())
            .collect()
    };
    let with_target: Vec<(&RunResult, f64)> = runs
        .iter()
        .filter(|r| !r.trace.is_empty() && !matches!(r.status, RunStatus::Skipped { .. }))
        .filter_map(|r| targets.get(&r.seed).map(|t| (*r, *t)))
        .collect();
    let reach: Vec<Option<(f64, f64)>> = with_target
        .iter()
        .map(|(r, t)| first_reaching(r, *t))
        .collect();
    let inf = |f: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        reach
            .iter()
            .map(|x| x.as_ref().map_or(f64::INFINITY, f))
            .collect()
    };
    let per_epoch: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.last())
        .filter(|t| t.epochs > 0.0)
        .map(|t| t.wall_time_s / t.epochs)
        .collect();
    let tuned: Vec<(&RunResult, &crate::results::TuningRecord)> = runs
        .iter()
        .filter_map(|r| {
            r.tuning
                .as_ref()
                .filter(|t| !t.parameters.is_empty())
                .map(|t| (*r, t))
        })
        .collect();
    let incl = |f: fn(&crate::results::TraceRecord, &crate::results::TuningRecord) -> f64| {
        let v: Vec<f64> = tuned
            .iter()
            .filter_map(|(r, t)| r.last().map(|l| f(l, t)))
            .collect();
        median_interval(&v)
    };
    let monotone = if promises_monotone(solver) {
        runs.iter()
            .filter_map(|r| {
                let obj: Vec<f64> = r.trace.iter().map(|t| t.objective).collect();
                monotone_violations(&obj).map(|(c, w)| (r.seed, c, w))
            })
            .collect()
    } else {
        Vec::new()
    };
    SolverSummary {
        solver: solver.to_string(),
        runs: runs.len(),
        status: status_text(runs),
        final_objective: median_interval(&finals),
        test_objective: median_interval(&last(|t| t.test_objective)),
        test_accuracy: median_interval(&last(|t| t.test_accuracy)),
        time_to_target_s: median_interval(&inf(|x| x.0)),
        epochs_to_target: median_interval(&inf(|x| x.1)),
        reached_target: reach.iter().filter(|x| x.is_some()).count(),
        target_runs: with_target.len(),
        time_per_epoch_s: median_interval(&per_epoch),
        time_incl_tuning_s: incl(|l, t| l.wall_time_s + t.solver_time_s),
        passes_incl_tuning: incl(|l, t| l.epochs + t.data_passes),
        tuning: tuned
            .iter()
            .map(|(r, t)| {
                let vals: Vec<String> = t
                    .chosen
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.trim_start_matches('/'), fmt_sig(Some(*v), 3)))
                    .collect();
                let extended = t
                    .extended
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (grid extended {e})"));
                let edge = t
                    .at_edge
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (at {e} edge: not bracketed)"));
                format!("seed {}: {}{extended}{edge}", r.seed, vals.join(", "))
            })
            .collect(),
        peak_memory_bytes: runs.iter().filter_map(|r| r.peak_memory_bytes).max(),
        different_objective: runs.iter().find_map(|r| r.trained_objective.clone()),
        monotone_violations: monotone,
    }
}

/// Groups the runs by problem (order of first appearance) and solver, and aggregates.
/// Skipped runs count in `runs`/`status` only.
pub fn summarize(results: &ResultsFile, tau: f64) -> Vec<ProblemSummary> {
    let mut problems: Vec<&str> = Vec::new();
    for r in &results.runs {
        if !problems.contains(&r.problem.as_str()) {
            problems.push(&r.problem);
        }
    }
    problems
        .into_iter()
        .map(|p| {
            let runs: Vec<&RunResult> = results.runs.iter().filter(|r| r.problem == p).collect();
            let targets = instance_targets(&runs, tau);
            let mut solvers: Vec<&str> = Vec::new();
            for r in &runs {
                if !solvers.contains(&r.solver.as_str()) {
                    solvers.push(&r.solver);
                }
            }
            let rows = solvers
                .into_iter()
                .map(|s| {
                    let mine: Vec<&RunResult> =
                        runs.iter().copied().filter(|r| r.solver == s).collect();
                    summarize_solver(s, &mine, &targets)
                })
                .collect();
            ProblemSummary {
                problem: p.to_string(),
                targets,
                solvers: rows,
            }
        })
        .collect()
}

/// A median with its interval: `m [lo, hi]` with `sig` significant digits (`-` for
/// `None`; a single value without brackets; infinity as `inf`).
pub fn fmt_interval(i: Option<&Interval>, sig: usize) -> String {
    let Some(i) = i else {
        return "-".to_string();
    };
    let f = |x: f64| fmt_sig(Some(x), sig);
    if i.n <= 1 || i.lo == i.hi {
        f(i.median)
    } else {
        format!("{} [{}, {}]", f(i.median), f(i.lo), f(i.hi))
    }
}

/// [`fmt_interval`] of a fraction in percent with one decimal.
pub fn fmt_percent_interval(i: Option<&Interval>) -> String {
    let Some(i) = i else {
        return "-".to_string();
    };
    let f = |x: f64| format!("{:.1}%", 100.0 * x);
    if i.n <= 1 || i.lo == i.hi {
        f(i.median)
    } else {
        format!("{} [{}, {}]", f(i.median), f(i.lo), f(i.hi))
    }
}

/// A number with `sig` significant digits: fixed notation for magnitudes in
/// [1e-3, 1e5), scientific otherwise; `-` for `None`, `nan`/`inf` as such.
pub fn fmt_sig(x: Option<f64>, sig: usize) -> String {
    let Some(x) = x else {
        return "-".to_string();
    };
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let sig = sig.max(1);
    let mag = x.abs().log10().floor() as i32;
    if (-3..5).contains(&mag) {
        let decimals = (sig as i32 - 1 - mag).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.prec$e}", prec = sig - 1)
    }
}

/// Bytes in binary units with 3-4 significant digits (`812 B`, `1.50 KiB`, `23.4 MiB`).
pub fn fmt_bytes(b: Option<u64>) -> String {
    let Some(b) = b else {
        return "-".to_string();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{} {}", fmt_sig(Some(v), 3), units[u])
    }
}

/// Accuracy in percent with one decimal (`97.2%`), `-` if absent.
pub fn fmt_percent(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v))
}
