//! # autodiff
//!
//! A reverse-mode automatic-differentiation tape over dense matrices (nalgebra
//! [`nalgebra::DMatrix`]), generic over `f32` and `f64`, with every matrix product going
//! through one strided GEMM kernel.
//!
//! This crate must never depend on any other strata crate: it knows nothing of layers,
//! losses as training objectives, solvers or data sets.

mod real;

pub use real::Real;
