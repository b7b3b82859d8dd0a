//! The error type of the `nets` crate.

use std::path::PathBuf;

use autodiff::AutodiffError;

use crate::dataset::DatasetError;

/// Result alias of the crate.
pub type Result<T, E = NetsError> = std::result::Result<T, E>;

/// Everything that can go wrong in `nets`. Messages name the operation, parameter or
/// file and the offending shapes or values.
#[derive(Debug, thiserror::Error)]
pub enum NetsError {
    /// An error raised by the autodiff tape.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// An error raised while assembling a data set.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// Two shapes that must agree do not.
    #[error("{op}: shape mismatch: {detail}")]
    Shape {
        /// Operation that found the mismatch.
        op: &'static str,
        /// What was expected and what was found.
        detail: String,
    },
    /// A scalar argument is out of its admissible range (NaN, negative, zero...).
    #[error("{op}: invalid argument {name} = {value}: {reason}")]
    InvalidArgument {
        /// Operation receiving the argument.
        op: &'static str,
        /// Name of the argument.
        name: &'static str,
        /// Its value (widened to f64).
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A network architecture is not what the operation needs.
    #[error("{op}: unsupported architecture: {detail}")]
    Architecture {
        /// Operation that needs the structure.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The targets do not fit the loss.
    #[error("{op}: targets do not fit the loss: {detail}")]
    Targets {
        /// Operation (usually the loss name).
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An operation is not defined for this activation or loss.
    #[error("{op} is not available for {what}: {reason}")]
    Unsupported {
        /// Requested operation.
        op: &'static str,
        /// The activation or loss asked.
        what: String,
        /// Why.
        reason: &'static str,
    },
    /// An iterative inner solve did not reach its tolerance.
    #[error("{op}: no convergence after {iterations} iterations (residual {residual:e})")]
    NoConvergence {
        /// Inner solver name.
        op: &'static str,
        /// Iterations done.
        iterations: usize,
        /// Final residual.
        residual: f64,
    },
    /// A model file or string is invalid (see [`ModelFileError`]).
    #[error("model file {}: {problem}", display_path(.path))]
    ModelFile {
        /// The file, or `None` for an in-memory string.
        path: Option<PathBuf>,
        /// What is wrong with it.
        problem: ModelFileError,
    },
    /// An operating-system error while reading or writing a file.
    #[error("{op} {}: {message}", .path.display())]
    Io {
        /// What was being done ("read", "write", "rename", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS message.
        message: String,
    },
    /// Refused to overwrite an existing file (pass `overwrite: true` to allow it).
    #[error("refusing to overwrite existing file {} (pass overwrite = true)", .path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
}

fn display_path(p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => p.display().to_string(),
        None => "<string>".to_string(),
    }
}

/// What is wrong with a saved model (see [`crate::persist`] for the format).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelFileError {
    /// The text ends before the JSON document does (a truncated file).
    #[error("truncated JSON (unexpected end at line {line}, column {column})")]
    Truncated {
        /// Line where the text ended.
        line: usize,
        /// Column where the text ended.
        column: usize,
    },
    /// The text is not valid JSON.
    #[error("corrupted JSON: {0}")]
    Syntax(String),
    /// The JSON is not a strata-nets model (missing/wrong `format` tag or fields).
    #[error("not a strata-nets model: {0}")]
    Format(String),
    /// The format version is not one this build reads.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    Version {
        /// Version found in the file.
        found: u64,
        /// Version this build reads.
        supported: u64,
    },
    /// The file's scalar type differs from the requested one.
    #[error("dtype is {found} but {expected} was requested")]
    Dtype {
        /// dtype in the file.
        found: String,
        /// dtype requested by the caller.
        expected: &'static str,
    },
    /// A layer's parameter sizes disagree with its declared widths, or the layer chain
    /// is inconsistent.
    #[error("layer {layer}: {detail}")]
    Shape {
        /// Index of the layer in the file.
        layer: usize,
        /// What disagrees.
        detail: String,
    },
    /// A parameter value is NaN, infinite, or overflows the requested dtype.
    #[error("layer {layer}: non-finite value in {param} at index {index}")]
    NonFinite {
        /// Index of the layer.
        layer: usize,
        /// Parameter name.
        param: &'static str,
        /// Index in the column-major value list.
        index: usize,
    },
    /// The network holds a layer the format cannot store (a user-defined layer).
    #[error(
        "layer {layer} ({kind}) cannot be saved: only dense and activation layers are supported"
    )]
    UnsupportedLayer {
        /// Index of the layer.
        layer: usize,
        /// Its kind name.
        kind: String,
    },
    /// An activation's parameter is invalid (NaN slope, ...).
    #[error("layer {layer}: invalid activation: {detail}")]
    Activation {
        /// Index of the layer.
        layer: usize,
        /// What is wrong.
        detail: String,
    },
}
