//! Central finite-difference gradient checker, for users and other crates.
//!
//! For each entry `x_i` of each parameter matrix, the numeric derivative is
//! `(f(x + h e_i) - f(x - h e_i)) / (x_i^+ - x_i^-)` with `h = step * max(1, |x_i|)`
//! (the denominator uses the actually representable perturbed values), whose error is
//! `O(h^2 f''') + O(eps |f| / h)`; `step` defaults to `eps^(1/3)`, the usual balance of
//! the two (about 6e-6 for f64, 5e-3 for f32). The comparison with the analytic
//! gradient `a_i` uses the relative error `|a_i - n_i| / max(|a_i|, |n_i|, floor)`,
//! which is a plain relative error for gradients larger than `floor` (default 1) and an
//! absolute one below it, so tiny gradients dominated by rounding do not fail spuriously.
//! The checker cannot tell a wrong derivative from a kink inside `[x - h, x + h]`: keep
//! checked inputs away from the kinks of relu/abs/hinge.

use crate::{AutodiffError, Real, Result, Tape, Var};
use nalgebra::DMatrix;

/// Settings of [`check_gradient`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheckConfig {
    /// Relative step `h / max(1, |x|)`; `None` means `eps^(1/3)` of the scalar type.
    pub step: Option<f64>,
    /// Denominator floor of the relative error (see the module documentation).
    pub floor: f64,
}

impl Default for GradCheckConfig {
    fn default() -> Self {
        GradCheckConfig {
            step: None,
            floor: 1.0,
        }
    }
}

/// One checked entry: where it is and both derivatives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheckEntry {
    /// Index of the parameter matrix.
    pub param: usize,
    /// Row of the entry.
    pub row: usize,
    /// Column of the entry.
    pub col: usize,
    /// The analytic derivative given by the caller.
    pub analytic: f64,
    /// The central finite difference.
    pub numeric: f64,
    /// `|analytic - numeric| / max(|analytic|, |numeric|, floor)`.
    pub rel_error: f64,
}

/// Result of a gradient check: the worst relative error and where it occurred.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// Largest relative error over all entries (0 if there are none; NaN counts as inf).
    pub max_rel_error: f64,
    /// Largest absolute error `|analytic - numeric|` over all entries.
    pub max_abs_error: f64,
    /// The entry with the largest relative error.
    pub worst: Option<GradCheckEntry>,
    /// Number of entries checked.
    pub checked: usize,
}

impl GradCheckReport {
    /// Whether the worst relative error is at most `tol`.
    pub fn passes(&self, tol: f64) -> bool {
        self.max_rel_error <= tol
    }
}

impl std::fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gradient check over {} entries: max relative error {:.3e}, max absolute error {:.3e}",
            self.checked, self.max_rel_error, self.max_abs_error
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                " (worst at param {} entry ({}, {}): analytic {:.6e}, numeric {:.6e})",
                w.param, w.row, w.col, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

/// Compares analytic gradients with central finite differences of `f`.
///
/// `f` maps the parameter matrices (in the order of `params`) to a scalar; it is called
/// twice per entry with one entry perturbed. `analytic[i]` must have the shape of
/// `params[i]`. Errors if the counts or shapes differ, or if `f` fails.
pub fn check_gradient<T, F>(
    mut f: F,
    params: &[DMatrix<T>],
    analytic: &[DMatrix<T>],
    config: &GradCheckConfig,
) -> Result<GradCheckReport>
where
    T: Real,
    F: FnMut(&[DMatrix<T>]) -> Result<T>,
{
    if params.len() != analytic.len() {
        return Err(AutodiffError::InvalidArgument {
            op: "check_gradient",
            what: format!(
                "{} parameter matrices but {} analytic gradients",
                params.len(),
                analytic.len()
            ),
        });
    }
    for (p, a) in params.iter().zip(analytic) {
        if p.shape() != a.shape() {
            return Err(AutodiffError::ShapeMismatch {
                op: "check_gradient",
                lhs_name: "parameter",
                lhs: p.shape(),
                rhs_name: "analytic gradient",
                rhs: a.shape(),
                expected: "each gradient must have the shape of its parameter",
            });
        }
    }
    let step = validate_config(config)?.unwrap_or_else(|| T::EPS.to_f64().cbrt());
    let mut work: Vec<DMatrix<T>> = params.to_vec();
    let mut report = GradCheckReport {
        max_rel_error: 0.0,
        max_abs_error: 0.0,
        worst: None,
        checked: 0,
    };
    for p in 0..work.len() {
        let (rows, cols) = work[p].shape();
        for col in 0..cols {
            for row in 0..rows {
                let x0 = work[p][(row, col)];
                let h = T::of(step * x0.to_f64().abs().max(1.0));
                let (xp, xm) = (x0 + h, x0 - h);
                work[p][(row, col)] = xp;
                let fp = f(&work)?;
                work[p][(row, col)] = xm;
                let fm = f(&work)?;
                work[p][(row, col)] = x0;
                let numeric = (fp.to_f64() - fm.to_f64()) / (xp.to_f64() - xm.to_f64());
                let a = analytic[p][(row, col)].to_f64();
                let abs = (a - numeric).abs();
                let denom = a.abs().max(numeric.abs()).max(config.floor);
                let rel = if abs.is_nan() {
                    f64::INFINITY
                } else {
                    abs / denom
                };
                report.checked += 1;
                report.max_abs_error = report.max_abs_error.max(abs);
                if report.worst.is_none() || rel > report.max_rel_error {
                    report.max_rel_error = rel;
                    report.worst = Some(GradCheckEntry {
                        param: p,
                        row,
                        col,
                        analytic: a,
                        numeric,
                        rel_error: rel,
                    });
                }
            }
        }
    }
    Ok(report)
}

/// Rejects a step that is not finite and positive (a zero step divides 0 by 0) and a
/// floor that is not finite and positive (a zero floor gives `0/0` relative errors where
/// both derivatives vanish); returns the step.
fn validate_config(config: &GradCheckConfig) -> Result<Option<f64>> {
    if let Some(step) = config.step.filter(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(AutodiffError::InvalidArgument {
            op: "check_gradient",
            what: format!("step must be finite and positive, got {step}"),
        });
    }
    if !(config.floor.is_finite() && config.floor > 0.0) {
        return Err(AutodiffError::InvalidArgument {
            op: "check_gradient",
            what: format!("floor must be finite and positive, got {}", config.floor),
        });
    }
    Ok(config.step)
}

/// Checks a function recorded on a tape: `build` records a 1x1 result from the leaves
/// it is given (one param per matrix of `params`, in order); the analytic gradient comes
/// from [`Tape::backward`] (zero where nothing flowed) and the numeric one from
/// re-recording `build` with perturbed parameters.
pub fn check_tape_gradient<T, B>(
    mut build: B,
    params: &[DMatrix<T>],
    config: &GradCheckConfig,
) -> Result<GradCheckReport>
where
    T: Real,
    B: FnMut(&mut Tape<T>, &[Var]) -> Result<Var>,
{
    let mut tape = Tape::new();
    let mut vars = Vec::with_capacity(params.len());
    let mut record = |tape: &mut Tape<T>, ps: &[DMatrix<T>], vars: &mut Vec<Var>| {
        tape.reset();
        vars.clear();
        vars.extend(ps.iter().map(|p| tape.param(p)));
        build(tape, vars)
    };
    let out = record(&mut tape, params, &mut vars)?;
    tape.backward(out)?;
    let analytic: Vec<DMatrix<T>> = vars
        .iter()
        .zip(params)
        .map(|(&v, p)| {
            tape.grad(v)
                .cloned()
                .unwrap_or_else(|| DMatrix::zeros(p.nrows(), p.ncols()))
        })
        .collect();
    check_gradient(
        |ps| {
            let out = record(&mut tape, ps, &mut vars)?;
            tape.scalar(out)
        },
        params,
        &analytic,
        config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::dmatrix;

    #[test]
    fn exact_gradient_passes_and_wrong_one_is_located() {
        // f(A, b) = sum(A^2) + 3 b_0.
        let a = dmatrix![1.0, -2.0; 0.5, 3.0];
        let b = dmatrix![4.0];
        let f = |ps: &[DMatrix<f64>]| Ok(ps[0].map(|x| x * x).sum() + 3.0 * ps[1][0]);
        let good = [&a * 2.0, dmatrix![3.0]];
        let r = check_gradient(f, &[a.clone(), b.clone()], &good, &Default::default()).unwrap();
        assert_eq!(r.checked, 5);
        assert!(r.passes(1e-8), "{r}");
        let mut bad = good.clone();
        bad[0][(1, 0)] = 0.0; // true value 1.0
        let r = check_gradient(f, &[a, b], &bad, &Default::default()).unwrap();
        let w = r.worst.unwrap();
        assert_eq!((w.param, w.row, w.col), (0, 1, 0));
        assert!((w.numeric - 1.0).abs() < 1e-8 && w.analytic == 0.0);
        assert!((r.max_rel_error - 1.0).abs() < 1e-8);
        assert!(!r.passes(1e-3));
        assert!(r.to_string().contains("worst at param 0 entry (1, 0)"));
    }

    #[test]
    fn tape_check_and_shape_errors() {
        let w = dmatrix![0.3, -0.7; 1.1, 0.2];
        let r = check_tape_gradient(
            |t, v| {
                let s = t.sigmoid(v[0])?;
                let q = t.mul(s, v[0])?;
                t.sum_all(q)
            },
            std::slice::from_ref(&w),
            &Default::default(),
        )
        .unwrap();
        // A check over no entries would pass vacuously: all 4 entries must be compared.
        assert_eq!(r.checked, 4);
        assert!(r.passes(1e-9), "{r}");
        let e = check_gradient(
            |_| Ok(0.0),
            std::slice::from_ref(&w),
            &[dmatrix![1.0]],
            &Default::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("parameter is 2x2 but analytic gradient is 1x1"),
            "{e}"
        );
        let e = check_gradient(|_| Ok(0.0), &[w], &[], &Default::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "check_gradient: invalid argument: 1 parameter matrices but 0 analytic gradients"
        );
    }

    #[test]
    fn zero_step_or_floor_is_rejected_not_nan() {
        // f(x) = x^2 at x = 0: both derivatives are 0, so a zero floor would give 0/0.
        let x = dmatrix![0.0];
        let f = |ps: &[DMatrix<f64>]| Ok(ps[0][0] * ps[0][0]);
        let g = [dmatrix![0.0]];
        let zero_floor = GradCheckConfig {
            step: None,
            floor: 0.0,
        };
        let e = check_gradient(f, std::slice::from_ref(&x), &g, &zero_floor).unwrap_err();
        assert_eq!(
            e.to_string(),
            "check_gradient: invalid argument: floor must be finite and positive, got 0"
        );
        for step in [0.0, -1e-6, f64::NAN] {
            let cfg = GradCheckConfig {
                step: Some(step),
                floor: 1.0,
            };
            let e = check_gradient(f, std::slice::from_ref(&x), &g, &cfg).unwrap_err();
            assert!(
                e.to_string().contains("step must be finite and positive"),
                "{e}"
            );
        }
    }
}
