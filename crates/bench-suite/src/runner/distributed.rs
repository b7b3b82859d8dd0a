//! `strata-compare --distributed`: the same comparison with the training samples sharded
//! over the ranks of an MPI job (`solvers::distributed`, docs/DISTRIBUTED.md).
//!
//! Every rank runs this program with the same arguments, builds the same problems and
//! initial weights from the same seeds, keeps its shard, and runs the same solvers in the
//! same order (every collective is matched). A solver is built from the registry entry's
//! own configuration (the `hyperparameters` its single-process factory records), so a
//! distributed run uses exactly the configuration of the single-process run; only the
//! solvers listed in [`DISTRIBUTED_SOLVERS`] have a distributed form, the others fail
//! with an error naming them. Rank 0 alone writes the results directory.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use solvers::admm::{DlAdmmConfig, TaylorConfig};
use solvers::comm::Comm;
use solvers::distributed::{
    DistributedBetaNmf, DistributedDlAdmm, DistributedTaylorAdmm, ShardedNetProblem,
    ShardedNmfProblem,
};
use solvers::first_order::{AdagradConfig, AdamConfig, AdamWConfig, RmsPropConfig, SgdConfig};
use solvers::inna::InnaConfig;
use solvers::lbfgs::LbfgsConfig;
use solvers::nmf::BetaNmfConfig;
use solvers::step_tuned::StepTunedConfig;
use solvers::{Solver, SolverError};

use super::execute::RunnerReal;
use super::registry::{Built, SolverCtx, SolverEntry};

/// The registry names of the solvers that run distributed.
pub const DISTRIBUTED_SOLVERS: &[&str] = &[
    "adam",
    "adamw",
    "sgd-momentum",
    "gd",
    "rmsprop",
    "adagrad",
    "lbfgs",
    "inna",
    "step-tuned",
    "admm-taylor",
    "dladmm",
    "nmf-mm",
    "nmf-heuristic",
    "nmf-me",
];

fn not_distributed(name: &str) -> SolverError {
    SolverError::Problem(format!(
        "solver `{name}` cannot run distributed (it needs the whole training set on one \
         process); distributed solvers: {}",
        DISTRIBUTED_SOLVERS.join(", ")
    ))
}

fn config<C: DeserializeOwned>(
    hp: &std::collections::BTreeMap<String, Value>,
) -> Result<C, SolverError> {
    let map: serde_json::Map<String, Value> = hp.clone().into_iter().collect();
    Ok(serde_json::from_value(Value::Object(map))?)
}

/// The distributed form of a network solver, with the configuration the entry's
/// single-process factory builds for `ctx` (same defaults, same grid value).
pub fn sharded_net_solver<T: RunnerReal>(
    entry: &SolverEntry,
    ctx: &SolverCtx,
) -> Result<Built<ShardedNetProblem<T>>, SolverError> {
    let factory = T::net_factory(&entry.factory).ok_or_else(|| not_distributed(entry.name))?;
    let hp = factory(ctx)?.hyperparameters;
    fn boxed<T: RunnerReal, S: Solver<ShardedNetProblem<T>> + 'static>(
        s: S,
    ) -> Box<dyn Solver<ShardedNetProblem<T>>> {
        Box::new(s)
    }
    let solver = match entry.name {
        "adam" => boxed(config::<AdamConfig>(&hp)?.build::<T>()?),
        "adamw" => boxed(config::<AdamWConfig>(&hp)?.build::<T>()?),
        "sgd-momentum" | "gd" => boxed(config::<SgdConfig>(&hp)?.build::<T>()?),
        "rmsprop" => boxed(config::<RmsPropConfig>(&hp)?.build::<T>()?),
        "adagrad" => boxed(config::<AdagradConfig>(&hp)?.build::<T>()?),
        "lbfgs" => boxed(config::<LbfgsConfig>(&hp)?.build::<T>()?),
        "inna" => boxed(config::<InnaConfig>(&hp)?.build::<T>()?),
        "step-tuned" => boxed(config::<StepTunedConfig>(&hp)?.build::<T>()?),
        "admm-taylor" => boxed(DistributedTaylorAdmm::<T>::new(config::<TaylorConfig>(
            &hp,
        )?)?),
        "dladmm" => boxed(DistributedDlAdmm::<T>::new(config::<DlAdmmConfig>(&hp)?)?),
        other => return Err(not_distributed(other)),
    };
    Ok(Built {
        solver,
        hyperparameters: hp,
    })
}

/// The distributed form of a beta-NMF solver (MM, heuristic, ME).
pub fn sharded_nmf_solver<T: RunnerReal>(
    entry: &SolverEntry,
    ctx: &SolverCtx,
) -> Result<Built<ShardedNmfProblem<T>>, SolverError> {
    let factory = T::nmf_factory(&entry.factory).ok_or_else(|| not_distributed(entry.name))?;
    if !DISTRIBUTED_SOLVERS.contains(&entry.name) {
        return Err(not_distributed(entry.name));
    }
    let hp = factory(ctx)?.hyperparameters;
    let solver: Box<dyn Solver<ShardedNmfProblem<T>>> =
        Box::new(DistributedBetaNmf::new(config::<BetaNmfConfig>(&hp)?)?);
    Ok(Built {
        solver,
        hyperparameters: hp,
    })
}

/// The communicator of a distributed comparison: MPI's world when the binary was built
/// with the `mpi` feature, otherwise an error saying how to enable it.
pub fn world() -> Result<Arc<dyn Comm>, String> {
    #[cfg(feature = "mpi")]
    {
        solvers::comm::MpiComm::init()
            .map(|c| Arc::new(c) as Arc<dyn Comm>)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "mpi"))]
    {
        Err(
            "--distributed needs a build with MPI: install OpenMPI and libclang \
             (apt-get install libopenmpi-dev openmpi-bin libclang-dev), build with \
             `cargo build --release -p bench-suite --features mpi`, and launch with \
             `mpirun -np N target/release/strata-compare --distributed ...`"
                .to_string(),
        )
    }
}

/// Runs the comparison of `args` on every rank of `comm` with the data sharded over the
/// ranks. Rank 0 writes the run directory and returns the outcome; the other ranks
/// return `None`. Every rank must call it with the same arguments.
pub fn run_distributed(
    args: &super::CompareArgs,
    problems: &[crate::problems::ProblemSpec],
    solvers: &[SolverEntry],
    comm: Arc<dyn Comm>,
) -> Result<Option<super::CompareOutcome>, crate::BenchError> {
    if args.tune {
        return Err(crate::BenchError::arg(
            "distributed",
            "--tune is not available with --distributed (tune on one process, then pass the \
             chosen values)",
        ));
    }
    let mut plan = super::plan(args, problems, solvers)?;
    let rank = comm.rank();
    plan.settings.comm = Some(comm);
    if rank == 0 {
        super::run_plan(args, &plan).map(Some)
    } else {
        super::execute_plan(&plan, false);
        Ok(None)
    }
}
