//! # bench-suite
//!
//! Problems, data sets, metrics and the runner behind `cargo xtask compare`.
//!
//! This is the only library crate that reads files given by users, reads the clock for
//! reporting, and writes results. No other strata crate may depend on it.
