//! R3's centred bound of the logits' change (session 19): `|δ_k| <= a (|μ_k| + rad_k)`
//! from the last hidden layer's band as centre and radius, beside `a (|W_m| M)_k`. Never
//! looser than `|W_m| M` alone, much tighter on most cases, and its radius is needed.

use super::checks::with_knobs;
use super::*;
use crate::enclosure::ray::bound::Knobs;

/// Random cross-entropy cases, and the same nets under squared error.
fn both_losses() -> impl Iterator<Item = (u64, RCase)> {
    (0..300u64).flat_map(|s| {
        let c = random_rcase(s, if s % 10 == 0 { 300 } else { 10 });
        [(s, c.clone()), (s, to_mse(c, s))]
    })
}

/// On 600 random bounds the centred curvature and slack are never above those of `|W_m|
/// M` alone, and every value and slope is the same (R3's linear term does not use `R`);
/// the curvature falls on most cases (printed: the median and smallest ratio).
#[test]
fn never_looser_than_the_uncentred_bound() {
    let uncentred = Knobs {
        uncentred_r: true,
        ..Default::default()
    };
    let (mut ratios, mut lower) = (Vec::new(), 0usize);
    for (seed, c) in both_losses() {
        let b = c.bound(None).unwrap();
        let u = with_knobs(uncentred, || c.bound(None).unwrap());
        assert_eq!((b.value, b.slope), (u.value, u.slope), "seed {seed}");
        assert!(b.curvature <= u.curvature, "seed {seed}: {b:?} {u:?}");
        assert!(b.slack <= u.slack, "seed {seed}: {b:?} {u:?}");
        if u.curvature > 0.0 {
            ratios.push(b.curvature / u.curvature);
            lower += usize::from(b.curvature < u.curvature);
        }
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "centred R: curvature lower on {lower} of {} bounds; ratio median {:.3}, smallest {:.2e}",
        ratios.len(),
        ratios[ratios.len() / 2],
        ratios[0]
    );
    assert!(lower * 2 > ratios.len());
}

/// Mutation: the centre `|μ|` without its radius is not a bound of `|δ|/a` once the band
/// has width (a kink crossed); the bound is violated on some random cases.
#[test]
fn the_centre_without_its_radius_is_violated() {
    let knobs = Knobs {
        centred_no_rad: true,
        ..Default::default()
    };
    let mut bad = 0usize;
    for (_, c) in both_losses() {
        let b = with_knobs(knobs, || c.bound(None).unwrap());
        bad += usize::from(c.check(&b, points(&b)).0.is_some());
    }
    println!("centred R without its radius: violated on {bad} of 600 random cases");
    assert!(bad > 0);
}
