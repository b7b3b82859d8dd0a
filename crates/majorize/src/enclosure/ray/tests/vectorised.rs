//! The vectorised passes of session 20: `sums::band_sums` (R3-R4's per-entry sums in
//! lanes) and `band::dense_step`'s branch-free roundings, against their definitions.

use super::super::band::dense_step;
use super::super::sums::{SampleSums, band_sums, band_sums_plain};
use super::*;
use crate::enclosure::fp::{U64, UpOps, eta, gamma, up};
use crate::enclosure::top_block::bound::{ua, um};

/// Random `(c, sL, sU)`, `d x n`, with `sL <= sU` mostly, exact zeros, signed zeros,
/// subnormals and, on some cases, an infinity or a NaN.
fn draw_band(rng: &mut ChaCha8Rng, len: usize, special: bool) -> [Vec<f64>; 3] {
    let mut c: Vec<f64> = (0..len).map(|_| gauss(rng)).collect();
    let mut sl: Vec<f64> = (0..len).map(|_| 0.3 * gauss(rng)).collect();
    let mut su: Vec<f64> = sl.iter().map(|x| x + 0.1 * gauss(rng).abs()).collect();
    for v in [&mut c, &mut sl, &mut su] {
        for x in v.iter_mut() {
            match rng.random_range(0..20u32) {
                0 => *x = 0.0,
                1 => *x = -0.0,
                2 => *x *= 1e-310,
                _ => {}
            }
        }
    }
    if special && len > 0 {
        let i = rng.random_range(0..len);
        [f64::INFINITY, f64::NEG_INFINITY, f64::NAN][rng.random_range(0..3usize)]
            .clone_into(&mut su[i]);
    }
    [c, sl, su]
}

type SumsFn =
    fn((&[f64], &[f64], &[f64]), &[f64], &[f64], &mut [f64], &mut [SampleSums]) -> (f64, f64);

/// `band_sums` (the widest code generation the CPU has) equals `band_sums_plain` called
/// directly bit for bit, on widths 0-37 (lanes and remainders) and 0-9 samples. Only a
/// release build vectorises (the test profile's `opt-level = 1` does not run LLVM's
/// vectorisers), so `.ci/run` also runs this test with `--release`; in a debug build
/// both sides are the same scalar code and the equality rests on the language rules
/// (no contraction, the written order).
#[test]
fn band_sums_is_the_same_on_every_code_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(2001);
    for case in 0..400u32 {
        let (d, n, nin) = (
            rng.random_range(0..38usize),
            rng.random_range(0..10usize),
            rng.random_range(1..30usize),
        );
        let [c, sl, su] = draw_band(&mut rng, d * n, case % 7 == 0);
        let cm: Vec<f64> = (0..d).map(|_| gauss(&mut rng).abs()).collect();
        let a_in: Vec<f64> = (0..nin * n).map(|_| gauss(&mut rng)).collect();
        let run = |f: SumsFn| {
            let (mut mt, mut ps) = (vec![0.0; d * n], vec![SampleSums::default(); n]);
            let (lin, labs) = f((&c, &sl, &su), &cm, &a_in, &mut mt, &mut ps);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let per: Vec<f64> = ps.iter().flat_map(|p| [p.sc, p.p1, p.q, p.alpha]).collect();
            (lin.to_bits(), labs.to_bits(), bits(&mt), bits(&per))
        };
        assert_eq!(
            run(band_sums),
            run(band_sums_plain),
            "case {case}: d {d} n {n}"
        );
    }
}

/// Every output of `band_sums` against its definition summed entry by entry in order:
/// `M` bit for bit; each sum within `2 γ_n Σ|terms|` of the ordered one (both are within
/// `γ_{n-1} Σ|terms|` of the exact sum, whatever the order), and a sample's sums exactly
/// equal when it has at most one entry per lane.
#[test]
fn band_sums_are_the_entrywise_sums_up_to_rounding() {
    let mut rng = ChaCha8Rng::seed_from_u64(2002);
    let mut differ = 0;
    for _ in 0..300 {
        let (d, n, nin) = (
            rng.random_range(1..70usize),
            rng.random_range(1..6usize),
            rng.random_range(1..70usize),
        );
        let [c, sl, su] = draw_band(&mut rng, d * n, false);
        let cm: Vec<f64> = (0..d).map(|_| gauss(&mut rng).abs()).collect();
        let a_in: Vec<f64> = (0..nin * n).map(|_| gauss(&mut rng)).collect();
        let (mut mt, mut ps) = (vec![0.0; d * n], vec![SampleSums::default(); n]);
        let (lin, labs) = band_sums((&c, &sl, &su), &cm, &a_in, &mut mt, &mut ps);
        let close =
            |got: f64, terms: &mut dyn Iterator<Item = f64>, what: &str, per_sample: bool| {
                let (mut sum, mut abs, mut k) = (0.0f64, 0.0f64, 0usize);
                for t in terms {
                    sum += t;
                    abs += t.abs();
                    k += 1;
                }
                let tol = 2.0 * gamma(k, U64) * abs;
                assert!(
                    (got - sum).abs() <= tol,
                    "{what}: {got:e} vs {sum:e} (tol {tol:e})"
                );
                if per_sample && k <= 8 {
                    assert_eq!(
                        got.to_bits(),
                        (sum + 0.0).to_bits(),
                        "{what}: one term per lane"
                    );
                }
                got != sum
            };
        let x = |i: usize| if c[i] > 0.0 { su[i] } else { sl[i] };
        differ += usize::from(close(
            lin,
            &mut (0..d * n).map(|i| c[i] * x(i)),
            "lin",
            false,
        ));
        close(
            labs,
            &mut (0..d * n).map(|i| (c[i] * x(i)).abs()),
            "labs",
            false,
        );
        for s in 0..n {
            let col = s * d..(s + 1) * d;
            for i in col.clone() {
                assert_eq!(mt[i].to_bits(), sl[i].abs().max(su[i].abs()).to_bits());
            }
            let m = |i: usize| sl[i].abs().max(su[i].abs());
            let p = ps[s];
            close(
                p.sc,
                &mut col.clone().map(|i| cm[i - s * d] * m(i)),
                "sc",
                true,
            );
            differ += usize::from(close(p.p1, &mut col.clone().map(m), "p1", true));
            close(p.q, &mut col.clone().map(|i| m(i) * m(i)), "q", true);
            close(
                p.alpha,
                &mut a_in[s * nin..(s + 1) * nin].iter().map(|v| v.abs()),
                "alpha",
                true,
            );
        }
    }
    // The lanes do change the rounding (else this test could not tell them apart).
    assert!(differ > 100, "{differ} sums differ from the ordered ones");
}

/// `dense_step`'s branch-free roundings give the bits of the per-entry `up`, `ua`, `um`
/// it used before session 20 (here written out), on bands with signed zeros,
/// subnormals, infinities and NaNs.
#[test]
fn dense_step_is_the_branchy_definition_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(2003);
    for case in 0..300u32 {
        let (k, d, n) = (
            rng.random_range(1..12usize),
            rng.random_range(1..40usize),
            rng.random_range(1..7usize),
        );
        let w = DMatrix::from_fn(k, d, |_, _| gauss(&mut rng));
        let absw = w.abs();
        let [_, sl, su] = draw_band(&mut rng, d * n, case % 5 == 0);
        let (mut a, mut b) = (
            DMatrix::from_vec(d, n, sl.clone()),
            DMatrix::from_vec(d, n, su.clone()),
        );
        let (mut mu, mut rad) = (DMatrix::zeros(k, n), DMatrix::zeros(k, n));
        dense_step(&w, &absw, (&mut a, &mut b), (&mut mu, &mut rad)).unwrap();
        // The definition, entry by entry with the branchy roundings.
        let gdc = gamma(d, U64);
        let (mut c, mut r) = (DMatrix::zeros(d, n), DMatrix::zeros(d, n));
        for i in 0..d * n {
            let x = 0.5 * sl[i] + 0.5 * su[i];
            c[i] = x;
            r[i] = ua(up(su[i] - x).max(up(x - sl[i])), um(gdc, x.abs()));
        }
        let bits = |m: &DMatrix<f64>| m.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&c), "case {case}: centre");
        assert_eq!(bits(&b), bits(&r), "case {case}: radius");
        // The crate's GEMM wrapper, as `dense_step` calls it.
        let product = |x: &DMatrix<f64>, y: &DMatrix<f64>| {
            let mut out = DMatrix::zeros(x.nrows(), y.ncols());
            let no = autodiff::Transpose::No;
            crate::prod::gemm(&mut out, x, no, y, no).unwrap();
            out
        };
        assert_eq!(
            bits(&mu),
            bits(&product(&w, &c)),
            "case {case}: centre product"
        );
        let mut want = product(&absw, &r);
        let (ops, tail) = (UpOps::new(2 * d), (d as f64 + 1.0) * eta(U64));
        want.iter_mut().for_each(|x| *x = ua(ops.apply(*x), tail));
        assert_eq!(bits(&rad), bits(&want), "case {case}: rad");
    }
}

/// `all_finite` agrees with `iter().all(is_finite)` on every length 0-40 with one special
/// value (NaN, ±inf, ±max, a subnormal, -0) anywhere, or none.
#[test]
fn all_finite_is_the_entrywise_test() {
    use super::super::band::all_finite;
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        -f64::MAX,
        f64::from_bits(1),
        -0.0,
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(2004);
    let mut non_finite = 0;
    for len in 0..41usize {
        for sp in specials.iter().map(Some).chain([None]) {
            let mut x: Vec<f64> = (0..len).map(|_| gauss(&mut rng)).collect();
            if let (Some(v), true) = (sp, len > 0) {
                let at = rng.random_range(0..len);
                x[at] = *v;
            }
            let want = x.iter().all(|v| v.is_finite());
            assert_eq!(all_finite(&x), want, "len {len}, special {sp:?}");
            non_finite += usize::from(!want);
        }
    }
    assert_eq!(non_finite, 3 * 40);
}
