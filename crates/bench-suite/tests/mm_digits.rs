//! Digits: block MM, last-layer MM and AGD on the 64-128-10 ReLU MLP (softmax
//! cross-entropy, mean reduction, standardised digits from `digits_split(0)`, He-normal
//! initial weights from seed 0). Numbers measured with
//! `cargo test -p bench-suite --test mm_digits -- --nocapture` (debug profile).

use autodiff::Reduction;
use bench_suite::data::digits_split;
use nets::{Activation, Init, Loss, LossKind, Sequential};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::agd::{AgdConfig, agd_initialize};
use solvers::mm::BlockMmConfig;
use solvers::{Budget, Driver, NetProblem, Record};

fn problem(seed: u64) -> NetProblem<f64> {
    let (train, test) = digits_split::<f64>(seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Sequential::mlp(&[64, 128, 10], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    NetProblem::new(net, loss, train, Some(test)).unwrap()
}

fn extra(r: &Record, name: &str) -> f64 {
    r.extras
        .iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |(_, v)| *v)
}

fn run(cfg: BlockMmConfig, sweeps: u64) -> Vec<Record> {
    let mut p = problem(0);
    let out = Driver::new(Budget::iterations(sweeps))
        .seed(1)
        .run(&mut p, &mut cfg.build::<f64>().unwrap())
        .unwrap();
    for r in &out.trace.records {
        println!(
            "it {:2} objective {:.6} train {:.4} test {:.4} hidden curvature {:.3e} (structural {:.3e}) trials {}/{} decreased {} time {:.2}s",
            r.iteration,
            r.objective,
            r.train_accuracy.unwrap_or(f64::NAN),
            r.test_accuracy.unwrap_or(f64::NAN),
            extra(r, "curvature_0"),
            extra(r, "structural_0"),
            extra(r, "trials_0"),
            extra(r, "trials_1"),
            extra(r, "decreased"),
            r.wall_time_s
        );
    }
    out.trace.records
}

fn assert_never_increases(recs: &[Record]) {
    for w in recs.windows(2) {
        assert!(
            w[1].objective <= w[0].objective,
            "objective increased at sweep {}: {} -> {}",
            w[1].iteration,
            w[0].objective,
            w[1].objective
        );
    }
}

#[test]
fn safeguarded_block_mm_is_monotone_and_reaches_90_percent_on_digits() {
    // Measured (`block-mm-safeguarded`): objective 2.996 -> 0.1193 after 4 sweeps (test
    // 97.8%), 0.00625 after 10 sweeps (test 96.7%); every sweep decreased the objective.
    let recs = run(BlockMmConfig::safeguarded(), 10);
    assert_never_increases(&recs);
    assert!(recs[1..].iter().all(|r| extra(r, "decreased") == 1.0));
    let last = recs.last().unwrap();
    assert!(
        last.test_accuracy.unwrap() >= 0.90,
        "{:?}",
        last.test_accuracy
    );
    assert!(last.objective < 0.01, "{}", last.objective);
    // The hidden-layer structural bound is loose here: the accepted curvature ends
    // orders of magnitude below it (measured 9.8e-6 vs 4.3e-3 at sweep 10).
    assert!(extra(last, "curvature_0") < 0.1 * extra(last, "structural_0"));

    // With decrease = 1 the hidden curvature stays at its first accepted value (the
    // sweep-1 structural bound 1.257e-3, never rejected here, although the structural
    // bound itself grows to 6.7e-3 by sweep 10 as ||W_2||_* grows) and progress is
    // slower: measured objective 0.0808 after 10 sweeps (test 96.9%).
    let slow = run(
        BlockMmConfig {
            decrease: 1.0,
            ..BlockMmConfig::safeguarded()
        },
        10,
    );
    assert_never_increases(&slow);
    let s = slow.last().unwrap();
    assert!(s.test_accuracy.unwrap() >= 0.90);
    assert!(s.objective > 5.0 * last.objective);
}

#[test]
fn certified_block_mm_is_monotone_without_backtracking_on_digits() {
    // The default (certified) path: every hidden block took the enclosure-certified
    // step (path_0 = 1, no backtracking trial). Measured: objective 2.996 -> 0.0321
    // after 10 sweeps (test 97.8%), against 0.00625 for the safeguarded path: the
    // certified steps are shorter (the enclosure counts every ReLU kink crossing).
    let recs = run(BlockMmConfig::default(), 10);
    assert_never_increases(&recs);
    for r in &recs[1..] {
        assert_eq!(extra(r, "path_0"), 1.0, "sweep {}", r.iteration);
        assert_eq!(extra(r, "trials_0"), 0.0);
        assert_eq!(extra(r, "decreased"), 1.0);
    }
    let last = recs.last().unwrap();
    assert!(last.test_accuracy.unwrap() >= 0.90);
    assert!(last.objective < 0.05, "{}", last.objective);
}

#[test]
fn last_layer_mm_alone_is_monotone_on_digits() {
    // Hidden layer fixed at its random initialisation; Böhning steps on the output layer.
    // Measured: objective 2.996 -> 0.1454 after 10 sweeps, test 96.4%.
    let recs = run(BlockMmConfig::last_layer(), 10);
    assert_never_increases(&recs);
    assert!(recs[1..].iter().all(|r| extra(r, "trials_1") == 1.0));
    let last = recs.last().unwrap();
    assert!(
        last.test_accuracy.unwrap() >= 0.90,
        "{:?}",
        last.test_accuracy
    );
}

#[test]
fn agd_trains_the_digits_mlp() {
    // AGD with its own initialisation, gain 1, mini-batches of 128, 20 epochs.
    // Measured: objective 2.287 -> 0.0613, test 96.4% after 20 epochs.
    let mut p = problem(0);
    agd_initialize(&mut p.net, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let out = Driver::new(Budget::iterations(20))
        .seed(1)
        .run(&mut p, &mut AgdConfig::default().build::<f64>().unwrap())
        .unwrap();
    let recs = &out.trace.records;
    for r in recs {
        println!(
            "AGD epoch {:2} objective {:.5} test {:.4} G {:.4} eta {:.4}",
            r.iteration,
            r.objective,
            r.test_accuracy.unwrap(),
            extra(r, "G_mean"),
            extra(r, "eta_mean")
        );
    }
    // Not an MM method: require "mostly" decreasing, not monotone.
    let ups = recs
        .windows(2)
        .filter(|w| w[1].objective > w[0].objective)
        .count();
    println!("AGD: {ups} epoch(s) of 20 increased the full-batch objective");
    assert!(ups <= 4, "{ups}");
    let last = recs.last().unwrap();
    assert!(last.objective < 0.05 * recs[0].objective);
    assert!(
        last.test_accuracy.unwrap() >= 0.90,
        "{:?}",
        last.test_accuracy
    );
    assert_eq!(last.backward, 20 * 12); // 1438 samples in batches of 128: 12 per epoch
}
