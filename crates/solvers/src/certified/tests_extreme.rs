//! The certified-MM solvers (safe-gd, safe-adam, safe-layerwise) on the extreme inputs
//! of block MM's test (`mm::tests_extreme::case`: random nets with two or three hidden
//! layers, inputs scaled from 0 to 1e300, weights from 1e-150 to 1e50, every L2), with
//! ReLU and tanh. These solvers apply a step only when its bound certifies a decrease
//! and have no safeguard behind it, so a rise of the recorded objective would be a
//! violated certificate. Each run must end `Ok` (any status; `failed` only on a named
//! non-finite value) or with a typed error, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use nets::Activation;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::CertifiedConfig;
use crate::mm::tests_extreme::case;
use crate::{Budget, Driver, Status};

#[test]
fn certified_solvers_on_extreme_inputs_never_panic_and_never_rise() {
    let mut rng = ChaCha8Rng::seed_from_u64(180);
    let configs = [
        ("safe-gd", CertifiedConfig::safe_gd()),
        ("safe-adam", CertifiedConfig::safe_adam()),
        ("safe-layerwise", CertifiedConfig::safe_layerwise()),
    ];
    let (mut runs, mut errors, mut panics, mut certified) = (0, 0, 0, 0.0);
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
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
        let out = catch_unwind(AssertUnwindSafe(|| {
            Driver::new(Budget::iterations(4)).run(&mut p, &mut solver)
        }));
        let Ok(out) = out else {
            panics += 1;
            eprintln!("case {c} ({name}, {h:?}): panic");
            continue;
        };
        let Ok(out) = out else {
            errors += 1;
            continue;
        };
        runs += 1;
        let kind = match &out.status {
            Status::BudgetExhausted(_) => "budget".to_string(),
            Status::Converged { .. } => "converged".to_string(),
            Status::Diverged { reason } => {
                assert!(
                    out.trace.records.len() == 1
                        && reason.ends_with("at the initial point (iteration 0, before any step)"),
                    "case {c} ({name}, {h:?}): diverged after a step: {reason}"
                );
                "diverged at the start".to_string()
            }
            Status::Failed { error } => {
                // Only overflowed data or gradients, named (a first-layer output or a
                // direction that is not finite).
                assert!(
                    error.contains("non-finite value"),
                    "case {c} ({name}, {h:?}): failed: {error}"
                );
                format!("failed: {}", error.split(':').next().unwrap_or(""))
            }
            _ => "other".to_string(),
        };
        *statuses.entry(kind).or_default() += 1;
        let recs = &out.trace.records;
        for w in recs.windows(2) {
            assert!(
                w[1].objective <= w[0].objective || !w[0].objective.is_finite(),
                "case {c} ({name}, {h:?}): the objective rose at iteration {}: {} -> {}",
                w[1].iteration,
                w[0].objective,
                w[1].objective
            );
        }
        certified += recs[1..]
            .iter()
            .filter_map(|r| r.extras.iter().find(|(k, _)| k == "certified"))
            .map(|(_, v)| *v)
            .sum::<f64>();
    }
    println!(
        "{runs} runs ({statuses:?}), {errors} typed errors, {panics} panics, {certified} certified steps"
    );
    assert_eq!(panics, 0);
    assert!(runs >= 300, "{runs} runs");
    assert!(certified >= 300.0, "{certified} certified steps");
}
