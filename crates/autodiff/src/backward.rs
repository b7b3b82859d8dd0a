//! Reverse sweep: `backward` from a scalar, `vjp` from any node with a seed.
//!
//! All derivative rules live in the single `match` of [`Tape::propagate`]; each arm
//! states its rule and calls the kernel of its op family, which accumulates straight
//! into the pooled gradient buffers (`+=`, so a node used several times receives the
//! sum of its contributions). The first contribution to a buffer overwrites it instead
//! of adding (no separate zeroing pass); products accumulate with `gemm_into`'s
//! `beta = 1`.
//!
//! # Second order (room for Hessian-vector products)
//!
//! Every rule is a composition of ops the tape already records (products with swapped
//! transposes, elementwise maps, broadcasts and column reductions). A later
//! "create graph" mode can therefore replay this same match with each kernel replaced by
//! the corresponding *recording* op on the tape (e.g. the `MatMul` arm becomes
//! `dA = matmul(dC, No, B, flip(tb))` recorded as nodes, the `Relu` arm a product with a
//! recorded step mask), turning the gradient into nodes whose own backward gives
//! Hessian-vector products. Nothing here detaches gradients or assumes the graph is
//! frozen: gradients are plain buffers indexed like values, and the op enum carries every
//! constant a rule needs.

use crate::op::Op;
use crate::ops::{affine_relu, elementwise, losses, matmul, reductions, softmax};
use crate::{AutodiffError, Real, Result, Tape, Var};
use nalgebra::DMatrix;

/// Mutable access to the gradient buffers of the nodes before the one being processed.
pub(crate) struct Grads<'a, T: Real> {
    bufs: &'a mut [DMatrix<T>],
    has: &'a mut [bool],
    needs: &'a [bool],
}

impl<T: Real> Grads<'_, T> {
    /// The gradient buffer of node `j`, shaped `shape`, and whether this is its first
    /// contribution (then the caller must overwrite rather than add). `None` when no
    /// gradient flows into `j` (a constant).
    pub(crate) fn slot(
        &mut self,
        j: usize,
        shape: (usize, usize),
    ) -> Option<(&mut DMatrix<T>, bool)> {
        if !self.needs[j] {
            return None;
        }
        let first = !self.has[j];
        if first {
            crate::tape::ensure_shape(&mut self.bufs[j], shape.0, shape.1);
            self.has[j] = true;
        }
        Some((&mut self.bufs[j], first))
    }
}

impl<T: Real> Tape<T> {
    /// Backward from a 1x1 node (seed 1). Gradients accumulate with `+=` over fan-out;
    /// read them with [`Tape::grad`]. Replaces the gradients of any earlier backward.
    pub fn backward(&mut self, out: Var) -> Result<()> {
        let i = self.check("backward", out)?;
        let shape = self.values[i].shape();
        if shape != (1, 1) {
            return Err(AutodiffError::NotScalar { shape });
        }
        self.seed(i, |g| g.fill(T::one()));
        self.propagate(i)
    }

    /// Vector-Jacobian product from any node with a caller-given seed `s` of its shape:
    /// afterwards `grad(x)` holds `J_x(out)^T s` (as a matrix of the shape of `x`) for
    /// every `x` the output depends on.
    pub fn vjp(&mut self, out: Var, seed: &DMatrix<T>) -> Result<()> {
        let i = self.check("vjp", out)?;
        let shape = self.values[i].shape();
        if seed.shape() != shape {
            return Err(AutodiffError::SeedShape {
                seed: seed.shape(),
                output: shape,
            });
        }
        self.seed(i, |g| g.copy_from(seed));
        self.propagate(i)
    }

    fn seed(&mut self, i: usize, fill: impl FnOnce(&mut DMatrix<T>)) {
        self.has_grad.iter_mut().for_each(|h| *h = false);
        let (r, c) = self.values[i].shape();
        crate::tape::ensure_shape(&mut self.grads[i], r, c);
        fill(&mut self.grads[i]);
        self.has_grad[i] = true;
    }

    /// The reverse sweep from node `out` (whose gradient is seeded).
    fn propagate(&mut self, out: usize) -> Result<()> {
        let threads = self.threads;
        for i in (0..=out).rev() {
            if !self.has_grad[i] || !self.needs_grad[i] {
                continue;
            }
            let (before, rest) = self.grads.split_at_mut(i);
            let g = &rest[0];
            let mut grads = Grads {
                bufs: before,
                has: &mut self.has_grad[..i],
                needs: &self.needs_grad[..i],
            };
            let v = &self.values;
            let y = &v[i];
            match self.ops[i] {
                Op::Leaf => {}
                // C = op(A) op(B):  d op(A) = dC op(B)^T,  d op(B) = op(A)^T dC.
                Op::MatMul { a, ta, b, tb } => {
                    matmul::backward(&mut grads, g, a, ta, &v[a], b, tb, &v[b], threads)?
                }
                // W X + b 1^T:  dW = g X^T,  dX = W^T g,  db = g 1 (no copy of g).
                Op::Affine { w, x, b } => {
                    matmul::affine_backward(&mut grads, g, w, &v[w], x, &v[x], b, threads)?
                }
                // relu(W X + b 1^T):  dZ = g (.) [y > 0] (in the slot's scratch),
                // db = dZ 1,  dW = dZ X^T,  dX = W^T dZ.
                Op::AffineRelu { w, x, b } => affine_relu::affine_relu_backward(
                    &mut grads,
                    g,
                    y,
                    &mut self.aux[i],
                    w,
                    &v[w],
                    x,
                    &v[x],
                    b,
                    threads,
                )?,
                // d(a + b) = (g, g); d(a - b) = (g, -g); d(a b) = (g b, g a);
                // d(a / b) = (g / b, -g a / b^2).
                Op::Binary(a, b, kind) => {
                    elementwise::binary_backward(&mut grads, g, kind, a, &v[a], b, &v[b])
                }
                // dx = g f'(x), with f' written through x or y = f(x) (see Unary).
                Op::Unary(a, kind) => {
                    elementwise::unary_backward(&mut grads, g, kind, a, &v[a], y, threads)
                }
                // A + b 1^T:  dA = g,  db = g 1 (row sums).
                Op::AddBias(a, b) => elementwise::add_bias_backward(&mut grads, g, a, b, threads),
                // scale * sum over axis:  dA = scale * g broadcast back over the axis.
                Op::Reduce(a, axis, scale) => {
                    reductions::backward(&mut grads, g, a, v[a].shape(), axis, scale)
                }
                // y = z - lse(z) per column:  dz = g - softmax(z) (1^T g).
                Op::LogSoftmax(a) => softmax::log_softmax_backward(&mut grads, g, a, y),
                // dz = scale g (softmax(z) - onehot(y)).
                Op::CrossEntropyLabels { logits, scale } => softmax::ce_labels_backward(
                    &mut grads,
                    g[(0, 0)] * scale,
                    logits,
                    &self.aux[i],
                    &self.labels[i],
                ),
                // dz = scale g ((1^T t) softmax(z) - t),  dt = -scale g log_softmax(z).
                Op::CrossEntropySoft {
                    logits,
                    targets,
                    scale,
                } => softmax::ce_soft_backward(
                    &mut grads,
                    g[(0, 0)] * scale,
                    logits,
                    targets,
                    &v[targets],
                    &self.aux[i],
                ),
                // dp = scale g (p - t),  dt = -dp.
                Op::Mse {
                    pred,
                    target,
                    scale,
                } => losses::mse_backward(
                    &mut grads,
                    g[(0, 0)] * scale,
                    pred,
                    &v[pred],
                    target,
                    &v[target],
                ),
                // dz = scale g (sigmoid(z) - t),  dt = -scale g z.
                Op::BceLogits {
                    logits,
                    targets,
                    scale,
                } => losses::bce_backward(
                    &mut grads,
                    g[(0, 0)] * scale,
                    logits,
                    &v[logits],
                    targets,
                    &v[targets],
                ),
                // per active margin 1 + z_j - z_y > 0:  dz_j += scale g,  dz_y -= scale g.
                Op::Hinge { logits, scale } => losses::hinge_backward(
                    &mut grads,
                    g[(0, 0)] * scale,
                    logits,
                    &v[logits],
                    &self.labels[i],
                ),
            }
        }
        Ok(())
    }
}
