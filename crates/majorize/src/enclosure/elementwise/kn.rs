//! The general (any-`k`) elementwise rules of [`super`] for a small `k` known at compile
//! time (session 11, issue #14: `safe-layerwise` on digits-mlp runs `k = L = 2`).
//!
//! [`ElemN`] / [`AccN`] hold one entry's coefficients in fixed-size arrays instead of
//! `Vec`s, and the model's coefficient buffers are resolved to slices once per step
//! ([`ColsN`]) instead of once per entry and coefficient. Every function here performs
//! the floating-point operations of its general counterpart ([`super::Elem::load`],
//! [`super::ranges`], [`super::add_square`], [`super::Acc`], [`super::activation_entry`])
//! on the same operands in the same order — the degree-2 coefficients row-major, index
//! `i k + j` of the general code being `[i][j]` here — so the bounds are the general
//! rules' bit for bit (tests/fast.rs, `small_k_paths_match_the_general_rules`). Only the
//! loop bounds are constants, which lets the compiler unroll the `k` and `k²` loops and
//! keep an entry in registers.

use nalgebra::DMatrix;
use nets::Activation;

use super::super::activation::{Smooth, driver_rel, smooth_enclosure};
use super::super::fp::{Iv, UpOps, eta, fmax, fmin, gamma, up};
use super::super::model::Model;
use super::{Ranges, pwl_slopes, recip_pos};

/// One entry of a model with `K` directions (the general [`super::Elem`] on arrays).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElemN<const K: usize> {
    pub(crate) c0: f64,
    pub(crate) c1: [f64; K],
    pub(crate) q: [[Iv; K]; K],
    pub(crate) e: f64,
}

impl<const K: usize> ElemN<K> {
    pub(crate) const ZERO: ElemN<K> = ElemN {
        c0: 0.0,
        c1: [0.0; K],
        q: [[Iv::ZERO; K]; K],
        e: 0.0,
    };
}

/// A model's buffers as slices (`qm[i][j]` is the general code's `qm[i k + j]`), shared
/// (`S = &[f64]`, to read) or exclusive (`S = &mut [f64]`, to work in place).
pub(crate) struct ColsN<S, const K: usize> {
    pub(crate) c0: S,
    pub(crate) c1: [S; K],
    pub(crate) qm: [[S; K]; K],
    pub(crate) qr: [[S; K]; K],
    pub(crate) e: S,
}

/// `K` buffers as slices (`None` unless there are exactly `K`).
fn slices_mut<const K: usize>(v: &mut [DMatrix<f64>]) -> Option<[&mut [f64]; K]> {
    let arr: &mut [DMatrix<f64>; K] = v.try_into().ok()?;
    Some(arr.each_mut().map(|m| m.as_mut_slice()))
}

/// `K²` buffers as a `K x K` array of slices, row-major (`None` unless there are `K²`).
fn slices2_mut<const K: usize>(v: &mut [DMatrix<f64>]) -> Option<[[&mut [f64]; K]; K]> {
    let (rows, rest) = v.as_chunks_mut::<K>();
    if !rest.is_empty() {
        return None;
    }
    let rows: &mut [[DMatrix<f64>; K]; K] = rows.try_into().ok()?;
    Some(
        rows.each_mut()
            .map(|r| r.each_mut().map(|m| m.as_mut_slice())),
    )
}

/// `K` buffers as slices (`None` unless there are exactly `K`).
fn slices<const K: usize>(v: &[DMatrix<f64>]) -> Option<[&[f64]; K]> {
    let arr: &[DMatrix<f64>; K] = v.try_into().ok()?;
    Some(arr.each_ref().map(|m| m.as_slice()))
}

/// `K²` buffers as a `K x K` array of slices, row-major (`None` unless there are `K²`).
fn slices2<const K: usize>(v: &[DMatrix<f64>]) -> Option<[[&[f64]; K]; K]> {
    let (rows, rest) = v.as_chunks::<K>();
    if !rest.is_empty() {
        return None;
    }
    let rows: &[[DMatrix<f64>; K]; K] = rows.try_into().ok()?;
    Some(rows.each_ref().map(|r| r.each_ref().map(|m| m.as_slice())))
}

impl<'a, const K: usize> ColsN<&'a [f64], K> {
    /// The buffers of `m` to read; `None` unless `m` has `K` directions.
    pub(crate) fn of(m: &'a Model) -> Option<Self> {
        if m.k != K {
            return None;
        }
        Some(ColsN {
            c0: m.c0.as_slice(),
            c1: slices(&m.c1)?,
            qm: slices2(&m.qm)?,
            qr: slices2(&m.qr)?,
            e: m.e.as_slice(),
        })
    }
}

impl<'a, const K: usize> ColsN<&'a mut [f64], K> {
    /// The buffers of `m` to work in place; `None` unless `m` has `K` directions.
    pub(crate) fn of_mut(m: &'a mut Model) -> Option<Self> {
        if m.k != K {
            return None;
        }
        Some(ColsN {
            c0: m.c0.as_mut_slice(),
            c1: slices_mut(&mut m.c1)?,
            qm: slices2_mut(&mut m.qm)?,
            qr: slices2_mut(&mut m.qr)?,
            e: m.e.as_mut_slice(),
        })
    }
}

impl<S: std::ops::Deref<Target = [f64]>, const K: usize> ColsN<S, K> {
    /// [`super::Elem::load`]: the point coefficients, and `Q` as outward intervals
    /// `[qm - qr, qm + qr]`.
    #[inline(always)]
    pub(crate) fn load(&self, idx: usize) -> ElemN<K> {
        ElemN {
            c0: self.c0[idx],
            e: self.e[idx],
            c1: std::array::from_fn(|i| self.c1[i][idx]),
            q: std::array::from_fn(|i| {
                std::array::from_fn(|j| Iv::mid_rad(self.qm[i][j][idx], self.qr[i][j][idx]))
            }),
        }
    }
}

impl<const K: usize> ColsN<&mut [f64], K> {
    /// [`super::Acc::store`]: midpoints become the point coefficients, the radii of
    /// degree 0 and 1 (times `ᾱ`) move to `e`.
    #[inline(always)]
    fn store(&mut self, acc: &AccN<K>, idx: usize, amax: &[f64; K]) {
        let (c0, r0) = acc.c0.to_mid_rad();
        let mut e = up(acc.e + r0);
        self.c0[idx] = c0;
        for i in 0..K {
            let (c, r) = acc.c1[i].to_mid_rad();
            self.c1[i][idx] = c;
            e = up(e + up(r * amax[i]));
        }
        for i in 0..K {
            for j in 0..K {
                let (c, r) = acc.q[i][j].to_mid_rad();
                self.qm[i][j][idx] = c;
                self.qr[i][j][idx] = r;
            }
        }
        self.e[idx] = e;
    }
}

/// The upper ends of the box `[0, ᾱ_i]` and `[0, ᾱ_i ᾱ_j]` ([`super::BoxIv`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BoxN<const K: usize> {
    pub(crate) lin: [f64; K],
    pub(crate) quad: [[f64; K]; K],
    /// `up_ops(·, 6)` of [`super::add_square`]'s degree-0 bound, its constants computed once.
    pub(crate) sq: UpOps,
}

impl<const K: usize> BoxN<K> {
    /// The products are [`super::BoxIv::new`]'s.
    pub(crate) fn new(amax: &[f64; K]) -> BoxN<K> {
        BoxN {
            lin: std::array::from_fn(|i| amax[i]),
            quad: std::array::from_fn(|i| std::array::from_fn(|j| up(amax[i] * amax[j]))),
            sq: UpOps::new(6),
        }
    }
}

/// [`super::ranges`]: `lin = Σ c1_i [0, ᾱ_i]`, `quad = Σ [Q_ij] [0, ᾱ_i ᾱ_j]`, `δ0`, `δ`.
#[inline(always)]
pub(crate) fn ranges_n<const K: usize>(el: &ElemN<K>, bx: &BoxN<K>) -> Ranges {
    let mut lin = Iv::ZERO;
    for i in 0..K {
        lin = lin.add(Iv::new(0.0, bx.lin[i]).scale(el.c1[i]));
    }
    let mut quad = Iv::ZERO;
    for i in 0..K {
        for j in 0..K {
            quad = quad.add(el.q[i][j].mul(Iv::new(0.0, bx.quad[i][j])));
        }
    }
    let d0 = lin.add(quad);
    let d = d0.add(Iv::new(-el.e, el.e));
    Ranges { lin, quad, d0, d }
}

/// [`super::add_square`]: adds `r (c1 c1ᵀ + [Q][t])` to `out`, returns the degree-0 bound.
#[inline(always)]
pub(crate) fn add_square_n<const K: usize>(
    el: &ElemN<K>,
    rg: &Ranges,
    r: Iv,
    out: &mut [[Iv; K]; K],
    sq: UpOps,
) -> f64 {
    let t = rg.lin.scale(2.0).add(rg.quad);
    for i in 0..K {
        for j in 0..K {
            let coef = Iv::point(el.c1[i]).scale(el.c1[j]).add(el.q[i][j].mul(t));
            out[i][j] = out[i][j].add(r.mul(coef));
        }
    }
    let e = el.e;
    if e == 0.0 {
        return 0.0;
    }
    sq.apply(r.mag() * (2.0 * e * rg.d0.mag() + e * e))
}

/// One entry's output ([`super::Acc`] on arrays).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AccN<const K: usize> {
    pub(crate) c0: Iv,
    pub(crate) c1: [Iv; K],
    pub(crate) q: [[Iv; K]; K],
    pub(crate) e: f64,
}

impl<const K: usize> AccN<K> {
    pub(crate) const ZERO: AccN<K> = AccN {
        c0: Iv::ZERO,
        c1: [Iv::ZERO; K],
        q: [[Iv::ZERO; K]; K],
        e: 0.0,
    };

    /// [`super::Acc::add_linear`]: adds `s δ`.
    #[inline(always)]
    pub(crate) fn add_linear(&mut self, el: &ElemN<K>, s: Iv) {
        for i in 0..K {
            self.c1[i] = self.c1[i].add(s.scale(el.c1[i]));
        }
        for i in 0..K {
            for j in 0..K {
                self.q[i][j] = self.q[i][j].add(s.mul(el.q[i][j]));
            }
        }
        self.e = up(self.e + up(s.mag() * el.e));
    }

    /// [`super::Acc::add_e`].
    #[inline(always)]
    pub(crate) fn add_e(&mut self, x: f64) {
        self.e = up(self.e + x);
    }

    /// The general accumulator with the same intervals (row-major `Q`).
    pub(crate) fn to_acc(&self) -> super::Acc {
        super::Acc {
            c0: self.c0,
            c1: self.c1.to_vec(),
            q: self.q.iter().flatten().copied().collect(),
            e: self.e,
        }
    }
}

/// [`super::activation_entry`] for `K` directions: the same rule, the same operations.
#[inline(always)]
fn activation_entry_n<const K: usize>(
    act: Activation,
    el: &mut ElemN<K>,
    bx: &BoxN<K>,
    u_t: f64,
) -> AccN<K> {
    let mut acc = AccN::<K>::ZERO;
    if let Some(f) = Smooth::of(act) {
        let rg = ranges_n(el, bx);
        let y = Iv::point(el.c0).add(rg.d);
        let one = smooth_enclosure(f, el.c0, y.lo, y.hi);
        acc.c0 = one.h0;
        acc.add_linear(el, one.s);
        let d0 = add_square_n(el, &rg, one.r, &mut acc.q, bx.sq);
        acc.add_e(d0);
        let hmax = one.hmax;
        let drv = up(up(gamma(1, u_t) * driver_rel(f) * hmax) + 4.0 * eta(u_t));
        acc.add_e(drv);
        return acc;
    }
    let Some((sl, sr)) = pwl_slopes(act) else {
        acc.c0 = Iv::point(el.c0);
        acc.add_linear(el, Iv::point(1.0));
        return acc;
    };
    if el.c0 != 0.0 && el.c0.abs() <= el.e {
        el.e = up(el.e + el.c0.abs());
        el.c0 = 0.0;
    }
    let rg = ranges_n(el, bx);
    let y = Iv::point(el.c0).add(rg.d);
    let c0 = el.c0;
    let ymag = y.mag();
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
        let d0 = add_square_n(el, &rg, r, &mut acc.q, bx.sq);
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
        let d0 = add_square_n(el, &rg, r, &mut acc.q, bx.sq);
        acc.add_e(d0);
    } else {
        acc.c0 = Iv::ZERO;
        let all_pos = el.c1.iter().all(|&c| c >= 0.0);
        let all_neg = el.c1.iter().all(|&c| c <= 0.0);
        if all_pos {
            acc.add_linear(el, Iv::point(sr));
            for i in 0..K {
                for j in 0..K {
                    let q = el.q[i][j];
                    acc.q[i][j] = acc.q[i][j].add(Iv::new(fmin(q.lo, 0.0), 0.0).scale(sl - sr));
                }
            }
            acc.add_e(up((sl - sr).abs() * el.e));
        } else if all_neg {
            acc.add_linear(el, Iv::point(sl));
            for i in 0..K {
                for j in 0..K {
                    let q = el.q[i][j];
                    acc.q[i][j] = acc.q[i][j].add(Iv::new(0.0, fmax(q.hi, 0.0)).scale(sr - sl));
                }
            }
            acc.add_e(up((sr - sl).abs() * el.e));
        } else {
            acc.add_linear(el, Iv::point(sr));
            acc.add_e(up((sl - sr).abs() * fmax(-rg.d.lo, 0.0)));
        }
    }
    acc
}

/// The rule on the entries of `z` selected by `take` (every entry when `None`, else those
/// with class 2), in place: [`super::activation_in_place`]'s per-entry loops for `K`
/// directions. Returns `false` (nothing done) unless `z` has `K` directions.
pub(super) fn entries_n<const K: usize>(
    act: Activation,
    z: &mut Model,
    amax: &[f64],
    u_t: f64,
    take: Option<&[u8]>,
) -> bool {
    let Ok(amax) = <&[f64; K]>::try_from(amax) else {
        return false;
    };
    let Some(mut cols) = ColsN::<_, K>::of_mut(z) else {
        return false;
    };
    let bx = BoxN::<K>::new(amax);
    for idx in 0..cols.c0.len() {
        if let Some(class) = take
            && class.get(idx) != Some(&2)
        {
            continue;
        }
        let mut el = cols.load(idx);
        let acc = activation_entry_n(act, &mut el, &bx, u_t);
        cols.store(&acc, idx, amax);
        note_small_k();
    }
    true
}

#[cfg(test)]
thread_local! {
    static SMALL_K: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Entries and samples this thread ran through the small-`k` paths (tests only: the
/// comparison with the general rules is not vacuous).
#[cfg(test)]
pub(crate) fn small_k_count() -> usize {
    SMALL_K.with(|c| c.get())
}

/// Counts one entry or sample through a small-`k` path (tests only).
#[inline(always)]
pub(crate) fn note_small_k() {
    #[cfg(test)]
    SMALL_K.with(|c| c.set(c.get() + 1));
}
