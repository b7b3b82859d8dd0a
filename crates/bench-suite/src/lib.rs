//! # bench-suite
//!
//! Problems, data sets, metrics and the runner behind `cargo xtask compare`.
//!
//! This is the only library crate that reads files given by users, reads the clock for
//! reporting, and writes results. No other strata crate may depend on it.

mod error;

pub mod analysis;
pub mod data;
pub mod memory;
pub mod outdir;
pub mod plots;
pub mod problems;
pub mod report;
pub mod results;

pub use error::BenchError;
