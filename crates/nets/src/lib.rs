//! # nets
//!
//! Networks for strata: it turns the `autodiff` tape into layers, losses and
//! initialisers, and it states the structure of every piece that structured training
//! methods (majorization-minimization, ADMM, lifted / penalty / block-coordinate
//! methods) exploit. Gradient baselines only need [`loss_and_grad`]; structured solvers
//! read the composition through [`Sequential::mlp_view`], [`Sequential::forward_trace`]
//! and [`Sequential::dense_mut`], and ask each piece what it guarantees:
//!
//! * [`Activation`]: value, derivative, [`Activation::structure`] (Lipschitz constant,
//!   derivative and second-derivative bounds, monotonicity, range, piecewise
//!   linearity), the proximal maps of ADMM / BCD ([`prox`]: closed form for
//!   piecewise-linear activations, a 1-D numeric solve with a stated tolerance
//!   otherwise), and the Fenchel / LPOM biconvex penalty ([`fenchel`]).
//! * [`Loss`]: MSE, softmax cross-entropy, logistic, multiclass hinge, with an explicit
//!   [`Reduction`] over samples and an optional L2 weight penalty (weights only, not
//!   biases); tape-free value and output gradient, curvature bounds
//!   ([`Loss::curvature_bound`]: identity, Böhning, 1/4, none) and output proxes
//!   ([`loss_prox`]).
//! * [`Init`]: Glorot / He / LeCun initialisers from an explicit seeded RNG,
//!   bit-reproducible on every machine ([`init`] explains how).
//! * [`Dense`], the [`Layer`] trait (implement it for your own layers), and
//!   [`Sequential`] with the flat parameter vector of a documented order ([`params`]:
//!   its layout [`ParamInfo`] / [`ParamSpan`] and allocation-free access to one tensor).
//!   [`Sequential::check_activation_bytes`] caps one forward pass's layer outputs at
//!   [`MAX_ACTIVATION_BYTES`], [`Sequential::mlp`] the parameters at [`MAX_MLP_PARAMS`].
//! * [`loss_and_grad`] (batch loss and flat gradient through a reused tape; Dense+ReLU
//!   pairs recorded as one fused node), [`loss_and_grad_columns`] (a mini-batch given
//!   as column indices) and [`loss_and_grad_outputs`] (also keeps every layer's output).
//! * [`persist`]: a versioned JSON model format with typed errors and atomic writes.
//!
//! Data layout (one convention for the whole workspace): **samples are columns**.
//! Inputs are `d_0 x N`, targets `d_L x N`, pre-activations `Z_l` and activations `A_l`
//! are `d_l x N`, weights `W_l` are `d_l x d_{l-1}`, biases `b_l` are `d_l`-vectors.
//! Everything numeric is generic over `T: autodiff::Real` (f32 and f64); maps that are
//! scalar by nature (proxes, Fenchel penalty) compute in f64.
//!
//! ```
//! use autodiff::Tape;
//! use nalgebra::DMatrix;
//! use nets::{Activation, Init, Loss, LossKind, Reduction, Sequential, Targets, accuracy, loss_and_grad};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let net = Sequential::<f64>::mlp(&[2, 8, 3], Activation::Relu, Init::HeNormal, &mut rng)?;
//! let x = DMatrix::from_fn(2, 4, |i, j| (i + j) as f64 / 4.0);
//! let y = Targets::Labels { labels: vec![0, 1, 2, 1], classes: 3 };
//! let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-4);
//!
//! let mut tape = Tape::new();
//! let mut grad = vec![0.0; net.num_params()];
//! let value = loss_and_grad(&net, &loss, &x, &y, &mut tape, &mut grad)?;
//! assert!((value - net.objective(&loss, &x, &y)?).abs() < 1e-12);
//!
//! let view = net.mlp_view()?; // widths [2, 8, 3], hidden activations [Relu]
//! assert_eq!(view.widths, vec![2, 8, 3]);
//! assert_eq!(Activation::Relu.structure().lipschitz, 1.0);
//! let acc = accuracy(&net.predict(&x)?, &y);
//! assert!(acc.is_some());
//! # Ok::<(), nets::NetsError>(())
//! ```
//!
//! This crate must never depend on `majorize`, `solvers` or `bench-suite`.
#![warn(missing_docs)]

mod dataset;

pub mod activation;
pub mod dense;
pub mod error;
pub mod fenchel;
pub mod init;
pub mod layer;
pub mod loss;
pub mod loss_prox;
pub mod params;
pub mod persist;
pub mod prox;
pub mod sequential;
mod train;

pub use activation::{Activation, ActivationStructure, Monotonicity};
pub use autodiff::Reduction;
pub use dataset::{Dataset, DatasetError, Targets};
pub use dense::Dense;
pub use error::{ModelFileError, NetsError, Result};
pub use init::Init;
pub use layer::{Layer, LayerClone, ParamMut, ParamRef, TapeContext};
pub use loss::{CurvatureBound, Loss, LossKind, accuracy};
pub use params::{ParamInfo, ParamSpan};
pub use sequential::{ForwardTrace, MAX_ACTIVATION_BYTES, MAX_MLP_PARAMS, MlpView, Sequential};
pub use train::{loss_and_grad, loss_and_grad_columns, loss_and_grad_outputs};

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
