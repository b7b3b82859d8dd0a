//! Running one (problem, seed): data built once, initial weights (or NMF factors) drawn
//! once, then every applicable solver on a fresh problem holding clones of them, under
//! the problem's budget, through the `solvers` driver.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Dataset, Init, Sequential};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::{Value, json};
use solvers::nmf::{BetaNmfConfig, NmfProblem};
use solvers::{Driver, NetProblem, Problem};

use super::registry::{Built, Factory, NetFactory, NmfFactory, SolverCtx, SolverEntry};
use crate::convert::{RunContext, run_result};
use crate::memory::PeakScope;
use crate::problems::{HiddenActivation, ProblemKind, ProblemSpec, SolverFamily};
use crate::results::{BudgetSpec, RunResult, RunStatus};

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
    /// Learning-rate grid for the `Gradient` entries with an `lr` (None: defaults).
    pub lr_grid: Option<Vec<f64>>,
    /// `--distributed`: the communicator over whose ranks the training samples are
    /// sharded (None: one process). See [`super::distributed`].
    pub comm: Option<std::sync::Arc<dyn solvers::comm::Comm>>,
}

/// Called once per driver run (grid values included) with (problem, solver, seed).
pub type Tick<'a> = &'a mut dyn FnMut(&str, &str, u64);

/// The stream of the seed's ChaCha8 generator the initial weights / factors come from
/// (stream 0 is the data's; see [`crate::problems`]).
pub const INIT_STREAM: u64 = 1;

/// The initial network of a problem for `seed`: the registered MLP, He-uniform weights
/// for ReLU and Glorot-uniform for tanh, from `ChaCha8Rng::seed_from_u64(seed)` on
/// stream [`INIT_STREAM`].
pub fn initial_network<T: Real>(
    widths: &[usize],
    hidden: HiddenActivation,
    seed: u64,
) -> Result<Sequential<T>, nets::NetsError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INIT_STREAM);
    let init = match hidden {
        HiddenActivation::Relu => Init::HeUniform,
        HiddenActivation::Tanh => Init::GlorotUniform,
    };
    Sequential::mlp(widths, hidden.to_nets(), init, &mut rng)
}

/// Initial NMF factors: scikit-learn's 'random' scheme `|N(0, 1)| sqrt(mean(V) / K)`,
/// H (K x N) then W (F x K), entries drawn row by row from
/// `ChaCha8Rng::seed_from_u64(seed)` on stream [`INIT_STREAM`]; zeros (probability 0)
/// are floored at 1e-12 so every factor starts strictly positive.
pub fn initial_factors<T: Real>(
    v: &DMatrix<T>,
    rank: usize,
    seed: u64,
) -> (DMatrix<T>, DMatrix<T>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INIT_STREAM);
    let mean = v.iter().map(|x| x.to_f64()).sum::<f64>() / v.len().max(1) as f64;
    let scale = if mean > 0.0 && rank > 0 {
        (mean / rank as f64).sqrt()
    } else {
        1.0
    };
    let mut draw = |rows: usize, cols: usize| {
        let mut m = DMatrix::from_element(rows, cols, T::zero());
        for i in 0..rows {
            for j in 0..cols {
                let z: f64 = rng.sample(StandardNormal);
                m[(i, j)] = T::of((z.abs() * scale).max(1e-12));
            }
        }
        m
    };
    let h = draw(rank, v.ncols());
    let w = draw(v.nrows(), rank);
    (w, h)
}

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
    make_problem: &dyn Fn() -> Result<P, solvers::SolverError>,
    make_solver: &dyn Fn() -> Result<Built<P>, solvers::SolverError>,
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
            .threads(threads);
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

fn final_objective(r: &RunResult) -> f64 {
    match r.status {
        RunStatus::Diverged { .. } | RunStatus::Failed { .. } | RunStatus::Skipped { .. } => {
            f64::NAN
        }
        _ => r.last().map_or(f64::NAN, |l| l.objective),
    }
}

/// Runs `entry` once with its defaults, or once per grid value when the grid applies,
/// keeping the run with the lowest final training objective (diverged and failed runs
/// never win; if no value gives a finite objective the first grid value is reported).
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
    tick: Tick,
) -> RunResult {
    let grid = match &settings.lr_grid {
        Some(g) if entry.family == SolverFamily::Gradient && entry.has_lr => g.clone(),
        _ => {
            tick(problem_name, entry.name, seed);
            return run_once(
                problem_name,
                entry,
                seed,
                budget,
                settings.threads,
                make_problem,
                &|| build(base_ctx),
            );
        }
    };
    let mut runs = Vec::with_capacity(grid.len());
    for &lr in &grid {
        tick(problem_name, entry.name, seed);
        let ctx = SolverCtx {
            lr: Some(lr),
            ..base_ctx.clone()
        };
        runs.push(run_once(
            problem_name,
            entry,
            seed,
            budget,
            settings.threads,
            make_problem,
            &|| build(&ctx),
        ));
    }
    let finals: Vec<f64> = runs.iter().map(final_objective).collect();
    let best = finals
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let grid_time: f64 = runs.iter().map(|r| r.total_wall_time_s).sum();
    let mut chosen = runs.swap_remove(best);
    chosen.tuned = true;
    let hp = &mut chosen.hyperparameters;
    hp.insert("lr".into(), json!(grid[best]));
    hp.insert("lr_grid".into(), json!(grid));
    hp.insert(
        "lr_grid_final_objectives".into(),
        Value::Array(
            finals
                .iter()
                .map(|f| if f.is_finite() { json!(f) } else { Value::Null })
                .collect(),
        ),
    );
    hp.insert(
        "lr_selection".into(),
        json!("lowest final training objective over the grid, same budget and seed"),
    );
    hp.insert("lr_grid_total_wall_time_s".into(), json!(grid_time));
    chosen
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
    } = &spec.kind
    else {
        return Vec::new();
    };
    let net = match initial_network::<T>(widths, *hidden, seed) {
        Ok(n) => n,
        Err(e) => {
            return entries
                .iter()
                .map(|en| failed(&spec.name, en.name, seed, e.to_string(), BTreeMap::new()))
                .collect();
        }
    };
    let loss = loss.to_nets();
    let threads = settings.threads;
    let make_problem = || {
        NetProblem::new(net.clone(), loss, train.clone(), test.clone())
            .map(|p| p.with_threads(threads))
    };
    let mut out = Vec::new();
    if let Some(comm) = &settings.comm {
        let make_sharded = || {
            make_problem().and_then(|p| solvers::distributed::ShardedNetProblem::new(p, comm.clone()))
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
                tick,
            ));
        }
        return out;
    }
    for entry in entries {
        let Some(factory) = T::net_factory(&entry.factory) else {
            continue;
        };
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
            &make_problem,
            &|ctx| factory(ctx),
            tick,
        ));
    }
    out
}

/// Every applicable entry on an NMF problem of precision `T` for one seed.
#[allow(clippy::too_many_arguments)]
pub fn run_nmf<T: RunnerReal>(
    spec: &ProblemSpec,
    seed: u64,
    v: DMatrix<T>,
    entries: &[&SolverEntry],
    budget: &BudgetSpec,
    settings: &RunSettings,
    tick: Tick,
) -> Vec<RunResult> {
    let ProblemKind::Nmf { rank, beta } = spec.kind else {
        return Vec::new();
    };
    let (w0, h0) = initial_factors(&v, rank, seed);
    let objective = BetaNmfConfig {
        beta,
        ..Default::default()
    };
    let make_problem = || NmfProblem::new(v.clone(), w0.clone(), h0.clone(), &objective);
    let ctx = SolverCtx {
        beta,
        ..Default::default()
    };
    let mut out = Vec::new();
    if let Some(comm) = &settings.comm {
        let make_sharded = || {
            solvers::distributed::ShardedNmfProblem::new(
                v.clone(),
                w0.clone(),
                h0.clone(),
                &objective,
                comm.clone(),
            )
        };
        for entry in entries {
            if T::nmf_factory(&entry.factory).is_none() {
                continue;
            }
            out.push(run_entry(
                &spec.name,
                entry,
                seed,
                budget,
                settings,
                &ctx,
                &make_sharded,
                &|c| super::distributed::sharded_nmf_solver::<T>(entry, c),
                tick,
            ));
        }
        return out;
    }
    for entry in entries {
        let Some(factory) = T::nmf_factory(&entry.factory) else {
            continue;
        };
        out.push(run_entry(
            &spec.name,
            entry,
            seed,
            budget,
            settings,
            &ctx,
            &make_problem,
            &|c| factory(c),
            tick,
        ));
    }
    out
}
