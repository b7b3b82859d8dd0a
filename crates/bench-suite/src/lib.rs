//! # bench-suite
//!
//! Problems, data sets, metrics and the runner behind `cargo xtask compare`.
//!
//! This is the only library crate that reads files given by users, reads the clock for
//! reporting, and writes results. No other strata crate may depend on it.
//!
//! - [`data`]: the embedded digits set ([`data::digits_split`]: stratified 80/20 split,
//!   standardised with training statistics), digits pixels for NMF, seeded synthetic
//!   problems (teacher-student regression, spirals, blobs, low-rank NMF data with
//!   Poisson or Gamma noise, a piano-like power spectrogram via an STFT), and
//!   user-supplied files (MNIST-layout IDX, labelled numeric CSV) with errors that name
//!   the file and the line/column or byte offset.
//! - [`problems`]: the registry of named problems (architecture and loss or NMF rank and
//!   beta, sizes, applicable [`problems::SolverFamily`]s) with a seeded `build`.
//! - [`results`]: the versioned `results.json` schema (`schema_version: 2`, see
//!   `docs/RESULTS_SCHEMA.md`) and [`results::validate_results`].
//! - [`analysis`], [`stats`], [`report`], [`plots`], [`profile`]: per-instance target
//!   rule, medians with order-statistic intervals over seeds, the monotonicity check,
//!   `report.md` with a time-to-target table, a terminal summary table, SVG plots and
//!   Dolan–Moré performance profiles (plotters, SVG backend only).
//! - [`convert`]: from `solvers`' `Record`/`Status`/`RunOutcome` to the results types,
//!   and from the registry's activation/loss descriptions to `nets` types.
//! - [`outdir`]: a new, never-reused directory per run and atomic file writes.
//! - [`partial`]: run directories built as `.compare-…partial` and renamed into place
//!   when complete (removed on error, panic or Ctrl-C).
//! - [`runner`]: the comparison behind `cargo xtask compare`: the solver registry (one
//!   line per solver), budgets, equal-start runs through the `solvers` driver, and
//!   `runner::run(&CompareArgs)`, the entry point of the `strata-compare` binary.
//! - [`papers`]: `--suite papers`, each structured method in its paper's setup on
//!   Fashion-MNIST with gradient baselines, and the up-front memory estimate.
//! - [`classification`]: the confusion matrix and per-class accuracy of each
//!   classification run's final weights (`results.json`, a report section and
//!   `confusion/*.svg` heatmaps).
//! - [`memory`]: peak-memory measurement (a counting global allocator the binary
//!   installs; `VmHWM` from `/proc` as a process-wide fallback).
//!
//! Registering a solver for the comparison is one line in
//! `crates/bench-suite/src/runner/registry.rs` (`runner::solver_registry`), e.g.
//!
//! ```text
//! net_solver!("my-mm", LayerwiseMm, quick, "my MM method, defaults ...", |_| MyMmConfig::default()),
//! ```
//!
//! (display name, [`problems::SolverFamily`] variant, `quick` or `full`, description,
//! a serde config with `build::<T>()`; append `, |c, T| EXPR` to build it another way;
//! [`nmf_solver!`] for beta-NMF methods), plus one line in `runner/tune.rs`
//! ([`runner::tune::DECLARATIONS`]: what `--tune` searches and whether the method
//! promises a monotone decrease; a registry test requires it). See [`runner`] for the
//! details.
//!
//! Layout everywhere: samples are columns. Every random draw comes from
//! `ChaCha8Rng::seed_from_u64(seed)` or an RNG the caller passes.
#![warn(missing_docs)]

mod error;

pub mod analysis;
pub mod classification;
pub mod convert;
pub mod data;
pub mod memory;
pub mod outdir;
pub mod papers;
pub mod partial;
pub mod plots;
pub mod problems;
pub mod profile;
pub mod report;
pub mod results;
pub mod runner;
pub mod stats;

pub use error::BenchError;
