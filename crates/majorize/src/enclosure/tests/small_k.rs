//! The small-`k` paths (session 11: `elementwise::kn`, `ce_kn`, `k` = 2-4) against the
//! general (any-`k`) rules, bit for bit: entry by entry on random models with values in
//! every regime (zero, tiny, huge, NaN, infinities, exact and near kinks), and end to end
//! on safe-layerwise-shaped networks in f32 and f64. A counter of the entries and samples
//! that went through the small-`k` code keeps the comparison from passing vacuously.

use nalgebra::DMatrix;
use nets::LossKind;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::elementwise::activation_in_place;
use super::super::elementwise::kn::small_k_count;
use super::super::fp::{Knobs, knobs, set_knobs};
use super::super::loss::{DataModel, data_term};
use super::super::model::Model;
use super::super::workspace::EnclosureWorkspace;
use super::super::*;
use super::ACTS;

fn with_general<R>(general: bool, f: impl FnOnce() -> R) -> R {
    let old = knobs();
    set_knobs(Knobs {
        general_only: general,
        ..old
    });
    let r = f();
    set_knobs(old);
    r
}

/// A value from a mix of regimes: `regime` 0 only zero and moderate values (the
/// cross-entropy's remainder terms are then finite and nonzero), 1 adds tiny and huge
/// ones, 2 also NaN and infinities.
fn pick(rng: &mut ChaCha8Rng, regime: usize) -> f64 {
    let s = if rng.random() { 1.0 } else { -1.0 };
    if regime == 0 {
        return match rng.random_range(0..6) {
            0 => 0.0,
            _ => s * 0.3 * rng.random::<f64>(),
        };
    }
    match rng.random_range(0..if regime == 2 { 10 } else { 8 }) {
        0 => 0.0,
        1 => s * 1e-300 * rng.random::<f64>(),
        2 => s * 1e-9 * rng.random::<f64>(),
        3..=5 => s * rng.random::<f64>(),
        6 => s * 30.0 * rng.random::<f64>(),
        7 => s * 1e200,
        8 => f64::NAN,
        _ => s * f64::INFINITY,
    }
}

/// A random `rows x cols` model with `k` directions; every fifth entry near the kink
/// (`|c0| <= e`) and every seventh at the kink (`c0 = 0`).
fn random_model(rng: &mut ChaCha8Rng, k: usize, rows: usize, cols: usize, regime: usize) -> Model {
    let mut m = |nonneg: bool| {
        DMatrix::from_fn(rows, cols, |_, _| {
            let v = pick(rng, regime);
            if nonneg { v.abs() } else { v }
        })
    };
    let mut c0 = m(false);
    let c1 = (0..k).map(|_| m(false)).collect();
    let qm = (0..k * k).map(|_| m(false)).collect();
    let qr = (0..k * k).map(|_| m(true)).collect();
    let mut e = m(true);
    for i in (0..rows * cols).step_by(5) {
        e[i] = e[i].max(c0[i].abs() * 1.5);
    }
    for i in (0..rows * cols).step_by(7) {
        c0[i] = 0.0;
    }
    Model {
        k,
        c0,
        c1,
        qm,
        qr,
        e,
        constant: false,
    }
}

fn bits(x: f64) -> u64 {
    if x.is_nan() { u64::MAX } else { x.to_bits() }
}

fn model_bits(m: &Model) -> Vec<u64> {
    let mut v: Vec<u64> = m.c0.iter().map(|x| bits(*x)).collect();
    for b in m.c1.iter().chain(&m.qm).chain(&m.qr) {
        v.extend(b.iter().map(|x| bits(*x)));
    }
    v.extend(m.e.iter().map(|x| bits(*x)));
    v
}

fn data_bits(d: &DataModel) -> Vec<u64> {
    let a = &d.acc;
    let mut v = vec![bits(a.c0.lo), bits(a.c0.hi), bits(a.e), bits(d.abs_sum)];
    for x in a.c1.iter().chain(&a.q) {
        v.push(bits(x.lo));
        v.push(bits(x.hi));
    }
    v
}

/// Every activation and the cross-entropy, `k` = 2-4, entry level: the small-`k` path
/// gives the general rule's model bit for bit, with and without NaN / infinities.
#[test]
fn small_k_rules_match_the_general_rules_entrywise() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e55_1011);
    let before = small_k_count();
    for round in 0..60 {
        let k = 2 + round % 3;
        let regime = [0, 0, 1, 2][round % 4];
        let (rows, cols) = (rng.random_range(2..12), rng.random_range(1..30));
        let z = random_model(&mut rng, k, rows, cols, regime);
        let amax: Vec<f64> = (0..k)
            .map(|_| [0.0, 1e-3, 0.5, 2.0][rng.random_range(if regime == 0 { 1 } else { 0 }..4)])
            .collect();
        let u_t = if round % 2 == 0 {
            f64::EPSILON / 2.0
        } else {
            f64::from(f32::EPSILON) / 2.0
        };
        for act in ACTS {
            let run = |general: bool| {
                with_general(general, || {
                    let mut m = z.clone();
                    activation_in_place(act, &mut m, &amax, u_t, &mut EnclosureWorkspace::new());
                    model_bits(&m)
                })
            };
            assert_eq!(run(false), run(true), "round {round}, {act:?}, k {k}");
        }
        let y = DMatrix::from_fn(rows, cols, |r, c| {
            if round % 5 == 4 {
                rng.random::<f64>()
            } else {
                f64::from(u8::from((r + c) % rows == 0))
            }
        });
        let run = |general: bool| {
            with_general(general, || {
                data_bits(&data_term(
                    LossKind::SoftmaxCrossEntropy,
                    &z,
                    &y,
                    &amax,
                    u_t,
                ))
            })
        };
        let (fast, general) = (run(false), run(true));
        assert_eq!(fast, general, "round {round}, cross-entropy, k {k}");
        if regime == 0 {
            // Finite, nonzero remainder radius: the comparison reaches the remainder.
            let e = f64::from_bits(fast[2]);
            assert!(e.is_finite() && e > 0.0, "round {round}: radius {e}");
        }
    }
    let taken = small_k_count() - before;
    assert!(taken > 1000, "only {taken} entries took the small-k paths");
}

/// End to end on safe-layerwise-shaped cases (`k = L` = 2-4, ReLU / leaky / tanh, MSE or
/// cross-entropy), f32 and f64: the whole enclosure equals the general path's bit for bit.
#[test]
fn small_k_paths_match_the_general_rules() {
    use super::golden::layerwise_case;
    fn out<T: autodiff::Real>(e: &QuadraticEnclosure<T>) -> Vec<u64> {
        let mut v = vec![e.value.to_f64().to_bits(), e.slack.to_f64().to_bits()];
        v.extend(e.gradient.iter().map(|g| g.to_f64().to_bits()));
        v.extend(e.quad_lower.iter().map(|q| q.to_f64().to_bits()));
        v.extend(e.quad_upper.iter().map(|q| q.to_f64().to_bits()));
        v
    }
    fn check<T: autodiff::Real>(seed: u64) -> usize {
        let case = layerwise_case::<T>(seed);
        let before = small_k_count();
        let fast = enclose_with(&case.request(), &mut EnclosureWorkspace::new()).map(|e| out(&e));
        let taken = small_k_count() - before;
        let plain = with_general(true, || {
            enclose_with(&case.request(), &mut EnclosureWorkspace::new()).map(|e| out(&e))
        });
        match (fast, plain) {
            (Ok(f), Ok(p)) => assert_eq!(f, p, "seed {seed}"),
            (f, p) => assert_eq!(f.is_err(), p.is_err(), "seed {seed}"),
        }
        taken
    }
    let mut taken = 0;
    for seed in 0..16 {
        taken += check::<f64>(seed);
        taken += check::<f32>(seed);
    }
    assert!(taken > 1000, "only {taken} entries took the small-k paths");
}
