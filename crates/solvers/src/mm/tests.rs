//! Tests of block MM, last-layer MM and the generic MM driver.

use autodiff::{Real, Reduction};
use majorize::quadratic::{DescentLemma, LinearLoss, LinearModelLoss};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::lbfgs::LbfgsConfig;
use crate::{Budget, Differentiable, Driver, MemoryStore, NetProblem, Record, Status};

/// Three noisy Gaussian blobs in `d` dimensions, `n` samples (not separable).
pub(super) fn blobs<T: Real>(d: usize, n: usize, seed: u64) -> Dataset<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = DMatrix::zeros(d, n);
    let mut labels = Vec::new();
    for j in 0..n {
        let c = j % 3;
        for i in 0..d {
            let mu = if i % 3 == c { 1.0 } else { 0.0 };
            x[(i, j)] = T::of(crate::testing::normal(&mut rng) + mu);
        }
        labels.push(c);
    }
    Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap()
}

pub(super) fn net<T: Real>(widths: &[usize], h: Activation, seed: u64) -> Sequential<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Sequential::mlp(widths, h, Init::GlorotUniform, &mut rng).unwrap()
}

pub(super) fn objectives(records: &[Record]) -> Vec<f64> {
    records.iter().map(|r| r.objective).collect()
}

pub(super) fn extra(r: &Record, name: &str) -> f64 {
    r.extras
        .iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |(_, v)| *v)
}

pub(super) fn assert_monotone(obj: &[f64]) {
    for (t, w) in obj.windows(2).enumerate() {
        assert!(
            w[1] <= w[0],
            "objective increased at sweep {}: {} -> {}",
            t + 1,
            w[0],
            w[1]
        );
    }
}

#[test]
fn last_layer_mm_reaches_the_lbfgs_optimum_of_the_convex_problem() {
    // One dense layer = multinomial logistic regression with an L2 penalty: strongly
    // convex, so last-layer MM must reach the minimiser L-BFGS finds.
    let data = blobs::<f64>(5, 60, 3);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-2);
    let mut mm =
        NetProblem::new(net(&[5, 3], Activation::Relu, 1), loss, data.clone(), None).unwrap();
    let mut lb = NetProblem::new(net(&[5, 3], Activation::Relu, 1), loss, data, None).unwrap();
    let out = Driver::new(Budget::iterations(1500))
        .run(
            &mut mm,
            &mut BlockMmConfig::last_layer().build::<f64>().unwrap(),
        )
        .unwrap();
    let obj = objectives(&out.trace.records);
    assert_monotone(&obj);
    let multi: Vec<u64> = out.trace.records[1..]
        .iter()
        .filter(|r| extra(r, "trials_0") != 1.0)
        .map(|r| r.iteration)
        .collect();
    // The certified Böhning bound is accepted at the first trial; only at the rounding
    // floor (f - f* ~ 1e-14, after ~1100 sweeps here) can a step fail the test.
    assert!(multi.first().is_none_or(|&t| t > 1000), "{multi:?}");
    let ref_out = Driver::new(Budget::iterations(200))
        .run(&mut lb, &mut LbfgsConfig::default().build::<f64>().unwrap())
        .unwrap();
    let f_star = ref_out.trace.last().unwrap().objective;
    let f_mm = *obj.last().unwrap();
    assert!(
        (f_mm - f_star).abs() < 1e-12,
        "MM {f_mm} vs L-BFGS {f_star}"
    );
    // Measured: f - f* = 1.0e-2 after 10 sweeps, 1.7e-4 after 100, 9.6e-7 after 300.
    assert!(obj[100] - f_star < 1e-3 && obj[300] - f_star < 1e-5);
    let mut g = vec![0.0; mm.dim()];
    mm.value_grad(None, &mut g).unwrap();
    let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(gn < 1e-7, "gradient norm {gn}");
    // Linear convergence: the gap shrinks by a factor per sweep.
    assert!(obj[5] - f_star < 0.5 * (obj[0] - f_star));
}

#[test]
fn last_layer_step_equals_majorize_closed_forms() {
    // Sum reduction, l2 = 0: one sweep equals majorize's Böhning / logistic / LS steps
    // applied to the last hidden activations.
    let data = blobs::<f64>(4, 30, 5);
    for (kind, lin) in [
        (
            LossKind::SoftmaxCrossEntropy,
            LinearLoss::SoftmaxCrossEntropy,
        ),
        (LossKind::Mse, LinearLoss::LeastSquares),
        (LossKind::Logistic, LinearLoss::Logistic),
    ] {
        let loss = Loss::new(kind, Reduction::Sum);
        let mut p = NetProblem::new(
            net(&[4, 6, 3], Activation::Tanh, 2),
            loss,
            data.clone(),
            None,
        )
        .unwrap();
        let trace = p.net.forward_trace(p.train.inputs()).unwrap();
        let a = trace.a[1].clone();
        let Targets::Labels { labels, .. } = p.train.targets() else {
            unreachable!()
        };
        let y = majorize::last_layer::one_hot::<f64>(labels, 3).unwrap();
        let d = p.net.dense(1).unwrap();
        let (mut w, mut b) = (d.weight.clone(), d.bias.clone());
        let f = majorize::last_layer::GramFactor::new(&a, true, 0.0).unwrap();
        f.step(lin, &a, &y, &mut w, Some(&mut b)).unwrap();
        let cfg = BlockMmConfig {
            ridge: 0.0,
            ..BlockMmConfig::last_layer()
        };
        Driver::new(Budget::iterations(1))
            .run(&mut p, &mut cfg.build::<f64>().unwrap())
            .unwrap();
        let d = p.net.dense(1).unwrap();
        assert!((&d.weight - &w).amax() < 1e-10, "{kind:?}");
        assert!((&d.bias - &b).amax() < 1e-10, "{kind:?}");
        // Hidden layer untouched.
        assert_eq!(
            p.net.dense(0).unwrap(),
            net::<f64>(&[4, 6, 3], Activation::Tanh, 2)
                .dense(0)
                .unwrap()
        );
    }
}

#[test]
fn least_squares_last_layer_is_solved_in_one_sweep() {
    let data = blobs::<f64>(4, 40, 6);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean).with_l2(0.1);
    let mut p = NetProblem::new(net(&[4, 5, 3], Activation::Relu, 4), loss, data, None).unwrap();
    let cfg = BlockMmConfig {
        ridge: 0.0,
        ..BlockMmConfig::last_layer()
    };
    Driver::new(Budget::iterations(1))
        .run(&mut p, &mut cfg.build::<f64>().unwrap())
        .unwrap();
    let mut g = vec![0.0; p.dim()];
    p.value_grad(None, &mut g).unwrap();
    // Output-layer parameters come last in the flat order: 5*3 weights + 3 biases.
    let gl = &g[g.len() - 18..];
    assert!(gl.iter().all(|v| v.abs() < 1e-12), "{gl:?}");
}

fn run_block(
    widths: &[usize],
    h: Activation,
    kind: LossKind,
    l2: f64,
    sweeps: u64,
    cfg: &BlockMmConfig,
) -> Vec<Record> {
    let data = blobs::<f64>(widths[0], 60, 7);
    let loss = Loss::new(kind, Reduction::Mean).with_l2(l2);
    let mut p = NetProblem::new(net(widths, h, 8), loss, data.clone(), Some(data)).unwrap();
    let out = Driver::new(Budget::iterations(sweeps))
        .run(&mut p, &mut cfg.clone().build::<f64>().unwrap())
        .unwrap();
    assert_eq!(
        out.status,
        Status::BudgetExhausted(crate::BudgetKind::Iterations)
    );
    out.trace.records
}

#[test]
fn block_mm_never_increases_the_objective() {
    // Both hidden-block paths: the default (certified where the enclosure applies) and
    // the safeguarded one (backtracking everywhere).
    let paths = [BlockMmConfig::default(), BlockMmConfig::safeguarded()];
    for ((widths, h, kind, l2), cfg) in [
        (
            &[6, 10, 3][..],
            Activation::Relu,
            LossKind::SoftmaxCrossEntropy,
            0.0,
        ),
        (
            &[6, 8, 8, 3][..],
            Activation::Tanh,
            LossKind::SoftmaxCrossEntropy,
            1e-3,
        ),
        (&[6, 8, 3][..], Activation::Sigmoid, LossKind::Mse, 1e-2),
        (
            &[6, 8, 3][..],
            Activation::LeakyRelu { slope: 0.1 },
            LossKind::Logistic,
            0.0,
        ),
    ]
    .into_iter()
    .flat_map(|case| paths.iter().map(move |cfg| (case, cfg)))
    {
        let rec = run_block(widths, h, kind, l2, 40, cfg);
        let obj = objectives(&rec);
        assert_monotone(&obj);
        // Sweeps that report a decrease really decreased the evaluated objective.
        for (t, r) in rec.iter().enumerate().skip(1) {
            if extra(r, "decreased") == 1.0 {
                assert!(obj[t] < obj[t - 1]);
            }
        }
        let (f0, f1) = (obj[0], *obj.last().unwrap());
        assert!(
            f1 < 0.7 * f0,
            "{widths:?} {h:?} certified {}: {f0} -> {f1}",
            cfg.certified
        );
        assert!(rec[1..].iter().all(|r| r.surrogate.is_some()));
    }
}

/// Last-layer MM on networks with hidden layers (kept at their initial weights, so each
/// sweep is one MM step of a convex problem in the output layer): the true objective
/// never increases, for each loss; the one-layer case is tested against L-BFGS above.
#[test]
fn last_layer_mm_never_increases_the_objective_of_deep_networks() {
    for (widths, h, kind, l2) in [
        (
            &[6, 10, 3][..],
            Activation::Relu,
            LossKind::SoftmaxCrossEntropy,
            0.0,
        ),
        (
            &[6, 8, 8, 3][..],
            Activation::Tanh,
            LossKind::Logistic,
            1e-3,
        ),
        (&[6, 8, 3][..], Activation::Sigmoid, LossKind::Mse, 1e-2),
    ] {
        let rec = run_block(widths, h, kind, l2, 30, &BlockMmConfig::last_layer());
        let obj = objectives(&rec);
        assert_monotone(&obj);
        // Measured: 1.092 -> 0.555, 2.091 -> 1.116, 0.820 -> 0.250.
        assert!(
            obj[30] < 0.6 * obj[0],
            "{widths:?} {kind:?}: {} -> {}",
            obj[0],
            obj[30]
        );
    }
}

#[test]
fn block_mm_trains_in_f32_too() {
    for cfg in [BlockMmConfig::default(), BlockMmConfig::safeguarded()] {
        let data = blobs::<f32>(6, 60, 7);
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
        let mut p =
            NetProblem::new(net(&[6, 10, 3], Activation::Relu, 8), loss, data, None).unwrap();
        let out = Driver::new(Budget::iterations(30))
            .run(&mut p, &mut cfg.build::<f32>().unwrap())
            .unwrap();
        let obj = objectives(&out.trace.records);
        assert_monotone(&obj);
        assert!(obj[30] < 0.7 * obj[0], "{} -> {}", obj[0], obj[30]);
    }
}

#[test]
fn block_mm_counts_work_and_resumes_bit_identically() {
    let data = blobs::<f64>(6, 40, 9);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mk = || {
        NetProblem::new(
            net(&[6, 7, 3], Activation::Relu, 3),
            loss,
            data.clone(),
            None,
        )
        .unwrap()
    };
    // The safeguarded path's accounting (the certified path is tested below).
    let solver = || BlockMmConfig::safeguarded().build::<f64>().unwrap();
    let mut p = mk();
    let full = Driver::new(Budget::iterations(8))
        .run(&mut p, &mut solver())
        .unwrap();
    let last = full.trace.last().unwrap();
    let trials: f64 = full.trace.records[1..]
        .iter()
        .map(|r| extra(r, "trials_0") + extra(r, "trials_1"))
        .sum();
    assert_eq!(last.inner_solves as f64, trials);
    assert_eq!(last.forward as f64, 8.0 + trials);
    assert_eq!(last.backward, 16);

    let mut store = MemoryStore::default();
    let mut p1 = mk();
    Driver::new(Budget::iterations(3))
        .checkpointing(&mut store, 1)
        .run(&mut p1, &mut solver())
        .unwrap();
    let mut p2 = mk();
    let resumed = Driver::new(Budget::iterations(8))
        .checkpointing(&mut store, 1)
        .resume(true)
        .run(&mut p2, &mut solver())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(p2.net.flat_params(), p.net.flat_params());
}

#[test]
fn bad_configs_and_losses_give_typed_errors() {
    let cases = [
        (
            BlockMmConfig {
                ridge: -1.0,
                ..Default::default()
            },
            "invalid BlockMM config: ridge = -1 must be finite and >= 0",
        ),
        (
            BlockMmConfig {
                decrease: 0.0,
                ..Default::default()
            },
            "invalid BlockMM config: decrease = 0 must lie in (0, 1]",
        ),
        (
            BlockMmConfig {
                increase: 1.0,
                ..Default::default()
            },
            "invalid BlockMM config: increase = 1 must be finite and > 1",
        ),
        (
            BlockMmConfig {
                max_trials: 0,
                ..Default::default()
            },
            "invalid BlockMM config: max_trials = 0 must be >= 1",
        ),
        (
            BlockMmConfig {
                safety: 0.9,
                ..Default::default()
            },
            "invalid BlockMM config: safety = 0.9 must be finite and >= 1",
        ),
        (
            BlockMmConfig {
                initial_scale: f64::NAN,
                ..Default::default()
            },
            "invalid BlockMM config: initial_scale = NaN must be finite and > 0",
        ),
    ];
    for (cfg, msg) in cases {
        assert_eq!(cfg.build::<f64>().unwrap_err().to_string(), msg);
    }
    let data = blobs::<f64>(4, 12, 1);
    let loss = Loss::new(LossKind::MulticlassHinge, Reduction::Mean);
    let mut p = NetProblem::new(net(&[4, 3], Activation::Relu, 1), loss, data, None).unwrap();
    let out = Driver::new(Budget::iterations(2)).run(
        &mut p,
        &mut BlockMmConfig::default().build::<f64>().unwrap(),
    );
    let msg = match out {
        Err(e) => e.to_string(),
        Ok(o) => format!("{:?}", o.status),
    };
    assert!(
        msg.contains(
            "invalid BlockMM config: loss = MulticlassHinge has no quadratic curvature bound"
        ),
        "{msg}"
    );
}

#[test]
fn non_finite_weights_are_an_error_not_a_silent_result() {
    let data = blobs::<f64>(4, 12, 1);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mut n = net::<f64>(&[4, 5, 3], Activation::Relu, 1);
    n.dense_mut(0).unwrap().weight[(0, 0)] = f64::NAN;
    let mut p = NetProblem::new(n, loss, data, None).unwrap();
    let mut s = BlockMmConfig::default().build::<f64>().unwrap();
    let out = Driver::new(Budget::iterations(2)).run(&mut p, &mut s);
    let status = match out {
        Ok(o) => format!("{:?}", o.status),
        Err(e) => e.to_string(),
    };
    assert!(
        status.contains("NaN") || status.contains("non-finite"),
        "{status}"
    );
}

#[test]
fn generic_mm_on_the_bohning_surrogate_is_monotone_with_nonnegative_gap() {
    // majorize's catalogue: softmax cross-entropy of a linear model with its Kronecker
    // (Böhning) surrogate, ridge 1e-3.
    let data = blobs::<f64>(4, 30, 11);
    let mut a = DMatrix::from_element(5, 30, 1.0);
    a.view_mut((0, 0), (4, 30)).copy_from(data.inputs());
    let Targets::Labels { labels, .. } = data.targets() else {
        unreachable!()
    };
    let y = majorize::last_layer::one_hot::<f64>(labels, 3).unwrap();
    let obj = LinearModelLoss::new(LinearLoss::SoftmaxCrossEntropy, a, y).unwrap();
    let builder = obj.clone().with_ridge(1e-3).unwrap();
    let mut p = SurrogateProblem::new(obj, builder, DVector::zeros(15)).unwrap();
    let mut s = GenericMmConfig::default().build().unwrap();
    let mut g0 = DVector::zeros(15);
    majorize::Objective::gradient(&p.objective, p.point(), &mut g0).unwrap();
    let out = Driver::new(Budget::iterations(300))
        .run(&mut p, &mut s)
        .unwrap();
    let recs = &out.trace.records;
    assert_monotone(&objectives(recs));
    for r in &recs[1..] {
        assert!(extra(r, "gap") >= -1e-12, "gap {}", extra(r, "gap"));
        assert!(r.surrogate.unwrap() >= r.objective - 1e-12);
        assert_eq!(extra(r, "rejected"), 0.0);
    }
    assert!(recs[300].objective < 0.6 * recs[0].objective);
    let mut g = DVector::zeros(15);
    majorize::Objective::gradient(&p.objective, p.point(), &mut g).unwrap();
    assert!(g.norm() < 1e-3 * g0.norm(), "{} -> {}", g0.norm(), g.norm());
}

#[test]
fn generic_mm_rejects_the_steps_of_an_invalid_surrogate() {
    // f(x) = (1/2) sum x^2 has Lipschitz constant 1; claiming L = 0.4 gives the step
    // x - x/0.4 = -1.5 x, which increases f: the gap is negative and the step is kept out.
    let f = majorize::rules::HalfSquaredNorm::new(3);
    let bad = DescentLemma::new(f, 0.4).unwrap();
    let mut p = SurrogateProblem::new(f, bad, DVector::from_element(3, 1.0)).unwrap();
    let out = Driver::new(Budget::iterations(2))
        .run(&mut p, &mut GenericMmConfig::default().build().unwrap())
        .unwrap();
    let r = &out.trace.records[1];
    assert_eq!(extra(r, "rejected"), 1.0);
    assert!(extra(r, "gap") < 0.0);
    assert_eq!(r.objective, 1.5);
    // With L = 1 the step lands on the minimiser.
    let good = DescentLemma::new(f, 1.0).unwrap();
    let mut p = SurrogateProblem::new(f, good, DVector::from_element(3, 1.0)).unwrap();
    let out = Driver::new(Budget::iterations(1))
        .run(&mut p, &mut GenericMmConfig::default().build().unwrap())
        .unwrap();
    assert_eq!(out.trace.records[1].objective, 0.0);
    assert_eq!(
        GenericMmConfig {
            inner_max_iter: 0,
            ..Default::default()
        }
        .build()
        .unwrap_err()
        .to_string(),
        "invalid GenericMM config: inner_max_iter = 0 must be >= 1"
    );
}

#[test]
fn hidden_blocks_backtrack_and_rejected_blocks_keep_their_value() {
    let data = blobs::<f64>(6, 60, 7);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mk = || {
        NetProblem::new(
            net(&[6, 10, 3], Activation::Tanh, 8),
            loss,
            data.clone(),
            None,
        )
        .unwrap()
    };
    // Starting the hidden block far below its structural curvature forces rejections:
    // the curvature doubles until the model lies above the objective.
    let cfg = BlockMmConfig {
        initial_scale: 1e-6,
        certified: false,
        ..Default::default()
    };
    let mut p = mk();
    let out = Driver::new(Budget::iterations(5))
        .run(&mut p, &mut cfg.build::<f64>().unwrap())
        .unwrap();
    let r1 = &out.trace.records[1];
    let trials = extra(r1, "trials_0");
    assert!(trials > 1.0, "{trials}");
    let c = extra(r1, "curvature_0");
    let want = 1e-6 * extra(r1, "structural_0") * 2f64.powi(trials as i32 - 1);
    assert!((c - want).abs() <= 1e-12 * want, "{c} vs {want}");
    assert_monotone(&objectives(&out.trace.records));
    // With one trial only, a too-small curvature is rejected and the hidden layer keeps
    // its weights exactly; the output-layer step (certified) still lowers the objective.
    let cfg = BlockMmConfig {
        initial_scale: 1e-9,
        max_trials: 1,
        certified: false,
        ..Default::default()
    };
    let mut p = mk();
    let w0 = p.net.dense(0).unwrap().clone();
    let out = Driver::new(Budget::iterations(1))
        .run(&mut p, &mut cfg.build::<f64>().unwrap())
        .unwrap();
    let r = &out.trace.records[1];
    assert_eq!(extra(r, "rejected_blocks"), 1.0);
    assert_eq!(p.net.dense(0).unwrap(), &w0);
    assert!(r.objective < out.trace.records[0].objective);
    assert_eq!(extra(r, "decreased"), 1.0);
}

#[test]
fn kept_trace_at_sweep_start_is_bit_for_bit_a_fresh_forward_pass() {
    use crate::Solver;
    // Issue #14: a sweep starts from the trace the previous sweep left when the weights
    // and inputs are unchanged. Against a run that forgets it before every sweep (and so
    // recomputes the forward pass), on both hidden-block paths, with the network changed
    // from outside once (which must be noticed) and the same pass counts.
    let data = blobs::<f64>(6, 40, 12);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    for cfg in [BlockMmConfig::default(), BlockMmConfig::safeguarded()] {
        let mk = || {
            NetProblem::new(
                net(&[6, 8, 8, 3], Activation::Relu, 5),
                loss,
                data.clone(),
                None,
            )
            .unwrap()
        };
        let (mut pa, mut pb) = (mk(), mk());
        let mut kept = cfg.clone().build::<f64>().unwrap();
        let mut fresh = cfg.build::<f64>().unwrap();
        with_ctx(|ctx| kept.init(&mut pa, ctx)).0.unwrap();
        with_ctx(|ctx| fresh.init(&mut pb, ctx)).0.unwrap();
        for sweep in 0..8 {
            if sweep == 4 {
                for p in [&mut pa, &mut pb] {
                    p.net.dense_mut(1).unwrap().weight[(0, 0)] += 0.25;
                }
            }
            let (ra, ca) = with_ctx(|ctx| kept.step(&mut pa, ctx).unwrap());
            fresh.forget_trace();
            let (rb, cb) = with_ctx(|ctx| fresh.step(&mut pb, ctx).unwrap());
            assert_eq!(
                ra.surrogate.map(f64::to_bits),
                rb.surrogate.map(f64::to_bits)
            );
            assert_eq!(ra.extras, rb.extras, "sweep {sweep}");
            assert_eq!(ca, cb, "sweep {sweep}: passes counted alike");
            assert_eq!(pa.net.flat_params(), pb.net.flat_params(), "sweep {sweep}");
        }
    }
}

/// Runs `f` with a fresh one-thread context; returns its result and the passes counted.
fn with_ctx<R>(f: impl FnOnce(&mut crate::Context) -> R) -> (R, crate::Counters) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut counters = crate::Counters::default();
    let mut ctx = crate::Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 1,
        threads: 1,
    };
    let r = f(&mut ctx);
    (r, counters)
}
