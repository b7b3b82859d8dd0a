//! `cargo xtask compare --suite papers`: each structured method in its own paper's
//! experimental setup on Fashion-MNIST, next to gradient baselines in the same setup.
//!
//! A [`PaperSetup`] fixes the architecture, the batch regime, the paper's iteration count
//! and the method's hyperparameters (the reference code's defaults, see
//! `/work/shared/docs/ALGORITHMS.md` sections 2-7). Every setup is planned twice:
//!
//! - `papers-<setup>` ("does it reproduce"): every solver is capped at the paper's
//!   iteration count (one iteration = one full-batch sweep for full-batch methods, one
//!   epoch for mini-batch methods), baselines run in the SAME batch regime (full-batch GD
//!   / Adam / L-BFGS next to a full-batch method), plus a common wall-time safety cap;
//! - `papers-<setup>-equal-time` ("is it worth it"): every solver gets the same solver
//!   wall time and no iteration cap; the baselines run at their usual defaults
//!   (mini-batch Adam).
//!
//! Data: the first [`PAPERS_DEFAULT_TRAIN`] training images (all 60,000 with `--full`)
//! and all 10,000 test images, pixels in [0, 1] (no standardisation), as the reference
//! codes do.
//!
//! Objective and initial weights: each setup carries its paper's ([`PaperSetup::l2`],
//! [`PaperSetup::init`]; drawn on seed stream 1 like every run). dlADMM (and Taylor ADMM,
//! run in the dlADMM setup as that paper's baseline, from its own paper's start: Z_l,
//! A_l i.i.d. N(0, 1), `admm-taylor-paper`): mean softmax cross-entropy without
//! weight penalty, W, b ~ N(0, 0.1^2) as dlADMM's `main.py`; BCD: no penalty, W =
//! 0.01 N(0, 1), b = 0.1 as the BCD code; its loss, squared error on one-hot targets, is
//! the setup `bcd-squared` (`bcd` keeps the cross-entropy). Lifted / MAC: no
//! penalty, Glorot-uniform weights and biases 0.1, as the Fenchel code's `mnist_batch.py`;
//! ProxProp: no penalty, PyTorch's `nn.Linear` law (weights and biases U(+-1/sqrt(fan_in)))
//! as the ProxProp code. Every solver of a setup, baselines included, starts from the same
//! weights on the same objective. docs/PAPERS.md lists the differences left.
//!
//! Memory: before a run, [`estimate_peak_bytes`] bounds the run's allocations from the
//! sizes (auxiliary variables Z_l, A_l, multipliers for all N samples); a run whose
//! estimate exceeds the limit (`--memory-limit-gib`, default [`DEFAULT_MEMORY_LIMIT_GIB`])
//! is not started and is reported `failed` with [`BenchError::MemoryLimit`].

mod memory;
mod setups;

pub use memory::{
    DEFAULT_MEMORY_LIMIT_GIB, check_memory, default_memory_limit_bytes, estimate_peak_bytes,
};
pub use setups::{
    PaperSetup, paper_setups, papers_list_text, papers_solver_registry, setup_problem,
};

use crate::BenchError;
use crate::report::write_outputs;
use crate::results::{BudgetSpec, RunResult, RunStatus};
use crate::runner::{
    CompareArgs, CompareOutcome, Plan, PlannedProblem, execute_plan, plan, solver_registry,
};

/// Training images of the papers suite without `--full` (CPU: 2 shared cores).
pub const PAPERS_DEFAULT_TRAIN: usize = 10_000;
/// Wall-time safety cap (s) of a run under the paper's iteration count.
pub const PAPER_ITERATIONS_WALL_CAP_S: f64 = 600.0;
/// Solver wall time (s) of every run in the equal-time variant.
pub const EQUAL_TIME_S: f64 = 60.0;

/// Whether the `--problems` selector `sel` picks the variant called `name`:
/// `papers-<key>` picks both variants of the setup, `papers-<key>-equal-time` only the
/// equal-time one, `papers-<key>-paper-iterations` only the paper-iteration one (named
/// `papers-<key>`; used to measure one method at full scale without the equal-time run).
fn selects(sel: &str, name: &str) -> bool {
    match sel.strip_suffix("-paper-iterations") {
        Some(base) => name == base,
        // Exact names: `papers-bcd` must not pick `papers-bcd-squared`.
        None => name == sel || name == format!("{sel}-equal-time"),
    }
}

/// The plan of `--suite papers`, and the runs refused by the memory check.
///
/// `--problems` selects setups by problem name (`papers-dladmm`, ...; see `selects`), `--solvers`
/// filters solvers, `--time-budget` replaces [`EQUAL_TIME_S`] (and caps the paper-iteration
/// runs), `--epochs` is ignored (the paper's iteration count is the budget), `--full`
/// uses all 60,000 training images, `--max-train N` the first N, `--max-test M` the
/// first M of the 10,000 test images.
pub fn papers_plan(
    args: &CompareArgs,
    memory_limit_bytes: u64,
) -> Result<(Plan, Vec<RunResult>), BenchError> {
    let registry = papers_solver_registry();
    let train = match args.max_train {
        Some(0) => return Err(BenchError::arg("max-train", "must be >= 1")),
        Some(n) => n.min(60_000),
        None if args.full => 60_000,
        None => PAPERS_DEFAULT_TRAIN,
    };
    let test = match args.max_test {
        Some(0) => return Err(BenchError::arg("max-test", "must be >= 1")),
        Some(n) => n.min(10_000),
        None => 10_000,
    };
    let equal = args
        .time_budget
        .filter(|t| *t > 0.0)
        .unwrap_or(EQUAL_TIME_S);
    let cap = args
        .time_budget
        .filter(|t| *t > 0.0)
        .unwrap_or(PAPER_ITERATIONS_WALL_CAP_S);
    let mut problems = Vec::new();
    let mut refused = Vec::new();
    let seeds = match &args.seeds {
        Some(s) => crate::runner::parse_seeds(s)?,
        None => vec![0],
    };
    for setup in paper_setups() {
        let variants = [
            (
                format!("papers-{}", setup.key),
                &setup.paper_solvers,
                BudgetSpec {
                    max_epochs: None,
                    max_wall_time_s: Some(cap),
                    max_iterations: Some(setup.iterations),
                },
            ),
            (
                format!("papers-{}-equal-time", setup.key),
                &setup.equal_time_solvers,
                BudgetSpec {
                    max_epochs: None,
                    max_wall_time_s: Some(equal),
                    max_iterations: None,
                },
            ),
        ];
        for (name, names, budget) in variants {
            if let Some(sel) = &args.problems
                && !sel.iter().any(|p| selects(p, &name))
            {
                continue;
            }
            let mut solvers = Vec::new();
            for s in names.iter() {
                if let Some(sel) = &args.solvers
                    && !sel.iter().any(|x| x == s)
                {
                    continue;
                }
                let entry = registry
                    .iter()
                    .find(|e| e.name == *s)
                    .ok_or_else(|| BenchError::arg("solvers", format!("`{s}` not registered")))?;
                match check_memory(
                    s,
                    &name,
                    &setup.widths,
                    train,
                    test,
                    args.dtype,
                    memory_limit_bytes,
                ) {
                    Ok(_) => solvers.push(entry.clone()),
                    Err(e) => {
                        for &seed in &seeds {
                            let mut r = RunResult::skipped(&name, s, seed, "");
                            r.status = RunStatus::Failed {
                                error: e.to_string(),
                            };
                            refused.push(r);
                        }
                    }
                }
            }
            if !solvers.is_empty() {
                problems.push(PlannedProblem {
                    spec: setup_problem(&setup, name, train, test),
                    solvers,
                    budget,
                });
            }
        }
    }
    if problems.is_empty() && refused.is_empty() {
        return Err(BenchError::arg(
            "problems/solvers",
            "no papers setup selected",
        ));
    }
    // Reuse the runner's plan for settings and data directories, then replace problems.
    let mut base_args = args.clone();
    base_args.problems = Some(vec!["digits-mlp".into()]);
    base_args.solvers = Some(vec!["adam".into()]);
    base_args.seeds = Some(
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
            + ",",
    );
    let mut p = plan(&base_args, &crate::problems::registry(), &solver_registry())?;
    p.problems = problems;
    p.overrides = BudgetSpec {
        max_epochs: None,
        max_wall_time_s: args.time_budget.filter(|t| *t > 0.0),
        max_iterations: None,
    };
    Ok((p, refused))
}

/// Runs `--suite papers` and writes the usual outputs into a new directory.
pub fn run_papers(args: &CompareArgs) -> Result<CompareOutcome, BenchError> {
    let limit = match args.memory_limit_gib {
        Some(gib) => crate::runner::limits::memory_limit_bytes(gib)?,
        None => default_memory_limit_bytes(),
    };
    let (plan, refused) = papers_plan(args, limit)?;
    // Built under a `.papers-…partial` name, renamed into place when complete (as `run`).
    let partial = crate::partial::PartialRunDir::create(&args.out, "papers")?;
    let show = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut results = if plan.problems.is_empty() {
        crate::results::ResultsFile::new(crate::results::RunMetadata::collect(
            plan.dtype,
            plan.settings.threads,
            plan.seeds.clone(),
            plan.overrides.clone(),
        ))
    } else {
        execute_plan(&plan, show)
    };
    for r in &refused {
        if let RunStatus::Failed { error } = &r.status {
            eprintln!("strata-compare: {} / {}: {error}", r.problem, r.solver);
        }
    }
    results.runs.extend(refused);
    let write = |dir: &std::path::Path| -> Result<crate::report::WrittenOutputs, BenchError> {
        let outputs = write_outputs(dir, &results)?;
        let mut md = std::fs::read_to_string(&outputs.report_md)
            .map_err(|e| BenchError::io(&outputs.report_md, e))?;
        md.push_str(&render_papers_section(&results));
        crate::outdir::write_atomic(&outputs.report_md, md.as_bytes())?;
        Ok(outputs)
    };
    let written = match write(partial.path()) {
        Ok(w) => w,
        Err(e) => {
            let kept = partial.keep();
            return Err(BenchError::io(
                kept,
                std::io::Error::other(format!(
                    "writing the outputs failed ({e}); what was written is kept in this directory"
                )),
            ));
        }
    };
    let tmp = partial.path().to_path_buf();
    let dir = partial.finish()?;
    let moved = |p: std::path::PathBuf| p.strip_prefix(&tmp).map_or(p.clone(), |r| dir.join(r));
    let outputs = crate::report::WrittenOutputs {
        results_json: moved(written.results_json),
        report_md: moved(written.report_md),
        plots: written.plots,
        profiles: written.profiles,
    };
    Ok(CompareOutcome {
        dir,
        outputs,
        results,
    })
}

/// The side-by-side section of a papers report: per setup, what the paper reports, then
/// per (variant, solver): status, iterations done, solver time per iteration, final
/// training objective, final test accuracy and peak memory (median/maximum over seeds is
/// not taken: one row per seed).
pub fn render_papers_section(results: &crate::results::ResultsFile) -> String {
    use crate::analysis::{fmt_bytes, fmt_percent, fmt_sig};
    use std::fmt::Write as _;
    let mut s = String::from("\n## Papers side by side\n\n");
    let _ = writeln!(
        s,
        "`papers-<setup>`: every solver capped at the paper's iteration count (and the \
         wall-time cap); `-equal-time`: the same solver wall time for all. Time per \
         iteration = solver wall time / iterations done (evaluation excluded).\n"
    );
    for setup in paper_setups() {
        let base = format!("papers-{}", setup.key);
        let runs: Vec<_> = results
            .runs
            .iter()
            .filter(|r| r.problem == base || r.problem == format!("{base}-equal-time"))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "### {} ({:?})\n\nSetup: {}. Reported: {}.\n",
            base, setup.widths, setup.paper, setup.reported
        );
        let _ = writeln!(
            s,
            "| variant | solver | seed | status | iterations | s / iteration | final objective | test accuracy | peak memory |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for r in runs {
            let last = r.last();
            let iters = last.map(|l| l.iteration);
            let per =
                last.and_then(|l| (l.iteration > 0).then(|| l.wall_time_s / l.iteration as f64));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if r.problem == base {
                    "paper iterations"
                } else {
                    "equal time"
                },
                r.solver,
                r.seed,
                match &r.status {
                    RunStatus::Failed { error } => format!("failed: {error}"),
                    RunStatus::Skipped { reason } => format!("skipped: {reason}"),
                    other => other.label().to_string(),
                },
                iters.map_or("-".into(), |i| i.to_string()),
                fmt_sig(per, 3),
                fmt_sig(last.map(|l| l.objective), 4),
                fmt_percent(last.and_then(|l| l.test_accuracy)),
                fmt_bytes(r.peak_memory_bytes),
            );
        }
        s.push('\n');
    }
    s
}
