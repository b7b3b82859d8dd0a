//! The plain-`f64` cross-entropy path (`ce_plain`): its a-priori rounding-error terms are
//! needed (dropping them is caught on cases whose exact value is known) and sufficient
//! (with them, the exact value is always inside), and its bounds stay close to the
//! outward-rounded interval rule's (tests/fast.rs compares them end to end).
//!
//! **Cases with a known exact answer.** Softmax cross-entropy is invariant under adding
//! the same number to every logit. With the same first- and second-order coefficient on
//! every logit (`c1_j = M`, `qm_j = Q`, `qr = e = 0`), `φ(α) = CE(c0)` for every `α`, so
//! the exact degree-1 and degree-2 coefficients are 0 while the computed ones are sums
//! `Σ ĉ_j M` that cancel only up to rounding. The reference interval for `CE(c0)` is the
//! interval rule's degree-0 interval (outward rounded, so it contains the exact value);
//! with equal logits and one-hot targets the exact value is `ln K`. A check fails only
//! when the enclosure at some `α` is *disjoint* from the reference, which proves the
//! exact value is outside: a failure is never a false alarm. The driver's error term is
//! switched off (knob), since these checks are about the exact value and that term would
//! otherwise hide the loss's own rounding.

use nalgebra::DMatrix;
use nets::LossKind;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::ce_plain::{PLAIN_SOUND, PlainKnobs, Term, plain_samples, set_plain_knobs};
use super::super::elementwise::Acc;
use super::super::fp::{Iv, Knobs, knobs, set_knobs};
use super::super::loss::{data_term, ln_iv};
use super::super::model::Model;

/// Which coefficient a family of cases exercises.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    /// Equal logits, zero coefficients: `CE = ln K` exactly (degree 0).
    Degree0,
    /// `c1_j = M` on every logit (degree 1).
    Degree1,
    /// `qm_j = Q` on every logit (degree 2).
    Degree2,
}

struct ShiftCase {
    z: Model,
    y: DMatrix<f64>,
    amax: f64,
}

fn shift_case(fam: Family, seed: u64) -> ShiftCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = rng.random_range(2..=10usize);
    let n = rng.random_range(1..=4usize);
    let big = |rng: &mut ChaCha8Rng| {
        let s = if rng.random() { 1.0 } else { -1.0 };
        s * 10f64.powf(rng.random_range(2.0..6.0))
    };
    let a = rng.random_range(-1e4..1e4);
    let c0 = DMatrix::from_fn(k, n, |_, _| match fam {
        Family::Degree0 => a,
        _ => rng.random_range(-20.0..20.0),
    });
    let m = big(&mut rng);
    let c1 = DMatrix::from_element(k, n, if fam == Family::Degree1 { m } else { 0.0 });
    let qm = DMatrix::from_element(k, n, if fam == Family::Degree2 { m } else { 0.0 });
    let dense = fam != Family::Degree0 && rng.random_range(0..3) == 0;
    let mut y = DMatrix::zeros(k, n);
    for col in 0..n {
        if dense {
            for j in 0..k {
                y[(j, col)] = rng.random_range(-1.0..2.0);
            }
        } else {
            y[(rng.random_range(0..k), col)] = 1.0;
        }
    }
    ShiftCase {
        z: Model {
            k: 1,
            c0,
            c1: vec![c1],
            qm: vec![qm],
            qr: vec![DMatrix::zeros(k, n)],
            e: DMatrix::zeros(k, n),
            constant: false,
        },
        y,
        amax: 10f64.powf(rng.random_range(-1.0..2.0)),
    }
}

/// The data term with the given plain-path knobs (`general`: the `Vec`-based interval
/// rule instead of the `k = 1` paths). Restores the default knobs.
fn run(c: &ShiftCase, general: bool, plain: PlainKnobs) -> Acc {
    run_model(&c.z, &c.y, c.amax, general, plain)
}

/// [`run`] on a model.
fn run_model(z: &Model, y: &DMatrix<f64>, amax: f64, general: bool, plain: PlainKnobs) -> Acc {
    let old = knobs();
    set_knobs(Knobs {
        general_only: general,
        ..old
    });
    set_plain_knobs(plain);
    let out = data_term(
        LossKind::SoftmaxCrossEntropy,
        z,
        y,
        &[amax],
        f64::EPSILON / 2.0,
    );
    set_knobs(old);
    set_plain_knobs(PLAIN_SOUND);
    out.acc
}

/// The enclosure's set at `α`: `[c0] + [c1] α + [q] α² ± e`, outward rounded.
fn at(acc: &Acc, alpha: f64) -> Iv {
    let a = Iv::point(alpha);
    acc.c0
        .add(acc.c1[0].mul(a))
        .add(acc.q[0].mul(a.mul(a)))
        .add(Iv::new(-acc.e, acc.e))
}

fn disjoint(a: Iv, b: Iv) -> bool {
    a.hi < b.lo || b.hi < a.lo
}

/// Number of cases of `fam` (out of `cases`) in which the plain path's enclosure misses
/// the exact value at `α ∈ {0, ᾱ/3, ᾱ}`, with the a-priori terms scaled by `apriori`;
/// and the largest ratio of the observed error of the exercised coefficient (exactly 0
/// for degrees 1 and 2, `n ln K` for degree 0) to its interval's half-width.
fn misses(fam: Family, cases: u64, apriori: f64) -> (usize, f64) {
    let knob = PlainKnobs {
        apriori,
        driver: false,
        plain: true,
        drop: None,
    };
    let mut count = 0;
    let mut ratio = 0.0f64;
    for seed in 0..cases {
        let c = shift_case(fam, seed);
        let k = c.z.c0.nrows();
        let n = c.z.c0.ncols() as f64;
        let truth = match fam {
            // n samples, each ln K.
            Family::Degree0 => ln_iv(Iv::point(k as f64)).mul(Iv::point(n)),
            _ => run(&c, true, knob).c0,
        };
        let before = plain_samples();
        let fast = run(&c, false, knob);
        assert_eq!(
            plain_samples() - before,
            c.z.c0.ncols(),
            "seed {seed}: interval path taken"
        );
        // (Degree 2's interval also holds the remainder `σ [0, U]`, so no ratio there.)
        let coef = match fam {
            Family::Degree0 => Some((fast.c0, 0.5 * truth.lo + 0.5 * truth.hi)),
            Family::Degree1 => Some((fast.c1[0], 0.0)),
            Family::Degree2 => None,
        };
        if let Some((iv, exact)) = coef {
            let (m, r) = iv.to_mid_rad();
            ratio = ratio.max((m - exact).abs() / r);
        }
        if [0.0, c.amax / 3.0, c.amax]
            .iter()
            .any(|&a| disjoint(at(&fast, a), truth))
        {
            count += 1;
        }
    }
    (count, ratio)
}

/// With its a-priori terms the plain path contains the exact value in every case; with
/// them dropped it misses it, in each of degree 0, 1 and 2 separately.
#[test]
fn dropped_apriori_terms_are_caught() {
    for fam in [Family::Degree0, Family::Degree1, Family::Degree2] {
        let (sound, ratio) = misses(fam, 300, 1.0);
        assert_eq!(sound, 0, "{fam:?}: sound rule misses");
        let (dropped, _) = misses(fam, 300, 0.0);
        let ratio = if fam == Family::Degree2 {
            "n/a".to_string()
        } else {
            format!("{ratio:.3}")
        };
        println!(
            "{fam:?}: a-priori terms dropped: {dropped}/300 cases miss the exact value; \
             largest observed error / bound with them: {ratio}"
        );
        assert!(
            dropped >= 30,
            "{fam:?}: dropping the a-priori terms caught only {dropped}/300"
        );
    }
}

/// The model `c0 + c1 α + [qm ± qr] α² ± e` with `k = 1` from its five coefficient
/// matrices.
fn model(c0: DMatrix<f64>, c1: DMatrix<f64>, qr: DMatrix<f64>, e: DMatrix<f64>) -> Model {
    let (k, n) = c0.shape();
    Model {
        k: 1,
        c0,
        c1: vec![c1],
        qm: vec![DMatrix::zeros(k, n)],
        qr: vec![qr],
        e,
        constant: false,
    }
}

/// A rigorous interval around the exact `Σ_n CE(z_n, y_n)` at the point `z`: the interval
/// rule's degree-0 interval of the constant model `z` (outward rounded, driver's term off).
fn truth_at(z: &DMatrix<f64>, y: &DMatrix<f64>) -> Iv {
    let (k, n) = z.shape();
    let zero = DMatrix::zeros(k, n);
    let m = model(z.clone(), zero.clone(), zero.clone(), zero);
    let knob = PlainKnobs {
        driver: false,
        ..PLAIN_SOUND
    };
    run_model(&m, y, 1.0, true, knob).c0
}

/// Cases in which exactly one radius term of the plain path is needed, with a point
/// `z(α)` of the model's set whose exact loss is bracketed by [`truth_at`]:
/// - `Rq`: `qr_j = r` only; `z_j = c0_j + s_j r α²` with `s_j` the sign of the
///   coefficient `p_j - y_j`, so `CE(z) ≈ CE(c0) + r α² Σ |p_j - y_j|`, first order in `r`,
///   while everything else in the enclosure's degree 2 is `O(r²)`;
/// - `Re`: `e_j = r` only; `z_j = c0_j + s_j r` (any `α`), the same argument in degree 0;
/// - `Remainder`: distinct `c1_j` only; `z = c0 + c1 α` is the model itself and
///   `CE(z(α))` lies above its tangent by `½ α² Var_p(c1) > 0`, which only the remainder
///   carries.
///
/// Returns the number of the `cases` in which the enclosure misses the bracket at
/// `α ∈ {0, ᾱ/2, ᾱ}` (`ᾱ = 1`) when `term` is dropped (`drop`) or kept.
fn radius_misses(term: Term, cases: u64, drop: bool) -> usize {
    let knob = PlainKnobs {
        driver: false,
        drop: if drop { Some(term) } else { None },
        ..PLAIN_SOUND
    };
    let r = 1e-3;
    let mut count = 0;
    for seed in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let k = rng.random_range(2..=10usize);
        let n = rng.random_range(1..=3usize);
        let c0 = DMatrix::from_fn(k, n, |_, _| rng.random_range(-3.0..3.0));
        let mut y = DMatrix::zeros(k, n);
        for col in 0..n {
            y[(rng.random_range(0..k), col)] = 1.0;
        }
        let zero = DMatrix::zeros(k, n);
        let full = DMatrix::from_element(k, n, r);
        let c1 = DMatrix::from_fn(k, n, |_, _| rng.random_range(-1.0..1.0));
        let m = match term {
            Term::Rq => model(c0.clone(), zero.clone(), full, zero.clone()),
            Term::Re => model(c0.clone(), zero.clone(), zero.clone(), full),
            Term::Remainder => model(c0.clone(), c1.clone(), zero.clone(), zero.clone()),
        };
        // s_j = sign(p_j - y_j) at c0 (plain f64 is enough to pick a sign).
        let s = DMatrix::from_fn(k, n, |j, col| {
            let mx = (0..k).map(|i| c0[(i, col)]).fold(f64::MIN, f64::max);
            let sum: f64 = (0..k).map(|i| (c0[(i, col)] - mx).exp()).sum();
            let p = (c0[(j, col)] - mx).exp() / sum;
            if p >= y[(j, col)] { 1.0 } else { -1.0 }
        });
        let before = plain_samples();
        let fast = run_model(&m, &y, 1.0, false, knob);
        assert_eq!(
            plain_samples() - before,
            n,
            "seed {seed}: interval path taken"
        );
        let missed = [0.0, 0.5, 1.0].iter().any(|&a: &f64| {
            let z = match term {
                Term::Rq => &c0 + s.scale(r * a * a),
                Term::Re => &c0 + s.scale(r),
                Term::Remainder => &c0 + c1.scale(a),
            };
            disjoint(at(&fast, a), truth_at(&z, &y))
        });
        count += usize::from(missed);
    }
    count
}

/// Each of the radius terms `Σ (|ĉ_j| + w_j) qr_j`, `Σ (|ĉ_j| + w_j) e_j` and the remainder
/// is needed: dropping it alone lets the enclosure miss the exact loss of a point of the
/// model's set, while with all terms no case misses.
#[test]
fn dropped_radius_terms_are_caught() {
    for term in [Term::Rq, Term::Re, Term::Remainder] {
        let sound = radius_misses(term, 100, false);
        assert_eq!(sound, 0, "{term:?}: the sound rule misses");
        let dropped = radius_misses(term, 100, true);
        println!("{term:?} dropped: {dropped}/100 cases miss the exact value");
        assert!(
            dropped >= 80,
            "{term:?}: dropping it caught only {dropped}/100"
        );
    }
}

/// Samples outside the guard take the interval path (counted) and stay sound: a logit
/// beyond `2⁶⁴` in one sample (the others stay plain), `K = 1030 > 1024` logits, and
/// `ᾱ = 2³³ > 2³²`. The interval path is the general rule's, so a call whose every sample
/// fails the guard equals it bit for bit; and on shift-invariant cases (`c1_j = M`, exact
/// value `CE(c0)` for every `α`) the enclosure never misses the exact value.
#[test]
fn guard_failures_take_the_interval_path_soundly() {
    let knob = PlainKnobs {
        driver: false,
        ..PLAIN_SOUND
    };
    let bits = |a: &Acc| {
        [
            a.c0.lo, a.c0.hi, a.c1[0].lo, a.c1[0].hi, a.q[0].lo, a.q[0].hi, a.e,
        ]
        .map(f64::to_bits)
    };
    for seed in 0..60u64 {
        let mut c = shift_case(Family::Degree1, seed);
        let (k, n) = c.z.c0.shape();
        // Which guard this seed breaks.
        let expect_plain = match seed % 3 {
            0 => {
                c.z.c0[(seed as usize % k, 0)] = 2f64.powi(70);
                n - 1
            }
            1 => {
                let m = c.z.c1[0][(0, 0)];
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                c.z.c0 = DMatrix::from_fn(1030, n, |_, _| rng.random_range(-20.0..20.0));
                c.z.c1[0] = DMatrix::from_element(1030, n, m);
                for d in [&mut c.z.qm[0], &mut c.z.qr[0], &mut c.z.e] {
                    *d = DMatrix::zeros(1030, n);
                }
                c.y = DMatrix::zeros(1030, n);
                for col in 0..n {
                    c.y[(rng.random_range(0..1030), col)] = 1.0;
                }
                0
            }
            _ => {
                c.amax = 2f64.powi(33);
                0
            }
        };
        let before = plain_samples();
        let fast = run(&c, false, knob);
        assert_eq!(
            plain_samples() - before,
            expect_plain,
            "seed {seed}: plain samples"
        );
        if expect_plain == 0 {
            let general = run(&c, true, knob);
            assert_eq!(
                bits(&fast),
                bits(&general),
                "seed {seed}: not the interval path"
            );
        }
        let truth = run(&c, true, knob).c0;
        for a in [0.0, c.amax / 3.0, c.amax] {
            assert!(
                !disjoint(at(&fast, a), truth),
                "seed {seed}: misses the exact value at α = {a}"
            );
        }
    }
}
