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
    /// Solver name (as the solver reports it).
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

fn schema_err(path: &str, message: impl Into<String>) -> BenchError {
    BenchError::Schema {
        path: path.to_string(),
        message: message.into(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Num,
    UInt,
    Bool,
    Obj,
    Arr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Num => "a number",
            Kind::UInt => "a nonnegative integer",
            Kind::Bool => "a boolean",
            Kind::Obj => "an object",
            Kind::Arr => "an array",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::Num => v.is_number(),
            Kind::UInt => v.is_u64(),
            Kind::Bool => v.is_boolean(),
            Kind::Obj => v.is_object(),
            Kind::Arr => v.is_array(),
        }
    }
}

/// Checks field `key` of object `obj` (at `path`): present (unless `nullable` allows
/// absence/null) and of kind `kind`.
fn field<'a>(
    obj: &'a Value,
    path: &str,
    key: &str,
    kind: Kind,
    nullable: bool,
) -> Result<Option<&'a Value>, BenchError> {
    let p = format!("{path}/{key}");
    match obj.get(key) {
        None | Some(Value::Null) if nullable => Ok(None),
        None => Err(schema_err(
            &p,
            format!("missing required field (must be {})", kind.name()),
        )),
        Some(v) if kind.matches(v) => Ok(Some(v)),
        Some(v) => Err(schema_err(
            &p,
            format!(
                "must be {}{}, found {v}",
                kind.name(),
                if nullable { " or null" } else { "" }
            ),
        )),
    }
}

fn req<'a>(obj: &'a Value, path: &str, key: &str, kind: Kind) -> Result<&'a Value, BenchError> {
    field(obj, path, key, kind, false)?.ok_or_else(|| schema_err(path, "unreachable"))
}

fn validate_metadata(m: &Value) -> Result<(), BenchError> {
    let p = "/metadata";
    req(m, p, "strata_version", Kind::Str)?;
    field(m, p, "git_commit", Kind::Str, true)?;
    let dtype = req(m, p, "dtype", Kind::Str)?;
    if dtype != "f32" && dtype != "f64" {
        return Err(schema_err(
            "/metadata/dtype",
            format!("must be \"f32\" or \"f64\", found {dtype}"),
        ));
    }
    req(m, p, "threads", Kind::UInt)?;
    let seeds = req(m, p, "seeds", Kind::Arr)?;
    for (i, s) in seeds.as_array().into_iter().flatten().enumerate() {
        if !s.is_u64() {
            return Err(schema_err(
                &format!("/metadata/seeds/{i}"),
                "must be a nonnegative integer",
            ));
        }
    }
    let b = req(m, p, "budget", Kind::Obj)?;
    field(b, "/metadata/budget", "max_epochs", Kind::Num, true)?;
    field(b, "/metadata/budget", "max_wall_time_s", Kind::Num, true)?;
    field(b, "/metadata/budget", "max_iterations", Kind::UInt, true)?;
    let cmd = req(m, p, "command_line", Kind::Arr)?;
    for (i, s) in cmd.as_array().into_iter().flatten().enumerate() {
        if !s.is_string() {
            return Err(schema_err(
                &format!("/metadata/command_line/{i}"),
                "must be a string",
            ));
        }
    }
    req(m, p, "started_unix_s", Kind::Num)?;
    req(m, p, "memory_method", Kind::Str)?;
    if let Some(k) = field(m, p, "eval_every_passes", Kind::Num, true)?
        && !k.as_f64().is_some_and(|k| k > 0.0)
    {
        return Err(schema_err(
            "/metadata/eval_every_passes",
            format!("must be a number > 0, found {k}"),
        ));
    }
    if let Some(pb) = field(m, p, "problem_budgets", Kind::Obj, true)? {
        for (name, b) in pb.as_object().into_iter().flatten() {
            let bp = format!("/metadata/problem_budgets/{name}");
            if !b.is_object() {
                return Err(schema_err(&bp, "must be an object"));
            }
            field(b, &bp, "max_epochs", Kind::Num, true)?;
            field(b, &bp, "max_wall_time_s", Kind::Num, true)?;
            field(b, &bp, "max_iterations", Kind::UInt, true)?;
        }
    }
    Ok(())
}

fn validate_status(s: &Value, path: &str) -> Result<(), BenchError> {
    let kind = req(s, path, "kind", Kind::Str)?;
    match kind.as_str().unwrap_or_default() {
        "completed" => field(s, path, "reason", Kind::Str, true).map(|_| ()),
        "budget_exhausted" => field(s, path, "which", Kind::Str, true).map(|_| ()),
        "diverged" => req(s, path, "reason", Kind::Str).map(|_| ()),
        "failed" => req(s, path, "error", Kind::Str).map(|_| ()),
        "skipped" => req(s, path, "reason", Kind::Str).map(|_| ()),
        other => Err(schema_err(
            &format!("{path}/kind"),
            format!(
                "unknown status `{other}` (completed, budget_exhausted, diverged, failed, skipped)"
            ),
        )),
    }
}

fn validate_record(r: &Value, path: &str) -> Result<(), BenchError> {
    if !r.is_object() {
        return Err(schema_err(path, "a trace record must be an object"));
    }
    req(r, path, "iteration", Kind::UInt)?;
    req(r, path, "epochs", Kind::Num)?;
    field(r, path, "samples_seen", Kind::UInt, true)?;
    req(r, path, "wall_time_s", Kind::Num)?;
    if r.get("objective").is_none() {
        return Err(schema_err(
            &format!("{path}/objective"),
            "missing required field (a number or null)",
        ));
    }
    field(r, path, "objective", Kind::Num, true)?;
    for key in [
        "surrogate",
        "train_accuracy",
        "test_objective",
        "test_accuracy",
    ] {
        field(r, path, key, Kind::Num, true)?;
    }
    for key in ["forward", "backward", "inner_solves"] {
        req(r, path, key, Kind::UInt)?;
    }
    if let Some(extras) = field(r, path, "extras", Kind::Obj, true)? {
        for (k, v) in extras.as_object().into_iter().flatten() {
            if !(v.is_number() || v.is_null()) {
                return Err(schema_err(
                    &format!("{path}/extras/{k}"),
                    "must be a number or null",
                ));
            }
        }
    }
    Ok(())
}

fn validate_run(run: &Value, path: &str) -> Result<(), BenchError> {
    if !run.is_object() {
        return Err(schema_err(path, "a run must be an object"));
    }
    req(run, path, "problem", Kind::Str)?;
    req(run, path, "solver", Kind::Str)?;
    req(run, path, "seed", Kind::UInt)?;
    let status = req(run, path, "status", Kind::Obj)?;
    validate_status(status, &format!("{path}/status"))?;
    let trace = req(run, path, "trace", Kind::Arr)?;
    let mut last_iter = None;
    for (i, rec) in trace.as_array().into_iter().flatten().enumerate() {
        let rp = format!("{path}/trace/{i}");
        validate_record(rec, &rp)?;
        let it = rec["iteration"].as_u64();
        if last_iter.is_some() && it <= last_iter {
            return Err(schema_err(
                &format!("{rp}/iteration"),
                "iterations must increase",
            ));
        }
        last_iter = it;
    }
    field(run, path, "peak_memory_bytes", Kind::UInt, true)?;
    req(run, path, "total_wall_time_s", Kind::Num)?;
    req(run, path, "hyperparameters", Kind::Obj)?;
    let tuned = req(run, path, "tuned", Kind::Bool)?;
    field(run, path, "trained_objective", Kind::Str, true)?;
    let tuning = field(run, path, "tuning", Kind::Obj, true)?;
    if let Some(t) = tuning {
        validate_tuning(t, &format!("{path}/tuning"))?;
    }
    if tuned == &Value::Bool(true) && tuning.is_none() {
        return Err(schema_err(
            &format!("{path}/tuning"),
            "a run with `tuned: true` must record its search (`tuning`)",
        ));
    }
    Ok(())
}

fn validate_tuning(t: &Value, path: &str) -> Result<(), BenchError> {
    let params = req(t, path, "parameters", Kind::Arr)?;
    for (i, p) in params.as_array().into_iter().flatten().enumerate() {
        if !p.is_string() {
            return Err(schema_err(
                &format!("{path}/parameters/{i}"),
                "must be a string",
            ));
        }
    }
    req(t, path, "scale_factors", Kind::Arr)?;
    let grid = req(t, path, "grid", Kind::Arr)?;
    let scores = req(t, path, "validation_objectives", Kind::Arr)?;
    req(t, path, "candidate_status", Kind::Arr)?;
    let chosen = req(t, path, "chosen_index", Kind::UInt)?;
    req(t, path, "chosen", Kind::Obj)?;
    for key in [
        "validation_fraction",
        "wall_time_s",
        "solver_time_s",
        "data_passes",
    ] {
        req(t, path, key, Kind::Num)?;
    }
    req(t, path, "selection", Kind::Str)?;
    field(t, path, "not_tuned_reason", Kind::Str, true)?;
    for key in ["extended", "at_edge"] {
        if let Some(v) = field(t, path, key, Kind::Str, true)?
            && !matches!(v.as_str(), Some("low" | "high"))
        {
            return Err(schema_err(
                &format!("{path}/{key}"),
                "must be \"low\" or \"high\"",
            ));
        }
    }
    let n = grid.as_array().map_or(0, Vec::len);
    if scores.as_array().map_or(0, Vec::len) != n {
        return Err(schema_err(
            &format!("{path}/validation_objectives"),
            "must have one entry per grid point",
        ));
    }
    if n > 0 && chosen.as_u64().is_some_and(|c| c as usize >= n) {
        return Err(schema_err(
            &format!("{path}/chosen_index"),
            "must index a grid point",
        ));
    }
    Ok(())
}

/// Checks that `json` is a results document of [`SCHEMA_VERSION`]: every required field
/// present with its type, status kinds known, trace iterations increasing. The error
/// names the offending path (e.g. `/runs/2/trace/5/forward`).
pub fn validate_results(json: &Value) -> Result<(), BenchError> {
    if !json.is_object() {
        return Err(schema_err("", "the document must be a JSON object"));
    }
    let v = req(json, "", "schema_version", Kind::UInt)?;
    if v.as_u64() != Some(u64::from(SCHEMA_VERSION)) {
        return Err(schema_err(
            "/schema_version",
            format!("this reader understands version {SCHEMA_VERSION}, found {v}"),
        ));
    }
    validate_metadata(req(json, "", "metadata", Kind::Obj)?)?;
    let runs = req(json, "", "runs", Kind::Arr)?;
    for (i, run) in runs.as_array().into_iter().flatten().enumerate() {
        validate_run(run, &format!("/runs/{i}"))?;
    }
    Ok(())
}
