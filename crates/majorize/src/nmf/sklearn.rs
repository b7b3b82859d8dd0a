//! scikit-learn's `NMF(solver='mu')` reproduced operation by operation
//! (scikit-learn 1.9.1, `sklearn/decomposition/_nmf.py`: `_multiplicative_update_w`,
//! `_multiplicative_update_h`, `_fit_multiplicative_update`, `_beta_divergence`;
//! ALGORITHMS.md 1.7). Convention: scikit-learn's `X (n_samples x n_features)` is our
//! `V (F x N)`.

use autodiff::Real;
use nalgebra::DMatrix;

use super::update::Power;
use super::{NmfConfig, NmfWorkspace, check_shapes};
use crate::beta::gamma;
use crate::error::Result;
use crate::prod::gemm;
use autodiff::Transpose;

/// scikit-learn's `EPSILON = np.finfo(np.float32).eps = 2^-23`.
pub const SKLEARN_EPS: f64 = f32::EPSILON as f64;

/// `ws.a` = numerator matrix `X o (WH)^(beta-2)` (`X ./ WH` for beta = 1), from `ws.wh`
/// clipped below at EPS when `beta < 2`; `ws.b = (WH)^(beta-1)` from `ws.wh` clipped
/// when `beta < 1` (not used for beta = 1).
fn fill_ab<T: Real>(v: &DMatrix<T>, ws: &mut NmfWorkspace<T>, beta: f64) {
    let eps = T::of(SKLEARN_EPS);
    // Integer and half-integer exponents without pow (equal to numpy's `**` to rounding).
    let (e2, e1) = (Power::of(beta - 2.0), Power::of(beta - 1.0));
    let (wh, a, b) = (ws.wh.as_slice(), ws.a.as_mut_slice(), ws.b.as_mut_slice());
    for (((a, b), &x), &y) in a.iter_mut().zip(b.iter_mut()).zip(v.as_slice()).zip(wh) {
        let yn = if beta < 2.0 && y < eps { eps } else { y };
        *a = if beta == 1.0 {
            x / yn
        } else if beta == 0.0 {
            let r = T::one() / yn;
            r * r * x
        } else {
            e2.apply(yn) * x
        };
        if beta != 1.0 {
            let yd = if beta < 1.0 && y < eps { eps } else { y };
            *b = e1.apply(yd);
        }
    }
}

/// `den += l1; den = den + l2 * X; den[den == 0] = EPS; X *= (num / den)^gamma`.
fn finish<T: Real>(
    x: &mut DMatrix<T>,
    num: &DMatrix<T>,
    den: impl Fn(usize, usize) -> T,
    l1: f64,
    l2: f64,
    g: f64,
) {
    let eps = T::of(SKLEARN_EPS);
    let (l1t, l2t, gt) = (T::of(l1), T::of(l2), T::of(g));
    for j in 0..x.ncols() {
        for i in 0..x.nrows() {
            let mut d = den(i, j);
            if l1 > 0.0 {
                d += l1t;
            }
            if l2 > 0.0 {
                d += l2t * x[(i, j)];
            }
            if d == T::zero() {
                d = eps;
            }
            let mut delta = num[(i, j)] / d;
            if g != 1.0 {
                delta = delta.powf(gt);
            }
            x[(i, j)] *= delta;
        }
    }
}

/// Entries below f64 epsilon set to 0 (scikit-learn's "stability" step).
fn zero_tiny<T: Real>(x: &mut DMatrix<T>) {
    let e = T::of(f64::EPSILON);
    for v in x.iter_mut() {
        if *v < e {
            *v = T::zero();
        }
    }
}

/// scikit-learn's W update, then its zeroing of `W < f64::EPSILON` when `beta < 1`.
pub(crate) fn update_w<T: Real>(
    v: &DMatrix<T>,
    w: &mut DMatrix<T>,
    h: &DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
) -> Result<()> {
    let beta = config.beta;
    let p = &config.penalties;
    if beta == 2.0 {
        gemm(&mut ws.num_w, v, Transpose::No, h, Transpose::Yes)?;
        gemm(&mut ws.gram, h, Transpose::No, h, Transpose::Yes)?;
        gemm(&mut ws.den_w, w, Transpose::No, &ws.gram, Transpose::No)?;
    } else {
        gemm(&mut ws.wh, w, Transpose::No, h, Transpose::No)?;
        fill_ab(v, ws, beta);
        gemm(&mut ws.num_w, &ws.a, Transpose::No, h, Transpose::Yes)?;
        if beta == 1.0 {
            for c in 0..h.nrows() {
                ws.sums[c] = h.row(c).sum();
            }
        } else {
            gemm(&mut ws.den_w, &ws.b, Transpose::No, h, Transpose::Yes)?;
        }
    }
    let (den_w, sums) = (&ws.den_w, &ws.sums);
    let den = |i: usize, c: usize| if beta == 1.0 { sums[c] } else { den_w[(i, c)] };
    finish(w, &ws.num_w, den, p.l1_w, p.l2_w, gamma(beta));
    if beta < 1.0 {
        zero_tiny(w);
    }
    Ok(())
}

/// scikit-learn's H update, then its zeroing of `H < f64::EPSILON` when `beta <= 1`.
pub(crate) fn update_h<T: Real>(
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &mut DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
) -> Result<()> {
    let beta = config.beta;
    let p = &config.penalties;
    if beta == 2.0 {
        gemm(&mut ws.num_h, w, Transpose::Yes, v, Transpose::No)?;
        gemm(&mut ws.gram, w, Transpose::Yes, w, Transpose::No)?;
        gemm(&mut ws.den_h, &ws.gram, Transpose::No, h, Transpose::No)?;
    } else {
        gemm(&mut ws.wh, w, Transpose::No, h, Transpose::No)?;
        fill_ab(v, ws, beta);
        gemm(&mut ws.num_h, w, Transpose::Yes, &ws.a, Transpose::No)?;
        if beta == 1.0 {
            for c in 0..w.ncols() {
                let s = w.column(c).sum();
                ws.sums[c] = if s == T::zero() { T::one() } else { s };
            }
        } else {
            gemm(&mut ws.den_h, w, Transpose::Yes, &ws.b, Transpose::No)?;
        }
    }
    let (den_h, sums) = (&ws.den_h, &ws.sums);
    let den = |c: usize, j: usize| if beta == 1.0 { sums[c] } else { den_h[(c, j)] };
    finish(h, &ws.num_h, den, p.l1_h, p.l2_h, gamma(beta));
    if beta <= 1.0 {
        zero_tiny(h);
    }
    Ok(())
}

/// scikit-learn's `_beta_divergence(X, W, H, beta)` (dense X): `beta = 2`:
/// `||X - WH||^2 / 2`; otherwise only entries with `X > EPS` enter the data terms, with
/// `WH` clipped below at EPS there; `beta = 1` adds `sum(WH)` over all entries and
/// subtracts `sum X` (masked); `beta = 0` subtracts `F N` (all entries); other beta uses
/// `sum (WH)^beta` over all entries.
pub fn sklearn_divergence<T: Real>(
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &DMatrix<T>,
    beta: f64,
    ws: &mut NmfWorkspace<T>,
) -> Result<f64> {
    check_shapes("nmf::sklearn_divergence", v, w, h)?;
    ws.ensure(v.nrows(), v.ncols(), w.ncols())?;
    gemm(&mut ws.wh, w, Transpose::No, h, Transpose::No)?;
    let n_all = v.len();
    if beta == 2.0 {
        return Ok((0..n_all)
            .map(|i| (v[i] - ws.wh[i]).to_f64().powi(2))
            .sum::<f64>()
            / 2.0);
    }
    let eps = SKLEARN_EPS;
    let masked = (0..n_all).filter(|&i| v[i].to_f64() > eps).map(|i| {
        let y = ws.wh[i].to_f64();
        (v[i].to_f64(), if y < eps { eps } else { y })
    });
    let res = if beta == 1.0 {
        let sum_wh: f64 = (0..w.ncols())
            .map(|c| w.column(c).sum().to_f64() * h.row(c).sum().to_f64())
            .sum();
        let (mut xlog, mut xsum) = (0.0, 0.0);
        for (x, y) in masked {
            xlog += x * (x / y).ln();
            xsum += x;
        }
        xlog + (sum_wh - xsum)
    } else if beta == 0.0 {
        let (mut sdiv, mut slog) = (0.0, 0.0);
        for (x, y) in masked {
            let d = x / y;
            sdiv += d;
            slog += d.ln();
        }
        sdiv - n_all as f64 - slog
    } else {
        let sum_wh_beta: f64 = (0..n_all).map(|i| ws.wh[i].to_f64().powf(beta)).sum();
        let (mut sxb, mut sxwh) = (0.0, 0.0);
        for (x, y) in masked {
            sxb += x.powf(beta);
            sxwh += x * y.powf(beta - 1.0);
        }
        (sxb - beta * sxwh + sum_wh_beta * (beta - 1.0)) / (beta * (beta - 1.0))
    };
    Ok(res)
}

/// scikit-learn's stopping rule for `solver='mu'`: every 10 iterations compute
/// `e = sqrt(2 max(D, 0))` and stop when `(e_prev - e) / e_init < tol`; `tol = 0`
/// disables it. Feed it the divergence (not the penalised objective), as scikit-learn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SklearnStop {
    tol: f64,
    error_at_init: f64,
    previous: f64,
}

impl SklearnStop {
    /// Starts the rule from the divergence at the initialisation.
    pub fn new(tol: f64, divergence_at_init: f64) -> Self {
        let e = (2.0 * divergence_at_init.max(0.0)).sqrt();
        Self {
            tol,
            error_at_init: e,
            previous: e,
        }
    }
    /// `(tol, sqrt(2 D) at init, sqrt(2 D) at the last check)`, for checkpoints.
    pub fn parts(&self) -> (f64, f64, f64) {
        (self.tol, self.error_at_init, self.previous)
    }
    /// Rebuilds the rule from [`SklearnStop::parts`].
    pub fn from_parts(tol: f64, error_at_init: f64, previous: f64) -> Self {
        Self {
            tol,
            error_at_init,
            previous,
        }
    }
    /// Call after iteration `iteration` (1-based) with the current divergence; returns
    /// whether to stop. Only evaluates the rule when `iteration.is_multiple_of(10)`.
    pub fn should_stop(&mut self, iteration: usize, divergence: f64) -> bool {
        if self.tol > 0.0 && iteration.is_multiple_of(10) {
            let e = (2.0 * divergence.max(0.0)).sqrt();
            if (self.previous - e) / self.error_at_init < self.tol {
                return true;
            }
            self.previous = e;
        }
        false
    }
}
