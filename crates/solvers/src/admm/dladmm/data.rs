//! The parts of [`DlAdmm`] derived from the training set and the loss (the per-sample
//! loss, the sample weight, the data-derived caches), rebuilt by `prepare`, and the
//! checkpointed state. A data set change reaching `iterate`, `run_block` or the
//! augmented Lagrangian is handled by `sync_data`; `Solver::step` and the distributed
//! solver call `sync_problem` with the problem's own loss (docs/ARCHITECTURE.md).

use super::*;

impl<T: Real> DlAdmm<T> {
    /// Rebuilds the derived (not checkpointed) parts for `train` and `loss`: the
    /// per-sample loss, the sample weight, and drops the data-derived caches. Checks
    /// `train` against the lifted variables first ([`Lifted::check_data`]: input rows,
    /// samples, target width); on any error the solver is left unprepared (the next
    /// call prepares again).
    pub(crate) fn prepare(&mut self, loss: &Loss, train: &Dataset<T>) -> Result<(), SolverError> {
        self.input_key.clear();
        self.data_key.clear();
        self.stamp = DataStamp::default();
        self.ready = false;
        self.prod_valid.clear();
        self.w0_chain = None;
        loss.validate()
            .map_err(|e| SolverError::Problem(format!("DlAdmm: {e}")))?;
        self.vars
            .as_ref()
            .ok_or_else(not_init)?
            .check_data(train, loss)?;
        if loss.kind == LossKind::MulticlassHinge {
            return Err(SolverError::Problem(
                "DlAdmm needs a smooth output loss with a prox (MSE, softmax CE, logistic), \
                 not the multiclass hinge"
                    .into(),
            ));
        }
        self.sum_loss = Loss::new(loss.kind, Reduction::Sum);
        self.sample_weight = loss.sample_weight(self.global_n(train.len()));
        self.l2 = loss.l2;
        self.loss = Some(*loss);
        self.stamp.changed(train);
        self.ready = true;
        Ok(())
    }

    /// Makes the derived parts follow `train`, the one place a data set change is
    /// handled (`iterate`, `run_block` and `augmented_lagrangian` call it first, so
    /// `Solver::step` and the distributed solver inherit it): if it is another data set
    /// than the one `prepare` last ran on, or the solver is unprepared, reruns `prepare`
    /// with the loss it last ran with (a typed error if the data set does not fit the
    /// lifted variables). One comparison of data set ids otherwise.
    pub(super) fn sync_data(&mut self, train: &Dataset<T>) -> Result<(), SolverError> {
        let loss = self.loss.ok_or_else(not_init)?;
        self.sync_problem(&loss, train)
    }

    /// The `Solver::step` entry (single-process and distributed): the derived parts
    /// follow the problem's own `loss` and `train`. Reruns `prepare` with them when the
    /// solver is unprepared, or the data set or the loss is not the one `prepare` last
    /// ran with; one id and one loss comparison otherwise. (`sync_data`, for the direct
    /// callers of `iterate`, has only the data set and keeps the last loss.)
    pub(crate) fn sync_problem(
        &mut self,
        loss: &Loss,
        train: &Dataset<T>,
    ) -> Result<(), SolverError> {
        if self.stamp.is(train) && self.ready && self.loss == Some(*loss) {
            return Ok(());
        }
        self.prepare(loss, train)
    }

    /// Whether derived parts must be rebuilt (after a restore or a failed `prepare`).
    pub(crate) fn needs_prepare(&self) -> bool {
        !self.ready
    }

    pub(crate) fn saved(&self) -> DlSaved<T> {
        DlSaved {
            vars: self.vars.clone(),
            u: self.u.clone(),
            prev_m: self.prev_m.clone(),
            rho: self.rho,
            nu: self.nu,
            theta: self.theta,
            tau: self.tau,
            costs: self.costs.clone(),
            iterations: self.iterations,
        }
    }

    pub(crate) fn restore(&mut self, s: DlSaved<T>) {
        self.vars = s.vars;
        self.u = s.u;
        self.prev_m = s.prev_m;
        self.rho = s.rho;
        self.nu = s.nu;
        self.theta = s.theta;
        self.tau = s.tau;
        self.costs = s.costs;
        self.iterations = s.iterations;
        self.ready = false;
    }
}
