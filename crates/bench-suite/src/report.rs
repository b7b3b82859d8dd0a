//! `report.md` and the terminal summary table, from a results document.
//!
//! Columns (per problem, one row per solver; seeds aggregated as in [`crate::analysis`]):
//! solver, status, final training objective, test accuracy, solver wall time and epochs
//! to reach the problem's target objective (with how many seeds reached it), time per
//! epoch, peak memory. Numbers have 4 significant digits (memory 3).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::analysis::{ProblemSummary, TARGET_TAU, fmt_bytes, fmt_percent, fmt_sig, summarize};
use crate::outdir::write_atomic;
use crate::plots::{PlotFile, write_plots};
use crate::problems::find_problem;
use crate::results::ResultsFile;

fn reached(row: &crate::analysis::SolverSummary, value: Option<f64>) -> String {
    if row.final_objective.is_none() {
        "-".to_string()
    } else if row.reached_target == 0 {
        "not reached".to_string()
    } else if row.reached_target < row.runs {
        format!(
            "{} ({}/{})",
            fmt_sig(value, 4),
            row.reached_target,
            row.runs
        )
    } else {
        fmt_sig(value, 4)
    }
}

/// Renders `report.md`. `plots` are linked under the problem they belong to.
pub fn render_report(results: &ResultsFile, plots: &[PlotFile]) -> String {
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
    let _ = writeln!(s, "| command | `{}` |\n", m.command_line.join(" "));
    let _ = writeln!(
        s,
        "Objective: the true training objective of the weights each solver hands back. \
         Target: `f_best + {TARGET_TAU} (f_0 - f_best)`, with `f_best` the best final \
         objective of any run on the problem and `f_0` the initial objective (99% of the \
         best decrease). Time is solver wall time, evaluation excluded. With several \
         seeds, numbers are medians over seeds (time/epochs to target: over the seeds that \
         reached it, count in parentheses) and memory is the maximum.\n"
    );
    for p in summarize(results, TARGET_TAU) {
        render_problem(&mut s, &p, plots, &m.problem_budgets);
    }
    s
}

fn render_problem(
    s: &mut String,
    p: &ProblemSummary,
    plots: &[PlotFile],
    budgets: &std::collections::BTreeMap<String, crate::results::BudgetSpec>,
) {
    let _ = writeln!(s, "## {}\n", p.problem);
    if let Ok(spec) = find_problem(&p.problem) {
        let _ = writeln!(s, "{}\n", spec.description);
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
    let _ = writeln!(s, "Target objective: {}\n", fmt_sig(p.target, 4));
    let _ = writeln!(
        s,
        "| solver | status | final objective | test accuracy | time to target (s) | epochs to target | time/epoch (s) | peak memory |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &p.solvers {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.solver,
            r.status,
            fmt_sig(r.final_objective, 4),
            fmt_percent(r.test_accuracy),
            reached(r, r.time_to_target_s),
            reached(r, r.epochs_to_target),
            fmt_sig(r.time_per_epoch_s, 4),
            fmt_bytes(r.peak_memory_bytes),
        );
    }
    let mine: Vec<&PlotFile> = plots.iter().filter(|f| f.problem == p.problem).collect();
    if !mine.is_empty() {
        let _ = writeln!(s);
        for f in mine {
            let path = f.relative_path.to_string_lossy().replace('\\', "/");
            let _ = writeln!(s, "![{}]({path})", f.kind.title());
        }
    }
    let _ = writeln!(s);
}

/// A compact fixed-width table for the terminal: problem, solver, status, final
/// objective, test accuracy, time to target, time per epoch.
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
                fmt_sig(r.final_objective, 4),
                fmt_percent(r.test_accuracy),
                if r.reached_target == 0 {
                    "-".to_string()
                } else {
                    fmt_sig(r.time_to_target_s, 3)
                },
                fmt_sig(r.time_per_epoch_s, 3),
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
}

/// Writes `results.json` (validated against the schema before writing), the SVG plots
/// and `report.md` into `dir` (an existing run directory, e.g. from
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
    let report_md = dir.join("report.md");
    let heatmaps = crate::classification::write_confusion_heatmaps(dir, results)?;
    let mut md = render_report(results, &plots);
    md.push_str(&crate::classification::render_classification_section(
        results, &heatmaps,
    ));
    write_atomic(&report_md, md.as_bytes())?;
    Ok(WrittenOutputs {
        results_json,
        report_md,
        plots,
    })
}
