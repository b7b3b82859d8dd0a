//! # autodiff
//!
//! A reverse-mode automatic-differentiation tape over dense matrices (nalgebra
//! [`nalgebra::DMatrix`], column-major, samples are columns), generic over `f32` and
//! `f64` through [`Real`], with every matrix product going through one strided GEMM
//! kernel ([`kernels::gemm_into`], backed by the `gemm` crate).
//!
//! It is the differentiation layer of strata: `nets` records layers and losses on a
//! [`Tape`], gradient baselines read gradients from it, and everyone checks analytic
//! gradients with [`gradcheck`]. This crate must never depend on any other strata crate:
//! it knows nothing of layers, training objectives, solvers or data sets.
//!
//! Design (micrograd plus candle): an arena of nodes recorded in evaluation order (so
//! the arena order is topological and backward is one reverse sweep), a closed op enum
//! whose derivative rules sit in one `match` (`backward.rs`), gradients accumulated with
//! `+=` so fan-out is right, and buffers pooled per node slot so that after
//! [`Tape::reset`] recording and differentiating the same graph again allocates no
//! matrix buffers. Misuse returns an [`AutodiffError`] naming the op and the shapes.
//!
//! The pieces:
//!
//! - [`Tape`] records ops on [`Var`] handles: leaves ([`Tape::param`],
//!   [`Tape::constant`], `*_from_slice` for column ranges, and
//!   [`Tape::constant_columns`] for a mini-batch of scattered columns); the product
//!   [`Tape::matmul`] with either operand transposed, and the dense layer
//!   [`Tape::affine`] (`W X + b 1^T`, the bias added in place into the product) and,
//!   fused with its ReLU, [`Tape::affine_relu`] (one node, bit-identical to
//!   `relu(affine(..))`); elementwise `add`, `sub`, `mul`,
//!   `div`, `add_scalar`, `mul_scalar`, `neg`, [`Tape::add_bias`]; sums and means over
//!   all entries, rows or columns; `exp`, `log`, `sqrt`, `abs`, `square`, `powf`; the
//!   activations `relu`, `leaky_relu`, `elu`, `sigmoid`, `tanh`, `softplus`;
//!   [`Tape::log_softmax`]; the losses (softmax cross-entropy with labels or soft
//!   targets, MSE, binary cross-entropy on logits, Weston-Watkins hinge), each reduced
//!   over samples by a [`Reduction`].
//! - [`Tape::with_threads`]: a tape whose large products and element-wise ops may use
//!   that many rayon threads (bit-identical to one thread for the element-wise ops).
//! - [`Tape::backward`] from a 1x1 node, [`Tape::vjp`] from any node with a seed, then
//!   [`Tape::grad`].
//! - [`kernels::gemm_into`]: `C <- alpha op(A) op(B) + beta C`, the one matrix product of
//!   the workspace (other crates should use it too instead of nalgebra's `tr_mul`).
//! - [`gradcheck`]: central finite differences against analytic gradients.
//!
//! Second-order derivatives are not implemented yet, but the design keeps the door open:
//! every backward rule is a composition of ops the tape can record, so a "create graph"
//! mode can replay the rules as recorded ops and differentiate them again for
//! Hessian-vector products (see the notes in `backward.rs`).
//!
//! Numerical results are bit-identical for the same inputs, thread count and machine;
//! the `gemm` kernel is chosen at run time (AVX-512 where available, else AVX2/FMA), so
//! results may differ in the last bits between machines.
//!
//! ```
//! use autodiff::{Reduction, Tape, Transpose};
//! use nalgebra::dmatrix;
//!
//! // f(W) = sum(tanh(W x)), df/dW = (1 - tanh^2(W x)) x^T.
//! let mut tape = Tape::<f64>::new();
//! let w = tape.param(&dmatrix![0.5, -1.0; 2.0, 0.25]);
//! let x = tape.constant(&dmatrix![1.0; 2.0]);
//! let z = tape.matmul(w, Transpose::No, x, Transpose::No)?;
//! let h = tape.tanh(z)?;
//! let f = tape.sum_all(h)?;
//! tape.backward(f)?;
//! let zv = tape.value(z).clone();
//! let dw = tape.grad(w).unwrap();
//! for i in 0..2 {
//!     for j in 0..2 {
//!         let want = (1.0 - zv[i].tanh().powi(2)) * [1.0, 2.0][j];
//!         assert!((dw[(i, j)] - want).abs() < 1e-15);
//!     }
//! }
//! // Reuse: reset keeps every buffer for the next recording.
//! tape.reset();
//! let w = tape.param(&dmatrix![1.0, 0.0; 0.0, 1.0]);
//! let t = tape.constant(&dmatrix![1.0, 0.0; 0.0, 1.0]);
//! let l = tape.mse(w, t, Reduction::Mean)?;
//! assert_eq!(tape.scalar(l)?, 0.0);
//! # Ok::<(), autodiff::AutodiffError>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backward;
mod error;
pub mod gradcheck;
pub mod kernels;
mod op;
mod ops;
mod real;
pub mod simd;
mod tape;

pub use error::{AutodiffError, Result};
pub use ops::elementwise::{sigmoid, softplus};
pub use real::Real;
pub use tape::{Tape, Var};

/// Whether an operand of a product is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// `op(A) = A`.
    No,
    /// `op(A) = A^T` (read with swapped strides, never materialised).
    Yes,
}

/// How a scalar loss over samples (columns) is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reduction {
    /// Divide the sum over samples by the number of samples `N` (columns).
    Mean,
    /// Sum over samples.
    Sum,
}

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
