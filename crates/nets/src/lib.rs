//! # nets
//!
//! Compositional layers, losses and initialisers built on the `autodiff` tape, and the
//! structure each piece states for structured solvers (Lipschitz constants, curvature
//! bounds, proximal maps).
//!
//! Data layout (one convention for the whole workspace): **samples are columns**.
//! Inputs are `d_0 x N`, targets `d_L x N`, pre-activations `Z_l` and activations `A_l`
//! are `d_l x N`, weights `W_l` are `d_l x d_{l-1}`, biases `b_l` are `d_l`-vectors.
//!
//! This crate must never depend on `majorize`, `solvers` or `bench-suite`.

mod dataset;

pub mod activation;
pub mod dense;
pub mod error;
pub mod fenchel;
pub mod init;
pub mod layer;
pub mod loss;
pub mod loss_prox;
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
pub use sequential::{ForwardTrace, MlpView, ParamInfo, Sequential};
pub use train::loss_and_grad;

#[cfg(test)]
mod tests;
