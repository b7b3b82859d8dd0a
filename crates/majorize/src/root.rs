//! A safeguarded Newton / bisection root finder on a bracket (scalar, f64).

/// Relative tolerance of every scalar root solve in this crate: the returned point is
/// within `ROOT_TOL * |x|` of a point where the function changes sign.
pub const ROOT_TOL: f64 = 1e-14;

/// Iteration cap of the scalar root solves.
pub const ROOT_MAX_ITER: usize = 200;

/// Finds a sign change of `f` between `pos` (`f(pos) > 0`) and `neg` (`f(neg) <= 0`),
/// both positive. `f` returns `(value, derivative)`. Newton steps are taken from the last
/// evaluated point when they land strictly inside the bracket; otherwise the bracket is
/// bisected (geometric midpoint when the ends differ by more than a factor 4, so brackets
/// spanning many orders of magnitude shrink fast). Stops when the bracket width is at most
/// `ROOT_TOL * max(|pos|, |neg|)`, when `f` is exactly 0, or after `ROOT_MAX_ITER`
/// iterations. Returns the `neg` end (a point with `f <= 0`) and the iteration count.
pub(crate) fn solve_bracket(
    f: impl Fn(f64) -> (f64, f64),
    mut pos: f64,
    mut neg: f64,
) -> (f64, usize) {
    let mut x = neg;
    let (mut fx, mut dfx) = f(x);
    let mut it = 0;
    while it < ROOT_MAX_ITER {
        if fx == 0.0 {
            return (x, it);
        }
        if (pos - neg).abs() <= ROOT_TOL * pos.abs().max(neg.abs()) {
            break;
        }
        it += 1;
        let (lo, hi) = if pos < neg { (pos, neg) } else { (neg, pos) };
        let newton = x - fx / dfx;
        let next = if newton.is_finite() && newton > lo && newton < hi {
            newton
        } else if hi > 4.0 * lo && lo > 0.0 {
            (lo * hi).sqrt()
        } else {
            0.5 * (lo + hi)
        };
        if next <= lo || next >= hi {
            break;
        }
        x = next;
        (fx, dfx) = f(x);
        if fx > 0.0 {
            pos = x;
        } else {
            neg = x;
        }
    }
    (neg, it)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sqrt_two_both_orientations() {
        let (x, it) = solve_bracket(|x| (x * x - 2.0, 2.0 * x), 2.0, 1.0);
        assert!((x - 2f64.sqrt()).abs() <= 1e-13, "{x}");
        assert!(x * x - 2.0 <= 0.0);
        assert!(it < 20, "{it}");
        let (y, _) = solve_bracket(|x| (2.0 - x * x, -2.0 * x), 1.0, 2.0);
        assert!((y - 2f64.sqrt()).abs() <= 1e-13, "{y}");
        assert!(2.0 - y * y <= 0.0);
    }

    #[test]
    fn wide_bracket_converges() {
        // root at 1e-12 of log(x) - log(1e-12), bracket [1e-300, 1].
        let (x, it) = solve_bracket(|x| (x.ln() - (1e-12f64).ln(), 1.0 / x), 1.0, 1e-300);
        assert!((x / 1e-12 - 1.0).abs() < 1e-12, "{x}");
        assert!(it < ROOT_MAX_ITER);
    }
}
