//! [`Sequential`]: a chain of layers, the network type every solver trains.
//!
//! **Flat parameter order** (used by [`Sequential::params_to_flat`],
//! [`Sequential::params_from_flat`] and [`crate::loss_and_grad`]): layer by layer in
//! network order; within a layer, its parameter tensors in [`Layer::param`] order (for
//! [`Dense`]: `weight` then `bias`); each tensor column-major. For an MLP this is
//! `vec(W_1), b_1, vec(W_2), b_2, ...` with `vec` stacking columns.

use std::sync::Mutex;

use autodiff::{Real, Var};
use nalgebra::{DMatrix, DVector};
use rand::Rng;

use crate::activation::Activation;
use crate::dense::Dense;
use crate::error::{NetsError, Result};
use crate::init::Init;
use crate::layer::Layer;

/// Most parameters [`Sequential::mlp`] builds (10^9: 8 GB of f64 weights, the cap of
/// `strata-nmf`'s factors too): a mistyped width is an error, not an abort of the
/// process on a failed allocation of terabytes.
pub const MAX_MLP_PARAMS: usize = 1_000_000_000;

/// Most bytes the layer outputs of one forward pass may take (`sum_l d_l` entries per
/// sample, times the samples, times the float's size; see
/// [`Sequential::output_entries_per_sample`]): 16 GiB. `predict`, `layer_outputs` and
/// `forward_trace` check it before allocating (a failed allocation aborts the process,
/// which Python cannot catch), and so does `solvers::NetProblem::new` for its data sets.
/// The largest papers setup (784-4000-1000-4000-10 on 60,000 images) needs 8.6 GB in
/// f64.
pub const MAX_ACTIVATION_BYTES: usize = 16 << 30;

/// The (dense, activation) structure of an MLP, for structured solvers:
/// `Z_l = W_l A_{l-1} + b_l 1^T`, `A_l = h_l(Z_l)` for `l = 1..L-1`, output `Z_L`.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpView {
    /// `d_0, d_1, ..., d_L` (length L + 1).
    pub widths: Vec<usize>,
    /// `h_1, ..., h_{L-1}` (length L - 1; `Identity` where two dense layers are adjacent).
    pub activations: Vec<Activation>,
    /// Position in the network of the l-th dense layer (length L, 0-based).
    pub dense_positions: Vec<usize>,
}

impl MlpView {
    /// Number of dense layers L.
    pub fn num_layers(&self) -> usize {
        self.widths.len().saturating_sub(1)
    }
}

/// Every pre-activation and activation of an MLP on a batch (paper indexing):
/// `a[l] = A_l` for `l = 0..=L` (`A_0 = X`, `A_L = Z_L` the network output, linear),
/// `z[l] = Z_l` for `l = 1..=L` (`z[0]` is an empty `0 x 0` placeholder).
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardTrace<T: Real> {
    /// `A_0 = X, A_1, ..., A_L` (each `d_l x N`).
    pub a: Vec<DMatrix<T>>,
    /// `(empty), Z_1, ..., Z_L` (each `d_l x N`).
    pub z: Vec<DMatrix<T>>,
}

impl<T: Real> ForwardTrace<T> {
    /// The network output `Z_L`.
    pub fn output(&self) -> &DMatrix<T> {
        &self.a[self.a.len() - 1]
    }
}

/// Pooled buffers of the tape path (parameter leaves, vector-parameter matrices,
/// one-hot targets), reused across calls of [`crate::loss_and_grad`].
#[derive(Debug, Default)]
pub(crate) struct TapeScratch<T: Real> {
    pub(crate) vars: Vec<Var>,
    pub(crate) mats: Vec<DMatrix<T>>,
    pub(crate) targets: DMatrix<T>,
}

/// A sequential composition of layers (any [`Layer`], including user-defined ones).
pub struct Sequential<T: Real> {
    pub(crate) layers: Vec<Box<dyn Layer<T>>>,
    pub(crate) scratch: Mutex<TapeScratch<T>>,
}

impl<T: Real> Clone for Sequential<T> {
    fn clone(&self) -> Self {
        Sequential {
            layers: self.layers.clone(),
            scratch: Mutex::new(TapeScratch::default()),
        }
    }
}

impl<T: Real> std::fmt::Debug for Sequential<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("layers", &self.layers)
            .finish()
    }
}

impl<T: Real> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> Sequential<T> {
    /// An empty network (the identity map).
    pub fn new() -> Self {
        Sequential {
            layers: Vec::new(),
            scratch: Mutex::new(TapeScratch::default()),
        }
    }

    /// A network from its layers; checks that consecutive widths agree.
    pub fn from_layers(layers: Vec<Box<dyn Layer<T>>>) -> Result<Self> {
        let mut net = Self::new();
        for l in layers {
            net.push(l)?;
        }
        Ok(net)
    }

    /// Appends a layer; errors if its input width differs from the current output width.
    pub fn push(&mut self, layer: Box<dyn Layer<T>>) -> Result<()> {
        if let (Some(cur), Some(d_in)) = (self.output_dim(), layer.input_dim())
            && cur != d_in
        {
            return Err(NetsError::Architecture {
                op: "Sequential::push",
                detail: format!(
                    "layer {} ({}) takes {d_in} inputs but the network so far outputs {cur}",
                    self.layers.len(),
                    layer.kind()
                ),
            });
        }
        if let Some(cur) = self.output_dim() {
            layer.output_dim(cur)?;
        }
        self.layers.push(layer);
        Ok(())
    }

    /// An MLP from given parameters: dense layers `x -> W_l x + b_l` from `layers[l] =
    /// (W_l, b_l)` (`W_l` is `d_l x d_{l-1}`, `b_l` has length `d_l`), with
    /// `activations[l]` after every layer but the last (linear output), as
    /// [`Sequential::mlp`] builds them; `activations.len()` must be `layers.len() - 1`.
    /// Typed errors: no layers or a wrong number of activations
    /// ([`NetsError::Architecture`]), a bias of the wrong length or consecutive widths
    /// that disagree ([`NetsError::Shape`]), an invalid activation parameter.
    pub fn from_weights(
        layers: &[(DMatrix<T>, DVector<T>)],
        activations: &[Activation],
    ) -> Result<Self> {
        const OP: &str = "Sequential::from_weights";
        if layers.is_empty() || activations.len() + 1 != layers.len() {
            return Err(NetsError::Architecture {
                op: OP,
                detail: format!(
                    "{} layers need {} activations (one after each hidden layer), got {}",
                    layers.len(),
                    layers.len().saturating_sub(1),
                    activations.len()
                ),
            });
        }
        let mut net = Self::new();
        for (l, (w, b)) in layers.iter().enumerate() {
            if l > 0 && w.ncols() != layers[l - 1].0.nrows() {
                return Err(NetsError::Shape {
                    op: OP,
                    detail: format!(
                        "W_{} is {}x{} but W_{} outputs {} values",
                        l + 1,
                        w.nrows(),
                        w.ncols(),
                        l,
                        layers[l - 1].0.nrows()
                    ),
                });
            }
            let dense = Dense::new(w.clone(), b.clone()).map_err(|_| NetsError::Shape {
                op: OP,
                detail: format!(
                    "layer {}: W is {}x{} but b has length {}",
                    l + 1,
                    w.nrows(),
                    w.ncols(),
                    b.len()
                ),
            })?;
            net.push(Box::new(dense))?;
            if let Some(h) = activations.get(l) {
                h.validate()?;
                net.push(Box::new(*h))?;
            }
        }
        Ok(net)
    }

    /// The usual MLP: dense layers `widths[0] -> widths[1] -> ... -> widths[L]`, the
    /// activation `hidden` after every dense layer but the last (linear output), weights
    /// from `init` with `rng` (drawn layer by layer, in order), zero biases. At most
    /// [`MAX_MLP_PARAMS`] parameters, `sum_l (d_(l-1) + 1) d_l` counted before anything
    /// is allocated.
    pub fn mlp<R: Rng>(
        widths: &[usize],
        hidden: Activation,
        init: Init,
        rng: &mut R,
    ) -> Result<Self> {
        if widths.len() < 2 {
            return Err(NetsError::Architecture {
                op: "Sequential::mlp",
                detail: format!(
                    "need at least 2 widths (input and output), got {}",
                    widths.len()
                ),
            });
        }
        if let Some(i) = widths.iter().position(|&w| w == 0) {
            return Err(NetsError::Architecture {
                op: "Sequential::mlp",
                detail: format!("width {i} is zero"),
            });
        }
        let params = widths.windows(2).try_fold(0usize, |n, w| {
            n.checked_add(w[0].checked_add(1)?.checked_mul(w[1])?)
        });
        if params.is_none_or(|p| p > MAX_MLP_PARAMS) {
            return Err(NetsError::Architecture {
                op: "Sequential::mlp",
                detail: format!("more than {MAX_MLP_PARAMS} parameters (a width too large?)"),
            });
        }
        hidden.validate()?;
        let mut net = Self::new();
        let last = widths.len() - 2;
        for (l, w) in widths.windows(2).enumerate() {
            net.push(Box::new(Dense::init(w[0], w[1], init, rng)))?;
            if l < last {
                net.push(Box::new(hidden))?;
            }
        }
        Ok(net)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer<T>>] {
        &self.layers
    }

    /// Number of layers (dense and activation layers count separately).
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the network has no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Input width d_0 (`None` if no layer fixes it).
    pub fn input_dim(&self) -> Option<usize> {
        self.layers.iter().find_map(|l| l.input_dim())
    }

    /// `sum_l d_l`, the entries of every layer's output for one sample on inputs of
    /// width `input_dim` (what a forward pass stores per sample, the tape twice that
    /// with the gradients); `None` on overflow or if a layer refuses the width.
    pub fn output_entries_per_sample(&self, input_dim: usize) -> Option<usize> {
        let (mut width, mut total) = (input_dim, 0usize);
        for l in &self.layers {
            width = l.output_dim(width).ok()?;
            total = total.checked_add(width)?;
        }
        Some(total)
    }

    /// Output width (`None` if no layer fixes it).
    pub fn output_dim(&self) -> Option<usize> {
        let mut cur: Option<usize> = None;
        for l in &self.layers {
            if let Some(d) = l.input_dim() {
                cur = Some(d);
            }
            if let Some(c) = cur {
                cur = l.output_dim(c).ok();
            }
        }
        cur
    }

    fn check_input(&self, op: &'static str, x: &DMatrix<T>) -> Result<()> {
        if let Some(d) = self.input_dim()
            && x.nrows() != d
        {
            return Err(NetsError::Shape {
                op,
                detail: format!("network takes {d} input rows but x has {}", x.nrows()),
            });
        }
        self.check_activation_bytes(op, x.nrows(), x.ncols())
    }

    /// `Ok` when the layer outputs of one forward pass over `n` samples of width
    /// `input_dim`, `sum_l d_l x n x size_of::<T>()` bytes (counted with overflow
    /// checks), fit [`MAX_ACTIVATION_BYTES`]; a `Shape` error naming `op` and the numbers
    /// otherwise; a layer that refuses the width returns its own error. Allocates
    /// nothing; `op` names the caller (and the data set).
    pub fn check_activation_bytes(
        &self,
        op: &'static str,
        input_dim: usize,
        n: usize,
    ) -> Result<()> {
        // As `output_entries_per_sample`, but a layer's refusal of the width is its own
        // error (a shape message naming the layer), not an overflow.
        let (mut width, mut per_sample) = (input_dim, Some(0usize));
        for l in &self.layers {
            width = l.output_dim(width)?;
            per_sample = per_sample.and_then(|t| t.checked_add(width));
        }
        let bytes = per_sample
            .and_then(|e| e.checked_mul(n))
            .and_then(|e| e.checked_mul(std::mem::size_of::<T>()));
        if bytes.is_none_or(|b| b > MAX_ACTIVATION_BYTES) {
            let per = per_sample.map_or("more than usize::MAX".to_string(), |e| e.to_string());
            return Err(NetsError::Shape {
                op,
                detail: format!(
                    "the layer outputs need {per} entries per sample x {n} samples x {} bytes, more than MAX_ACTIVATION_BYTES = {MAX_ACTIVATION_BYTES}",
                    std::mem::size_of::<T>()
                ),
            });
        }
        Ok(())
    }

    /// The network output on `x` (`d_0 x N`), without a tape.
    pub fn predict(&self, x: &DMatrix<T>) -> Result<DMatrix<T>> {
        self.check_input("Sequential::predict", x)?;
        let Some((first, rest)) = self.layers.split_first() else {
            return Ok(x.clone());
        };
        // The first layer reads `x` in place (no copy of the whole input: the driver's
        // evaluation of a 60 000-sample training set copied 188 MB per call; issue #14).
        let mut cur = DMatrix::zeros(0, 0);
        first.forward(x, &mut cur)?;
        let mut next = DMatrix::zeros(0, 0);
        for l in rest {
            l.forward(&cur, &mut next)?;
            std::mem::swap(&mut cur, &mut next);
        }
        Ok(cur)
    }

    /// The output of every layer on `x`: `outs[i]` is the output of layer `i` (works for
    /// any architecture; see [`Sequential::forward_trace`] for the MLP view).
    pub fn layer_outputs(&self, x: &DMatrix<T>) -> Result<Vec<DMatrix<T>>> {
        self.check_input("Sequential::layer_outputs", x)?;
        let mut outs: Vec<DMatrix<T>> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let mut o = DMatrix::zeros(0, 0);
            l.forward(outs.last().unwrap_or(x), &mut o)?;
            outs.push(o);
        }
        Ok(outs)
    }

    /// The (dense, activation) chain `W_1, b_1, h_1, ..., W_L, b_L` (linear output).
    /// Errors unless the network is dense layers separated by at most one activation
    /// each, starting and ending with a dense layer.
    pub fn mlp_view(&self) -> Result<MlpView> {
        let err = |detail: String| NetsError::Architecture {
            op: "Sequential::mlp_view",
            detail,
        };
        let mut widths = Vec::new();
        let mut activations = Vec::new();
        let mut dense_positions = Vec::new();
        let mut pending: Option<Activation> = None;
        for (i, l) in self.layers.iter().enumerate() {
            if let Some(d) = l.as_dense() {
                if widths.is_empty() {
                    widths.push(d.input_dim());
                } else {
                    activations.push(pending.take().unwrap_or(Activation::Identity));
                }
                widths.push(d.output_dim());
                dense_positions.push(i);
            } else if let Some(h) = l.as_activation() {
                if widths.is_empty() {
                    return Err(err(format!(
                        "layer {i} ({}) comes before the first dense layer",
                        l.kind()
                    )));
                }
                if pending.is_some() {
                    return Err(err(format!(
                        "layer {i} ({}) is a second activation in a row",
                        l.kind()
                    )));
                }
                pending = Some(h);
            } else {
                return Err(err(format!(
                    "layer {i} ({}) is neither dense nor an activation",
                    l.kind()
                )));
            }
        }
        if widths.is_empty() {
            return Err(err("the network has no dense layer".into()));
        }
        if let Some(h) = pending {
            return Err(err(format!(
                "the last layer is an activation ({}); structured solvers need a linear output",
                h.name()
            )));
        }
        Ok(MlpView {
            widths,
            activations,
            dense_positions,
        })
    }

    /// Forward pass keeping every `Z_l` and `A_l` (`A_0 = X`), for lifted / ADMM / BCD
    /// initialisation; requires the MLP structure of [`Sequential::mlp_view`].
    pub fn forward_trace(&self, x: &DMatrix<T>) -> Result<ForwardTrace<T>> {
        let mut trace = ForwardTrace {
            a: Vec::new(),
            z: Vec::new(),
        };
        self.forward_trace_into(x, &mut trace)?;
        Ok(trace)
    }

    /// [`Sequential::forward_trace`] into an existing trace, reusing its matrices (no
    /// allocation when the shapes are unchanged, apart from the GEMM kernel's own).
    pub fn forward_trace_into(&self, x: &DMatrix<T>, trace: &mut ForwardTrace<T>) -> Result<()> {
        let view = self.mlp_view()?;
        self.check_input("Sequential::forward_trace", x)?;
        let l_count = view.num_layers();
        trace.a.resize_with(l_count + 1, || DMatrix::zeros(0, 0));
        trace.z.resize_with(l_count + 1, || DMatrix::zeros(0, 0));
        if trace.a[0].shape() != x.shape() {
            trace.a[0] = DMatrix::zeros(x.nrows(), x.ncols());
        }
        trace.a[0].copy_from(x);
        if trace.z[0].shape() != (0, 0) {
            trace.z[0] = DMatrix::zeros(0, 0);
        }
        for l in 0..l_count {
            let d = self.layers[view.dense_positions[l]]
                .as_dense()
                .ok_or_else(|| NetsError::Architecture {
                    op: "Sequential::forward_trace",
                    detail: "dense layer vanished".into(),
                })?;
            let (a_prev, a_rest) = trace.a.split_at_mut(l + 1);
            let zl = &mut trace.z[l + 1];
            d.forward_into(&a_prev[l], zl)?;
            let al = &mut a_rest[0];
            if l + 1 < l_count {
                view.activations[l].apply_matrix(zl, al);
            } else {
                if al.shape() != zl.shape() {
                    *al = DMatrix::zeros(zl.nrows(), zl.ncols());
                }
                al.copy_from(zl);
            }
        }
        Ok(())
    }

    /// The `l`-th dense layer (0-based, counting dense layers only).
    pub fn dense(&self, l: usize) -> Option<&Dense<T>> {
        self.layers.iter().filter_map(|x| x.as_dense()).nth(l)
    }

    /// The `l`-th dense layer, mutably.
    pub fn dense_mut(&mut self, l: usize) -> Option<&mut Dense<T>> {
        self.layers
            .iter_mut()
            .filter_map(|x| x.as_dense_mut())
            .nth(l)
    }

    /// Number of dense layers.
    pub fn num_dense(&self) -> usize {
        self.layers
            .iter()
            .filter(|x| x.as_dense().is_some())
            .count()
    }

    /// The training objective without a tape: data term of `loss` on `predict(x)` plus
    /// the L2 weight penalty.
    pub fn objective(
        &self,
        loss: &crate::Loss,
        x: &DMatrix<T>,
        targets: &crate::Targets<T>,
    ) -> Result<T> {
        loss.validate()?;
        let out = self.predict(x)?;
        let data = loss.value(&out, targets)?;
        Ok(T::of(data.to_f64() + self.weight_penalty(loss.l2)))
    }
}
