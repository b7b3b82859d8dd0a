//! The beta-divergence, its Févotte-Idier surrogate, and the MM / ME factors.

mod common;

use common::*;
use majorize::beta::{
    BetaColumn, EntrySurrogate, delta_psi, divergence, divergence_dy, gamma, split,
};
use majorize::prelude::*;
use nalgebra::DVector;
use proptest::prelude::*;
use rand::RngExt;

const BETAS: [f64; 9] = [-1.0, 0.0, 0.5, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0];

#[test]
fn divergence_facts() {
    let pts = [(0.3, 1.7), (2.0, 0.5), (1.0, 1.0), (5.0, 4.0)];
    for &b in &BETAS {
        for &(x, y) in &pts {
            let d = divergence(x, y, b);
            if x == y {
                assert!(d.abs() < 1e-15, "beta {b}");
            } else {
                assert!(d > 0.0, "beta {b}: d({x}|{y}) = {d}");
            }
            // Scale: d(cx|cy) = c^beta d(x|y).
            let c: f64 = 2.7;
            assert!(
                (divergence(c * x, c * y, b) - c.powf(b) * d).abs()
                    <= 1e-12 * (1.0 + d.abs() * c.powf(b)),
                "beta {b}"
            );
            // Split sums back.
            let (dc, dv, d0) = split(x, y, b);
            assert!(
                (dc + dv + d0 - d).abs() <= 1e-12 * (1.0 + d.abs()),
                "beta {b}"
            );
            // Derivative against central differences.
            let h = 1e-6 * y;
            let fd = (divergence(x, y + h, b) - divergence(x, y - h, b)) / (2.0 * h);
            assert!(
                (fd - divergence_dy(x, y, b)).abs() <= 1e-6 * (1.0 + fd.abs()),
                "beta {b}: {fd}"
            );
        }
    }
    // Limits: beta -> 0 and beta -> 1 of the general formula.
    for &(x, y) in &pts {
        assert!((divergence(x, y, 1e-7) - divergence(x, y, 0.0)).abs() < 1e-5);
        assert!((divergence(x, y, 1.0 + 1e-7) - divergence(x, y, 1.0)).abs() < 1e-5);
        assert!((divergence(x, y, 2.0) - 0.5 * (x - y) * (x - y)).abs() < 1e-15);
    }
    assert_eq!(gamma(0.0), 0.5);
    assert_eq!(gamma(0.5), 1.0 / 1.5);
    assert_eq!(gamma(1.5), 1.0);
    assert_eq!(gamma(3.0), 0.5);
    assert_eq!(gamma(-1.0), 1.0 / 3.0);
}

#[test]
fn split_parts_are_convex_and_concave() {
    for &b in &BETAS {
        for &x in &[0.5, 2.0] {
            for &y in &[0.3, 1.0, 3.0] {
                let h = 1e-3 * y;
                let second = |i: usize| {
                    let f = |t: f64| {
                        let s = split(x, t, b);
                        if i == 0 { s.0 } else { s.1 }
                    };
                    (f(y + h) - 2.0 * f(y) + f(y - h)) / (h * h)
                };
                assert!(second(0) >= -1e-6, "beta {b}: convex part");
                assert!(second(1) <= 1e-6, "beta {b}: concave part");
            }
        }
    }
}

fn column_report(beta: f64, l1: f64, l2: f64, seed: u64) -> CheckReport {
    let mut r = rng(seed);
    let (f, k) = (7, 3);
    let w = uniform_mat(&mut r, f, k, 0.05, 1.5);
    let v = uniform_vec(&mut r, f, 0.1, 3.0);
    let obj = BetaColumn::new(w, v, beta, l1, l2).unwrap();
    let ones = DVector::from_element(k, 1.0);
    check_surrogate(
        &obj,
        &obj,
        &mut r,
        |r| log_uniform_vec(r, &ones, 1.5),
        |r, y| {
            let s = r.random_range(0.01..3.0);
            log_uniform_vec(r, y, s)
        },
        &CheckConfig::default(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn beta_surrogate_contract(seed in any::<u64>(), bi in 0usize..9, pen in 0usize..3) {
        let beta = BETAS[bi];
        let (l1, l2) = [(0.0, 0.0), (0.3, 0.0), (0.2, 0.7)][pen];
        let rep = column_report(beta, l1, l2, seed);
        prop_assert!(rep.passes(1e-10), "beta {beta} l1 {l1} l2 {l2}: {:?}", rep.worst());
    }
}

#[test]
fn beta_surrogate_contract_every_beta_and_penalty() {
    for (i, &beta) in BETAS.iter().enumerate() {
        for (l1, l2) in [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.2, 0.7)] {
            let rep = column_report(beta, l1, l2, 100 + i as u64);
            assert!(
                rep.passes(1e-10),
                "beta {beta} l1 {l1} l2 {l2}: {:?}",
                rep.worst()
            );
            assert_eq!(rep.points_checked, 8 * 16);
        }
    }
}

#[test]
fn mm_factor_is_the_surrogate_minimiser() {
    for &b in &BETAS {
        for &(n, d, h, l1, l2) in &[
            (2.0, 1.0, 1.0, 0.0, 0.0),
            (0.4, 1.3, 0.7, 0.1, 0.0),
            (1.5, 0.8, 2.0, 0.2, 0.9),
            (0.1, 2.0, 0.5, 0.0, 3.0),
        ] {
            let e = EntrySurrogate::new(b, n, d, h, l1, l2);
            let (p, _) = e.mm();
            assert!(p > 0.0);
            // Stationary and a minimum on a grid around it.
            assert!(
                e.dphi(p).abs() <= 1e-10 * (1.0 + e.d_eff + e.q),
                "beta {b}: {}",
                e.dphi(p)
            );
            for t in [0.5, 0.9, 0.99, 1.01, 1.1, 2.0] {
                assert!(e.phi(p * t) >= e.phi(p) - 1e-14, "beta {b}");
            }
            if l2 == 0.0 || b >= 2.0 {
                let r = n / e.d_eff;
                assert!((p - r.powf(gamma(b))).abs() <= 1e-14 * p);
            }
        }
    }
}

#[test]
fn me_factor_is_the_level_set_partner() {
    for &b in &BETAS {
        for &(n, d, h, l2) in &[
            (2.0, 1.0, 1.0, 0.0),
            (0.4, 1.3, 0.7, 0.0),
            (1.5, 0.8, 2.0, 0.9),
            (0.7, 1.0, 1.0, 0.0),
        ] {
            let e = EntrySurrogate::new(b, n, d, h, 0.0, l2);
            let (pm, _) = e.mm();
            let (pe, _) = e.me();
            // Surrogate at the ME point never above its value at the anchor (Phi(1) = 0),
            // up to rounding of the closed forms (the root solves return Phi <= 0 exactly).
            let tol = 1e-14 * e.d_eff * (1.0 + pe);
            assert!(e.phi(pe) <= tol, "beta {b}: phi(me) = {}", e.phi(pe));
            if pe != pm {
                // On the other side of the minimiser, and on the level set.
                assert!((pe - pm) * (1.0 - pm) < 0.0, "beta {b}: pm {pm} pe {pe}");
                let scale = e.d_eff * (pe - 1.0).abs() + 1e-300;
                assert!(e.phi(pe).abs() <= 1e-12 * scale, "beta {b}: {}", e.phi(pe));
            } else {
                // Fallback only when no positive ME point exists (beta > 1, MM point < 1).
                assert!(b > 1.0 && pm < 1.0, "beta {b}: unexpected fallback");
            }
        }
    }
    // Closed forms.
    let e0 = EntrySurrogate::new(0.0, 3.0, 1.5, 1.0, 0.0, 0.0);
    assert_eq!(e0.me().0, 2.0); // R
    assert_eq!(e0.mm().0, 2f64.sqrt());
    let e2 = EntrySurrogate::new(2.0, 3.0, 2.0, 1.0, 0.0, 0.0);
    assert_eq!(e2.me().0, 2.0); // 2R - 1
    let e2_neg = EntrySurrogate::new(2.0, 0.8, 2.0, 1.0, 0.0, 0.0);
    assert_eq!(e2_neg.me().0, 0.4); // 2R - 1 < 0: falls back to the MM point R
    // delta_psi is 0 at p = 1 and the general solve agrees with the closed forms nearby.
    for &b in &BETAS {
        assert_eq!(delta_psi(1.0, 0.7, b), 0.0);
    }
    let near0 = EntrySurrogate::new(1e-9, 3.0, 1.5, 1.0, 0.0, 0.0).me().0;
    assert!((near0 - 2.0).abs() < 1e-6, "{near0}");
    let near2 = EntrySurrogate::new(2.0 - 1e-9, 3.0, 2.0, 1.0, 0.0, 0.0)
        .me()
        .0;
    assert!((near2 - 2.0).abs() < 1e-6, "{near2}");
}

#[test]
fn column_me_and_heuristic_points_do_not_increase_where_guaranteed() {
    let mut r = rng(9);
    for &b in &BETAS {
        let w = uniform_mat(&mut r, 6, 3, 0.1, 1.0);
        let v = uniform_vec(&mut r, 6, 0.2, 2.0);
        let obj = BetaColumn::new(w, v, b, 0.0, 0.0).unwrap();
        let h = uniform_vec(&mut r, 3, 0.2, 2.0);
        let s = obj.build(&h).unwrap();
        let f0 = obj.value(&h).unwrap();
        let me = s.me_point();
        assert!(obj.value(&me).unwrap() <= f0 * (1.0 + 1e-12), "beta {b}");
        let mm = s.minimize(&InnerSolve::default()).unwrap();
        assert_eq!(mm.kind, MinimizerKind::ClosedForm);
        assert!(
            obj.value(&mm.point).unwrap() <= f0 * (1.0 + 1e-12),
            "beta {b}"
        );
        if (0.0..=2.0).contains(&b) {
            assert!(
                obj.value(&s.heuristic_point()).unwrap() <= f0 * (1.0 + 1e-12),
                "beta {b}"
            );
        }
    }
}

#[test]
fn column_errors_are_typed() {
    use majorize::MajorizeError;
    use nalgebra::DMatrix;
    let w = DMatrix::from_element(3, 2, 1.0);
    let v = DVector::from_vec(vec![1.0, 0.0, 2.0]);
    assert!(matches!(
        BetaColumn::new(w.clone(), v.clone(), 0.0, 0.0, 0.0),
        Err(MajorizeError::Zero { .. })
    ));
    assert!(BetaColumn::new(w.clone(), v.clone(), 1.0, 0.0, 0.0).is_ok());
    let vneg = DVector::from_vec(vec![1.0, -1.0, 2.0]);
    assert!(matches!(
        BetaColumn::new(w.clone(), vneg, 1.0, 0.0, 0.0),
        Err(MajorizeError::Negative { .. })
    ));
    assert!(matches!(
        BetaColumn::new(w.clone(), DVector::from_element(2, 1.0), 1.0, 0.0, 0.0),
        Err(MajorizeError::Shape { .. })
    ));
    assert!(matches!(
        BetaColumn::new(w.clone(), v.clone(), f64::NAN, 0.0, 0.0),
        Err(MajorizeError::InvalidParameter { .. })
    ));
    assert!(matches!(
        BetaColumn::new(w.clone(), v.clone(), 1.0, -0.1, 0.0),
        Err(MajorizeError::InvalidParameter { .. })
    ));
    let obj = BetaColumn::new(w, v, 1.0, 0.0, 0.0).unwrap();
    assert!(matches!(
        obj.value(&DVector::from_vec(vec![1.0, 0.0])),
        Err(MajorizeError::Domain { .. })
    ));
}
