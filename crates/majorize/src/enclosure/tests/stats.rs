//! Non-vacuity (a certified decrease along the negative gradient) and printed
//! statistics of the bounds (ignored tests).

use autodiff::{Real, Tape};
use nalgebra::DVector;
use nets::{Activation, LossKind};

use super::super::*;
use super::{ACTS, Case, random_case};
use crate::Surrogate;

/// Direction `-grad F` (from the tape), as a one-direction case.
pub(super) fn descent_case<T: Real>(seed: u64, act: Activation, kind: LossKind) -> Case<T> {
    let mut c = random_case::<T>(seed, Some(act), Some(kind));
    let mut grad = vec![T::zero(); c.net.num_params()];
    let mut tape = Tape::new();
    nets::loss_and_grad(&c.net, &c.loss, &c.x, &c.y, &mut tape, &mut grad).unwrap();
    c.dirs = vec![DVector::from_iterator(grad.len(), grad.iter().map(|g| -*g))];
    c.amax = vec![T::one()];
    c
}

/// The bound is not vacuous: along `-grad F`, some trust region certifies a decrease
/// (`q(alpha*) < F(x)`), and then the true objective does decrease, in f64 and f32.
#[test]
fn certified_decrease_along_negative_gradient() {
    let mut certified = 0;
    let mut total = 0;
    for (ai, act) in ACTS.iter().enumerate() {
        for kind in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ] {
            for s in 0..4u64 {
                let seed = 77 + 10 * ai as u64 + s;
                for f32_case in [false, true] {
                    total += 1;
                    let ok = if f32_case {
                        certify::<f32>(seed, *act, kind)
                    } else {
                        certify::<f64>(seed, *act, kind)
                    };
                    certified += usize::from(ok);
                }
            }
        }
    }
    // Cases where the gradient vanishes to rounding level cannot be certified (f32 mostly);
    // all others must be.
    assert!(
        certified * 10 >= total * 9,
        "only {certified}/{total} cases certified a decrease"
    );
}

fn certify<T: Real>(seed: u64, act: Activation, kind: LossKind) -> bool {
    let mut c = descent_case::<T>(seed, act, kind);
    let gn: f64 = c.dirs[0].iter().map(|v| v.to_f64() * v.to_f64()).sum();
    if gn == 0.0 {
        return true;
    }
    for j in 0..14 {
        c.amax = vec![T::of(10f64.powi(-j) / gn.sqrt().max(1e-300))];
        let Ok(enc) = enclose(&c.request()) else {
            continue;
        };
        let m = enc
            .surrogate()
            .minimize(&crate::InnerSolve::default())
            .unwrap();
        let a = m.point[0];
        if a > T::zero() {
            let ub = enc.upper_bound(&[a]).unwrap();
            assert!(ub < enc.value);
            let (f, d) = c.objective_at(&[a]);
            assert!(f <= ub.to_f64() && d <= ub.to_f64());
            assert!(f < enc.value.to_f64(), "certified step did not decrease");
            return true;
        }
    }
    false
}

/// How informative the bounds are on the property-test distribution (prints; run with
/// `--ignored --nocapture`): fraction of cases with a finite bound, and the median of
/// `(ub - lb) / |phi(0)|` at the far corner.
#[test]
#[ignore]
fn bound_statistics() {
    let mut finite = 0;
    let mut widths = Vec::new();
    let n = 2000;
    for seed in 0..n {
        let c = random_case::<f64>(seed, None, None);
        let e = enclose(&c.request()).unwrap();
        let a = c.amax.clone();
        let (ub, lb) = (e.upper_bound(&a).unwrap(), e.lower_bound(&a).unwrap());
        if ub.is_finite() {
            finite += 1;
            widths.push((ub - lb) / e.value.abs().max(1e-12));
        }
    }
    widths.sort_by(f64::total_cmp);
    let q = |p: f64| widths[((widths.len() - 1) as f64 * p) as usize];
    println!(
        "finite {finite}/{n}; relative width at the far corner: p10 {:.2e} median {:.2e} p90 {:.2e}",
        q(0.1),
        q(0.5),
        q(0.9)
    );
}

/// Prints `gradient`, `quad_upper`, `quad_lower` and `slack` of fixed cases (run with
/// `--ignored --nocapture`): used to compare bounds before and after a performance change
/// (they may move only by rounding-level amounts or get tighter).
#[test]
#[ignore]
fn print_fixed_bounds() {
    for seed in [3u64, 11, 17, 29, 42, 57, 101, 202] {
        for act in ACTS {
            for kind in [
                LossKind::SoftmaxCrossEntropy,
                LossKind::Mse,
                LossKind::Logistic,
            ] {
                let c = random_case::<f64>(seed, Some(act), Some(kind));
                let e = enclose(&c.request()).unwrap();
                println!(
                    "seed {seed} {act:?} {kind:?} k={} g={:?} qhi={:?} qlo={:?} slack={:e}",
                    e.dim(),
                    e.gradient,
                    e.quad_upper.as_slice(),
                    e.quad_lower.as_slice(),
                    e.slack
                );
                let c = random_case::<f32>(seed, Some(act), Some(kind));
                let e = enclose(&c.request()).unwrap();
                println!(
                    "f32 seed {seed} {act:?} {kind:?} k={} g={:?} qhi={:?} qlo={:?} slack={:e}",
                    e.dim(),
                    e.gradient,
                    e.quad_upper.as_slice(),
                    e.quad_lower.as_slice(),
                    e.slack
                );
            }
        }
    }
}
