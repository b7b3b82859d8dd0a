//! The degree-0 and degree-2 radius operands of the dense rule ([`super::model::dense`]):
//! the per-entry radius `s_e` of the input model that the layer's weights multiply, its
//! column sums (the Hölder bound of the f64 path), and the stacked operand of the
//! degree-2 radius GEMM.
//!
//! **Column sums (f64).** The exact operand at input entry `j` (one sample) is
//!
//! ```text
//! s_j = e_j + γ' (|c0_j| + Σ_i ᾱ_i |c1_ij|) + τ M_j,
//! M_j = |c0_j| + e_j + Σ_i ᾱ_i |c1_ij| + Σ_ij ᾱ_i ᾱ_j (|qm_ij| + qr_ij)   (>= |Â_j|),
//! ```
//!
//! so its column sum is the linear combination of five nonnegative column sums
//! `Σ s_j = (1 + τ) E + (γ' + τ) (C0 + Σ_i ᾱ_i C1_i) + τ Σ_ij ᾱ_i ᾱ_j Q_ij` with
//! `E = Σ e_j`, `C0 = Σ |c0_j|`, `C1_i = Σ |c1_ij|`, `Q_ij = Σ |qm_ij| + Σ qr_ij`.
//! [`colsum_bounds`] computes exactly that expression: every operation acts on
//! nonnegative data, and no path from a datum to the result has more than
//! `n + k² + k + 6` operations (`n - 1` for a sum, one for `Q`'s two halves, at most three
//! for a weight and its product, `k² + k + 1` for the combination), so
//! `Inflate::new(n + k² + k + 8)` of the computed value bounds the exact one, whatever
//! the order of the sums ([`super::fp::Inflate`]: relative `γ` per operation on the
//! path, plus an absolute underflow allowance per operation). The sums therefore run
//! with eight independent accumulators, which vectorise. This replaces one outward
//! inflation per entry by one per column: the bound is slightly tighter than the
//! per-entry form and costs a few additions per entry.

use nalgebra::DMatrix;

use super::fp::{Inflate, up_ops};
use super::model::Model;
use super::sparse::Pattern;

/// `Σ_j f(x_j)` in eight interleaved partial sums (any order is covered by the caller's
/// inflation; NaN propagates). `f` is `abs` or the identity on nonnegative data.
#[inline(always)]
fn sum8(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for l in 0..8 {
            acc[l] += f(ch[l]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for v in rest {
        s += f(*v);
    }
    s
}

/// `Σ_j |x_j|` ([`sum8`]).
#[inline]
pub(crate) fn sum_abs(x: &[f64]) -> f64 {
    sum8(x, f64::abs)
}

/// `Σ_j x_j` of nonnegative data (or NaN / +inf) ([`sum8`]).
#[inline]
fn sum_nonneg(x: &[f64]) -> f64 {
    sum8(x, |v| v)
}

/// f64 path: `colsum[c] >= Σ_j s_e[j, c]` (exact), for every column `c` of the input
/// model (module doc: five column sums per column, one inflation). `g_own = γ'` and
/// `tau = τ` as in [`super::model::dense`]. If `abs_c1` is given (and the input is not
/// constant), it also receives `>= Σ_j |c1_1[j, c]|` per column (`n - 1` additions,
/// `Inflate::new(n)`), for the sparse degree-2 radius (`sparse`). With a `pattern`
/// (`k = 1`), the degree-2 sums run over its nonzero entries only (the others are `±0`).
pub(crate) fn colsum_bounds(
    a: &Model,
    amax: &[f64],
    g_own: f64,
    tau: f64,
    colsum: &mut DMatrix<f64>,
    mut abs_c1: Option<&mut Vec<f64>>,
    pattern: Option<&Pattern>,
) {
    let n = a.c0.nrows();
    let k = a.k;
    let infl = Inflate::new(n + k * k + k + 8);
    let infl_n = Inflate::new(n);
    let w_e = 1.0 + tau;
    let w_c0 = g_own + tau;
    for (c, out) in colsum.as_mut_slice().iter_mut().enumerate() {
        let col = c * n..(c + 1) * n;
        // The constant input model's `e` is all zeros (`EnclosureWorkspace::input_model`).
        let e = if a.constant {
            0.0
        } else {
            sum_nonneg(&a.e.as_slice()[col.clone()])
        };
        let c0 = sum_abs(&a.c0.as_slice()[col.clone()]);
        let mut tot = w_e * e + w_c0 * c0;
        if !a.constant {
            for i in 0..k {
                let s1 = sum_abs(&a.c1[i].as_slice()[col.clone()]);
                if let (0, Some(h)) = (i, abs_c1.as_mut()) {
                    h.push(infl_n.apply(s1));
                }
                tot += (w_c0 * amax[i]) * s1;
            }
            for ij in 0..k * k {
                let q = match pattern {
                    // `k = 1` with a sparse degree-2 part: the other entries are ±0.
                    Some(p) => p.abs_sum_k1(c, a, n),
                    None => {
                        sum_abs(&a.qm[ij].as_slice()[col.clone()])
                            + sum_nonneg(&a.qr[ij].as_slice()[col.clone()])
                    }
                };
                tot += (tau * (amax[ij / k] * amax[ij % k])) * q;
            }
        }
        *out = infl.apply(tot);
    }
}

/// `k = 1`, non-constant input: `stacked_s` column `c` is
/// `[qr + γ|qm| ; |qm| + qr + (γ/ᾱ)|a1|]` (the operations of [`fill_stacked`], in a
/// branch-free loop that vectorises).
pub(crate) fn fill_stacked_k1(a: &Model, amax: f64, g2: f64, stacked_s: &mut DMatrix<f64>) {
    let n = a.c0.nrows();
    let gi = up_ops(g2 / amax, 1);
    let (i2, i4) = (Inflate::new(2), Inflate::new(4));
    let (qm_a, qr_a, c1_a) = (a.qm[0].as_slice(), a.qr[0].as_slice(), a.c1[0].as_slice());
    for (((s_c, qm), qr), c1) in stacked_s
        .as_mut_slice()
        .chunks_exact_mut(2 * n)
        .zip(qm_a.chunks_exact(n))
        .zip(qr_a.chunks_exact(n))
        .zip(c1_a.chunks_exact(n))
    {
        let (top, bottom) = s_c.split_at_mut(n);
        // Equal-length slices and an index loop: the bounds checks vanish and it vectorises.
        let (top, bottom, qm, qr, c1) = (
            &mut top[..n],
            &mut bottom[..n],
            &qm[..n],
            &qr[..n],
            &c1[..n],
        );
        for j in 0..n {
            let (aqm, qr) = (qm[j].abs(), qr[j]);
            top[j] = i2.apply(qr + g2 * aqm);
            bottom[j] = i4.apply(aqm + qr + gi * c1[j].abs());
        }
    }
}

/// The constants of the degree-0 operand `s_e` of [`super::model::dense`].
#[derive(Clone, Copy)]
pub(crate) struct SeConsts {
    pub(crate) g_own: f64,
    pub(crate) tau: f64,
    pub(crate) infl_e: Inflate,
    pub(crate) infl_mag: Inflate,
}

impl SeConsts {
    /// `s_e` at entry `idx` of the input (any `k`, constant or not).
    #[inline]
    pub(crate) fn entry(&self, a: &Model, idx: usize, amax: &[f64]) -> f64 {
        let a_mag = a.magnitude_at(idx, amax, self.infl_mag);
        let mut own = a.c0.as_slice()[idx].abs();
        if !a.constant {
            for i in 0..a.k {
                own += a.c1[i].as_slice()[idx].abs() * amax[i];
            }
        }
        let v = a.e.as_slice()[idx] + self.g_own * own + self.tau * a_mag;
        self.infl_e.apply(v)
    }

    /// `s_e` of a `k = 1` entry (the same operations as [`SeConsts::entry`]) and the
    /// two halves `[qr + γ|qm| ; |qm| + qr + (γ/ᾱ)|a1|]` of the degree-2 operand (the
    /// same operations as [`fill_stacked`]).
    #[inline(always)]
    fn entry_k1(&self, x: [f64; 5], q: &StackConsts) -> (f64, f64, f64) {
        let [c0, c1, qm, qr, ea] = x;
        let (ac0, ac1, aqm) = (c0.abs(), c1.abs(), qm.abs());
        let m = ac0 + ea + ac1 * q.a + (aqm + qr) * q.aa;
        let a_mag = self.infl_mag.apply(m);
        let own = ac0 + ac1 * q.a;
        let s = self.infl_e.apply(ea + self.g_own * own + self.tau * a_mag);
        let top = q.i2.apply(qr + q.g2 * aqm);
        let bottom = q.i4.apply(aqm + qr + q.gi * ac1);
        (s, top, bottom)
    }
}

/// The constants of the degree-2 operand `stacked_s` of [`super::model::dense`] for one `(i, j)`.
#[derive(Clone, Copy)]
struct StackConsts {
    /// `γ_{2n+2}`.
    g2: f64,
    /// `up_ops(γ_{2n+2} / ᾱ_i, 1)`.
    gi: f64,
    i2: Inflate,
    i4: Inflate,
    /// `ᾱ` and `ᾱ²` (`k = 1`).
    a: f64,
    aa: f64,
}

impl StackConsts {
    fn new(g2: f64, amax_i: f64) -> StackConsts {
        StackConsts {
            g2,
            gi: up_ops(g2 / amax_i, 1),
            i2: Inflate::new(2),
            i4: Inflate::new(4),
            a: amax_i,
            aa: amax_i * amax_i,
        }
    }
}

/// The five coefficient slices of a `k = 1` model.
fn slices_k1(a: &Model) -> [&[f64]; 5] {
    [
        a.c0.as_slice(),
        a.c1[0].as_slice(),
        a.qm[0].as_slice(),
        a.qr[0].as_slice(),
        a.e.as_slice(),
    ]
}

/// `k = 1`, non-constant input, f32: `s_e` as a matrix (for the GEMM with `W_max`) and
/// `stacked_s`, in one pass over the input.
pub(crate) fn se_matrix_k1(
    a: &Model,
    amax: f64,
    se: &SeConsts,
    g2: f64,
    s_e: &mut DMatrix<f64>,
    stacked_s: &mut DMatrix<f64>,
) {
    let n = a.c0.nrows();
    let q = StackConsts::new(g2, amax);
    let [c0, c1, qm, qr, e] = slices_k1(a);
    for (c, (s_col, s_c)) in s_e
        .as_mut_slice()
        .chunks_exact_mut(n)
        .zip(stacked_s.as_mut_slice().chunks_exact_mut(2 * n))
        .enumerate()
    {
        let (top, bottom) = s_c.split_at_mut(n);
        let base = c * n;
        for j in 0..n {
            let idx = base + j;
            let (s, t, b) = se.entry_k1([c0[idx], c1[idx], qm[idx], qr[idx], e[idx]], &q);
            s_col[j] = s;
            top[j] = t;
            bottom[j] = b;
        }
    }
}

/// Column `c` of `stacked_s` is `[qr + γ|qm| ; |qm| + qr + (γ/ᾱ_i)|a1_j|]` (2n rows)
/// for the coefficient `ij` of the input.
pub(crate) fn fill_stacked(
    a: &Model,
    ij: usize,
    j: usize,
    gi: f64,
    g2: f64,
    n: usize,
    stacked_s: &mut DMatrix<f64>,
) {
    let (i2, i4) = (Inflate::new(2), Inflate::new(4));
    let (qm_a, qr_a, c1_a) = (a.qm[ij].as_slice(), a.qr[ij].as_slice(), a.c1[j].as_slice());
    for (c, s_c) in stacked_s.as_mut_slice().chunks_exact_mut(2 * n).enumerate() {
        let range = c * n..(c + 1) * n;
        let (top, bottom) = s_c.split_at_mut(n);
        for ((((t, b), qm), qr), c1) in top
            .iter_mut()
            .zip(bottom.iter_mut())
            .zip(&qm_a[range.clone()])
            .zip(&qr_a[range.clone()])
            .zip(&c1_a[range])
        {
            let (qm, qr) = (qm.abs(), *qr);
            *t = i2.apply(qr + g2 * qm);
            *b = i4.apply(qm + qr + gi * c1.abs());
        }
    }
}
