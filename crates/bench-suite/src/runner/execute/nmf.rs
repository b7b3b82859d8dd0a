//! Running every applicable entry on one NMF problem and seed: the initial factors are
//! drawn once, each solver gets a fresh [`NmfProblem`] holding clones of them (or the
//! sharded problem over the run's communicator).

use nalgebra::DMatrix;
use solvers::nmf::{BetaNmfConfig, NmfProblem};

use super::{RunSettings, RunnerReal, Tick, TuneEnv, failed, run_entry};
use crate::problems::{ProblemKind, ProblemSpec};
use crate::results::{BudgetSpec, RunResult};
use crate::runner::initial::initial_factors;
use crate::runner::registry::{SolverCtx, SolverEntry};

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
    let (w0, h0) = match initial_factors(&v, rank, seed) {
        Ok(f) => f,
        Err(e) => {
            return entries
                .iter()
                .map(|en| failed(&spec.name, en.name, seed, e.to_string(), Default::default()))
                .collect();
        }
    };
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
                &|c| crate::runner::distributed::sharded_nmf_solver::<T>(entry, c),
                None,
                &|_| None,
                tick,
            ));
        }
        return out;
    }
    for entry in entries {
        let Some(factory) = T::nmf_factory(&entry.factory) else {
            continue;
        };
        let env = settings.tune_points.map(|points| TuneEnv {
            points,
            make_problem: &make_problem,
            size_ratio: 1.0,
            active: false,
        });
        out.push(run_entry(
            &spec.name,
            entry,
            seed,
            budget,
            settings,
            &ctx,
            &make_problem,
            &|c| factory(c),
            env.as_ref(),
            &|_| None,
            tick,
        ));
    }
    out
}
