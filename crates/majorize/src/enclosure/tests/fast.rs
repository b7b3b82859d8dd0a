//! The `k = 1` fast paths against the general rules (the `general_only` knob): the
//! elementwise step of `scalar1` must give the general rule's bounds bit for bit, on
//! adversarial entries and end to end on random networks (where the soundness property
//! tests also run every `k = 1` case through the fast paths). The cross-entropy's plain
//! path (`ce_plain`) is not bit-identical; it is held within a stated tolerance of the
//! interval rule (`close_enclosure`) and its own rounding terms are mutation-tested in
//! tests/ce_plain.rs.

use nalgebra::DMatrix;
use nets::LossKind;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::ce_plain::pairwise_samples;
use super::super::elementwise::activation;
use super::super::fp::{Knobs, knobs, set_knobs};
use super::super::model::Model;
use super::super::workspace::EnclosureWorkspace;
use super::super::*;
use super::{ACTS, random_case, violations};

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

/// A value from a mix of regimes: zero, signed tiny, moderate, huge, and (if `special`)
/// NaN and infinities.
fn pick(rng: &mut ChaCha8Rng, special: bool) -> f64 {
    let s = if rng.random() { 1.0 } else { -1.0 };
    match rng.random_range(0..if special { 9 } else { 7 }) {
        0 => 0.0,
        1 => s * 1e-300 * rng.random::<f64>(),
        2 => s * 1e-9 * rng.random::<f64>(),
        3 | 4 => s * rng.random::<f64>(),
        5 => s * 30.0 * rng.random::<f64>(),
        6 => s * 1e200,
        7 => f64::NAN,
        _ => s * f64::INFINITY,
    }
}

fn random_model(rng: &mut ChaCha8Rng, n: usize, special: bool) -> Model {
    let mut m = |nonneg: bool| {
        DMatrix::from_fn(n, 1, |_, _| {
            let v = pick(rng, special);
            if nonneg { v.abs() } else { v }
        })
    };
    let c0 = m(false);
    let c1 = m(false);
    let qm = m(false);
    let qr = m(true);
    let mut e = m(true);
    // Near-kink entries: |c0| <= e.
    for i in (0..n).step_by(5) {
        e[i] = e[i].max(c0[i].abs() * 1.5);
    }
    Model {
        k: 1,
        c0,
        c1: vec![c1],
        qm: vec![qm],
        qr: vec![qr],
        e,
        constant: false,
    }
}

fn same_bits(a: &DMatrix<f64>, b: &DMatrix<f64>) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn same_model(a: &Model, b: &Model) -> bool {
    same_bits(&a.c0, &b.c0)
        && same_bits(&a.c1[0], &b.c1[0])
        && same_bits(&a.qm[0], &b.qm[0])
        && same_bits(&a.qr[0], &b.qr[0])
        && same_bits(&a.e, &b.e)
}

/// Every activation's `k = 1` step equals the general rule's, bit for bit, on entries at
/// and near kinks, with zero and huge radii, NaN and infinities, f32 and f64 roundoffs.
/// Every tenth model is longer than several of ReLU's blocks (`RELU_BLOCK = 256`) and
/// ends in a partial one.
#[test]
fn scalar1_matches_general_rule() {
    let mut ws = EnclosureWorkspace::new();
    for seed in 0..300u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let special = seed % 3 == 0;
        let n = if seed % 10 == 0 {
            600 + seed as usize
        } else {
            64
        };
        let z = random_model(&mut rng, n, special);
        let amax = [10f64.powf(rng.random_range(-6.0..1.0))];
        let u_t = if seed % 2 == 0 {
            f64::EPSILON / 2.0
        } else {
            f64::from(f32::EPSILON) / 2.0
        };
        for act in ACTS {
            let fast = with_general(false, || activation(act, &z, &amax, u_t, &mut ws));
            let general = with_general(true, || activation(act, &z, &amax, u_t, &mut ws));
            assert!(
                same_model(&fast, &general),
                "seed {seed}, {act:?}: fast {fast:?}\ngeneral {general:?}"
            );
            // The in-place `k = 1` step (blocks copied to the stack) gives the same bits.
            let mut inplace = z.clone();
            with_general(false, || {
                super::super::elementwise::activation_in_place(
                    act,
                    &mut inplace,
                    &amax,
                    u_t,
                    &mut ws,
                )
            });
            assert!(
                same_model(&fast, &inplace),
                "seed {seed}, {act:?}: in place"
            );
        }
    }
}

/// The step on a model that must be kept (the constant input model, when a network
/// starts with an activation): `activation` leaves its input as it was and returns the
/// in-place step's result on a copy, marked non-constant (except for the identity, a
/// plain copy). The in-place step on a non-constant model gives the same bits.
#[test]
fn activation_on_a_kept_model_copies() {
    let mut ws = EnclosureWorkspace::new();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let c0 = DMatrix::from_fn(3, 200, |_, _| pick(&mut rng, false));
    let zero = DMatrix::zeros(3, 200);
    let input = Model {
        k: 1,
        c0,
        c1: vec![zero.clone()],
        qm: vec![zero.clone()],
        qr: vec![zero.clone()],
        e: zero,
        constant: true,
    };
    let before = input.clone();
    for act in ACTS {
        let out = activation(act, &input, &[0.01], f64::EPSILON / 2.0, &mut ws);
        assert!(
            same_model(&input, &before) && input.constant,
            "{act:?} changed its input"
        );
        assert_eq!(out.constant, act == nets::Activation::Identity, "{act:?}");
        let mut again = input.clone();
        again.constant = false;
        super::super::elementwise::activation_in_place(
            act,
            &mut again,
            &[0.01],
            f64::EPSILON / 2.0,
            &mut ws,
        );
        assert!(same_model(&out, &again), "{act:?}");
        if act == nets::Activation::Relu {
            // Constant entries: active ones copied, inactive ones exactly 0, no kinks.
            for (o, x) in out.c0.iter().zip(input.c0.iter()) {
                assert_eq!(o.to_bits(), if *x > 0.0 { *x } else { 0.0 }.to_bits());
            }
        }
    }
}

/// ReLU in place on a model with kept-zero degree-2 buffers (`relu1`, the first dense
/// layer's output) gives `activation`'s bits, writes the degree-2 buffers only at the
/// entries it lists, and declines (model unchanged) where it does not apply.
#[test]
fn relu_zero_q_matches_the_general_step() {
    use super::super::relu1::relu_zero_q_in_place;
    let mut ws = EnclosureWorkspace::new();
    let mut kinks = vec![7usize];
    for seed in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let n = if seed % 10 == 0 { 700 } else { 64 };
        let mut z = random_model(&mut rng, n, seed % 3 == 0);
        z.qm[0].fill(0.0);
        z.qr[0].fill(0.0);
        // Entries exactly at the kink and on the classification's edges.
        for i in (0..n).step_by(7) {
            z.c0[i] = 0.0;
        }
        let amax = [10f64.powf(rng.random_range(-6.0..1.0))];
        let u_t = if seed % 2 == 0 {
            f64::EPSILON / 2.0
        } else {
            f64::from(f32::EPSILON) / 2.0
        };
        let want = activation(nets::Activation::Relu, &z, &amax, u_t, &mut ws);
        let mut got = z.clone();
        assert!(relu_zero_q_in_place(
            nets::Activation::Relu,
            &mut got,
            &amax,
            u_t,
            &mut kinks
        ));
        assert!(same_model(&want, &got), "seed {seed}");
        // Every code generation (baseline, AVX2, AVX-512F as available) alike.
        let variants = super::super::relu1::all_variants(&z, amax[0], u_t);
        assert!(!variants.is_empty());
        for (i, (m, k)) in variants.iter().enumerate() {
            assert!(
                same_model(&want, m) && *k == kinks,
                "seed {seed}, variant {i}"
            );
        }
        assert!(kinks.windows(2).all(|w| w[0] < w[1]), "seed {seed}");
        let mut cleared = got.clone();
        for &i in &kinks {
            cleared.qm[0][i] = 0.0;
            cleared.qr[0][i] = 0.0;
        }
        assert!(
            cleared.qm[0]
                .iter()
                .chain(cleared.qr[0].iter())
                .all(|x| x.to_bits() == 0),
            "seed {seed}: degree-2 entries written outside the list"
        );
        // Some entries are kinks with a nonzero degree-2 bound (the list is not empty
        // for nothing): the entries set to c0 = 0 above with a positive radius or slope.
        if seed % 3 != 0 {
            assert!(!kinks.is_empty(), "seed {seed}");
        }
    }
    // Declines: another activation, an infinite ᾱ².
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut z = random_model(&mut rng, 64, false);
    z.qm[0].fill(0.0);
    z.qr[0].fill(0.0);
    let before = z.clone();
    for (act, a) in [
        (nets::Activation::Tanh, 0.1),
        (nets::Activation::LeakyRelu { slope: 0.1 }, 0.1),
        (nets::Activation::Relu, 1e200),
    ] {
        assert!(!relu_zero_q_in_place(
            act,
            &mut z,
            &[a],
            f64::EPSILON / 2.0,
            &mut kinks
        ));
        assert!(same_model(&z, &before) && kinks.is_empty(), "{act:?} {a}");
    }
}

/// `Model::relu_classes` for `k > 1` (the general ReLU path's classes) against its
/// per-entry definition, bit for bit in the spread: models of 2 and 3 directions of 500+
/// entries, with kinks, NaN and infinities.
#[test]
fn relu_classes_match_the_per_entry_definition() {
    use super::super::fp::Inflate;
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = 2 + (seed % 2) as usize;
        let n = 500 + seed as usize * 7;
        let special = seed % 3 == 0;
        let mut m = |nonneg: bool| {
            DMatrix::from_fn(n, 1, |_, _| {
                let v = pick(&mut rng, special);
                if nonneg { v.abs() } else { v }
            })
        };
        let z = Model {
            k,
            c0: m(false),
            c1: (0..k).map(|_| m(false)).collect(),
            qm: (0..k * k).map(|_| m(false)).collect(),
            qr: (0..k * k).map(|_| m(true)).collect(),
            e: m(true),
            constant: false,
        };
        let amax: Vec<f64> = (0..k).map(|i| 10f64.powf(-(i as f64) - 1.0)).collect();
        let mut class = Vec::new();
        z.relu_classes(&amax, &mut class, &mut Vec::new());
        let infl = Inflate::new(2 * (k + k * k) + 2);
        for idx in 0..n {
            let mut s = z.e[idx];
            for i in 0..k {
                s += z.c1[i][idx].abs() * amax[i];
            }
            for ij in 0..k * k {
                s += (z.qm[ij][idx].abs() + z.qr[ij][idx]) * (amax[ij / k] * amax[ij % k]);
            }
            let sp = infl.apply(s);
            let c = z.c0[idx];
            let want = if c - sp > 0.0 {
                1
            } else if c + sp < 0.0 {
                0
            } else {
                2
            };
            assert_eq!(class[idx], want, "seed {seed}, entry {idx}");
        }
    }
}

fn same_enclosure<T: autodiff::Real>(a: &QuadraticEnclosure<T>, b: &QuadraticEnclosure<T>) -> bool {
    let bits = |x: T| x.to_f64().to_bits();
    bits(a.value) == bits(b.value)
        && bits(a.slack) == bits(b.slack)
        && a.gradient
            .iter()
            .zip(&b.gradient)
            .all(|(x, y)| bits(*x) == bits(*y))
        && a.quad_lower
            .iter()
            .zip(b.quad_lower.iter())
            .all(|(x, y)| bits(*x) == bits(*y))
        && a.quad_upper
            .iter()
            .zip(b.quad_upper.iter())
            .all(|(x, y)| bits(*x) == bits(*y))
}

/// The `k = 1` cross-entropy enclosure (plain path) against the interval rule's: the same
/// value; `Q_hi` within `1e-9` (f64; `1e-6` in f32, a few ulps of the rounding to `T`)
/// of the interval rule's `|Q_lo| + |Q_hi|` of it, above and below (plus `1e-3` of the
/// slacks over `ᾱ²`, for Q of rounding size); the gradients within the same
/// relative tolerance plus both slacks over `ᾱ` (their rounding radii are in the slack);
/// the slack at most twice the interval rule's plus `1e-12` of the value.
/// Returns what failed.
fn close_enclosure<T: autodiff::Real>(
    f: &QuadraticEnclosure<T>,
    g: &QuadraticEnclosure<T>,
    pairwise: bool,
) -> Option<String> {
    let tol = if T::dtype_name() == "f32" { 1e-6 } else { 1e-9 };
    let v = |x: T| x.to_f64();
    if v(f.value).to_bits() != v(g.value).to_bits() {
        return Some("value differs".into());
    }
    let (qf, qg, lg) = (
        v(f.quad_upper[(0, 0)]),
        v(g.quad_upper[(0, 0)]),
        v(g.quad_lower[(0, 0)]),
    );
    let scale = qg.abs() + lg.abs();
    // The plain cross-entropy adds its underflow allowance Θ = 2^-800 to every output
    // term of every sample (`ce_plain` module doc), which the interval rule does not: where
    // the true Q is of subnormal size the fast Q_hi can sit a few dozen Θ above the
    // general one (seen: 2.1e-240 against 1.9e-320). 1e-200 absolute covers that and is
    // far below any Q a step could use.
    // Where the Taylor coefficients cancel or Q is of rounding size (a saturated softmax:
    // value 3e-13, Q 1.5e-14, the fast Q_hi seen 8e-18 above the general one; CE = 0
    // exactly, Q_hi 1.088e-15 against 1.067e-15; seeds in proptest-regressions), the two
    // paths' rounding radii are relative to the terms, not to Q. Also allowed, both ways:
    // a difference whose contribution at the box edge, |qf - qg| ᾱ², is at most 1e-2 of
    // the slacks (so invisible in the bound a step uses). 1e-3 was exceeded once (session
    // 7, seed in proptest-regressions: CE = 0 exactly, Q_hi 3.45e-14 against 3.73e-14 with
    // slacks 8.3e-13 and 8.4e-13, a difference of 1.2e-3 of the slacks at the box edge).
    let (sf0, sg0, a0) = (v(f.slack), v(g.slack), v(f.alpha_max[0]));
    let noise = 1e-2 * (sf0 + sg0) / (a0 * a0);
    let q_ok = qf <= qg + tol * scale + 1e-200 + noise;
    if !q_ok && qg.is_finite() {
        return Some(format!("Q_hi {qf:e} vs {qg:e} (scale {scale:e})"));
    }
    // And from below: both paths evaluate the same rule (the same p̄ up to a few ulps, the
    // same remainder polynomial), so a plain Q_hi visibly below the interval rule's would
    // mean a term was lost. Not where a sample of the plain path also took the pairwise p̄
    // (`pairwise`: tiny factors, where the interval rule's product form is loose and the
    // plain path legitimately tighter), nor where Q_hi is not finite on the interval path.
    if !pairwise && qg.is_finite() && qf < qg - tol * scale - 1e-200 - noise {
        return Some(format!("Q_hi {qf:e} below {qg:e} (scale {scale:e})"));
    }
    let (gf, gg) = (v(f.gradient[0]), v(g.gradient[0]));
    let (sf, sg) = (v(f.slack), v(g.slack));
    // The gradients' rounding radii (times ᾱ) are inside the slacks.
    let gtol = tol * gg.abs() + (sf + sg) / v(f.alpha_max[0]);
    let g_ok = (gf - gg).abs() <= gtol;
    if !g_ok && gg.is_finite() {
        return Some(format!("gradient {gf:e} vs {gg:e}"));
    }
    let s_ok = sf <= 2.0 * sg + 1e-12 * v(g.value).abs();
    if !s_ok && sg.is_finite() {
        return Some(format!("slack {sf:e} vs {sg:e}"));
    }
    None
}

fn fast_vs_general<T: autodiff::Real>(
    seed: u64,
    act: usize,
    kind: usize,
) -> Result<(), TestCaseError> {
    let kinds = [
        LossKind::Mse,
        LossKind::SoftmaxCrossEntropy,
        LossKind::Logistic,
    ];
    let mut c = random_case::<T>(seed, Some(ACTS[act]), Some(kinds[kind]));
    c.dirs.truncate(1);
    c.amax.truncate(1);
    let pw = pairwise_samples();
    let fast = with_general(false, || enclose(&c.request()));
    let pairwise = pairwise_samples() > pw;
    let general = with_general(true, || enclose(&c.request()));
    match (fast, general) {
        (Ok(f), Ok(g)) => {
            if kinds[kind] == LossKind::SoftmaxCrossEntropy {
                // The plain cross-entropy path is not bit-identical: its bounds must stay
                // within a small factor of the interval rule's.
                let msg = close_enclosure(&f, &g, pairwise);
                prop_assert!(
                    msg.is_none(),
                    "seed {seed}: {msg:?}\nfast {f:?}\ngeneral {g:?}"
                );
            } else {
                prop_assert!(
                    same_enclosure(&f, &g),
                    "seed {seed}: fast {f:?}\ngeneral {g:?}"
                );
            }
            let (n, worst) = violations(&c, &f, seed, 6);
            prop_assert_eq!(n, 0, "seed {}: {}", seed, worst);
        }
        (Err(f), Err(g)) => prop_assert_eq!(f.to_string(), g.to_string()),
        (f, g) => prop_assert!(false, "seed {seed}: fast {f:?} but general {g:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// End to end, `k = 1`: the fast paths give the general rules' enclosure bit for
    /// bit (every activation, MSE and logistic; cross-entropy within `close_enclosure`'s
    /// tolerance), and it holds at corners and random points.
    #[test]
    fn fast_paths_equal_general_f64(seed in any::<u64>(), act in 0..ACTS.len(), kind in 0..3usize) {
        fast_vs_general::<f64>(seed, act, kind)?;
    }

    /// The same in f32.
    #[test]
    fn fast_paths_equal_general_f32(seed in any::<u64>(), act in 0..ACTS.len(), kind in 0..3usize) {
        fast_vs_general::<f32>(seed, act, kind)?;
    }
}

/// `Iv::mul` as first written: `fmin`/`fmax` (NaN-propagating) over the four endpoint
/// products with `0 · ∞ = 0`, rounded outward.
fn reference_mul(x: super::super::fp::Iv, o: super::super::fp::Iv) -> super::super::fp::Iv {
    use super::super::fp::{Iv, dn, fmax, fmin, up};
    let p = |a: f64, b: f64| if a == 0.0 || b == 0.0 { 0.0 } else { a * b };
    let (a, b, c, d) = (p(x.lo, o.lo), p(x.lo, o.hi), p(x.hi, o.lo), p(x.hi, o.hi));
    Iv::new(
        dn(fmin(fmin(a, b), fmin(c, d))),
        up(fmax(fmax(a, b), fmax(c, d))),
    )
}

/// `Iv::mul` equals its first (branchier) form, `Iv::scale` (two endpoint products) equals `Iv::mul` by a point (four), bit for bit,
/// and `UpOps::apply` equals `up_ops`, on signed zeros, subnormals, infinities and NaN.
#[test]
fn scalar_shortcuts_match_their_definitions() {
    use super::super::fp::{Iv, UpOps, up_ops};
    let xs = [
        0.0,
        -0.0,
        f64::from_bits(1),
        -1e-310,
        0.3,
        -2.5,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let bits = |x: f64| if x.is_nan() { u64::MAX } else { x.to_bits() };
    for &lo in &xs {
        for &hi in &xs {
            for &s in &xs {
                let iv = Iv::new(lo, hi);
                let (a, b) = (iv.scale(s), iv.mul(Iv::point(s)));
                assert_eq!(
                    (bits(a.lo), bits(a.hi)),
                    (bits(b.lo), bits(b.hi)),
                    "{iv:?} * {s}"
                );
                for &t in &xs {
                    let o = Iv::new(s, t);
                    let (m, r) = (iv.mul(o), reference_mul(iv, o));
                    assert_eq!(
                        (bits(m.lo), bits(m.hi)),
                        (bits(r.lo), bits(r.hi)),
                        "{iv:?} * {o:?}"
                    );
                }
            }
        }
        for m in [0usize, 1, 6, 17] {
            let x = lo.abs();
            assert_eq!(bits(UpOps::new(m).apply(x)), bits(up_ops(x, m)), "{x} {m}");
        }
    }
}

/// The `k > 1` shortcuts (session 10: a degree-2 product or degree-1 direction whose
/// operands equal an earlier one's bit for bit is copied; the ReLU on the first layer's
/// output in place) against the plain general path, bit for bit in every output, f32 and
/// f64, on safe-layerwise-shaped cases (`k = L` = 2-4, widths 8-140, 65-300 samples);
/// the shortcuts must actually be taken.
#[test]
fn layerwise_shortcuts_match_the_plain_path() {
    use super::golden::layerwise_case;
    fn bits<T: autodiff::Real>(e: &QuadraticEnclosure<T>) -> Vec<u64> {
        let mut v = vec![e.value.to_f64().to_bits(), e.slack.to_f64().to_bits()];
        v.extend(e.gradient.iter().map(|g| g.to_f64().to_bits()));
        v.extend(e.quad_lower.iter().map(|q| q.to_f64().to_bits()));
        v.extend(e.quad_upper.iter().map(|q| q.to_f64().to_bits()));
        v
    }
    fn check<T: autodiff::Real>(seed: u64) {
        let case = layerwise_case::<T>(seed);
        let mut ws = EnclosureWorkspace::new();
        let before = super::super::model::shared_count();
        let fast = enclose_with(&case.request(), &mut ws).map(|e| bits(&e));
        let shared = super::super::model::shared_count() - before;
        let plain = with_general(true, || {
            enclose_with(&case.request(), &mut EnclosureWorkspace::new()).map(|e| bits(&e))
        });
        match (fast, plain) {
            (Ok(f), Ok(p)) => assert_eq!(f, p, "seed {seed}"),
            (f, p) => assert_eq!(f.is_err(), p.is_err(), "seed {seed}"),
        }
        assert!(shared > 0, "seed {seed}: no product shared");
    }
    for seed in 0..12 {
        check::<f64>(seed);
        check::<f32>(seed);
    }
}

/// The `k > 1` sharing on directions that are not per-layer: a duplicated direction,
/// one equal to another on the first layer only (equal `a1` with nonzero `V_i` there),
/// and a negated one (equal magnitudes, different bits): bit for bit the plain path.
#[test]
fn sharing_with_equal_and_overlapping_directions_matches_the_plain_path() {
    use super::golden::layerwise_case;
    fn check<T: autodiff::Real>(seed: u64, variant: u64) {
        let mut case = layerwise_case::<T>(seed);
        let d0 = case.dirs[0].clone();
        match variant {
            0 => case.dirs[1] = d0,
            1 => case.dirs[1] = &case.dirs[1] + &d0,
            _ => case.dirs[1] = -d0,
        }
        case.amax[1] = case.amax[0];
        let bits = |e: &QuadraticEnclosure<T>| {
            let mut v = vec![e.value.to_f64().to_bits(), e.slack.to_f64().to_bits()];
            v.extend(e.gradient.iter().map(|g| g.to_f64().to_bits()));
            v.extend(
                e.quad_lower
                    .iter()
                    .chain(&e.quad_upper)
                    .map(|q| q.to_f64().to_bits()),
            );
            v
        };
        let fast = enclose_with(&case.request(), &mut EnclosureWorkspace::new()).map(|e| bits(&e));
        let plain = with_general(true, || {
            enclose_with(&case.request(), &mut EnclosureWorkspace::new()).map(|e| bits(&e))
        });
        match (fast, plain) {
            (Ok(f), Ok(p)) => assert_eq!(f, p, "seed {seed} variant {variant}"),
            (f, p) => assert_eq!(f.is_err(), p.is_err(), "seed {seed} variant {variant}"),
        }
    }
    for seed in 0..4 {
        for variant in 0..3 {
            check::<f64>(seed, variant);
            check::<f32>(seed, variant);
        }
    }
}
