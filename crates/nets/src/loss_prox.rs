//! Closed-form and Newton proximal / minimiser steps of the losses in the output, as
//! used by ADMM and lifted methods for the output block Z_L.
//!
//! `prox_{t ell}(v) = argmin_z ell(z, y) + (1/(2t)) ||z - v||^2` for the per-sample loss
//! (Sum reduction; for Mean use `t / N`). The ADMM output step of Taylor et al.
//! (ALGORITHMS.md 2.2), `argmin_z ell(z) + <z, lambda> + beta ||z - m||^2`, is the prox
//! with `t = 1 / (2 beta)` at `v = m - lambda / (2 beta)`; [`admm_to_prox`] converts.

use autodiff::Real;
use nalgebra::DMatrix;

use crate::activation::sigmoid;
use crate::dataset::Targets;
use crate::error::{NetsError, Result};
use crate::loss::{Loss, LossKind};

/// Newton tolerance of the numeric proxes: stop when `t ||grad||_2 <= NEWTON_TOL (1 +
/// ||z||_inf)`, which bounds the distance to the minimiser by that amount (the objective
/// is `1/t`-strongly convex), or when the gradient is at rounding level.
pub const NEWTON_TOL: f64 = 1e-12;
/// Iteration cap of the numeric proxes (an error is returned beyond it).
pub const NEWTON_MAX_ITER: usize = 100;

fn check_t(op: &'static str, t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(NetsError::InvalidArgument {
            op,
            name: "t",
            value: t,
            reason: "must be finite and > 0",
        })
    }
}

/// `(v, t)` of the prox equal to `argmin_z ell(z) + lambda z + beta (z - m)^2`:
/// `t = 1 / (2 beta)`, `v = m - lambda / (2 beta)`.
pub fn admm_to_prox(m: f64, lambda: f64, beta: f64) -> (f64, f64) {
    (m - lambda / (2.0 * beta), 1.0 / (2.0 * beta))
}

/// MSE: `argmin_z (1/2)(z - y)^2 + (1/(2t))(z - v)^2 = (t y + v) / (1 + t)`.
pub fn mse_prox(y: f64, v: f64, t: f64) -> f64 {
    (t * y + v) / (1.0 + t)
}

/// Binary logistic: `argmin_z softplus(z) - y z + (1/(2t))(z - v)^2` by safeguarded
/// Newton (tolerance [`NEWTON_TOL`] on `|z - z*|`).
pub fn logistic_prox(y: f64, v: f64, t: f64) -> Result<f64> {
    check_t("logistic_prox", t)?;
    // The minimiser lies within t of v - t (y - sigmoid) with sigmoid in (0,1): bracket.
    let (mut lo, mut hi) = (v + t * (y - 1.0), v + t * y);
    let mut z = v;
    for _ in 0..NEWTON_MAX_ITER {
        let s = sigmoid(z);
        let g = s - y + (z - v) / t;
        if (t * g).abs() <= NEWTON_TOL * (1.0 + z.abs()) {
            return Ok(z);
        }
        if g > 0.0 {
            hi = z;
        } else {
            lo = z;
        }
        let c = s * (1.0 - s) + 1.0 / t;
        let next = z - g / c;
        z = if next > lo && next < hi {
            next
        } else {
            0.5 * (lo + hi)
        };
    }
    Err(NetsError::NoConvergence {
        op: "logistic_prox",
        iterations: NEWTON_MAX_ITER,
        residual: hi - lo,
    })
}

/// Softmax cross-entropy, one sample: `argmin_z -sum_k y_k log softmax(z)_k +
/// (1/(2t)) ||z - v||^2` for targets `y` (K entries, sum 1 for labels). Newton's method
/// with the Hessian `s (diag p - p p^T) + I/t` (`s = sum y`) inverted by
/// Sherman-Morrison in O(K), and backtracking (Armijo, factor 1/2). Stops when
/// `t ||grad||_2 <= NEWTON_TOL (1 + ||z||_inf)` (which bounds `||z - z*||` by the same)
/// or when the gradient is at rounding level. `out` receives z;
/// `work` needs `3 K` entries. Returns the number of Newton steps.
pub fn softmax_ce_prox(
    y: &[f64],
    v: &[f64],
    t: f64,
    out: &mut [f64],
    work: &mut [f64],
) -> Result<usize> {
    const OP: &str = "softmax_ce_prox";
    check_t(OP, t)?;
    let k = y.len();
    if v.len() != k || out.len() != k || work.len() < 3 * k {
        return Err(NetsError::Shape {
            op: OP,
            detail: format!(
                "y has {k} entries, v {}, out {}, work {} (needs {})",
                v.len(),
                out.len(),
                work.len(),
                3 * k
            ),
        });
    }
    let (p, rest) = work.split_at_mut(k);
    let (g, dz) = rest.split_at_mut(k);
    let s: f64 = y.iter().sum();
    let obj = |z: &[f64]| -> f64 {
        let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + z.iter().map(|x| (x - mx).exp()).sum::<f64>().ln();
        let ce: f64 = y.iter().zip(z).map(|(yi, zi)| yi * (lse - zi)).sum();
        let q: f64 = z.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
        ce + q / (2.0 * t)
    };
    let grad_norm = |z: &[f64]| -> f64 {
        let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let se: f64 = z.iter().map(|x| (x - mx).exp()).sum();
        (0..k)
            .map(|i| {
                let gi = s * (z[i] - mx).exp() / se - y[i] + (z[i] - v[i]) / t;
                gi * gi
            })
            .sum::<f64>()
            .sqrt()
    };
    out.copy_from_slice(v);
    let mut last_gn = f64::NAN;
    for it in 0..NEWTON_MAX_ITER {
        let mx = out.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let se: f64 = out.iter().map(|x| (x - mx).exp()).sum();
        for i in 0..k {
            p[i] = (out[i] - mx).exp() / se;
            g[i] = s * p[i] - y[i] + (out[i] - v[i]) / t;
        }
        let gn = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        last_gn = gn;
        let zmax = out.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let qmax = out
            .iter()
            .zip(v)
            .fold(0.0f64, |a, (x, w)| a.max((x - w).abs()))
            / t;
        if t * gn <= NEWTON_TOL * (1.0 + zmax) || gn <= 16.0 * f64::EPSILON * (1.0 + s + qmax) {
            return Ok(it);
        }
        // (M - s p p^T)^{-1} g with M = diag(s p + 1/t): Sherman-Morrison.
        let mut pmg = 0.0;
        let mut pmp = 0.0;
        for i in 0..k {
            let mi = s * p[i] + 1.0 / t;
            pmg += p[i] * g[i] / mi;
            pmp += p[i] * p[i] / mi;
        }
        let coef = s * pmg / (1.0 - s * pmp);
        for i in 0..k {
            let mi = s * p[i] + 1.0 / t;
            dz[i] = -(g[i] + coef * p[i]) / mi;
        }
        let f0 = obj(out);
        let slope: f64 = g.iter().zip(dz.iter()).map(|(a, b)| a * b).sum();
        let mut step = 1.0;
        loop {
            // Trial point stored in p (p is recomputed at the next iteration).
            for i in 0..k {
                p[i] = out[i] + step * dz[i];
            }
            // Armijo; or, near the minimiser where objective differences drown in
            // rounding, a halving of the gradient norm at an objective that did not rise
            // beyond rounding. (Accepting a halved gradient norm alone let Newton cycle
            // between two points far from the minimiser, one of them uphill: K = 10,
            // |v| <= 8, t = 100 failed in 3 of 4 draws.)
            let trial = obj(p);
            let rounding = 64.0 * f64::EPSILON * (1.0 + f0.abs());
            if trial <= f0 + 1e-4 * step * slope
                || (trial <= f0 + rounding && grad_norm(p) <= 0.5 * gn)
                || step < 1e-12
            {
                break;
            }
            step *= 0.5;
        }
        out.copy_from_slice(p);
    }
    Err(NetsError::NoConvergence {
        op: OP,
        iterations: NEWTON_MAX_ITER,
        residual: last_gn,
    })
}

/// The hinge output step of Taylor et al. (ICML 2016; ALGORITHMS.md 2.2) for the
/// entrywise binary hinge `ell(z, 1) = max(1 - z, 0)`, `ell(z, 0) = max(z, 0)`:
/// `argmin_z ell(z, y) + lambda z + beta (z - m)^2`, `beta > 0`, in closed form (the
/// objective is convex and piecewise quadratic: the stationary point of the piece that
/// contains it, else the kink).
pub fn hinge_output_step(y: bool, m: f64, lambda: f64, beta: f64) -> Result<f64> {
    if !(beta.is_finite() && beta > 0.0) {
        return Err(NetsError::InvalidArgument {
            op: "hinge_output_step",
            name: "beta",
            value: beta,
            reason: "must be finite and > 0",
        });
    }
    for (name, v) in [("m", m), ("lambda", lambda)] {
        if !v.is_finite() {
            return Err(NetsError::InvalidArgument {
                op: "hinge_output_step",
                name,
                value: v,
                reason: "must be finite",
            });
        }
    }
    let b2 = 2.0 * beta;
    Ok(if y {
        let z_flat = m - lambda / b2; // piece z >= 1 (loss 0)
        let z_slope = m + (1.0 - lambda) / b2; // piece z <= 1 (loss 1 - z)
        if z_flat >= 1.0 {
            z_flat
        } else if z_slope <= 1.0 {
            z_slope
        } else {
            1.0
        }
    } else {
        let z_flat = m - lambda / b2; // piece z <= 0 (loss 0)
        let z_slope = m - (1.0 + lambda) / b2; // piece z >= 0 (loss z)
        if z_flat <= 0.0 {
            z_flat
        } else if z_slope >= 0.0 {
            z_slope
        } else {
            0.0
        }
    })
}

impl Loss {
    /// Column-wise prox of the per-sample loss in the output:
    /// `out_n = argmin_z ell(z, y_n) + (1/(2t)) ||z - v_n||^2` for every column n of `v`
    /// (`K x N`). MSE: closed form; logistic: entrywise Newton; softmax CE: Newton
    /// ([`softmax_ce_prox`]). The hinge has no closed-form multiclass prox here (use
    /// [`hinge_output_step`] for the entrywise binary hinge): an error.
    pub fn output_prox<T: Real>(
        &self,
        targets: &Targets<T>,
        v: &DMatrix<T>,
        t: f64,
        out: &mut DMatrix<T>,
    ) -> Result<()> {
        check_t("Loss::output_prox", t)?;
        let view = self.target_view(v.nrows(), v.ncols(), targets)?;
        if out.shape() != v.shape() {
            *out = DMatrix::zeros(v.nrows(), v.ncols());
        }
        let k = v.nrows();
        match self.kind {
            LossKind::Mse => {
                for n in 0..v.ncols() {
                    for i in 0..k {
                        out[(i, n)] =
                            T::of(mse_prox(view.at(i, n).to_f64(), v[(i, n)].to_f64(), t));
                    }
                }
            }
            LossKind::Logistic => {
                for n in 0..v.ncols() {
                    for i in 0..k {
                        out[(i, n)] = T::of(logistic_prox(
                            view.at(i, n).to_f64(),
                            v[(i, n)].to_f64(),
                            t,
                        )?);
                    }
                }
            }
            LossKind::SoftmaxCrossEntropy => {
                let mut y = vec![0.0; k];
                let mut vv = vec![0.0; k];
                let mut z = vec![0.0; k];
                let mut work = vec![0.0; 3 * k];
                for n in 0..v.ncols() {
                    for i in 0..k {
                        y[i] = view.at(i, n).to_f64();
                        vv[i] = v[(i, n)].to_f64();
                    }
                    softmax_ce_prox(&y, &vv, t, &mut z, &mut work)?;
                    for i in 0..k {
                        out[(i, n)] = T::of(z[i]);
                    }
                }
            }
            LossKind::MulticlassHinge => {
                return Err(NetsError::Unsupported {
                    op: "Loss::output_prox",
                    what: "multiclass_hinge".into(),
                    reason: "no closed-form prox; use loss_prox::hinge_output_step for the binary hinge",
                });
            }
        }
        Ok(())
    }
}
