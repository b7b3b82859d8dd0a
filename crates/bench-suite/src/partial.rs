//! Run directories built under a temporary name and renamed into place when complete.
//!
//! A comparison writes into `root/.<prefix>-YYYYMMDD-HHMMSS-<n>.partial` (hidden, and
//! never the name of a finished run) and [`PartialRunDir::finish`] renames it to
//! `root/<prefix>-YYYYMMDD-HHMMSS-<n>` once `results.json`, the plots and `report.md`
//! are all written. So a directory named like a result is always complete:
//! - a panic (unwinding) or an early error drops the [`PartialRunDir`], which removes
//!   it; when writing the outputs fails half-way, the runner [`PartialRunDir::keep`]s it
//!   under its partial name so that nothing already written is lost;
//! - SIGINT / Ctrl-C removes every live partial directory of the process, then exits
//!   with code 130, once [`install_interrupt_cleanup`] was called (the binary does);
//! - SIGKILL cannot be caught: the leftover keeps its `.…partial` name, which no reader
//!   takes for a result (delete it by hand).
//!
//! The number `n` is reserved by creating the partial directory (`create_dir` fails if
//! it exists) and skipped if the final name already exists, so two runs, even
//! concurrent ones, never share a name and an earlier result is never overwritten.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::BenchError;
use crate::outdir::{now_unix_s, timestamp_label};

/// Most suffixes tried before giving up on a unique name.
const MAX_ATTEMPTS: u32 = 10_000;

/// Partial directories alive in this process (removed by the SIGINT handler).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The suffix of a directory still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A run directory being written; see the module doc.
#[derive(Debug)]
pub struct PartialRunDir {
    partial: PathBuf,
    complete: PathBuf,
    finished: bool,
}

impl PartialRunDir {
    /// Reserves `root/<prefix>-<UTC now>-<n>` by creating its partial directory.
    pub fn create(root: &Path, prefix: &str) -> Result<Self, BenchError> {
        Self::create_at(root, prefix, now_unix_s() as u64)
    }

    /// [`PartialRunDir::create`] with an explicit Unix time (tests).
    pub fn create_at(root: &Path, prefix: &str, unix_s: u64) -> Result<Self, BenchError> {
        if prefix.is_empty() || prefix.contains(['/', '\\']) || prefix.starts_with('.') {
            return Err(BenchError::arg(
                "prefix",
                format!("must be a non-empty file name not starting with `.`, got `{prefix}`"),
            ));
        }
        std::fs::create_dir_all(root).map_err(|e| BenchError::io(root, e))?;
        let stamp = timestamp_label(unix_s);
        for n in 1..=MAX_ATTEMPTS {
            let name = format!("{prefix}-{stamp}-{n}");
            let partial = root.join(format!(".{name}{PARTIAL_SUFFIX}"));
            let complete = root.join(&name);
            match std::fs::create_dir(&partial) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(BenchError::io(partial, e)),
            }
            // Checked after the reservation: a run finishing concurrently under this
            // name has renamed its partial directory before we could create ours.
            if complete.exists() {
                let _ = std::fs::remove_dir(&partial);
                continue;
            }
            live().push(partial.clone());
            return Ok(PartialRunDir {
                partial,
                complete,
                finished: false,
            });
        }
        Err(BenchError::io(
            root,
            std::io::Error::other(format!(
                "no free name {prefix}-{stamp}-<n> after {MAX_ATTEMPTS} attempts"
            )),
        ))
    }

    /// Where to write now (the partial directory).
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// The name the directory will have once finished.
    pub fn final_path(&self) -> &Path {
        &self.complete
    }

    /// Leaves the directory under its partial name (not removed on drop) and returns
    /// its path: for outputs that failed half-way, so that what was written (e.g. a
    /// valid `results.json` when a plot failed) is not lost, yet never passes for a
    /// complete run.
    pub fn keep(mut self) -> PathBuf {
        self.finished = true;
        live().retain(|p| p != &self.partial);
        self.partial.clone()
    }

    /// Renames the directory to its final name and returns that path.
    pub fn finish(mut self) -> Result<PathBuf, BenchError> {
        if self.complete.exists() {
            return Err(BenchError::io(
                &self.complete,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "run directory exists"),
            ));
        }
        std::fs::rename(&self.partial, &self.complete)
            .map_err(|e| BenchError::io(&self.complete, e))?;
        self.finished = true;
        live().retain(|p| p != &self.partial);
        Ok(self.complete.clone())
    }
}

impl Drop for PartialRunDir {
    /// An unfinished directory (error, panic) is removed with its content.
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.partial);
            live().retain(|p| p != &self.partial);
        }
    }
}

/// Removes every live partial directory of this process (what the SIGINT handler does
/// before exiting). Returns how many were removed.
pub fn remove_live_partials() -> usize {
    let dirs = std::mem::take(&mut *live());
    dirs.iter()
        .filter(|d| std::fs::remove_dir_all(d).is_ok())
        .count()
}

/// Installs a SIGINT (Ctrl-C) handler that removes the live partial directories and
/// exits with status 130 (128 + SIGINT). Call once, from a binary's `main`.
///
/// Uses the `ctrlc` crate (see docs/ARCHITECTURE.md: the handler runs on its own
/// thread, woken through a self-pipe, so cleanup is not limited to async-signal-safe
/// calls).
pub fn install_interrupt_cleanup() -> Result<(), BenchError> {
    ctrlc::set_handler(|| {
        let n = remove_live_partials();
        eprintln!("interrupted: removed {n} partial run director(y/ies)");
        std::process::exit(130);
    })
    .map_err(|e| BenchError::io("<SIGINT handler>", std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live-directory list is process-wide: these tests must not interleave.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn root(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("strata-partial-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn finished_directory_is_renamed_and_dropped_one_is_removed() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = root("fin");
        let a = PartialRunDir::create_at(&r, "compare", 1_700_000_000).unwrap();
        let name = a.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, ".compare-20231114-221320-1.partial");
        std::fs::write(a.path().join("results.json"), b"{}").unwrap();
        let done = a.finish().unwrap();
        assert_eq!(done, r.join("compare-20231114-221320-1"));
        assert!(done.join("results.json").is_file());
        // The next run at the same second skips the finished name.
        let b = PartialRunDir::create_at(&r, "compare", 1_700_000_000).unwrap();
        assert_eq!(b.final_path(), r.join("compare-20231114-221320-2"));
        let bp = b.path().to_path_buf();
        std::fs::write(bp.join("results.json"), b"{}").unwrap();
        drop(b); // error path: nothing that looks like a result remains
        assert!(!bp.exists());
        let names: Vec<_> = std::fs::read_dir(&r)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("compare-20231114-221320-1")]
        );
        let _ = std::fs::remove_dir_all(&r);
    }

    #[test]
    fn interrupt_cleanup_removes_live_partials_only() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = root("int");
        let a = PartialRunDir::create_at(&r, "compare", 1).unwrap();
        let p = a.path().to_path_buf();
        assert!(remove_live_partials() >= 1);
        assert!(!p.exists());
        assert!(a.finish().is_err()); // nothing to rename: an error, not a result
        assert!(PartialRunDir::create_at(&r, ".hidden", 1).is_err());
        let k = PartialRunDir::create_at(&r, "compare", 1).unwrap();
        let kept = k.keep();
        assert!(kept.is_dir() && kept.to_string_lossy().ends_with(".partial"));
        assert_eq!(
            remove_live_partials(),
            0,
            "a kept directory is not removed on Ctrl-C"
        );
        let _ = std::fs::remove_dir_all(&r);
    }
}
