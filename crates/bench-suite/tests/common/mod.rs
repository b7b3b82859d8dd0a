//! Shared test helpers.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory under the system temp dir, unique per process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "strata-bench-{tag}-{}-{nanos}-{k}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The outcomes of a class test's runs: a panic or a failed check is a failure, a typed
/// error is printed and counted as neither.
#[derive(Default)]
pub struct Tally {
    runs: usize,
    completed: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Runs `f`, catching a panic. `f` returns `Ok(None)` when the run completed and
    /// passed its check, `Ok(Some(why))` when it completed and failed it, and `Err` with
    /// the text of a typed error.
    pub fn run(&mut self, what: &str, f: impl FnOnce() -> Result<Option<String>, String>) {
        self.runs += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Err(_) => self.failures.push(format!("{what}: panicked")),
            Ok(Ok(Some(why))) => self.failures.push(format!("{what}: {why}")),
            Ok(Ok(None)) => self.completed += 1,
            Ok(Err(e)) => eprintln!("{what}: typed error: {e}"),
        }
    }

    /// Asserts at least `min_runs` runs and no failure (printing the counts).
    pub fn assert_clean(&self, min_runs: usize) {
        eprintln!(
            "{} of {} runs completed, the rest ended with typed errors",
            self.completed, self.runs
        );
        assert!(self.runs >= min_runs, "only {} runs", self.runs);
        assert!(
            self.failures.is_empty(),
            "{} of {} runs failed:\n{}",
            self.failures.len(),
            self.runs,
            self.failures.join("\n")
        );
    }
}
