//! ReLU with one direction (`k = 1`) in place on a model whose degree-2 buffers are all
//! `+0.0`: the first dense layer's output, computed on the constant input model, whose
//! `qm`/`qr` are buffers of the workspace's zero pool (`EnclosureWorkspace::zeros`).
//!
//! The general `k = 1` ReLU ([`super::elementwise`]'s `relu_block`) reads the five
//! coefficient arrays of its input and writes five new ones. Here the input's degree-2
//! coefficients are known, so the step reads and writes only `c0`, `c1` and `e`, in
//! place, and writes the degree-2 buffers only at the entries near the kink (about 1.5%
//! of them on digits-mlp). It records those entries in the workspace's list
//! (`EnclosureWorkspace::kinks`), so that the buffers are zeroed again there and go
//! back to the zero pool when the model is released (`give_model_kink_q`).
//!
//! **Same bounds, bit for bit.** The classification is `relu_block`'s with
//! `qm = qr = +0`: its spread `e + |c1| ᾱ + (|qm| + qr) ᾱ²` adds `(+0 + +0) ᾱ² = +0`
//! (for a finite ᾱ²; otherwise this path declines) to `s = e + |c1| ᾱ`, which is never
//! `-0` (`|c1| ᾱ` is `+0`, positive, `+inf` or NaN), so the sum is `s` itself and the
//! classes are the same. Active entries keep their values, inactive ones become `+0`,
//! and a kink entry gets [`pwl_entry`] of the same `(c0, c1, +0, +0, e)` that
//! `relu_block` would read. The test `relu_zero_q_matches_the_general_step`
//! (tests/fast.rs) checks equality with `elementwise::activation` on random and
//! adversarial entries, and the golden dump (tests/golden.rs) end to end.

use nets::Activation;

use super::elementwise::Cols1 as Cols;
use super::fp::{Inflate, fast_paths, widest};
use super::model::Model;
use super::scalar1::{Consts1, Entry1, pwl_entry};

/// Entries per block: the kink flags of a block live on the stack.
const BLOCK: usize = 256;

/// ReLU in place on `z`, whose degree-2 buffers must be all `+0.0` (module doc): `c0`,
/// `c1` and `e` are overwritten with the step's result and `qm`/`qr` only at the kink
/// entries, whose indices are written to `kinks` (cleared first, increasing). Returns
/// `false`, with `z` unchanged, unless the activation is ReLU, `k = 1`, the fast paths
/// are on and ᾱ² is finite; the caller then takes the general step
/// (`elementwise::activation`).
///
/// On x86-64 the pass runs with the widest vector extension the CPU has
/// ([`widest`]). The arithmetic is the same (Rust never contracts a multiply and an add into
/// an FMA), so the results are the same bits on every path.
pub(crate) fn relu_zero_q_in_place(
    act: Activation,
    z: &mut Model,
    amax: &[f64],
    u_t: f64,
    kinks: &mut Vec<usize>,
) -> bool {
    kinks.clear();
    if act != Activation::Relu || z.k != 1 || !fast_paths() {
        return false;
    }
    let a = amax[0];
    if !(a * a).is_finite() {
        return false;
    }
    let mut cols = Cols::of(z);
    debug_assert!(
        cols.qm
            .iter()
            .chain(cols.qr.iter())
            .all(|x| x.to_bits() == 0)
    );
    widest(
        #[inline(always)]
        || relu_cols(&mut cols, a, u_t, kinks),
    );
    true
}

/// The step on the columns, block by block: the branch-free pass
/// ([`classify_and_zero`]), then the kink rule on the flagged entries.
#[inline(always)]
fn relu_cols(cols: &mut Cols<'_>, a: f64, u_t: f64, kinks: &mut Vec<usize>) {
    let kc = Consts1::new(a, u_t);
    let infl = Inflate::new(6);
    let n = cols.c0.len();
    let mut flags = [0u8; BLOCK];
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let fl = &mut flags[..end - start];
        let any = classify_and_zero(
            &mut cols.c0[start..end],
            &mut cols.c1[start..end],
            &mut cols.e[start..end],
            fl,
            a,
            infl,
        );
        if any {
            // Most groups of 8 entries have no kink: one word test per group, then the
            // flagged bytes of a word by their bit positions.
            for (g, chunk) in fl.chunks(8).enumerate() {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                let mut bits = u64::from_le_bytes(word);
                while bits != 0 {
                    let j = (bits.trailing_zeros() / 8) as usize;
                    bits &= !(0xffu64 << (8 * j));
                    let idx = start + 8 * g + j;
                    let x = Entry1 {
                        c0: cols.c0[idx],
                        c1: cols.c1[idx],
                        qm: 0.0,
                        qr: 0.0,
                        e: cols.e[idx],
                    };
                    let r = pwl_entry(0.0, 1.0, x, &kc);
                    cols.c0[idx] = r.c0;
                    cols.c1[idx] = r.c1;
                    cols.qm[idx] = r.qm;
                    cols.qr[idx] = r.qr;
                    cols.e[idx] = r.e;
                    kinks.push(idx);
                }
            }
        }
        start = end;
    }
}

/// The branch-free pass over one block: each entry's spread `S = Inflate(6)(e + |c1| ᾱ)`
/// (module doc); an entry with `c0 + S < 0` is inactive on the whole box and becomes
/// `+0`, one with `c0 - S > 0` is active and keeps its values, the others (the kink may
/// be inside the range; NaN too) are flagged with 1 in `flags`. Returns whether any was.
#[inline(always)]
fn classify_and_zero(
    c0: &mut [f64],
    c1: &mut [f64],
    e: &mut [f64],
    flags: &mut [u8],
    a: f64,
    infl: Inflate,
) -> bool {
    let n = c0.len();
    let (c1, e, flags) = (&mut c1[..n], &mut e[..n], &mut flags[..n]);
    let mut any = 0u8;
    for i in 0..n {
        let (x0, x1, ee) = (c0[i], c1[i], e[i]);
        let spread = infl.apply(ee + x1.abs() * a);
        let on = x0 - spread > 0.0;
        let off = x0 + spread < 0.0;
        let flag = u8::from(!(on | off));
        flags[i] = flag;
        any |= flag;
        c0[i] = if off { 0.0 } else { x0 };
        c1[i] = if off { 0.0 } else { x1 };
        e[i] = if off { 0.0 } else { ee };
    }
    any != 0
}

/// Every code generation of the step this CPU can run (baseline, then AVX2 and AVX-512F
/// when present) on a copy of `z` each, with the kink lists: the tests compare them all
/// with the general step, whichever one the dispatch picks on the machine at hand.
#[cfg(test)]
pub(crate) fn all_variants(z: &Model, a: f64, u_t: f64) -> Vec<(Model, Vec<usize>)> {
    autodiff::simd::each_path(
        #[inline(always)]
        || {
            let mut m = z.clone();
            let mut kinks = Vec::new();
            let mut cols = Cols::of(&mut m);
            relu_cols(&mut cols, a, u_t, &mut kinks);
            (m, kinks)
        },
    )
}
