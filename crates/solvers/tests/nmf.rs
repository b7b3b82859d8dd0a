//! The beta-NMF solver under the driver: per-iteration objective, monotone decrease,
//! scikit-learn mode and stopping rule, checkpoint/resume, typed configuration errors.

use majorize::nmf::{Penalties, Rule};
use nalgebra::DMatrix;
use solvers::nmf::{BetaNmf, BetaNmfConfig, NmfProblem};
use solvers::{Budget, BudgetKind, Driver, MemoryStore, Problem, Solver, SolverError, Status};

fn data() -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
    // Deterministic positive data (no RNG needed).
    let v = DMatrix::from_fn(12, 10, |i, j| 0.1 + (((i * 7 + j * 13) % 17) as f64) / 8.0);
    let w = DMatrix::from_fn(12, 3, |i, j| 0.2 + (((i + 5 * j) % 7) as f64) / 9.0);
    let h = DMatrix::from_fn(3, 10, |i, j| 0.3 + (((3 * i + 2 * j) % 5) as f64) / 6.0);
    (v, w, h)
}

#[test]
fn every_rule_records_a_monotone_objective_each_iteration() {
    for beta in [0.0, 0.5, 1.0, 1.5, 2.0, 3.0] {
        for rule in [Rule::Mm, Rule::Me] {
            let cfg = BetaNmfConfig {
                beta,
                rule,
                penalties: Penalties {
                    l1_h: 0.05,
                    l2_w: 0.1,
                    ..Default::default()
                },
                ..Default::default()
            };
            let (v, w, h) = data();
            let mut p = NmfProblem::new(v, w, h, &cfg).unwrap();
            let mut s = BetaNmf::new(cfg).unwrap();
            let out = Driver::new(Budget::iterations(60))
                .run(&mut p, &mut s)
                .unwrap();
            assert_eq!(out.status, Status::BudgetExhausted(BudgetKind::Iterations));
            let obj: Vec<f64> = out.trace.records.iter().map(|r| r.objective).collect();
            assert_eq!(obj.len(), 61);
            for k in 1..obj.len() {
                assert!(
                    obj[k] <= obj[k - 1] * (1.0 + 1e-12),
                    "beta {beta} {rule:?} it {k}: {} -> {}",
                    obj[k - 1],
                    obj[k]
                );
            }
            assert!(obj[60] < 0.7 * obj[0], "beta {beta} {rule:?}");
            // 60 iterations, each: W H twice (forward) and the gradient split of each
            // factor (backward), over N = 10 columns: 4 data passes per iteration.
            assert_eq!(out.counters.samples_seen, 60 * 4 * 10);
            assert_eq!((out.counters.forward, out.counters.backward), (120, 120));
            // The recorded objective is the problem's objective at the final factors.
            assert_eq!(obj[60], p.objective().unwrap());
        }
    }
}

fn golden() -> serde_json::Value {
    serde_json::from_str(include_str!(
        "../../majorize/tests/fixtures/sklearn_mu_golden.json"
    ))
    .unwrap()
}

fn mat(v: &serde_json::Value) -> DMatrix<f64> {
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

#[test]
fn sklearn_mode_matches_the_golden_trace_and_stopping_rule() {
    let g = golden();
    let case = g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "beta1.5")
        .unwrap();
    let cfg = BetaNmfConfig {
        beta: 1.5,
        sklearn_compatible: true,
        ..Default::default()
    };
    let mut p = NmfProblem::new(mat(&case["x"]), mat(&case["w0"]), mat(&case["h0"]), &cfg).unwrap();
    let out = Driver::new(Budget::iterations(20))
        .run(&mut p, &mut BetaNmf::new(cfg).unwrap())
        .unwrap();
    let expect: Vec<f64> = case["objective"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (r, e) in out.trace.records.iter().zip(&expect) {
        assert!(
            (r.objective - e).abs() <= 1e-10 * e.abs(),
            "it {}: {} vs {e}",
            r.iteration,
            r.objective
        );
    }
    for s in g["stopping"].as_array().unwrap() {
        let cfg = BetaNmfConfig {
            beta: s["beta"].as_f64().unwrap(),
            sklearn_compatible: true,
            tol: s["tol"].as_f64().unwrap(),
            ..Default::default()
        };
        let mut p = NmfProblem::new(mat(&g["x"]), mat(&g["w0"]), mat(&g["h0"]), &cfg).unwrap();
        let out = Driver::new(Budget::iterations(200))
            .run(&mut p, &mut BetaNmf::new(cfg).unwrap())
            .unwrap();
        assert!(
            matches!(out.status, Status::Converged { .. }),
            "{:?}",
            out.status
        );
        assert_eq!(
            out.trace.records.len() as u64 - 1,
            s["n_iter"].as_u64().unwrap(),
            "beta {}",
            cfg.beta
        );
    }
}

#[test]
fn resumed_run_is_bit_identical() {
    let cfg = BetaNmfConfig {
        beta: 0.5,
        rule: Rule::Me,
        tol: 1e-9,
        ..Default::default()
    };
    let fresh = || {
        let (v, w, h) = data();
        NmfProblem::new(v, w, h, &cfg).unwrap()
    };
    let mut p = fresh();
    let full = Driver::new(Budget::iterations(25))
        .run(&mut p, &mut BetaNmf::new(cfg).unwrap())
        .unwrap();
    let mut store = MemoryStore::default();
    let mut p1 = fresh();
    Driver::new(Budget::iterations(12))
        .checkpointing(&mut store, 12)
        .run(&mut p1, &mut BetaNmf::new(cfg).unwrap())
        .unwrap();
    let mut p2 = fresh();
    let resumed = Driver::new(Budget::iterations(25))
        .checkpointing(&mut store, 12)
        .resume(true)
        .run(&mut p2, &mut BetaNmf::new(cfg).unwrap())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(p2.save_params(), p.save_params());
    // A checkpoint of another configuration is refused.
    let mut other = BetaNmf::new(BetaNmfConfig {
        beta: 0.5,
        ..Default::default()
    })
    .unwrap();
    let state = Solver::<NmfProblem<f64>>::save_state(&BetaNmf::new(cfg).unwrap());
    assert!(matches!(
        Solver::<NmfProblem<f64>>::load_state(&mut other, &state),
        Err(SolverError::Checkpoint(_))
    ));
}

#[test]
fn params_round_trip_and_bad_params_are_refused() {
    let cfg = BetaNmfConfig::default();
    let (v, w, h) = data();
    let mut p = NmfProblem::new(v, w, h, &cfg).unwrap();
    let saved = p.save_params();
    p.load_params(&saved).unwrap();
    assert_eq!(p.save_params(), saved);
    let mut bad = saved.clone();
    bad["w"]["rows"] = serde_json::json!(5);
    assert!(matches!(
        p.load_params(&bad),
        Err(SolverError::ShapeMismatch { .. })
    ));
    let mut neg = saved.clone();
    neg["h"]["data"][0] = serde_json::json!(-1.0);
    assert!(matches!(
        p.load_params(&neg),
        Err(SolverError::NonFinite(_))
    ));
    assert!(p.params_finite());
}

#[test]
fn configuration_and_input_errors_are_typed() {
    let me_sklearn = BetaNmfConfig {
        rule: Rule::Me,
        sklearn_compatible: true,
        ..Default::default()
    };
    assert!(matches!(
        BetaNmf::new(me_sklearn),
        Err(SolverError::InvalidConfig { param: "rule", .. })
    ));
    let bad_tol = BetaNmfConfig {
        tol: -1.0,
        ..Default::default()
    };
    assert!(matches!(
        BetaNmf::new(bad_tol),
        Err(SolverError::InvalidConfig { param: "tol", .. })
    ));
    let bad_beta = BetaNmfConfig {
        beta: f64::NAN,
        ..Default::default()
    };
    assert!(matches!(
        BetaNmf::new(bad_beta),
        Err(SolverError::InvalidConfig { param: "beta", .. })
    ));
    let bad_pen = BetaNmfConfig {
        penalties: Penalties {
            l1_w: -0.1,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        BetaNmf::new(bad_pen),
        Err(SolverError::InvalidConfig { param: "l1_w", .. })
    ));
    let (v, mut w, h) = data();
    w[(0, 0)] = 0.0;
    assert!(matches!(
        NmfProblem::new(v.clone(), w, h.clone(), &BetaNmfConfig::default()),
        Err(SolverError::Problem(_))
    ));
    let (_, w, _) = data();
    let short = DMatrix::from_element(2, 10, 1.0);
    assert!(matches!(
        NmfProblem::new(v.clone(), w.clone(), short, &BetaNmfConfig::default()),
        Err(SolverError::ShapeMismatch { .. })
    ));
    let mut vz = v.clone();
    vz[(3, 3)] = 0.0;
    let is = BetaNmfConfig {
        beta: 0.0,
        ..Default::default()
    };
    assert!(matches!(
        NmfProblem::new(vz, w.clone(), h.clone(), &is),
        Err(SolverError::Problem(_))
    ));
    // Solver and problem built from different configurations: init fails, the run reports it.
    let mut p = NmfProblem::new(v, w, h, &BetaNmfConfig::default()).unwrap();
    let mut s = BetaNmf::new(BetaNmfConfig {
        beta: 1.0,
        ..Default::default()
    })
    .unwrap();
    let out = Driver::new(Budget::iterations(3))
        .run(&mut p, &mut s)
        .unwrap();
    assert!(
        matches!(out.status, Status::Failed { .. }),
        "{:?}",
        out.status
    );
}

#[test]
fn f32_problem_runs() {
    let (v, w, h) = data();
    let cfg = BetaNmfConfig {
        beta: 1.0,
        ..Default::default()
    };
    let mut p = NmfProblem::new(
        v.map(|x| x as f32),
        w.map(|x| x as f32),
        h.map(|x| x as f32),
        &cfg,
    )
    .unwrap();
    let out = Driver::new(Budget::iterations(30))
        .run(&mut p, &mut BetaNmf::new(cfg).unwrap())
        .unwrap();
    let obj: Vec<f64> = out.trace.records.iter().map(|r| r.objective).collect();
    assert!(obj[30] < 0.7 * obj[0]);
    assert!(obj.windows(2).all(|p| p[1] <= p[0] * (1.0 + 1e-5)));
}
