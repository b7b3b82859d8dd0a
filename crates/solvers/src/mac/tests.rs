//! Unit tests of MAC: monotone E_Q at every block for fixed mu, constraint violation
//! vanishing along the mu schedule, typed config errors, checkpoint round trip.

use nets::{Loss, LossKind, Reduction};

use super::*;
use crate::bcd::tests::{run_ctx, toy};

fn fixed_mu(mu: f64) -> MacConfig {
    MacConfig {
        mu0: mu,
        mu_factor: 1.0,
        mu_max: mu,
        ..MacConfig::default()
    }
}

/// Runs `iters` iterations at fixed mu, asserting E_Q never increases after any block.
fn monotone(cfg: MacConfig, loss: Loss, iters: usize) -> (f64, f64, usize) {
    let (mut net, data) = toy::<f64>(21);
    let mut mac = cfg.build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    let ld = LiftedData::new(&data, &loss);
    let mu = cfg.mu0;
    let start = mac.state().unwrap().objective(&ld, mu).unwrap();
    let mut prev = start;
    let mut blocks = 0;
    run_ctx(|ctx| {
        for _ in 0..iters {
            mac.step_with_hook(&mut net, &data, &loss, ctx, &mut |blk, st| {
                let e = st.objective(&ld, mu).unwrap();
                assert!(
                    e <= prev + 1e-10 * (1.0 + prev.abs()),
                    "{blk:?} increased E_Q from {prev} to {e}"
                );
                prev = e;
                blocks += 1;
            })
            .unwrap();
        }
    });
    (start, prev, blocks)
}

#[test]
fn every_block_decreases_e_q_at_fixed_mu_mse() {
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let (start, end, blocks) = monotone(fixed_mu(2.0), loss, 12);
    // 2 hidden layers x z_steps (2) + 3 weight blocks per iteration.
    assert_eq!(blocks, 12 * 7);
    assert!(end < 0.7 * start, "E_Q {start} -> {end}");
}

#[test]
fn every_block_decreases_e_q_at_fixed_mu_softmax_ce_with_l2() {
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
    let cfg = MacConfig {
        out_steps: 3,
        ..fixed_mu(0.5)
    };
    let (start, end, _) = monotone(cfg, loss, 10);
    assert!(end < start, "E_Q {start} -> {end}");
}

#[test]
fn violation_vanishes_as_mu_grows() {
    let (mut net, data) = toy::<f64>(22);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let cfg = MacConfig {
        mu0: 0.1,
        mu_factor: 2.0,
        iters_per_mu: 2,
        mu_max: 1e7,
        ..MacConfig::default()
    };
    let mut mac = cfg.build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    let mut early = 0.0;
    let mut last = StepReport::new();
    run_ctx(|ctx| {
        for k in 0..56 {
            last = mac.step_parts(&mut net, &data, &loss, ctx).unwrap();
            if k == 3 {
                early = viol_max(&last);
            }
        }
    });
    let mu = last.extras.iter().find(|(n, _)| n == "mu").unwrap().1;
    assert!(mu > 1e7 * 0.99, "mu reached {mu}");
    let end = viol_max(&last);
    assert!(early > 1e-2, "early violation {early}");
    assert!(
        end < 1e-3,
        "violation after the schedule: {end} (early {early})"
    );
}

fn viol_max(r: &StepReport) -> f64 {
    r.extras
        .iter()
        .filter(|(n, _)| n.starts_with("viol_"))
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
}

#[test]
fn training_improves_the_true_objective() {
    let (mut net, data) = toy::<f64>(23);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let before = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    let mut mac = MacConfig::default().build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    // An independent tally of the blocks through the hook, and of the evaluations that
    // touch all samples where they happen (`state::tally`).
    let (mut z_blocks, mut w_blocks) = (0u64, 0u64);
    let t0 = super::state::tally::read();
    let counters = run_ctx(|ctx| {
        for _ in 0..30 {
            mac.step_with_hook(&mut net, &data, &loss, ctx, &mut |b, _| match b {
                MacBlock::Coordinates(_) => z_blocks += 1,
                MacBlock::Weights(_) => w_blocks += 1,
                MacBlock::FeasibleCandidate => {}
            })
            .unwrap();
        }
    });
    let after = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    assert!(after < 0.7 * before, "true objective {before} -> {after}");
    assert_eq!((z_blocks, w_blocks), (30 * 2 * 2, 30 * 3));
    let t1 = super::state::tally::read();
    let (terms, grads, candidates) = (t1.0 - t0.0, t1.1 - t0.1, t1.2 - t0.2);
    // Data passes: a forward per evaluation of a block's term over the N columns (start
    // and backtracking trials of each Z-step, each W-step) and per feasible candidate
    // (one per iteration); a backward per product of a term's gradient with the
    // transposed weights (Z-step) or the layer input (W-step).
    assert_eq!(candidates, 30);
    assert_eq!(grads, z_blocks + w_blocks);
    assert_eq!(counters.forward, terms + candidates);
    assert_eq!(counters.backward, grads);
    let trials = terms - grads;
    assert!(trials >= z_blocks, "{trials} trials for {z_blocks} Z-steps");
    assert_eq!(
        counters.samples_seen,
        40 * (counters.forward + counters.backward)
    );
    // inner_solves: candidates + Z trials + W-step solves (>= 1 per W-step).
    assert!(counters.inner_solves >= 30 + trials + w_blocks);
}

#[test]
fn bad_hyperparameters_are_typed_errors() {
    let cases: [(MacConfig, &str); 5] = [
        (
            MacConfig {
                mu0: 0.0,
                ..Default::default()
            },
            "invalid MAC config: mu0 = 0 must be finite and > 0",
        ),
        (
            MacConfig {
                mu_factor: 0.5,
                ..Default::default()
            },
            "invalid MAC config: mu_factor = 0.5 must be finite and >= 1",
        ),
        (
            MacConfig {
                iters_per_mu: 0,
                ..Default::default()
            },
            "invalid MAC config: iters_per_mu = 0 must be >= 1",
        ),
        (
            MacConfig {
                z_steps: 0,
                ..Default::default()
            },
            "invalid MAC config: z_steps = 0 must be >= 1",
        ),
        (
            MacConfig {
                mu0: 10.0,
                mu_max: 1.0,
                ..Default::default()
            },
            "invalid MAC config: mu_max = 1 must be finite and >= mu0",
        ),
    ];
    for (cfg, msg) in cases {
        assert_eq!(cfg.build::<f64>().unwrap_err().to_string(), msg);
    }
    let (net, data) = toy::<f64>(1);
    let hinge = Loss::new(LossKind::MulticlassHinge, Reduction::Mean);
    let e = MacConfig::default()
        .build::<f64>()
        .unwrap()
        .init_parts(&net, &data, &hinge)
        .unwrap_err();
    assert!(
        matches!(&e, SolverError::NotApplicable(m) if m.contains("MulticlassHinge is not supported")),
        "{e}"
    );
}

#[test]
fn nan_weights_are_reported_not_handed_back() {
    let (mut net, data) = toy::<f64>(2);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let mut mac = MacConfig::default().build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    net.dense_mut(2).unwrap().bias[0] = f64::INFINITY;
    run_ctx(|ctx| {
        let e = mac.step_parts(&mut net, &data, &loss, ctx).unwrap_err();
        assert!(matches!(e, SolverError::NonFinite(_)), "{e}");
    });
}

#[test]
fn checkpoint_round_trip_continues_bit_identically() {
    let (mut net, data) = toy::<f64>(24);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let mut a = MacConfig::default().build::<f64>().unwrap();
    a.init_parts(&net, &data, &loss).unwrap();
    run_ctx(|ctx| {
        for _ in 0..3 {
            a.step_parts(&mut net, &data, &loss, ctx).unwrap();
        }
    });
    let saved = a.save_json();
    let mut net_b = net.clone();
    let mut b = MacConfig::default().build::<f64>().unwrap();
    b.load_json(&saved).unwrap();
    assert_eq!(b.iterations(), 3);
    assert_eq!(b.current_mu(), a.current_mu());
    run_ctx(|ctx| {
        for _ in 0..3 {
            a.step_parts(&mut net, &data, &loss, ctx).unwrap();
            b.step_parts(&mut net_b, &data, &loss, ctx).unwrap();
        }
    });
    assert_eq!(net.flat_params(), net_b.flat_params());
}

#[test]
fn mu_schedule_is_geometric_and_capped() {
    let cfg = MacConfig {
        mu0: 1.0,
        mu_factor: 2.0,
        iters_per_mu: 3,
        mu_max: 8.0,
        ..MacConfig::default()
    };
    let mus: Vec<f64> = (0..14).map(|k| cfg.mu_at(k)).collect();
    assert_eq!(
        mus,
        vec![
            1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0
        ]
    );
}

#[test]
fn runs_through_the_driver_and_resumes_bit_identically() {
    crate::bcd::tests::driver_resume_identical(
        || MacConfig::default().build::<f64>().unwrap(),
        Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean),
    );
}

#[test]
fn f32_runs_and_decreases() {
    let (mut net, data) = toy::<f32>(25);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let before = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    let mut mac = MacConfig::default().build::<f32>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    run_ctx(|ctx| {
        for _ in 0..15 {
            mac.step_parts(&mut net, &data, &loss, ctx).unwrap();
        }
    });
    let after = net.objective(&loss, data.inputs(), data.targets()).unwrap();
    assert!(after < 0.8 * before, "{before} -> {after}");
}

/// The cached layer outputs (issue #14) give the same E_Q and violations as recomputing
/// them, bit for bit, also after the network is changed between steps (which must drop
/// the cache) and over a change of mu (which refactors layer 1's W-step system).
#[test]
fn cached_layer_outputs_match_recomputation_bit_for_bit() {
    let (mut net, data) = toy::<f64>(23);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let cfg = MacConfig {
        mu0: 0.5,
        mu_factor: 2.0,
        iters_per_mu: 1,
        ..MacConfig::default()
    };
    let mut mac = cfg.build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    let ld = LiftedData::new(&data, &loss);
    run_ctx(|ctx| {
        for it in 0..5 {
            if it == 2 {
                net.dense_mut(0).unwrap().weight[(0, 0)] += 0.25;
                net.dense_mut(1).unwrap().bias[0] -= 0.5;
            }
            let mu = cfg.mu_at(it);
            let r = mac.step_parts(&mut net, &data, &loss, ctx).unwrap();
            let st = mac.state().unwrap();
            let e = st.objective(&ld, mu).unwrap() * ld.weight();
            assert_eq!(
                r.surrogate.unwrap().to_bits(),
                e.to_bits(),
                "iteration {it}"
            );
            let viol = st.violations(data.inputs()).unwrap();
            let reported: Vec<f64> = r
                .extras
                .iter()
                .filter(|(k, _)| k.starts_with("viol_"))
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(reported, viol, "iteration {it}");
        }
    });
}

/// How the schedule defaults were derived (docs/LIFTED.md, "MAC schedule"): on the toy
/// 4-6-5-3 problem of these tests (not a benchmark problem), seeds 1..=5, softmax
/// cross-entropy, 40 iterations, every (mu0, mu_factor, iters_per_mu) of a small grid;
/// prints the median and maximum final true objective and the worst rise above the start.
#[test]
#[ignore = "derivation sweep; run with -- --ignored --nocapture"]
fn schedule_sweep_on_the_toy_problem() {
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    for iters_per_mu in [1usize, 2] {
        for mu0 in [0.01, 0.1, 1.0, 10.0, 100.0] {
            for mu_factor in [1.2, 1.5, 2.0, 3.0] {
                let mut finals = Vec::new();
                let mut worst_rise = 0.0f64;
                for seed in 1..=5u64 {
                    let (mut net, data) = toy::<f64>(seed);
                    let f0 = net.objective(&loss, data.inputs(), data.targets()).unwrap();
                    let cfg = MacConfig {
                        mu0,
                        mu_factor,
                        iters_per_mu,
                        ..Default::default()
                    };
                    let mut mac = cfg.build::<f64>().unwrap();
                    mac.init_parts(&net, &data, &loss).unwrap();
                    let mut f = f0;
                    run_ctx(|ctx| {
                        for _ in 0..40 {
                            if mac.step_parts(&mut net, &data, &loss, ctx).is_err() {
                                f = f64::INFINITY;
                                return;
                            }
                            f = net.objective(&loss, data.inputs(), data.targets()).unwrap();
                            worst_rise = worst_rise.max(f / f0);
                        }
                    });
                    finals.push(f);
                }
                finals.sort_by(f64::total_cmp);
                eprintln!(
                    "iters_per_mu {iters_per_mu} mu0 {mu0:>5} factor {mu_factor:>3}: median final {:.4e}, max final {:.4e}, worst f/f0 {:.2}",
                    finals[2], finals[4], worst_rise
                );
            }
        }
    }
}

#[test]
fn repeated_output_steps_count_one_value_and_gradient_each() {
    // A cross-entropy output layer repeats its MM W-step `out_steps` times; each repeat
    // evaluates the loss and its gradient over the N columns again (counted by the
    // solver as data passes, tallied independently by `state::tally`).
    let (mut net, data) = toy::<f64>(29);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
    let cfg = MacConfig {
        out_steps: 3,
        feasible_candidate: false,
        ..MacConfig::default()
    };
    let mut mac = cfg.build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    let t0 = super::state::tally::read();
    let counters = run_ctx(|ctx| {
        for _ in 0..4 {
            mac.step_parts(&mut net, &data, &loss, ctx).unwrap();
        }
    });
    let t1 = super::state::tally::read();
    let (terms, grads, candidates) = (t1.0 - t0.0, t1.1 - t0.1, t1.2 - t0.2);
    assert_eq!(candidates, 0);
    // Per iteration: 2 hidden Z-blocks x 2 MM steps, W_1, W_2 and 3 steps of W_3.
    assert_eq!(grads, 4 * (2 * 2 + 2 + 3));
    assert_eq!((counters.forward, counters.backward), (terms, grads));
    assert_eq!(counters.samples_seen, 40 * (terms + grads));
}

#[test]
fn kept_output_term_and_swapped_backups_give_recomputed_iterates_bit_for_bit() {
    // Issue #14: the output loss term is computed once per output, the Z-step backups
    // are swapped in. Against a run that recomputes the output term wherever it is used
    // and drops every kept quantity before each iteration (`invalidate_all`), with the
    // network changed from outside once: the same reports, coordinates, weights and pass
    // counts, bit for bit.
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let (net0, data) = toy::<f64>(9);
    let (mut na, mut nb) = (net0.clone(), net0);
    let cfg = MacConfig::default();
    let mut a = cfg.build::<f64>().unwrap();
    let mut b = cfg.build::<f64>().unwrap();
    a.init_parts(&na, &data, &loss).unwrap();
    b.init_parts(&nb, &data, &loss).unwrap();
    for it in 0..8 {
        if it == 4 {
            for n in [&mut na, &mut nb] {
                n.dense_mut(2).unwrap().bias[0] -= 0.5;
            }
        }
        let mut ra = crate::StepReport::new();
        let ca = run_ctx(|ctx| ra = a.step_parts(&mut na, &data, &loss, ctx).unwrap());
        b.state.as_mut().unwrap().invalidate_all();
        let mut rb = crate::StepReport::new();
        let recompute = &super::state::tally::RECOMPUTE_OUTPUT_TERM;
        recompute.with(|c| c.set(true));
        let cb = run_ctx(|ctx| rb = b.step_parts(&mut nb, &data, &loss, ctx).unwrap());
        recompute.with(|c| c.set(false));
        assert_eq!(
            ra.surrogate.map(f64::to_bits),
            rb.surrogate.map(f64::to_bits),
            "iteration {it}"
        );
        assert_eq!(ra.extras, rb.extras, "iteration {it}");
        assert_eq!(ca, cb, "iteration {it}");
        assert_eq!(a.state().unwrap().z, b.state().unwrap().z, "iteration {it}");
        assert_eq!(na.flat_params(), nb.flat_params(), "iteration {it}");
    }
}

#[test]
fn a_taken_feasible_candidate_is_the_forward_pass_exactly() {
    // Issue #14: the candidate's Z_1 (layer 1's cached output) is copied only when the
    // candidate is taken. When taken, every Z_l must be the forward pass of the weights
    // (violations exactly 0) and the cached h(Z_l) its activation.
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let (mut net, data) = toy::<f64>(31);
    let cfg = MacConfig {
        mu0: 0.05,
        mu_factor: 3.0,
        iters_per_mu: 1,
        ..MacConfig::default()
    };
    let mut mac = cfg.build::<f64>().unwrap();
    mac.init_parts(&net, &data, &loss).unwrap();
    let mut taken = 0;
    run_ctx(|ctx| {
        for _ in 0..12 {
            mac.step_with_hook(&mut net, &data, &loss, ctx, &mut |b, st| {
                if b == MacBlock::FeasibleCandidate {
                    taken += 1;
                    assert_eq!(st.violations(data.inputs()).unwrap(), vec![0.0; 2]);
                    for (z, a) in st.z.iter().zip(&st.a) {
                        assert_eq!(&z.map(|v| v.max(0.0)), a);
                    }
                }
            })
            .unwrap();
        }
    });
    assert!(taken >= 2, "the candidate was taken {taken} times");
}
