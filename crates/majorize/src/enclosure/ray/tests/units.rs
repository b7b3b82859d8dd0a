//! Unit checks of R2's directed rounding: the ReLU band (`relu_band`) against an exact
//! (double-double) evaluation at many points of `[0, ā]`, on random and margin inputs.

use super::super::band::relu_band;
use super::*;

/// `relu(z + a s) - relu(z) - a b` in double-double (the products are exact).
fn gap(z: f64, a: f64, s: f64, b: f64) -> f64 {
    let t = dd_add(dd(z), dd_mul(dd(a), dd(s)));
    let r = if t.0 > 0.0 { t } else { dd(0.0) };
    let f = dd_add(r, dd(-z.max(0.0)));
    let ab = dd_mul(dd(a), dd(b));
    let g = dd_add(f, (-ab.0, -ab.1));
    g.0 + g.1
}

/// For `z`, `lo <= hi`, `ā`: `a sL <= relu(z + a lo) - relu(z)` and `relu(z + a hi) -
/// relu(z) <= a sU` at 0, `ā`, the kinks of both lines (and their neighbours) and a grid.
fn check_band(z: f64, lo: f64, hi: f64, abar: f64) -> usize {
    let (sl, su) = relu_band(z, lo, hi, abar, false);
    assert!(
        sl <= su,
        "z {z:e} lo {lo:e} hi {hi:e} ā {abar:e}: {sl:e} > {su:e}"
    );
    let mut pts: Vec<f64> = (0..=16).map(|i| abar * f64::from(i) / 16.0).collect();
    for s in [lo, hi] {
        let k = -z / s;
        if k.is_finite() && k > 0.0 && k < abar {
            pts.extend([k, k.next_up(), k.next_down()]);
        }
    }
    let mut n = 0;
    for a in pts.into_iter().filter(|a| (0.0..=abar).contains(a)) {
        let scale = 1e-30 * (z.abs() + a * (lo.abs() + hi.abs() + sl.abs() + su.abs()));
        let up_gap = gap(z, a, hi, su);
        let lo_gap = gap(z, a, lo, sl);
        assert!(
            up_gap <= scale && lo_gap >= -scale,
            "z {z:e} lo {lo:e} hi {hi:e} ā {abar:e} a {a:e}: sL {sl:e} sU {su:e} gaps {lo_gap:e} {up_gap:e}"
        );
        n += 1;
    }
    n
}

#[test]
fn relu_band_is_a_band() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let mut n = 0usize;
    for i in 0..200_000u32 {
        let abar = 10f64.powf(rng.random_range(-12.0..6.0));
        let scale = 10f64.powf(rng.random_range(-8.0..8.0));
        let hi = scale * gauss(&mut rng);
        let lo = hi - scale * rng.random::<f64>() * if i % 3 == 0 { 0.0 } else { 1.0 };
        // z: random, zero, or at the margin of hi's kink (z = -ā hi, nudged by ulps).
        let z = match i % 4 {
            0 => scale * abar * gauss(&mut rng),
            1 => 0.0,
            _ => {
                let mut z = -(abar * hi);
                for _ in 0..rng.random_range(0..4) {
                    z = if rng.random::<bool>() {
                        z.next_up()
                    } else {
                        z.next_down()
                    };
                }
                z
            }
        };
        n += check_band(z, lo, hi, abar);
    }
    println!("relu_band: {n} points");
}
