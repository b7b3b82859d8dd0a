//! The parts of [`TaylorAdmm`] derived from the training set and the loss (output term,
//! sample weight, the layer-1 caches), rebuilt by `prepare`, and the checkpointed state.
//!
//! A data set change reaching a public entry point that takes the data set
//! (`iterate`, `run_block`, `augmented_objective`) is handled by `sync_data`, with the
//! loss of the last `prepare`; `Solver::step` and the distributed solver call
//! `sync_problem` first, with the problem's own loss (docs/ARCHITECTURE.md).

use super::*;

impl<T: Real> TaylorAdmm<T> {
    /// Rebuilds the derived (not checkpointed) parts for `train` and `loss`: the output
    /// term (it keeps the dense targets), the scalings, and drops the data-derived
    /// caches. Checks `train` against the lifted variables first
    /// ([`Lifted::check_data`]: input rows, samples, target width); on any error the
    /// solver is left unprepared (the next call prepares again), never holding parts
    /// derived from another data set.
    pub(crate) fn prepare(&mut self, loss: &Loss, train: &Dataset<T>) -> Result<(), SolverError> {
        self.input_key.clear();
        self.stamp = DataStamp::default();
        self.output = None;
        loss.validate()
            .map_err(|e| SolverError::Problem(format!("TaylorAdmm: {e}")))?;
        let vars = self
            .vars
            .as_ref()
            .ok_or_else(|| SolverError::Problem("TaylorAdmm: not initialised".into()))?;
        vars.check_data(train, loss)?;
        let k = vars.z[vars.layers() - 1].nrows();
        self.output = Some(OutputTerm::new(
            self.config.output_loss,
            loss,
            train.targets(),
            k,
        )?);
        let n = self.dist.as_ref().map_or(train.len(), |d| d.1);
        self.sample_weight = loss.sample_weight(n);
        self.l2 = loss.l2;
        self.loss = Some(*loss);
        self.stamp.changed(train);
        Ok(())
    }

    /// Makes the derived parts follow `train` (module doc): if it is another data set
    /// than the one `prepare` last ran on, or the solver is unprepared, reruns
    /// `prepare` with the loss it last ran with (a typed error if the data set does not
    /// fit the lifted variables). One comparison of data set ids otherwise.
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
        if self.stamp.is(train) && !self.needs_prepare() && self.loss == Some(*loss) {
            return Ok(());
        }
        self.prepare(loss, train)
    }

    /// Whether derived parts must be rebuilt (after a restore or a failed `prepare`).
    pub(crate) fn needs_prepare(&self) -> bool {
        self.output.is_none()
    }

    pub(crate) fn saved(&self) -> TaylorSaved<T> {
        TaylorSaved {
            vars: self.vars.clone(),
            lambda: self.lambda.clone(),
            prev_m: self.prev_m.clone(),
            iterations: self.iterations,
        }
    }

    pub(crate) fn restore(&mut self, s: TaylorSaved<T>) {
        self.vars = s.vars;
        self.lambda = s.lambda;
        self.prev_m = s.prev_m;
        self.iterations = s.iterations;
        self.output = None;
    }
}
