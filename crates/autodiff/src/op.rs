//! The closed set of operations a tape records.
//!
//! Node indices refer to earlier nodes of the same tape. Scalars a backward rule needs
//! (a slope, an exponent, the 1/N of a mean) are stored in the op itself, so replaying
//! the backward sweep needs nothing but the tape.

use crate::Transpose;

/// Elementwise binary operations on two matrices of the same shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// Elementwise unary maps `y = f(x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Unary<T> {
    Exp,
    Log,
    Sqrt,
    Abs,
    Square,
    Powf(T),
    Relu,
    LeakyRelu(T),
    Elu(T),
    Sigmoid,
    Tanh,
    Softplus,
    /// `x + c` (the constant is only needed forward; kept for a readable tape dump).
    AddScalar(T),
    /// `c x`.
    MulScalar(T),
    /// `-x`.
    Neg,
}

/// Which entries a sum or mean reduces over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Axis {
    /// All entries, result 1x1.
    All,
    /// Each row over its columns, result m x 1.
    PerRow,
    /// Each column over its rows, result 1 x n.
    PerCol,
}

/// One recorded operation. `scale` in reductions and losses is `1` for a sum and
/// `1/count` for a mean, fixed at recording time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op<T> {
    /// Param or constant: no inputs.
    Leaf,
    /// `op(A) op(B)`.
    MatMul {
        a: usize,
        ta: Transpose,
        b: usize,
        tb: Transpose,
    },
    /// Elementwise `a (.) b`.
    Binary(usize, usize, Binary),
    /// Elementwise `f(a)`.
    Unary(usize, Unary<T>),
    /// `A + b 1^T`, `b` a column.
    AddBias(usize, usize),
    /// `W X + b 1^T` (a dense layer), `b` a column: one product, then the bias added in
    /// place into its output.
    Affine { w: usize, x: usize, b: usize },
    /// `max(W X + b 1^T, 0)` (a dense layer and its ReLU): one product, then one pass
    /// adding the bias and clamping; the backward's `dZ` lives in the slot's scratch.
    AffineRelu { w: usize, x: usize, b: usize },
    /// `scale * sum` over `axis`.
    Reduce(usize, Axis, T),
    /// Column-wise log-softmax.
    LogSoftmax(usize),
    /// `scale * sum_n (lse(z_n) - z_{y_n, n})`; labels in the slot's label buffer,
    /// log-probabilities in its scratch buffer.
    CrossEntropyLabels { logits: usize, scale: T },
    /// `scale * sum_n sum_k t_kn (lse(z_n) - z_kn)`; log-probabilities in scratch.
    CrossEntropySoft {
        logits: usize,
        targets: usize,
        scale: T,
    },
    /// `scale * (1/2) sum (p - t)^2`.
    Mse {
        pred: usize,
        target: usize,
        scale: T,
    },
    /// `scale * sum (softplus(z) - t z)`.
    BceLogits {
        logits: usize,
        targets: usize,
        scale: T,
    },
    /// `scale * sum_n sum_{j != y_n} max(0, 1 + z_jn - z_{y_n, n})`; labels in the slot.
    Hinge { logits: usize, scale: T },
}
