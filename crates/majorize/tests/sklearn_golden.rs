//! scikit-learn mode against a golden trace produced by scikit-learn 1.9.1 itself
//! (fixtures/sklearn_mu_golden.py says how).

use majorize::nmf::sklearn::SklearnStop;
use majorize::nmf::{self, NmfConfig, NmfWorkspace, Penalties};
use nalgebra::DMatrix;
use serde_json::Value;

fn mat(v: &Value) -> DMatrix<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

fn golden() -> Value {
    serde_json::from_str(include_str!("fixtures/sklearn_mu_golden.json")).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn sklearn_mode_reproduces_the_golden_objective_traces() {
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let beta = c["beta"].as_f64().unwrap();
        let pen = Penalties {
            l1_w: c["l1_w"].as_f64().unwrap(),
            l2_w: c["l2_w"].as_f64().unwrap(),
            l1_h: c["l1_h"].as_f64().unwrap(),
            l2_h: c["l2_h"].as_f64().unwrap(),
        };
        let cfg = NmfConfig::new(beta).with_penalties(pen).sklearn();
        let v = mat(&c["x"]);
        let (mut w, mut h) = (mat(&c["w0"]), mat(&c["h0"]));
        nmf::validate_inputs(&v, &w, &h, beta).unwrap();
        let mut ws = NmfWorkspace::new(v.nrows(), v.ncols(), w.ncols()).unwrap();
        let expect: Vec<f64> = c["objective"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(expect.len(), 21);
        let d0 = nmf::sklearn::sklearn_divergence(&v, &w, &h, beta, &mut ws).unwrap();
        assert!(
            rel(d0, expect[0]) < 1e-10,
            "{name} init: {d0} vs {}",
            expect[0]
        );
        for (it, e) in expect.iter().enumerate().skip(1) {
            nmf::iterate(&v, &mut w, &mut h, &cfg, &mut ws).unwrap();
            let d = nmf::sklearn::sklearn_divergence(&v, &w, &h, beta, &mut ws).unwrap();
            assert!(
                rel(d, *e) < 1e-10,
                "{name} iteration {it}: {d} vs {e} (rel {})",
                rel(d, *e)
            );
        }
        let (we, he) = (mat(&c["w_final"]), mat(&c["h_final"]));
        assert!((&w - &we).norm() <= 1e-10 * we.norm(), "{name}: final W");
        assert!((&h - &he).norm() <= 1e-10 * he.norm(), "{name}: final H");
    }
}

#[test]
fn sklearn_stopping_rule_stops_where_sklearn_does() {
    let g = golden();
    let v = mat(&g["x"]);
    for s in g["stopping"].as_array().unwrap() {
        let beta = s["beta"].as_f64().unwrap();
        let tol = s["tol"].as_f64().unwrap();
        let max_iter = s["max_iter"].as_u64().unwrap() as usize;
        let expect = s["n_iter"].as_u64().unwrap() as usize;
        let (mut w, mut h) = (mat(&g["w0"]), mat(&g["h0"]));
        let cfg = NmfConfig::new(beta).sklearn();
        let mut ws = NmfWorkspace::new(v.nrows(), v.ncols(), w.ncols()).unwrap();
        let d0 = nmf::sklearn::sklearn_divergence(&v, &w, &h, beta, &mut ws).unwrap();
        let mut stop = SklearnStop::new(tol, d0);
        let mut n_iter = max_iter;
        for it in 1..=max_iter {
            nmf::iterate(&v, &mut w, &mut h, &cfg, &mut ws).unwrap();
            let d = nmf::sklearn::sklearn_divergence(&v, &w, &h, beta, &mut ws).unwrap();
            if stop.should_stop(it, d) {
                n_iter = it;
                break;
            }
        }
        assert_eq!(n_iter, expect, "beta {beta} tol {tol}");
    }
}

#[test]
fn sklearn_regularisation_scaling() {
    let p = Penalties::sklearn(0.1, 0.2, 0.25, 6, 5);
    assert!((p.l1_w - 5.0 * 0.1 * 0.25).abs() < 1e-15);
    assert!((p.l2_w - 5.0 * 0.1 * 0.75).abs() < 1e-15);
    assert!((p.l1_h - 6.0 * 0.2 * 0.25).abs() < 1e-15);
    assert!((p.l2_h - 6.0 * 0.2 * 0.75).abs() < 1e-15);
}
