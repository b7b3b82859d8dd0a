//! The scalar types the whole workspace is generic over.

use std::fmt::{Debug, Display, LowerExp};

/// A real floating-point scalar: `f32` or `f64`.
///
/// Everything numeric in strata (the tape, layers, surrogates, solvers) is generic over
/// `T: Real`, so every algorithm runs in single and in double precision. The trait adds
/// to nalgebra's [`nalgebra::RealField`] the lossless/rounding conversions from and to
/// `f64` that hyperparameters and metrics need, and the serde bounds that checkpoints need.
pub trait Real:
    nalgebra::RealField
    + Copy
    + Default
    + Debug
    + Display
    + LowerExp
    + Send
    + Sync
    + serde::Serialize
    + for<'de> serde::Deserialize<'de>
    + 'static
{
    /// Machine epsilon of the type (2^-23 for f32, 2^-52 for f64).
    const EPS: Self;
    /// Rounds an `f64` to this type (exact for `f64`).
    fn of(x: f64) -> Self;
    /// Widens to `f64` (exact for both types).
    fn to_f64(self) -> f64;
    /// Whether the value is neither NaN nor infinite.
    fn finite(self) -> bool;
    /// A short name of the type: `"f32"` or `"f64"`.
    fn dtype_name() -> &'static str;
}

impl Real for f32 {
    const EPS: Self = f32::EPSILON;
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn dtype_name() -> &'static str {
        "f32"
    }
}

impl Real for f64 {
    const EPS: Self = f64::EPSILON;
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn dtype_name() -> &'static str {
        "f64"
    }
}
