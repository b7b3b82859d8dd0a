//! Elementwise steps on Taylor models: the activations (smooth: 1-D rules of
//! [`super::activation`]; piecewise linear: exact bounds from the kink) and the
//! per-element helpers the losses share.
//!
//! For one entry with model `y = c0 + δ`, `δ = lin + quad + ρ`, `lin = Σ c1_i α_i`,
//! `quad = αᵀ[Q]α`, `|ρ| <= e`, a 1-D enclosure `h(c0 + δ) ∈ h(c0) + s δ + [r] δ²` becomes
//! a model again by
//!
//! - `s δ = Σ (s c1_i) α_i + αᵀ(s [Q])α + s ρ` (with `s` an interval around the exact
//!   derivative, so its rounding is covered);
//! - `δ² = (lin + quad)² + 2ρ(lin + quad) + ρ²` and `(lin + quad)² = lin² + quad·t` with
//!   `t = 2 lin + quad` enclosed over the box, so
//!   `δ² ∈ αᵀ(c1 c1ᵀ + [Q][t])α + [-(2e|δ0|max + e²), 2e|δ0|max + e²]`;
//! - the interval `[r]` multiplies those coefficients (it may depend on α but stays in
//!   `[r]` over the box).
//!
//! **ReLU / leaky ReLU** (slopes `s_l` left of 0, `s_r` right): if the range of `y` lies
//! on one side of 0, `h` is linear there (remainder 0). If the kink is inside and
//! `c0 > 0`, take `s = s_r`; then `h(c0+d) - h(c0) - s_r d = (s_l - s_r) min(c0 + d, 0)`
//! and `min(c0 + d, 0)/d² ∈ [f_min, 0]`, where `f(d) = (c0 + d)/d²` on `d <= -c0` has its
//! minimum `-1/(4 c0)` at `d = -2 c0` (or at the lower end `d_lo` if `d_lo > -2c0`).
//! Symmetrically for `c0 < 0` with `s = s_l`: `max(c0 + d, 0)/d² ∈ [0, 1/(4|c0|)]`.
//! **At an exact kink** (`c0 = 0`, or `|c0| <= e` which is absorbed into `e`): when every
//! `c1_i >= 0` take `s = s_r` (the right derivative along α >= 0) and use
//! `min(δ, 0) ∈ [Σ α_iα_j min(0, Q_lo,ij) - e, 0]`; when every `c1_i <= 0` take `s = s_l`
//! and `max(δ, 0) ∈ [0, Σ α_iα_j max(0, Q_hi,ij) + e]`; with mixed signs (k > 1 only),
//! `s = s_r` and `min(δ, 0) ∈ [min(δ_lo, 0), 0]` goes to the degree-0 term (sound, not
//! tangent). So the degree-1 coefficient at an exact kink is the one-sided slope along
//! the directions, which can differ from the autodiff convention `relu'(0) = 0`.
//!
//! **Cost.** Every rule is entrywise, so the step runs in place on the dense layer's
//! output model ([`activation_in_place`]): no output buffer, and ReLU leaves the entries
//! that are active on the whole box untouched, zeroes the inactive ones and applies the
//! rule only near the kink. With `k = 1` the classification and the zeroing are one
//! branch-free, vectorisable pass per block ([`relu_block`]) with `Model::relu_classes`'s arithmetic,
//! so the bounds are those of the general path bit for bit (tests/fast.rs).

use nets::Activation;

use super::activation::{Smooth, driver_rel, smooth_enclosure};
use super::fp::{Iv, eta, fmax, fmin, gamma, up, up_ops};
use super::model::Model;
use super::workspace::EnclosureWorkspace;

mod k1;
pub(crate) use k1::Cols1;
use k1::{activation_k1, activation_k1_into};

/// One entry of a model, gathered for elementwise work (buffers reused across entries).
#[derive(Clone, Debug, Default)]
pub(crate) struct Elem {
    pub(crate) c0: f64,
    pub(crate) c1: Vec<f64>,
    pub(crate) q: Vec<Iv>,
    pub(crate) e: f64,
}

impl Elem {
    pub(crate) fn with_k(k: usize) -> Elem {
        Elem {
            c0: 0.0,
            c1: vec![0.0; k],
            q: vec![Iv::ZERO; k * k],
            e: 0.0,
        }
    }

    pub(crate) fn load(&mut self, m: &Model, idx: usize) {
        let k = m.k;
        self.c0 = m.c0.as_slice()[idx];
        self.e = m.e.as_slice()[idx];
        for i in 0..k {
            self.c1[i] = m.c1[i].as_slice()[idx];
        }
        for ij in 0..k * k {
            self.q[ij] = Iv::mid_rad(m.qm[ij].as_slice()[idx], m.qr[ij].as_slice()[idx]);
        }
    }
}

/// Ranges over the box of `lin`, `quad`, `δ0 = lin + quad` and `δ = δ0 ± e`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ranges {
    pub(crate) lin: Iv,
    pub(crate) quad: Iv,
    pub(crate) d0: Iv,
    pub(crate) d: Iv,
}

/// `[0, ᾱ_i]` and `[0, ᾱ_i ᾱ_j]` (upper ends rounded up), shared by every entry.
#[derive(Clone, Debug)]
pub(crate) struct BoxIv {
    pub(crate) lin: Vec<Iv>,
    pub(crate) quad: Vec<Iv>,
}

impl BoxIv {
    pub(crate) fn new(amax: &[f64]) -> BoxIv {
        let k = amax.len();
        let lin = amax.iter().map(|&a| Iv::new(0.0, a)).collect();
        let mut quad = Vec::with_capacity(k * k);
        for i in 0..k {
            for j in 0..k {
                quad.push(Iv::new(0.0, up(amax[i] * amax[j])));
            }
        }
        BoxIv { lin, quad }
    }
}

pub(crate) fn ranges(el: &Elem, bx: &BoxIv) -> Ranges {
    // The box's lower ends are `+0.0` ([`BoxIv::new`]); written here as constants, the
    // endpoint products with them fold away (`pmul(x, 0) = 0` for every `x`), so the
    // values are those of the general products bit for bit.
    let mut lin = Iv::ZERO;
    for (c, a) in el.c1.iter().zip(&bx.lin) {
        lin = lin.add(Iv::new(0.0, a.hi).scale(*c));
    }
    let mut quad = Iv::ZERO;
    for (q, a) in el.q.iter().zip(&bx.quad) {
        quad = quad.add(q.mul(Iv::new(0.0, a.hi)));
    }
    let d0 = lin.add(quad);
    let d = d0.add(Iv::new(-el.e, el.e));
    Ranges { lin, quad, d0, d }
}

/// Adds `r · (c1 c1ᵀ + [Q][t])` to `out` and returns the degree-0 bound
/// `|r|max (2 e |δ0|max + e²)` of `r·δ²` (module doc).
pub(crate) fn add_square(el: &Elem, rg: &Ranges, r: Iv, out: &mut [Iv]) -> f64 {
    let k = el.c1.len();
    let t = rg.lin.scale(2.0).add(rg.quad);
    for i in 0..k {
        for j in 0..k {
            let ij = i * k + j;
            // `point.scale(x)` is `point.mul(point(x))` bit for bit (`Iv::scale`).
            let coef = Iv::point(el.c1[i]).scale(el.c1[j]).add(el.q[ij].mul(t));
            out[ij] = out[ij].add(r.mul(coef));
        }
    }
    let e = el.e;
    if e == 0.0 {
        return 0.0;
    }
    up_ops(r.mag() * (2.0 * e * rg.d0.mag() + e * e), 6)
}

/// Output accumulator for one entry: degree-0 interval, degree-1 intervals, degree-2
/// intervals and a nonnegative degree-0 radius.
#[derive(Clone, Debug)]
pub(crate) struct Acc {
    pub(crate) c0: Iv,
    pub(crate) c1: Vec<Iv>,
    pub(crate) q: Vec<Iv>,
    pub(crate) e: f64,
}

impl Acc {
    pub(crate) fn with_k(k: usize) -> Acc {
        Acc {
            c0: Iv::ZERO,
            c1: vec![Iv::ZERO; k],
            q: vec![Iv::ZERO; k * k],
            e: 0.0,
        }
    }
    pub(crate) fn clear(&mut self) {
        self.c0 = Iv::ZERO;
        self.c1.iter_mut().for_each(|x| *x = Iv::ZERO);
        self.q.iter_mut().for_each(|x| *x = Iv::ZERO);
        self.e = 0.0;
    }

    /// Adds `s · δ` for an interval slope `s` (degree 1, 2 and the ρ part).
    pub(crate) fn add_linear(&mut self, el: &Elem, s: Iv) {
        for (o, c) in self.c1.iter_mut().zip(&el.c1) {
            *o = o.add(s.scale(*c));
        }
        for (o, q) in self.q.iter_mut().zip(&el.q) {
            *o = o.add(s.mul(*q));
        }
        self.e = up(self.e + up(s.mag() * el.e));
    }

    /// Adds a nonnegative degree-0 radius.
    pub(crate) fn add_e(&mut self, x: f64) {
        self.e = up(self.e + x);
    }

    /// Writes the entry into `m` at `idx`: midpoints become the point coefficients, the
    /// radii of degree 0 and 1 (times ᾱ) move to `e`.
    pub(crate) fn store(&self, m: &mut Model, idx: usize, amax: &[f64]) {
        let k = m.k;
        let (c0, r0) = self.c0.to_mid_rad();
        let mut e = up(self.e + r0);
        m.c0.as_mut_slice()[idx] = c0;
        for i in 0..k {
            let (c, r) = self.c1[i].to_mid_rad();
            m.c1[i].as_mut_slice()[idx] = c;
            e = up(e + up(r * amax[i]));
        }
        for ij in 0..k * k {
            let (c, r) = self.q[ij].to_mid_rad();
            m.qm[ij].as_mut_slice()[idx] = c;
            m.qr[ij].as_mut_slice()[idx] = r;
        }
        m.e.as_mut_slice()[idx] = e;
    }
}

/// Slopes `(s_l, s_r)` of a piecewise-linear activation with its kink at 0.
fn pwl_slopes(a: Activation) -> Option<(f64, f64)> {
    match a {
        Activation::Relu => Some((0.0, 1.0)),
        Activation::LeakyRelu { slope } => Some((slope, 1.0)),
        _ => None,
    }
}

/// Encloses `h(y)` for one entry into `acc` (cleared first). `u_t` is the driver's
/// roundoff: the driver's own error evaluating `h` is added to the degree-0 radius.
pub(crate) fn activation_entry(
    act: Activation,
    el: &mut Elem,
    bx: &BoxIv,
    u_t: f64,
    acc: &mut Acc,
) {
    acc.clear();
    if let Some(f) = Smooth::of(act) {
        let rg = ranges(el, bx);
        let y = Iv::point(el.c0).add(rg.d);
        let one = smooth_enclosure(f, el.c0, y.lo, y.hi);
        acc.c0 = one.h0;
        acc.add_linear(el, one.s);
        let d0 = add_square(el, &rg, one.r, &mut acc.q);
        acc.add_e(d0);
        let hmax = one.hmax;
        let drv = up(up(gamma(1, u_t) * driver_rel(f) * hmax) + 4.0 * eta(u_t));
        acc.add_e(drv);
        return;
    }
    let Some((sl, sr)) = pwl_slopes(act) else {
        // Identity (other activations are rejected before propagation).
        acc.c0 = Iv::point(el.c0);
        acc.add_linear(el, Iv::point(1.0));
        return;
    };
    // Near-kink: the uncertainty already straddles 0, expand at 0 instead.
    if el.c0 != 0.0 && el.c0.abs() <= el.e {
        el.e = up(el.e + el.c0.abs());
        el.c0 = 0.0;
    }
    let rg = ranges(el, bx);
    let y = Iv::point(el.c0).add(rg.d);
    let c0 = el.c0;
    let ymag = y.mag();
    // Driver: relu exact; leaky: |fl(T(slope) z) - slope z| <= 3 u_T |slope||z|.
    let drv = if sl == 0.0 {
        0.0
    } else {
        up(up(3.0 * gamma(1, u_t) * sl.abs() * ymag) + eta(u_t))
    };
    acc.add_e(drv);
    let h0 = |s: f64| Iv::point(s).mul(Iv::point(c0));
    if y.lo >= 0.0 {
        acc.c0 = h0(sr);
        acc.add_linear(el, Iv::point(sr));
    } else if y.hi <= 0.0 {
        acc.c0 = h0(sl);
        acc.add_linear(el, Iv::point(sl));
    } else if c0 > 0.0 {
        acc.c0 = h0(sr);
        acc.add_linear(el, Iv::point(sr));
        let dlo = rg.d.lo;
        let c = Iv::point(c0);
        let fm = if dlo <= -2.0 * c0 {
            Iv::point(-0.25).mul(recip_pos(c))
        } else {
            let dd = Iv::point(dlo);
            c.add(dd).mul(recip_pos(dd.mul(dd)))
        };
        let r = Iv::new(fmin(fm.lo, 0.0), 0.0).scale(sl - sr);
        let d0 = add_square(el, &rg, r, &mut acc.q);
        acc.add_e(d0);
    } else if c0 < 0.0 {
        acc.c0 = h0(sl);
        acc.add_linear(el, Iv::point(sl));
        let dhi = rg.d.hi;
        let c = Iv::point(-c0);
        let gmax = if dhi >= -2.0 * c0 {
            Iv::point(0.25).mul(recip_pos(c))
        } else {
            let dd = Iv::point(dhi);
            Iv::point(c0).add(dd).mul(recip_pos(dd.mul(dd)))
        };
        let r = Iv::new(0.0, fmax(gmax.hi, 0.0)).scale(sr - sl);
        let d0 = add_square(el, &rg, r, &mut acc.q);
        acc.add_e(d0);
    } else {
        // Exact kink.
        acc.c0 = Iv::ZERO;
        let all_pos = el.c1.iter().all(|&c| c >= 0.0);
        let all_neg = el.c1.iter().all(|&c| c <= 0.0);
        if all_pos {
            acc.add_linear(el, Iv::point(sr));
            for (o, q) in acc.q.iter_mut().zip(&el.q) {
                *o = o.add(Iv::new(fmin(q.lo, 0.0), 0.0).scale(sl - sr));
            }
            acc.add_e(up((sl - sr).abs() * el.e));
        } else if all_neg {
            acc.add_linear(el, Iv::point(sl));
            for (o, q) in acc.q.iter_mut().zip(&el.q) {
                *o = o.add(Iv::new(0.0, fmax(q.hi, 0.0)).scale(sr - sl));
            }
            acc.add_e(up((sr - sl).abs() * el.e));
        } else {
            acc.add_linear(el, Iv::point(sr));
            acc.add_e(up((sl - sr).abs() * fmax(-rg.d.lo, 0.0)));
        }
    }
}

fn recip_pos(x: Iv) -> Iv {
    if x.lo > 0.0 {
        Iv::new((1.0 / x.hi).next_down(), (1.0 / x.lo).next_up())
    } else {
        Iv::new(0.0, f64::INFINITY)
    }
}

/// Applies an activation to every entry of `z` in place: every rule is entrywise, so an
/// entry's enclosure overwrites its input (no output buffer, no copy of unchanged
/// entries). The identity leaves `z` as it is; any other activation clears `constant`.
///
/// ReLU classifies each entry by its spread over the box (`Model::relu_classes`): an
/// entry active on the whole box is the identity and is left untouched, an inactive one
/// is exactly 0 for both the exact and the driver's value and is zeroed; only the
/// entries whose range may contain the kink go through the rule.
pub(crate) fn activation_in_place(
    act: Activation,
    z: &mut Model,
    amax: &[f64],
    u_t: f64,
    ws: &mut EnclosureWorkspace,
) {
    if act == Activation::Identity {
        return;
    }
    z.constant = false;
    let k = z.k;
    if k == 1 && super::fp::fast_paths() {
        activation_k1(act, z, amax[0], u_t);
        return;
    }
    let bx = BoxIv::new(amax);
    let mut el = Elem::with_k(k);
    let mut acc = Acc::with_k(k);
    let n = z.c0.len();
    if act != Activation::Relu {
        for idx in 0..n {
            el.load(z, idx);
            activation_entry(act, &mut el, &bx, u_t, &mut acc);
            acc.store(z, idx, amax);
        }
        return;
    }
    // ReLU: classify (1 active, 0 inactive, 2 near the kink), zero, then the kink entries.
    let mut class = std::mem::take(&mut ws.class);
    z.relu_classes(amax, &mut class, &mut ws.spread);
    let zero = |x: &mut [f64]| {
        for (v, c) in x.iter_mut().zip(&class) {
            *v = if *c == 0 { 0.0 } else { *v };
        }
    };
    zero(z.c0.as_mut_slice());
    zero(z.e.as_mut_slice());
    for x in
        z.c1.iter_mut()
            .chain(z.qm.iter_mut())
            .chain(z.qr.iter_mut())
    {
        zero(x.as_mut_slice());
    }
    for (idx, c) in class.iter().enumerate() {
        if *c == 2 {
            el.load(z, idx);
            activation_entry(act, &mut el, &bx, u_t, &mut acc);
            acc.store(z, idx, amax);
        }
    }
    ws.class = class;
}

/// The activation of a model that must be kept, into a new pooled model: the constant
/// input model (a network starting with an activation), or a dense layer's output whose
/// degree-2 buffers are kept zeros (the sweep returns them to the workspace's zero pool;
/// `k = 1` ReLU works in place there instead, [`super::relu1`]). The identity is a copy; `k = 1` writes every entry of the output from `z`
/// ([`activation_k1_into`]); otherwise a copy, then the step in place.
pub(crate) fn activation(
    act: Activation,
    z: &Model,
    amax: &[f64],
    u_t: f64,
    ws: &mut EnclosureWorkspace,
) -> Model {
    if act == Activation::Identity {
        return ws.copy_model(z);
    }
    if z.k == 1 && super::fp::fast_paths() {
        let (rows, cols) = z.c0.shape();
        let mut out = ws.model_scratch(rows, cols, 1, false);
        activation_k1_into(act, z, &mut out, amax[0], u_t);
        return out;
    }
    let mut out = ws.copy_model(z);
    activation_in_place(act, &mut out, amax, u_t, ws);
    out
}
