//! Relaxed majorization-equalization (Févotte & Idier's `theta = 0.95`): monotone, ahead
//! of MM on a planted problem, `theta = 1` reproduces the exact ME rule, and the
//! configuration rejects a `theta` outside `[0, 1]`.

mod common;

use common::*;
use majorize::MajorizeError;
use majorize::beta::EntrySurrogate;
use majorize::nmf::{self, DEFAULT_ME_THETA, NmfConfig, Rule};
use nalgebra::DMatrix;

/// A planted rank-4 problem: `V = W* H* + 0.05 U(0, 1)` (40 x 60), initial factors
/// uniform on `[0.1, 1]`, independent of the planted ones.
fn planted(seed: u64) -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
    let mut r = rng(seed);
    let (f, n, k) = (40, 60, 4);
    let ws = uniform_mat(&mut r, f, k, 0.0, 1.0);
    let hs = uniform_mat(&mut r, k, n, 0.0, 1.0);
    let noise = uniform_mat(&mut r, f, n, 0.0, 0.05);
    let v = &ws * &hs + noise;
    let w = uniform_mat(&mut r, f, k, 0.1, 1.0);
    let h = uniform_mat(&mut r, k, n, 0.1, 1.0);
    (v, w, h)
}

fn run(cfg: &NmfConfig, iters: usize) -> Vec<f64> {
    let (v, mut w, mut h) = planted(7);
    nmf::factorize(&v, &mut w, &mut h, cfg, iters).unwrap()
}

#[test]
fn relaxed_me_is_monotone_and_ends_below_mm_on_a_planted_problem() {
    for beta in [1.0, 1.5, 2.0, 3.0] {
        let mm = run(&NmfConfig::new(beta), 200);
        let me = run(&NmfConfig::new(beta).with_rule(Rule::Me), 200);
        for i in 1..me.len() {
            assert!(
                me[i] <= me[i - 1] * (1.0 + 1e-12),
                "beta {beta} it {i}: {} -> {}",
                me[i - 1],
                me[i]
            );
        }
        eprintln!("beta {beta}: MM {:.6e}  ME {:.6e}", mm[200], me[200]);
        // Observed ratios ME/MM: 0.75 (beta 1), 0.74 (1.5), 0.76 (2), 0.17 (3).
        assert!(
            me[200] < 0.9 * mm[200],
            "beta {beta}: ME {} vs MM {}",
            me[200],
            mm[200]
        );
    }
}

#[test]
fn theta_one_is_the_exact_equalization_rule_and_zero_is_mm() {
    for beta in [1.0, 1.5, 2.0, 3.0, 0.5] {
        for (n, d) in [(3.0, 1.5), (0.2, 1.0), (0.9, 1.0), (5.0, 0.7)] {
            let e = EntrySurrogate::new(beta, n, d, 1.3, 0.0, 0.0);
            assert_eq!(e.me_relaxed(1.0), e.me(), "beta {beta} N {n}");
            if beta >= 1.0 {
                assert_eq!(e.me_relaxed(0.0).0, e.mm().0, "beta {beta} N {n}");
            } else {
                // beta < 1: the exact ME point, unrelaxed.
                assert_eq!(e.me_relaxed(0.3), e.me(), "beta {beta} N {n}");
            }
        }
    }
    // beta = 2, R = 0.2: 2R - 1 < 0, so h_ME counts as 0 and the relaxed factor is
    // (1 - theta) R = 0.05 * 0.2 = 0.01, strictly inside (0, R).
    let e = EntrySurrogate::new(2.0, 0.2, 1.0, 1.0, 0.0, 0.0);
    assert!((e.me_relaxed(DEFAULT_ME_THETA).0 - 0.01).abs() < 1e-15);
    assert_eq!(e.me().0, 0.2);
    // beta = 2, R = 3: h_ME = 5, relaxed 3 + 0.95 * 2 = 4.9; the surrogate decreases
    // by (1 - theta) |Phi(p_MM)| at least.
    let e = EntrySurrogate::new(2.0, 3.0, 1.0, 1.0, 0.0, 0.0);
    let p = e.me_relaxed(DEFAULT_ME_THETA).0;
    assert!((p - 4.9).abs() < 1e-12);
    assert!(e.phi(p) <= 0.05 * e.phi(3.0) + 1e-12);
    assert!(e.phi(p) < 0.0 && e.phi(e.me().0).abs() < 1e-12);
}

#[test]
fn theta_one_reproduces_the_exact_rule_trace_and_bad_theta_is_rejected() {
    let exact = run(
        &NmfConfig::new(1.5).with_rule(Rule::Me).with_me_theta(1.0),
        20,
    );
    let relaxed = run(&NmfConfig::new(1.5).with_rule(Rule::Me), 20);
    assert!(exact[20] != relaxed[20]);
    // The exact rule through the per-entry API gives the same first W update.
    let (v, mut w, h) = planted(7);
    let mut ws = nmf::NmfWorkspace::new(40, 60, 4).unwrap();
    let cfg = NmfConfig::new(1.5).with_rule(Rule::Me).with_me_theta(1.0);
    let wh = &w * &h;
    let a = v.zip_map(&wh, |x, y| x * y.powf(-0.5));
    let b = wh.map(|y| y.powf(0.5));
    let num = &a * h.transpose();
    let den = &b * h.transpose();
    let expect = DMatrix::from_fn(40, 4, |i, c| {
        let e = EntrySurrogate::new(1.5, num[(i, c)], den[(i, c)], w[(i, c)], 0.0, 0.0);
        w[(i, c)] * e.me().0
    });
    nmf::update_w(&v, &mut w, &h, &cfg, &mut ws).unwrap();
    let err = (&w - &expect).abs().max();
    assert!(err < 1e-12, "max deviation {err}");
    for bad in [-0.1, 1.5, f64::NAN] {
        let cfg = NmfConfig::new(1.0).with_rule(Rule::Me).with_me_theta(bad);
        assert!(matches!(
            cfg.validate(),
            Err(MajorizeError::InvalidParameter {
                name: "me_theta",
                ..
            })
        ));
    }
}
