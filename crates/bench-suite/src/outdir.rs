//! Output directories that never overwrite an earlier run, and atomic file writes.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::BenchError;

/// Default root under which each comparison writes its own directory.
pub const DEFAULT_OUT_ROOT: &str = "results";

/// Most suffixes tried before giving up on a unique directory name.
const MAX_ATTEMPTS: u32 = 10_000;

/// Civil UTC date and time `(year, month, day, hour, minute, second)` of a Unix time
/// (days-to-civil conversion of the proleptic Gregorian calendar).
pub fn utc_datetime(unix_s: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// `YYYYMMDD-HHMMSS` (UTC) of a Unix time.
pub fn timestamp_label(unix_s: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_datetime(unix_s);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Creates a NEW directory `root/<prefix>-YYYYMMDD-HHMMSS-<n>` (UTC now; n = 1, 2, ...
/// the first that does not exist yet) and returns its path. `root` is created if
/// needed; the leaf is created with `create_dir`, which fails if it exists, so two runs
/// (even concurrent ones) never share or overwrite a directory.
pub fn create_run_dir(root: &Path, prefix: &str) -> Result<PathBuf, BenchError> {
    create_run_dir_at(root, prefix, now_unix_s() as u64)
}

/// [`create_run_dir`] with an explicit Unix time (for tests and reproducible names).
pub fn create_run_dir_at(root: &Path, prefix: &str, unix_s: u64) -> Result<PathBuf, BenchError> {
    if prefix.is_empty() || prefix.contains(['/', '\\']) {
        return Err(BenchError::arg(
            "prefix",
            format!("must be a non-empty file name, got `{prefix}`"),
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| BenchError::io(root, e))?;
    let stamp = timestamp_label(unix_s);
    for n in 1..=MAX_ATTEMPTS {
        let dir = root.join(format!("{prefix}-{stamp}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(BenchError::io(dir, e)),
        }
    }
    Err(BenchError::io(
        root,
        std::io::Error::other(format!(
            "no free name {prefix}-{stamp}-<n> after {MAX_ATTEMPTS} attempts"
        )),
    ))
}

/// Writes `bytes` to `path` atomically, replacing an existing file: through
/// `nets::persist::write_atomic_bytes` (an exclusively created temporary name in the same
/// directory, flushed to disk, then renamed over `path`). Readers see either the old file
/// or the complete new one, never a partial write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    nets::persist::write_atomic_bytes(path, bytes, true).map_err(|e| match e {
        nets::NetsError::Io { op, message, .. } => {
            BenchError::io(path, std::io::Error::other(format!("{op}: {message}")))
        }
        other => BenchError::io(path, std::io::Error::other(other.to_string())),
    })
}
