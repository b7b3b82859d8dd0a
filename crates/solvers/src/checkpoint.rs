//! Checkpoints: a versioned snapshot of a run, and where it is stored.
//!
//! A resumed run produces the same trace as one that never stopped, bit for bit apart
//! from wall times: the snapshot holds the iteration, the counters, the trace so far,
//! the RNG state, the solver state, the problem parameters and the divergence
//! reference value. (JSON floats round-trip exactly: serde_json's `float_roundtrip`
//! feature is enabled by this crate.)

use std::path::PathBuf;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Counters, SolverError, Trace};

/// Version 1 of the checkpoint format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointV1 {
    /// Always 1 for this struct.
    pub version: u32,
    /// Solver name (checked on resume).
    pub solver: String,
    /// Steps taken.
    pub iteration: u64,
    /// Counters after `iteration` steps.
    pub counters: Counters,
    /// The trace so far.
    pub trace: Trace,
    /// The run's RNG state.
    pub rng: ChaCha8Rng,
    /// [`crate::Solver::save_state`].
    pub solver_state: serde_json::Value,
    /// [`crate::Problem::save_params`].
    pub problem_params: serde_json::Value,
    /// Objective at iteration 0 (reference of the divergence rule).
    pub initial_objective: f64,
    /// Cumulative solver wall time so far, seconds.
    pub wall_time_s: f64,
}

/// The current checkpoint format version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Where checkpoints go. Holds at most the latest one.
pub trait CheckpointStore {
    /// Stores `cp`, replacing any previous checkpoint.
    fn save(&mut self, cp: &CheckpointV1) -> Result<(), SolverError>;
    /// The latest checkpoint, if any.
    fn load(&self) -> Result<Option<CheckpointV1>, SolverError>;

    /// Called by the driver before a fresh (not resumed) run first saves: `Err` if that
    /// save would replace something a user produced earlier. The default protects
    /// nothing (in-memory stores belong to the caller's process).
    fn check_fresh(&self) -> Result<(), SolverError> {
        Ok(())
    }
}

impl<S: CheckpointStore + ?Sized> CheckpointStore for &mut S {
    fn save(&mut self, cp: &CheckpointV1) -> Result<(), SolverError> {
        (**self).save(cp)
    }
    fn load(&self) -> Result<Option<CheckpointV1>, SolverError> {
        (**self).load()
    }
    fn check_fresh(&self) -> Result<(), SolverError> {
        (**self).check_fresh()
    }
}

/// Keeps the latest checkpoint in memory (tests, in-process restarts).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// The latest checkpoint.
    pub latest: Option<CheckpointV1>,
    /// Number of saves so far.
    pub saves: u64,
}

impl CheckpointStore for MemoryStore {
    fn save(&mut self, cp: &CheckpointV1) -> Result<(), SolverError> {
        self.latest = Some(cp.clone());
        self.saves += 1;
        Ok(())
    }
    fn load(&self) -> Result<Option<CheckpointV1>, SolverError> {
        Ok(self.latest.clone())
    }
}

/// Writes the latest checkpoint as JSON to one file, atomically
/// ([`nets::persist::write_atomic`]: a temporary file of a fresh name
/// `.<name>.tmp-<pid>-<n>` in the same directory, created exclusively, flushed to disk,
/// then renamed over the checkpoint), so a crash never leaves a half-written checkpoint
/// and no other file is ever touched.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The checkpoint file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl CheckpointStore for FileStore {
    fn save(&mut self, cp: &CheckpointV1) -> Result<(), SolverError> {
        // `nets::persist::write_atomic`: a fresh, exclusively created temporary name in the
        // same directory, flushed to disk, then renamed over the checkpoint.
        let json = serde_json::to_string(cp)?;
        nets::persist::write_atomic(&self.path, &json, true)
            .map_err(|e| SolverError::Checkpoint(format!("writing the checkpoint: {e}")))
    }

    /// The checkpoint in the file, `None` if there is no file; an error if the path is
    /// not a regular file (a device or FIFO such as `/dev/zero` would be read without
    /// end), cannot be read, or does not hold a version-1 checkpoint.
    fn load(&self) -> Result<Option<CheckpointV1>, SolverError> {
        let bytes = match nets::persist::read_regular(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SolverError::Checkpoint(format!(
                    "reading {}: {e}",
                    self.path.display()
                )));
            }
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        match v.get("version").and_then(|x| x.as_u64()) {
            Some(1) => Ok(Some(serde_json::from_value(v)?)),
            other => Err(SolverError::Checkpoint(format!(
                "{}: unsupported checkpoint version {other:?} (this build reads 1)",
                self.path.display()
            ))),
        }
    }

    /// A fresh run refuses a path where anything exists (an earlier run's checkpoint, or
    /// any other file given by mistake): its first save would replace it. Resuming
    /// ([`crate::Driver::resume`]) continues such a checkpoint instead.
    fn check_fresh(&self) -> Result<(), SolverError> {
        if std::fs::symlink_metadata(&self.path).is_ok() {
            return Err(SolverError::Checkpoint(format!(
                "{} already exists and a fresh run would replace it: resume from it \
                 (Driver::resume(true)), or remove it or choose another path",
                self.path.display()
            )));
        }
        Ok(())
    }
}
