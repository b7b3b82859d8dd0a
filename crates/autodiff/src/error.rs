//! The one error type of the crate.

/// Everything that can go wrong when recording or differentiating a tape.
///
/// Every message names the operation and the offending shapes or values, so that a
/// failing training run says what was wrong without a debugger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutodiffError {
    /// Two operands (or an operand and an output buffer) have incompatible shapes.
    #[error("{op}: shape mismatch: {lhs_name} is {}x{} but {rhs_name} is {}x{} ({expected})", lhs.0, lhs.1, rhs.0, rhs.1)]
    ShapeMismatch {
        /// The operation that was recorded.
        op: &'static str,
        /// Name of the first operand.
        lhs_name: &'static str,
        /// Shape (rows, cols) of the first operand.
        lhs: (usize, usize),
        /// Name of the second operand.
        rhs_name: &'static str,
        /// Shape (rows, cols) of the second operand.
        rhs: (usize, usize),
        /// What the op needs, in words.
        expected: &'static str,
    },
    /// A class label is not smaller than the number of classes (rows of the logits).
    #[error("{op}: label {label} of sample {sample} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The operation that was recorded.
        op: &'static str,
        /// The offending label.
        label: usize,
        /// The sample (column) it belongs to.
        sample: usize,
        /// The number of classes (rows of the logits).
        classes: usize,
    },
    /// The number of labels differs from the number of samples (columns).
    #[error("{op}: {labels} labels given for {samples} samples (columns)")]
    LabelCount {
        /// The operation that was recorded.
        op: &'static str,
        /// Number of labels given.
        labels: usize,
        /// Number of samples (columns of the logits).
        samples: usize,
    },
    /// A mean over an empty set (no samples or no entries) was requested.
    #[error("{op}: cannot take a mean over an empty {}x{} input", shape.0, shape.1)]
    EmptyMean {
        /// The operation that was recorded.
        op: &'static str,
        /// Shape of the empty input.
        shape: (usize, usize),
    },
    /// `backward` was called on a node that is not 1x1.
    #[error("backward: output is {}x{}, not a 1x1 scalar (use vjp with a seed of that shape)", shape.0, shape.1)]
    NotScalar {
        /// Shape of the node backward was called on.
        shape: (usize, usize),
    },
    /// The seed given to `vjp` does not have the shape of the output node.
    #[error("vjp: seed is {}x{} but the output node is {}x{}", seed.0, seed.1, output.0, output.1)]
    SeedShape {
        /// Shape of the seed.
        seed: (usize, usize),
        /// Shape of the output node.
        output: (usize, usize),
    },
    /// A `Var` recorded on a different tape was used.
    #[error("{op}: variable #{index} belongs to another tape")]
    ForeignVar {
        /// The operation that was recorded.
        op: &'static str,
        /// Index of the variable on its own tape.
        index: usize,
    },
    /// A `Var` recorded before the last `reset` of this tape was used.
    #[error("{op}: variable #{index} is stale (recorded before the last reset of this tape)")]
    StaleVar {
        /// The operation that was recorded.
        op: &'static str,
        /// Index of the stale variable.
        index: usize,
    },
    /// An argument is outside the domain the op accepts.
    #[error("{op}: invalid argument: {what}")]
    InvalidArgument {
        /// The operation that was called.
        op: &'static str,
        /// What is wrong, in words.
        what: String,
    },
}

/// Result alias of the crate.
pub type Result<T, E = AutodiffError> = std::result::Result<T, E>;
