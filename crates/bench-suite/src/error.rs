//! The one error type of `bench-suite`.

use std::path::PathBuf;

/// Everything that can go wrong while loading data, building a problem or writing results.
///
/// Messages name the file and the place in it (line and column for text files, byte
/// offset for binary files) so that a user can fix a malformed file by hand.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file the problem needs does not exist. The runner skips the problem with this
    /// message instead of failing the whole comparison.
    #[error("data file missing: {path} (problem skipped; see the README for where to put it)")]
    DataMissing {
        /// The path that was looked for (for gzip-or-plain lookups: the plain name).
        path: PathBuf,
    },
    /// A data set expected from a system package is not installed (its directory does
    /// not exist) and no directory was given. The runner skips the problem with this
    /// message, which holds the install command.
    #[error(
        "{path} not found: install the data with `apt-get install {package}` \
         (or give --fashion-mnist-dir / ${env}) (problem skipped)"
    )]
    PackageMissing {
        /// The package's data directory that was looked for.
        path: PathBuf,
        /// The Debian package to install.
        package: String,
        /// The environment variable that can name another directory.
        env: String,
    },
    /// A run would need more memory than allowed; it is refused before anything is
    /// allocated (estimate from the sizes, see `papers::estimate_peak_bytes`).
    #[error(
        "{solver} on {problem}: estimated peak memory {:.2} GiB exceeds the limit of {:.2} GiB \
         (not started; use fewer training samples or raise --memory-limit-gib)",
        *estimate_bytes as f64 / 1073741824.0,
        *limit_bytes as f64 / 1073741824.0
    )]
    MemoryLimit {
        /// Solver display name.
        solver: String,
        /// Problem name.
        problem: String,
        /// Estimated peak allocation in bytes.
        estimate_bytes: u64,
        /// The limit in bytes.
        limit_bytes: u64,
    },
    /// A text (CSV) file is malformed. `line` and `column` are 1-based.
    #[error("{file}: line {line}, column {column}: {message}")]
    Csv {
        /// File name (or `"<embedded digits.csv>"`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number; 0 when the problem concerns the whole line.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A binary IDX file (MNIST layout) is malformed. For gzipped files the offset is
    /// into the decompressed stream.
    #[error("{file}: byte offset {offset}: {message}")]
    Idx {
        /// File name.
        file: String,
        /// Byte offset where the problem was found.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// Two files that must agree (images and labels) do not.
    #[error("{first} and {second} disagree: {message}")]
    Inconsistent {
        /// The first file.
        first: String,
        /// The second file.
        second: String,
        /// What disagrees.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An argument is out of its documented range.
    #[error("invalid argument `{name}`: {message}")]
    InvalidArgument {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// A problem name that is not in the registry.
    #[error("unknown problem `{0}` (see `bench_suite::problems::registry()` for the list)")]
    UnknownProblem(String),
    /// A solver or problem name the comparison does not know; `valid` lists the names
    /// it knows.
    #[error("unknown {what} `{name}`; valid names: {valid}")]
    UnknownName {
        /// `"solver"` or `"problem"`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A results document does not follow the schema. `path` is a JSON pointer-like path.
    #[error("results schema violation at {path}: {message}")]
    Schema {
        /// Where in the document (e.g. `/runs/3/trace/0/objective`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// JSON (de)serialisation failed.
    #[error("JSON error ({context}): {source}")]
    Json {
        /// What was being (de)serialised.
        context: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// Drawing a plot failed.
    #[error("plot {file}: {message}")]
    Plot {
        /// The SVG file being drawn.
        file: String,
        /// The backend's message.
        message: String,
    },
    /// A data set could not be assembled (count mismatch, non-finite value, ...).
    #[error(transparent)]
    Dataset(#[from] nets::DatasetError),
}

impl BenchError {
    /// Shorthand for an [`BenchError::Io`] error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for an [`BenchError::InvalidArgument`] error.
    pub fn arg(name: &'static str, message: impl Into<String>) -> Self {
        BenchError::InvalidArgument {
            name,
            message: message.into(),
        }
    }
}
