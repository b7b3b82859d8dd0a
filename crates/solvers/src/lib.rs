//! # solvers
//!
//! One solver interface for every algorithm family (gradient baselines, MM, ADMM,
//! lifted/penalty/block-coordinate methods), a driver that owns the loop, and fair
//! accounting of every run.
//!
//! This crate does no file I/O except through checkpoint and observer implementations
//! that a caller attaches, and must never depend on `bench-suite`.
