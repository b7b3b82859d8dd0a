//! Adversarial tests of session 20's lane sums (written by the review `review20`): every
//! output of `sums::band_sums` against the **exact** sums (not another f64 order), with
//! the allowances `bound::ray_bound` charges for them (`sums::linear_upper`,
//! `sums::SumBounds`, the functions the bound calls), on heavy cancellation; and the
//! degenerate shapes.

use super::super::sums::{SampleSums, SumBounds, band_sums, linear_upper};
use super::*;
use crate::enclosure::fp::UpOps;

/// The sign of the exact sum of `xs` (Shewchuk's nonoverlapping partials: the sign of
/// the sum is the sign of the largest, i.e. last nonzero, partial).
fn exact_sign(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in xs {
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    partials
        .iter()
        .rev()
        .find(|p| **p != 0.0)
        .map_or(0.0, |p| p.signum())
}

/// `a b` as two f64 whose sum is exact (no underflow in these tests).
fn two_prod(a: f64, b: f64) -> [f64; 2] {
    let p = a * b;
    [p, a.mul_add(b, -p)]
}

/// A signed value with a random binary exponent in `[-e, e]`.
fn wide(rng: &mut ChaCha8Rng, e: i32) -> f64 {
    let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
    s * (1.0 + rng.random::<f64>()) * 2f64.powi(rng.random_range(-e..=e))
}

/// Each output of `band_sums` lies within the allowance `ray_bound` charges for it of the
/// exact sum, on bands whose terms span 2^±60 and cancel (so the lane sums do round):
/// `|lin - Σ Ĉx| <= γ_{dN+1} U_{2dN}(labs) + dNη`, and `U_{2dN}(labs)`, `U_{2d}(sc)`,
/// `U_d(p1)`, `U_{2d}(q)`, `U_nin(alpha)` bound the exact nonnegative sums.
#[test]
fn lane_sums_within_their_allowances_of_the_exact_sums() {
    let mut rng = ChaCha8Rng::seed_from_u64(2020);
    let (mut rounded, mut cases) = (0usize, 0usize);
    for _ in 0..400 {
        let (d, n, nin) = (
            rng.random_range(1..50usize),
            rng.random_range(1..6usize),
            rng.random_range(1..40usize),
        );
        let c: Vec<f64> = (0..d * n).map(|_| wide(&mut rng, 60)).collect();
        let sl: Vec<f64> = (0..d * n).map(|_| wide(&mut rng, 60)).collect();
        let su: Vec<f64> = sl.iter().map(|x| x + wide(&mut rng, 60).abs()).collect();
        let cm: Vec<f64> = (0..d).map(|_| wide(&mut rng, 60).abs()).collect();
        let a_in: Vec<f64> = (0..nin * n).map(|_| wide(&mut rng, 60)).collect();
        let (mut mt, mut ps) = (vec![0.0; d * n], vec![SampleSums::default(); n]);
        let (lin, labs) = band_sums((&c, &sl, &su), &cm, &a_in, &mut mt, &mut ps);
        let x = |i: usize| if c[i] > 0.0 { su[i] } else { sl[i] };
        let terms: Vec<[f64; 2]> = (0..d * n).map(|i| two_prod(c[i], x(i))).collect();
        let labs_u = UpOps::new(2 * d * n).apply(labs);
        // exact <= the bound's upper bound; and >= the mirrored lower one (the bound
        // takes only the upper, but a symmetric allowance must hold both ways).
        let hi = linear_upper(lin, labs, d * n);
        let lo = -linear_upper(-lin, labs, d * n);
        let flat = || terms.iter().flat_map(|t| *t);
        assert!(
            exact_sign(flat().chain([-hi])) <= 0.0,
            "lin {lin:e} + allowance"
        );
        assert!(
            exact_sign(flat().chain([-lo])) >= 0.0,
            "lin {lin:e} - allowance"
        );
        rounded += usize::from(exact_sign(flat().chain([-lin])) != 0.0);
        let abs_terms = (0..d * n).flat_map(|i| two_prod(c[i].abs(), x(i).abs()));
        assert!(exact_sign(abs_terms.chain([-labs_u])) <= 0.0, "labs");
        let bounds = SumBounds::new(d, nin);
        for (s, p) in ps.iter().enumerate() {
            let m = |j: usize| mt[s * d + j];
            let b = bounds.apply(*p);
            let sc = (0..d).flat_map(|j| two_prod(cm[j], m(j)));
            assert!(exact_sign(sc.chain([-b.sc])) <= 0.0, "sc");
            assert!(exact_sign((0..d).map(m).chain([-b.p1])) <= 0.0, "p1");
            let q = (0..d).flat_map(|j| two_prod(m(j), m(j)));
            assert!(exact_sign(q.chain([-b.q])) <= 0.0, "q");
            let a = a_in[s * nin..(s + 1) * nin].iter().map(|v| v.abs());
            assert!(exact_sign(a.chain([-b.alpha])) <= 0.0, "alpha");
        }
        cases += 1;
    }
    // The lane sums are inexact on most cases (else the allowances were not exercised).
    assert!(
        rounded > cases / 2,
        "{rounded} of {cases} linear sums inexact"
    );
}

/// Degenerate shapes: no hidden width, no samples, no inputs; nothing panics and the
/// outputs are the empty sums.
#[test]
fn lane_sums_on_degenerate_shapes() {
    for (d, n, nin) in [
        (0, 3, 2),
        (0, 3, 0),
        (4, 0, 0),
        (0, 0, 0),
        (9, 2, 0),
        (1, 1, 1),
    ] {
        let v = vec![1.5; d * n];
        let cm = vec![2.0; d];
        let a_in = vec![-0.5; nin * n];
        let (mut mt, mut ps) = (vec![0.0; d * n], vec![SampleSums::default(); n]);
        let (lin, labs) = band_sums((&v, &v, &v), &cm, &a_in, &mut mt, &mut ps);
        let k = (d * n) as f64;
        assert_eq!((lin, labs), (2.25 * k, 2.25 * k), "{d} {n} {nin}");
        for p in &ps {
            assert_eq!(
                *p,
                SampleSums {
                    sc: 3.0 * d as f64,
                    p1: 1.5 * d as f64,
                    q: 2.25 * d as f64,
                    alpha: 0.5 * nin as f64,
                },
                "{d} {n} {nin}"
            );
        }
    }
}
