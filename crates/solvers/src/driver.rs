//! The [`Driver`]: owns the loop, the budget, evaluation, observers, divergence
//! detection and checkpoints (argmin's `Executor`).

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CHECKPOINT_VERSION, CheckpointStore, CheckpointV1};
use crate::eval_cadence::EvalCadence;
use crate::observer::{Control, Frequency, Observer};
use crate::{
    BudgetKind, Context, Counters, Evaluation, Problem, Record, Solver, SolverError, Status,
    StepReport, Trace,
};

mod budget;

pub use budget::{Budget, DEFAULT_BLOWUP_FACTOR, DivergenceRule};

/// The result of a run: how it ended, and its full trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// How the run ended.
    pub status: Status,
    /// One record per evaluated iteration (every iteration under the default
    /// [`EvalCadence::EveryStep`]), starting at iteration 0.
    pub trace: Trace,
    /// Counters at the end.
    pub counters: Counters,
}

type ObserverSlot<'a> = (Box<dyn Observer + 'a>, Frequency);

/// Runs a [`Solver`] on a [`Problem`]: evaluates the initial point and the iterates at
/// the [`EvalCadence`] (every step by default; evaluation is never charged to the
/// solver's time or passes), enforces the [`Budget`], applies the [`DivergenceRule`],
/// notifies observers, and saves / restores checkpoints.
///
/// Configured with a consuming builder:
/// `Driver::new(Budget::epochs(30.0)).seed(7).observe(obs, Frequency::Every(5))`.
pub struct Driver<'a> {
    budget: Budget,
    seed: u64,
    threads: usize,
    divergence: DivergenceRule,
    cadence: EvalCadence,
    observers: Vec<ObserverSlot<'a>>,
    checkpoint: Option<(Box<dyn CheckpointStore + 'a>, u64)>,
    resume: bool,
}

impl<'a> Driver<'a> {
    /// A driver with this budget, seed 0, one thread, the default divergence rule.
    pub fn new(budget: Budget) -> Self {
        Driver {
            budget,
            seed: 0,
            threads: 1,
            divergence: DivergenceRule::default(),
            cadence: EvalCadence::EveryStep,
            observers: Vec::new(),
            checkpoint: None,
            resume: false,
        }
    }

    /// Seed of the run's RNG (`ChaCha8Rng::seed_from_u64`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Threads the solver may use (default 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Replaces the divergence rule.
    pub fn divergence(mut self, rule: DivergenceRule) -> Self {
        self.divergence = rule;
        self
    }

    /// When to evaluate the true objective and push a record (default: after every
    /// step). See [`EvalCadence`] for the points that are always evaluated.
    pub fn evaluate_every(mut self, cadence: EvalCadence) -> Self {
        self.cadence = cadence;
        self
    }

    /// Attaches an observer notified at the given frequency.
    pub fn observe(mut self, observer: impl Observer + 'a, frequency: Frequency) -> Self {
        self.observers.push((Box::new(observer), frequency));
        self
    }

    /// Saves a checkpoint to `store` every `every` iterations (and at the end of a run
    /// that ran out of budget or converged). `every = 0` saves only at the end. A fresh
    /// run (without [`Driver::resume`]) refuses a store that would replace earlier data
    /// ([`CheckpointStore::check_fresh`]: a [`crate::FileStore`] whose path exists).
    pub fn checkpointing(mut self, store: impl CheckpointStore + 'a, every: u64) -> Self {
        self.checkpoint = Some((Box::new(store), every));
        self
    }

    /// If the checkpoint store holds a checkpoint, continue from it instead of starting
    /// afresh (`Solver::init` is then not called).
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Runs `solver` on `problem` until a budget, the solver's stopping test, an
    /// observer, divergence or an error ends the run.
    ///
    /// Errors (`Err`) only for a bad setup: invalid budget, unreadable or mismatched
    /// checkpoint. Failures during the run give `Ok` with [`Status::Failed`] and the
    /// trace so far.
    pub fn run<P: Problem, S: Solver<P>>(
        &mut self,
        problem: &mut P,
        solver: &mut S,
    ) -> Result<RunOutcome, SolverError> {
        self.budget.validate()?;
        self.cadence.validate()?;
        let n = problem.num_samples();
        if n == 0 {
            return Err(SolverError::EmptyData(
                "problem has no training samples".into(),
            ));
        }
        let name = solver.name();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut counters = Counters::default();
        let mut trace = Trace {
            solver: name.clone(),
            records: Vec::new(),
        };
        let mut iteration = 0u64;
        let mut solver_time = 0.0f64;
        let mut initial = f64::NAN;

        let restored = match (&self.checkpoint, self.resume) {
            (Some((store, _)), true) => store.load()?,
            (Some((store, _)), false) => {
                // Nothing a user produced earlier is replaced by a fresh run's saves.
                store.check_fresh()?;
                None
            }
            _ => None,
        };
        let status = if let Some(cp) = restored {
            if cp.version != CHECKPOINT_VERSION {
                return Err(SolverError::Checkpoint(format!(
                    "unsupported checkpoint version {}",
                    cp.version
                )));
            }
            if cp.solver != name {
                return Err(SolverError::Checkpoint(format!(
                    "checkpoint is for solver {:?}, not {:?}",
                    cp.solver, name
                )));
            }
            crate::state_check::check_checkpoint(&cp, n)?;
            problem.load_params(&cp.problem_params)?;
            solver.load_state(&cp.solver_state)?;
            solver.check_state(problem)?;
            rng = cp.rng;
            counters = cp.counters;
            trace = cp.trace;
            iteration = cp.iteration;
            solver_time = cp.wall_time_s;
            initial = cp.initial_objective;
            None
        } else {
            let t = Instant::now();
            let mut ctx = Context {
                rng: &mut rng,
                counters: &mut counters,
                iteration: 0,
                threads: self.threads,
            };
            let init = solver.init(problem, &mut ctx);
            solver_time += t.elapsed().as_secs_f64();
            match init {
                Err(SolverError::NotApplicable(reason)) => Some(Status::NotApplicable { reason }),
                Err(e) => Some(Status::Failed {
                    error: e.to_string(),
                }),
                Ok(()) => {
                    let eval = problem.evaluate();
                    initial = eval.objective;
                    let rec = make_record(0, n, solver_time, &counters, &eval, StepReport::new());
                    trace.records.push(rec);
                    self.after_record(problem, &trace, initial, None)
                }
            }
        };

        // The report of the last step when it was not evaluated (sparse cadence): it
        // goes into the final record if the run ends before the next evaluation.
        let mut pending: Option<StepReport> = None;
        let status = match status {
            Some(s) => s,
            None => loop {
                if let Some(kind) = self.exhausted(problem, iteration, &counters, n, solver_time) {
                    // The weights handed back are always evaluated.
                    let recorded = pending.take().and_then(|report| {
                        self.record(
                            problem,
                            &mut trace,
                            (iteration, n, solver_time),
                            &counters,
                            report,
                            initial,
                        )
                    });
                    break self.save_if_done(
                        recorded.unwrap_or(Status::BudgetExhausted(kind)),
                        problem,
                        solver,
                        &rng,
                        &counters,
                        &trace,
                        iteration,
                        initial,
                        solver_time,
                    );
                }
                iteration += 1;
                let before = counters.samples_seen;
                let t = Instant::now();
                let mut ctx = Context {
                    rng: &mut rng,
                    counters: &mut counters,
                    iteration,
                    threads: self.threads,
                };
                let step = solver.step(problem, &mut ctx);
                solver_time += t.elapsed().as_secs_f64();
                let report = match step {
                    Ok(r) => r,
                    Err(SolverError::NotApplicable(reason)) => {
                        break Status::NotApplicable { reason };
                    }
                    Err(e) => {
                        break Status::Failed {
                            error: e.to_string(),
                        };
                    }
                };
                let checkpoint_due = matches!(&self.checkpoint,
                    Some((_, every)) if *every > 0 && iteration.is_multiple_of(*every));
                if report.converged.is_none()
                    && !checkpoint_due
                    && !self.cadence.due(before, counters.samples_seen, n)
                {
                    pending = Some(report);
                    continue;
                }
                pending = None;
                let recorded = self.record(
                    problem,
                    &mut trace,
                    (iteration, n, solver_time),
                    &counters,
                    report,
                    initial,
                );
                if let Some(s) = recorded {
                    break self.save_if_done(
                        s,
                        problem,
                        solver,
                        &rng,
                        &counters,
                        &trace,
                        iteration,
                        initial,
                        solver_time,
                    );
                }
                if checkpoint_due
                    && let Err(e) = self.save(
                        problem,
                        solver,
                        &rng,
                        &counters,
                        &trace,
                        iteration,
                        initial,
                        solver_time,
                    )
                {
                    break Status::Failed {
                        error: e.to_string(),
                    };
                }
            },
        };
        let outcome = RunOutcome {
            status,
            trace,
            counters,
        };
        for (obs, _) in &mut self.observers {
            obs.on_finish(&outcome);
        }
        Ok(outcome)
    }

    /// Observers, divergence, solver convergence and target, in that order, for the
    /// record just pushed.
    /// Evaluates the true objective of the current weights, appends the record of the
    /// step at `(iteration, n, solver_time)` with `report`, and applies the per-record
    /// checks of [`Driver::after_record`] (the one place a step becomes a record).
    fn record<P: Problem>(
        &mut self,
        problem: &mut P,
        trace: &mut Trace,
        (iteration, n, solver_time): (u64, usize, f64),
        counters: &Counters,
        report: StepReport,
        initial: f64,
    ) -> Option<Status> {
        let converged = report.converged.clone();
        let eval = problem.evaluate();
        let rec = make_record(iteration, n, solver_time, counters, &eval, report);
        trace.records.push(rec);
        self.after_record(problem, trace, initial, converged.as_deref())
    }

    fn after_record<P: Problem>(
        &mut self,
        problem: &P,
        trace: &Trace,
        initial: f64,
        converged: Option<&str>,
    ) -> Option<Status> {
        let rec = trace.records.last()?;
        let mut stop = None;
        for (obs, freq) in &mut self.observers {
            if freq.fires(rec.iteration)
                && let Control::Stop(reason) = obs.on_record(&trace.solver, rec)
                && stop.is_none()
            {
                stop = Some(Status::Stopped { reason });
            }
        }
        let finite = !self.divergence.check_params || problem.params_finite();
        if let Some(reason) = self.divergence.check(rec.objective, initial, finite) {
            // At iteration 0 nothing has diverged yet: say that the starting point
            // itself is not finite (data or initial weights), not that a step blew up.
            let reason = if rec.iteration == 0 {
                format!("{reason} at the initial point (iteration 0, before any step)")
            } else {
                reason
            };
            return Some(Status::Diverged { reason });
        }
        if stop.is_some() {
            return stop;
        }
        if let Some(reason) = converged {
            return Some(Status::Converged {
                reason: reason.to_string(),
            });
        }
        match self.budget.target_objective {
            Some(t) if rec.objective <= t => {
                Some(Status::BudgetExhausted(BudgetKind::TargetObjective))
            }
            _ => None,
        }
    }

    fn exhausted<P: Problem>(
        &self,
        problem: &mut P,
        iteration: u64,
        c: &Counters,
        n: usize,
        time: f64,
    ) -> Option<BudgetKind> {
        let b = &self.budget;
        // Collective when a time limit is set (every rank has the same budget, so every
        // rank makes this call): all ranks of a distributed run stop together.
        let time_up = b.max_time.is_some_and(|t| time >= t.as_secs_f64());
        let time_up = b.max_time.is_some() && problem.any_rank(time_up);
        if b.max_iterations.is_some_and(|m| iteration >= m) {
            return Some(BudgetKind::Iterations);
        }
        if b.max_epochs
            .is_some_and(|e| c.samples_seen as f64 >= e * n as f64)
        {
            return Some(BudgetKind::Epochs);
        }
        if time_up {
            return Some(BudgetKind::WallTime);
        }
        None
    }

    /// `status`, after saving a final checkpoint when the run converged or ran out of
    /// budget (a failed save turns it into [`Status::Failed`]).
    #[allow(clippy::too_many_arguments)]
    fn save_if_done<P: Problem, S: Solver<P>>(
        &mut self,
        status: Status,
        problem: &P,
        solver: &S,
        rng: &ChaCha8Rng,
        counters: &Counters,
        trace: &Trace,
        iteration: u64,
        initial: f64,
        wall: f64,
    ) -> Status {
        if !matches!(
            status,
            Status::Converged { .. } | Status::BudgetExhausted(_)
        ) {
            return status;
        }
        match self.save(
            problem, solver, rng, counters, trace, iteration, initial, wall,
        ) {
            Ok(()) => status,
            Err(e) => Status::Failed {
                error: e.to_string(),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn save<P: Problem, S: Solver<P>>(
        &mut self,
        problem: &P,
        solver: &S,
        rng: &ChaCha8Rng,
        counters: &Counters,
        trace: &Trace,
        iteration: u64,
        initial: f64,
        wall: f64,
    ) -> Result<(), SolverError> {
        let Some((store, _)) = &mut self.checkpoint else {
            return Ok(());
        };
        let cp = CheckpointV1 {
            version: CHECKPOINT_VERSION,
            solver: trace.solver.clone(),
            iteration,
            counters: *counters,
            trace: trace.clone(),
            rng: rng.clone(),
            solver_state: solver.save_state(),
            problem_params: problem.save_params(),
            initial_objective: initial,
            wall_time_s: wall,
        };
        store.save(&cp)
    }
}

fn make_record(
    iteration: u64,
    n: usize,
    wall: f64,
    c: &Counters,
    e: &Evaluation,
    report: StepReport,
) -> Record {
    Record {
        iteration,
        epochs: c.samples_seen as f64 / n as f64,
        samples_seen: c.samples_seen,
        wall_time_s: wall,
        objective: e.objective,
        surrogate: report.surrogate,
        train_accuracy: e.train_accuracy,
        test_objective: e.test_objective,
        test_accuracy: e.test_accuracy,
        forward: c.forward,
        backward: c.backward,
        inner_solves: c.inner_solves,
        extras: report.extras,
    }
}
