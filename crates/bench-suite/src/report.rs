//! `report.md` and the terminal summary table, from a results document.
//!
//! Per problem, one row per solver (seeds aggregated as in [`crate::analysis`]: median
//! with an order-statistic interval, [`crate::stats`]): status, final training
//! objective, test loss, test accuracy, solver wall time and data passes to the
//! instance's target (with how many seeds reached it), time per epoch, the
//! tuning-inclusive time and passes under `--tune`, peak memory. Rows are sorted by
//! median final objective (the ranking); rows of solvers that train another objective
//! follow, marked, unranked. Monotone methods whose true objective rose are flagged.
//! Before the problems: the performance profiles ([`crate::profile`]) and a
//! time-to-target table (solvers x problems).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::analysis::{
    ProblemSummary, SolverSummary, TARGET_TAU, fmt_bytes, fmt_interval, fmt_percent_interval,
    fmt_sig, summarize,
};
use crate::outdir::write_atomic;
use crate::plots::{PlotFile, write_plots};
use crate::problems::find_problem;
use crate::profile::{ProfileFile, write_profiles};
use crate::results::ResultsFile;

/// Time or passes to target: `median [lo, hi]`, with `(k/n)` when only k of n seeds
/// reached it; `not reached` when none did.
fn reached(row: &SolverSummary, value: Option<&crate::stats::Interval>) -> String {
    if row.target_runs == 0 {
        "-".to_string()
    } else if row.reached_target == 0 {
        "not reached".to_string()
    } else if row.reached_target < row.target_runs {
        format!(
            "{} ({}/{})",
            fmt_interval(value, 3),
            row.reached_target,
            row.target_runs
        )
    } else {
        fmt_interval(value, 3)
    }
}

fn status_cell(r: &SolverSummary) -> String {
    let mut s = r.status.clone();
    if !r.monotone_violations.is_empty() {
        s.push_str(" ⚠ objective rose");
    }
    if r.different_objective.is_some() {
        s.push_str(" † other objective");
    }
    s
}

fn any_tuning(results: &ResultsFile) -> bool {
    results
        .runs
        .iter()
        .any(|r| r.tuning.as_ref().is_some_and(|t| !t.parameters.is_empty()))
}

/// Renders `report.md`. `plots` are linked under the problem they belong to, the
/// profiles before the problems.
pub fn render_report(
    results: &ResultsFile,
    plots: &[PlotFile],
    profiles: &[ProfileFile],
) -> String {
    let m = &results.metadata;
    let mut s = String::new();
    let _ = writeln!(s, "# strata comparison report\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| strata version | {} |", m.strata_version);
    let _ = writeln!(
        s,
        "| git commit | {} |",
        m.git_commit.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(s, "| dtype | {} |", m.dtype);
    let _ = writeln!(s, "| threads | {} |", m.threads);
    let seeds: Vec<String> = m.seeds.iter().map(u64::to_string).collect();
    let _ = writeln!(s, "| seeds | {} |", seeds.join(", "));
    let b = &m.budget;
    let _ = writeln!(
        s,
        "| budget{} | max epochs {}; max wall time (s) {}; max iterations {} |",
        if m.problem_budgets.is_empty() {
            ""
        } else {
            " overrides (per-problem budgets below)"
        },
        fmt_sig(b.max_epochs, 4),
        fmt_sig(b.max_wall_time_s, 4),
        b.max_iterations.map_or("-".to_string(), |v| v.to_string())
    );
    let _ = writeln!(s, "| memory measured by | {} |", m.memory_method);
    let tuning = any_tuning(results);
    let _ = writeln!(
        s,
        "| hyperparameters | {} |",
        if tuning {
            "tuned with --tune (runner::tune): the same number of grid points for every \
             solver, log-spaced around its defaults, selected on a validation split of the \
             training set; the search's cost is in the `incl. tuning` columns"
        } else {
            "documented defaults of every solver (no tuning)"
        }
    );
    let _ = writeln!(s, "| command | `{}` |\n", m.command_line.join(" "));
    let _ = writeln!(
        s,
        "Objective: the true training objective of the weights each solver hands back \
         (data term plus the problem's L2 penalty; see each problem). Target, per (problem, \
         seed): `f_best + {TARGET_TAU} (f_0 - f_best)`, with `f_best` the best final \
         objective of any run of that seed and `f_0` its initial objective (99% of the best \
         decrease). Time is solver wall time, evaluation excluded; passes are data passes \
         (samples touched / training samples). Every number is the median over seeds \
         followed by `[lo, hi]`, a distribution-free order-statistic interval for the \
         median: {}. A run that never reaches its target counts as infinite time. Memory \
         is the maximum over seeds. Rows are sorted by median final objective; a solver \
         marked † trains another objective (named under the table) and is kept out of the \
         targets, ranking and profiles; ⚠ marks a method that promises a monotone decrease \
         whose true objective rose by more than 1e-10 relative.\n",
        crate::stats::method_text(m.seeds.len())
    );
    if m.dtype == "f32" {
        // The tolerance is the issue's, fixed for both precisions; in f32 a monotone
        // method's iterates move by rounding once its exact decrease per step falls below
        // the precision, so the reader needs the scale to judge a flag.
        let _ = writeln!(
            s,
            "This run is in f32 (machine epsilon {:.3e}): a flagged rise well below that \
             relative size is at the level of the iterates' rounding, not a failure of the \
             method's decrease in exact arithmetic.\n",
            f64::from(f32::EPSILON)
        );
    }
    let summaries = summarize(results, TARGET_TAU);
    render_profiles(&mut s, profiles);
    render_time_to_target(&mut s, &summaries);
    for p in &summaries {
        render_problem(&mut s, p, plots, &m.problem_budgets, tuning);
    }
    s
}

fn render_profiles(s: &mut String, profiles: &[ProfileFile]) {
    if profiles.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Performance profiles\n");
    let _ = writeln!(
        s,
        "Dolan–Moré profiles over (problem, seed) instances: for each solver, the fraction \
         of instances whose target it reached within tau times the fastest solver's time \
         (tau = 1: fastest; right end: fraction reached at all).\n"
    );
    for f in profiles {
        let p = &f.profile;
        let path = f.relative_path.to_string_lossy().replace('\\', "/");
        let _ = writeln!(
            s,
            "- **{}**: {} instances from {}{}\n\n  ![performance profile {}]({path})\n",
            p.label,
            p.instances.len(),
            p.problems.join(", "),
            if p.excluded.is_empty() {
                String::new()
            } else {
                format!(
                    "; left out (train another objective): {}",
                    p.excluded.join(", ")
                )
            },
            p.label
        );
    }
}

fn render_time_to_target(s: &mut String, summaries: &[ProblemSummary]) {
    let mut solvers: Vec<&str> = Vec::new();
    for p in summaries {
        for r in &p.solvers {
            if !solvers.contains(&r.solver.as_str()) {
                solvers.push(&r.solver);
            }
        }
    }
    if solvers.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Time to target (s)\n");
    let _ = writeln!(
        s,
        "Solver wall time to each (problem, seed) target: median [interval] over seeds, \
         `(k/n)` when only k of n seeds reached it; † other objective (unranked).\n"
    );
    let _ = write!(s, "| solver |");
    for p in summaries {
        let _ = write!(s, " {} |", p.problem);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|{}", "---:|".repeat(summaries.len()));
    for name in solvers {
        let _ = write!(s, "| {name} |");
        for p in summaries {
            let cell = match p.solvers.iter().find(|r| r.solver == name) {
                Some(r) if r.different_objective.is_some() => {
                    format!("† {}", reached(r, r.time_to_target_s.as_ref()))
                }
                Some(r) => reached(r, r.time_to_target_s.as_ref()),
                None => "".to_string(),
            };
            let _ = write!(s, " {cell} |");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
}

/// Ranked rows sorted by median final objective (missing last), then the unranked.
fn ordered(p: &ProblemSummary) -> Vec<&SolverSummary> {
    let key = |r: &SolverSummary| r.final_objective.map_or(f64::INFINITY, |i| i.median);
    let mut ranked: Vec<&SolverSummary> = p
        .solvers
        .iter()
        .filter(|r| r.different_objective.is_none())
        .collect();
    ranked.sort_by(|a, b| key(a).total_cmp(&key(b)));
    ranked.extend(p.solvers.iter().filter(|r| r.different_objective.is_some()));
    ranked
}

fn render_problem(
    s: &mut String,
    p: &ProblemSummary,
    plots: &[PlotFile],
    budgets: &std::collections::BTreeMap<String, crate::results::BudgetSpec>,
    tuning: bool,
) {
    let _ = writeln!(s, "## {}\n", p.problem);
    if let Ok(spec) = find_problem(&p.problem) {
        let _ = writeln!(s, "{}\n", spec.description);
        let _ = writeln!(s, "Objective: {}\n", spec.objective_text());
    }
    if let Some(b) = budgets.get(&p.problem) {
        let _ = writeln!(
            s,
            "Budget per run: max epochs {}; max wall time (s) {}; max iterations {}\n",
            fmt_sig(b.max_epochs, 4),
            fmt_sig(b.max_wall_time_s, 4),
            b.max_iterations.map_or("-".to_string(), |v| v.to_string())
        );
    }
    let targets: Vec<String> = p
        .targets
        .iter()
        .map(|(seed, t)| format!("seed {seed}: {}", fmt_sig(Some(*t), 4)))
        .collect();
    let _ = writeln!(
        s,
        "Target objective: {}\n",
        if targets.is_empty() {
            "-".to_string()
        } else {
            targets.join("; ")
        }
    );
    let (extra_head, extra_rule) = if tuning {
        (
            " time incl. tuning (s) | passes incl. tuning |",
            "---:|---:|",
        )
    } else {
        ("", "")
    };
    let _ = writeln!(
        s,
        "| solver | status | final objective | test loss | test accuracy | time to target (s) | epochs to target | time/epoch (s) |{extra_head} peak memory |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|{extra_rule}---:|"
    );
    for r in ordered(p) {
        let extra = if tuning {
            format!(
                " {} | {} |",
                fmt_interval(r.time_incl_tuning_s.as_ref(), 3),
                fmt_interval(r.passes_incl_tuning.as_ref(), 3)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |{extra} {} |",
            r.solver,
            status_cell(r),
            fmt_interval(r.final_objective.as_ref(), 4),
            fmt_interval(r.test_objective.as_ref(), 4),
            fmt_percent_interval(r.test_accuracy.as_ref()),
            reached(r, r.time_to_target_s.as_ref()),
            reached(r, r.epochs_to_target.as_ref()),
            fmt_interval(r.time_per_epoch_s.as_ref(), 3),
            fmt_bytes(r.peak_memory_bytes),
        );
    }
    let _ = writeln!(s);
    for r in &p.solvers {
        if let Some(o) = &r.different_objective {
            let _ = writeln!(
                s,
                "† `{}` trains {o}; its row shows the problem's objective of its weights, \
                 unranked.\n",
                r.solver
            );
        }
        if !r.monotone_violations.is_empty() {
            let v: Vec<String> = r
                .monotone_violations
                .iter()
                .map(|(seed, c, w)| {
                    format!(
                        "seed {seed}: {c} increase(s), largest {} relative",
                        fmt_sig(Some(*w), 3)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "⚠ `{}` promises a monotone decrease but its true objective rose: {}.\n",
                r.solver,
                v.join("; ")
            );
        }
    }
    if tuning {
        let tuned: Vec<String> = p
            .solvers
            .iter()
            .filter(|r| !r.tuning.is_empty())
            .map(|r| format!("- `{}`: {}", r.solver, r.tuning.join("; ")))
            .collect();
        if !tuned.is_empty() {
            let _ = writeln!(
                s,
                "Chosen hyperparameters (per seed; a choice at the grid's edge extends the \
                 grid once by (P-1)/2 points in that direction, and one still at the edge of \
                 all points tried is marked `not bracketed`):\n\n{}\n",
                tuned.join("\n")
            );
        }
    }
    let mine: Vec<&PlotFile> = plots.iter().filter(|f| f.problem == p.problem).collect();
    if !mine.is_empty() {
        for f in mine {
            let path = f.relative_path.to_string_lossy().replace('\\', "/");
            let _ = writeln!(s, "![{}]({path})", f.kind.title());
        }
    }
    let _ = writeln!(s);
}

/// A compact fixed-width table for the terminal: problem, solver, status, and the
/// MEDIANS over seeds of final objective, test accuracy, time to target, time per epoch.
pub fn format_summary_table(results: &ResultsFile) -> String {
    let header = [
        "problem",
        "solver",
        "status",
        "objective",
        "test acc",
        "t->target s",
        "s/epoch",
    ];
    let mut rows: Vec<[String; 7]> = Vec::new();
    for p in summarize(results, TARGET_TAU) {
        for r in &p.solvers {
            rows.push([
                p.problem.clone(),
                r.solver.clone(),
                r.status.clone(),
                fmt_sig(r.final_objective.map(|i| i.median), 4),
                r.test_accuracy
                    .map_or("-".to_string(), |i| format!("{:.1}%", 100.0 * i.median)),
                if r.reached_target == 0 {
                    "-".to_string()
                } else {
                    fmt_sig(r.time_to_target_s.map(|i| i.median), 3)
                },
                fmt_sig(r.time_per_epoch_s.map(|i| i.median), 3),
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "{}", rule.join("  "));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

/// Prints [`format_summary_table`] to standard output.
pub fn print_summary_table(results: &ResultsFile) {
    print!("{}", format_summary_table(results));
}

/// Files written by [`write_outputs`].
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenOutputs {
    /// `dir/results.json`.
    pub results_json: PathBuf,
    /// `dir/report.md`.
    pub report_md: PathBuf,
    /// The plots (paths relative to `dir`).
    pub plots: Vec<PlotFile>,
    /// The performance profiles (`plots/profile-<group>.svg`).
    pub profiles: Vec<ProfileFile>,
}

/// Writes `results.json` (validated against the schema before writing), the SVG plots,
/// the performance profiles and `report.md` into `dir` (an existing run directory, e.g. from
/// [`crate::outdir::create_run_dir`]), each file atomically.
pub fn write_outputs(dir: &Path, results: &ResultsFile) -> Result<WrittenOutputs, BenchError> {
    let json = results.to_json_string()?;
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|source| BenchError::Json {
            context: "re-reading results".into(),
            source,
        })?;
    crate::results::validate_results(&value)?;
    let results_json = dir.join("results.json");
    write_atomic(&results_json, json.as_bytes())?;
    let plots = write_plots(dir, results)?;
    let profiles = write_profiles(dir, results, TARGET_TAU)?;
    let report_md = dir.join("report.md");
    let heatmaps = crate::classification::write_confusion_heatmaps(dir, results)?;
    let mut md = render_report(results, &plots, &profiles);
    md.push_str(&crate::classification::render_classification_section(
        results, &heatmaps,
    ));
    write_atomic(&report_md, md.as_bytes())?;
    Ok(WrittenOutputs {
        results_json,
        report_md,
        plots,
        profiles,
    })
}
