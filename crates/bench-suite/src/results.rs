//! The versioned results document (`results.json`) of a comparison run, and its
//! validator. The schema is documented in `docs/RESULTS_SCHEMA.md`.
//!
//! These are mirror types at the boundary: independent of the internal types of
//! `solvers` (the runner converts), so the file format changes only on purpose.
//!
//! Non-finite floats (a diverged objective) are written as JSON `null` and read back as
//! NaN ([`finite_or_null`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::BenchError;

mod validate;
pub use validate::validate_results;

/// The schema version this crate writes and reads. Bump it on any change that an older
/// reader would misread (renamed/removed field, changed unit or meaning); adding an
/// optional field does not bump it.
pub const SCHEMA_VERSION: u32 = 2;

/// Serde helpers writing a non-finite `f64` as `null` and reading `null` as NaN.
pub mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v`, or `null` if it is NaN or infinite.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    /// Reads a number, or `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Serde helpers for a name -> `f64` map whose non-finite values are written as `null`
/// and read back as NaN.
pub mod finite_or_null_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the map, non-finite values as `null`.
    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, v.is_finite().then_some(*v))))
    }

    /// Reads the map, `null` values as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let m = BTreeMap::<String, Option<f64>>::deserialize(d)?;
        Ok(m.into_iter()
            .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
            .collect())
    }
}

/// The whole results document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// How the comparison was run.
    pub metadata: RunMetadata,
    /// One entry per (problem, solver, seed).
    pub runs: Vec<RunResult>,
}

/// Budget applied to every run (whichever limit is hit first stops it).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct BudgetSpec {
    /// Maximum data passes (samples seen / N).
    pub max_epochs: Option<f64>,
    /// Maximum solver wall time in seconds (evaluation excluded).
    pub max_wall_time_s: Option<f64>,
    /// Maximum iterations (solver steps).
    pub max_iterations: Option<u64>,
}

/// Metadata of one comparison run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMetadata {
    /// `CARGO_PKG_VERSION` of bench-suite (the workspace version).
    pub strata_version: String,
    /// `git rev-parse HEAD` at run time, if obtainable.
    pub git_commit: Option<String>,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// Threads given to each run.
    pub threads: usize,
    /// Seeds run for every (problem, solver).
    pub seeds: Vec<u64>,
    /// The budget of every run.
    pub budget: BudgetSpec,
    /// The command line, program name first.
    pub command_line: Vec<String>,
    /// Start of the comparison, seconds since the Unix epoch (UTC).
    pub started_unix_s: f64,
    /// How `peak_memory_bytes` was measured: `"counting_allocator"`, `"vmhwm"` or
    /// `"none"`.
    pub memory_method: String,
    /// The budget of every run of each problem (optional; absent in older files). When
    /// present, it is what each run of that problem got; `budget` then holds only the
    /// command-line overrides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub problem_budgets: BTreeMap<String, BudgetSpec>,
    /// Number of MPI ranks the training data were sharded over (`--distributed`); 1 for
    /// a single-process run (absent in older files).
    #[serde(default = "one_rank")]
    pub ranks: usize,
    /// `--eval-every`: records only after steps crossing a multiple of this many data
    /// passes (plus iteration 0, convergence and the end of each run); absent when
    /// every step was evaluated (and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every_passes: Option<f64>,
}

fn one_rank() -> usize {
    1
}

impl RunMetadata {
    /// Metadata of a comparison starting now: the crate version, [`git_commit`], the
    /// process's command line, the current time and [`crate::memory::memory_method`].
    pub fn collect(
        dtype: crate::problems::Dtype,
        threads: usize,
        seeds: Vec<u64>,
        budget: BudgetSpec,
    ) -> Self {
        Self {
            strata_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git_commit(),
            dtype: dtype.name().to_string(),
            threads,
            seeds,
            budget,
            command_line: std::env::args().collect(),
            started_unix_s: crate::outdir::now_unix_s(),
            memory_method: crate::memory::memory_method().to_string(),
            problem_budgets: BTreeMap::new(),
            ranks: 1,
            eval_every_passes: None,
        }
    }
}

/// `git rev-parse HEAD` run in the current directory, if git is installed and this is a
/// work tree (`None` otherwise; never an error).
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (s.len() >= 7 && s.chars().all(|c| c.is_ascii_hexdigit())).then_some(s)
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunStatus {
    /// The solver's own stopping rule fired, or an observer stopped the run
    /// (early stopping).
    Completed {
        /// The solver's or observer's reason, if given.
        #[serde(default)]
        reason: Option<String>,
    },
    /// A budget limit stopped the run.
    BudgetExhausted {
        /// Which limit (`"epochs"`, `"wall_time"`, `"iterations"`, `"target_objective"`),
        /// if known.
        #[serde(default)]
        which: Option<String>,
    },
    /// The objective became non-finite or blew up.
    Diverged {
        /// What was detected.
        reason: String,
    },
    /// The solver returned an error.
    Failed {
        /// The error message.
        error: String,
    },
    /// The run did not happen (missing data, family not applicable, ...).
    Skipped {
        /// Why.
        reason: String,
    },
}

impl RunStatus {
    /// A short label for tables: `completed`, `budget`, `diverged`, `failed`, `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Completed { .. } => "completed",
            RunStatus::BudgetExhausted { .. } => "budget",
            RunStatus::Diverged { .. } => "diverged",
            RunStatus::Failed { .. } => "failed",
            RunStatus::Skipped { .. } => "skipped",
        }
    }
}

/// One trace record: the state after `iteration` solver steps (record 0 = the initial
/// point, before any step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Solver steps done.
    pub iteration: u64,
    /// Data passes done: samples seen / N.
    pub epochs: f64,
    /// Samples touched so far (optional; `epochs = samples_seen / N`).
    #[serde(default)]
    pub samples_seen: Option<u64>,
    /// Cumulative solver wall time in seconds (evaluation excluded).
    pub wall_time_s: f64,
    /// True training objective of the current parameters (null if non-finite).
    #[serde(with = "finite_or_null")]
    pub objective: f64,
    /// Surrogate / penalised / augmented value the solver reports, if any.
    pub surrogate: Option<f64>,
    /// Training accuracy in [0, 1], for classification.
    pub train_accuracy: Option<f64>,
    /// Test objective, if there is a test set.
    pub test_objective: Option<f64>,
    /// Test accuracy in [0, 1], for classification with a test set.
    pub test_accuracy: Option<f64>,
    /// Cumulative forward passes (each over one batch).
    pub forward: u64,
    /// Cumulative backward passes.
    pub backward: u64,
    /// Cumulative inner solves (linear systems, prox maps, line-search trials).
    pub inner_solves: u64,
    /// Solver-specific scalars (residuals, rho, step size, ...); non-finite as `null`.
    #[serde(default, with = "finite_or_null_map")]
    pub extras: BTreeMap<String, f64>,
}

/// The result of one (problem, solver, seed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Problem name (registry name).
    pub problem: String,
    /// Solver name: the runner's registry display name (e.g. `adam`); the solver's own
    /// name with its hyperparameters is `hyperparameters["solver"]`.
    pub solver: String,
    /// Seed of data and initial weights.
    pub seed: u64,
    /// How the run ended.
    pub status: RunStatus,
    /// Trace, in iteration order (empty for skipped runs).
    pub trace: Vec<TraceRecord>,
    /// Peak heap bytes during the run (see [`RunMetadata::memory_method`]), if measured.
    pub peak_memory_bytes: Option<u64>,
    /// Total wall time of the run in seconds, evaluations included.
    pub total_wall_time_s: f64,
    /// Hyperparameters used (name -> JSON value).
    pub hyperparameters: BTreeMap<String, Value>,
    /// Whether the hyperparameters were tuned (by the `--tune` search on this problem
    /// and seed, see `tuning`) rather than defaults.
    pub tuned: bool,
    /// The `--tune` search behind this run (absent without `--tune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningRecord>,
    /// Set when the solver minimises another objective than the problem's (e.g. Taylor
    /// ADMM's binary hinge output on a cross-entropy problem): what it trains. The
    /// trace still holds the problem's true objective of its weights; the report shows
    /// the row apart and keeps it out of targets, rankings and profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_objective: Option<String>,
    /// Classification runs: confusion matrix and per-class accuracy of the final weights
    /// (see [`crate::classification`]); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<crate::classification::ClassificationMetrics>,
}

/// How a reported run's hyperparameters were chosen (see `bench_suite::runner::tune`) (`results.json`: `runs[i].tuning`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningRecord {
    /// Tuned parameters (JSON pointers into `hyperparameters`); empty when the solver has
    /// nothing to tune.
    pub parameters: Vec<String>,
    /// Scale factors of the grid (each multiplies every parameter's default).
    pub scale_factors: Vec<f64>,
    /// The candidates: for each grid point, parameter -> value.
    pub grid: Vec<std::collections::BTreeMap<String, f64>>,
    /// Final validation objective of each candidate (null: diverged, failed or
    /// non-finite).
    pub validation_objectives: Vec<Option<f64>>,
    /// Status label of each candidate run (`budget`, `diverged`, ...).
    pub candidate_status: Vec<String>,
    /// Index of the chosen candidate in `grid`.
    pub chosen_index: usize,
    /// The chosen values, parameter -> value.
    pub chosen: std::collections::BTreeMap<String, f64>,
    /// Fraction of the training set held out for validation.
    pub validation_fraction: f64,
    /// The selection rule, in words.
    pub selection: String,
    /// Wall time of the whole search (every candidate, evaluations included), seconds.
    pub wall_time_s: f64,
    /// Solver time of the search (sum of the candidates' final solver times), seconds.
    pub solver_time_s: f64,
    /// Data passes of the search, in passes over the FULL training set.
    pub data_passes: f64,
    /// Why nothing was tuned, when `parameters` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_tuned_reason: Option<String>,
    /// `"low"` or `"high"` when the first choice was at that edge of the grid and the
    /// search was extended once beyond it (`runner::tune`, "Edges"): the extra candidates
    /// are appended to `grid`, `scale_factors`, `validation_objectives` and
    /// `candidate_status`, and counted in the search's cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended: Option<String>,
    /// `"low"` or `"high"` when the final choice is still the smallest or largest scale
    /// factor tried: the optimum was not bracketed by the search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_edge: Option<String>,
}

impl RunResult {
    /// A run that did not happen: empty trace, no memory, no hyperparameters.
    pub fn skipped(problem: &str, solver: &str, seed: u64, reason: impl Into<String>) -> Self {
        Self {
            problem: problem.to_string(),
            solver: solver.to_string(),
            seed,
            status: RunStatus::Skipped {
                reason: reason.into(),
            },
            trace: Vec::new(),
            peak_memory_bytes: None,
            total_wall_time_s: 0.0,
            hyperparameters: BTreeMap::new(),
            tuned: false,
            tuning: None,
            trained_objective: None,
            classification: None,
        }
    }

    /// The last trace record, if any.
    pub fn last(&self) -> Option<&TraceRecord> {
        self.trace.last()
    }
}

impl ResultsFile {
    /// An empty document of the current [`SCHEMA_VERSION`].
    pub fn new(metadata: RunMetadata) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            metadata,
            runs: Vec::new(),
        }
    }

    /// Serialises to pretty JSON text.
    pub fn to_json_string(&self) -> Result<String, BenchError> {
        serde_json::to_string_pretty(self).map_err(|source| BenchError::Json {
            context: "writing results".into(),
            source,
        })
    }

    /// Parses and validates a results document ([`validate_results`] first, so errors
    /// name the offending field).
    pub fn from_json_str(text: &str) -> Result<Self, BenchError> {
        let value: Value = serde_json::from_str(text).map_err(|source| BenchError::Json {
            context: "parsing results".into(),
            source,
        })?;
        validate_results(&value)?;
        serde_json::from_value(value).map_err(|source| BenchError::Json {
            context: "reading results".into(),
            source,
        })
    }
}
