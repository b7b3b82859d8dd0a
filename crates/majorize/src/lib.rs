//! # majorize
//!
//! Surrogates (majorizers) of objectives and of blocks of their variables, built from
//! their structure, and a public checker of the majorization contract:
//! `g(x|y) >= f(x)`, `g(y|y) = f(y)`, `grad g(y|y) = grad f(y)` ([`surrogate`], [`check`]).
//!
//! What is here:
//! - [`surrogate`]: the traits [`Objective`], [`Surrogate`], [`SurrogateBuilder`], and the
//!   generic inner solve for surrogates without a closed-form minimiser.
//! - [`check`]: [`check_surrogate`], which samples anchors and points and reports the
//!   worst violation of each condition.
//! - [`quadratic`]: curvature bounds (descent lemma; least squares, logistic 1/4,
//!   softmax cross-entropy Böhning) and [`last_layer`]: the closed-form last-layer MM
//!   steps they give.
//! - [`beta`]: the beta-divergence, its Févotte-Idier auxiliary function, MM and ME
//!   factors; [`nmf`]: beta-NMF multiplicative updates (MM, heuristic, ME, penalties,
//!   a scikit-learn-exact mode) on matrices with preallocated workspaces.
//! - [`rules`]: Jensen, tangent of a concave term, AM-GM, and the operations that
//!   preserve majorization (sum, positive scaling, affine composition, block-separable).
//! - [`agd`]: the AGD majorizer of Bernstein et al. (2023) with its assumptions, deep
//!   relative trust, and the AGD step as pure functions.
//! - [`enclosure`]: certified degree-2 Taylor enclosures of a network's whole training
//!   objective along k directions on a trust region ([`enclose`], [`QuadraticEnclosure`],
//!   [`EnclosureSurrogate`]) and [`apply_step`], the one way to write a certified step;
//!   the rules and the rounding argument are in `docs/MAJORIZE.md`.
//! - [`root`]: the safeguarded Newton / bisection scalar root finder of the beta-NMF
//!   factors, with its tolerance [`root::ROOT_TOL`].
//!
//! This crate never records a tape for its own computations (everything is plain
//! nalgebra arithmetic) and never depends on `solvers` or `bench-suite`: solvers call
//! these pure functions.
#![warn(missing_docs)]

pub mod agd;
pub mod beta;
pub mod check;
pub mod enclosure;
mod error;
pub mod last_layer;
pub mod nmf;
mod prod;
pub mod quadratic;
pub mod root;
pub mod rules;
pub mod surrogate;
mod validate;

pub use check::{CheckConfig, CheckReport, Condition, Violation, check_surrogate};
pub use enclosure::{
    EnclosureRequest, EnclosureSurrogate, EnclosureWorkspace, QuadraticEnclosure, apply_step,
    enclose, enclose_with,
};
pub use error::{MajorizeError, Result};
pub use surrogate::{InnerSolve, Minimizer, MinimizerKind, Objective, Surrogate, SurrogateBuilder};

/// The largest number of entries this crate allocates in one buffer from a caller-given
/// size (1e9, 8 GB in f64; defined as `nets::MAX_MLP_PARAMS`, so the workspace's size
/// caps are one value): larger requests get [`MajorizeError::TooLarge`] before anything
/// is allocated.
pub const MAX_ENTRIES: usize = nets::MAX_MLP_PARAMS;

/// The traits and the checker, for `use majorize::prelude::*`.
pub mod prelude {
    pub use crate::check::{CheckConfig, CheckReport, Condition, check_surrogate};
    pub use crate::surrogate::{
        InnerSolve, Minimizer, MinimizerKind, Objective, Surrogate, SurrogateBuilder,
    };
}

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
