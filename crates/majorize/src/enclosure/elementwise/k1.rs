//! The `k = 1` activation step of [`super`] on scalars (moved out of `elementwise.rs`
//! unchanged, session 10): the rule entry by entry with `scalar1`'s arithmetic, ReLU in
//! one fused, vectorisable pass per block, so the bounds are the general rule's bit for
//! bit (tests/fast.rs).

use nets::Activation;

use super::super::fp::Inflate;
use super::super::model::Model;
use super::super::scalar1::{Consts1, Entry1, Rule1, pwl_entry};

/// [`super::activation_in_place`] for one direction: the same rule entry by entry on scalars
/// ([`super::super::scalar1`], bit for bit the general rule's bounds); ReLU in one fused pass
/// per block ([`relu_block`]), each block first copied to the stack so that the pass
/// reads its input there and writes the model.
pub(super) fn activation_k1(act: Activation, z: &mut Model, amax: f64, u_t: f64) {
    let kc = Consts1::new(amax, u_t);
    let mut cols = Cols1::of(z);
    if act == Activation::Relu {
        let n = cols.c0.len();
        let mut buf = [[0.0f64; RELU_BLOCK]; 5];
        let mut start = 0;
        while start < n {
            let end = (start + RELU_BLOCK).min(n);
            let len = end - start;
            let [b0, b1, bm, br, be] = &mut buf;
            b0[..len].copy_from_slice(&cols.c0[start..end]);
            b1[..len].copy_from_slice(&cols.c1[start..end]);
            bm[..len].copy_from_slice(&cols.qm[start..end]);
            br[..len].copy_from_slice(&cols.qr[start..end]);
            be[..len].copy_from_slice(&cols.e[start..end]);
            let src = Src1 {
                c0: &b0[..len],
                c1: &b1[..len],
                qm: &bm[..len],
                qr: &br[..len],
                e: &be[..len],
            };
            relu_block(&src, &mut cols.range(start, end), &kc);
            start = end;
        }
        return;
    }
    k1_entries(act, None, &mut cols, &kc);
}

/// The `k = 1` step entry by entry (every activation but ReLU): each entry of `dst` from
/// the same entry of `src`, or of `dst` itself when `src` is `None` (in place). One loop
/// for both, so the rule is inlined once.
fn k1_entries(act: Activation, src: Option<&Src1<'_>>, dst: &mut Cols1<'_>, kc: &Consts1) {
    let rule = Rule1::of(act);
    for idx in 0..dst.c0.len() {
        let x = match src {
            Some(s) => s.load(idx),
            None => dst.load(idx),
        };
        dst.store(idx, rule.apply(x, kc));
    }
}

/// The `k = 1` step from `z` into `out` (same shape, every entry written).
pub(super) fn activation_k1_into(act: Activation, z: &Model, out: &mut Model, amax: f64, u_t: f64) {
    let kc = Consts1::new(amax, u_t);
    let src = Src1::of(z);
    let mut dst = Cols1::of(out);
    let n = src.c0.len();
    if act == Activation::Relu {
        let mut start = 0;
        while start < n {
            let end = (start + RELU_BLOCK).min(n);
            relu_block(&src.range(start, end), &mut dst.range(start, end), &kc);
            start = end;
        }
        return;
    }
    k1_entries(act, Some(&src), &mut dst, &kc);
}

/// Entries per block of [`relu_block`] (its kink flags live on the stack).
const RELU_BLOCK: usize = 256;

/// ReLU on one block of a `k = 1` model (at most [`RELU_BLOCK`] entries), from `src`
/// into `dst`, classification fused with the step. One branch-free (vectorisable) pass
/// computes each entry's spread `s = e + |c1| ᾱ + (|qm| + qr) ᾱ²` and its inflated bound
/// `S = Inflate(6)(s)` exactly as `Model::relu_classes` does (so the classes, and the
/// bounds, are the same bit for bit), copies an entry with `c0 - S > 0` (active on the
/// whole box: the identity), writes zeros for one with `c0 + S < 0` (inactive: exactly 0)
/// and flags the rest (the kink may be inside the range; NaN lands here too); if any
/// entry was flagged, a second loop applies the kink rule
/// ([`super::scalar1::pwl_entry`]) to those entries.
fn relu_block(src: &Src1<'_>, dst: &mut Cols1<'_>, kc: &Consts1) {
    let infl = Inflate::new(6);
    let a = kc.amax();
    let aa = a * a;
    let n = src.c0.len();
    let mut kink = [false; RELU_BLOCK];
    let kink = &mut kink[..n];
    let (c0, c1, qm, qr, e) = (
        &src.c0[..n],
        &src.c1[..n],
        &src.qm[..n],
        &src.qr[..n],
        &src.e[..n],
    );
    let (o0, o1, om, or, oe) = (
        &mut dst.c0[..n],
        &mut dst.c1[..n],
        &mut dst.qm[..n],
        &mut dst.qr[..n],
        &mut dst.e[..n],
    );
    let mut any = false;
    for i in 0..n {
        let (x0, x1, m, r, ee) = (c0[i], c1[i], qm[i], qr[i], e[i]);
        let spread = infl.apply(ee + x1.abs() * a + (m.abs() + r) * aa);
        let on = x0 - spread > 0.0;
        let off = x0 + spread < 0.0;
        let flag = !(on | off);
        kink[i] = flag;
        any |= flag;
        o0[i] = if off { 0.0 } else { x0 };
        o1[i] = if off { 0.0 } else { x1 };
        om[i] = if off { 0.0 } else { m };
        or[i] = if off { 0.0 } else { r };
        oe[i] = if off { 0.0 } else { ee };
    }
    if any {
        for (i, f) in kink.iter().enumerate() {
            if *f {
                dst.store(i, pwl_entry(0.0, 1.0, src.load(i), kc));
            }
        }
    }
}

/// The five coefficient columns of a `k = 1` model, read only.
struct Src1<'a> {
    c0: &'a [f64],
    c1: &'a [f64],
    qm: &'a [f64],
    qr: &'a [f64],
    e: &'a [f64],
}

impl<'a> Src1<'a> {
    fn of(z: &'a Model) -> Src1<'a> {
        Src1 {
            c0: z.c0.as_slice(),
            c1: z.c1[0].as_slice(),
            qm: z.qm[0].as_slice(),
            qr: z.qr[0].as_slice(),
            e: z.e.as_slice(),
        }
    }

    fn range(&self, start: usize, end: usize) -> Src1<'a> {
        Src1 {
            c0: &self.c0[start..end],
            c1: &self.c1[start..end],
            qm: &self.qm[start..end],
            qr: &self.qr[start..end],
            e: &self.e[start..end],
        }
    }

    #[inline(always)]
    fn load(&self, idx: usize) -> Entry1 {
        Entry1 {
            c0: self.c0[idx],
            c1: self.c1[idx],
            qm: self.qm[idx],
            qr: self.qr[idx],
            e: self.e[idx],
        }
    }
}

/// The five coefficient columns of a `k = 1` model, borrowed for writing.
pub(crate) struct Cols1<'a> {
    pub(crate) c0: &'a mut [f64],
    pub(crate) c1: &'a mut [f64],
    pub(crate) qm: &'a mut [f64],
    pub(crate) qr: &'a mut [f64],
    pub(crate) e: &'a mut [f64],
}

impl<'a> Cols1<'a> {
    /// The columns of `z` (`k = 1`).
    pub(crate) fn of(z: &'a mut Model) -> Cols1<'a> {
        let Model {
            c0, c1, qm, qr, e, ..
        } = z;
        Cols1 {
            c0: c0.as_mut_slice(),
            c1: c1[0].as_mut_slice(),
            qm: qm[0].as_mut_slice(),
            qr: qr[0].as_mut_slice(),
            e: e.as_mut_slice(),
        }
    }

    fn range(&mut self, start: usize, end: usize) -> Cols1<'_> {
        Cols1 {
            c0: &mut self.c0[start..end],
            c1: &mut self.c1[start..end],
            qm: &mut self.qm[start..end],
            qr: &mut self.qr[start..end],
            e: &mut self.e[start..end],
        }
    }

    #[inline(always)]
    fn load(&self, idx: usize) -> Entry1 {
        Entry1 {
            c0: self.c0[idx],
            c1: self.c1[idx],
            qm: self.qm[idx],
            qr: self.qr[idx],
            e: self.e[idx],
        }
    }

    #[inline(always)]
    fn store(&mut self, idx: usize, r: Entry1) {
        self.c0[idx] = r.c0;
        self.c1[idx] = r.c1;
        self.qm[idx] = r.qm;
        self.qr[idx] = r.qr;
        self.e[idx] = r.e;
    }
}
