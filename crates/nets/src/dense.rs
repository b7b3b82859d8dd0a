//! The dense (fully connected) layer `Z = W A + b 1^T`.

use autodiff::kernels::gemm_into;
use autodiff::{Real, Transpose, Var};
use nalgebra::{DMatrix, DVector};
use rand::Rng;

use crate::error::{NetsError, Result};
use crate::init::Init;
use crate::layer::{Layer, ParamMut, ParamRef, TapeContext};

/// Dense layer `z = W a + b`, applied to every column: `Z = W A + b 1^T`.
/// `weight` is `d_out x d_in`, `bias` has length `d_out`. Parameters in order:
/// `"weight"` (penalised by L2), `"bias"` (not penalised).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<T: Real> {
    /// W, `d_out x d_in`.
    pub weight: DMatrix<T>,
    /// b, length `d_out`.
    pub bias: DVector<T>,
}

impl<T: Real> Dense<T> {
    /// A dense layer from its parameters; errors if `bias.len() != weight.nrows()`.
    pub fn new(weight: DMatrix<T>, bias: DVector<T>) -> Result<Self> {
        if bias.len() != weight.nrows() {
            return Err(NetsError::Shape {
                op: "Dense::new",
                detail: format!(
                    "weight is {}x{} but bias has length {}",
                    weight.nrows(),
                    weight.ncols(),
                    bias.len()
                ),
            });
        }
        Ok(Dense { weight, bias })
    }

    /// A `d_in -> d_out` layer with weights drawn from `init` (fan_in = d_in,
    /// fan_out = d_out) and zero biases.
    pub fn init<R: Rng + ?Sized>(d_in: usize, d_out: usize, init: Init, rng: &mut R) -> Self {
        Dense {
            weight: init.weight(d_out, d_in, rng),
            bias: DVector::zeros(d_out),
        }
    }

    /// d_in (columns of W).
    pub fn input_dim(&self) -> usize {
        self.weight.ncols()
    }

    /// d_out (rows of W).
    pub fn output_dim(&self) -> usize {
        self.weight.nrows()
    }

    fn check(&self, op: &'static str) -> Result<()> {
        if self.bias.len() != self.weight.nrows() {
            return Err(NetsError::Shape {
                op,
                detail: format!(
                    "dense layer weight is {}x{} but bias has length {}",
                    self.weight.nrows(),
                    self.weight.ncols(),
                    self.bias.len()
                ),
            });
        }
        Ok(())
    }

    /// `out = W a + b 1^T` through the GEMM kernel (`out` resized if needed, one thread).
    pub fn forward_into(&self, a: &DMatrix<T>, out: &mut DMatrix<T>) -> Result<()> {
        self.check("Dense::forward")?;
        if a.nrows() != self.input_dim() {
            return Err(NetsError::Shape {
                op: "Dense::forward",
                detail: format!(
                    "weight is {}x{} but the input has {} rows",
                    self.output_dim(),
                    self.input_dim(),
                    a.nrows()
                ),
            });
        }
        if out.shape() != (self.output_dim(), a.ncols()) {
            *out = DMatrix::zeros(self.output_dim(), a.ncols());
        }
        gemm_into(
            out,
            T::one(),
            &self.weight,
            Transpose::No,
            a,
            Transpose::No,
            T::zero(),
            1,
        )?;
        for mut col in out.column_iter_mut() {
            col += &self.bias;
        }
        Ok(())
    }
}

impl<T: Real> Layer<T> for Dense<T> {
    fn kind(&self) -> &str {
        "dense"
    }

    fn input_dim(&self) -> Option<usize> {
        Some(self.weight.ncols())
    }

    fn output_dim(&self, input_dim: usize) -> Result<usize> {
        if input_dim != self.weight.ncols() {
            return Err(NetsError::Shape {
                op: "Dense",
                detail: format!(
                    "layer takes {} inputs but receives {input_dim}",
                    self.weight.ncols()
                ),
            });
        }
        Ok(self.weight.nrows())
    }

    fn forward(&self, x: &DMatrix<T>, out: &mut DMatrix<T>) -> Result<()> {
        self.forward_into(x, out)
    }

    fn forward_tape(&self, ctx: &mut TapeContext<'_, T>, input: Var) -> Result<Var> {
        self.check("Dense::forward_tape")?;
        let w = ctx.param(&self.weight);
        let b = ctx.param_vector(&self.bias);
        // One node `W A + b 1^T`: the bias is added in place into the product's output
        // (no second output buffer forward, no copy of the upstream gradient backward).
        Ok(ctx.tape.affine(w, input, b)?)
    }

    fn num_param_tensors(&self) -> usize {
        2
    }

    fn forward_tape_relu(&self, ctx: &mut TapeContext<'_, T>, input: Var) -> Result<Option<Var>> {
        self.check("Dense::forward_tape_relu")?;
        let w = ctx.param(&self.weight);
        let b = ctx.param_vector(&self.bias);
        // One node `relu(W A + b 1^T)`: bias and clamp in one pass over the output, the
        // ReLU mask and the bias gradient in one pass over the upstream gradient.
        Ok(Some(ctx.tape.affine_relu(w, input, b)?))
    }

    fn param(&self, i: usize) -> Option<ParamRef<'_, T>> {
        match i {
            0 => Some(ParamRef {
                name: "weight",
                rows: self.weight.nrows(),
                cols: self.weight.ncols(),
                values: self.weight.as_slice(),
                penalised: true,
            }),
            1 => Some(ParamRef {
                name: "bias",
                rows: self.bias.len(),
                cols: 1,
                values: self.bias.as_slice(),
                penalised: false,
            }),
            _ => None,
        }
    }

    fn param_mut(&mut self, i: usize) -> Option<ParamMut<'_, T>> {
        match i {
            0 => Some(ParamMut {
                name: "weight",
                rows: self.weight.nrows(),
                cols: self.weight.ncols(),
                values: self.weight.as_mut_slice(),
                penalised: true,
            }),
            1 => Some(ParamMut {
                name: "bias",
                rows: self.bias.len(),
                cols: 1,
                values: self.bias.as_mut_slice(),
                penalised: false,
            }),
            _ => None,
        }
    }

    fn as_dense(&self) -> Option<&Dense<T>> {
        Some(self)
    }

    fn as_dense_mut(&mut self) -> Option<&mut Dense<T>> {
        Some(self)
    }
}
