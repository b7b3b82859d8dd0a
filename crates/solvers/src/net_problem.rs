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
    /// Whether full-batch passes keep `outputs` ([`NetProblem::keep_layer_outputs`]).
    keep_outputs: bool,
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
        // Layer outputs within MAX_ACTIVATION_BYTES, before anything of that size is
        // allocated: Python's `MLPClassifier(hidden_layer_sizes=(10**6,))` on 2000
        // samples aborted the interpreter on a failed 16 GB allocation.
        net.check_activation_bytes(
            "NetProblem::new (training set)",
            train.input_dim(),
            train.len(),
        )?;
        if let Some(t) = &test {
            check_dims(&net, t, "test")?;
            net.check_activation_bytes("NetProblem::new (test set)", t.input_dim(), t.len())?;
        }
        Ok(NetProblem {
            net,
            loss,
            train,
            test,
            tape: Tape::new(),
            batches: Vec::new(),
            outputs: Vec::new(),
            keep_outputs: false,
        })
    }

    /// Layer `layer`'s output on the whole training set, as the last full-batch
    /// gradient pass ([`Differentiable::value_grad`] with `batch = None`) computed it:
    /// `None` if the last pass was a mini-batch one, if that pass did not keep its
    /// outputs ([`NetProblem::keep_layer_outputs`], off by default) or there is no such
    /// layer. It is the output at the weights of that pass: a caller that changed the
    /// weights since must not use it.
    pub fn full_batch_layer_output(&self, layer: usize) -> Option<&DMatrix<T>> {
        self.outputs.get(layer).map(|v| self.tape.value(*v))
    }

    /// Whether the next full-batch gradient passes keep every layer's output for
    /// [`NetProblem::full_batch_layer_output`] (default `false`). Kept outputs need each
    /// dense layer and its ReLU recorded as two tape nodes; otherwise they are one fused
    /// node ([`autodiff::Tape::affine_relu`]). Values and gradients are bit-identical
    /// either way.
    pub fn keep_layer_outputs(&mut self, keep: bool) {
        self.keep_outputs = keep;
        if !keep {
            self.outputs.clear();
        }
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
        // A number beyond the float's range (1e39 in f32) deserialises to infinity.
        crate::state_check::check_finite("NetProblem", "params", &flat)?;
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
            None if !self.keep_outputs => {
                self.outputs.clear();
                nets::loss_and_grad(
                    &self.net,
                    &self.loss,
                    self.train.inputs(),
                    self.train.targets(),
                    &mut self.tape,
                    grad,
                )?
            }
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
#[path = "tests_net_problem.rs"]
mod tests;
