//! The crate's error type.

/// Everything that can go wrong in `majorize`. Messages name the operation or
/// parameter and the offending shapes or values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MajorizeError {
    /// Two operands do not have compatible shapes.
    #[error("{op}: shape mismatch: {detail}")]
    Shape {
        /// The operation that checked the shapes.
        op: &'static str,
        /// What was expected and what was given.
        detail: String,
    },
    /// An input contains NaN or an infinity.
    #[error("{op}: non-finite value in {what} at ({row}, {col})")]
    NonFinite {
        /// The operation.
        op: &'static str,
        /// Which input (e.g. "V", "W").
        what: &'static str,
        /// Row of the first offending entry.
        row: usize,
        /// Column of the first offending entry.
        col: usize,
    },
    /// An input that must be nonnegative has a negative entry.
    #[error("{op}: negative value {value:e} in {what} at ({row}, {col})")]
    Negative {
        /// The operation.
        op: &'static str,
        /// Which input.
        what: &'static str,
        /// Row of the first offending entry.
        row: usize,
        /// Column of the first offending entry.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// An input that must be strictly positive has a zero entry (e.g. data for
    /// beta <= 0, or an initial factor entry: multiplicative updates never move a zero).
    #[error("{op}: zero entry in {what} at ({row}, {col}): {reason}")]
    Zero {
        /// The operation.
        op: &'static str,
        /// Which input.
        what: &'static str,
        /// Row of the first offending entry.
        row: usize,
        /// Column of the first offending entry.
        col: usize,
        /// Why a zero is not allowed here.
        reason: &'static str,
    },
    /// A scalar parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Its value (as f64).
        value: f64,
        /// The valid range or the reason.
        reason: &'static str,
    },
    /// An option combination is not supported.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// A matrix that must be symmetric positive definite is not (Cholesky failed).
    #[error("{op}: matrix of size {size} is not positive definite (add a ridge > 0)")]
    NotPositiveDefinite {
        /// The operation.
        op: &'static str,
        /// Its dimension.
        size: usize,
    },
    /// A surrogate has no minimiser (e.g. a linear tangent bound alone is unbounded below).
    #[error("{0}: surrogate has no minimiser on its own; combine it with a coercive term")]
    NoMinimizer(&'static str),
    /// An inner iterative solve did not reach its tolerance.
    #[error(
        "{op}: inner solve stopped after {iterations} iterations at residual {residual:e} > tolerance {tol:e}"
    )]
    NotConverged {
        /// The operation.
        op: &'static str,
        /// Iterations spent.
        iterations: usize,
        /// Final residual (as defined by the solve).
        residual: f64,
        /// Requested tolerance.
        tol: f64,
    },
    /// A matrix product failed in the GEMM wrapper (an internal shape bug: callers
    /// check shapes first).
    #[error("matrix product: {0}")]
    Kernel(#[from] autodiff::AutodiffError),
    /// A size given by the caller asks for more than [`crate::MAX_ENTRIES`] entries in
    /// one buffer (or overflows `usize`); refused before anything is allocated.
    #[error("{op}: {what} of size {dims} is larger than the limit of {limit} entries")]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// Which buffer.
        what: &'static str,
        /// The requested dimensions, e.g. `"1099511627776 x 1099511627776"`.
        dims: String,
        /// The limit ([`crate::MAX_ENTRIES`]).
        limit: usize,
    },
    /// A point lies outside the domain of an objective (e.g. a nonpositive entry where
    /// the objective needs positive arguments).
    #[error("{op}: point outside the domain: {detail}")]
    Domain {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Result with [`MajorizeError`] as the default error.
pub type Result<T, E = MajorizeError> = std::result::Result<T, E>;

pub(crate) fn shape_err(op: &'static str, detail: impl Into<String>) -> MajorizeError {
    MajorizeError::Shape {
        op,
        detail: detail.into(),
    }
}
