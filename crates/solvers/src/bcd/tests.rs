//! Unit tests of BCD: block-by-block monotonicity of the penalised objective for every
//! variant, typed config errors, checkpoint round trip, NaN detection.

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::Counters;

/// A small 3-class problem: 4 inputs, 40 samples, labels from a random linear rule.
pub(crate) fn toy<T: Real>(seed: u64) -> (Sequential<T>, Dataset<T>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = DMatrix::from_fn(4, 40, |_, _| {
        T::of(2.0 * nets::init::uniform01(&mut rng) - 1.0)
    });
    let labels = (0..40)
        .map(|n| {
            let s = x[(0, n)].to_f64() + 0.5 * x[(1, n)].to_f64() - x[(2, n)].to_f64();
            if s < -0.4 {
                0
            } else if s < 0.4 {
                1
            } else {
                2
            }
        })
        .collect();
    let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
    let net = Sequential::mlp(&[4, 6, 5, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    (net, data)
}

pub(crate) fn run_ctx<F: FnOnce(&mut Context)>(f: F) -> Counters {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 1,
        threads: 1,
    };
    f(&mut ctx);
    counters
}

/// Runs `sweeps` sweeps, checking after every block that Phi did not increase; returns
/// (Phi at start, Phi at end, number of blocks checked).
fn monotone_run(cfg: BcdConfig, loss: Loss, sweeps: usize) -> (f64, f64, usize) {
    let (mut net, data) = toy::<f64>(3);
    let mut bcd = cfg.build::<f64>().unwrap();
    bcd.init_parts(&net, &data, &loss).unwrap();
    let ld = LiftedData::new(&data, &loss);
    let start = bcd.state().unwrap().objective(&ld, &cfg).unwrap();
    let mut prev = start;
    let mut checked = 0usize;
    run_ctx(|ctx| {
        for _ in 0..sweeps {
            bcd.step_with_hook(&mut net, &data, &loss, ctx, &mut |blk, st| {
                let phi = st.objective(&ld, &cfg).unwrap();
                assert!(
                    phi <= prev + 1e-10 * (1.0 + prev.abs()),
                    "{blk:?} increased Phi from {prev} to {phi}"
                );
                prev = phi;
                checked += 1;
            })
            .unwrap();
        }
    });
    (start, prev, checked)
}

#[test]
fn jacobi_pair_never_increases_phi() {
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let (start, end, checked) = monotone_run(BcdConfig::default(), loss, 15);
    // 2 output blocks + 3 weight pairs + 2 x (V, U) hidden blocks per sweep.
    assert_eq!(checked, 15 * 9);
    assert!(end < 0.8 * start, "Phi {start} -> {end}");
}

#[test]
fn sequential_blocks_never_increase_phi() {
    let cfg = BcdConfig {
        wb_update: WbUpdate::Sequential,
        ..BcdConfig::deep()
    };
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let (start, end, checked) = monotone_run(cfg, loss, 15);
    assert_eq!(checked, 15 * 12);
    assert!(end < 0.8 * start, "Phi {start} -> {end}");
}

#[test]
fn prox_linear_never_increases_phi() {
    let cfg = BcdConfig {
        weight_step: WeightStep::ProxLinear,
        ..BcdConfig::default()
    };
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let (start, end, _) = monotone_run(cfg, loss, 15);
    assert!(end < 0.9 * start, "Phi {start} -> {end}");
}

#[test]
fn softmax_ce_mean_with_l2_never_increases_phi() {
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
    let (start, end, _) = monotone_run(BcdConfig::deep(), loss, 10);
    assert!(end < start, "Phi {start} -> {end}");
}

#[test]
fn sigmoid_network_never_increases_phi() {
    // Numeric activation prox (guarded entrywise): still monotone. (The network was a
    // tanh one, and nothing checked that the hook ran: the test passed with no block.)
    let (_, data) = toy::<f64>(3);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut net = Sequential::mlp(
        &[4, 5, 3],
        Activation::Sigmoid,
        Init::GlorotNormal,
        &mut rng,
    )
    .unwrap();
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let cfg = BcdConfig::default();
    let mut bcd = cfg.build::<f64>().unwrap();
    bcd.init_parts(&net, &data, &loss).unwrap();
    let ld = LiftedData::new(&data, &loss);
    let start = bcd.state().unwrap().objective(&ld, &cfg).unwrap();
    let mut prev = start;
    let mut checked = 0usize;
    run_ctx(|ctx| {
        for _ in 0..3 {
            bcd.step_with_hook(&mut net, &data, &loss, ctx, &mut |blk, st| {
                let phi = st.objective(&ld, &cfg).unwrap();
                assert!(
                    phi <= prev + 1e-10 * (1.0 + prev),
                    "{blk:?}: {prev} -> {phi}"
                );
                prev = phi;
                checked += 1;
            })
            .unwrap();
        }
    });
    // 2 output blocks + 2 weight pairs + (V, U) of the hidden layer per sweep.
    assert_eq!(checked, 3 * 6);
    assert!(prev < start, "Phi {start} -> {prev}");
}

#[test]
fn jacobi_b_half_alone_can_increase_phi_but_the_pair_cannot() {
    // Correction 2: split the Jacobi pair into its W half (b old) and its b half (b from
    // the OLD W, applied after W moved) and record the largest change of Phi caused by
    // the b half alone, and by the pair.
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let cfg = BcdConfig::deep();
    let mut worst_b_half = f64::NEG_INFINITY;
    let mut worst_pair = f64::NEG_INFINITY;
    for seed in 0..6 {
        let (net, data) = toy::<f64>(seed);
        let ld = LiftedData::new(&data, &loss);
        let mut st = BcdState::from_net(&net, data.inputs()).unwrap();
        let mut counters = Counters::default();
        for _ in 0..8 {
            for i in (0..st.num_layers()).rev() {
                let phi0 = st.objective(&ld, &cfg).unwrap();
                let w_old = st.w[i].clone();
                st.weight_exact(i, &ld, &cfg, 1).unwrap();
                let phi_w = st.objective(&ld, &cfg).unwrap();
                st.bias_exact(i, &w_old, ld.x, &cfg, 1).unwrap();
                let phi_wb = st.objective(&ld, &cfg).unwrap();
                worst_b_half = worst_b_half.max((phi_wb - phi_w) / phi_w);
                worst_pair = worst_pair.max((phi_wb - phi0) / phi0);
            }
            st.sweep(&ld, &cfg, 1, &mut counters, &mut |_, _| {})
                .unwrap();
        }
    }
    println!("largest relative change: b half {worst_b_half:e}, pair {worst_pair:e}");
    assert!(
        worst_pair <= 1e-12,
        "the pair increased Phi by {worst_pair:e}"
    );
    assert!(
        worst_b_half > 0.0,
        "no b-half increase seen: {worst_b_half:e}"
    );
}

#[test]
fn training_improves_the_true_objective_and_counts_work() {
    let (mut net, data) = toy::<f64>(11);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let before = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    let mut bcd = BcdConfig::deep().build::<f64>().unwrap();
    bcd.init_parts(&net, &data, &loss).unwrap();
    let mut report = StepReport::new();
    // Independent tally: the blocks the hook sees, each one pass over the 40 samples
    // (forward-type: loss prox, U_L, hidden U; backward-type: W/b, hidden V).
    let (mut fwd, mut bwd) = (0u64, 0u64);
    let counters = run_ctx(|ctx| {
        for _ in 0..30 {
            report = bcd
                .step_with_hook(&mut net, &data, &loss, ctx, &mut |b, _| match b {
                    BcdBlock::OutputV | BcdBlock::OutputU | BcdBlock::PreActivation(_) => fwd += 1,
                    _ => bwd += 1,
                })
                .unwrap();
        }
    });
    let after = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    assert!(after < 0.7 * before, "true objective {before} -> {after}");
    // 3 layers, exact Jacobi steps: L + 1 = 4 forward and 2L - 1 = 5 backward per sweep.
    assert_eq!((fwd, bwd), (30 * 4, 30 * 5));
    assert_eq!((counters.forward, counters.backward), (fwd, bwd));
    assert_eq!(counters.samples_seen, 40 * (fwd + bwd));
    // per sweep: V_L prox + 3 weight solves + 2 x (V solve + U prox)
    assert_eq!(counters.inner_solves, 30 * 8);
    let names: Vec<_> = report.extras.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"viol_lin_3") && names.contains(&"rho"));
    assert!(report.surrogate.unwrap() > 0.0);
}

#[test]
fn bad_hyperparameters_are_typed_errors() {
    let e = BcdConfig {
        gamma: -1.0,
        ..Default::default()
    }
    .build::<f64>()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid BCD config: gamma = -1 must be finite and > 0"
    );
    let e = BcdConfig {
        rho: 0.0,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid BCD config: rho = 0 must be finite and > 0"
    );
    let e = BcdConfig {
        alpha: f64::NAN,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid BCD config: alpha = NaN must be finite and > 0"
    );
    let (net, data) = toy::<f64>(1);
    let hinge = Loss::new(LossKind::MulticlassHinge, Reduction::Mean);
    let e = BcdConfig::default()
        .build::<f64>()
        .unwrap()
        .init_parts(&net, &data, &hinge)
        .unwrap_err();
    assert!(
        matches!(&e, SolverError::NotApplicable(m) if m.contains("loss MulticlassHinge is not supported")),
        "{e}"
    );
}

#[test]
fn nan_weights_are_reported_not_handed_back() {
    let (mut net, data) = toy::<f64>(2);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let mut bcd = BcdConfig::default().build::<f64>().unwrap();
    bcd.init_parts(&net, &data, &loss).unwrap();
    net.dense_mut(1).unwrap().weight[(0, 0)] = f64::NAN;
    run_ctx(|ctx| {
        let e = bcd.step_parts(&mut net, &data, &loss, ctx).unwrap_err();
        assert!(matches!(e, SolverError::NonFinite(_)), "{e}");
    });
}

#[test]
fn checkpoint_round_trip_continues_bit_identically() {
    let (mut net, data) = toy::<f64>(4);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let mut a = BcdConfig::default().build::<f64>().unwrap();
    a.init_parts(&net, &data, &loss).unwrap();
    run_ctx(|ctx| {
        for _ in 0..3 {
            a.step_parts(&mut net, &data, &loss, ctx).unwrap();
        }
    });
    let saved = a.save_json();
    let mut net_b = net.clone();
    let mut b = BcdConfig::default().build::<f64>().unwrap();
    b.load_json(&saved).unwrap();
    assert_eq!(b.sweeps(), 3);
    run_ctx(|ctx| {
        for _ in 0..2 {
            a.step_parts(&mut net, &data, &loss, ctx).unwrap();
            b.step_parts(&mut net_b, &data, &loss, ctx).unwrap();
        }
    });
    assert_eq!(net.flat_params(), net_b.flat_params());
}

#[test]
fn f32_runs_and_decreases() {
    let (mut net, data) = toy::<f32>(6);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let before = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    let mut bcd = BcdConfig::deep().build::<f32>().unwrap();
    bcd.init_parts(&net, &data, &loss).unwrap();
    run_ctx(|ctx| {
        for _ in 0..20 {
            bcd.step_parts(&mut net, &data, &loss, ctx).unwrap();
        }
    });
    let after = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    assert!(after < before, "{before} -> {after}");
}

#[test]
fn reference_init_matches_the_authors_scales() {
    let (mut net, _) = toy::<f64>(8);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    reference_init(&mut net, &mut rng).unwrap();
    let d = net.dense(0).unwrap();
    assert!(d.bias.iter().all(|&b| b == 0.1));
    let max = d.weight.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    assert!(max > 0.001 && max < 0.05, "max |W| = {max}");
}

/// Runs `make()` through the driver for 8 iterations, and for 3 + resume to 8 with a
/// checkpoint; asserts the traces (without time) and final weights are identical, the
/// true objective fell and every record after the first carries a surrogate.
pub(crate) fn driver_resume_identical<S, F>(make: F, loss: Loss)
where
    S: crate::Solver<crate::NetProblem<f64>>,
    F: Fn() -> S,
{
    use crate::{Budget, Driver, MemoryStore, NetProblem, Status};
    let problem = || {
        let (net, data) = toy::<f64>(31);
        NetProblem::new(net, loss, data, None).unwrap()
    };
    let mut p = problem();
    let full = Driver::new(Budget::iterations(8))
        .seed(3)
        .run(&mut p, &mut make())
        .unwrap();
    assert_eq!(
        full.status,
        Status::BudgetExhausted(crate::BudgetKind::Iterations)
    );
    let recs = &full.trace.records;
    assert_eq!(recs.len(), 9);
    assert!(
        recs[8].objective < 0.8 * recs[0].objective,
        "{} -> {}",
        recs[0].objective,
        recs[8].objective
    );
    assert!(
        recs[1..]
            .iter()
            .all(|r| r.surrogate.is_some() && !r.extras.is_empty())
    );
    let mut store = MemoryStore::default();
    let mut p1 = problem();
    Driver::new(Budget::iterations(3))
        .seed(3)
        .checkpointing(&mut store, 1)
        .run(&mut p1, &mut make())
        .unwrap();
    let mut p2 = problem();
    let resumed = Driver::new(Budget::iterations(8))
        .seed(3)
        .checkpointing(&mut store, 1)
        .resume(true)
        .run(&mut p2, &mut make())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(p2.net.flat_params(), p.net.flat_params());
}

#[test]
fn runs_through_the_driver_and_resumes_bit_identically() {
    driver_resume_identical(
        || BcdConfig::deep().build::<f64>().unwrap(),
        Loss::new(LossKind::Mse, Reduction::Mean),
    );
}

#[test]
fn normal_init_rejects_bad_scales() {
    let (mut net, _) = toy::<f64>(8);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let e = normal_init(&mut net, -0.1, 0.1, &mut rng).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid normal_init config: std = -0.1 must be finite and >= 0 (and bias finite)"
    );
    normal_init(&mut net, 0.07, 0.0, &mut rng).unwrap();
    let w = &net.dense(1).unwrap().weight;
    let sd = (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
    assert!((0.03..0.12).contains(&sd), "sample std {sd}");
}

#[test]
fn kept_layer_products_give_the_iterates_of_recomputed_ones_bit_for_bit() {
    // Issue #14: the U steps take the layer products the last objective computed.
    // Against a run that forgets them before every sweep (and so recomputes them), with
    // the network changed from outside once (which must be noticed): the same reports,
    // lifted variables, weights and pass counts, bit for bit.
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let (net0, data) = toy::<f64>(5);
    let (mut na, mut nb) = (net0.clone(), net0);
    let cfg = BcdConfig::default();
    let mut a = cfg.build::<f64>().unwrap();
    let mut b = cfg.build::<f64>().unwrap();
    a.init_parts(&na, &data, &loss).unwrap();
    b.init_parts(&nb, &data, &loss).unwrap();
    for sweep in 0..8 {
        if sweep == 4 {
            for n in [&mut na, &mut nb] {
                n.dense_mut(0).unwrap().weight[(0, 0)] += 0.25;
            }
        }
        let mut ra = StepReport::new();
        let ca = run_ctx(|ctx| ra = a.step_parts(&mut na, &data, &loss, ctx).unwrap());
        b.state.as_mut().unwrap().forget_products();
        let mut rb = StepReport::new();
        let cb = run_ctx(|ctx| rb = b.step_parts(&mut nb, &data, &loss, ctx).unwrap());
        assert_eq!(
            ra.surrogate.map(f64::to_bits),
            rb.surrogate.map(f64::to_bits),
            "sweep {sweep}"
        );
        assert_eq!(ra.extras, rb.extras, "sweep {sweep}");
        assert_eq!(ca, cb, "sweep {sweep}");
        let (sa, sb) = (a.state().unwrap(), b.state().unwrap());
        assert_eq!((&sa.u, &sa.v), (&sb.u, &sb.v), "sweep {sweep}");
        assert_eq!(na.flat_params(), nb.flat_params(), "sweep {sweep}");
    }
}
