//! beta-NMF with the columns of `V` (and of `H`) sharded over the ranks of a [`Comm`].

use std::sync::Arc;

use autodiff::Real;
use majorize::MajorizeError;
use majorize::nmf::{self, NmfConfig};
use nalgebra::DMatrix;

use crate::comm::{Comm, allreduce_sum, shard_range};
use crate::nmf::{BetaNmfConfig, NmfProblem};
use crate::{Context, Evaluation, Problem, Solver, SolverError, StepReport};

/// The beta-NMF problem `V ~ W H` with the `N` columns of `V` split over the ranks:
/// rank `r` of `P` holds `V[:, shard_range(N, r, P)]` and the same columns of `H`; `W`
/// is replicated (bit-identical on every rank). The objective is the single-process
/// one: the divergence and the `H` penalties are summed over ranks, the `W` penalty is
/// counted once.
pub struct ShardedNmfProblem<T: Real> {
    pub(crate) local: NmfProblem<T>,
    comm: Arc<dyn Comm>,
    global_n: usize,
    scratch: Vec<f64>,
}

impl<T: Real> std::fmt::Debug for ShardedNmfProblem<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedNmfProblem")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("global_n", &self.global_n)
            .finish()
    }
}

impl<T: Real> ShardedNmfProblem<T> {
    /// Keeps this rank's columns of `v` and `h` (every rank passes the same full
    /// matrices). Errors in scikit-learn mode (its update is single-process only) and
    /// when there are fewer columns than ranks or the communicator's rank is outside
    /// `0..size` ([`crate::comm::check_group`]).
    pub fn new(
        v: DMatrix<T>,
        w: DMatrix<T>,
        h: DMatrix<T>,
        config: &BetaNmfConfig,
        comm: Arc<dyn Comm>,
    ) -> Result<Self, SolverError> {
        if config.sklearn_compatible {
            return Err(SolverError::Problem(
                "distributed beta-NMF: the scikit-learn-exact mode runs on one process only".into(),
            ));
        }
        crate::comm::check_group(comm.as_ref())?;
        let n = v.ncols();
        if n < comm.size() {
            return Err(SolverError::EmptyData(format!(
                "{n} columns of V cannot be sharded over {} ranks",
                comm.size()
            )));
        }
        // Validate the whole problem once (same checks, same messages as one process).
        NmfProblem::new(v.clone(), w.clone(), h.clone(), config)?;
        let r = shard_range(n, comm.rank(), comm.size());
        let v_local = v.columns(r.start, r.len()).into_owned();
        let h_local = h.columns(r.start, r.len()).into_owned();
        let local = NmfProblem::new(v_local, w, h_local, config)?;
        Ok(ShardedNmfProblem {
            local,
            comm,
            global_n: n,
            scratch: Vec::new(),
        })
    }

    /// The replicated `W`.
    pub fn w(&self) -> &DMatrix<T> {
        self.local.w()
    }

    /// This rank's columns of `H`.
    pub fn h_local(&self) -> &DMatrix<T> {
        self.local.h()
    }

    /// The communicator.
    pub fn comm(&self) -> &dyn Comm {
        &*self.comm
    }

    /// The objective: local divergence + local `H` penalty summed over ranks, plus the
    /// `W` penalty once.
    pub fn objective(&mut self) -> Result<f64, SolverError> {
        let p = self.local.penalties();
        let h_only = majorize::nmf::Penalties {
            l1_w: 0.0,
            l2_w: 0.0,
            ..p
        };
        let w_only = majorize::nmf::Penalties {
            l1_h: 0.0,
            l2_h: 0.0,
            ..p
        };
        let mut local = [self.local.divergence()? + h_only.value(self.local.w(), self.local.h())];
        allreduce_sum(&*self.comm, &mut local, &mut self.scratch)?;
        Ok(local[0] + w_only.value(self.local.w(), self.local.h()))
    }
}

impl<T: Real> Problem for ShardedNmfProblem<T> {
    fn evaluate(&mut self) -> Evaluation {
        Evaluation::objective(self.objective().unwrap_or(f64::NAN))
    }
    fn num_samples(&self) -> usize {
        self.global_n
    }
    /// `W` and this rank's `H` columns (a checkpoint is per rank).
    fn save_params(&self) -> serde_json::Value {
        self.local.save_params()
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.local.load_params(v)
    }
    fn params_finite(&self) -> bool {
        self.local.params_finite()
    }
    fn any_rank(&mut self, flag: bool) -> bool {
        crate::comm::any_rank(&*self.comm, flag).unwrap_or(true)
    }
}

/// The multiplicative beta-NMF updates (MM, heuristic or ME, as [`crate::nmf::BetaNmf`])
/// on a [`ShardedNmfProblem`]: the `W` update's column sums (numerator, denominator)
/// are computed on each rank's columns and added over ranks
/// ([`nmf::update_w_reduced`]); the `H` update is local (each column of `H` depends
/// only on its column of `V` and on `W`). One iteration communicates `2 F K` values
/// (`F K + K` for beta = 1, `F K + K^2` for beta = 2) and produces the iterate of the
/// single-process update up to the order of the column sums.
#[derive(Clone, Debug)]
pub struct DistributedBetaNmf {
    config: BetaNmfConfig,
}

impl DistributedBetaNmf {
    /// Validates the configuration (scikit-learn mode is rejected: single process only).
    pub fn new(config: BetaNmfConfig) -> Result<Self, SolverError> {
        config.validate()?;
        if config.sklearn_compatible {
            return Err(SolverError::Problem(
                "distributed beta-NMF: the scikit-learn-exact mode runs on one process only".into(),
            ));
        }
        if config.tol > 0.0 {
            return Err(SolverError::config(
                "DistributedBetaNmf",
                "tol",
                config.tol,
                "must be 0 (scikit-learn's stopping rule is not distributed)",
            ));
        }
        Ok(Self { config })
    }
}

impl<T: Real> Solver<ShardedNmfProblem<T>> for DistributedBetaNmf {
    fn name(&self) -> String {
        format!(
            "BetaNmf(beta={}, rule={:?})",
            self.config.beta, self.config.rule
        )
    }
    fn step(
        &mut self,
        problem: &mut ShardedNmfProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        let cfg: NmfConfig = self.config.nmf_config();
        let comm = Arc::clone(&problem.comm);
        let scratch = &mut problem.scratch;
        let (v, w, h, ws) = problem.local.parts();
        let mut failure: Option<SolverError> = None;
        let mut reduce = |buf: &mut [T]| -> Result<(), MajorizeError> {
            allreduce_sum(&*comm, buf, scratch).map_err(|e| {
                let detail = e.to_string();
                failure = Some(e);
                MajorizeError::Shape {
                    op: "distributed reduction",
                    detail,
                }
            })
        };
        let updated = nmf::update_w_reduced(v, w, h, &cfg, ws, &mut reduce);
        if let Some(e) = failure {
            return Err(e);
        }
        updated.map_err(crate::nmf::from_majorize)?;
        nmf::update_h(v, w, h, &cfg, ws).map_err(crate::nmf::from_majorize)?;
        // The same accounting as the single-process solver: four data passes over the N
        // columns of all ranks per iteration.
        let n = problem.global_n;
        ctx.counters.add_forward_n(2, n);
        ctx.counters.add_backward(n);
        ctx.counters.add_backward(n);
        Ok(StepReport::new())
    }
    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }
    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let c: BetaNmfConfig = serde_json::from_value(v.clone())?;
        if c != self.config {
            return Err(SolverError::Checkpoint(
                "DistributedBetaNmf: checkpoint was made with another configuration".into(),
            ));
        }
        Ok(())
    }
}
