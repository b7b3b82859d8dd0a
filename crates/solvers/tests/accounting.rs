//! One accounting of data passes (docs/RESULTS_SCHEMA.md, "Data passes"): for the
//! full-batch network families not covered by their own unit tests, the counters of
//! every record are checked against the pass count implied by the algorithm's structure
//! (layers, iterations, reported trials), and `samples_seen = N (forward + backward)`.

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::admm::{DlAdmm, DlAdmmConfig, DlPenalty, OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::agd::AgdConfig;
use solvers::bcd::BcdConfig;
use solvers::first_order::SgdConfig;
use solvers::mm::BlockMmConfig;
use solvers::*;

const N: u64 = 24;

/// A 3-6-5-2 ReLU MLP on 24 regression samples (3 dense layers).
fn problem() -> NetProblem<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let net = Sequential::mlp(&[3, 6, 5, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let x = DMatrix::from_fn(3, N as usize, |i, j| ((i * 7 + j * 3) as f64 * 0.41).sin());
    let y = DMatrix::from_fn(2, N as usize, |i, j| ((i + j) as f64 * 0.23).cos());
    let train = Dataset::new(x, Targets::Dense(y)).unwrap();
    NetProblem::new(net, Loss::new(LossKind::Mse, Reduction::Mean), train, None).unwrap()
}

fn run<S: Solver<NetProblem<f64>>>(s: &mut S, iters: u64) -> RunOutcome {
    let out = Driver::new(Budget::iterations(iters))
        .run(&mut problem(), s)
        .unwrap();
    assert!(
        matches!(out.status, Status::BudgetExhausted(BudgetKind::Iterations)),
        "{:?}",
        out.status
    );
    for r in &out.trace.records {
        assert_eq!(
            r.samples_seen,
            N * (r.forward + r.backward),
            "record {}",
            r.iteration
        );
        assert_eq!(r.epochs, (r.forward + r.backward) as f64);
    }
    out
}

#[test]
fn block_mm_counts_one_backward_per_block_and_one_forward_per_trial() {
    // The safeguarded path (`block-mm-safeguarded`): per sweep one forward of the whole
    // net, then per layer (3) one backward pass and one forward per curvature trial (each
    // trial is an inner solve).
    let mut s = BlockMmConfig::safeguarded().build::<f64>().unwrap();
    let out = run(&mut s, 5);
    let c = out.counters;
    assert_eq!(c.backward, 3 * 5);
    assert!(c.inner_solves >= 3 * 5);
    assert_eq!(c.forward, 5 + c.inner_solves);
    assert_eq!(out.trace.records[0].forward, 0);
    // The default (certified hidden blocks) keeps one backward pass per block; its
    // forward passes (one per enclosure, one per accepted block) are checked against the
    // trace's per-block extras in `mm::tests_certified`.
    let mut s = BlockMmConfig::default().build::<f64>().unwrap();
    let out = run(&mut s, 5);
    assert_eq!(out.counters.backward, 3 * 5);
    assert!(out.counters.forward > 5);
}

#[test]
fn bcd_counts_its_initial_forward_and_one_pass_per_block() {
    // A sweep of the three-splitting BCD (ALGORITHMS.md 4.2) on 3 dense layers updates
    // V_3, U_3, then (W_3,b_3), V_2, U_2, (W_2,b_2), V_1, U_1, (W_1,b_1): 9 blocks, each
    // touching every sample once through its layer. Forward-type: V_3 (loss prox), U_3,
    // U_2, U_1; backward-type: the three weight blocks, V_2, V_1.
    let mut s = BcdConfig::default().build::<f64>().unwrap();
    let out = run(&mut s, 4);
    let r0 = &out.trace.records[0];
    assert_eq!((r0.forward, r0.backward, r0.samples_seen), (1, 0, N));
    assert_eq!(
        (out.counters.forward, out.counters.backward),
        (1 + 4 * 4, 4 * 5)
    );
    // The prox-linear weight step adds one forward per certified trial.
    let mut p = BcdConfig {
        weight_step: solvers::bcd::WeightStep::ProxLinear,
        ..Default::default()
    }
    .build::<f64>()
    .unwrap();
    let out = run(&mut p, 2);
    let trials = out.counters.forward - 1 - 2 * 4;
    assert!(trials >= 2 * 3, "{trials}");
    assert_eq!(out.counters.backward, 2 * 5);
}

#[test]
fn admm_counts_init_and_per_iteration_passes() {
    let mut t = TaylorAdmm::<f64>::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        ..Default::default()
    })
    .unwrap();
    let out = run(&mut t, 4);
    assert_eq!(out.trace.records[0].forward, 1);
    // Taylor, one pass per block on 3 layers: 3 Z-steps (forward), 3 W-steps and 2
    // A-steps (backward) per iteration.
    assert_eq!(
        (out.counters.forward, out.counters.backward),
        (1 + 4 * 3, 4 * 5)
    );

    let cfg = DlAdmmConfig::default();
    let adaptive = matches!(cfg.penalty, DlPenalty::Adaptive { .. });
    let mut d = DlAdmm::<f64>::new(cfg).unwrap();
    let out = run(&mut d, 4);
    assert_eq!(out.trace.records[0].forward, 1);
    // Per iteration over L = 3 layers (3-6-5-2: layers 2 and 3 narrower than their
    // input), every block reads a layer map (forward): 2L Z-steps, 2L b-steps, 2L
    // W-steps, 2(L-1) A-steps; each W- and A-step adds a backward product (`R A^T`,
    // `W^T R`); each A-step and each narrow W-step (2 x 2) a curvature product `W G` /
    // `G A` (forward); the two output Z-steps one loss evaluation per prox-gradient
    // iterate (1 + k each); the dual step one; the adaptive rule's objective one.
    // Backtracking trials add nothing (scalar tests). The forward pass's layer-1
    // W-step follows the backward pass's and forms `R X^T` from it: no pass (-1
    // forward, -1 backward).
    let l = 3;
    let per_forward = 2 * l + 2 * l + 2 * l + 2 * (l - 1) + 2 * (l - 1) + 4 + 2 + 1 - 1;
    let per_forward = per_forward + u64::from(adaptive);
    let mut forward = 1;
    for r in &out.trace.records[1..] {
        let inner = r
            .extras
            .iter()
            .find(|(k, _)| k == "output_inner")
            .unwrap()
            .1;
        forward += per_forward + inner as u64;
    }
    assert_eq!(out.counters.forward, forward);
    assert_eq!(out.counters.backward, 4 * (2 * l + 2 * (l - 1) - 1));
}

#[test]
fn full_batch_gradient_methods_count_two_passes_per_gradient() {
    let mut gd = SgdConfig::gd(0.05).build::<f64>().unwrap();
    let out = run(&mut gd, 6);
    assert_eq!((out.counters.forward, out.counters.backward), (6, 6));
    assert_eq!(out.counters.samples_seen, 2 * 6 * N);
    let mut agd = AgdConfig {
        batching: Batching::Full,
        ..Default::default()
    }
    .build::<f64>()
    .unwrap();
    let out = run(&mut agd, 6);
    assert_eq!((out.counters.forward, out.counters.backward), (6, 6));
}
