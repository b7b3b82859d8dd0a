//! The certified-MM solvers (safe-gd, safe-adam, safe-layerwise) on the extreme inputs
//! of block MM's test (`mm::tests_extreme::case`: random nets with two or three hidden
//! layers, inputs scaled from 0 to 1e300, weights from 1e-150 to 1e50, every L2), with
//! ReLU and tanh. These solvers apply a step only when its bound certifies a decrease
//! and have no safeguard behind it, so a rise of the recorded objective would be a
//! violated certificate. Each run must end `Ok` (any status; `failed` only on a named
//! non-finite value) or with a typed error, never a panic.

use nets::Activation;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::CertifiedConfig;
use crate::mm::tests_extreme::{Tally, case};

#[test]
fn certified_solvers_on_extreme_inputs_never_panic_and_never_rise() {
    let mut rng = ChaCha8Rng::seed_from_u64(180);
    let configs = [
        ("safe-gd", CertifiedConfig::safe_gd()),
        ("safe-adam", CertifiedConfig::safe_adam()),
        ("safe-layerwise", CertifiedConfig::safe_layerwise()),
    ];
    let (mut tally, mut certified) = (Tally::default(), 0.0);
    for c in 0..450 {
        let (name, cfg) = &configs[c % 3];
        let h = if c % 2 == 0 {
            Activation::Relu
        } else {
            Activation::Tanh
        };
        let seed = rng.random::<u64>();
        let Some(mut p) = case(&mut ChaCha8Rng::seed_from_u64(seed), h) else {
            continue;
        };
        let mut solver = cfg.clone().build::<f64>().unwrap();
        let label = format!("case {c} ({name}, {h:?})");
        // Failures only on overflowed data or gradients, named (a first-layer output or
        // a direction that is not finite).
        let named = |e: &str| e.contains("non-finite value");
        let Some(recs) = tally.run(&label, &mut p, &mut solver, 4, named) else {
            continue;
        };
        certified += recs[1..]
            .iter()
            .filter_map(|r| r.extras.iter().find(|(k, _)| k == "certified"))
            .map(|(_, v)| *v)
            .sum::<f64>();
    }
    println!("{tally:?}, {certified} certified steps");
    assert_eq!((tally.panics, tally.errors), (0, 0), "{tally:?}");
    assert!(tally.runs >= 300, "{tally:?}");
    assert!(certified >= 300.0, "{certified} certified steps");
}
