//! Steps R1-R2 of the ray bound (docs/MAJORIZE.md, "The ray bound of a lower block"): the
//! anchored forward pass at `a = 0` and the forward band of slopes through the layers
//! above the block, every bound a rigorous f64 bound of the exact reference `ψ`.

use autodiff::Transpose;
use nalgebra::DMatrix;

use super::{Parts, RayWorkspace};
use crate::enclosure::api::{OP, check_output};
use crate::enclosure::fp::{U64, UpOps, dn, dn_select, eta, gamma, up, up_select, widest};
use crate::enclosure::top_block::bound::{sure_t, ua, um};
use crate::enclosure::top_block::copy_into;
use crate::error::{MajorizeError, Result};
use crate::prod::gemm;

/// R2, ReLU of the band `z + a [lo, hi]` (`lo <= hi`, `z` exact): `(sL, sU)` with
/// `a sL <= relu(z + a s) - relu(z) <= a sU` for every `s` in `[lo, hi]` and `a` in
/// `[0, ā]`. `sU` bounds the chord of the `hi` line from above (directed; the branch
/// by `sure_t` or the directed `t_hi`/`t_lo`), `sL` is the right tangent of the `lo`
/// line (exact). Finite inputs give `sL <= sU`.
#[inline]
pub(crate) fn relu_band(
    z: f64,
    lo: f64,
    hi: f64,
    abar: f64,
    tangent_for_chord: bool,
) -> (f64, f64) {
    let sl = if z > 0.0 {
        lo
    } else if z == 0.0 {
        lo.max(0.0)
    } else {
        0.0
    };
    if tangent_for_chord {
        // Mutation (tests only): the right derivative of the hi line, not its chord.
        let d = if z > 0.0 {
            hi
        } else if z == 0.0 {
            hi.max(0.0)
        } else {
            0.0
        };
        return (sl, d);
    }
    let (sure, tp) = sure_t(z, hi, abar);
    let su = if z > 0.0 {
        // Exact chord max(hi, -z/ā); hi alone when t = z + ā hi > 0.
        let t_lo = if sure { tp } else { dn(z + dn(abar * hi)) };
        if t_lo > 0.0 {
            hi
        } else {
            hi.max(up(-z / abar))
        }
    } else if z == 0.0 {
        hi.max(0.0)
    } else {
        // Exact chord max(0, t/ā) <= max(0, min(hi, t_hi/ā)) (t/ā < hi as z < 0).
        let t_hi = if sure { tp } else { ua(z, um(abar, hi)) };
        if t_hi <= 0.0 {
            0.0
        } else {
            hi.min(up(ua(z, um(abar, hi)) / abar)).max(0.0)
        }
    };
    (sl, su)
}

/// [`relu_band`] with its common case taken without a branch on the signs: when the
/// sign of `t = z + ā hi` is sure and equals that of `z` (no kink crossed on `[0, ā]`),
/// `(lo, hi)` for `z > 0` and `(0, 0)` for `z < 0`, which is what `relu_band` returns
/// there (a bit mask, all ones for `z > 0`, turns `lo`, `hi` into `+0.0` otherwise);
/// everything else (a kink crossed, an unsure sign, `z = 0`, NaN, the test knob) goes
/// to `relu_band` itself. Equal to `relu_band` for every input (`tests::units`).
#[inline(always)]
pub(crate) fn relu_band_select(
    z: f64,
    lo: f64,
    hi: f64,
    abar: f64,
    tangent_for_chord: bool,
) -> (f64, f64) {
    let (simple, sl, su) = common_case(z, lo, hi, abar);
    if simple & !tangent_for_chord {
        (sl, su)
    } else {
        relu_band_cold(z, lo, hi, abar, tangent_for_chord)
    }
}

/// The common case of [`relu_band`] without a branch: whether the sign of `t = z + ā
/// hi` is sure and equals that of `z` (`z != 0`), and the band there, `(lo, hi)` for
/// `z > 0` and `(+0, +0)` for `z < 0` (a bit mask, all ones for `z > 0`); the band is
/// meaningless when the flag is false.
#[inline(always)]
fn common_case(z: f64, lo: f64, hi: f64, abar: f64) -> (bool, f64, f64) {
    let (sure, tp) = sure_t(z, hi, abar);
    let pos = z > 0.0;
    let simple = sure & (z != 0.0) & (pos == (tp > 0.0));
    let mask = (pos as u64).wrapping_neg();
    (
        simple,
        f64::from_bits(lo.to_bits() & mask),
        f64::from_bits(hi.to_bits() & mask),
    )
}

/// [`relu_band`] out of line (the rare case of [`relu_band_select`]).
#[cold]
#[inline(never)]
fn relu_band_cold(z: f64, lo: f64, hi: f64, abar: f64, tangent_for_chord: bool) -> (f64, f64) {
    relu_band(z, lo, hi, abar, tangent_for_chord)
}

/// Entries per chunk of the band loop's common-case pass.
pub(crate) const LANES: usize = 8;

/// The band's common case on one chunk of [`LANES`] entries (straight-line code the
/// compiler vectorises): whether every entry is in [`relu_band_select`]'s common case,
/// and if so its `(sL, sU)` (the same values) written to `sl`, `su`; otherwise nothing
/// is written and the chunk is left for the per-entry path (so is a shorter chunk).
/// `MU_RAD`: `x = μ`, `y = rad`, `lo = dn(μ - rad)`, `hi = up(μ + rad)` (a layer above
/// the block); else `lo = x`, `hi = y` (the block, `x = y = P'`).
#[inline(always)]
pub(crate) fn simple_chunk<const MU_RAD: bool>(
    (z, x, y): (&[f64], &[f64], &[f64]),
    abar: f64,
    sl: &mut [f64],
    su: &mut [f64],
) -> bool {
    if z.len() != LANES || x.len() != LANES || y.len() != LANES {
        return false;
    }
    if sl.len() != LANES || su.len() != LANES {
        return false;
    }
    let (mut lo, mut hi, mut all) = ([0.0f64; LANES], [0.0f64; LANES], true);
    for l in 0..LANES {
        let (a, b) = if MU_RAD {
            (dn_select(x[l] - y[l]), up_select(x[l] + y[l]))
        } else {
            (x[l], y[l])
        };
        let simple;
        (simple, lo[l], hi[l]) = common_case(z[l], a, b, abar);
        all &= simple;
    }
    if all {
        sl.copy_from_slice(&lo);
        su.copy_from_slice(&hi);
    }
    all
}

/// One layer's inputs to R2, `d x N` column-major: the anchors `z`, the slopes' sources
/// `x`, `y` (`first`, the block: `lo = x = hi = y = P'`; else `x = μ`, `y = rad`), the
/// activations `act` (for the sums), the region `abar` and the tests' mutation `knob`.
pub(crate) struct LayerBand<'a> {
    pub(crate) z: &'a [f64],
    pub(crate) x: &'a [f64],
    pub(crate) y: &'a [f64],
    pub(crate) act: &'a [f64],
    pub(crate) d: usize,
    pub(crate) first: bool,
    pub(crate) abar: f64,
    pub(crate) knob: bool,
}

/// R2 on one layer, every sample: the band into `sl`, `su` and, per sample `s`, the
/// inflated sums `U_d(Σ_j |Ĥ0|)` into `col_h[s]` and `U_d(Σ_j M)` into `col_m[s]`;
/// returns whether every `sL`, `sU` is finite. The loops run with the widest vector
/// extension the CPU has ([`widest`]); the arithmetic is the same (Rust never contracts
/// a multiply and an add, and the sums keep their order), so every path gives the same
/// bits (`tests::units`).
pub(crate) fn layer_band(
    lb: &LayerBand<'_>,
    sl: &mut [f64],
    su: &mut [f64],
    col_h: &mut [f64],
    col_m: &mut [f64],
) -> bool {
    widest(
        #[inline(always)]
        || layer_band_plain(lb, sl, su, col_h, col_m),
    )
}

/// The loops of [`layer_band`] (baseline code generation when called directly):
/// [`simple_chunk`] on chunks of [`LANES`] entries, [`relu_band_select`] on the chunks it
/// leaves, then the sample's sums in entry order.
#[inline(always)]
pub(crate) fn layer_band_plain(
    lb: &LayerBand<'_>,
    sl: &mut [f64],
    su: &mut [f64],
    col_h: &mut [f64],
    col_m: &mut [f64],
) -> bool {
    let (d, abar) = (lb.d, lb.abar);
    let ops_d = UpOps::new(d);
    let mut ok = true;
    if d == 0 {
        for c in col_h.iter_mut().chain(col_m.iter_mut()) {
            *c = ops_d.apply(0.0);
        }
        return ok;
    }
    let cols =
        lb.z.chunks_exact(d)
            .zip(lb.x.chunks_exact(d))
            .zip(lb.y.chunks_exact(d))
            .zip(lb.act.chunks_exact(d))
            .zip(sl.chunks_exact_mut(d).zip(su.chunks_exact_mut(d)))
            .zip(col_h.iter_mut().zip(col_m.iter_mut()));
    for (((((z, x), y), act), (slc, suc)), (ch, cm)) in cols {
        let (mut h1, mut m1) = (0.0f64, 0.0f64);
        for c0 in (0..d).step_by(LANES) {
            let c1 = (c0 + LANES).min(d);
            let part = (&z[c0..c1], &x[c0..c1], &y[c0..c1]);
            let (lc, uc) = (&mut slc[c0..c1], &mut suc[c0..c1]);
            let done = !lb.knob
                && if lb.first {
                    simple_chunk::<false>(part, abar, lc, uc)
                } else {
                    simple_chunk::<true>(part, abar, lc, uc)
                };
            if !done {
                for j in c0..c1 {
                    // The block: lo = hi = P'; above it: x = μ, y = rad.
                    let (lo, hi) = if lb.first {
                        (x[j], y[j])
                    } else {
                        (dn_select(x[j] - y[j]), up_select(x[j] + y[j]))
                    };
                    (slc[j], suc[j]) = relu_band_select(z[j], lo, hi, abar, lb.knob);
                }
            }
            for j in c0..c1 {
                let (a, b) = (slc[j], suc[j]);
                ok &= a.is_finite() && b.is_finite();
                h1 += act[j];
                m1 += a.abs().max(b.abs());
            }
        }
        *ch = ops_d.apply(h1);
        *cm = ops_d.apply(m1);
    }
    ok
}

/// `o = relu(z) = max(z, 0)` entrywise (NaN to 0, as `f64::max`), vectorised.
fn relu_into(o: &mut [f64], z: &[f64]) {
    widest(
        #[inline(always)]
        || {
            for (o, z) in o.iter_mut().zip(z) {
                *o = z.max(0.0);
            }
        },
    );
}

/// Whether every entry of `x` is finite (an OR over the exponent bits, without an early
/// exit, so that it vectorises).
pub(crate) fn all_finite(x: &[f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    widest(
        #[inline(always)]
        || {
            x.iter()
                .fold(0u64, |bad, v| bad | u64::from(v.to_bits() & EXP == EXP))
                == 0
        },
    )
}

/// The outcome of [`band`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Band {
    /// Anchors and band finite.
    Fine,
    /// The anchors (our forward pass at `a = 0`) are finite, the band is not.
    Overflow,
    /// The forward pass at `a = 0` failed or is not finite.
    NoAnchors,
}

/// R1 and R2 into the workspace: the anchors `act[k] = Ĥ0_k`, `zh[k - 1] = Ẑ0_k` (ours,
/// or the caller's `p.anchors`, checked on two columns and copied); for
/// the last hidden layer `m - 1` its band `sl`, `su`; for each hidden layer `k < m` and
/// sample `s` the inflated sums `U_d(Σ_j |Ĥ0_k|)` at `col[k N + s]` and `U_d(Σ_j M_k)`
/// (`M = max(|sL|, |sU|)`) at `col[(m + k) N + s]`. Returns which of them are finite
/// (the caller makes the slack infinite otherwise: valid, useless).
pub(crate) fn band(p: &Parts<'_>, ws: &mut RayWorkspace, tangent_for_chord: bool) -> Result<Band> {
    let m = p.above.len();
    let n = p.a_in.ncols();
    let abar = p.alpha_max;
    ws.shape(p);
    ws.col.clear();
    ws.col.resize(2 * m * n, 0.0);
    // R1: Ĥ0_0 = relu(Z0'), Ẑ0_k = fl(W_k Ĥ0_{k-1}) + b_k, Ĥ0_k = relu(Ẑ0_k).
    relu_into(ws.act[0].as_mut_slice(), p.z0.as_slice());
    if let Some(t) = p.anchors.as_deref()
        && t.len() != m
    {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: format!("{} anchors for {m} dense layers above the block", t.len()),
        });
    }
    for k in 1..=m {
        if let Some(t) = p.anchors.as_deref() {
            // The caller's forward pass (checked on two columns, as a given Z0').
            let what = format_args!("dense layer {k} above the block");
            check_output(p.above[k - 1], &ws.act[k - 1], t[k - 1], &what)?;
            copy_into(&mut ws.zh[k - 1], t[k - 1]);
        } else if p.above[k - 1]
            .forward_into(&ws.act[k - 1], &mut ws.zh[k - 1])
            .is_err()
        {
            return Ok(Band::NoAnchors);
        }
        if k < m {
            relu_into(ws.act[k].as_mut_slice(), ws.zh[k - 1].as_slice());
        }
        if !all_finite(ws.zh[k - 1].as_slice()) {
            return Ok(Band::NoAnchors);
        }
    }
    // R2: the band, layer by layer.
    let mut ok = true;
    for k in 0..m {
        let d = ws.act[k].nrows();
        {
            // Column-major: sample s is the slice [s d, (s + 1) d) of every d x N matrix.
            let z = if k == 0 { p.z0 } else { &ws.zh[k - 1] }.as_slice();
            let (lo_src, hi_src) = if k == 0 {
                (p.pd.as_slice(), p.pd.as_slice())
            } else {
                (ws.mu[k - 1].as_slice(), ws.rad[k - 1].as_slice())
            };
            let (sl, su) = (ws.sl[k].as_mut_slice(), ws.su[k].as_mut_slice());
            let lb = LayerBand {
                z,
                x: lo_src,
                y: hi_src,
                act: ws.act[k].as_slice(),
                d,
                first: k == 0,
                abar,
                knob: tangent_for_chord,
            };
            let (col_h, rest) = ws.col[k * n..].split_at_mut(n);
            let col_m = &mut rest[(m - 1) * n..m * n];
            ok &= layer_band(&lb, sl, su, col_h, col_m);
        }
        if !ok {
            return Ok(Band::Overflow);
        }
        if k + 1 == m {
            break;
        }
        let (mu, rad) = (&mut ws.mu[k], &mut ws.rad[k]);
        dense_step(
            &p.above[k].weight,
            &ws.absw[k],
            (&mut ws.sl[k], &mut ws.su[k]),
            (mu, rad),
        )?;
        if !(all_finite(ws.mu[k].as_slice()) && all_finite(ws.rad[k].as_slice())) {
            return Ok(Band::Overflow);
        }
    }
    Ok(Band::Fine)
}

/// R2, dense: from the band `[sL, sU]` of a layer's output slopes (`sl`, `su`, `d x N`),
/// the next pre-activation's slopes `W σ ∈ μ ± rad` for every `σ` in the band, with
/// `μ = fl(W c)`, `c = sL/2 + sU/2`, `rad = U_{2d}(fl(|W| r')) + (d + 1)η`, `r' = up(r +
/// γ_d |c|)`, `r` = the directed `max(sU - c, c - sL)` (so `[sL, sU] ⊆ c ± r` exactly,
/// and `|fl(W c) - W c| <= γ_d |W||c| + (d + 1)η` is inside `rad`). Overwrites `sl`,
/// `su` with `c`, `r'`. `absw = |W|`.
pub(crate) fn dense_step(
    w: &DMatrix<f64>,
    absw: &DMatrix<f64>,
    (sl, su): (&mut DMatrix<f64>, &mut DMatrix<f64>),
    (mu, rad): (&mut DMatrix<f64>, &mut DMatrix<f64>),
) -> Result<()> {
    let d = w.ncols();
    let gdc = gamma(d, U64);
    // Both loops branch-free (the `_select` roundings equal `up`, `ua`, `um` for every
    // input), so they vectorise: the same bits as the per-entry branches.
    widest(
        #[inline(always)]
        || {
            let (sl, su) = (sl.as_mut_slice(), su.as_mut_slice());
            for (a, b) in sl.iter_mut().zip(su.iter_mut()) {
                let x = 0.5 * *a + 0.5 * *b;
                let r =
                    up_select(up_select(*b - x).max(up_select(x - *a)) + up_select(gdc * x.abs()));
                (*a, *b) = (x, r);
            }
        },
    );
    gemm(mu, w, Transpose::No, sl, Transpose::No)?;
    gemm(rad, absw, Transpose::No, su, Transpose::No)?;
    let ops = UpOps::new(2 * d);
    let tail = (d as f64 + 1.0) * eta(U64);
    widest(
        #[inline(always)]
        || {
            for x in rad.as_mut_slice() {
                *x = up_select(ops.apply_select(*x) + tail);
            }
        },
    );
    Ok(())
}
