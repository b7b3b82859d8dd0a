//! Per-problem, per-solver aggregates of a results document: what the report and the
//! terminal summary show.
//!
//! Aggregation over seeds: numbers are MEDIANS over the seeds where they exist (the
//! median of one value is that value); peak memory is the MAXIMUM over seeds.
//!
//! Target loss (time- and epochs-to-target). For each problem let `f_best` be the best
//! (smallest) final training objective over all its runs (all solvers, all seeds) and
//! `f_0` the median objective at the initial record (iteration 0; all solvers of a seed
//! start from the same weights). The target is
//! `f_target = f_best + tau (f_0 - f_best)` with `tau = `[`TARGET_TAU`]` = 0.01`: a run
//! reaches it when it has achieved 99% of the best decrease any method achieved. This
//! relative rule works for objectives whose minimum is 0 (teacher-student, exact NMF),
//! where `f_best (1 + 1e-2)` would demand full convergence. If `f_0 <= f_best` (nothing
//! decreased), the target is `f_best`.

use std::collections::BTreeMap;

use crate::results::{ResultsFile, RunResult, RunStatus};

/// Fraction of the best decrease left at the target (see the module doc).
pub const TARGET_TAU: f64 = 0.01;

/// Aggregates of one solver on one problem.
#[derive(Clone, Debug, PartialEq)]
pub struct SolverSummary {
    /// Solver name.
    pub solver: String,
    /// Number of runs (seeds) including skipped ones.
    pub runs: usize,
    /// Status counts, e.g. `"budget"` when all agree or `"2 budget, 1 diverged"`.
    pub status: String,
    /// Median final training objective over runs with a finite one.
    pub final_objective: Option<f64>,
    /// Median final test accuracy (in [0, 1]).
    pub test_accuracy: Option<f64>,
    /// Median solver wall time (s) to reach the target, over the runs that reached it.
    pub time_to_target_s: Option<f64>,
    /// Median epochs to reach the target, over the runs that reached it.
    pub epochs_to_target: Option<f64>,
    /// Number of runs that reached the target.
    pub reached_target: usize,
    /// Median of (final wall time / final epochs).
    pub time_per_epoch_s: Option<f64>,
    /// Maximum peak memory over runs, bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// Aggregates of one problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ProblemSummary {
    /// Problem name.
    pub problem: String,
    /// Target objective, if any run has a finite objective.
    pub target: Option<f64>,
    /// One row per solver, in order of first appearance.
    pub solvers: Vec<SolverSummary>,
}

/// Median of the values (NaN-free input expected); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

fn final_objective(run: &RunResult) -> Option<f64> {
    run.last().map(|r| r.objective).filter(|o| o.is_finite())
}

/// The target objective of a set of runs (see the module doc), with `tau`.
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

fn summarize_solver(solver: &str, runs: &[&RunResult], target: Option<f64>) -> SolverSummary {
    let finals: Vec<f64> = runs.iter().filter_map(|r| final_objective(r)).collect();
    let accs: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.last().and_then(|t| t.test_accuracy))
        .collect();
    let reached: Vec<(f64, f64)> = match target {
        Some(t) => runs.iter().filter_map(|r| first_reaching(r, t)).collect(),
        None => Vec::new(),
    };
    let per_epoch: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.last())
        .filter(|t| t.epochs > 0.0)
        .map(|t| t.wall_time_s / t.epochs)
        .collect();
    SolverSummary {
        solver: solver.to_string(),
        runs: runs.len(),
        status: status_text(runs),
        final_objective: median(&finals),
        test_accuracy: median(&accs),
        time_to_target_s: median(&reached.iter().map(|r| r.0).collect::<Vec<_>>()),
        epochs_to_target: median(&reached.iter().map(|r| r.1).collect::<Vec<_>>()),
        reached_target: reached.len(),
        time_per_epoch_s: median(&per_epoch),
        peak_memory_bytes: runs.iter().filter_map(|r| r.peak_memory_bytes).max(),
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
            let active: Vec<&RunResult> = runs
                .iter()
                .copied()
                .filter(|r| !matches!(r.status, RunStatus::Skipped { .. }))
                .collect();
            let target = target_objective(&active, tau);
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
                    summarize_solver(s, &mine, target)
                })
                .collect();
            ProblemSummary {
                problem: p.to_string(),
                target,
                solvers: rows,
            }
        })
        .collect()
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
