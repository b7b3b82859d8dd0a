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

/// The dense step of R2: for every row, the exact extremes of `W σ` over the box `σ ∈
/// [sL, sU]` (`Σ_i max/min(W_ji sL_i, W_ji sU_i)`, exact products summed in
/// double-double) lie in `[μ - rad, μ + rad]` after the outward rounding of `lo`, `hi`.
/// Random bands and cancelling ones (rows `(w, -w, ...)` on nearly equal slopes of size
/// up to 1e8, where `fl(W c)` errs by far more than the box's width).
#[test]
fn dense_step_contains_the_exact_range() {
    use super::super::band::dense_step;
    use crate::enclosure::top_block::abs_into;
    let mut rng = ChaCha8Rng::seed_from_u64(78);
    let mut n_checked = 0usize;
    for case in 0..3000u32 {
        let (dout, din, n) = (
            rng.random_range(1..=6usize),
            rng.random_range(2..=12usize),
            rng.random_range(1..=4usize),
        );
        let cancel = case % 2 == 0;
        let big = 10f64.powf(rng.random_range(-3.0..8.0));
        let w = DMatrix::from_fn(dout, din, |_, i| {
            if cancel {
                big * if i % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + 1e-3 * f64::from(i as u32))
            } else {
                gauss(&mut rng)
            }
        });
        let mut sl = DMatrix::from_fn(din, n, |_, _| {
            if cancel {
                big * (1.0 + 1e-15 * gauss(&mut rng))
            } else {
                big * gauss(&mut rng)
            }
        });
        let mut su = sl.map(|x| {
            if rng.random_range(0..3) == 0 {
                x
            } else {
                x + big * 1e-14 * rng.random::<f64>()
            }
        });
        let (sl0, su0) = (sl.clone(), su.clone());
        let mut absw = DMatrix::zeros(0, 0);
        abs_into(&mut absw, &w);
        let (mut mu, mut rad) = (DMatrix::zeros(dout, n), DMatrix::zeros(dout, n));
        dense_step(&w, &absw, (&mut sl, &mut su), (&mut mu, &mut rad)).unwrap();
        for s in 0..n {
            for j in 0..dout {
                let (mut hi, mut lo) = (dd(0.0), dd(0.0));
                for i in 0..din {
                    let (p, q) = (
                        dd_mul(dd(w[(j, i)]), dd(sl0[(i, s)])),
                        dd_mul(dd(w[(j, i)]), dd(su0[(i, s)])),
                    );
                    let (mx, mn) = if p.0 + p.1 >= q.0 + q.1 {
                        (p, q)
                    } else {
                        (q, p)
                    };
                    hi = dd_add(hi, mx);
                    lo = dd_add(lo, mn);
                }
                let (m, r) = (mu[(j, s)], rad[(j, s)]);
                let (bl, bh) = ((m - r).next_down(), (m + r).next_up());
                let tol = 1e-28 * (m.abs() + r);
                assert!(
                    hi.0 + hi.1 - bh <= tol && lo.0 + lo.1 - bl >= -tol,
                    "case {case} ({j}, {s}): [{:e}, {:e}] not in [{bl:e}, {bh:e}]",
                    lo.0 + lo.1,
                    hi.0 + hi.1
                );
                n_checked += 1;
            }
        }
    }
    println!("dense_step: {n_checked} rows");
}

/// `relu_band_select` (the loop's form, common case by a mask) equals `relu_band` bit
/// for bit: on random `z`, `lo <= hi`, `ā` at every scale, `z` at hi's kink and nudged
/// by ulps, signed zeros, subnormals, infinities and NaN in every argument; both
/// branches of the select are taken many times.
#[test]
fn relu_band_select_equals_relu_band() {
    use super::super::band::relu_band_select;
    let mut rng = ChaCha8Rng::seed_from_u64(171);
    let special = [
        0.0,
        -0.0,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::MIN_POSITIVE,
        f64::MAX,
        -f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.0,
        -1.0,
    ];
    let (mut simple, mut other) = (0usize, 0usize);
    for i in 0..400_000u32 {
        let abar = 10f64.powf(rng.random_range(-12.0..6.0));
        let scale = 10f64.powf(rng.random_range(-8.0..8.0));
        let mut hi = scale * gauss(&mut rng);
        let mut lo = hi - scale * rng.random::<f64>();
        let mut z = match i % 3 {
            0 => scale * abar * gauss(&mut rng),
            1 => scale * gauss(&mut rng),
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
        let mut abar = abar;
        if i % 7 == 0 {
            let pick = |rng: &mut ChaCha8Rng| special[rng.random_range(0..special.len())];
            match rng.random_range(0..4) {
                0 => z = pick(&mut rng),
                1 => lo = pick(&mut rng),
                2 => hi = pick(&mut rng),
                _ => abar = pick(&mut rng),
            }
        }
        let want = relu_band(z, lo, hi, abar, false);
        let got = relu_band_select(z, lo, hi, abar, false);
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        assert!(
            same(want.0, got.0) && same(want.1, got.1),
            "z {z:e} lo {lo:e} hi {hi:e} ā {abar:e}: {want:?} vs {got:?}"
        );
        let (sure, tp) = crate::enclosure::top_block::bound::sure_t(z, hi, abar);
        if sure && z != 0.0 && (z > 0.0) == (tp > 0.0) {
            simple += 1;
        } else {
            other += 1;
        }
    }
    assert!(
        simple > 100_000 && other > 50_000,
        "{simple} simple, {other} other"
    );
}

/// `simple_chunk` (the band loop's chunked common case) takes a chunk exactly when every
/// entry is in `relu_band_select`'s common case, and then writes `relu_band`'s values:
/// random chunks mixing common entries, kinks crossed, unsure signs, zeros and
/// non-finite slopes, for the block (`lo = hi = P'`) and for a layer above (`μ ± rad`).
#[test]
fn simple_chunk_equals_the_per_entry_band() {
    use super::super::band::{LANES, simple_chunk};
    use crate::enclosure::fp::{dn_select, up_select};
    let mut rng = ChaCha8Rng::seed_from_u64(172);
    let (mut taken, mut left) = (0usize, 0usize);
    for i in 0..60_000u32 {
        let abar = 10f64.powf(rng.random_range(-6.0..3.0));
        let rare = [0.0, 1e-3, 0.02, 0.3][i as usize % 4];
        let mu_rad = i % 2 == 1;
        let mut z = [0.0f64; LANES];
        let (mut x, mut y) = ([0.0f64; LANES], [0.0f64; LANES]);
        for l in 0..LANES {
            let s = gauss(&mut rng);
            x[l] = s;
            y[l] = if mu_rad { 0.1 * rng.random::<f64>() } else { s };
            // Mostly far from the kink; now and then at it, zero, or non-finite.
            z[l] = if rng.random::<f64>() < rare {
                match rng.random_range(0..4) {
                    0 => -(abar * (x[l] + y[l])),
                    1 => 0.0,
                    2 => f64::NAN,
                    _ => 1e-300 * gauss(&mut rng),
                }
            } else {
                (1.0 + abar) * 3.0 * gauss(&mut rng)
            };
            if rng.random::<f64>() < rare / 4.0 {
                y[l] = f64::INFINITY;
            }
        }
        let want: Vec<(f64, f64)> = (0..LANES)
            .map(|l| {
                let (lo, hi) = if mu_rad {
                    (dn_select(x[l] - y[l]), up_select(x[l] + y[l]))
                } else {
                    (x[l], y[l])
                };
                relu_band(z[l], lo, hi, abar, false)
            })
            .collect();
        let all_simple = (0..LANES).all(|l| {
            let hi = if mu_rad { up_select(x[l] + y[l]) } else { y[l] };
            let (sure, tp) = crate::enclosure::top_block::bound::sure_t(z[l], hi, abar);
            sure && z[l] != 0.0 && (z[l] > 0.0) == (tp > 0.0)
        });
        let (mut sl, mut su) = ([7.0f64; LANES], [7.0f64; LANES]);
        let got = if mu_rad {
            simple_chunk::<true>((&z, &x, &y), abar, &mut sl, &mut su)
        } else {
            simple_chunk::<false>((&z, &x, &y), abar, &mut sl, &mut su)
        };
        assert_eq!(
            got, all_simple,
            "chunk {i}: z {z:?} x {x:?} y {y:?} ā {abar:e}"
        );
        if got {
            taken += 1;
            for l in 0..LANES {
                assert_eq!(
                    (sl[l].to_bits(), su[l].to_bits()),
                    (want[l].0.to_bits(), want[l].1.to_bits()),
                    "chunk {i} entry {l}"
                );
            }
        } else {
            left += 1;
            assert!(sl.iter().chain(&su).all(|v| *v == 7.0), "chunk {i} written");
        }
    }
    assert!(
        taken > 10_000 && left > 10_000,
        "{taken} taken, {left} left"
    );
}

/// A layer's R2: `layer_band` or `layer_band_plain`.
type LayerFn =
    fn(&super::super::band::LayerBand<'_>, &mut [f64], &mut [f64], &mut [f64], &mut [f64]) -> bool;

/// `layer_band` (the widest code generation the CPU has) equals `layer_band_plain`
/// called directly (baseline code generation) bit for bit: band, sums and the finite
/// flag, on random layers of widths 1-37 (chunks and remainders) for the block and a
/// layer above, with kinks crossed, zeros and an infinite slope now and then.
/// (Meaningful in a release build, which `.ci/run` also runs: see
/// `vectorised::band_sums_is_the_same_on_every_code_path`.)
#[test]
fn layer_band_is_the_same_on_every_code_path() {
    use super::super::band::{LayerBand, layer_band, layer_band_plain};
    let mut rng = ChaCha8Rng::seed_from_u64(173);
    let mut not_fine = 0;
    for case in 0..400u32 {
        let d = rng.random_range(1..38usize);
        let n = rng.random_range(1..9usize);
        let abar = 10f64.powf(rng.random_range(-4.0..3.0));
        let first = case % 2 == 0;
        let len = d * n;
        let mut draw =
            |scale: f64| -> Vec<f64> { (0..len).map(|_| scale * gauss(&mut rng)).collect() };
        let z = draw(1.0);
        let x = draw(0.5);
        let mut y: Vec<f64> = if first {
            x.clone()
        } else {
            draw(0.1).into_iter().map(f64::abs).collect()
        };
        if case % 17 == 0 {
            y[len / 2] = f64::INFINITY;
        }
        let act: Vec<f64> = z.iter().map(|v| v.max(0.0)).collect();
        let lb = LayerBand {
            z: &z,
            x: &x,
            y: &y,
            act: &act,
            d,
            first,
            abar,
            knob: false,
        };
        let run = |f: LayerFn| {
            let (mut sl, mut su) = (vec![0.0; len], vec![0.0; len]);
            let (mut ch, mut cm) = (vec![0.0; n], vec![0.0; n]);
            let ok = f(&lb, &mut sl, &mut su, &mut ch, &mut cm);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (ok, bits(&sl), bits(&su), bits(&ch), bits(&cm))
        };
        let (a, b) = (run(layer_band), run(layer_band_plain));
        assert_eq!(a, b, "case {case}: d {d} n {n} ā {abar:e}");
        not_fine += usize::from(!a.0);
    }
    assert!(not_fine >= 10, "{not_fine} layers with a non-finite band");
}
