//! A network problem whose training samples are sharded over the ranks of a [`Comm`].

use std::sync::Arc;

use autodiff::{Real, Reduction};
use nets::{Dataset, Loss, Sequential};

use crate::comm::{Comm, allreduce_sum, shard_range};
use crate::{Differentiable, Evaluation, NetProblem, Problem, SolverError};

/// The training problem of [`NetProblem`] with its training samples split over the ranks
/// of a communicator: rank `r` of `P` holds the contiguous shard
/// [`shard_range`]`(N, r, P)` of the columns; every rank holds the whole network (the
/// parameters are replicated and stay bit-identical on every rank) and the whole test set.
///
/// The objective is the same function as on one process,
/// `F(x) = (1/N or 1) sum_j l(f(x_j), y_j) + (l2/2) sum ||W||^2`: each rank computes the
/// **sum** of its samples' losses and gradients, the sums are added over ranks
/// ([`allreduce_sum`], deterministic), then the mean's `1/N` (or `1/|batch|`) and the
/// penalty are applied once, identically on every rank. A mini-batch is given as GLOBAL
/// sample indices (every rank draws the same batch from the same seeded order); each
/// rank computes the part of the batch it holds. The driver's evaluation (objective,
/// training accuracy) sums over ranks too, so the trace means what it means on one
/// process; test metrics are computed on the whole test set by every rank.
///
/// Only solvers written for it run on it (the gradient methods, which need only
/// [`Differentiable`], and the distributed layer-wise solvers of this module): the
/// layer-wise solvers of the other modules take a [`NetProblem`] and read its whole
/// training set, so the type system keeps them from silently training on one shard.
pub struct ShardedNetProblem<T: Real> {
    /// The local shard: the network, the loss with `Sum` reduction and no penalty, the
    /// local training columns, no test set.
    pub(crate) local: NetProblem<T>,
    /// The true loss (reduction and L2 penalty of the objective).
    pub(crate) loss: Loss,
    test: Option<Dataset<T>>,
    comm: Arc<dyn Comm>,
    offset: usize,
    global_n: usize,
    penalised: Vec<(usize, usize)>,
    pack: Vec<T>,
    scratch: Vec<f64>,
    local_batch: Vec<usize>,
}

impl<T: Real> std::fmt::Debug for ShardedNetProblem<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedNetProblem")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("offset", &self.offset)
            .field("local_samples", &self.local.train.len())
            .field("global_samples", &self.global_n)
            .finish()
    }
}

impl<T: Real> ShardedNetProblem<T> {
    /// Keeps this rank's shard of `full`'s training set (every rank must build `full`
    /// identically: same data, same initial network). Errors if there are fewer samples
    /// than ranks (a rank would hold nothing) or the communicator's rank is outside
    /// `0..size` ([`crate::comm::check_group`]).
    pub fn new(full: NetProblem<T>, comm: Arc<dyn Comm>) -> Result<Self, SolverError> {
        let NetProblem {
            net,
            loss,
            train,
            test,
            ..
        } = full;
        crate::comm::check_group(comm.as_ref())?;
        let n = train.len();
        let (rank, size) = (comm.rank(), comm.size());
        if n < size {
            return Err(SolverError::EmptyData(format!(
                "{n} training samples cannot be sharded over {size} ranks"
            )));
        }
        let range = shard_range(n, rank, size);
        let idx: Vec<usize> = range.clone().collect();
        let shard = train
            .subset(&idx)
            .map_err(|e| SolverError::Problem(e.to_string()))?;
        let local_loss = Loss {
            kind: loss.kind,
            reduction: Reduction::Sum,
            l2: 0.0,
        };
        let penalised = net
            .param_layout()
            .iter()
            .filter(|p| p.penalised)
            .map(|p| (p.offset, p.rows * p.cols))
            .collect();
        let local = NetProblem::new(net, local_loss, shard, None)?;
        Ok(ShardedNetProblem {
            local,
            loss,
            test,
            comm,
            offset: range.start,
            global_n: n,
            penalised,
            pack: Vec::new(),
            scratch: Vec::new(),
            local_batch: Vec::new(),
        })
    }

    /// The network (bit-identical on every rank).
    pub fn net(&self) -> &Sequential<T> {
        &self.local.net
    }

    /// The communicator.
    pub fn comm(&self) -> &dyn Comm {
        &*self.comm
    }

    pub(crate) fn comm_arc(&self) -> Arc<dyn Comm> {
        Arc::clone(&self.comm)
    }

    /// The number of training samples over all ranks.
    pub fn num_samples_global(&self) -> usize {
        self.global_n
    }

    /// The true loss of the objective.
    pub fn loss(&self) -> &Loss {
        &self.loss
    }

    /// This rank's samples, as global indices `offset..offset + local_len`.
    pub fn shard(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.local.train.len()
    }

    /// The local training shard.
    pub fn local_train(&self) -> &Dataset<T> {
        &self.local.train
    }

    /// The true training objective `F` over all samples (the local loss sums added over
    /// ranks, then the mean's `1/N` and the penalty): a collective call, bit-identical
    /// on every rank; what [`Problem::evaluate`] reports, without the test metrics.
    pub fn objective_global(&mut self) -> Result<f64, SolverError> {
        let out = self
            .local
            .net
            .predict(self.local.train.inputs())
            .map_err(|e| SolverError::Problem(e.to_string()));
        let mut sum = [match &out {
            Ok(o) => self
                .local
                .loss
                .value(o, self.local.train.targets())
                .map_or(f64::NAN, |v| v.to_f64()),
            Err(_) => f64::NAN,
        }];
        allreduce_sum(&*self.comm, &mut sum, &mut self.scratch)?;
        out?;
        Ok(sum[0] * self.scale(self.global_n) + self.local.net.weight_penalty(self.loss.l2))
    }

    /// `1/count` for a mean loss, 1 for a sum.
    fn scale(&self, count: usize) -> f64 {
        match self.loss.reduction {
            Reduction::Mean => 1.0 / count as f64,
            Reduction::Sum => 1.0,
        }
    }

    /// Adds the penalty's value and gradient `l2 W` (once, on every rank).
    fn add_penalty(&self, grad: &mut [T]) -> f64 {
        if self.loss.l2 == 0.0 {
            return 0.0;
        }
        let l2 = T::of(self.loss.l2);
        let flat = &self.pack[..grad.len()];
        let mut s = 0.0f64;
        for &(o, n) in &self.penalised {
            for (g, &w) in grad[o..o + n].iter_mut().zip(&flat[o..o + n]) {
                *g += l2 * w;
                s += w.to_f64() * w.to_f64();
            }
        }
        0.5 * self.loss.l2 * s
    }
}

impl<T: Real> Problem for ShardedNetProblem<T> {
    fn evaluate(&mut self) -> Evaluation {
        let net = &self.local.net;
        let local_n = self.local.train.len();
        let mut sums = [0.0f64, 0.0];
        match net.predict(self.local.train.inputs()) {
            Ok(out) => {
                sums[0] = self
                    .local
                    .loss
                    .value(&out, self.local.train.targets())
                    .map_or(f64::NAN, |v| v.to_f64());
                sums[1] = nets::accuracy(&out, self.local.train.targets())
                    .map_or(f64::NAN, |a| (a * local_n as f64).round());
            }
            Err(_) => sums = [f64::NAN, f64::NAN],
        }
        if allreduce_sum(&*self.comm, &mut sums, &mut self.scratch).is_err() {
            return Evaluation::objective(f64::NAN);
        }
        let objective = sums[0] * self.scale(self.global_n) + net.weight_penalty(self.loss.l2);
        let train_accuracy = sums[1].is_finite().then(|| sums[1] / self.global_n as f64);
        let (test_objective, test_accuracy) = match &self.test {
            Some(t) => match net.predict(t.inputs()) {
                Ok(out) => (
                    Some(
                        self.loss
                            .value(&out, t.targets())
                            .map_or(f64::NAN, |v| v.to_f64()),
                    ),
                    nets::accuracy(&out, t.targets()),
                ),
                Err(_) => (Some(f64::NAN), None),
            },
            None => (None, None),
        };
        Evaluation {
            objective,
            train_accuracy,
            test_objective,
            test_accuracy,
        }
    }

    fn num_samples(&self) -> usize {
        self.global_n
    }

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

impl<T: Real> Differentiable for ShardedNetProblem<T> {
    type Scalar = T;

    fn dim(&self) -> usize {
        self.local.dim()
    }

    fn params(&self, out: &mut [T]) {
        self.local.params(out)
    }

    fn set_params(&mut self, p: &[T]) -> Result<(), SolverError> {
        self.local.set_params(p)
    }

    /// Sum over the local part of the batch, added over ranks, then scaled and
    /// penalised (type doc). `batch` holds global indices.
    fn value_grad(&mut self, batch: Option<&[usize]>, grad: &mut [T]) -> Result<T, SolverError> {
        let d = self.local.dim();
        if grad.len() != d {
            return Err(SolverError::shape(
                "ShardedNetProblem gradient buffer",
                d,
                grad.len(),
            ));
        }
        let count = match batch {
            None => self.global_n,
            Some(b) => {
                if let Some(&i) = b.iter().find(|&&i| i >= self.global_n) {
                    return Err(SolverError::shape(
                        "mini-batch index bound",
                        format!("< {}", self.global_n),
                        i,
                    ));
                }
                let shard = self.shard();
                self.local_batch.clear();
                self.local_batch.extend(
                    b.iter()
                        .filter(|i| shard.contains(i))
                        .map(|&i| i - self.offset),
                );
                b.len()
            }
        };
        if count == 0 {
            return Err(SolverError::EmptyData("empty mini-batch".into()));
        }
        // pack = [local gradient sum..., local loss sum]
        self.pack.resize(d + 1, T::zero());
        let f_local = match batch {
            None => self.local.value_grad(None, &mut self.pack[..d])?,
            Some(_) if self.local_batch.is_empty() => {
                self.pack[..d].iter_mut().for_each(|g| *g = T::zero());
                T::zero()
            }
            Some(_) => {
                let lb = std::mem::take(&mut self.local_batch);
                let r = self.local.value_grad(Some(&lb), &mut self.pack[..d]);
                self.local_batch = lb;
                r?
            }
        };
        self.pack[d] = f_local;
        allreduce_sum(&*self.comm, &mut self.pack, &mut self.scratch)?;
        let s = T::of(self.scale(count));
        for (g, &p) in grad.iter_mut().zip(&self.pack[..d]) {
            *g = p * s;
        }
        let value = self.pack[d].to_f64() * self.scale(count);
        // The penalty reads the parameters: reuse `pack` for them.
        self.local.params(&mut self.pack[..d]);
        let penalty = self.add_penalty(grad);
        Ok(T::of(value + penalty))
    }
}
