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
