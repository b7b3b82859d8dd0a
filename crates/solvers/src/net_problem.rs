//! The training problem of a network: [`NetProblem`].

use autodiff::{Real, Tape};
use nalgebra::DMatrix;
use nets::{Dataset, Loss, Sequential, Targets};

use crate::{Differentiable, Evaluation, Problem, SolverError};

impl From<autodiff::AutodiffError> for SolverError {
    fn from(e: autodiff::AutodiffError) -> Self {
        SolverError::Problem(e.to_string())
    }
}

impl From<nets::NetsError> for SolverError {
    fn from(e: nets::NetsError) -> Self {
        SolverError::Problem(e.to_string())
    }
}

/// A mini-batch's targets, kept for reuse (one per batch size seen). Its inputs are
/// gathered straight onto the tape ([`nets::loss_and_grad_columns`]).
#[derive(Debug)]
struct BatchBuf<T: Real> {
    targets: Targets<T>,
}

/// The training problem of a network: minimise
/// `loss(net(X), Y) + (l2/2) sum_l ||W_l||_F^2` over the training set.
///
/// Implements [`Problem`] (the driver's evaluation: true objective on the whole training
/// set without a tape, training accuracy, test data term and accuracy) and
/// [`Differentiable`] (through [`nets::loss_and_grad`] with a reusable tape; mini-batch
/// columns are copied once, straight into the tape's pooled input buffer, and their
/// targets into reused buffers, one per batch size, so steady-state gradients allocate
/// nothing). Parameters are flat in the order of
/// [`Sequential::params_to_flat`].
///
/// Structured solvers implement `Solver<NetProblem<T>>` and use the public fields
/// directly (the network's layers via `net.mlp_view()` / `net.dense(l)`, the loss and
/// its curvature bound, the whole training set).
///
/// With `Reduction::Mean` the mini-batch objective is the batch mean plus the full
/// penalty (an unbiased estimate of the objective); with `Reduction::Sum` it is the
/// batch sum plus the penalty (not rescaled).
pub struct NetProblem<T: Real> {
    /// The network being trained (its parameters are the problem's parameters).
    pub net: Sequential<T>,
    /// The loss and its L2 weight penalty.
    pub loss: Loss,
    /// Training set.
    pub train: Dataset<T>,
    /// Optional test set (evaluated by the driver, never used for training).
    pub test: Option<Dataset<T>>,
    tape: Tape<T>,
    batches: Vec<BatchBuf<T>>,
    /// The tape variables of the layers' outputs of the last full-batch gradient pass
    /// (empty after a mini-batch pass): see [`NetProblem::full_batch_layer_output`].
    outputs: Vec<autodiff::Var>,
}

impl<T: Real> std::fmt::Debug for NetProblem<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetProblem")
            .field("net", &self.net)
            .field("loss", &self.loss)
            .field("train_samples", &self.train.len())
            .field("test_samples", &self.test.as_ref().map(|t| t.len()))
            .finish()
    }
}

/// Most bytes the layer outputs of one forward pass over the training or the test set
/// may take in a [`NetProblem`] (`sum_l d_l` entries per sample, times the samples,
/// times the float's size): 16 GiB. The tape keeps about twice that (values and
/// gradients). A width or data set beyond it is a typed error before anything of that
/// size is allocated: Python's `MLPClassifier(hidden_layer_sizes=(10**6,))` on 2000
/// samples aborted the interpreter on a failed 16 GB allocation. The largest papers
/// setup (784-4000-1000-4000-10 on 60,000 images) needs 8.6 GB in f64.
pub const MAX_ACTIVATION_BYTES: usize = 16 << 30;

/// The layer outputs of `net` on `data` within [`MAX_ACTIVATION_BYTES`].
fn check_activation_bytes<T: Real>(
    net: &Sequential<T>,
    data: &Dataset<T>,
    which: &str,
) -> Result<(), SolverError> {
    let n = data.len();
    let per_sample = net.output_entries_per_sample(data.input_dim());
    let bytes = per_sample
        .and_then(|e| e.checked_mul(n))
        .and_then(|e| e.checked_mul(std::mem::size_of::<T>()));
    if bytes.is_none_or(|b| b > MAX_ACTIVATION_BYTES) {
        let per = per_sample.map_or("more than usize::MAX".to_string(), |e| e.to_string());
        return Err(SolverError::Problem(format!(
            "the layer outputs on the {which} set need {per} entries per sample x {n} samples x {} bytes, more than MAX_ACTIVATION_BYTES = {MAX_ACTIVATION_BYTES} (a width too large?)",
            std::mem::size_of::<T>()
        )));
    }
    Ok(())
}

fn check_dims<T: Real>(
    net: &Sequential<T>,
    data: &Dataset<T>,
    which: &str,
) -> Result<(), SolverError> {
    if let Some(d) = net.input_dim()
        && d != data.input_dim()
    {
        return Err(SolverError::shape(
            format!("{which} inputs vs network input"),
            d,
            data.input_dim(),
        ));
    }
    if let Some(k) = net.output_dim() {
        let t = match data.targets() {
            Targets::Labels { classes, .. } => {
                // Binary logistic with one output unit is allowed for 2 classes.
                if *classes == 2 && k == 1 { 1 } else { *classes }
            }
            Targets::Dense(m) => m.nrows(),
        };
        if t != k {
            return Err(SolverError::shape(
                format!("{which} targets vs network output"),
                k,
                t,
            ));
        }
    }
    Ok(())
}

impl<T: Real> NetProblem<T> {
    /// A problem from a network, a loss and data sets; checks that the data fit the
    /// network (input rows, output rows or classes) and that the loss is valid. One
    /// thread.
    pub fn new(
        net: Sequential<T>,
        loss: Loss,
        train: Dataset<T>,
        test: Option<Dataset<T>>,
    ) -> Result<Self, SolverError> {
        loss.validate()?;
        if net.num_params() == 0 {
            return Err(SolverError::EmptyData("network has no parameters".into()));
        }
        check_dims(&net, &train, "training")?;
        check_activation_bytes(&net, &train, "training")?;
        if let Some(t) = &test {
            check_dims(&net, t, "test")?;
            check_activation_bytes(&net, t, "test")?;
        }
        Ok(NetProblem {
            net,
            loss,
            train,
            test,
            tape: Tape::new(),
            batches: Vec::new(),
            outputs: Vec::new(),
        })
    }

    /// Layer `layer`'s output on the whole training set, as the last full-batch
    /// gradient pass ([`Differentiable::value_grad`] with `batch = None`) computed it:
    /// `None` if the last pass was a mini-batch one or there is no such layer. It is the
    /// output at the weights of that pass: a caller that changed the weights since must
    /// not use it.
    pub fn full_batch_layer_output(&self, layer: usize) -> Option<&DMatrix<T>> {
        self.outputs.get(layer).map(|v| self.tape.value(*v))
    }

    /// Uses `threads` threads in the tape's matrix products (default 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.tape = Tape::with_threads(threads.max(1));
        self.outputs.clear();
        self
    }

    /// Checks the batch indices and copies the batch's targets into the reused buffer of
    /// that size; returns its index. (The inputs are gathered onto the tape.)
    fn gather(&mut self, batch: &[usize]) -> Result<usize, SolverError> {
        let n = self.train.len();
        if batch.is_empty() {
            return Err(SolverError::EmptyData("empty mini-batch".into()));
        }
        if let Some(&i) = batch.iter().find(|&&i| i >= n) {
            return Err(SolverError::shape(
                "mini-batch index bound",
                format!("< {n}"),
                i,
            ));
        }
        // One buffer per batch size. `select_into` reuses it when it still has the
        // training targets' kind, classes and rows, and re-shapes it otherwise (the
        // public `train` field may have been replaced since it was made): never a shape
        // panic.
        let targets = self.train.targets();
        let slot = match self
            .batches
            .iter()
            .position(|s| s.targets.len() == batch.len())
        {
            Some(s) => {
                targets
                    .select_into(batch, &mut self.batches[s].targets)
                    .map_err(nets::NetsError::from)?;
                s
            }
            None => {
                let targets = targets.select(batch).map_err(nets::NetsError::from)?;
                self.batches.push(BatchBuf { targets });
                self.batches.len() - 1
            }
        };
        Ok(slot)
    }

    fn eval_on(&self, data: &Dataset<T>) -> (f64, Option<f64>) {
        match self.net.predict(data.inputs()) {
            Ok(out) => {
                let data_term = self
                    .loss
                    .value(&out, data.targets())
                    .map_or(f64::NAN, |v| v.to_f64());
                (data_term, nets::accuracy(&out, data.targets()))
            }
            Err(_) => (f64::NAN, None),
        }
    }
}

impl<T: Real> Problem for NetProblem<T> {
    /// Objective = data term on the whole training set + L2 penalty; training accuracy
    /// (argmax) for labelled data; on the test set, the data term only (no penalty) and
    /// the accuracy.
    fn evaluate(&mut self) -> Evaluation {
        let (data, train_accuracy) = self.eval_on(&self.train);
        let objective = data + self.net.weight_penalty(self.loss.l2);
        let (test_objective, test_accuracy) = match &self.test {
            Some(t) => {
                let (f, a) = self.eval_on(t);
                (Some(f), a)
            }
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
        self.train.len()
    }

    fn save_params(&self) -> serde_json::Value {
        serde_json::to_value(self.net.flat_params()).unwrap_or(serde_json::Value::Null)
    }

    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let flat: Vec<T> = serde_json::from_value(v.clone())?;
        if flat.len() != self.net.num_params() {
            return Err(SolverError::shape(
                "loaded network parameters",
                self.net.num_params(),
                flat.len(),
            ));
        }
        self.net.params_from_flat(&flat)?;
        Ok(())
    }

    fn params_finite(&self) -> bool {
        self.net.flat_params().iter().all(|v| v.finite())
    }
}

impl<T: Real> Differentiable for NetProblem<T> {
    type Scalar = T;

    fn dim(&self) -> usize {
        self.net.num_params()
    }

    fn params(&self, out: &mut [T]) {
        if self.net.params_to_flat(out).is_err() {
            // Wrong-length buffer: fill what fits (documented contract: length = dim).
            let flat = self.net.flat_params();
            out.iter_mut().zip(flat).for_each(|(o, v)| *o = v);
        }
    }

    fn set_params(&mut self, p: &[T]) -> Result<(), SolverError> {
        if p.len() != self.net.num_params() {
            return Err(SolverError::shape(
                "NetProblem::set_params",
                self.net.num_params(),
                p.len(),
            ));
        }
        self.net.params_from_flat(p)?;
        Ok(())
    }

    fn value_grad(&mut self, batch: Option<&[usize]>, grad: &mut [T]) -> Result<T, SolverError> {
        if grad.len() != self.net.num_params() {
            return Err(SolverError::shape(
                "NetProblem gradient buffer",
                self.net.num_params(),
                grad.len(),
            ));
        }
        let f = match batch {
            None => nets::loss_and_grad_outputs(
                &self.net,
                &self.loss,
                self.train.inputs(),
                self.train.targets(),
                &mut self.tape,
                grad,
                &mut self.outputs,
            )?,
            Some(b) => {
                self.outputs.clear();
                let slot = self.gather(b)?;
                // The batch's columns go straight onto the tape (one copy each).
                nets::loss_and_grad_columns(
                    &self.net,
                    &self.loss,
                    self.train.inputs(),
                    b,
                    &self.batches[slot].targets,
                    &mut self.tape,
                    grad,
                )?
            }
        };
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_order::AdamConfig;
    use crate::{Batching, Budget, Driver, MemoryStore, Status};
    use autodiff::Reduction;
    use nets::{Activation, Init, LossKind};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Three Gaussian blobs in 4-D, 30 samples; a 4-8-3 tanh MLP.
    fn problem(seed: u64) -> NetProblem<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = 30;
        let mut x = DMatrix::zeros(4, n);
        let mut labels = Vec::new();
        for j in 0..n {
            let c = j % 3;
            for i in 0..4 {
                x[(i, j)] = crate::testing::normal(&mut rng) * 0.5 + if i == c { 2.0 } else { 0.0 };
            }
            labels.push(c);
        }
        let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
        let net =
            Sequential::mlp(&[4, 8, 3], Activation::Tanh, Init::GlorotUniform, &mut rng).unwrap();
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
        NetProblem::new(net, loss, data.clone(), Some(data)).unwrap()
    }

    #[test]
    fn minibatch_gradient_matches_the_extracted_columns() {
        let mut p = problem(1);
        let d = p.dim();
        let (mut g_full, mut g_all) = (vec![0.0; d], vec![0.0; d]);
        let f_full = p.value_grad(None, &mut g_full).unwrap();
        let all: Vec<usize> = (0..30).collect();
        let f_all = p.value_grad(Some(&all), &mut g_all).unwrap();
        assert_eq!((f_full, &g_full), (f_all, &g_all));
        // A subset, against loss_and_grad on hand-extracted columns.
        let batch = [7usize, 2, 29, 11];
        let mut g = vec![0.0; d];
        let f = p.value_grad(Some(&batch), &mut g).unwrap();
        let x = DMatrix::from_fn(4, 4, |i, j| p.train.inputs()[(i, batch[j])]);
        let Targets::Labels { labels, .. } = p.train.targets() else {
            unreachable!()
        };
        let t = Targets::Labels {
            labels: batch.iter().map(|&i| labels[i]).collect(),
            classes: 3,
        };
        let mut g_ref = vec![0.0; d];
        let mut tape = Tape::new();
        let f_ref = nets::loss_and_grad(&p.net, &p.loss, &x, &t, &mut tape, &mut g_ref).unwrap();
        assert_eq!((f, g), (f_ref, g_ref));
        // The evaluation's objective is the full-batch value.
        assert!((p.evaluate().objective - f_full).abs() < 1e-12);
    }

    /// The full-batch pass keeps the layers' outputs (the first is `W₁x + b₁`); a
    /// mini-batch pass forgets them.
    #[test]
    fn full_batch_pass_keeps_layer_outputs() {
        let mut p = problem(2);
        let mut g = vec![0.0; p.dim()];
        assert!(p.full_batch_layer_output(0).is_none());
        p.value_grad(None, &mut g).unwrap();
        let z1 = p.full_batch_layer_output(0).unwrap().clone();
        let d = p.net.layers()[0].as_dense().unwrap();
        let want = &d.weight * p.train.inputs() + DMatrix::from_fn(8, 30, |i, _| d.bias[i]);
        assert!(
            (&z1 - &want).abs().max() < 1e-13,
            "{}",
            (&z1 - &want).abs().max()
        );
        assert_eq!(p.full_batch_layer_output(2).unwrap().shape(), (3, 30));
        assert!(p.full_batch_layer_output(3).is_none());
        p.value_grad(Some(&[1, 2, 3]), &mut g).unwrap();
        assert!(p.full_batch_layer_output(0).is_none());
    }

    #[test]
    fn rejects_mismatched_data_and_buffers() {
        let p = problem(1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let wrong = Sequential::mlp(&[5, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
        let err = NetProblem::new(wrong, p.loss, p.train.clone(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in training inputs vs network input: expected 5, got 4"
        );
        let mut p = problem(1);
        assert_eq!(
            p.value_grad(None, &mut [0.0; 3]).unwrap_err().to_string(),
            "shape mismatch in NetProblem gradient buffer: expected 67, got 3"
        );
        assert_eq!(
            p.value_grad(Some(&[30]), &mut vec![0.0; 67])
                .unwrap_err()
                .to_string(),
            "shape mismatch in mini-batch index bound: expected < 30, got 30"
        );
    }

    /// Layer outputs beyond [`MAX_ACTIVATION_BYTES`] are refused before any of them is
    /// allocated: a 10^6-wide hidden layer (2 x 10^6 + 2 entries per sample, the ReLU
    /// layer's output and the 2 outputs counted too) takes 1073 f64 training samples, not
    /// 1074, and the test set is checked as well.
    #[test]
    fn layer_outputs_beyond_the_entry_cap_are_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let wide = 1_000_000;
        let net =
            Sequential::mlp(&[2, wide, 2], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
        assert_eq!(net.output_entries_per_sample(2), Some(wide * 2 + 2));
        let data = |n: usize| {
            let x = DMatrix::from_fn(2, n, |i, j| ((i + j) % 3) as f64);
            let labels = (0..n).map(|j| j % 2).collect();
            Dataset::new(x, Targets::Labels { labels, classes: 2 }).unwrap()
        };
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
        // (2 * 10^6 + 2) * 8 * 1073 <= 16 * 2^30 < (2 * 10^6 + 2) * 8 * 1074.
        assert!(NetProblem::new(net.clone(), loss, data(1073), None).is_ok());
        for (train, test) in [(1074, None), (10, Some(1074))] {
            let err = NetProblem::new(net.clone(), loss, data(train), test.map(data)).unwrap_err();
            let which = if test.is_some() { "test" } else { "training" };
            assert_eq!(
                err.to_string(),
                format!(
                    "problem error: the layer outputs on the {which} set need 2000002 entries per sample x 1074 samples x 8 bytes, more than MAX_ACTIVATION_BYTES = 17179869184 (a width too large?)"
                )
            );
        }
    }

    /// `train` is a public field: replacing it after a mini-batch pass (dense targets
    /// with other rows, or another target kind) must not hit the old batch buffer's
    /// shape (it panicked in nalgebra's `copy_from`): a typed error when the new data
    /// do not fit the network, and the fresh problem's exact gradient when they do.
    #[test]
    fn replacing_the_training_set_after_a_mini_batch_is_safe() {
        let mut p = problem(5);
        let Targets::Labels { labels, .. } = p.train.targets().clone() else {
            unreachable!()
        };
        let x = p.train.inputs().clone();
        let one_hot = |rows: usize| DMatrix::from_fn(rows, 30, |k, j| f64::from(labels[j] == k));
        let dense = |rows| Dataset::new(x.clone(), Targets::Dense(one_hot(rows))).unwrap();
        p.loss = Loss::new(LossKind::Mse, Reduction::Mean);
        p.train = dense(3);
        let mut g = vec![0.0; p.dim()];
        let batch = [4usize, 17, 4];
        p.value_grad(Some(&batch), &mut g).unwrap();
        p.train = dense(5);
        assert_eq!(
            p.value_grad(Some(&batch), &mut g).unwrap_err().to_string(),
            "problem error: mse: targets do not fit the loss: output has 3 rows but dense targets have 5"
        );
        // Back to labels (one-hot for MSE): the same value and gradient as a new problem.
        p.train = Dataset::new(x.clone(), Targets::Labels { labels, classes: 3 }).unwrap();
        let f = p.value_grad(Some(&batch), &mut g).unwrap();
        let mut fresh = NetProblem::new(p.net.clone(), p.loss, p.train.clone(), None).unwrap();
        let mut g_fresh = vec![0.0; p.dim()];
        let f_fresh = fresh.value_grad(Some(&batch), &mut g_fresh).unwrap();
        assert_eq!((f, g), (f_fresh, g_fresh));
    }

    #[test]
    fn adam_trains_and_resumes_bit_identically_on_a_network() {
        let adam = || {
            AdamConfig {
                lr: 0.02,
                batching: Batching::mini(8),
                ..Default::default()
            }
            .build::<f64>()
            .unwrap()
        };
        let mut p = problem(2);
        let full = Driver::new(Budget::epochs(12.0))
            .seed(9)
            .run(&mut p, &mut adam())
            .unwrap();
        assert_eq!(
            full.status,
            Status::BudgetExhausted(crate::BudgetKind::Epochs)
        );
        let (first, last) = (&full.trace.records[0], full.trace.last().unwrap());
        assert!(
            last.objective < 0.5 * first.objective,
            "{} -> {}",
            first.objective,
            last.objective
        );
        assert!(last.train_accuracy.unwrap() > 0.9);
        // 6 epochs (12 data passes: forward + backward) of 30 samples in batches of 8.
        assert_eq!((last.forward, last.backward), (6 * 4, 6 * 4));
        assert_eq!(last.samples_seen, 2 * 6 * 30);

        let mut store = MemoryStore::default();
        let mut p1 = problem(2);
        Driver::new(Budget::epochs(4.0))
            .seed(9)
            .checkpointing(&mut store, 1)
            .run(&mut p1, &mut adam())
            .unwrap();
        let mut p2 = problem(2);
        p2.set_params(&vec![0.5; 67]).unwrap(); // other weights: overwritten on resume
        let resumed = Driver::new(Budget::epochs(12.0))
            .checkpointing(&mut store, 1)
            .resume(true)
            .run(&mut p2, &mut adam())
            .unwrap();
        assert_eq!(resumed.trace.without_time(), full.trace.without_time());
        assert_eq!(p2.net.flat_params(), p.net.flat_params());
    }

    #[test]
    fn huge_learning_rates_diverge_without_panicking_on_a_network() {
        for lr in [1e4, 1e12] {
            let mut p = problem(4);
            let mut adam = AdamConfig {
                lr,
                batching: Batching::mini(8),
                ..Default::default()
            }
            .build::<f64>()
            .unwrap();
            let out = Driver::new(Budget::epochs(50.0))
                .run(&mut p, &mut adam)
                .unwrap();
            assert!(
                matches!(out.status, Status::Diverged { .. }),
                "lr {lr}: {:?}",
                out.status
            );
            assert!(out.trace.records.len() >= 2);
        }
        let mut p = problem(4);
        let mut gd = crate::first_order::SgdConfig::gd(1e6)
            .build::<f64>()
            .unwrap();
        let out = Driver::new(Budget::iterations(50))
            .run(&mut p, &mut gd)
            .unwrap();
        assert!(
            matches!(out.status, Status::Diverged { .. }),
            "{:?}",
            out.status
        );
    }

    /// Issue #14: the data-parallel full-batch gradient (two threads in the tape's GEMMs;
    /// 128 x 64 x 400 multiply-adds exceed the threshold where the tape goes parallel) is
    /// bit-identical run to run, and equal to the one-thread gradient up to rounding.
    #[test]
    fn two_thread_full_batch_gradient_is_bit_identical_run_to_run() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (d, n) = (64, 400);
        let x = DMatrix::from_fn(d, n, |_, _| crate::testing::normal(&mut rng));
        let labels = (0..n).map(|j| j % 10).collect();
        let data = Dataset::new(
            x,
            Targets::Labels {
                labels,
                classes: 10,
            },
        )
        .unwrap();
        let net =
            Sequential::mlp(&[d, 128, 10], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
        let grad = |threads: usize| {
            let mut p = NetProblem::new(net.clone(), loss, data.clone(), None)
                .unwrap()
                .with_threads(threads);
            let mut g = vec![0.0; p.dim()];
            let f = p.value_grad(None, &mut g).unwrap();
            (f, g)
        };
        let (a, b, one) = (grad(2), grad(2), grad(1));
        assert_eq!(a.0.to_bits(), b.0.to_bits());
        assert!(
            a.1.iter()
                .zip(&b.1)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        assert!((a.0 - one.0).abs() < 1e-12 * one.0.abs());
        let scale = one.1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (x, y) in a.1.iter().zip(&one.1) {
            assert!((x - y).abs() < 1e-10 * scale, "{x} vs {y}");
        }
    }
}
