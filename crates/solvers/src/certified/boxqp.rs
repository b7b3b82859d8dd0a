//! Minimising the certified quadratic bound over the trust-region box:
//! `m(alpha) = g^T alpha + (1/2) alpha^T Q alpha` over `0 <= alpha <= u`, where `Q` is
//! symmetric but may be indefinite (a small nonconvex box QP).
//!
//! * k = 1 ([`minimize_1d`]): closed form. If `Q > 0`, `alpha = clamp(-g/Q, 0, u)`;
//!   otherwise `m` is concave or linear on the interval and its minimum is at an endpoint.
//! * small k ([`minimize_box_qp`] with `k <= max_exact_dim`): exact, by enumerating the
//!   `3^k` faces of the box. Each coordinate is at its lower bound 0, at its upper bound
//!   `u_i`, or free; on a face with free set `F` and fixed values `alpha_B`, the
//!   stationary point solves `Q_FF alpha_F = -(g_F + Q_FB alpha_B)`. A global minimiser
//!   of a continuous function on a box lies in the relative interior of some face and is
//!   stationary on it, so it is among these candidates. A face whose `Q_FF` is singular
//!   is skipped: if a minimiser lies inside it, `m` is constant along the null direction
//!   of `Q_FF` through it (the reduced gradient vanishes there and the null direction
//!   has zero curvature), so the same value is reached on a lower-dimensional face.
//!   Infeasible candidates are discarded; the best feasible one is kept; `alpha = 0`
//!   (the all-lower vertex) is always a candidate, so `m(alpha*) <= m(0) = 0`.
//! * larger k: projected Newton from `alpha = 0` (Bertsekas 1982, "Projected Newton
//!   methods for optimization problems with simple constraints"): Newton on the
//!   coordinates not held at a bound when their block of `Q` is positive definite,
//!   projected gradient otherwise, with a backtracking (Armijo) search along the
//!   projection arc. Every accepted iterate lowers `m`, so the result keeps the
//!   certificate `m(alpha) <= m(0)`. It finds a local, not necessarily global, minimum.
//!
//! Everything here is in f64 (the matrices are k x k with k = 1 or the number of layers).

use nalgebra::{DMatrix, DVector};

use crate::SolverError;

/// A minimiser of the box QP and the model change it achieves.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxQpSolution {
    /// The chosen point, `0 <= alpha_i <= u_i`.
    pub alpha: Vec<f64>,
    /// `m(alpha) = g^T alpha + (1/2) alpha^T Q alpha <= 0` (the change of the bound).
    pub value: f64,
    /// Whether the solution is the exact global minimiser (face enumeration) rather than
    /// a projected-Newton local minimiser.
    pub exact: bool,
}

/// `g^T a + (1/2) a^T Q a`.
pub fn model_value(g: &[f64], q: &DMatrix<f64>, a: &[f64]) -> f64 {
    let k = g.len();
    let mut v = 0.0;
    for i in 0..k {
        let mut qa = 0.0;
        for j in 0..k {
            qa += q[(i, j)] * a[j];
        }
        v += a[i] * (g[i] + 0.5 * qa);
    }
    v
}

/// The closed-form minimiser of `g a + (1/2) q a^2` over `[0, u]` (`u > 0` finite, `g`,
/// `q` finite; ties go to the smaller step). Returns `(a, value)`.
pub fn minimize_1d(g: f64, q: f64, u: f64) -> (f64, f64) {
    let m = |a: f64| a * (g + 0.5 * q * a);
    let a = if q > 0.0 {
        (-g / q).clamp(0.0, u)
    } else if m(u) < 0.0 {
        u
    } else {
        0.0
    };
    let v = m(a);
    if v < 0.0 { (a, v) } else { (0.0, 0.0) }
}

fn check_inputs(g: &[f64], q: &DMatrix<f64>, u: &[f64]) -> Result<(), SolverError> {
    let k = g.len();
    if k == 0 {
        return Err(SolverError::EmptyData("box QP with no variable".into()));
    }
    if q.shape() != (k, k) || u.len() != k {
        return Err(SolverError::shape(
            "box QP (Q, upper bounds)",
            format!("{k}x{k}, {k}"),
            format!("{}x{}, {}", q.nrows(), q.ncols(), u.len()),
        ));
    }
    if let Some(i) = u.iter().position(|&x| !(x > 0.0 && x.is_finite())) {
        return Err(SolverError::config(
            "certified MM",
            "trust region",
            u[i],
            "is empty or non-finite (each bound must be finite and > 0)",
        ));
    }
    if !(g.iter().all(|x| x.is_finite()) && q.iter().all(|x| x.is_finite())) {
        return Err(SolverError::NonFinite(
            "box QP coefficients (gradient or curvature)".into(),
        ));
    }
    Ok(())
}

/// Minimises `m(alpha) = g^T alpha + (1/2) alpha^T Q alpha` over `0 <= alpha <= u`
/// (module doc): exactly by face enumeration when `k <= max_exact_dim`, by projected
/// Newton otherwise. `Q` is symmetrised as `(Q + Q^T)/2`. Errors on mismatched sizes,
/// non-finite coefficients, or an empty box (`u_i <= 0`).
pub fn minimize_box_qp(
    g: &[f64],
    q: &DMatrix<f64>,
    u: &[f64],
    max_exact_dim: usize,
) -> Result<BoxQpSolution, SolverError> {
    check_inputs(g, q, u)?;
    let q = (q + q.transpose()) * 0.5;
    let k = g.len();
    if k == 1 {
        let (a, v) = minimize_1d(g[0], q[(0, 0)], u[0]);
        return Ok(BoxQpSolution {
            alpha: vec![a],
            value: v,
            exact: true,
        });
    }
    if k <= max_exact_dim {
        Ok(enumerate_faces(g, &q, u))
    } else {
        Ok(projected_newton(g, &q, u))
    }
}

/// Exact global minimum by enumerating the 3^k faces (module doc).
fn enumerate_faces(g: &[f64], q: &DMatrix<f64>, u: &[f64]) -> BoxQpSolution {
    let k = g.len();
    let mut best = vec![0.0; k];
    let mut best_v = 0.0;
    let mut state = vec![0u8; k]; // 0: at 0, 1: at u, 2: free
    let mut cand = vec![0.0; k];
    let faces = 3usize.pow(k as u32);
    for code in 0..faces {
        let mut c = code;
        for s in state.iter_mut() {
            *s = (c % 3) as u8;
            c /= 3;
        }
        let free: Vec<usize> = (0..k).filter(|&i| state[i] == 2).collect();
        for i in 0..k {
            cand[i] = match state[i] {
                0 => 0.0,
                1 => u[i],
                _ => 0.0,
            };
        }
        if !free.is_empty() {
            let nf = free.len();
            let qff = DMatrix::from_fn(nf, nf, |r, s| q[(free[r], free[s])]);
            let rhs = DVector::from_fn(nf, |r, _| {
                let i = free[r];
                let mut v = -g[i];
                for j in 0..k {
                    if state[j] != 2 {
                        v -= q[(i, j)] * cand[j];
                    }
                }
                v
            });
            let Some(sol) = qff.lu().solve(&rhs) else {
                continue;
            };
            let mut feasible = true;
            for (r, &i) in free.iter().enumerate() {
                let a = sol[r];
                let tol = 1e-12 * u[i];
                if !a.is_finite() || a < -tol || a > u[i] + tol {
                    feasible = false;
                    break;
                }
                cand[i] = a.clamp(0.0, u[i]);
            }
            if !feasible {
                continue;
            }
        }
        let v = model_value(g, q, &cand);
        if v < best_v {
            best_v = v;
            best.copy_from_slice(&cand);
        }
    }
    BoxQpSolution {
        alpha: best,
        value: best_v,
        exact: true,
    }
}

/// Projected Newton / projected gradient with Armijo backtracking from 0 (module doc).
fn projected_newton(g: &[f64], q: &DMatrix<f64>, u: &[f64]) -> BoxQpSolution {
    let k = g.len();
    let project = |a: &mut [f64]| {
        for (x, &hi) in a.iter_mut().zip(u) {
            *x = x.clamp(0.0, hi);
        }
    };
    let qnorm = q.norm();
    let mut alpha = vec![0.0; k];
    let mut value = 0.0;
    let mut r = vec![0.0; k];
    let mut trial = vec![0.0; k];
    for _ in 0..200 {
        for i in 0..k {
            r[i] = g[i] + (0..k).map(|j| q[(i, j)] * alpha[j]).sum::<f64>();
        }
        // Coordinates held at a bound by the gradient.
        let eps = 1e-12;
        let held: Vec<bool> = (0..k)
            .map(|i| {
                (alpha[i] <= eps * u[i] && r[i] > 0.0)
                    || (alpha[i] >= u[i] * (1.0 - eps) && r[i] < 0.0)
            })
            .collect();
        let free: Vec<usize> = (0..k).filter(|&i| !held[i]).collect();
        let mut dirs: Vec<(Vec<f64>, f64)> = Vec::with_capacity(2);
        if !free.is_empty() {
            let nf = free.len();
            let qff = DMatrix::from_fn(nf, nf, |a, b| q[(free[a], free[b])]);
            if let Some(ch) = qff.cholesky() {
                let rf = DVector::from_fn(nf, |a, _| -r[free[a]]);
                let dn = ch.solve(&rf);
                let mut d = vec![0.0; k];
                for (a, &i) in free.iter().enumerate() {
                    d[i] = dn[a];
                }
                dirs.push((d, 1.0));
            }
        }
        let gd: Vec<f64> = (0..k).map(|i| if held[i] { 0.0 } else { -r[i] }).collect();
        let gnorm = gd.iter().map(|x| x * x).sum::<f64>().sqrt();
        if gnorm == 0.0 {
            break;
        }
        let t0 = if qnorm > 0.0 {
            1.0 / qnorm
        } else {
            u.iter().cloned().fold(0.0, f64::max) / gnorm
        };
        dirs.push((gd, t0));
        let mut moved = false;
        for (d, t_start) in &dirs {
            let mut t = *t_start;
            for _ in 0..60 {
                for i in 0..k {
                    trial[i] = alpha[i] + t * d[i];
                }
                project(&mut trial);
                let decrease: f64 = (0..k).map(|i| r[i] * (trial[i] - alpha[i])).sum();
                let v = model_value(g, q, &trial);
                if v < value && v <= value + 1e-4 * decrease {
                    moved = true;
                    break;
                }
                t *= 0.5;
            }
            if moved {
                break;
            }
        }
        if !moved {
            break;
        }
        let v = model_value(g, q, &trial);
        let step: f64 = (0..k).map(|i| (trial[i] - alpha[i]).abs()).sum();
        alpha.copy_from_slice(&trial);
        value = v;
        let scale: f64 = u.iter().sum();
        if step <= 1e-14 * scale {
            break;
        }
    }
    BoxQpSolution {
        alpha,
        value,
        exact: false,
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops mirror the maths in these checks
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute-force minimum over a regular grid of `n` points per coordinate.
    fn grid_min(g: &[f64], q: &DMatrix<f64>, u: &[f64], n: usize) -> f64 {
        let k = g.len();
        let mut idx = vec![0usize; k];
        let mut best = f64::INFINITY;
        let mut a = vec![0.0; k];
        loop {
            for i in 0..k {
                a[i] = u[i] * idx[i] as f64 / (n - 1) as f64;
            }
            best = best.min(model_value(g, q, &a));
            let mut i = 0;
            loop {
                if i == k {
                    return best;
                }
                idx[i] += 1;
                if idx[i] < n {
                    break;
                }
                idx[i] = 0;
                i += 1;
            }
        }
    }

    #[test]
    fn one_dimensional_cases_by_hand() {
        // Convex, interior: m = -2a + a^2 on [0, 5] -> a = 1, m = -1.
        assert_eq!(minimize_1d(-2.0, 2.0, 5.0), (1.0, -1.0));
        // Convex, clipped at the edge: a = 0.5, m = -1 + 0.25.
        assert_eq!(minimize_1d(-2.0, 2.0, 0.5), (0.5, -0.75));
        // Concave with descent: far end.
        assert_eq!(minimize_1d(-1.0, -2.0, 3.0), (3.0, -12.0));
        // Ascent direction: no move.
        assert_eq!(minimize_1d(1.0, 4.0, 3.0), (0.0, 0.0));
        assert_eq!(minimize_1d(0.0, -4.0, 3.0).0, 3.0);
        // Linear descent: far end; flat: no move.
        assert_eq!(minimize_1d(-1.0, 0.0, 2.0), (2.0, -2.0));
        assert_eq!(minimize_1d(0.0, 0.0, 2.0), (0.0, 0.0));
    }

    #[test]
    fn two_dimensional_indefinite_case_by_hand() {
        // m = -a1 - a2 + (1/2)(a1^2 - a2^2) on [0,2]^2: a1 = 1 (interior), a2 = 2 (edge).
        let q = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -1.0]);
        let s = minimize_box_qp(&[-1.0, -1.0], &q, &[2.0, 2.0], 6).unwrap();
        assert_eq!(s.alpha, vec![1.0, 2.0]);
        assert!((s.value - (-0.5 - 4.0)).abs() < 1e-15);
        assert!(s.exact);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let q = DMatrix::identity(2, 2);
        let e = minimize_box_qp(&[1.0, 1.0], &q, &[1.0, 0.0], 6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid certified MM config: trust region = 0 is empty or non-finite (each bound must be finite and > 0)"
        );
        let e = minimize_box_qp(&[f64::NAN, 1.0], &q, &[1.0, 1.0], 6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "non-finite value in box QP coefficients (gradient or curvature)"
        );
        let e = minimize_box_qp(&[1.0], &q, &[1.0], 6).unwrap_err();
        assert!(e.to_string().contains("shape mismatch"), "{e}");
        assert!(minimize_box_qp(&[], &DMatrix::zeros(0, 0), &[], 6).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Face enumeration is never worse than a fine grid (it is the global minimum),
        /// and is feasible with m <= 0; indefinite Q included.
        #[test]
        fn enumeration_beats_brute_force_grid(
            k in 1usize..=3,
            gv in prop::collection::vec(-3.0f64..3.0, 3),
            qv in prop::collection::vec(-3.0f64..3.0, 9),
            uv in prop::collection::vec(0.1f64..3.0, 3),
        ) {
            let g = gv[..k].to_vec();
            let u = uv[..k].to_vec();
            let m = DMatrix::from_column_slice(k, k, &qv[..k * k]);
            let q = (&m + m.transpose()) * 0.5;
            let s = minimize_box_qp(&g, &q, &u, 6).unwrap();
            prop_assert!(s.exact);
            for i in 0..k {
                prop_assert!(s.alpha[i] >= 0.0 && s.alpha[i] <= u[i]);
            }
            prop_assert!((model_value(&g, &q, &s.alpha) - s.value).abs() < 1e-12);
            prop_assert!(s.value <= 0.0);
            let n = [0, 2001, 201, 41][k];
            let grid = grid_min(&g, &q, &u, n);
            prop_assert!(s.value <= grid + 1e-12, "k {} exact {} grid {}", k, s.value, grid);
            // Projected Newton keeps the certificate and is feasible.
            let pn = projected_newton(&g, &q, &u);
            prop_assert!(pn.value <= 0.0);
            prop_assert!(pn.value >= s.value - 1e-12);
            for i in 0..k {
                prop_assert!(pn.alpha[i] >= 0.0 && pn.alpha[i] <= u[i]);
            }
            // On a convex instance it finds the global minimum.
            if q.clone().cholesky().is_some() {
                prop_assert!(pn.value <= s.value + 1e-8 * (1.0 + s.value.abs()),
                    "convex: newton {} exact {}", pn.value, s.value);
            }
        }
    }

    #[test]
    fn projected_newton_solves_a_larger_convex_instance() {
        // Diagonal convex Q: the minimiser is the coordinatewise clip of -g/q.
        let k = 9;
        let q = DMatrix::from_diagonal(&DVector::from_fn(k, |i, _| 1.0 + i as f64));
        let g: Vec<f64> = (0..k)
            .map(|i| if i % 2 == 0 { -3.0 } else { 1.0 })
            .collect();
        let u = vec![1.0; k];
        let s = minimize_box_qp(&g, &q, &u, 6).unwrap();
        assert!(!s.exact);
        for i in 0..k {
            let expect = (-g[i] / (1.0 + i as f64)).clamp(0.0, 1.0);
            assert!((s.alpha[i] - expect).abs() < 1e-9, "{i}: {:?}", s.alpha);
        }
    }
}
