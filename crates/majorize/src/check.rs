//! A public checker of the surrogate contract, for users and for our own tests.
//!
//! Given an objective `f`, a surrogate builder and samplers of anchors `y` and points
//! `x`, [`check_surrogate`] builds `g(.|y)` at every sampled anchor and measures
//!
//! - **majorization**: `max(0, f(x) - g(x|y)) / scale`, scale `= max(|f(x)|, |g(x|y)|, floor)`;
//! - **touching**: `|g(y|y) - f(y)| / max(|f(y)|, |g(y|y)|, floor)`;
//! - **tangency**: `||grad g(y|y) - grad f(y)||_2 / max(||grad f(y)||, ||grad g(y|y)||, floor)`;
//! - **descent** (optional): at the surrogate's minimiser `x+`,
//!   `max(0, g(x+|y) - g(y|y)) / scale`, and majorization is also checked at `x+`.
//!
//! It reports the worst relative violation of each condition with the anchor and point
//! where it happened. Comparisons are done in `f64` whatever `T` is.

use autodiff::Real;
use nalgebra::DVector;

use crate::error::Result;
use crate::surrogate::{InnerSolve, Objective, Surrogate, SurrogateBuilder};

/// The condition of the contract that was violated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `g(x|y) >= f(x)`.
    Majorization,
    /// `g(y|y) = f(y)`.
    Touching,
    /// `grad g(y|y) = grad f(y)`.
    Tangency,
    /// `g(argmin g | y) <= g(y|y)`.
    Descent,
}

/// One measured violation.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Which condition.
    pub condition: Condition,
    /// Relative magnitude (see the module doc for the scale).
    pub relative: f64,
    /// Absolute magnitude.
    pub absolute: f64,
    /// The anchor `y`.
    pub anchor: Vec<f64>,
    /// The point `x` (equal to the anchor for touching and tangency).
    pub point: Vec<f64>,
}

/// What the checker does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckConfig {
    /// Number of anchors sampled.
    pub anchors: usize,
    /// Points sampled per anchor.
    pub points_per_anchor: usize,
    /// Lower bound of every scale (avoids dividing by zero; default 1e-12).
    pub scale_floor: f64,
    /// Whether to compute the minimiser and check descent there (default true).
    pub check_minimizer: bool,
    /// Inner-solve settings for surrogates without a closed-form minimiser.
    pub inner: InnerSolve,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            anchors: 8,
            points_per_anchor: 16,
            scale_floor: 1e-12,
            check_minimizer: true,
            inner: InnerSolve::default(),
        }
    }
}

/// The checker's findings: the worst violation of each condition (`None` if it never
/// exceeded zero or was not checked).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// Worst majorization violation.
    pub majorization: Option<Violation>,
    /// Worst touching violation.
    pub touching: Option<Violation>,
    /// Worst tangency violation.
    pub tangency: Option<Violation>,
    /// Worst descent violation.
    pub descent: Option<Violation>,
    /// Anchors checked.
    pub anchors_checked: usize,
    /// Points checked (excluding anchors).
    pub points_checked: usize,
}

impl CheckReport {
    /// The worst violation over all conditions.
    pub fn worst(&self) -> Option<&Violation> {
        [
            &self.majorization,
            &self.touching,
            &self.tangency,
            &self.descent,
        ]
        .into_iter()
        .flatten()
        .max_by(|a, b| a.relative.total_cmp(&b.relative))
    }
    /// The largest relative violation (0 if none).
    pub fn max_relative(&self) -> f64 {
        self.worst().map_or(0.0, |v| v.relative)
    }
    /// Whether every relative violation is at most `tol`.
    pub fn passes(&self, tol: f64) -> bool {
        self.max_relative() <= tol
    }
    fn record(&mut self, v: Violation) {
        let slot = match v.condition {
            Condition::Majorization => &mut self.majorization,
            Condition::Touching => &mut self.touching,
            Condition::Tangency => &mut self.tangency,
            Condition::Descent => &mut self.descent,
        };
        let worse = slot.as_ref().is_none_or(|old| v.relative > old.relative);
        if v.relative > 0.0 && worse {
            *slot = Some(v);
        }
    }
}

fn to_vec<T: Real>(x: &DVector<T>) -> Vec<f64> {
    x.iter().map(|v| v.to_f64()).collect()
}

fn nan_as_inf(x: f64) -> f64 {
    if x.is_nan() { f64::INFINITY } else { x }
}

/// Checks the surrogate contract of `builder` for `objective` on sampled anchors and
/// points (see the module doc). `sample_anchor` draws an anchor `y`; `sample_point`
/// draws a point `x` given the anchor (so it can sample near it, or anywhere in the
/// domain). Errors from the objective or the builder (e.g. a sampled point outside the
/// domain) are returned as errors, not as violations.
pub fn check_surrogate<T, O, B, R, SA, SP>(
    objective: &O,
    builder: &B,
    rng: &mut R,
    mut sample_anchor: SA,
    mut sample_point: SP,
    config: &CheckConfig,
) -> Result<CheckReport>
where
    T: Real,
    O: Objective<T> + ?Sized,
    B: SurrogateBuilder<T> + ?Sized,
    R: rand::Rng + ?Sized,
    SA: FnMut(&mut R) -> DVector<T>,
    SP: FnMut(&mut R, &DVector<T>) -> DVector<T>,
{
    let floor = config.scale_floor;
    let mut report = CheckReport::default();
    for _ in 0..config.anchors {
        let y = sample_anchor(rng);
        let s = builder.build(&y)?;
        let fy = objective.value(&y)?.to_f64();
        let gy = s.value(&y)?.to_f64();
        let abs = (gy - fy).abs();
        report.record(Violation {
            condition: Condition::Touching,
            relative: nan_as_inf(abs / fy.abs().max(gy.abs()).max(floor)),
            absolute: nan_as_inf(abs),
            anchor: to_vec(&y),
            point: to_vec(&y),
        });
        let mut df = DVector::zeros(y.len());
        let mut dg = DVector::zeros(y.len());
        objective.gradient(&y, &mut df)?;
        s.gradient(&y, &mut dg)?;
        let diff = (&dg - &df).norm().to_f64();
        let gscale = df.norm().to_f64().max(dg.norm().to_f64()).max(floor);
        report.record(Violation {
            condition: Condition::Tangency,
            relative: nan_as_inf(diff / gscale),
            absolute: nan_as_inf(diff),
            anchor: to_vec(&y),
            point: to_vec(&y),
        });
        let majorization_at = |x: &DVector<T>, report: &mut CheckReport| -> Result<()> {
            let fx = objective.value(x)?.to_f64();
            let gx = s.value(x)?.to_f64();
            let gap = fx - gx;
            let abs = if gap.is_nan() {
                f64::INFINITY
            } else {
                gap.max(0.0)
            };
            report.record(Violation {
                condition: Condition::Majorization,
                relative: abs / fx.abs().max(gx.abs()).max(floor),
                absolute: abs,
                anchor: to_vec(&y),
                point: to_vec(x),
            });
            Ok(())
        };
        for _ in 0..config.points_per_anchor {
            let x = sample_point(rng, &y);
            majorization_at(&x, &mut report)?;
            report.points_checked += 1;
        }
        if config.check_minimizer {
            let m = s.minimize(&config.inner)?;
            let gm = s.value(&m.point)?.to_f64();
            let gap = gm - gy;
            let abs = if gap.is_nan() {
                f64::INFINITY
            } else {
                gap.max(0.0)
            };
            report.record(Violation {
                condition: Condition::Descent,
                relative: abs / gm.abs().max(gy.abs()).max(floor),
                absolute: abs,
                anchor: to_vec(&y),
                point: to_vec(&m.point),
            });
            majorization_at(&m.point, &mut report)?;
        }
        report.anchors_checked += 1;
    }
    Ok(report)
}
