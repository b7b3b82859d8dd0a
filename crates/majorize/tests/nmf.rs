//! beta-NMF multiplicative updates: monotonicity, Lee-Seung equivalence, errors.

mod common;

use common::*;
use majorize::MajorizeError;
use majorize::nmf::{self, NmfConfig, NmfWorkspace, Penalties, Rule};
use nalgebra::DMatrix;

const BETAS: [f64; 7] = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0];

fn problem(seed: u64) -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
    let mut r = rng(seed);
    let (f, n, k) = (12, 10, 3);
    let v = uniform_mat(&mut r, f, n, 0.05, 2.0);
    let w = uniform_mat(&mut r, f, k, 0.1, 1.0);
    let h = uniform_mat(&mut r, k, n, 0.1, 1.0);
    (v, w, h)
}

/// Runs `iters` iterations and returns the objective trace, checking monotonicity
/// (relative tolerance 1e-12 for rounding) after every half-update.
fn monotone_run(cfg: &NmfConfig, seed: u64, iters: usize) -> Vec<f64> {
    let (v, mut w, mut h) = problem(seed);
    nmf::validate_inputs(&v, &w, &h, cfg.beta).unwrap();
    let mut ws = NmfWorkspace::new(12, 10, 3).unwrap();
    let mut prev = nmf::objective(&v, &w, &h, cfg, &mut ws).unwrap();
    let mut trace = vec![prev];
    for it in 0..iters {
        nmf::update_w(&v, &mut w, &h, cfg, &mut ws).unwrap();
        let mid = nmf::objective(&v, &w, &h, cfg, &mut ws).unwrap();
        assert!(
            mid <= prev * (1.0 + 1e-12),
            "{cfg:?} it {it} (W): {prev} -> {mid}"
        );
        nmf::update_h(&v, &w, &mut h, cfg, &mut ws).unwrap();
        let now = nmf::objective(&v, &w, &h, cfg, &mut ws).unwrap();
        assert!(
            now <= mid * (1.0 + 1e-12),
            "{cfg:?} it {it} (H): {mid} -> {now}"
        );
        assert!(w.iter().chain(h.iter()).all(|x| *x > 0.0 && x.is_finite()));
        prev = now;
        trace.push(now);
    }
    trace
}

#[test]
fn mm_and_me_never_increase_the_divergence() {
    for (i, &beta) in BETAS.iter().enumerate() {
        for rule in [Rule::Mm, Rule::Me] {
            let cfg = NmfConfig::new(beta).with_rule(rule);
            let t = monotone_run(&cfg, 40 + i as u64, 500);
            // And they make real progress.
            assert!(t[500] < 0.5 * t[0], "{cfg:?}: {} -> {}", t[0], t[500]);
        }
    }
    // Beyond the required set: a negative beta (positive data) and a large one.
    for beta in [-1.0, 4.0] {
        for rule in [Rule::Mm, Rule::Me] {
            let t = monotone_run(&NmfConfig::new(beta).with_rule(rule), 60, 200);
            assert!(t[200] < t[0], "beta {beta} {rule:?}");
        }
    }
}

#[test]
fn penalised_mm_and_me_never_increase_the_penalised_objective() {
    let pen = Penalties {
        l1_w: 0.05,
        l2_w: 0.2,
        l1_h: 0.1,
        l2_h: 0.3,
    };
    for (i, &beta) in BETAS.iter().enumerate() {
        for rule in [Rule::Mm, Rule::Me] {
            monotone_run(
                &NmfConfig::new(beta).with_rule(rule).with_penalties(pen),
                90 + i as u64,
                100,
            );
        }
    }
}

#[test]
fn heuristic_is_monotone_on_zero_to_two_and_equals_mm_on_one_to_two() {
    for (i, &beta) in [0.0, 0.5, 1.0, 1.5, 2.0].iter().enumerate() {
        monotone_run(
            &NmfConfig::new(beta).with_rule(Rule::Heuristic),
            20 + i as u64,
            200,
        );
    }
    for &beta in &[1.0, 1.3, 2.0] {
        let mm = monotone_run(&NmfConfig::new(beta), 5, 30);
        let he = monotone_run(&NmfConfig::new(beta).with_rule(Rule::Heuristic), 5, 30);
        for (a, b) in mm.iter().zip(&he) {
            assert!((a - b).abs() <= 1e-13 * a, "beta {beta}");
        }
    }
    // beta = 0: the heuristic update is the ME update.
    let me = monotone_run(&NmfConfig::new(0.0).with_rule(Rule::Me), 6, 30);
    let he = monotone_run(&NmfConfig::new(0.0).with_rule(Rule::Heuristic), 6, 30);
    for (a, b) in me.iter().zip(&he) {
        assert!((a - b).abs() <= 1e-12 * a);
    }
}

#[test]
fn beta_two_mm_is_lee_seung() {
    let (v, w0, h0) = problem(3);
    let cfg = NmfConfig::new(2.0);
    let mut ws = NmfWorkspace::new(12, 10, 3).unwrap();
    let (mut w, mut h) = (w0.clone(), h0.clone());
    let (mut wl, mut hl) = (w0, h0);
    for _ in 0..20 {
        nmf::iterate(&v, &mut w, &mut h, &cfg, &mut ws).unwrap();
        // Lee-Seung: W <- W o (V H^T) ./ (W H H^T), then H <- H o (W^T V) ./ (W^T W H).
        let num = &v * hl.transpose();
        let den = &wl * (&hl * hl.transpose());
        wl = wl.zip_zip_map(&num, &den, |x, n, d| x * n / d);
        let num = wl.transpose() * &v;
        let den = wl.transpose() * &wl * &hl;
        hl = hl.zip_zip_map(&num, &den, |x, n, d| x * n / d);
    }
    assert!(
        (&w - &wl).norm() <= 1e-12 * wl.norm(),
        "{}",
        (&w - &wl).norm()
    );
    assert!(
        (&h - &hl).norm() <= 1e-12 * hl.norm(),
        "{}",
        (&h - &hl).norm()
    );
}

#[test]
fn mm_update_matches_the_column_surrogate_minimiser() {
    use majorize::beta::BetaColumn;
    use majorize::prelude::*;
    use nalgebra::DVector;
    for &beta in &[0.0, 0.5, 1.0, 1.5, 2.5, 3.0] {
        let (v, w, h0) = problem(8);
        let mut h = h0.clone();
        let mut ws = NmfWorkspace::new(12, 10, 3).unwrap();
        let pen = Penalties {
            l1_h: 0.1,
            l2_h: 0.2,
            ..Default::default()
        };
        for rule in [Rule::Mm, Rule::Me] {
            h.copy_from(&h0);
            let cfg = NmfConfig::new(beta).with_rule(rule).with_penalties(pen);
            nmf::update_h(&v, &w, &mut h, &cfg, &mut ws).unwrap();
            for j in [0, 4, 9] {
                let col = BetaColumn::new(
                    w.clone(),
                    DVector::from_iterator(12, v.column(j).iter().copied()),
                    beta,
                    0.1,
                    0.2,
                )
                .unwrap();
                let anchor = DVector::from_iterator(3, h0.column(j).iter().copied());
                let s = col.build(&anchor).unwrap();
                let expect = match rule {
                    Rule::Mm => s.minimize(&InnerSolve::default()).unwrap().point,
                    _ => s.me_point_relaxed(nmf::DEFAULT_ME_THETA),
                };
                for c in 0..3 {
                    assert!(
                        (h[(c, j)] - expect[c]).abs() <= 1e-12 * expect[c],
                        "beta {beta} {rule:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn f32_runs_and_decreases() {
    let (v, w, h) = problem(12);
    let (v, mut w, mut h) = (
        v.map(|x| x as f32),
        w.map(|x| x as f32),
        h.map(|x| x as f32),
    );
    for beta in [0.0, 1.0, 1.5, 2.0, 3.0] {
        let (mut w1, mut h1) = (w.clone(), h.clone());
        let t = nmf::factorize(&v, &mut w1, &mut h1, &NmfConfig::new(beta), 100).unwrap();
        assert!(t[100] < 0.5 * t[0], "beta {beta}");
        for i in 1..t.len() {
            assert!(t[i] <= t[i - 1] * (1.0 + 1e-5), "beta {beta} it {i}");
        }
        let (mut w2, mut h2) = (w.clone(), h.clone());
        let cfg = NmfConfig::new(beta).with_rule(Rule::Me);
        let t = nmf::factorize(&v, &mut w2, &mut h2, &cfg, 100).unwrap();
        for i in 1..t.len() {
            assert!(t[i] <= t[i - 1] * (1.0 + 1e-5), "ME beta {beta} it {i}");
        }
    }
    let _ = (&mut w, &mut h);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (v, w, h) = problem(1);
    let mut vneg = v.clone();
    vneg[(2, 3)] = -0.1;
    assert!(matches!(
        nmf::validate_inputs(&vneg, &w, &h, 1.0),
        Err(MajorizeError::Negative { row: 2, col: 3, .. })
    ));
    let mut vz = v.clone();
    vz[(1, 1)] = 0.0;
    assert!(nmf::validate_inputs(&vz, &w, &h, 0.5).is_ok());
    assert!(matches!(
        nmf::validate_inputs(&vz, &w, &h, 0.0),
        Err(MajorizeError::Zero { what: "V", .. })
    ));
    assert!(matches!(
        nmf::validate_inputs(&vz, &w, &h, -1.0),
        Err(MajorizeError::Zero { .. })
    ));
    let mut wz = w.clone();
    wz[(0, 2)] = 0.0;
    assert!(matches!(
        nmf::validate_inputs(&v, &wz, &h, 1.0),
        Err(MajorizeError::Zero {
            what: "W",
            row: 0,
            col: 2,
            ..
        })
    ));
    let mut hn = h.clone();
    hn[(1, 0)] = f64::INFINITY;
    assert!(matches!(
        nmf::validate_inputs(&v, &w, &hn, 1.0),
        Err(MajorizeError::NonFinite { what: "H", .. })
    ));
    let mut vn = v.clone();
    vn[(0, 0)] = f64::NAN;
    assert!(matches!(
        nmf::validate_inputs(&vn, &w, &h, 1.0),
        Err(MajorizeError::NonFinite { what: "V", .. })
    ));
    let hbad = DMatrix::from_element(2, 10, 1.0);
    assert!(matches!(
        nmf::validate_inputs(&v, &w, &hbad, 1.0),
        Err(MajorizeError::Shape { .. })
    ));
    let mut ws = NmfWorkspace::new(12, 10, 3).unwrap();
    let mut hb = hbad.clone();
    assert!(matches!(
        nmf::update_h(&v, &w, &mut hb, &NmfConfig::new(1.0), &mut ws),
        Err(MajorizeError::Shape { .. })
    ));
    let (mut w1, mut h1) = (w.clone(), h.clone());
    let me_sk = NmfConfig::new(1.0).with_rule(Rule::Me).sklearn();
    assert!(matches!(
        nmf::factorize(&v, &mut w1, &mut h1, &me_sk, 3),
        Err(MajorizeError::Unsupported(_))
    ));
    let bad_pen = NmfConfig::new(1.0).with_penalties(Penalties {
        l2_h: -1.0,
        ..Default::default()
    });
    assert!(matches!(
        bad_pen.validate(),
        Err(MajorizeError::InvalidParameter { name: "l2_h", .. })
    ));
    assert!(matches!(
        NmfConfig::new(f64::INFINITY).validate(),
        Err(MajorizeError::InvalidParameter { name: "beta", .. })
    ));
}
