//! Statuses that tell the truth: the 10x divergence rule, and `NotApplicable` for a
//! solver that does not support the problem (the lifted network on tanh layers).

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::lifted::LiftedConfig;
use solvers::*;

#[test]
fn the_divergence_rule_fires_at_ten_times_the_starting_objective() {
    let rule = DivergenceRule::default();
    assert_eq!(rule.blowup_factor, 10.0);
    // MAC on spirals (round 1): 1.22 -> 262 was reported `budget`; now diverged.
    assert!(rule.check(262.0, 1.22, true).is_some());
    assert!(rule.check(12.21, 1.22, true).is_some());
    assert!(rule.check(12.19, 1.22, true).is_none());
    // No floor at 1: a small starting objective scales the limit too.
    assert!(rule.check(0.0051, 0.0005, true).is_some());
    assert!(rule.check(0.0049, 0.0005, true).is_none());
    assert_eq!(
        rule.check(262.0, 1.22, true).unwrap(),
        "objective 2.620000e2 > 10 * |f_0| = 1.220000e1"
    );
    // The older limit (1e3 * max(|f_0|, 1)) is still expressible.
    let lenient = DivergenceRule {
        blowup_factor: 1e3,
        check_params: true,
    };
    assert!(lenient.check(262.0, 1.22, true).is_none());
}

fn tanh_problem() -> NetProblem<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = Sequential::mlp(&[2, 5, 2], Activation::Tanh, Init::GlorotUniform, &mut rng).unwrap();
    let x = DMatrix::from_fn(2, 12, |i, j| ((i + 2 * j) as f64 * 0.37).sin());
    let labels = (0..12).map(|j| j % 2).collect();
    let train = Dataset::new(x, Targets::Labels { labels, classes: 2 }).unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    NetProblem::new(net, loss, train, None).unwrap()
}

#[test]
fn lifted_on_tanh_layers_is_not_applicable_not_failed() {
    let mut p = tanh_problem();
    let mut lifted = LiftedConfig::default().build::<f64>().unwrap();
    let out = Driver::new(Budget::iterations(5))
        .run(&mut p, &mut lifted)
        .unwrap();
    assert_eq!(
        out.status,
        Status::NotApplicable {
            reason: "Lifted: activation tanh is not supported (the lifted solver encodes ReLU hidden layers only)".into()
        }
    );
    assert!(out.trace.records.is_empty());
    assert_eq!(out.counters.forward, 0);
}
