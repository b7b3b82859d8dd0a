//! Mutation tests: a loosened rule (halved remainder, rounding switched off) is caught.

use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::fp::{Knobs, set_knobs};
use super::super::*;
use super::{Case, random_case, violations};

/// Mutation test: halving the softplus remainder interval is caught.
#[test]
fn halved_remainder_is_caught() {
    set_knobs(Knobs {
        rounding: true,
        remainder_scale: 0.5,
        scaled: Some("softplus"),
        general_only: false,
    });
    let mut found = 0;
    for seed in 0..200u64 {
        let mut c = random_case::<f64>(seed, Some(Activation::Softplus), Some(LossKind::Mse));
        c.amax.iter_mut().for_each(|a| *a = 0.3);
        let e = enclose(&c.request()).unwrap();
        found += violations(&c, &e, seed, 4).0;
        if found > 0 {
            break;
        }
    }
    set_knobs(Knobs {
        rounding: true,
        remainder_scale: 1.0,
        scaled: None,
        general_only: false,
    });
    assert!(found > 0, "halving the softplus remainder went unnoticed");
}

/// A case built to need rounding: f32, large cancelling inputs, tiny steps, so the
/// driver's rounding changes the objective more than the exact-arithmetic bound allows.
fn cancellation_case(seed: u64) -> Case<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = 16;
    let w = DMatrix::from_fn(1, d, |_, _| 1.0f32 + rng.random::<f32>());
    let net = Sequential::from_layers(vec![
        Box::new(Dense::new(w, DVector::zeros(1)).unwrap()) as Box<dyn Layer<f32>>
    ])
    .unwrap();
    let x = DMatrix::from_fn(
        d,
        4,
        |i, _| if i % 2 == 0 { 1e4 } else { -1e4 } * (1.0 + 1e-3 * rng.random::<f32>()),
    );
    let out = net.predict(&x).unwrap();
    let y = Targets::Dense(out.map(|v| v + 0.5));
    let p = net.num_params();
    let dirs = vec![DVector::from_fn(p, |_, _| {
        1e-6 * (2.0 * rng.random::<f32>() - 1.0)
    })];
    Case {
        net,
        loss: Loss::new(LossKind::Mse, Reduction::Sum),
        x,
        y,
        dirs,
        amax: vec![1.0],
        smooth: true,
    }
}

#[test]
fn rounding_off_is_caught_and_on_is_sound() {
    let mut off = 0;
    for seed in 0..40 {
        let c = cancellation_case(seed);
        set_knobs(Knobs {
            rounding: false,
            remainder_scale: 1.0,
            scaled: None,
            general_only: false,
        });
        let e = enclose(&c.request()).unwrap();
        off += violations(&c, &e, seed, 20).0;
        set_knobs(Knobs {
            rounding: true,
            remainder_scale: 1.0,
            scaled: None,
            general_only: false,
        });
        let e = enclose(&c.request()).unwrap();
        let (n, w) = violations(&c, &e, seed, 20);
        assert_eq!(n, 0, "seed {seed}: {w}");
    }
    assert!(off > 0, "switching rounding off went unnoticed");
}
