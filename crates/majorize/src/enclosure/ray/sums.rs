//! The per-entry sums of R3-R4 (docs/MAJORIZE.md, "The ray bound of a lower block") in
//! one pass over the last hidden layer's band, written lane by lane so that it
//! vectorises (session 20; before, three scalar loops with one running sum each).
//!
//! Every sum here is later inflated by a bound that holds for **any summation order**
//! (`|fl(Σ x_i) - Σ x_i| <= γ_{n-1} Σ |x_i|`, Higham, *Accuracy and Stability of Numerical
//! Algorithms*, 2nd ed., eq. 4.4, for recursive summation in any order and for any
//! summation tree), so adding in [`LANES`] interleaved partial sums leaves every error
//! term of the bound unchanged; only the rounding of the sums themselves differs.

use super::band::LANES;
use crate::enclosure::fp::{U64, UpOps, eta, gamma, widest};
use crate::enclosure::top_block::bound::{ua, um};

/// The R3-R4 sums of one sample (before their inflation, which the caller applies).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SampleSums {
    /// `Σ_j cm_j M_j`, with `cm_j = max_k |W_m,kj|` (the slope error's factor).
    pub(crate) sc: f64,
    /// `Σ_j M_j`.
    pub(crate) p1: f64,
    /// `Σ_j M_j²`.
    pub(crate) q: f64,
    /// `Σ_i |A_i|` over the block's input column (`α_s`, R4's first deviation).
    pub(crate) alpha: f64,
}

/// R3: an upper bound of the exact linear term `Σ Ĉ x` over `terms` entries from the
/// computed `lin` and `labs = Σ|fl(Ĉ x)|` of [`band_sums`]: `lin + γ_{terms+1}
/// U_{2 terms}(labs) + terms·η` (the products' and the sum's roundings in any order; the
/// `η` for the products' underflow), rounded up.
pub(crate) fn linear_upper(lin: f64, labs: f64, terms: usize) -> f64 {
    let labs = UpOps::new(2 * terms).apply(labs);
    ua(
        ua(lin, um(gamma(terms + 1, U64), labs)),
        terms as f64 * eta(U64),
    )
}

/// R3-R4: upper bounds of a sample's exact sums from their computed values in
/// [`SampleSums`], each inflated for the operations that formed it (any order): `U_{2d}`
/// for `Σ cm M` and `Σ M²` (`d` products and `d` additions), `U_d` for `Σ M`, `U_{nin}`
/// for `Σ|A|`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SumBounds {
    ops_2d: UpOps,
    ops_d: UpOps,
    ops_n: UpOps,
}

impl SumBounds {
    /// For `d` hidden units and `nin` block inputs.
    pub(crate) fn new(d: usize, nin: usize) -> SumBounds {
        SumBounds {
            ops_2d: UpOps::new(2 * d),
            ops_d: UpOps::new(d),
            ops_n: UpOps::new(nin),
        }
    }

    /// The inflated sums of one sample.
    pub(crate) fn apply(&self, s: SampleSums) -> SampleSums {
        SampleSums {
            sc: self.ops_2d.apply(s.sc),
            p1: self.ops_d.apply(s.p1),
            q: self.ops_2d.apply(s.q),
            alpha: self.ops_n.apply(s.alpha),
        }
    }
}

/// The band pass of R3 over `d x N` column-major `c = Ĉ`, `sl`, `su` (the last hidden
/// layer's band) and `d_in x N` `a_in` (the block's input): writes `M = max(|sL|, |sU|)`
/// into `mtop` and each sample's [`SampleSums`] into `per_sample`, and returns the linear
/// term `Σ Ĉ x` (`x = sU` where `Ĉ > 0`, else `sL`: the band's maximiser of `Ĉ x`) and
/// `Σ |Ĉ x|`, both over every entry.
pub(crate) fn band_sums(
    (c, sl, su): (&[f64], &[f64], &[f64]),
    cm: &[f64],
    a_in: &[f64],
    mtop: &mut [f64],
    per_sample: &mut [SampleSums],
) -> (f64, f64) {
    widest(
        #[inline(always)]
        || band_sums_plain((c, sl, su), cm, a_in, mtop, per_sample),
    )
}

/// [`band_sums`] with the baseline code generation when called directly (the tests
/// compare the two).
#[inline(always)]
pub(crate) fn band_sums_plain(
    (c, sl, su): (&[f64], &[f64], &[f64]),
    cm: &[f64],
    a_in: &[f64],
    mtop: &mut [f64],
    per_sample: &mut [SampleSums],
) -> (f64, f64) {
    let d = cm.len();
    let n = per_sample.len();
    // Every buffer is `d x N` (`RayWorkspace::shape`); a shorter one would leave samples
    // at zero sums below.
    debug_assert!(c.len() == d * n && sl.len() == d * n && su.len() == d * n);
    debug_assert!(mtop.len() == d * n && (n == 0 || a_in.len().is_multiple_of(n)));
    let nin = a_in.len().checked_div(n).unwrap_or(0);
    let input = |s: usize| a_in.get(s * nin..(s + 1) * nin).unwrap_or(&[]);
    let (mut lin, mut labs) = (0.0f64, 0.0f64);
    if d == 0 {
        for (s, out) in per_sample.iter_mut().enumerate() {
            *out = SampleSums {
                alpha: abs_sum(input(s)),
                ..SampleSums::default()
            };
        }
        return (lin, labs);
    }
    let cols = c
        .chunks_exact(d)
        .zip(sl.chunks_exact(d))
        .zip(su.chunks_exact(d))
        .zip(mtop.chunks_exact_mut(d))
        .zip(per_sample.iter_mut())
        .enumerate();
    for (s, ((((cc, a), b), mt), out)) in cols {
        // Lanes: linear, |linear|, cm M, M, M².
        let mut acc = [[0.0f64; LANES]; 5];
        let full = d / LANES * LANES;
        let chunks = cc[..full]
            .chunks_exact(LANES)
            .zip(a[..full].chunks_exact(LANES))
            .zip(b[..full].chunks_exact(LANES))
            .zip(cm[..full].chunks_exact(LANES))
            .zip(mt[..full].chunks_exact_mut(LANES));
        for ((((cc, a), b), cm), mt) in chunks {
            for l in 0..LANES {
                mt[l] = entry(&mut acc, l, cc[l], a[l], b[l], cm[l]);
            }
        }
        for j in full..d {
            mt[j] = entry(&mut acc, j - full, cc[j], a[j], b[j], cm[j]);
        }
        let [s_lin, s_labs, s_sc, s_p1, s_q] = acc.map(|v| v.iter().sum::<f64>());
        lin += s_lin;
        labs += s_labs;
        *out = SampleSums {
            sc: s_sc,
            p1: s_p1,
            q: s_q,
            alpha: abs_sum(input(s)),
        };
    }
    (lin, labs)
}

/// One entry of [`band_sums_plain`] into lane `l`; returns `M`.
#[inline(always)]
fn entry(acc: &mut [[f64; LANES]; 5], l: usize, c: f64, a: f64, b: f64, cm: f64) -> f64 {
    let m = a.abs().max(b.abs());
    let x = if c > 0.0 { b } else { a };
    let t = c * x;
    acc[0][l] += t;
    acc[1][l] += t.abs();
    acc[2][l] += cm * m;
    acc[3][l] += m;
    acc[4][l] += m * m;
    m
}

/// `Σ |x_i|` in [`LANES`] interleaved partial sums.
#[inline(always)]
fn abs_sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for ch in &mut chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            *a += v.abs();
        }
    }
    for (l, v) in chunks.remainder().iter().enumerate() {
        acc[l] += v.abs();
    }
    acc.iter().sum()
}
