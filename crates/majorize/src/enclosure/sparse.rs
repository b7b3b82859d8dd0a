//! Sparse degree-2 inputs of the dense rule ([`super::model::dense`], one direction).
//!
//! After a ReLU, an entry's degree-2 coefficients `qm`, `qr` are nonzero only where the
//! kink may lie inside the entry's range over the box (the piecewise-linear rule of
//! `scalar1`); on the first hidden layer, whose input is the constant data, every other
//! entry carries exact zeros. At steady state on digits that is about 1.5% of the
//! entries. The dense rule's two degree-2 products that read `qm`, `qr`,
//!
//! ```text
//! mid:    W qm                                  (d_out x n times n x N)
//! radius: |W| (qr + γ|qm|) + VA (|qm| + qr + (γ/ᾱ)|a1|)
//! ```
//!
//! are then formed from the nonzero entries only ([`Pattern`]): an exact zero contributes
//! an exact zero to a product of finite numbers, so skipping it changes no term, and a
//! sum of `m <= n` of the `n` terms obeys the same error bound `γ_m <= γ_n` in any order
//! (Higham, Thm 3.5), which the rule charges already. NaN and infinities are nonzero and
//! are kept, so they propagate as in the GEMM. The one dense term of the radius,
//! `(γ/ᾱ) VA |a1|` (the enclosure's own rounding of `V a1`, of order `γ_{2n+2}`), is
//! bounded by Hölder instead of a product:
//!
//! ```text
//! Σ_j VA_rj (γ/ᾱ) |a1_jc|  <=  (max_j VA_rj) · (γ/ᾱ) · Σ_j |a1_jc|,
//! ```
//!
//! a few times looser on a rounding-level term (it enters the bound multiplied by `ᾱ²`),
//! like the degree-0 Hölder bound of the f64 path. Every operation of the radius acts on
//! nonnegative data; a datum passes through at most `2n + 2` of them (one product and at
//! most `2m - 1` additions for the sparse terms, two products and one addition for the
//! Hölder term), so `Inflate::new(2n + 3)` of the computed sum bounds the exact radius.
//!
//! When more than an eighth of the entries are nonzero (a smooth activation, a deeper
//! layer whose input already carries `V a1`), the scan stops early and the rule keeps its
//! GEMMs.

#[cfg(test)]
use std::cell::Cell;

use nalgebra::DMatrix;

use super::degree0::sum_abs;
use super::fp::Inflate;
use super::model::Model;

/// Test-only switch of the sparse path (mutation and comparison tests).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SparseKnob {
    /// The sound rule: sparse when the scan allows it.
    Auto,
    /// Never sparse (the GEMM path).
    Off,
    /// Mutation: the sparse radius ignores the input's `qr` (a dropped term).
    DropQr,
}

#[cfg(test)]
thread_local! {
    static KNOB: Cell<SparseKnob> = const { Cell::new(SparseKnob::Auto) };
    static TAKEN: Cell<usize> = const { Cell::new(0) };
}

/// Sets this thread's sparse knob (tests only).
#[cfg(test)]
pub(crate) fn set_sparse_knob(k: SparseKnob) {
    KNOB.with(|c| c.set(k));
}

/// How many dense layers took the sparse path on this thread so far (tests only).
#[cfg(test)]
pub(crate) fn sparse_taken() -> usize {
    TAKEN.with(|c| c.get())
}

/// `false` if the tests switched the sparse path off.
#[inline(always)]
pub(crate) fn sparse_allowed() -> bool {
    #[cfg(test)]
    {
        KNOB.with(|c| c.get()) != SparseKnob::Off
    }
    #[cfg(not(test))]
    {
        true
    }
}

/// Counts a layer that took the sparse path (tests only; nothing otherwise).
#[inline(always)]
pub(crate) fn note_taken() {
    #[cfg(test)]
    TAKEN.with(|c| c.set(c.get() + 1));
}

/// Positions of the nonzero degree-2 entries of a `k = 1` model, column by column
/// (compressed sparse columns: the rows of column `c` are `idx[ptr[c]..ptr[c + 1]]`).
#[derive(Debug, Default)]
pub(crate) struct Pattern {
    ptr: Vec<usize>,
    idx: Vec<u32>,
}

impl Pattern {
    /// Scans `qm[0]`, `qr[0]` of `a` (`k = 1`, not constant) for entries where either is
    /// not `+0.0`/`-0.0` (NaN counts as nonzero). Returns `true` and keeps the positions if
    /// at most an eighth of the entries are nonzero; returns `false` as soon as more are.
    pub(crate) fn scan_k1(&mut self, a: &Model) -> bool {
        let n = a.c0.nrows();
        let limit = a.c0.len() / 8;
        self.ptr.clear();
        self.idx.clear();
        self.ptr.push(0);
        let (qm, qr) = (a.qm[0].as_slice(), a.qr[0].as_slice());
        for (qm_c, qr_c) in qm.chunks_exact(n).zip(qr.chunks_exact(n)) {
            // Chunks of eight first, tested with one OR of the bits without the sign
            // (vectorises; nonzero iff some entry is not ±0, NaN included), then the
            // entries of the chunks that have any.
            let mut start = 0;
            for (m8, r8) in qm_c.chunks_exact(8).zip(qr_c.chunks_exact(8)) {
                let mut bits = 0u64;
                for l in 0..8 {
                    bits |= (m8[l].to_bits() | r8[l].to_bits()) << 1;
                }
                if bits != 0 {
                    push_nonzero(&mut self.idx, start, m8, r8);
                }
                start += 8;
            }
            push_nonzero(&mut self.idx, start, &qm_c[start..], &qr_c[start..]);
            if self.idx.len() > limit {
                return false;
            }
            self.ptr.push(self.idx.len());
        }
        true
    }

    /// [`Pattern::scan_k1`] when the caller knows that every entry of `qm[0]`, `qr[0]`
    /// outside `list` (increasing indices into the `n x N` buffers) is `±0`: the in-place
    /// ReLU of the first layer's output lists its kink entries (`relu1`), so the two
    /// buffers need not be read elsewhere. The same pattern as the scan's.
    pub(crate) fn fill_from_list_k1(&mut self, list: &[usize], a: &Model) -> bool {
        let (n, cols) = a.c0.shape();
        if list.len() > a.c0.len() / 8 {
            return false;
        }
        self.ptr.clear();
        self.idx.clear();
        self.ptr.push(0);
        let (qm, qr) = (a.qm[0].as_slice(), a.qr[0].as_slice());
        let mut rest = list;
        for c in 0..cols {
            let end = (c + 1) * n;
            let here = rest.iter().take_while(|i| **i < end).count();
            for &i in &rest[..here] {
                if qm[i] != 0.0 || qr[i] != 0.0 {
                    self.idx.push((i - c * n) as u32);
                }
            }
            rest = &rest[here..];
            self.ptr.push(self.idx.len());
        }
        debug_assert!({
            let mut scanned = Pattern::default();
            !scanned.scan_k1(a) || (scanned.ptr == self.ptr && scanned.idx == self.idx)
        });
        true
    }

    /// `Σ_j |qm_jc| + Σ_j qr_jc` of a `k = 1` model over the nonzero rows of column `c`
    /// (`n` rows per column): the full column sums, since the other entries are `±0`.
    pub(crate) fn abs_sum_k1(&self, c: usize, a: &Model, n: usize) -> f64 {
        let (qm, qr) = (a.qm[0].as_slice(), a.qr[0].as_slice());
        let (mut sm, mut sr) = (0.0, 0.0);
        for &j in self.col(c) {
            sm += qm[c * n + j as usize].abs();
            sr += qr[c * n + j as usize];
        }
        sm + sr
    }

    /// The nonzero rows of column `c`.
    #[inline]
    fn col(&self, c: usize) -> &[u32] {
        &self.idx[self.ptr[c]..self.ptr[c + 1]]
    }
}

/// Appends `start + j` for every `j` where `m[j]` or `r[j]` is not `±0` (NaN included).
#[inline]
fn push_nonzero(idx: &mut Vec<u32>, start: usize, m: &[f64], r: &[f64]) {
    for (j, (m, r)) in m.iter().zip(r).enumerate() {
        if *m != 0.0 || *r != 0.0 {
            idx.push((start + j) as u32);
        }
    }
}

/// `out = W q` from the nonzero entries of `q` (every entry of `out` is written).
pub(crate) fn w_times_q(w: &DMatrix<f64>, q: &DMatrix<f64>, pat: &Pattern, out: &mut DMatrix<f64>) {
    let (d, n) = w.shape();
    let (ws, qs) = (w.as_slice(), q.as_slice());
    for (c, o) in out.as_mut_slice().chunks_exact_mut(d).enumerate() {
        o.fill(0.0);
        let q_c = &qs[c * n..(c + 1) * n];
        for &j in pat.col(c) {
            let j = j as usize;
            let x = q_c[j];
            for (o_r, w_r) in o.iter_mut().zip(&ws[j * d..(j + 1) * d]) {
                *o_r += w_r * x;
            }
        }
    }
}

/// The operands of [`radius_k1`] that come from the layer.
pub(crate) struct RadiusOps<'a> {
    /// `|W|`, `d_out x n`.
    pub(crate) abs_w: &'a DMatrix<f64>,
    /// `VA = ᾱ|V|` (rounded up), `d_out x n`.
    pub(crate) va: &'a DMatrix<f64>,
    /// `max_j VA_rj` per row.
    pub(crate) va_rowmax: &'a [f64],
}

/// The degree-2 radius of the dense rule (module doc) from the nonzero entries of the
/// input's `qm`, `qr`, plus the Hölder bound of its dense rounding term: `g2 = γ`,
/// `gi >= γ/ᾱ`, `h[c] >= Σ_j |a1_jc|`. Writes every entry of `out`.
pub(crate) fn radius_k1(
    ops: &RadiusOps<'_>,
    a: &Model,
    pat: &Pattern,
    h: &[f64],
    (g2, gi): (f64, f64),
    out: &mut DMatrix<f64>,
) {
    let (d, n) = ops.abs_w.shape();
    let infl = Inflate::new(2 * n + 3);
    let (i1, i2) = (Inflate::new(1), Inflate::new(2));
    let (aw, va) = (ops.abs_w.as_slice(), ops.va.as_slice());
    let (qm, qr) = (a.qm[0].as_slice(), a.qr[0].as_slice());
    for (c, o) in out.as_mut_slice().chunks_exact_mut(d).enumerate() {
        o.fill(0.0);
        for &j in pat.col(c) {
            let j = j as usize;
            let (m, r) = (qm[c * n + j].abs(), qr[c * n + j]);
            #[cfg(test)]
            let r = if KNOB.with(|c| c.get()) == SparseKnob::DropQr {
                0.0
            } else {
                r
            };
            // Upper bounds of `qr + γ|qm|` and `|qm| + qr`.
            let top = i2.apply(r + g2 * m);
            let bottom = i1.apply(m + r);
            let (aw_j, va_j) = (&aw[j * d..(j + 1) * d], &va[j * d..(j + 1) * d]);
            for ((o_r, w), v) in o.iter_mut().zip(aw_j).zip(va_j) {
                *o_r += w * top + v * bottom;
            }
        }
        let gh = gi * h[c];
        for (o_r, vm) in o.iter_mut().zip(ops.va_rowmax) {
            *o_r = infl.apply(*o_r + vm * gh);
        }
    }
}

/// `h[c] >= Σ_j |x_jc|` for every column of `x` (`n - 1` additions of exact absolute
/// values, then `Inflate::new(n)`).
pub(crate) fn abs_colsums(x: &DMatrix<f64>, h: &mut Vec<f64>) {
    let n = x.nrows();
    let infl = Inflate::new(n);
    h.clear();
    h.extend(
        x.as_slice()
            .chunks_exact(n.max(1))
            .map(|col| infl.apply(sum_abs(col))),
    );
}
