//! The comparison runner behind `cargo xtask compare` (binary `strata-compare`).
//!
//! Data flow: [`CompareArgs`] -> [`Plan`] (problems from [`crate::problems::registry`],
//! solvers from [`solver_registry`], the applicable pairs by family, seeds, per-problem
//! budgets) -> for each problem and seed: data built once, initial weights (NMF: initial
//! factors) drawn once from the seed, then for each applicable solver a fresh problem
//! holding clones of them and a `solvers::Driver` run under the problem's budget (the
//! driver evaluates the true training objective at every iteration and counts time and
//! data passes the same way for every method) -> [`crate::convert`] ->
//! [`crate::results::ResultsFile`] -> [`crate::report::write_outputs`] (`results.json`,
//! `report.md`, SVG plots) in a new directory under `--out` (built under a hidden
//! `.partial` name and renamed when complete: [`crate::partial`]). With
//! `--eval-every` the driver evaluates only on a grid of data passes (plus the start
//! and the end).
//!
//! Fairness: every solver runs with its documented defaults (the registry entry; no
//! per-problem tuning in the runner), from the same initial weights, on the same data,
//! under the same budget. With `--tune` every solver's declared hyperparameters are
//! searched on a grid of the same size, selected on a validation split of the training
//! set, and the search's cost is recorded ([`tune`]).
//!
//! Robustness: a run that diverges, fails or panics (caught) is reported with that
//! status and the comparison goes on; a problem whose user data is missing (MNIST
//! directories) is reported `skipped` with the reason.
//!
//! ## Registering a solver: one line
//!
//! Add one entry to the `vec![...]` of [`solver_registry`] (file
//! `crates/bench-suite/src/runner/registry.rs`):
//!
//! ```text
//! net_solver!("block-mm", LayerwiseMm, quick, "block MM (ALGORITHMS.md 1), defaults", |_| BlockMmConfig::default()),
//! ```
//!
//! i.e. `net_solver!(display name, SolverFamily variant, quick | full, "one-line
//! description", |ctx| CONFIG)` where `CONFIG` is a serde-serialisable config with
//! `build::<T>() -> Result<S, SolverError>` and `S: Solver<NetProblem<T>> + 'static`
//! for `T = f32, f64`. If the solver is built another way, append
//! `, |c, T| EXPR` (e.g. `, |c, T| Mac::<T>::new(c)`). beta-NMF methods use
//! [`nmf_solver!`](crate::nmf_solver). The entry then runs on every problem listing its
//! family, appears in `--list`, and its config is recorded in each run's
//! hyperparameters. One more line in [`tune::DECLARATIONS`] states what `--tune`
//! searches and whether the method promises a monotone decrease (the report flags a
//! rise only then); the registry's tests fail for an entry without it.

mod args;
mod budgets;
pub mod distributed;
mod execute;
mod initial;
pub mod limits;
mod registry;
pub mod tune;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use args::{CompareArgs, parse_seeds};
pub use budgets::{default_budget, to_driver, with_overrides};
pub use execute::{RunSettings, RunnerReal};
pub use initial::{INIT_STREAM, initial_factors, initial_network, initial_network_with};
pub use registry::{
    Built, Factory, NetFactory, NmfFactory, SolverCtx, SolverEntry, nmf_config, solver_registry,
};
#[doc(hidden)]
pub use registry::{apply_options, apply_overrides, boxed, hyperparameters};
pub use solvers::nmf::NmfProblem;
pub use solvers::{NetProblem, SolverError};

use crate::BenchError;
use crate::partial::PartialRunDir;
use crate::problems::{AnyProblemData, BuildOptions, ProblemData, ProblemSpec, registry};
use crate::report::{WrittenOutputs, write_outputs};
use crate::results::{BudgetSpec, ResultsFile, RunMetadata, RunResult};

/// What a comparison will run, resolved from the arguments.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Problems, in registry order, each with its applicable solvers and budget.
    pub problems: Vec<PlannedProblem>,
    /// Seeds of every (problem, solver).
    pub seeds: Vec<u64>,
    /// Precision.
    pub dtype: crate::problems::Dtype,
    /// Threads and tuning.
    pub settings: RunSettings,
    /// Where user data lives.
    pub build_options: BuildOptions,
    /// The command-line budget overrides (for the results metadata).
    pub overrides: BudgetSpec,
}

/// One problem of a [`Plan`].
#[derive(Clone, Debug)]
pub struct PlannedProblem {
    /// The problem.
    pub spec: ProblemSpec,
    /// The solvers that apply to it (by family), in registry order.
    pub solvers: Vec<SolverEntry>,
    /// Its budget (defaults with the command-line overrides).
    pub budget: BudgetSpec,
}

impl Plan {
    /// Driver runs the plan makes (with `--tune`: the grid points of every tuned solver
    /// on a network problem, plus its final run).
    pub fn total_runs(&self) -> usize {
        self.problems
            .iter()
            .flat_map(|p| p.solvers.iter().map(move |s| (p, s)))
            .map(|(p, s)| match self.settings.tune_points {
                Some(points) if execute::tunes(&p.spec, s) => points + 1,
                _ => 1,
            })
            .sum::<usize>()
            * self.seeds.len()
    }
}

fn unknown(what: &'static str, name: &str, valid: impl Iterator<Item = String>) -> BenchError {
    BenchError::UnknownName {
        what,
        name: name.to_string(),
        valid: valid.collect::<Vec<_>>().join(", "),
    }
}

/// Resolves the arguments against the given registries: names checked (an unknown
/// name is [`BenchError::UnknownName`] listing the valid ones), seeds, budgets, grid.
pub fn plan(
    args: &CompareArgs,
    problems: &[ProblemSpec],
    solvers: &[SolverEntry],
) -> Result<Plan, BenchError> {
    limits::validate_threads(args.threads, args.force_threads)?;
    args.epochs.map(limits::validate_epochs).transpose()?;
    args.time_budget
        .map(limits::validate_time_budget)
        .transpose()?;
    args.memory_limit_gib
        .map(limits::memory_limit_bytes)
        .transpose()?;
    limits::validate_sample_cap("max-train", args.max_train)?;
    limits::validate_sample_cap("max-test", args.max_test)?;
    let eval_cadence = match args.eval_every {
        None => solvers::EvalCadence::EveryStep,
        Some(k) => {
            let c = solvers::EvalCadence::Passes(k);
            c.validate()
                .map_err(|e| BenchError::arg("eval-every", e.to_string()))?;
            c
        }
    };
    let chosen_problems: Vec<ProblemSpec> = match &args.problems {
        Some(names) => {
            let mut out = Vec::new();
            for n in names {
                let p = problems.iter().find(|p| &p.name == n).ok_or_else(|| {
                    unknown("problem", n, problems.iter().map(|p| p.name.clone()))
                })?;
                out.push(p.clone());
            }
            // Registry order, no duplicates.
            problems
                .iter()
                .filter(|p| out.iter().any(|q| q.name == p.name))
                .cloned()
                .collect()
        }
        None => problems
            .iter()
            .filter(|p| args.full || p.quick)
            .cloned()
            .collect(),
    };
    let chosen_solvers: Vec<SolverEntry> = match &args.solvers {
        Some(names) => {
            for n in names {
                if !solvers.iter().any(|s| s.name == n) {
                    return Err(unknown(
                        "solver",
                        n,
                        solvers.iter().map(|s| s.name.to_string()),
                    ));
                }
            }
            solvers
                .iter()
                .filter(|s| names.iter().any(|n| n == s.name))
                .cloned()
                .collect()
        }
        None => solvers
            .iter()
            .filter(|s| args.full || s.quick)
            .cloned()
            .collect(),
    };
    let seeds = match &args.seeds {
        Some(s) => parse_seeds(s)?,
        None => vec![0, 1, 2],
    };
    if args.tune && !(1..=21).contains(&args.tune_points) {
        return Err(BenchError::arg(
            "tune-points",
            format!("{} must be between 1 and 21", args.tune_points),
        ));
    }
    let tune_points = args.tune.then_some(args.tune_points);
    let planned: Vec<PlannedProblem> = chosen_problems
        .into_iter()
        .filter_map(|spec| {
            let solvers: Vec<SolverEntry> = chosen_solvers
                .iter()
                .filter(|s| spec.supports(s.family))
                .cloned()
                .collect();
            (!solvers.is_empty()).then(|| PlannedProblem {
                budget: with_overrides(
                    default_budget(&spec, args.full),
                    args.epochs,
                    args.time_budget,
                ),
                spec,
                solvers,
            })
        })
        .collect();
    if planned.is_empty() {
        return Err(BenchError::arg(
            "solvers/problems",
            "no chosen solver applies to any chosen problem (see --list for families)",
        ));
    }
    let env = BuildOptions::from_env();
    Ok(Plan {
        problems: planned,
        seeds,
        dtype: args.dtype,
        settings: RunSettings {
            threads: args.threads,
            tune_points,
            eval_cadence,
            comm: None,
        },
        build_options: BuildOptions {
            mnist_dir: args.mnist_dir.clone().or(env.mnist_dir),
            fashion_mnist_dir: args.fashion_mnist_dir.clone().or(env.fashion_mnist_dir),
            mnist_max_train: args.max_train,
            fashion_mnist_package_dir: None,
        },
        overrides: BudgetSpec {
            max_epochs: args.epochs,
            max_wall_time_s: args.time_budget.filter(|t| *t > 0.0),
            max_iterations: None,
        },
    })
}

/// The result of a comparison.
#[derive(Clone, Debug)]
pub struct CompareOutcome {
    /// The new run directory.
    pub dir: PathBuf,
    /// Files written into it.
    pub outputs: WrittenOutputs,
    /// The document written as `results.json`.
    pub results: ResultsFile,
}

/// Runs the comparison the arguments describe with the built-in registries (what the
/// binary does). `--list` is the binary's business; here it is ignored.
pub fn run(args: &CompareArgs) -> Result<CompareOutcome, BenchError> {
    match args.suite.as_deref() {
        None => {}
        Some("papers") => return crate::papers::run_papers(args),
        Some(other) => {
            return Err(BenchError::UnknownName {
                what: "suite",
                name: other.to_string(),
                valid: "papers".to_string(),
            });
        }
    }
    run_with(args, &registry(), &solver_registry())
}

/// [`run`] with given problem and solver registries (tests add entries).
pub fn run_with(
    args: &CompareArgs,
    problems: &[ProblemSpec],
    solvers: &[SolverEntry],
) -> Result<CompareOutcome, BenchError> {
    let plan = plan(args, problems, solvers)?;
    run_plan(args, &plan)
}

/// Runs a checked plan and writes its outputs into a new run directory.
pub(crate) fn run_plan(args: &CompareArgs, plan: &Plan) -> Result<CompareOutcome, BenchError> {
    // Built under `.compare-…partial`, renamed into place only when complete (#13).
    let partial = PartialRunDir::create(&args.out, "compare")?;
    let show = !args.no_progress && std::io::stderr().is_terminal();
    let results = execute_plan(plan, show);
    let written = match write_outputs(partial.path(), &results) {
        Ok(w) => w,
        Err(e) => {
            // Keep what was written, under the partial name (never a complete run's).
            let kept = partial.keep();
            return Err(BenchError::io(
                kept,
                std::io::Error::other(format!(
                    "writing the outputs failed ({e}); what was written is kept in this \
                     directory"
                )),
            ));
        }
    };
    let tmp = partial.path().to_path_buf();
    let dir = partial.finish()?;
    let moved = |p: PathBuf| p.strip_prefix(&tmp).map_or(p.clone(), |r| dir.join(r));
    let outputs = WrittenOutputs {
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

/// Runs every (problem, seed, solver) of the plan in order, sequentially, with a
/// progress bar on stderr when `progress` is set.
pub fn execute_plan(plan: &Plan, progress: bool) -> ResultsFile {
    let mut metadata = RunMetadata::collect(
        plan.dtype,
        plan.settings.threads,
        plan.seeds.clone(),
        plan.overrides.clone(),
    );
    metadata.problem_budgets = plan
        .problems
        .iter()
        .map(|p| (p.spec.name.clone(), p.budget.clone()))
        .collect::<BTreeMap<_, _>>();
    metadata.ranks = plan.settings.comm.as_ref().map_or(1, |c| c.size());
    if let solvers::EvalCadence::Passes(k) = plan.settings.eval_cadence {
        metadata.eval_every_passes = Some(k);
    }
    let mut results = ResultsFile::new(metadata);
    let bar = if progress {
        ProgressBar::with_draw_target(Some(plan.total_runs() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut tick = |problem: &str, solver: &str, seed: u64| {
        bar.set_message(format!("{problem} / {solver} / seed {seed}"));
        bar.inc(1);
    };
    for p in &plan.problems {
        for &seed in &plan.seeds {
            let runs = run_problem_seed(plan, p, seed, &mut tick, &bar);
            results.runs.extend(runs);
        }
    }
    bar.finish_and_clear();
    results
}

fn run_problem_seed(
    plan: &Plan,
    p: &PlannedProblem,
    seed: u64,
    tick: execute::Tick,
    bar: &ProgressBar,
) -> Vec<RunResult> {
    let entries: Vec<&SolverEntry> = p.solvers.iter().collect();
    let data = match p.spec.build_dtype(seed, plan.dtype, &plan.build_options) {
        Ok(d) => d,
        Err(e) => {
            let skip = matches!(
                e,
                BenchError::DataMissing { .. } | BenchError::PackageMissing { .. }
            );
            let msg = format!("problem `{}` (seed {seed}): {e}", p.spec.name);
            bar.suspend(|| eprintln!("strata-compare: {msg}"));
            return entries
                .iter()
                .map(|s| {
                    let mut r = RunResult::skipped(&p.spec.name, s.name, seed, e.to_string());
                    if !skip {
                        r.status = crate::results::RunStatus::Failed {
                            error: e.to_string(),
                        };
                    }
                    r
                })
                .collect();
        }
    };
    let (b, st) = (&p.budget, &plan.settings);
    match data {
        AnyProblemData::F32(ProblemData::Supervised { train, test }) => {
            execute::run_network::<f32>(&p.spec, seed, train, test, &entries, b, st, tick)
        }
        AnyProblemData::F64(ProblemData::Supervised { train, test }) => {
            execute::run_network::<f64>(&p.spec, seed, train, test, &entries, b, st, tick)
        }
        AnyProblemData::F32(ProblemData::Nmf { v }) => {
            execute::run_nmf::<f32>(&p.spec, seed, v, &entries, b, st, tick)
        }
        AnyProblemData::F64(ProblemData::Nmf { v }) => {
            execute::run_nmf::<f64>(&p.spec, seed, v, &entries, b, st, tick)
        }
    }
}

/// The text of `--list`: every problem (families, quick, description) and every solver
/// (family, quick, description).
pub fn list_text(problems: &[ProblemSpec], solvers: &[SolverEntry]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("Problems (quick = in the default suite):\n");
    for p in problems {
        let fams: Vec<String> = p.families.iter().map(|f| format!("{f:?}")).collect();
        let _ = writeln!(
            s,
            "  {:<22} {:<5} [{}]\n      {}",
            p.name,
            if p.quick { "quick" } else { "" },
            fams.join(", "),
            p.description
        );
    }
    s.push_str("\nSolvers (quick = in the default suite):\n");
    for e in solvers {
        let _ = writeln!(
            s,
            "  {:<22} {:<5} {:?}\n      {}",
            e.name,
            if e.quick { "quick" } else { "" },
            e.family,
            e.description
        );
    }
    s
}
