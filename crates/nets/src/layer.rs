//! The [`Layer`] trait: what any layer (built-in or user-defined) offers to a
//! [`crate::Sequential`] network and to solvers.
//!
//! A layer maps a `d_in x N` matrix (samples as columns) to a `d_out x N` matrix. It
//! runs without a tape ([`Layer::forward`], inference and structured solvers) and on a
//! tape ([`Layer::forward_tape`], gradients). Its parameters are named tensors exposed
//! as column-major slices, in a fixed order that defines the flat parameter vector.

use autodiff::{Real, Tape, Var};
use nalgebra::{DMatrix, DVector};

use crate::activation::Activation;
use crate::dense::Dense;
use crate::error::Result;

/// A read-only view of one named parameter tensor (column-major values).
#[derive(Debug)]
pub struct ParamRef<'a, T> {
    /// Name within the layer ("weight", "bias", ...).
    pub name: &'a str,
    /// Rows of the tensor.
    pub rows: usize,
    /// Columns of the tensor (1 for vectors).
    pub cols: usize,
    /// Values, column-major, `rows * cols` of them.
    pub values: &'a [T],
    /// Whether the L2 weight penalty of [`crate::Loss`] applies (weights yes, biases no).
    pub penalised: bool,
}

/// A mutable view of one named parameter tensor (column-major values).
#[derive(Debug)]
pub struct ParamMut<'a, T> {
    /// Name within the layer.
    pub name: &'a str,
    /// Rows of the tensor.
    pub rows: usize,
    /// Columns of the tensor.
    pub cols: usize,
    /// Values, column-major.
    pub values: &'a mut [T],
    /// Whether the L2 weight penalty applies.
    pub penalised: bool,
}

/// Recording context handed to [`Layer::forward_tape`]: the tape, the list of parameter
/// leaves registered so far (in parameter order), and pooled scratch matrices so that
/// registering vector parameters allocates nothing at steady state.
pub struct TapeContext<'a, T: Real> {
    /// The tape being recorded.
    pub tape: &'a mut Tape<T>,
    params: &'a mut Vec<Var>,
    scratch: &'a mut Vec<DMatrix<T>>,
    next_scratch: usize,
}

impl<'a, T: Real> TapeContext<'a, T> {
    /// A context over `tape`; `params` is cleared and receives the parameter leaves,
    /// `scratch` is a pool of matrices reused across recordings.
    pub fn new(
        tape: &'a mut Tape<T>,
        params: &'a mut Vec<Var>,
        scratch: &'a mut Vec<DMatrix<T>>,
    ) -> Self {
        params.clear();
        TapeContext {
            tape,
            params,
            scratch,
            next_scratch: 0,
        }
    }

    /// Registers a matrix parameter (a gradient-receiving leaf) and returns its node.
    pub fn param(&mut self, value: &DMatrix<T>) -> Var {
        let v = self.tape.param(value);
        self.params.push(v);
        v
    }

    /// Registers a vector parameter as a `len x 1` leaf (copied through a pooled matrix).
    pub fn param_vector(&mut self, value: &DVector<T>) -> Var {
        if self.next_scratch == self.scratch.len() {
            self.scratch.push(DMatrix::zeros(value.len(), 1));
        }
        let m = &mut self.scratch[self.next_scratch];
        self.next_scratch += 1;
        if m.shape() != (value.len(), 1) {
            *m = DMatrix::zeros(value.len(), 1);
        }
        m.as_mut_slice().copy_from_slice(value.as_slice());
        let v = self.tape.param(m);
        self.params.push(v);
        v
    }

    /// The parameter leaves registered so far.
    pub fn params(&self) -> &[Var] {
        self.params
    }
}

/// Cloning boxed layers (blanket-implemented for every `Layer + Clone`).
pub trait LayerClone<T: Real> {
    /// A boxed copy of the layer.
    fn clone_box(&self) -> Box<dyn Layer<T>>;
}

impl<T: Real, L: Layer<T> + Clone + 'static> LayerClone<T> for L {
    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

/// A layer of a [`crate::Sequential`] network. Implement it (and derive `Clone`,
/// `Debug`) for a custom layer; parameters must be registered in
/// [`Layer::forward_tape`] in the order of [`Layer::param`].
pub trait Layer<T: Real>: LayerClone<T> + Send + Sync + std::fmt::Debug {
    /// A short kind name ("dense", "relu", ...) used in messages and files.
    fn kind(&self) -> &str;

    /// The input width the layer requires, or `None` for elementwise layers.
    fn input_dim(&self) -> Option<usize>;

    /// The output width for an input of width `input_dim` (errors if incompatible).
    fn output_dim(&self, input_dim: usize) -> Result<usize>;

    /// `out = layer(x)` without a tape; `out` is resized when its shape differs.
    fn forward(&self, x: &DMatrix<T>, out: &mut DMatrix<T>) -> Result<()>;

    /// Records `layer(input)` on `ctx.tape`, registering every parameter through
    /// [`TapeContext::param`] / [`TapeContext::param_vector`] in [`Layer::param`] order.
    fn forward_tape(&self, ctx: &mut TapeContext<'_, T>, input: Var) -> Result<Var>;

    /// Records `relu(layer(input))` on `ctx.tape` as one fused node, registering the
    /// parameters as [`Layer::forward_tape`] does, when the layer can (a dense layer:
    /// [`autodiff::Tape::affine_relu`]); `Ok(None)` (nothing recorded, nothing
    /// registered) otherwise, and the caller records the layer and the ReLU apart. The
    /// fused node must be bit-identical to the two nodes. The default declines.
    fn forward_tape_relu(&self, _ctx: &mut TapeContext<'_, T>, _input: Var) -> Result<Option<Var>> {
        Ok(None)
    }

    /// Number of parameter tensors.
    fn num_param_tensors(&self) -> usize {
        0
    }

    /// The `i`-th parameter tensor.
    fn param(&self, _i: usize) -> Option<ParamRef<'_, T>> {
        None
    }

    /// The `i`-th parameter tensor, mutably.
    fn param_mut(&mut self, _i: usize) -> Option<ParamMut<'_, T>> {
        None
    }

    /// The layer as a dense layer, for structured solvers. A contract like
    /// [`Layer::as_activation`]'s: `Some(d)` only if this layer computes exactly `d`.
    fn as_dense(&self) -> Option<&Dense<T>> {
        None
    }

    /// The layer as a mutable dense layer.
    fn as_dense_mut(&mut self) -> Option<&mut Dense<T>> {
        None
    }

    /// The layer as an elementwise activation. A contract, not a hint: return `Some(a)`
    /// only if [`Layer::forward`] and [`Layer::forward_tape`] compute exactly `a` entry by
    /// entry. Structured solvers, the enclosure engine and the training pass (which fuses
    /// a dense layer and a following parameter-free ReLU into one tape node) use `a`'s
    /// own maths in place of this layer's code.
    fn as_activation(&self) -> Option<Activation> {
        None
    }
}

impl<T: Real> Clone for Box<dyn Layer<T>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Activations are parameter-free elementwise layers.
impl<T: Real> Layer<T> for Activation {
    fn kind(&self) -> &str {
        self.name()
    }

    fn input_dim(&self) -> Option<usize> {
        None
    }

    fn output_dim(&self, input_dim: usize) -> Result<usize> {
        Ok(input_dim)
    }

    fn forward(&self, x: &DMatrix<T>, out: &mut DMatrix<T>) -> Result<()> {
        self.apply_matrix(x, out);
        Ok(())
    }

    fn forward_tape(&self, ctx: &mut TapeContext<'_, T>, input: Var) -> Result<Var> {
        Ok(self.on_tape(ctx.tape, input)?)
    }

    fn as_activation(&self) -> Option<Activation> {
        Some(*self)
    }
}

impl Activation {
    /// Records `h(z)` on the tape (the identity records nothing and returns `z`).
    pub fn on_tape<T: Real>(
        &self,
        tape: &mut Tape<T>,
        z: Var,
    ) -> Result<Var, autodiff::AutodiffError> {
        match *self {
            Activation::Identity => Ok(z),
            Activation::Relu => tape.relu(z),
            Activation::LeakyRelu { slope } => tape.leaky_relu(z, T::of(slope)),
            Activation::Elu { alpha } => tape.elu(z, T::of(alpha)),
            Activation::Sigmoid => tape.sigmoid(z),
            Activation::Tanh => tape.tanh(z),
            Activation::Softplus => tape.softplus(z),
        }
    }
}
