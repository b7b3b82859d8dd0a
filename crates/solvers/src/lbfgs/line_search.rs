//! Strong-Wolfe line search: bracketing (Nocedal & Wright, Numerical Optimization, 2nd
//! ed., Algorithm 3.5) and zoom (Algorithm 3.6), trial steps by cubic interpolation
//! (eq. 3.59) with a quadratic fallback and safeguarded bisection.

use crate::SolverError;

/// Strong-Wolfe parameters: sufficient decrease `phi(a) <= phi(0) + c1 a phi'(0)` and
/// curvature `|phi'(a)| <= c2 |phi'(0)|`, 0 < c1 < c2 < 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wolfe {
    /// Sufficient-decrease constant c1 (N&W: 1e-4).
    pub c1: f64,
    /// Curvature constant c2 (N&W for quasi-Newton: 0.9).
    pub c2: f64,
    /// Maximum number of trial evaluations.
    pub max_evals: usize,
    /// Largest step tried.
    pub max_step: f64,
}

/// A point of the line: step a, phi(a), phi'(a).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinePoint {
    /// Step length.
    pub a: f64,
    /// phi(a) = f(x + a d).
    pub f: f64,
    /// phi'(a) = <grad f(x + a d), d>.
    pub df: f64,
}

/// Outcome of a line search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineResult {
    /// The accepted point.
    pub point: LinePoint,
    /// Whether the strong-Wolfe conditions hold at it (false: only sufficient decrease,
    /// after the evaluation budget ran out).
    pub wolfe: bool,
    /// Trial evaluations made.
    pub evals: usize,
    /// Whether the accepted point was the last one evaluated (else the caller must
    /// evaluate it again to restore its gradient).
    pub last_evaluated: bool,
}

/// Minimiser of the cubic interpolating (a, fa, dfa) and (b, fb, dfb) (N&W eq. 3.59);
/// None if it does not exist.
fn cubic_min(p: LinePoint, q: LinePoint) -> Option<f64> {
    let d1 = p.df + q.df - 3.0 * (p.f - q.f) / (p.a - q.a);
    let disc = d1 * d1 - p.df * q.df;
    if disc < 0.0 {
        return None;
    }
    let d2 = (q.a - p.a).signum() * disc.sqrt();
    let den = q.df - p.df + 2.0 * d2;
    if den == 0.0 {
        return None;
    }
    let t = q.a - (q.a - p.a) * (q.df + d2 - d1) / den;
    t.is_finite().then_some(t)
}

/// Minimiser of the quadratic through (a, fa) with slope dfa at a and (b, fb).
fn quadratic_min(p: LinePoint, q: LinePoint) -> Option<f64> {
    let h = q.a - p.a;
    let curv = (q.f - p.f - p.df * h) / (h * h);
    if curv <= 0.0 {
        return None;
    }
    let t = p.a - p.df / (2.0 * curv);
    t.is_finite().then_some(t)
}

/// Trial step in the interval spanned by lo and hi, kept at least 10% of its width
/// away from both ends.
fn interpolate(lo: LinePoint, hi: LinePoint) -> f64 {
    let (a, b) = if lo.a < hi.a {
        (lo.a, hi.a)
    } else {
        (hi.a, lo.a)
    };
    let w = b - a;
    let t = cubic_min(lo, hi)
        .or_else(|| quadratic_min(lo, hi))
        .unwrap_or(0.5 * (a + b));
    t.clamp(a + 0.1 * w, b - 0.1 * w)
}

/// Finds a step satisfying the strong Wolfe conditions along a descent direction.
///
/// `phi0` is the point a = 0 (its `df` must be < 0); `a1` the first trial step;
/// `eval(a)` returns (phi(a), phi'(a)). Errors if the direction is not a descent
/// direction, if `eval` fails, or if no step with sufficient decrease is found within
/// the evaluation budget.
pub fn strong_wolfe<F>(
    phi0: LinePoint,
    a1: f64,
    w: &Wolfe,
    mut eval: F,
) -> Result<LineResult, SolverError>
where
    F: FnMut(f64) -> Result<(f64, f64), SolverError>,
{
    if phi0.df >= 0.0 || phi0.df.is_nan() {
        return Err(SolverError::LineSearch(format!(
            "not a descent direction: phi'(0) = {:e}",
            phi0.df
        )));
    }
    let armijo = |p: &LinePoint| p.f <= phi0.f + w.c1 * p.a * phi0.df;
    let curvature = |p: &LinePoint| p.df.abs() <= -w.c2 * phi0.df;
    let mut evals = 0usize;
    let mut prev = phi0;
    let mut a = a1.min(w.max_step);
    // Bracketing phase (Alg. 3.5).
    let (mut lo, mut hi) = loop {
        if evals >= w.max_evals {
            return fallback(prev, phi0, evals, false);
        }
        let (f, df) = eval(a)?;
        evals += 1;
        let cur = LinePoint { a, f, df };
        if !f.is_finite() {
            // Overshot into a region where the objective is not finite: shrink.
            break (prev, cur);
        }
        if !armijo(&cur) || (evals > 1 && cur.f >= prev.f) {
            break (prev, cur);
        }
        if curvature(&cur) {
            return Ok(LineResult {
                point: cur,
                wolfe: true,
                evals,
                last_evaluated: true,
            });
        }
        if cur.df >= 0.0 {
            break (cur, prev);
        }
        if a >= w.max_step {
            return Ok(LineResult {
                point: cur,
                wolfe: false,
                evals,
                last_evaluated: true,
            });
        }
        prev = cur;
        // Extrapolate: cubic step beyond a, safeguarded to [1.1 a, 4 a].
        let next = cubic_min(phi0, cur).filter(|t| *t > a).unwrap_or(4.0 * a);
        a = next.clamp(1.1 * a, 4.0 * a).min(w.max_step);
    };
    // Zoom phase (Alg. 3.6); invariant: lo satisfies sufficient decrease and has the
    // lowest value seen so far among such points; lo.df (hi.a - lo.a) < 0.
    let mut last_is_lo = false;
    loop {
        if evals >= w.max_evals {
            return fallback(lo, phi0, evals, last_is_lo);
        }
        let a = if hi.f.is_finite() {
            interpolate(lo, hi)
        } else {
            0.5 * (lo.a + hi.a)
        };
        if (a - lo.a).abs() <= 1e-16 * lo.a.abs().max(1.0) {
            return fallback(lo, phi0, evals, last_is_lo);
        }
        let (f, df) = eval(a)?;
        evals += 1;
        let cur = LinePoint { a, f, df };
        if !f.is_finite() || !armijo(&cur) || cur.f >= lo.f {
            hi = cur;
            last_is_lo = false;
        } else {
            if curvature(&cur) {
                return Ok(LineResult {
                    point: cur,
                    wolfe: true,
                    evals,
                    last_evaluated: true,
                });
            }
            if cur.df * (hi.a - lo.a) >= 0.0 {
                hi = lo;
            }
            lo = cur;
            last_is_lo = true;
        }
    }
}

/// Out of budget: accept `lo` if it is a strict decrease (sufficient decrease holds by
/// the invariant), else fail.
fn fallback(
    lo: LinePoint,
    phi0: LinePoint,
    evals: usize,
    last: bool,
) -> Result<LineResult, SolverError> {
    if lo.a > 0.0 && lo.f < phi0.f {
        Ok(LineResult {
            point: lo,
            wolfe: false,
            evals,
            last_evaluated: last,
        })
    } else {
        Err(SolverError::LineSearch(format!(
            "no decrease found in {evals} evaluations (phi(0) = {:e}, phi'(0) = {:e})",
            phi0.f, phi0.df
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wolfe() -> Wolfe {
        Wolfe {
            c1: 1e-4,
            c2: 0.9,
            max_evals: 30,
            max_step: 1e10,
        }
    }

    #[test]
    fn finds_wolfe_point_on_quadratic_and_quartic() {
        // phi(a) = (a - 3)^2: from 0 with a1 = 1, must end with a strong-Wolfe point.
        let f = |a: f64| Ok(((a - 3.0).powi(2), 2.0 * (a - 3.0)));
        let p0 = LinePoint {
            a: 0.0,
            f: 9.0,
            df: -6.0,
        };
        let r = strong_wolfe(p0, 1.0, &wolfe(), f).unwrap();
        assert!(r.wolfe);
        assert!(r.point.f <= 9.0 + 1e-4 * r.point.a * -6.0);
        assert!(r.point.df.abs() <= 0.9 * 6.0);
        // Tight c2 on a quadratic: cubic interpolation lands on the minimiser a = 3.
        let tight = Wolfe { c2: 0.1, ..wolfe() };
        let r = strong_wolfe(p0, 10.0, &tight, f).unwrap();
        assert!((r.point.a - 3.0).abs() < 1e-9, "a = {}", r.point.a);
        assert!(r.evals <= 3, "evals = {}", r.evals);
        // A quartic with a far minimiser: the bracketing phase must extrapolate.
        let q = |a: f64| Ok(((a - 50.0).powi(4), 4.0 * (a - 50.0).powi(3)));
        let p0 = LinePoint {
            a: 0.0,
            f: 50f64.powi(4),
            df: -4.0 * 50f64.powi(3),
        };
        let r = strong_wolfe(p0, 1.0, &tight, q).unwrap();
        assert!(r.wolfe && r.point.df.abs() <= 0.1 * -p0.df, "{r:?}");
    }

    #[test]
    fn rejects_ascent_direction() {
        let p0 = LinePoint {
            a: 0.0,
            f: 1.0,
            df: 0.5,
        };
        let e = strong_wolfe(p0, 1.0, &wolfe(), |_| Ok((0.0, 0.0))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line search failed: not a descent direction: phi'(0) = 5e-1"
        );
    }
}
