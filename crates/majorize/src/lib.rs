//! # majorize
//!
//! Surrogates (majorizers) of objectives and of blocks of their variables, built from
//! the structure that `nets` states, and a public checker of the majorization contract:
//! `g(x|y) >= f(x)`, `g(y|y) = f(y)`, `grad g(y|y) = grad f(y)`.
//!
//! This crate never records a tape for its own computations and must never depend on
//! `solvers` or `bench-suite`.
