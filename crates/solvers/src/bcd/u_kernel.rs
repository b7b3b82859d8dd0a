//! The entrywise U-step of BCD for closed-form (piecewise-linear) activations, written
//! so that the compiler can vectorize it (issue #14: with narrow layers this loop was a
//! large share of a sweep). Same arithmetic as the checked loop of the U-step.

use autodiff::Real;
use nets::prox::ClosedProx;

/// For every entry: `c = (rho m + alpha u0) / (rho + alpha)`, `cand = prox(a, c; 1, g)`,
/// and `out = cand` if `phi(cand) <= phi(u0)` else `u0`, with
/// `phi(u) = (a - h(u))^2 + g (u - c)^2` (`[rho, alpha, g]` in `w`). Returns false if an
/// input or `c` was not finite (`out` is then meaningless).
#[inline(always)]
pub(super) fn closed<T: Real>(
    hf: impl Fn(f64) -> f64 + Copy,
    cf: ClosedProx,
    w: [f64; 3],
    u0: &[T],
    m: &[T],
    a: &[T],
    out: &mut [T],
) -> bool {
    let [rho, alpha, g] = w;
    let n = out.len();
    let (u0, m, a) = (&u0[..n], &m[..n], &a[..n]);
    let mut ok = true;
    for k in 0..n {
        let (u0, m, a) = (u0[k].to_f64(), m[k].to_f64(), a[k].to_f64());
        let c = (rho * m + alpha * u0) / (rho + alpha);
        ok &= c.is_finite() & a.is_finite() & u0.is_finite();
        let phi = |u: f64| {
            let r = a - hf(u);
            r * r + g * (u - c) * (u - c)
        };
        let cand = cf.eval(a, c);
        out[k] = T::of(if phi(cand) <= phi(u0) { cand } else { u0 });
    }
    ok
}
