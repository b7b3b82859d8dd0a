//! First-order methods: one [`FirstOrder`] solver driving an optax-style [`Update`]
//! rule over full batches or shuffled mini-batches, with a learning-rate [`Schedule`].

mod config;
mod rules;
mod schedule;
mod update;

pub use config::{AdagradConfig, AdamConfig, AdamWConfig, RmsPropConfig, SgdConfig};
pub use rules::{
    AdagradRule, AdagradState, AdamRule, AdamState, RmsPropRule, RmsPropState, SgdRule, SgdState,
};
pub use schedule::Schedule;
pub use update::{CoupledL2, CoupledState, Decoupled, Update};

use autodiff::Real;
use serde::{Deserialize, Serialize};

use crate::{BatchSampler, Batching, Context, Differentiable, Solver, SolverError, StepReport};

/// How much work one driver step of a mini-batch method does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum StepUnit {
    /// One epoch: every mini-batch of a fresh permutation (the default).
    #[default]
    Epoch,
    /// A fixed number of mini-batches (>= 1), continuing the current permutation across
    /// steps and reshuffling when it is exhausted; the permutation and position are
    /// checkpointed. The same sequence of updates as `Epoch` mode.
    Batches(usize),
}

/// A gradient method: an update rule `U`, a base learning rate with a schedule, and a
/// batching mode. One step is one epoch (one pass over shuffled mini-batches, the last
/// one possibly smaller; see [`FirstOrder::with_step_unit`] for finer steps) or, in
/// full-batch mode, one full-gradient update.
///
/// Every gradient costs one forward and one backward pass over its batch (counted: two
/// data passes per epoch). The step report's `mean_batch_loss` is the batch-size-weighted
/// mean of the batch losses of the step, `sum_b f_b |b| / sum_b |b|` (each `f_b` taken
/// before its batch's update): the running epoch loss a PyTorch loop prints.
/// Build it from a validated config (e.g. [`AdamConfig::build`]) or with
/// [`FirstOrder::new`] after validating the rule's hyperparameters yourself.
#[derive(Debug, Clone)]
pub struct FirstOrder<T: Real, U: Update<T>> {
    rule: U,
    lr: f64,
    schedule: Schedule,
    batching: Batching,
    name: String,
    state: Option<U::State>,
    updates: u64,
    sampler: BatchSampler,
    unit: StepUnit,
    next_batch: usize,
    fixed: Option<Vec<Vec<usize>>>,
    epochs_started: u64,
    params: Vec<T>,
    grad: Vec<T>,
}

/// What [`FirstOrder`] checkpoints.
#[derive(Serialize, Deserialize)]
struct Saved<S> {
    updates: u64,
    state: Option<S>,
    #[serde(default)]
    sampler: Option<(BatchSampler, usize)>,
    #[serde(default)]
    epochs_started: u64,
}

impl<T: Real, U: Update<T>> FirstOrder<T, U> {
    /// A solver from parts. `lr` must be finite and > 0, the schedule and batching
    /// valid: checked here.
    pub fn new(
        rule: U,
        lr: f64,
        schedule: Schedule,
        batching: Batching,
    ) -> Result<Self, SolverError> {
        let name = rule.name(lr);
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(SolverError::config(
                "FirstOrder",
                "lr",
                lr,
                "must be finite and > 0",
            ));
        }
        schedule.validate("FirstOrder")?;
        batching.validate("FirstOrder")?;
        let name = match batching {
            Batching::Full => format!("{name}[full]"),
            Batching::MiniBatch { size, .. } => format!("{name}[batch={size}]"),
        };
        Ok(FirstOrder {
            rule,
            lr,
            schedule,
            batching,
            name,
            state: None,
            updates: 0,
            sampler: BatchSampler::default(),
            unit: StepUnit::Epoch,
            next_batch: 0,
            fixed: None,
            epochs_started: 0,
            params: Vec::new(),
            grad: Vec::new(),
        })
    }

    /// Replaces the shuffling by a fixed sample order: epoch `e` (0-based) visits the
    /// samples in `orders[e % orders.len()]`, cut into consecutive batches of the
    /// mini-batch size, the last one smaller, as a PyTorch `DataLoader` does for the
    /// permutation its sampler drew. Each order must be a permutation of `0..N` (checked
    /// against the problem at `init`: [`SolverError::InvalidConfig`]); needs
    /// [`Batching::MiniBatch`] (its `shuffle` flag is then ignored). Use it to reproduce
    /// a known batch sequence.
    pub fn with_batch_order(mut self, orders: Vec<Vec<usize>>) -> Result<Self, SolverError> {
        if !matches!(self.batching, Batching::MiniBatch { .. }) {
            return Err(SolverError::config(
                "FirstOrder",
                "batch order",
                "full batch",
                "needs Batching::MiniBatch (the batch size cuts each order)",
            ));
        }
        if orders.is_empty() {
            return Err(SolverError::config(
                "FirstOrder",
                "batch order",
                "[]",
                "must hold at least one epoch's order",
            ));
        }
        self.name = format!("{}[fixed order]", self.name);
        self.fixed = Some(orders);
        Ok(self)
    }

    /// Checks every fixed order against `n` samples.
    fn check_orders(&self, n: usize) -> Result<(), SolverError> {
        let Some(orders) = &self.fixed else {
            return Ok(());
        };
        let mut seen = vec![false; n];
        for (e, order) in orders.iter().enumerate() {
            seen.iter_mut().for_each(|s| *s = false);
            let ok = order.len() == n
                && order
                    .iter()
                    .all(|&i| i < n && !std::mem::replace(&mut seen[i], true));
            if !ok {
                return Err(SolverError::config(
                    "FirstOrder",
                    "batch order",
                    format!("epoch {e} (length {})", order.len()),
                    "must be a permutation of 0..N",
                ));
            }
        }
        Ok(())
    }

    /// Starts an epoch: the next fixed order, or a (shuffled) permutation from `rng`.
    fn start_epoch(&mut self, shuffle: bool, rng: &mut rand_chacha::ChaCha8Rng) {
        match &self.fixed {
            Some(orders) => {
                let e = (self.epochs_started % orders.len() as u64) as usize;
                self.sampler.start_epoch_with(&orders[e]);
            }
            None => self.sampler.start_epoch(shuffle, rng),
        }
        self.epochs_started += 1;
    }

    /// Sets how many mini-batches one driver step processes (ignored in full-batch
    /// mode). Errors on `StepUnit::Batches(0)`.
    pub fn with_step_unit(mut self, unit: StepUnit) -> Result<Self, SolverError> {
        if unit == StepUnit::Batches(0) {
            return Err(SolverError::config(
                "FirstOrder",
                "batches per step",
                0,
                "must be >= 1",
            ));
        }
        if let StepUnit::Batches(k) = unit {
            self.name = format!("{}[{k} batches/step]", self.name);
        }
        self.unit = unit;
        Ok(self)
    }

    /// The update rule.
    pub fn rule(&self) -> &U {
        &self.rule
    }

    /// Parameter updates made so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// One update from the current gradient buffer.
    fn update(&mut self) -> Result<f64, SolverError> {
        let lr = self.lr * self.schedule.factor(self.updates);
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| SolverError::Checkpoint("solver state missing (init not run)".into()))?;
        self.rule
            .apply(state, T::of(lr), &mut self.params, &self.grad);
        self.updates += 1;
        Ok(lr)
    }
}

impl<T, U, P> Solver<P> for FirstOrder<T, U>
where
    T: Real,
    U: Update<T>,
    P: Differentiable<Scalar = T>,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    fn init(&mut self, problem: &mut P, _ctx: &mut Context) -> Result<(), SolverError> {
        let dim = problem.dim();
        if dim == 0 {
            return Err(SolverError::EmptyData("problem has no parameters".into()));
        }
        self.params = vec![T::zero(); dim];
        problem.params(&mut self.params);
        self.state = Some(self.rule.init(&self.params));
        self.updates = 0;
        self.epochs_started = 0;
        self.check_orders(problem.num_samples())
    }

    fn step(&mut self, problem: &mut P, ctx: &mut Context) -> Result<StepReport, SolverError> {
        let dim = problem.dim();
        let n = problem.num_samples();
        if self.params.len() != dim {
            self.params = vec![T::zero(); dim];
        }
        if self.grad.len() != dim {
            self.grad = vec![T::zero(); dim];
        }
        problem.params(&mut self.params);
        // Batch-size-weighted running loss: sum_b f_b |b| / sum_b |b| (f_b the mean loss
        // of batch b before its update), what a PyTorch loop accumulates as
        // `running_loss += loss.item() * inputs.size(0)` over the samples seen.
        let (mut loss_sum, mut seen, mut lr) = (0.0, 0usize, 0.0);
        match self.batching {
            Batching::Full => {
                let f = problem.value_grad(None, &mut self.grad)?;
                ctx.counters.add_value_grad(n);
                loss_sum += f.to_f64() * n as f64;
                seen = n;
                lr = self.update()?;
                problem.set_params(&self.params)?;
            }
            Batching::MiniBatch { size, shuffle } => {
                if self.sampler.len() != n || self.sampler.batch_size() != size.clamp(1, n) {
                    self.sampler = BatchSampler::new(n, size);
                    self.next_batch = 0;
                }
                let count = match self.unit {
                    StepUnit::Epoch => {
                        self.next_batch = 0;
                        self.sampler.batches_per_epoch()
                    }
                    StepUnit::Batches(k) => k,
                };
                for _ in 0..count {
                    if self.next_batch == 0 || self.next_batch >= self.sampler.batches_per_epoch() {
                        self.start_epoch(shuffle, ctx.rng);
                        self.next_batch = 0;
                    }
                    let batch = self.sampler.batch(self.next_batch);
                    self.next_batch += 1;
                    let f = problem.value_grad(Some(batch), &mut self.grad)?;
                    ctx.counters.add_value_grad(batch.len());
                    loss_sum += f.to_f64() * batch.len() as f64;
                    seen += batch.len();
                    lr = self.update()?;
                    problem.set_params(&self.params)?;
                }
                if self.unit == StepUnit::Epoch {
                    self.next_batch = 0;
                }
            }
        }
        Ok(StepReport::new()
            .with("lr", lr)
            .with("mean_batch_loss", loss_sum / seen.max(1) as f64))
    }

    fn save_state(&self) -> serde_json::Value {
        let sampler = match self.unit {
            StepUnit::Batches(_) => Some((self.sampler.clone(), self.next_batch)),
            StepUnit::Epoch => None,
        };
        let saved = Saved {
            updates: self.updates,
            state: self.state.clone(),
            sampler,
            epochs_started: self.epochs_started,
        };
        serde_json::to_value(saved).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let saved: Saved<U::State> = serde_json::from_value(v.clone())?;
        crate::state_check::check_count(&self.name, "updates", saved.updates)?;
        crate::state_check::check_count(&self.name, "epochs_started", saved.epochs_started)?;
        if saved.state.is_none() {
            return Err(SolverError::Checkpoint(format!(
                "{}: checkpoint has no rule state",
                self.name
            )));
        }
        self.updates = saved.updates;
        self.state = saved.state;
        self.epochs_started = saved.epochs_started;
        if let Some((sampler, next)) = saved.sampler {
            self.sampler = sampler;
            self.next_batch = next;
        }
        Ok(())
    }

    fn check_state(&self, problem: &P) -> Result<(), SolverError> {
        if let Some(state) = &self.state {
            self.rule.check_state(state, problem.dim())?;
        }
        if let StepUnit::Batches(_) = self.unit
            && let Batching::MiniBatch { size, .. } = self.batching
        {
            self.sampler
                .check(problem.num_samples(), size, self.next_batch)?;
        }
        Ok(())
    }
}
