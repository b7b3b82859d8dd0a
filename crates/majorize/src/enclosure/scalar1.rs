//! The `k = 1` elementwise step on plain scalars: the same rule, the same floating-point
//! operations in the same order as [`super::elementwise::activation_entry`] (so the same
//! outward-rounded bounds, bit for bit), without the per-entry `Vec`-backed `Elem`/`Acc`
//! and their loops over `k` and `k²`. With one direction an entry of a model is five
//! numbers `(c0, c1, qm, qr, e)` (module `model`), so the rule is straight-line code on
//! registers.
//!
//! Soundness is inherited, not re-derived: every interval operation here is the one the
//! general rule performs for `k = 1` (outward rounding per operation, `fp::Iv`). The test
//! `scalar1_matches_general_rule` (tests/fast.rs) checks bit-for-bit equality with the
//! general rule on random and adversarial entries (kinks, near-kinks, NaN, infinities,
//! zero radii), and the end-to-end property tests run every `k = 1` case through this
//! path.

use nets::Activation;

use super::activation::{Smooth, driver_rel, smooth_enclosure};
use super::fp::{Iv, UpOps, eta, fmax, fmin, gamma, up};

/// One entry of a `k = 1` model: `c0 + c1 α + α² [qm ± qr] ± e`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Entry1 {
    pub(crate) c0: f64,
    pub(crate) c1: f64,
    pub(crate) qm: f64,
    pub(crate) qr: f64,
    pub(crate) e: f64,
}

/// Constants of one elementwise step shared by all entries (what the general rule
/// recomputes per entry: the box intervals, `γ_1` and `η` of the driver's type).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consts1 {
    /// `[0, ᾱ]`.
    lin: Iv,
    /// `[0, up(ᾱ²)]`.
    quad: Iv,
    /// `ᾱ`.
    a: f64,
    /// `γ_1` of the driver's unit roundoff.
    g1: f64,
    /// `η` of the driver's type.
    eta_t: f64,
    /// `up_ops(·, 6)`.
    ops6: UpOps,
}

impl Consts1 {
    pub(crate) fn new(amax: f64, u_t: f64) -> Consts1 {
        Consts1 {
            lin: Iv::new(0.0, amax),
            quad: Iv::new(0.0, up(amax * amax)),
            a: amax,
            g1: gamma(1, u_t),
            eta_t: eta(u_t),
            ops6: UpOps::new(6),
        }
    }

    /// `ᾱ`.
    pub(crate) fn amax(&self) -> f64 {
        self.a
    }
}

/// Ranges over the box of `lin`, `quad`, `δ0` and `δ` (as `elementwise::ranges`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rg {
    lin: Iv,
    quad: Iv,
    d0: Iv,
    pub(crate) d: Iv,
}

#[inline(always)]
pub(crate) fn ranges(c1: f64, q: Iv, e: f64, k: &Consts1) -> Rg {
    let lin = Iv::ZERO.add(k.lin.scale(c1));
    let quad = Iv::ZERO.add(q.mul(k.quad));
    let d0 = lin.add(quad);
    let d = d0.add(Iv::new(-e, e));
    Rg { lin, quad, d0, d }
}

/// Output accumulator of one entry (as `elementwise::Acc` with `k = 1`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acc1 {
    pub(crate) c0: Iv,
    pub(crate) c1: Iv,
    pub(crate) q: Iv,
    pub(crate) e: f64,
}

impl Acc1 {
    pub(crate) const ZERO: Acc1 = Acc1 {
        c0: Iv::ZERO,
        c1: Iv::ZERO,
        q: Iv::ZERO,
        e: 0.0,
    };

    #[inline(always)]
    pub(crate) fn add_linear(&mut self, c1: f64, q: Iv, e: f64, s: Iv) {
        self.c1 = self.c1.add(s.scale(c1));
        self.q = self.q.add(s.mul(q));
        self.e = up(self.e + up(s.mag() * e));
    }

    #[inline(always)]
    pub(crate) fn add_e(&mut self, x: f64) {
        self.e = up(self.e + x);
    }

    /// `r · (c1² + [Q][t])` into `q`, and the degree-0 term (as `elementwise::add_square`).
    #[inline(always)]
    pub(crate) fn add_square(&mut self, c1: f64, q: Iv, e: f64, rg: &Rg, r: Iv, k: &Consts1) {
        let t = rg.lin.scale(2.0).add(rg.quad);
        let coef = Iv::point(c1).mul(Iv::point(c1)).add(q.mul(t));
        self.q = self.q.add(r.mul(coef));
        let d0 = if e == 0.0 {
            0.0
        } else {
            k.ops6.apply(r.mag() * (2.0 * e * rg.d0.mag() + e * e))
        };
        self.add_e(d0);
    }

    /// The stored entry (as `elementwise::Acc::store`).
    #[inline(always)]
    fn store(&self, a: f64) -> Entry1 {
        let (c0, r0) = self.c0.to_mid_rad();
        let mut e = up(self.e + r0);
        let (c1, r) = self.c1.to_mid_rad();
        e = up(e + up(r * a));
        let (qm, qr) = self.q.to_mid_rad();
        Entry1 { c0, c1, qm, qr, e }
    }
}

/// A smooth activation `f` on one entry (the general rule's smooth branch).
#[inline]
pub(crate) fn smooth_entry(f: Smooth, x: Entry1, k: &Consts1, drv_rel: f64) -> Entry1 {
    let q = Iv::mid_rad(x.qm, x.qr);
    let rg = ranges(x.c1, q, x.e, k);
    let y = Iv::point(x.c0).add(rg.d);
    let one = smooth_enclosure(f, x.c0, y.lo, y.hi);
    let mut acc = Acc1::ZERO;
    acc.c0 = one.h0;
    acc.add_linear(x.c1, q, x.e, one.s);
    acc.add_square(x.c1, q, x.e, &rg, one.r, k);
    let drv = up(up(k.g1 * drv_rel * one.hmax) + 4.0 * k.eta_t);
    acc.add_e(drv);
    acc.store(k.a)
}

/// A piecewise-linear activation with slopes `(sl, sr)` on one entry (the general
/// rule's ReLU / leaky ReLU branch, module `elementwise`).
#[inline]
pub(crate) fn pwl_entry(sl: f64, sr: f64, mut x: Entry1, k: &Consts1) -> Entry1 {
    if x.c0 != 0.0 && x.c0.abs() <= x.e {
        x.e = up(x.e + x.c0.abs());
        x.c0 = 0.0;
    }
    let q = Iv::mid_rad(x.qm, x.qr);
    let rg = ranges(x.c1, q, x.e, k);
    let y = Iv::point(x.c0).add(rg.d);
    let c0 = x.c0;
    let mut acc = Acc1::ZERO;
    let drv = if sl == 0.0 {
        0.0
    } else {
        up(up(3.0 * k.g1 * sl.abs() * y.mag()) + k.eta_t)
    };
    acc.add_e(drv);
    let h0 = |s: f64| Iv::point(s).mul(Iv::point(c0));
    if y.lo >= 0.0 {
        acc.c0 = h0(sr);
        acc.add_linear(x.c1, q, x.e, Iv::point(sr));
    } else if y.hi <= 0.0 {
        acc.c0 = h0(sl);
        acc.add_linear(x.c1, q, x.e, Iv::point(sl));
    } else if c0 > 0.0 {
        acc.c0 = h0(sr);
        acc.add_linear(x.c1, q, x.e, Iv::point(sr));
        let dlo = rg.d.lo;
        let c = Iv::point(c0);
        let fm = if dlo <= -2.0 * c0 {
            Iv::point(-0.25).mul(recip_pos(c))
        } else {
            let dd = Iv::point(dlo);
            c.add(dd).mul(recip_pos(dd.mul(dd)))
        };
        let r = Iv::new(fmin(fm.lo, 0.0), 0.0).scale(sl - sr);
        acc.add_square(x.c1, q, x.e, &rg, r, k);
    } else if c0 < 0.0 {
        acc.c0 = h0(sl);
        acc.add_linear(x.c1, q, x.e, Iv::point(sl));
        let dhi = rg.d.hi;
        let c = Iv::point(-c0);
        let gmax = if dhi >= -2.0 * c0 {
            Iv::point(0.25).mul(recip_pos(c))
        } else {
            let dd = Iv::point(dhi);
            Iv::point(c0).add(dd).mul(recip_pos(dd.mul(dd)))
        };
        let r = Iv::new(0.0, fmax(gmax.hi, 0.0)).scale(sr - sl);
        acc.add_square(x.c1, q, x.e, &rg, r, k);
    } else {
        // Exact kink.
        acc.c0 = Iv::ZERO;
        if x.c1 >= 0.0 {
            acc.add_linear(x.c1, q, x.e, Iv::point(sr));
            acc.q = acc.q.add(Iv::new(fmin(q.lo, 0.0), 0.0).scale(sl - sr));
            acc.add_e(up((sl - sr).abs() * x.e));
        } else if x.c1 <= 0.0 {
            acc.add_linear(x.c1, q, x.e, Iv::point(sl));
            acc.q = acc.q.add(Iv::new(0.0, fmax(q.hi, 0.0)).scale(sr - sl));
            acc.add_e(up((sr - sl).abs() * x.e));
        } else {
            // NaN first-order coefficient (the general rule's mixed-sign branch).
            acc.add_linear(x.c1, q, x.e, Iv::point(sr));
            acc.add_e(up((sl - sr).abs() * fmax(-rg.d.lo, 0.0)));
        }
    }
    acc.store(k.a)
}

fn recip_pos(x: Iv) -> Iv {
    if x.lo > 0.0 {
        Iv::new((1.0 / x.hi).next_down(), (1.0 / x.lo).next_up())
    } else {
        Iv::new(0.0, f64::INFINITY)
    }
}

/// The activation of one `k = 1` entry: smooth, piecewise linear or identity.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rule1 {
    Smooth(Smooth, f64),
    Pwl(f64, f64),
    Identity,
}

impl Rule1 {
    pub(crate) fn of(a: Activation) -> Rule1 {
        if let Some(f) = Smooth::of(a) {
            return Rule1::Smooth(f, driver_rel(f));
        }
        match a {
            Activation::Relu => Rule1::Pwl(0.0, 1.0),
            Activation::LeakyRelu { slope } => Rule1::Pwl(slope, 1.0),
            _ => Rule1::Identity,
        }
    }

    /// The enclosure of the activation of one entry.
    #[inline]
    pub(crate) fn apply(self, x: Entry1, k: &Consts1) -> Entry1 {
        match self {
            Rule1::Smooth(f, rel) => smooth_entry(f, x, k, rel),
            Rule1::Pwl(sl, sr) => pwl_entry(sl, sr, x, k),
            Rule1::Identity => identity_entry(x, k),
        }
    }
}

/// The identity (as the general rule: point slope 1, so only one-ulp widenings).
#[inline]
fn identity_entry(x: Entry1, k: &Consts1) -> Entry1 {
    let q = Iv::mid_rad(x.qm, x.qr);
    let mut acc = Acc1::ZERO;
    acc.c0 = Iv::point(x.c0);
    acc.add_linear(x.c1, q, x.e, Iv::point(1.0));
    acc.store(k.a)
}

/// The MSE data term `Σ ½ (z - y)²` of a `k = 1` output model, accumulated into `total`
/// (the same operations as the general loop in `loss::data_term`); returns the
/// increment of `Σ max |ℓ|`.
pub(crate) fn mse_k1(
    z: &super::model::Model,
    y: &[f64],
    k: &Consts1,
    rel: f64,
    total: &mut super::elementwise::Acc,
) -> f64 {
    let (c0, c1, qm, qr, e) = (
        z.c0.as_slice(),
        z.c1[0].as_slice(),
        z.qm[0].as_slice(),
        z.qr[0].as_slice(),
        z.e.as_slice(),
    );
    let half = Iv::point(0.5);
    let mut acc = Acc1 {
        c0: total.c0,
        c1: total.c1[0],
        q: total.q[0],
        e: total.e,
    };
    let mut abs_sum = 0.0;
    for idx in 0..c0.len() {
        let (x0, x1, xe) = (c0[idx], c1[idx], e[idx]);
        let q = Iv::mid_rad(qm[idx], qr[idx]);
        let rg = ranges(x1, q, xe, k);
        let r0 = Iv::point(x0).sub(Iv::point(y[idx]));
        acc.c0 = acc.c0.add(r0.mul(r0).mul(half));
        acc.add_linear(x1, q, xe, r0);
        acc.add_square(x1, q, xe, &rg, half, k);
        let res = r0.add(rg.d).mag();
        let lmax = up(up(0.5 * res) * res);
        acc.add_e(up(rel * lmax + k.eta_t));
        abs_sum = up(abs_sum + lmax);
    }
    total.c0 = acc.c0;
    total.c1[0] = acc.c1;
    total.q[0] = acc.q;
    total.e = acc.e;
    abs_sum
}
