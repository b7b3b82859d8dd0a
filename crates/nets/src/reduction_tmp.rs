//! Temporary stand-in for `autodiff::Reduction` until the tape is merged.
use serde::{Deserialize, Serialize};
/// How a scalar loss over samples (columns) is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reduction {
    /// Divide by the number of samples N.
    Mean,
    /// Sum over samples.
    Sum,
}
