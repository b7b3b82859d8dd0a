//! Hostile review of the cheaper arithmetic (session 16, `chordreview`): each test aims
//! at one assumption of `chordfast`'s steps (docs/MAJORIZE.md, the top block's bound,
//! step 7) and checks it against an exact or double-double reference.

use nalgebra::{DMatrix, DVector};
use nets::{Reduction, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::bound::sure_t;
use super::{TCase, dd, dd_add, dd_mul, gauss, two_sum};
use crate::enclosure::fp::{U64, UpOps};

/// The exact sign of `a + b + c` (finite floats, no overflow): error-free two-sums
/// until the top component is the rounded exact sum (0 only for an exact 0).
fn sign3(a: f64, b: f64, c: f64) -> f64 {
    let mut v = [a, b, c];
    v.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    for _ in 0..8 {
        for i in 0..2 {
            let (s, e) = two_sum(v[i], v[i + 1]);
            (v[i], v[i + 1]) = (e, s);
        }
    }
    if v[2] == 0.0 { 0.0 } else { v[2].signum() }
}

/// The exact sign of `z + ā p` (`ā p` split exactly by FMA, valid while `|fl(ā p)| >=
/// 2^-960` or the product is an exact zero), or `None` near underflow.
fn exact_sign(z: f64, pv: f64, abar: f64) -> Option<f64> {
    let ph = abar * pv;
    if ph != 0.0 && ph.abs() < 2f64.powi(-960) {
        return None;
    }
    Some(sign3(z, ph, abar.mul_add(pv, -ph)))
}

/// Where `sure_t` is sure, `t̂` has the sign of the EXACT `t = z + ā p` (the no-kink
/// path relies on it; `fastpaths.rs` compares with the directed `t_hi`, `t_lo` only).
/// Cancellation aimed at the margin: `ā p = -z (1 + k u)`, `|k| <= 60`, and `ā p =
/// -(z + m u |z|)` for `|m| <= 40`, and unrelated pairs; magnitudes 1e-290..1e300;
/// 600,000 cases. (A scratch run of 2·10^7 such cases found sign disagreements with
/// the directed `t_hi`/`t_lo` only for `|t̂| <= 1.0 u S` and none with the exact sign:
/// the margin `18 u S` is ~18x the observed and ~2.2x the proven need of `8.2 u S`.)
#[test]
fn plain_sign_of_t_is_the_exact_sign() {
    let mut rng = ChaCha8Rng::seed_from_u64(1616);
    let (mut sure, mut exact_checked, mut closest) = (0usize, 0usize, f64::INFINITY);
    for i in 0..600_000 {
        let mag = 10f64.powf(rng.random_range(-290.0..300.0));
        let z = gauss(&mut rng) * mag;
        let abar = 10f64.powf(rng.random_range(-14.0..12.0));
        let pv = match i % 3 {
            0 => -z / abar * (1.0 + f64::from(rng.random_range(-60i32..=60)) * U64),
            1 => {
                let target = z + f64::from(rng.random_range(-40i32..=40)) * z.abs() * U64;
                -target / abar
            }
            _ => gauss(&mut rng) * mag / abar,
        };
        if !(pv.is_finite() && (abar * pv).is_finite()) {
            continue;
        }
        let (ok, tp) = sure_t(z, pv, abar);
        if !ok {
            continue;
        }
        sure += 1;
        if let Some(sg) = exact_sign(z, pv, abar) {
            exact_checked += 1;
            assert!(
                sg == tp.signum(),
                "z {z:e} p {pv:e} ā {abar:e}: t̂ {tp:e}, exact sign {sg}"
            );
            let s = z.abs() + (abar * pv).abs();
            closest = closest.min(tp.abs() / (U64 * s));
        }
    }
    eprintln!("sure {sure}, exact sign checked {exact_checked}, smallest |t̂|/(u S) {closest}");
    assert!(exact_checked > 300_000, "{exact_checked}");
    assert!(closest < 19.0, "the cases reach the margin: {closest}");
}

/// `a >= hi + lo` exactly.
fn ge_dd(a: f64, b: (f64, f64)) -> bool {
    sign3(a, -b.0, -b.1) >= 0.0
}

/// `UpOps(m)` (the one inflation of every long plain sum) against the worst cases of a
/// plain sum of nonnegative terms: (a) `1 + (m - 1)` terms just below half an ulp of 1
/// (every addition loses its whole term: relative error `(m - 1)(1 - 2^-53)u`, the
/// Higham bound `γ_{m-1}` attained to first order), m up to 10^6; (b) products that
/// underflow to 0 (`0.5·2^-1074` exactly, ties to even: each loses `η/16`), `d`
/// products and `d` additions as the code's `Σ m_j p_j²`; (c) products of subnormal and
/// normal size mixed. The exact sums in double-double. Mutations of `fp::UpOps`:
/// dropping the factor 2 and the `+1` of the index (`x (1 + γ_{m-1})`) fails (a);
/// dropping the `(m + 1)η` fails (b); `2γ_{m-1}` (index lowered by 2, factor kept)
/// passes, as it must: it is still a valid bound (`s <= x (1 + γ_m)` suffices).
#[test]
fn one_inflation_covers_worst_case_plain_sums() {
    let tiny = 2f64.powi(-53) * (1.0 - 2f64.powi(-52));
    for m in [2usize, 3, 10, 1000, 1_000_000] {
        let mut x = 1.0f64;
        for _ in 1..m {
            x += tiny;
        }
        assert_eq!(x, 1.0, "every term lost");
        let exact = dd_add(dd(1.0), dd_mul(dd((m - 1) as f64), dd(tiny)));
        let ub = UpOps::new(m - 1).apply(x);
        assert!(
            ge_dd(ub, exact),
            "m {m}: {ub:e} < 1 + {:e}",
            exact.0 - 1.0 + exact.1
        );
        // For large m the bound's room is about twice this error (the factor 2 of
        // `2γ_{m+1}`, not needed by the argument: `s <= x (1 + γ_m)` already).
        if m >= 1000 {
            let (err, room) = ((exact.0 - 1.0) + exact.1, ub - 1.0);
            assert!(
                room <= 2.1 * err && room >= 1.9 * err,
                "m {m}: {room:e} {err:e}"
            );
        }
    }
    // (b): d products of 2^-537 · 2^-538 = 2^-1075 (half the smallest subnormal, rounds
    // to 0) and d additions: computed 0, exact d 2^-1075.
    for d in [1usize, 7, 100_000] {
        let (a, b) = (2f64.powi(-537), 2f64.powi(-538));
        let mut x = 0.0f64;
        for _ in 0..d {
            x += a * b;
        }
        assert_eq!(x, 0.0);
        // Exact d 2^-1075 is not a float: compare scaled by 2^1100 (two exact steps).
        let ub = UpOps::new(2 * d).apply(x);
        let scaled = ub * 2f64.powi(1000) * 2f64.powi(100);
        assert!(scaled >= d as f64 * 2f64.powi(25), "d {d}: {ub:e}");
    }
    // (c): random mixtures around the underflow threshold; the plain sum's order is the
    // code's (left to right from 0).
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for case in 0..200 {
        let d = [1usize, 3, 64, 4096][case % 4];
        let pairs: Vec<(f64, f64)> = (0..d)
            .map(|_| {
                let e = rng.random_range(-1080i32..-1000) / 2;
                (
                    rng.random::<f64>() * 2f64.powi(e),
                    rng.random::<f64>() * 2f64.powi(e),
                )
            })
            .collect();
        let x = pairs.iter().fold(0.0f64, |s, (a, b)| s + a * b);
        let ub = UpOps::new(2 * d).apply(x);
        // Exactly, scaled by 2^1200 (powers of two: exact): products split by FMA, the
        // sum in double-double (relative error ~d 2^-104, far below the inflation).
        let sc = 2f64.powi(600);
        let exact = pairs.iter().fold(dd(0.0), |acc, (a, b)| {
            let (sa, sb) = (a * sc, b * sc);
            let ph = sa * sb;
            dd_add(acc, (ph, sa.mul_add(sb, -ph)))
        });
        assert!(
            ge_dd(ub * sc * sc, exact),
            "case {case}: UpOps {ub:e} < exact {:e}",
            exact.0 / sc / sc
        );
    }
}

/// A one-hidden-layer net whose every pre-activation is at its kink at `a = ā` to
/// rounding level: rank-one inputs `A_s = c_s x` (no bias), `V x = -(W x)/ā (1 + k_j u)`,
/// so `t_js = c_s ((W x)_j + ā (V x)_j)` cancels to `k_j u` relative for all `d N`
/// entries (sure and unsure `t̂` of both signs), saturated logits (±200 weights),
/// K = 10, N = 400, soft targets. The driver's record and the double-double `psi` under
/// the bound at every point.
#[test]
fn every_entry_at_its_kink_near_the_margin() {
    let mut rng = ChaCha8Rng::seed_from_u64(161);
    let (mut checked, mut worst) = (0usize, f64::INFINITY);
    for case in 0..6 {
        let (d0, dh, k, n) = (3usize, 12usize, 10usize, 400usize);
        let xdir = DVector::from_fn(d0, |_, _| gauss(&mut rng));
        let cs: Vec<f64> = (0..n)
            .map(|_| 10f64.powf(rng.random_range(-3.0..3.0)))
            .collect();
        let x = DMatrix::from_fn(d0, n, |i, s| cs[s] * xdir[i]);
        let w = DMatrix::from_fn(dh, d0, |_, _| gauss(&mut rng));
        let amax = [1e-6, 1.0, 1e4][case % 3];
        let wx = &w * &xdir;
        // V = v_j xᵀ/|x|² with v_j = -(W x)_j/ā (1 + k u): V x = v exactly up to rounding.
        let nx = xdir.dot(&xdir);
        let vcol = DVector::from_fn(dh, |j, _| {
            let kk = f64::from(rng.random_range(-30i32..=30));
            -wx[j] / amax * (1.0 + kk * U64)
        });
        let vmat = DMatrix::from_fn(dh, d0, |j, i| vcol[j] * xdir[i] / nx);
        let scale = if case < 3 { 200.0 } else { 1.0 };
        let w2 = DMatrix::from_fn(k, dh, |_, _| scale * gauss(&mut rng));
        let b2 = DVector::from_fn(k, |_, _| gauss(&mut rng));
        let net = super::relu_net(w, DVector::zeros(dh), w2, b2);
        let mut dir = DVector::zeros(net.num_params());
        let wi = net.param_span(0, "weight").unwrap();
        for j in 0..dh {
            for i in 0..d0 {
                dir[wi.offset + j + i * dh] = vmat[(j, i)];
            }
        }
        let mut y = DMatrix::from_fn(k, n, |_, _| rng.random::<f64>());
        for mut col in y.column_iter_mut() {
            let s = col.sum();
            col /= s;
        }
        let c = TCase::ce(net, Reduction::Mean, 0.0, x, Targets::Dense(y), dir, amax);
        let r0 = c.record(0.0);
        for value in [Some(r0), None] {
            let b = c.bound(value).unwrap();
            assert!(b.slack.is_finite(), "{b:?}");
            let mut pts = super::points(&b);
            // And points at rounding distance of ā, where the kinks are.
            pts.extend([amax * (1.0 - 1e-15), amax * (1.0 - 1e-12), amax]);
            let (n, w) = c.assert_under(&b, pts, &format!("case {case}"));
            (checked, worst) = (checked + n, worst.min(w));
        }
    }
    eprintln!("all at the kink: {checked} comparisons, smallest (bound - x)/slack {worst}");
}

/// K = 1025 outputs with soft targets and logits of order ±700 (the shifted
/// exponentials: `M - hi_j` beyond 709 is clamped, `lo_i - M` below -745 is dropped),
/// K = 1 and 2 at the same scale. The record and the double-double `psi` under the
/// bound.
#[test]
fn many_outputs_with_saturated_logits() {
    let mut rng = ChaCha8Rng::seed_from_u64(1025);
    let mut checked = 0usize;
    for (case, k) in [1025usize, 1025, 1, 2, 40].into_iter().enumerate() {
        let (d0, dh, n) = (3usize, 6usize, 4usize);
        let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
        let w = DMatrix::from_fn(dh, d0, |_, _| gauss(&mut rng));
        let b = DVector::from_fn(dh, |_, _| 0.3 * gauss(&mut rng));
        let w2 = DMatrix::from_fn(k, dh, |_, _| 150.0 * (2.0 * rng.random::<f64>() - 1.0));
        let b2 = DVector::from_fn(k, |_, _| 500.0 * (2.0 * rng.random::<f64>() - 1.0));
        let net = super::relu_net(w, b, w2, b2);
        let mut dir = DVector::zeros(net.num_params());
        for i in 0..dh * d0 + dh {
            dir[i] = 2.0 * rng.random::<f64>() - 1.0;
        }
        let y = if case == 1 {
            Targets::Labels {
                labels: (0..n).map(|s| (7 * s) % k).collect(),
                classes: k,
            }
        } else {
            let mut m = DMatrix::from_fn(k, n, |_, _| rng.random::<f64>());
            for mut col in m.column_iter_mut() {
                let s = col.sum();
                col /= s;
            }
            Targets::Dense(m)
        };
        for amax in [1e-3, 1.0] {
            let c = TCase::ce(
                net.clone(),
                Reduction::Sum,
                0.0,
                x.clone(),
                y.clone(),
                dir.clone(),
                amax,
            );
            let r0 = c.record(0.0);
            let b = c.bound(Some(r0)).unwrap();
            assert!(b.slack.is_finite() && b.curvature.is_finite(), "{b:?}");
            checked += c
                .assert_under(&b, super::points(&b), &format!("K {k} ā {amax}"))
                .0;
        }
    }
    eprintln!("K up to 1025, saturated: {checked} comparisons");
}

/// The long plain sums at scale: `d N = 64 x 16384 ≈ 10^6` entries (the `U_{2dN}`
/// inflation of `Σ|Ĉ x|`, the per-sample `U_d`, `U_{2d}`), a third of the
/// pre-activations at rounding level of their kink, inputs spanning 1e-6..1, `ā` = 1e-8
/// and 1. The driver's record at every point and the double-double `psi` at ten.
#[test]
fn long_sums_over_a_million_entries() {
    let mut rng = ChaCha8Rng::seed_from_u64(1_000_000);
    let mut checked = 0usize;
    let (d0, dh, k, n) = (3usize, 64usize, 10usize, 16384usize);
    let x = DMatrix::from_fn(d0, n, |_, _| {
        gauss(&mut rng) * 10f64.powf(rng.random_range(-6.0..0.0))
    });
    let w = DMatrix::from_fn(dh, d0, |_, _| gauss(&mut rng));
    let mut b = DVector::from_fn(dh, |_, _| 0.01 * gauss(&mut rng));
    for j in (0..dh).step_by(3) {
        let s = rng.random_range(0..n);
        b[j] = -(w.row(j) * x.column(s))[0];
    }
    let w2 = DMatrix::from_fn(k, dh, |_, _| gauss(&mut rng) / 8.0);
    let b2 = DVector::from_fn(k, |_, _| 0.1 * gauss(&mut rng));
    let net = super::relu_net(w, b, w2, b2);
    let mut dir = DVector::zeros(net.num_params());
    for i in 0..dh * d0 + dh {
        dir[i] = gauss(&mut rng);
    }
    let y = Targets::Labels {
        labels: (0..n).map(|_| rng.random_range(0..k)).collect(),
        classes: k,
    };
    for amax in [1e-8, 1.0] {
        let c = TCase::ce(
            net.clone(),
            Reduction::Mean,
            1e-4,
            x.clone(),
            y.clone(),
            dir.clone(),
            amax,
        );
        let r0 = c.record(0.0);
        let b = c.bound(Some(r0)).unwrap();
        assert!(b.slack.is_finite() && b.slack < 1e-9, "{b:?}");
        for (i, a) in super::points(&b).into_iter().enumerate() {
            let ub = b.upper_bound(a).unwrap();
            let rec = c.record(a);
            assert!(
                rec <= ub,
                "ā {amax} a {a:e}: record {rec:e} > {ub:e} ({b:?})"
            );
            checked += 1;
            if i % 6 == 0 {
                let acc = c.accurate(a);
                assert!(acc <= ub, "ā {amax} a {a:e}: psi {acc:e} > {ub:e} ({b:?})");
                checked += 1;
            }
        }
    }
    eprintln!("10^6 entries: {checked} comparisons");
}

/// The shifted exponentials (`shifted_exps` + `sup_softmax`, 2K - 1 `exp` per sample)
/// against the pairwise `p_j = 1/(1 + Σ_{i≠j} exp(lo_i - hi_j))` in f64 (relative error
/// ~K u): never below it beyond that error (soundness; each `exp` has an exact real
/// argument in [-745, 709] here or is 0 or clamped), and equal to it within 1e-12
/// relative plus 1e-300 (the shift loses nothing at that level). Boxes of K = 1, 2, 3, 17
/// and 1025 logits with centres of scale 1..700 and radii 0..50 (so the arguments run
/// from underflow to the clamp), every `j`. Taking `i = j` into the sum (`pre[K]` for
/// `pre[j] + suf[j + 1]`, an unsound `p̄`) fails here; no end-to-end test catches it
/// (the curvature is the minimum of three bounds, all loose).
#[test]
fn shifted_exponentials_match_the_pairwise_supremum() {
    use super::super::bound::{shifted_exps, sup_softmax};
    use crate::enclosure::fp::{LIBM_ULPS, dn, eta};
    let (exp_f, et) = (dn(1.0 - 2.0 * LIBM_ULPS * U64), eta(U64));
    let mut rng = ChaCha8Rng::seed_from_u64(2025);
    let (mut checked, mut worst) = (0usize, 0.0f64);
    for case in 0..400 {
        let k = [1usize, 2, 3, 17, 1025][case % 5];
        let scale = [1.0, 30.0, 300.0, 700.0][(case / 5) % 4];
        let rmax = [0.0, 1e-3, 1.0, 50.0][(case / 20) % 4];
        let z: Vec<f64> = (0..k).map(|_| scale * gauss(&mut rng)).collect();
        let r: Vec<f64> = (0..k).map(|_| rmax * rng.random::<f64>()).collect();
        let lo: Vec<f64> = z.iter().zip(&r).map(|(a, b)| a - b).collect();
        let hi: Vec<f64> = z.iter().zip(&r).map(|(a, b)| a + b).collect();
        let (mut eb, mut pre, mut suf) = (vec![0.0; k], vec![0.0; k + 1], vec![0.0; k + 1]);
        let shift = shifted_exps(&lo, &mut eb, &mut pre, &mut suf, exp_f, et);
        assert!(shift.is_some());
        for j in 0..k {
            let pbar = sup_softmax(shift, j, || hi[j], &pre, &suf, exp_f, et);
            let sum: f64 = (0..k)
                .filter(|i| *i != j)
                .map(|i| (lo[i] - hi[j]).exp())
                .sum();
            let p = 1.0 / (1.0 + sum);
            assert!(
                pbar >= p * (1.0 - 1e-12),
                "case {case} K {k} j {j}: p̄ {pbar:e} < pairwise {p:e}"
            );
            assert!(
                pbar <= p * (1.0 + 1e-12) + 1e-300,
                "case {case} K {k} j {j}: p̄ {pbar:e} >> pairwise {p:e}"
            );
            if p > 1e-300 {
                worst = worst.max(pbar / p - 1.0);
            }
            checked += 1;
        }
    }
    // M not finite: p̄ = 1 without evaluating hi.
    let (mut eb, mut pre, mut suf) = (vec![0.0; 2], vec![0.0; 3], vec![0.0; 3]);
    let lo = [f64::NEG_INFINITY, f64::NEG_INFINITY];
    let shift = shifted_exps(&lo, &mut eb, &mut pre, &mut suf, exp_f, et);
    assert_eq!(shift, None);
    assert_eq!(
        sup_softmax(shift, 0, || unreachable!(), &pre, &suf, exp_f, et),
        1.0
    );
    let lo = [f64::INFINITY, 0.0];
    assert_eq!(
        shifted_exps(&lo, &mut eb, &mut pre, &mut suf, exp_f, et),
        None
    );
    eprintln!("shifted exponentials: {checked} p̄, largest p̄/p - 1 {worst:e}");
    assert!(checked > 50_000, "{checked}");
}
