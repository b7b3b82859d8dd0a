//! Running one (problem, seed): data built once, initial weights (or NMF factors) drawn
//! once, then every applicable solver on a fresh problem holding clones of them, under
//! the problem's budget, through the `solvers` driver.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use autodiff::Real;
use nets::Dataset;
use serde_json::Value;
use solvers::{Driver, NetProblem, Problem};

use super::initial::initial_network_with;
use super::registry::{Built, Factory, NetFactory, NmfFactory, SolverCtx, SolverEntry};
use super::tune::validation_split;
use crate::convert::{RunContext, run_result};
use crate::memory::PeakScope;
use crate::problems::{ProblemKind, ProblemSpec};
use crate::results::{BudgetSpec, RunResult, RunStatus, TuningRecord};

mod nmf;
pub use nmf::run_nmf;

/// The precisions the runner supports, with the factory of each.
pub trait RunnerReal: Real {
    /// The entry's network factory in this precision, if it is a network solver.
    fn net_factory(f: &Factory) -> Option<NetFactory<Self>>;
    /// The entry's NMF factory in this precision, if it is an NMF solver.
    fn nmf_factory(f: &Factory) -> Option<NmfFactory<Self>>;
}

impl RunnerReal for f32 {
    fn net_factory(f: &Factory) -> Option<NetFactory<f32>> {
        match f {
            Factory::Network { f32, .. } => Some(*f32),
            Factory::Nmf { .. } => None,
        }
    }
    fn nmf_factory(f: &Factory) -> Option<NmfFactory<f32>> {
        match f {
            Factory::Nmf { f32, .. } => Some(*f32),
            Factory::Network { .. } => None,
        }
    }
}

impl RunnerReal for f64 {
    fn net_factory(f: &Factory) -> Option<NetFactory<f64>> {
        match f {
            Factory::Network { f64, .. } => Some(*f64),
            Factory::Nmf { .. } => None,
        }
    }
    fn nmf_factory(f: &Factory) -> Option<NmfFactory<f64>> {
        match f {
            Factory::Nmf { f64, .. } => Some(*f64),
            Factory::Network { .. } => None,
        }
    }
}

/// Settings shared by every run of a comparison.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Threads of every run (driver and matrix products).
    pub threads: usize,
    /// `--tune` grid points (None: defaults, no search).
    pub tune_points: Option<usize>,
    /// `--eval-every`: when the driver evaluates the true objective, the same for every
    /// run ([`solvers::EvalCadence`]; default after every step).
    pub eval_cadence: solvers::EvalCadence,
    /// `--distributed`: the communicator over whose ranks the training samples are
    /// sharded (None: one process). See [`super::distributed`].
    pub comm: Option<std::sync::Arc<dyn solvers::comm::Comm>>,
}

/// Called once per driver run (grid values included) with (problem, solver, seed).
pub type Tick<'a> = &'a mut dyn FnMut(&str, &str, u64);

/// Computed from the final problem of a reported run: the classification metrics
/// (confusion matrix, per-class accuracy) of its final weights, or `None`.
pub type Finish<'a, P> = &'a dyn Fn(&P) -> Option<crate::classification::ClassificationMetrics>;

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked (non-string payload)".to_string()
    }
}

fn failed(
    problem: &str,
    solver: &str,
    seed: u64,
    error: String,
    hp: BTreeMap<String, Value>,
) -> RunResult {
    let mut r = RunResult::skipped(problem, solver, seed, "");
    r.status = RunStatus::Failed { error };
    r.hyperparameters = hp;
    r
}

/// One driver run: builds the problem (`make_problem`) and the solver (`make_solver`),
/// runs it under `budget` with a panic guard, and converts the outcome. The reported
/// solver name is the registry's display name; the solver's own name goes into the
/// hyperparameters (`solver`).
#[allow(clippy::too_many_arguments)]
fn run_once<P: Problem>(
    problem_name: &str,
    entry: &SolverEntry,
    seed: u64,
    budget: &BudgetSpec,
    threads: usize,
    cadence: solvers::EvalCadence,
    make_problem: &dyn Fn() -> Result<P, solvers::SolverError>,
    make_solver: &dyn Fn() -> Result<Built<P>, solvers::SolverError>,
    finish: Finish<P>,
) -> RunResult {
    let mut problem = match make_problem() {
        Ok(p) => p,
        Err(e) => {
            return failed(
                problem_name,
                entry.name,
                seed,
                e.to_string(),
                BTreeMap::new(),
            );
        }
    };
    let scope = PeakScope::start();
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let built = make_solver()?;
        let mut solver = built.solver;
        let mut driver = Driver::new(super::budgets::to_driver(budget))
            .seed(seed)
            .threads(threads)
            .evaluate_every(cadence);
        driver
            .run(&mut problem, &mut solver)
            .map(|o| (o, built.hyperparameters))
    }));
    let total = start.elapsed().as_secs_f64();
    let peak = scope.peak_increase();
    match outcome {
        Ok(Ok((outcome, mut hp))) => {
            hp.insert("solver".into(), Value::String(outcome.trace.solver.clone()));
            let mut r = run_result(
                &outcome,
                RunContext {
                    problem: problem_name.to_string(),
                    seed,
                    peak_memory_bytes: peak,
                    total_wall_time_s: total,
                    hyperparameters: hp,
                    tuned: false,
                },
            );
            r.solver = entry.name.to_string();
            r.classification = finish(&problem);
            r
        }
        Ok(Err(e)) => failed(
            problem_name,
            entry.name,
            seed,
            e.to_string(),
            BTreeMap::new(),
        ),
        Err(p) => failed(
            problem_name,
            entry.name,
            seed,
            panic_message(p),
            BTreeMap::new(),
        ),
    }
}

/// Whether `entry` is tuned on `spec` under `--tune`: it declares parameters
/// ([`super::tune::DECLARATIONS`]) and the problem has samples to hold out (networks).
pub fn tunes(spec: &ProblemSpec, entry: &SolverEntry) -> bool {
    matches!(spec.kind, ProblemKind::Network { .. })
        && super::tune::declaration(entry.name).is_some_and(|d| !d.tune.is_empty())
}

/// The `--tune` environment of one (problem, seed): the problem on the training part of
/// the validation split (the validation samples as its test set) and the size ratio.
pub struct TuneEnv<'a, P> {
    /// Grid points.
    pub points: usize,
    /// Builds the problem on the 80% part, validation samples as its test set.
    pub make_problem: &'a dyn Fn() -> Result<P, solvers::SolverError>,
    /// Training samples of the 80% part / of the full training set.
    pub size_ratio: f64,
    /// Whether the entry has something to tune here ([`tunes`]).
    pub active: bool,
}

fn not_tuned(entry: &SolverEntry, points: usize) -> TuningRecord {
    let why = match super::tune::declaration(entry.name) {
        Some(d) if !d.why_not_tuned.is_empty() => d.why_not_tuned.to_string(),
        Some(_) => "no held-out samples on this problem (NMF): defaults".to_string(),
        None => "no tuning declaration (add a line to runner::tune::DECLARATIONS)".to_string(),
    };
    TuningRecord {
        parameters: Vec::new(),
        scale_factors: super::tune::scale_factors(points),
        grid: Vec::new(),
        validation_objectives: Vec::new(),
        candidate_status: Vec::new(),
        chosen_index: 0,
        chosen: BTreeMap::new(),
        validation_fraction: super::tune::VALIDATION_FRACTION,
        selection: super::tune::SELECTION_RULE.to_string(),
        wall_time_s: 0.0,
        solver_time_s: 0.0,
        data_passes: 0.0,
        not_tuned_reason: Some(why),
        extended: None,
        at_edge: None,
    }
}

/// Final validation objective of a candidate run (None: diverged, failed, skipped or
/// non-finite).
fn validation_score(r: &RunResult) -> Option<f64> {
    match r.status {
        RunStatus::Diverged { .. } | RunStatus::Failed { .. } | RunStatus::Skipped { .. } => None,
        _ => r
            .last()
            .and_then(|l| l.test_objective)
            .filter(|v| v.is_finite()),
    }
}

/// Runs `entry` with its defaults, or, under `--tune` ([`TuneEnv`]), runs every grid
/// point on the validation split, picks the best ([`super::tune`]) and runs it on the
/// full training set; the reported run carries the search in `tuning`.
#[allow(clippy::too_many_arguments)]
fn run_entry<P: Problem>(
    problem_name: &str,
    entry: &SolverEntry,
    seed: u64,
    budget: &BudgetSpec,
    settings: &RunSettings,
    base_ctx: &SolverCtx,
    make_problem: &dyn Fn() -> Result<P, solvers::SolverError>,
    build: &dyn Fn(&SolverCtx) -> Result<Built<P>, solvers::SolverError>,
    tune: Option<&TuneEnv<'_, P>>,
    finish: Finish<P>,
    tick: Tick,
) -> RunResult {
    let threads = settings.threads;
    let plain = |tick: Tick, ctx: &SolverCtx| {
        tick(problem_name, entry.name, seed);
        run_once(
            problem_name,
            entry,
            seed,
            budget,
            threads,
            settings.eval_cadence,
            make_problem,
            &|| build(ctx),
            finish,
        )
    };
    let Some(env) = tune else {
        return plain(tick, base_ctx);
    };
    let params = super::tune::declaration(entry.name).map_or(&[][..], |d| d.tune);
    let defaults = build(base_ctx).map(|b| Value::Object(b.hyperparameters.into_iter().collect()));
    let grid = match (env.active, &defaults) {
        (false, _) => Err(None),
        (true, Ok(cfg)) => super::tune::grid(cfg, params, env.points).map_err(Some),
        (true, Err(e)) => Err(Some(e.to_string())),
    };
    let (mut grid, cfg) = match (grid, defaults) {
        (Ok(g), Ok(cfg)) => (g, cfg),
        (Ok(_), Err(e)) => {
            let mut r = plain(tick, base_ctx);
            r.status = RunStatus::Failed {
                error: format!("--tune: {e}"),
            };
            return r;
        }
        (Err(None), _) => {
            let mut r = plain(tick, base_ctx);
            r.tuning = Some(not_tuned(entry, env.points));
            return r;
        }
        (Err(Some(msg)), _) => {
            let mut r = plain(tick, base_ctx);
            r.status = RunStatus::Failed {
                error: format!("--tune: {msg}"),
            };
            return r;
        }
    };
    let run_candidate = |tick: &mut dyn FnMut(&str, &str, u64), point: &Vec<(String, f64)>| {
        tick(problem_name, entry.name, seed);
        let ctx = SolverCtx {
            overrides: point.clone(),
            ..base_ctx.clone()
        };
        run_once(
            problem_name,
            entry,
            seed,
            budget,
            threads,
            settings.eval_cadence,
            env.make_problem,
            &|| build(&ctx),
            &|_| None,
        )
    };
    let mut candidates: Vec<RunResult> = grid.iter().map(|p| run_candidate(tick, p)).collect();
    let mut scores: Vec<Option<f64>> = candidates.iter().map(validation_score).collect();
    let fallback = grid.len() / 2;
    let mut chosen_index = super::tune::select(&scores, fallback);
    let mut factors = super::tune::scale_factors(env.points);
    // A choice (by score) at an edge: extend once beyond it (tune module doc, "Edges").
    let mut extended = None;
    if let Some(edge) = super::tune::edge_of(&factors, chosen_index)
        .filter(|_| scores.get(chosen_index).is_some_and(Option::is_some))
    {
        let extra = super::tune::extension_factors(env.points, edge);
        match super::tune::grid_at(&cfg, params, &extra) {
            Ok(points) => {
                for point in points {
                    let c = run_candidate(tick, &point);
                    scores.push(validation_score(&c));
                    candidates.push(c);
                    grid.push(point);
                }
                factors.extend(extra);
                chosen_index = super::tune::select(&scores, fallback);
                extended = Some(edge.label().to_string());
            }
            Err(msg) => {
                let mut r = plain(tick, base_ctx);
                r.status = RunStatus::Failed {
                    error: format!("--tune: {msg}"),
                };
                return r;
            }
        }
    }
    let at_edge = super::tune::edge_of(&factors, chosen_index)
        .filter(|_| scores.get(chosen_index).is_some_and(Option::is_some))
        .map(|e| e.label().to_string());
    let chosen_ctx = SolverCtx {
        overrides: grid[chosen_index].clone(),
        ..base_ctx.clone()
    };
    let mut r = plain(tick, &chosen_ctx);
    let as_map = |p: &Vec<(String, f64)>| p.iter().cloned().collect::<BTreeMap<_, _>>();
    r.tuned = true;
    r.tuning = Some(TuningRecord {
        parameters: params.iter().map(|p| p.to_string()).collect(),
        scale_factors: factors,
        grid: grid.iter().map(as_map).collect(),
        validation_objectives: scores,
        candidate_status: candidates
            .iter()
            .map(|c| c.status.label().to_string())
            .collect(),
        chosen_index,
        chosen: as_map(&grid[chosen_index]),
        validation_fraction: super::tune::VALIDATION_FRACTION,
        selection: super::tune::SELECTION_RULE.to_string(),
        wall_time_s: candidates.iter().map(|c| c.total_wall_time_s).sum(),
        solver_time_s: candidates
            .iter()
            .filter_map(|c| c.last().map(|l| l.wall_time_s))
            .sum(),
        data_passes: candidates
            .iter()
            .filter_map(|c| c.last().map(|l| l.epochs * env.size_ratio))
            .sum(),
        not_tuned_reason: None,
        extended,
        at_edge,
    });
    r
}

/// What the run trains when it is not the problem's objective: Taylor ADMM's binary
/// hinge output on a cross-entropy problem (recorded as `output_loss: "Hinge"`).
pub fn trained_objective(hp: &BTreeMap<String, Value>, loss: nets::LossKind) -> Option<String> {
    let hinge = hp.get("output_loss").and_then(Value::as_str) == Some("Hinge");
    (hinge && loss == nets::LossKind::SoftmaxCrossEntropy).then(|| {
        "binary hinge output loss (Taylor et al. 2016), not the problem's cross-entropy".into()
    })
}

/// Every applicable entry on a supervised problem of precision `T` for one seed.
#[allow(clippy::too_many_arguments)]
pub fn run_network<T: RunnerReal>(
    spec: &ProblemSpec,
    seed: u64,
    train: Dataset<T>,
    test: Option<Dataset<T>>,
    entries: &[&SolverEntry],
    budget: &BudgetSpec,
    settings: &RunSettings,
    tick: Tick,
) -> Vec<RunResult> {
    let ProblemKind::Network {
        widths,
        hidden,
        loss,
        l2,
        init,
    } = &spec.kind
    else {
        return Vec::new();
    };
    let net = match initial_network_with::<T>(widths, *hidden, *init, seed) {
        Ok(n) => n,
        Err(e) => {
            return entries
                .iter()
                .map(|en| failed(&spec.name, en.name, seed, e.to_string(), BTreeMap::new()))
                .collect();
        }
    };
    let loss = loss.to_nets_with(*l2);
    let threads = settings.threads;
    let make_problem = || {
        NetProblem::new(net.clone(), loss, train.clone(), test.clone())
            .map(|p| p.with_threads(threads))
    };
    let split = match settings.tune_points {
        Some(_) => match validation_split(&train, seed) {
            Ok(s) => Some(s),
            Err(e) => {
                return entries
                    .iter()
                    .map(|en| failed(&spec.name, en.name, seed, e.to_string(), BTreeMap::new()))
                    .collect();
            }
        },
        None => None,
    };
    let make_fit_problem = || {
        let (fit, val) = split
            .clone()
            .ok_or_else(|| solvers::SolverError::Problem("no validation split".into()))?;
        NetProblem::new(net.clone(), loss, fit, Some(val)).map(|p| p.with_threads(threads))
    };
    let size_ratio = split
        .as_ref()
        .map_or(1.0, |(fit, _)| fit.len() as f64 / train.len().max(1) as f64);
    let mut out = Vec::new();
    if let Some(comm) = &settings.comm {
        let make_sharded = || {
            make_problem()
                .and_then(|p| solvers::distributed::ShardedNetProblem::new(p, comm.clone()))
        };
        for entry in entries {
            if T::net_factory(&entry.factory).is_none() {
                continue;
            }
            out.push(run_entry(
                &spec.name,
                entry,
                seed,
                budget,
                settings,
                &SolverCtx {
                    loss: Some(loss.kind),
                    ..Default::default()
                },
                &make_sharded,
                &|ctx| super::distributed::sharded_net_solver::<T>(entry, ctx),
                None,
                &|_| None,
                tick,
            ));
        }
        return out;
    }
    for entry in entries {
        let Some(factory) = T::net_factory(&entry.factory) else {
            continue;
        };
        let env = settings.tune_points.map(|points| TuneEnv {
            points,
            make_problem: &make_fit_problem,
            size_ratio,
            active: tunes(spec, entry),
        });
        let mut r = run_entry(
            &spec.name,
            entry,
            seed,
            budget,
            settings,
            &SolverCtx {
                loss: Some(loss.kind),
                ..Default::default()
            },
            &make_problem,
            &|ctx| factory(ctx),
            env.as_ref(),
            &|p: &NetProblem<T>| crate::classification::metrics_of(p),
            tick,
        );
        r.trained_objective = trained_objective(&r.hyperparameters, loss.kind);
        out.push(r);
    }
    out
}
