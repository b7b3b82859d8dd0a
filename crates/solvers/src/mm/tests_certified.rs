//! Tests of block MM's certified hidden-block path (`BlockMmConfig::certified`).

use autodiff::{Real, Reduction};
use nets::{Activation, Loss, LossKind};

use super::tests::{assert_monotone, blobs, extra, net, objectives};
use super::*;
use crate::{Budget, Driver, MemoryStore, NetProblem, Record, Solver};

fn certified(steps: usize) -> BlockMmConfig {
    BlockMmConfig {
        certified: true,
        certified_steps: steps,
        ..Default::default()
    }
}

fn run<T: Real>(
    widths: &[usize],
    h: Activation,
    kind: LossKind,
    cfg: BlockMmConfig,
    sweeps: u64,
) -> Vec<Record> {
    let data = blobs::<T>(widths[0], 60, 7);
    let mut loss = Loss::new(kind, Reduction::Mean);
    loss.l2 = 1e-3;
    let mut p = NetProblem::new(net(widths, h, 8), loss, data, None).unwrap();
    Driver::new(Budget::iterations(sweeps))
        .run(&mut p, &mut cfg.build::<T>().unwrap())
        .unwrap()
        .trace
        .records
}

/// Hidden blocks that took the certified path in `recs` (layers `0..hidden`).
fn certified_blocks(recs: &[Record], hidden: usize) -> usize {
    recs[1..]
        .iter()
        .map(|r| {
            (0..hidden)
                .filter(|i| extra(r, &format!("path_{i}")) == 1.0)
                .count()
        })
        .sum()
}

#[test]
fn certified_path_never_increases_the_objective() {
    // Every recorded objective is <= the one before, in f64 and f32, for smooth and
    // piecewise-linear activations and each loss, with one and several steps per block.
    let cases = [
        (Activation::Tanh, LossKind::SoftmaxCrossEntropy),
        (Activation::Relu, LossKind::SoftmaxCrossEntropy),
        (Activation::Softplus, LossKind::Mse),
        (Activation::Sigmoid, LossKind::SoftmaxCrossEntropy),
    ];
    for (h, kind) in cases {
        for steps in [1, 4] {
            let recs = run::<f64>(&[6, 9, 7, 3], h, kind, certified(steps), 40);
            let obj = objectives(&recs);
            assert_monotone(&obj);
            assert!(
                obj[40] < 0.8 * obj[0],
                "{h:?} {kind:?} f64: {} -> {}",
                obj[0],
                obj[40]
            );
            let c = certified_blocks(&recs, 2);
            assert!(
                c >= 60,
                "{h:?} {kind:?} f64 steps {steps}: {c} of 80 blocks certified"
            );
            let recs = run::<f32>(&[6, 9, 7, 3], h, kind, certified(steps), 25);
            assert_monotone(&objectives(&recs));
            let c = certified_blocks(&recs, 2);
            assert!(
                c >= 30,
                "{h:?} {kind:?} f32 steps {steps}: {c} of 50 blocks certified"
            );
        }
    }
}

#[test]
fn certified_hidden_blocks_need_no_backtracking_and_count_their_work() {
    let data = blobs::<f64>(6, 60, 7);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mut p = NetProblem::new(net(&[6, 10, 3], Activation::Tanh, 8), loss, data, None).unwrap();
    let cfg = certified(3);
    let out = Driver::new(Budget::iterations(6))
        .run(&mut p, &mut cfg.build::<f64>().unwrap())
        .unwrap();
    let recs = &out.trace.records;
    assert_monotone(&objectives(recs));
    assert!(certified_blocks(recs, 1) >= 5);
    let (mut forward, mut solves) = (0.0, 0.0);
    for r in &recs[1..] {
        assert_eq!(extra(r, "path_1"), 0.0); // the output layer's closed-form step
        assert!(extra(r, "cert_steps_0") <= 3.0);
        assert!(extra(r, "enclosures_0") >= extra(r, "cert_steps_0"));
        if extra(r, "path_0") == 1.0 {
            assert_eq!(extra(r, "trials_0"), 0.0);
            assert!(extra(r, "cert_steps_0") >= 1.0);
            // Each enclosure, then one forward pass from the block; one solve.
            forward += extra(r, "enclosures_0") + 1.0;
            solves += 1.0;
        } else {
            // Tried the certified path (one solve, its enclosures), then backtracked.
            assert_eq!(extra(r, "cert_steps_0"), 0.0);
            forward += extra(r, "enclosures_0") + extra(r, "trials_0");
            solves += 1.0 + extra(r, "trials_0");
        }
        forward += 1.0 + extra(r, "trials_1"); // sweep start + output-layer trials
        solves += extra(r, "trials_1");
    }
    let last = recs.last().unwrap();
    assert_eq!(last.forward as f64, forward);
    assert_eq!(last.inner_solves as f64, solves);
    assert_eq!(last.backward, 12); // one backward pass per block
    assert!(last.objective < 0.7 * recs[0].objective);
}

#[test]
fn trust_region_grows_on_edge_hits_and_carries_over() {
    // Start with a trust region far too small: every step reaches its edge, so each
    // step doubles it and several steps are taken per block until the bound's minimum
    // on the ray lies inside.
    let cfg = BlockMmConfig {
        certified_trust_region: 1e-4,
        ..certified(4)
    };
    let recs = run::<f64>(
        &[6, 9, 3],
        Activation::Tanh,
        LossKind::SoftmaxCrossEntropy,
        cfg,
        8,
    );
    let r1 = &recs[1];
    assert_eq!(extra(r1, "cert_steps_0"), 4.0);
    assert_eq!(extra(r1, "trust_0"), 1e-4 * 16.0);
    let trusts: Vec<f64> = recs[1..].iter().map(|r| extra(r, "trust_0")).collect();
    assert!(trusts[3] > trusts[0], "{trusts:?}");
    // The curvature the step corresponds to, structural / (sum of the steps), shrinks
    // as the region grows.
    assert!(extra(&recs[3], "curvature_0") < extra(r1, "curvature_0"));
}

#[test]
fn certified_path_resumes_bit_identically() {
    // The trust regions are part of the checkpointed state.
    let data = blobs::<f64>(6, 40, 9);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mk = || {
        NetProblem::new(
            net(&[6, 7, 5, 3], Activation::Tanh, 3),
            loss,
            data.clone(),
            None,
        )
        .unwrap()
    };
    let solver = || certified(2).build::<f64>().unwrap();
    let mut p = mk();
    let full = Driver::new(Budget::iterations(7))
        .run(&mut p, &mut solver())
        .unwrap();
    let mut store = MemoryStore::default();
    let mut p1 = mk();
    Driver::new(Budget::iterations(3))
        .checkpointing(&mut store, 1)
        .run(&mut p1, &mut solver())
        .unwrap();
    let mut p2 = mk();
    let resumed = Driver::new(Budget::iterations(7))
        .checkpointing(&mut store, 1)
        .resume(true)
        .run(&mut p2, &mut solver())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(p2.net.flat_params(), p.net.flat_params());
}

#[test]
fn zero_certified_steps_is_a_typed_error_naming_the_field() {
    let err = certified(0).build::<f64>().unwrap_err().to_string();
    assert!(err.contains("certified_steps"), "{err}");
    let err = BlockMmConfig {
        certified_trust_region: f64::NAN,
        ..certified(1)
    }
    .build::<f64>()
    .unwrap_err()
    .to_string();
    assert!(err.contains("certified_trust_region"), "{err}");
}

#[test]
fn the_default_is_certified_and_unsupported_layers_take_the_safeguarded_path() {
    assert!(BlockMmConfig::default().certified);
    assert!(!BlockMmConfig::safeguarded().certified);
    // Tanh: the enclosure applies, every hidden block is certified (no trial).
    let recs = run::<f64>(
        &[6, 9, 3],
        Activation::Tanh,
        LossKind::SoftmaxCrossEntropy,
        BlockMmConfig::default(),
        10,
    );
    assert_monotone(&objectives(&recs));
    assert_eq!(certified_blocks(&recs, 1), 10);
    assert!(recs[1..].iter().all(|r| extra(r, "trials_0") == 0.0));
    // ELU has no enclosure rule: the engine refuses before any work (no enclosure is
    // counted), every hidden block backtracks, and the trace says so.
    let recs = run::<f64>(
        &[6, 9, 3],
        Activation::Elu { alpha: 1.0 },
        LossKind::SoftmaxCrossEntropy,
        BlockMmConfig::default(),
        10,
    );
    let obj = objectives(&recs);
    assert_monotone(&obj);
    assert!(obj[10] < 0.8 * obj[0], "{} -> {}", obj[0], obj[10]);
    for r in &recs[1..] {
        assert_eq!(extra(r, "path_0"), 0.0);
        assert_eq!(extra(r, "enclosures_0"), 0.0);
        assert!(extra(r, "trials_0") >= 1.0);
    }
}

#[test]
fn a_checkpoint_of_the_other_path_or_the_old_format_is_a_typed_error() {
    let data = blobs::<f64>(6, 40, 9);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mk = || {
        NetProblem::new(
            net(&[6, 7, 3], Activation::Tanh, 3),
            loss,
            data.clone(),
            None,
        )
    };
    let mut store = MemoryStore::default();
    Driver::new(Budget::iterations(2))
        .checkpointing(&mut store, 1)
        .run(
            &mut mk().unwrap(),
            &mut BlockMmConfig::safeguarded().build::<f64>().unwrap(),
        )
        .unwrap();
    // A safeguarded checkpoint does not silently continue on the certified path.
    let err = Driver::new(Budget::iterations(4))
        .checkpointing(&mut store, 1)
        .resume(true)
        .run(
            &mut mk().unwrap(),
            &mut BlockMmConfig::default().build::<f64>().unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("safeguarded hidden-block path") && err.contains("certified"),
        "{err}"
    );
    // The state of a checkpoint written before the certified path became the default
    // (no `certified` field) is refused with a typed error naming the field.
    let mut s = BlockMmConfig::default().build::<f64>().unwrap();
    let power = vec![vec![1.0; 6], vec![1.0; 7]];
    let old = serde_json::json!({"sweeps": 2, "curvature": [0.1, 0.5], "power": power, "trust": [0.0, 0.0]});
    let err = s.load_state(&old).unwrap_err();
    assert!(matches!(err, crate::SolverError::Checkpoint(_)), "{err:?}");
    assert!(err.to_string().contains("certified"), "{err}");
}

#[test]
fn certified_ridge_is_validated() {
    for bad in [-1.0, f64::INFINITY, f64::NAN] {
        let err = BlockMmConfig {
            certified_ridge: bad,
            ..Default::default()
        }
        .build::<f64>()
        .unwrap_err()
        .to_string();
        assert!(err.contains("certified_ridge"), "{err}");
    }
}

/// A zero-width hidden layer (buildable with `Sequential::from_weights`, user data): the
/// certified path skips that block's enclosure and the run goes on, monotone (the
/// direction product's per-column loop over `d_out = 0` rows, `chunks_exact_mut(0)`).
#[test]
fn zero_width_hidden_layer_does_not_panic() {
    use nalgebra::{DMatrix, DVector};
    let widths = [6usize, 0, 7, 3];
    let layers: Vec<(DMatrix<f64>, DVector<f64>)> = (0..3)
        .map(|l| {
            let (din, dout) = (widths[l], widths[l + 1]);
            (
                DMatrix::from_fn(dout, din, |i, j| ((i + 2 * j) % 5) as f64 * 0.1 - 0.2),
                DVector::from_element(dout, 0.1),
            )
        })
        .collect();
    let net =
        nets::Sequential::from_weights(&layers, &[Activation::Relu, Activation::Relu]).unwrap();
    let data = blobs::<f64>(6, 30, 7);
    let mut loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    loss.l2 = 1e-3;
    let mut p = NetProblem::new(net, loss, data, None).unwrap();
    let mut solver = certified(2).build::<f64>().unwrap();
    let out = Driver::new(Budget::iterations(3)).run(&mut p, &mut solver);
    let recs = out.unwrap().trace.records;
    assert_eq!(recs.len(), 4);
    assert_monotone(&objectives(&recs));
}

/// `top_block_bound`: the top hidden ReLU block of a cross-entropy net is certified by
/// the chord/tangent bound (`rays_1` counts its calls; every enclosure of that block is
/// one), the block below it by the Taylor enclosure; the objective never rises, work is
/// counted the same way, and in f32 (where the bound declines) the Taylor enclosure
/// certifies the top block instead. With both chord/tangent bounds off, no `rays_*`
/// extra is written.
#[test]
fn top_block_bound_certifies_the_top_relu_block_monotonically() {
    let cfg = BlockMmConfig {
        top_block_bound: true,
        lower_block_bound: false,
        ..certified(4)
    };
    let recs = run::<f64>(
        &[6, 9, 7, 3],
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        cfg.clone(),
        30,
    );
    let obj = objectives(&recs);
    assert_monotone(&obj);
    assert!(obj[30] < 0.8 * obj[0], "{} -> {}", obj[0], obj[30]);
    let (mut rays, mut top_steps, mut encl) = (0.0, 0.0, 0.0);
    for r in &recs[1..] {
        assert_eq!(
            extra(r, "rays_0"),
            0.0,
            "the lower block is not the top one"
        );
        assert_eq!(extra(r, "rays_1"), extra(r, "enclosures_1"));
        rays += extra(r, "rays_1");
        encl += extra(r, "enclosures_0") + extra(r, "enclosures_1");
        top_steps += extra(r, "cert_steps_1");
    }
    assert!(rays >= 30.0, "{rays} chord/tangent bounds in 30 sweeps");
    assert!(
        top_steps >= 20.0,
        "{top_steps} certified steps of the top block"
    );
    assert!(encl >= rays);
    let recs32 = run::<f32>(
        &[6, 9, 7, 3],
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        cfg,
        10,
    );
    assert_monotone(&objectives(&recs32));
    assert!(recs32[1..].iter().all(|r| extra(r, "rays_1") == 0.0));
    assert!(certified_blocks(&recs32, 2) >= 10);
    let off = run::<f64>(
        &[6, 9, 7, 3],
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        BlockMmConfig {
            lower_block_bound: false,
            ..certified(4)
        },
        2,
    );
    assert!(off[1].extras.iter().all(|(k, _)| !k.starts_with("rays_")));
}

/// `lower_block_bound`: the lower hidden ReLU blocks of a cross-entropy net (squared
/// error: the next test) are certified
/// by the ray bound (`rays_l` equals `enclosures_l` on blocks 0 and 1 of a 6-9-8-7-3
/// net), which takes its anchors from the trace before a block's first step; the
/// objective never rises and the lower blocks take certified steps. With
/// `top_block_bound` off the top block keeps the Taylor enclosure (`rays_2 = 0`); in f32
/// (where the bound declines) every block takes the Taylor enclosure and still certifies.
#[test]
fn lower_block_bound_certifies_the_lower_relu_blocks_monotonically() {
    let widths = [6, 9, 8, 7, 3];
    let cfg = BlockMmConfig {
        lower_block_bound: true,
        ..certified(4)
    };
    let recs = run::<f64>(
        &widths,
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        cfg.clone(),
        30,
    );
    let obj = objectives(&recs);
    assert_monotone(&obj);
    assert!(obj[30] < 0.8 * obj[0], "{} -> {}", obj[0], obj[30]);
    let mut lower_steps = 0.0;
    for r in &recs[1..] {
        assert_eq!(
            extra(r, "rays_2"),
            0.0,
            "the top block keeps the Taylor enclosure"
        );
        for l in 0..2 {
            assert_eq!(
                extra(r, &format!("rays_{l}")),
                extra(r, &format!("enclosures_{l}"))
            );
            lower_steps += extra(r, &format!("cert_steps_{l}"));
        }
    }
    assert!(
        lower_steps >= 30.0,
        "{lower_steps} certified steps of the lower blocks in 30 sweeps"
    );
    let both = run::<f64>(
        &widths,
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        BlockMmConfig {
            top_block_bound: true,
            ..cfg.clone()
        },
        10,
    );
    assert_monotone(&objectives(&both));
    assert!(
        both[1..]
            .iter()
            .all(|r| extra(r, "rays_2") == extra(r, "enclosures_2"))
    );
    let recs32 = run::<f32>(
        &widths,
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        cfg,
        10,
    );
    assert_monotone(&objectives(&recs32));
    assert!(recs32[1..].iter().all(|r| extra(r, "rays_0") == 0.0));
    assert!(certified_blocks(&recs32, 3) >= 10);
}

/// The ray bound under squared error (session 19: `enclose_ray` takes `½‖z - y‖²` too):
/// on a ReLU net with the MSE loss every enclosure of the two lower blocks is a ray
/// bound, they take certified steps, and the objective never rises.
#[test]
fn lower_block_bound_certifies_the_lower_blocks_under_squared_error() {
    let cfg = BlockMmConfig {
        lower_block_bound: true,
        ..certified(4)
    };
    let recs = run::<f64>(&[6, 9, 8, 7, 3], Activation::Relu, LossKind::Mse, cfg, 30);
    let obj = objectives(&recs);
    assert_monotone(&obj);
    assert!(obj[30] < 0.8 * obj[0], "{} -> {}", obj[0], obj[30]);
    let mut lower_steps = 0.0;
    for r in &recs[1..] {
        assert_eq!(extra(r, "rays_2"), 0.0);
        for l in 0..2 {
            assert_eq!(
                extra(r, &format!("rays_{l}")),
                extra(r, &format!("enclosures_{l}"))
            );
            assert_eq!(extra(r, &format!("bound_errors_{l}")), 0.0);
            lower_steps += extra(r, &format!("cert_steps_{l}"));
        }
    }
    assert!(
        lower_steps >= 30.0,
        "{lower_steps} certified steps of the lower blocks in 30 sweeps"
    );
}

/// `top_block_ray` (session 19): the top hidden block takes the ray bound as well, on a
/// one-hidden-layer net (its only block) and on the 6-9-8-7-3 net, under cross-entropy
/// and squared error; every enclosure of every hidden block is a ray bound, the objective
/// never rises, and the top block takes certified steps. With `top_block_bound` as well,
/// the chord/tangent bound keeps the top block (its own `rays` count, same extras).
#[test]
fn top_block_ray_certifies_the_top_block_too() {
    let cfg = BlockMmConfig {
        top_block_ray: true,
        ..certified(4)
    };
    for kind in [LossKind::SoftmaxCrossEntropy, LossKind::Mse] {
        for widths in [&[6, 9, 3][..], &[6, 9, 8, 7, 3][..]] {
            let hidden = widths.len() - 2;
            let recs = run::<f64>(widths, Activation::Relu, kind, cfg.clone(), 20);
            let obj = objectives(&recs);
            assert_monotone(&obj);
            assert!(
                obj[20] < 0.8 * obj[0],
                "{kind:?} {widths:?}: {} -> {}",
                obj[0],
                obj[20]
            );
            let mut top_steps = 0.0;
            for r in &recs[1..] {
                for l in 0..hidden {
                    assert_eq!(
                        extra(r, &format!("rays_{l}")),
                        extra(r, &format!("enclosures_{l}")),
                        "{kind:?} {widths:?} block {l}"
                    );
                }
                top_steps += extra(r, &format!("cert_steps_{}", hidden - 1));
            }
            assert!(
                top_steps >= 20.0,
                "{kind:?} {widths:?}: {top_steps} top steps"
            );
        }
    }
    // In f32 the ray bound declines and every block takes the Taylor enclosure.
    let recs32 = run::<f32>(
        &[6, 9, 3],
        Activation::Relu,
        LossKind::SoftmaxCrossEntropy,
        cfg,
        10,
    );
    assert_monotone(&objectives(&recs32));
    assert!(recs32[1..].iter().all(|r| extra(r, "rays_0") == 0.0));
}
