//! The dense layer's rule on matrix Taylor models (the parent module's doc states the
//! invariant and the rule's degrees and rounding terms) and its f64 operands
//! ([`DenseDirs`]), kept in the workspace between calls.

use autodiff::{Real, Transpose};
use nalgebra::{DMatrix, DVector};

use super::super::degree0::{
    SeConsts, colsum_bounds, fill_stacked, fill_stacked_k1, se_matrix_k1, se_only_k1,
};
use super::super::fp::{Inflate, U64, fast_paths, gamma, up_ops};
use super::super::sparse::{
    RadiusOps, abs_colsums, note_taken, radius_k1, sparse_allowed, w_times_q,
};
use super::super::workspace::EnclosureWorkspace;
use super::Model;
use crate::error::Result;
use crate::prod::{gemm, gemm_acc};

/// One dense layer's operands in f64, kept in the workspace between calls (overwritten in
/// place while the shapes repeat, so a steady-state call allocates none of them): `W`,
/// `b`, per direction `V_i`, `β_i`, and what the rule derives from them and the box
/// (module doc): `|W|`, `VA = Σ ᾱ_l |V_l|`, `W_max = |W| + VA` and `b_max` (rounded up),
/// the row maxima of `W_max` (the Hölder bound) and `[|W| VA]` (the degree-2 radius GEMM).
#[derive(Debug)]
pub(crate) struct DenseDirs {
    pub(crate) w: DMatrix<f64>,
    pub(crate) b: Vec<f64>,
    pub(crate) v: Vec<DMatrix<f64>>,
    pub(crate) vb: Vec<Vec<f64>>,
    /// `V_i` and `β_i` are all `+0` (a per-layer direction of another layer): the
    /// products `V_i ·` are exactly zero and are skipped.
    pub(crate) v_zero: Vec<bool>,
    abs_w: DMatrix<f64>,
    va: DMatrix<f64>,
    wmax: DMatrix<f64>,
    bmax: Vec<f64>,
    rowmax: Vec<f64>,
    /// Row maxima of `VA` (the Hölder bound of the sparse degree-2 radius, `sparse`).
    va_rowmax: Vec<f64>,
    stacked_p: DMatrix<f64>,
    /// `[W; V_1]` (`2 d_out x n`, `k = 1` only): the degree-0/1/2 products that share a
    /// right operand in one GEMM each.
    wv: DMatrix<f64>,
}

/// Gives `m` the shape `rows x cols` (reallocating only when the shape changes).
fn shape(m: &mut DMatrix<f64>, rows: usize, cols: usize) {
    if m.shape() != (rows, cols) {
        *m = DMatrix::zeros(rows, cols);
    }
}

impl DenseDirs {
    /// An empty layer (filled by [`DenseDirs::load`]).
    pub(crate) fn new() -> DenseDirs {
        let z = || DMatrix::zeros(0, 0);
        DenseDirs {
            w: z(),
            b: Vec::new(),
            v: Vec::new(),
            vb: Vec::new(),
            v_zero: Vec::new(),
            abs_w: z(),
            va: z(),
            wmax: z(),
            bmax: Vec::new(),
            rowmax: Vec::new(),
            va_rowmax: Vec::new(),
            stacked_p: z(),
            wv: z(),
        }
    }

    /// Loads layer `W` (`rows x cols`), `b` and the directions' slices at `w_off` /
    /// `b_off` of the flat order, converted to f64, and derives the box operands.
    pub(crate) fn load<T: Real>(
        &mut self,
        w: &DMatrix<T>,
        b: &[T],
        dirs: &[DVector<T>],
        (w_off, b_off): (usize, usize),
        amax: &[f64],
    ) {
        let (r, c) = w.shape();
        let k = dirs.len();
        shape(&mut self.w, r, c);
        for (o, x) in self.w.as_mut_slice().iter_mut().zip(w.as_slice()) {
            *o = x.to_f64();
        }
        self.b.clear();
        self.b.extend(b.iter().map(|x| x.to_f64()));
        self.v.resize_with(k, || DMatrix::zeros(0, 0));
        self.vb.resize_with(k, Vec::new);
        self.v_zero.resize(k, false);
        for (i, d) in dirs.iter().enumerate() {
            let d = d.as_slice();
            shape(&mut self.v[i], r, c);
            for (o, x) in self.v[i]
                .as_mut_slice()
                .iter_mut()
                .zip(&d[w_off..w_off + r * c])
            {
                *o = x.to_f64();
            }
            self.vb[i].clear();
            self.vb[i].extend(d[b_off..b_off + r].iter().map(|x| x.to_f64()));
            self.v_zero[i] = self.v[i]
                .iter()
                .chain(&self.vb[i])
                .all(|x| x.to_bits() == 0);
        }
        // VA = Σ ᾱ_l |V_l| and W_max = |W| + VA (rounded up entrywise: 2k nonneg ops).
        shape(&mut self.abs_w, r, c);
        for (o, x) in self.abs_w.as_mut_slice().iter_mut().zip(self.w.as_slice()) {
            *o = x.abs();
        }
        shape(&mut self.va, r, c);
        self.va.fill(0.0);
        for (l, v) in self.v.iter().enumerate() {
            for (o, x) in self.va.as_mut_slice().iter_mut().zip(v.as_slice()) {
                *o += x.abs() * amax[l];
            }
        }
        let infl_va = Inflate::new(2 * k);
        for o in self.va.as_mut_slice() {
            *o = infl_va.apply(*o);
        }
        shape(&mut self.wmax, r, c);
        let infl_1 = Inflate::new(1);
        for ((o, w), x) in self
            .wmax
            .as_mut_slice()
            .iter_mut()
            .zip(self.abs_w.as_slice())
            .zip(self.va.as_slice())
        {
            *o = infl_1.apply(*w + x);
        }
        self.bmax.clear();
        for row in 0..r {
            let s: f64 =
                self.b[row].abs() + (0..k).map(|l| self.vb[l][row].abs() * amax[l]).sum::<f64>();
            self.bmax.push(up_ops(s, 2 * k + 1));
        }
        // Row maxima of W_max and of VA (the two Hölder bounds).
        row_maxima(&self.wmax, &mut self.rowmax);
        row_maxima(&self.va, &mut self.va_rowmax);
        shape(&mut self.stacked_p, r, 2 * c);
        self.stacked_p.columns_mut(0, c).copy_from(&self.abs_w);
        self.stacked_p.columns_mut(c, c).copy_from(&self.va);
        if k == 1 {
            shape(&mut self.wv, 2 * r, c);
            self.wv.rows_mut(0, r).copy_from(&self.w);
            self.wv.rows_mut(r, r).copy_from(&self.v[0]);
        }
    }
}

/// Propagates a model through `Z = W(α) A + b(α) 1ᵀ` (module doc). `c0_given`, if any,
/// is an f64 evaluation of the degree-0 part `W a0 + b` (a constant input's layer, from
/// the caller's forward pass), `c1_given` one of the degree-1 part `V a0 + β` (the same,
/// `k = 1`; any order: the rounding term charged for the rule's own product covers it);
/// `amax` is `ᾱ`, `u_t` the driver's unit roundoff.
pub(crate) fn dense(
    a: &Model,
    layer: &DenseDirs,
    (c0_given, c1_given): (Option<&[f64]>, Option<&[f64]>),
    amax: &[f64],
    u_t: f64,
    ws: &mut EnclosureWorkspace,
) -> Result<Model> {
    let k = a.k;
    let (d_out, n) = layer.w.shape();
    let cols = a.c0.ncols();
    // Every entry of c0, c1, e (and of q unless the input is constant) is written by a
    // GEMM with beta = 0 below, so those buffers need no zero fill.
    let mut z = ws.model_scratch(d_out, cols, k, a.constant);

    // k = 1 on a non-constant input: `[W; V] a0` and `[W; V] a1` in one GEMM each (the
    // right operand packed once), then c0 = W a0 + b, c1 = (V a0 + W a1) + β and
    // qm = W qm_a + V a1 (below). Each sum of two separately rounded n-term products
    // and one addition is within the γ_{2n+2} charged for it.
    let stacked = k == 1 && !a.constant && !layer.v_zero[0] && c0_given.is_none();
    // With one direction, an input whose degree-2 coefficients are mostly exact zeros (a
    // ReLU after the first layer) takes the sparse degree-2 products (`sparse`).
    let mut pattern = std::mem::take(&mut ws.pattern);
    let sparse = stacked
        && sparse_allowed()
        && d_out > 0
        && n > 0
        && n < u32::MAX as usize
        && if ws.q_at_kinks {
            pattern.fill_from_list_k1(&ws.kinks, a)
        } else {
            pattern.scan_k1(a)
        };
    if sparse {
        note_taken();
    }
    if stacked {
        let mut t0 = ws.scratch(2 * d_out, cols);
        let mut t1 = ws.scratch(2 * d_out, cols);
        gemm(&mut t0, &layer.wv, Transpose::No, &a.c0, Transpose::No)?;
        gemm(&mut t1, &layer.wv, Transpose::No, &a.c1[0], Transpose::No)?;
        if sparse {
            w_times_q(&layer.w, &a.qm[0], &pattern, &mut z.qm[0]);
        } else {
            gemm(
                &mut z.qm[0],
                &layer.w,
                Transpose::No,
                &a.qm[0],
                Transpose::No,
            )?;
        }
        let (vb, d) = (&layer.vb[0], d_out);
        for ((((t0c, t1c), c0c), c1c), qmc) in t0
            .as_slice()
            .chunks_exact(2 * d)
            .zip(t1.as_slice().chunks_exact(2 * d))
            .zip(z.c0.as_mut_slice().chunks_exact_mut(d))
            .zip(z.c1[0].as_mut_slice().chunks_exact_mut(d))
            .zip(z.qm[0].as_mut_slice().chunks_exact_mut(d))
        {
            for r in 0..d {
                c0c[r] = t0c[r] + layer.b[r];
                c1c[r] = (t0c[d + r] + t1c[r]) + vb[r];
                qmc[r] += t1c[d + r];
            }
        }
        ws.give(t0);
        ws.give(t1);
    }
    // Degree 0: W a0 + b (or the caller's f64 evaluation of it, any order: the same
    // rounding term below covers it).
    match c0_given {
        _ if stacked => {}
        Some(c0) if c0.len() == z.c0.len() => z.c0.as_mut_slice().copy_from_slice(c0),
        _ => {
            gemm(&mut z.c0, &layer.w, Transpose::No, &a.c0, Transpose::No)?;
            add_cols(&mut z.c0, &layer.b);
        }
    }
    // Degree 1: W a1_i + V_i a0 + β_i (the second product accumulated into the first:
    // one sum of 2n products, within the γ_{2n+2} charged below). A zero `V_i` (and
    // `β_i`) contributes exact zeros, so its product is skipped (the same values, up to
    // the sign of zeros, which `+ β_i = +0` then normalises as before).
    for i in 0..k {
        if stacked {
            break;
        }
        if let Some(c1) = c1_given
            && k == 1
            && a.constant
            && c1.len() == z.c1[0].len()
        {
            z.c1[0].as_mut_slice().copy_from_slice(c1);
            break;
        }
        if layer.v_zero[i] {
            if a.constant {
                z.c1[i].fill(0.0);
            } else if let Some(r) = (0..i)
                .filter(|_| fast_paths())
                .find(|&r| layer.v_zero[r] && same_bits(&a.c1[r], &a.c1[i]))
            {
                // The same operands as direction r (`+ β = +0` too): the same result.
                note_shared();
                copy_within(&mut z.c1, r, i);
                continue;
            } else {
                gemm(
                    &mut z.c1[i],
                    &layer.w,
                    Transpose::No,
                    &a.c1[i],
                    Transpose::No,
                )?;
            }
        } else {
            gemm(
                &mut z.c1[i],
                &layer.v[i],
                Transpose::No,
                &a.c0,
                Transpose::No,
            )?;
            if !a.constant {
                gemm_acc(&mut z.c1[i], &layer.w, &a.c1[i])?;
            }
        }
        add_cols(&mut z.c1[i], &layer.vb[i]);
    }
    // The enclosure's own rounding of c0, c1 (γ_{2n+1} of the absolute terms, times ᾱ for c1)
    // and the driver's error, gathered into one nonnegative GEMM with W_max:
    // s_e = e_a + γ'(|a0| + Σ ᾱ_i |a1_i|) + τ |Â|, plus β' b_max.
    let g_own = gamma(2 * n + 2, U64);
    let g_round = gamma(2 * k + 2, u_t);
    let g_gemm = gamma(n + 1, u_t);
    let tau = up_ops(g_round + g_gemm * (1.0 + g_round), 3);
    let beta = up_ops(g_own + tau + g_round, 3);
    let infl_e = Inflate::new(2 * k + 6);
    let infl_mag = Inflate::new(2 * (k + k * k) + 2);
    let infl_z = Inflate::new(n + 3);
    let se = SeConsts {
        g_own,
        tau,
        infl_e,
        infl_mag,
    };
    // With one direction the degree-2 operand `stacked_s` (below) is filled once, by a
    // dedicated loop (f64) or in the same pass as `s_e` (f32).
    let fused_q = k == 1 && !a.constant && !sparse;
    let mut stacked_s = if a.constant || sparse {
        DMatrix::zeros(0, 0)
    } else {
        ws.scratch(2 * n, cols)
    };
    let g2 = g_own;
    // Column sums of `|a1|` for the sparse radius (filled with the f64 path's column sums).
    let mut h = std::mem::take(&mut ws.abs_sums);
    h.clear();
    if sparse && u_t > U64 {
        abs_colsums(&a.c1[0], &mut h);
    }
    if u_t <= U64 {
        // T = f64: the degree-0 radius is rounding-level, so the GEMM is replaced by the
        // Hölder bound (W_max s_e)_in <= max_j W_max,ij · Σ_j s_e,jn (all terms >= 0),
        // O(d_out N) instead of a product: a few times looser on a term of order
        // γ |W||A|, which costs nothing visible in f64 (in f32 it would, so T = f32 keeps
        // the GEMM). Only the column sums of s_e are needed, so s_e is never stored.
        let mut colsum = ws.scratch(cols, 1);
        colsum_bounds(
            a,
            amax,
            g_own,
            tau,
            &mut colsum,
            sparse.then_some(&mut h),
            sparse.then_some(&pattern),
        );
        if fused_q {
            fill_stacked_k1(a, amax[0], g2, &mut stacked_s);
        }
        // z.e = infl_z(infl_1(rowmax · colsum) + β' b_max): the Hölder product and the
        // degree-0 bias term in one pass (`colsum` already bounds the exact sums).
        let infl_1 = Inflate::new(1);
        for (col, s) in
            z.e.as_mut_slice()
                .chunks_exact_mut(d_out)
                .zip(colsum.as_slice())
        {
            for ((x, rm), bm) in col.iter_mut().zip(&layer.rowmax).zip(&layer.bmax) {
                *x = infl_z.apply(infl_1.apply(rm * s) + beta * bm);
            }
        }
        ws.give(colsum);
    } else {
        let mut s_e = ws.scratch(n, cols);
        if fused_q {
            se_matrix_k1(a, amax[0], &se, g2, &mut s_e, &mut stacked_s);
        } else if sparse {
            se_only_k1(a, amax[0], &se, g2, &mut s_e);
        } else {
            for (idx, s) in s_e.as_mut_slice().iter_mut().enumerate() {
                *s = se.entry(a, idx, amax);
            }
        }
        gemm(&mut z.e, &layer.wmax, Transpose::No, &s_e, Transpose::No)?;
        for col in z.e.as_mut_slice().chunks_exact_mut(d_out) {
            for (x, bm) in col.iter_mut().zip(&layer.bmax) {
                *x = infl_z.apply(*x + beta * bm);
            }
        }
        ws.give(s_e);
    }
    if a.constant {
        // q = 0 and a1 = 0: no degree-2 term.
        ws.pattern = pattern;
        ws.abs_sums = h;
        return Ok(z);
    }
    if sparse {
        let ops = RadiusOps {
            abs_w: &layer.abs_w,
            va: &layer.va,
            va_rowmax: &layer.va_rowmax,
        };
        radius_k1(
            &ops,
            a,
            &pattern,
            &h,
            (g2, up_ops(g2 / amax[0], 1)),
            &mut z.qr[0],
        );
        ws.abs_sums = h;
        ws.pattern = pattern;
        return Ok(z);
    }
    ws.pattern = pattern;
    ws.abs_sums = h;
    // Degree 2: mid W qm_ij + V_i a1_j; radius
    // |W|(qr_ij + γ|qm_ij|) + VA(|qm_ij| + qr_ij + (γ/ᾱ_i)|a1_j|) (fold and own rounding).
    //
    // A pair whose operands are bit for bit those of an earlier pair gets a copy of that
    // pair's product (a GEMM is a deterministic function of its operands): with
    // per-layer directions (safe-layerwise) the directions of the layers above this one
    // are exactly zero here, so most pairs share their operands (`qm = ±0`, equal `qr`,
    // `a1_j = 0`, no `V_i` term). Mid: the same `qm`, and no `V_i` term in both or the
    // same `i` and bit-equal `a1_j`. Radius: the same
    // `qm` and `qr`, and either the same `j` and `γ/ᾱ_i` or `a1_j = 0` for both (then
    // `(γ/ᾱ_i)|a1_j| = +0` for every finite `γ/ᾱ_i`); the operand `stacked_s` is then
    // equal bit for bit (`fill_stacked`).
    let infl_q = Inflate::new(2 * n + 1);
    let gi = |i: usize| up_ops(g2 / amax[i], 1);
    let mut a1_zero = std::mem::take(&mut ws.a1_zero);
    a1_zero.clear();
    a1_zero.extend(a.c1.iter().map(|m| m.iter().all(|x| *x == 0.0)));
    let zero_tail = |p: usize| a1_zero[p % k] && gi(p / k).is_finite();
    // The tests switch sharing off with the fast paths (`fp::Knobs::general_only`).
    let share = fast_paths();
    let mut reps_m = std::mem::take(&mut ws.reps_m);
    let mut reps_r = std::mem::take(&mut ws.reps_r);
    reps_m.clear();
    reps_r.clear();
    for i in 0..k {
        for j in 0..k {
            let ij = i * k + j;
            if !stacked {
                // The `V_i a1_j` term is the same if both pairs have none, or if both
                // have the same `V_i` and bit-equal `a1_j`.
                let same = reps_m.iter().copied().filter(|_| share).find(|&r| {
                    let v_same = if layer.v_zero[i] {
                        layer.v_zero[r / k]
                    } else {
                        r / k == i && same_bits(&a.c1[r % k], &a.c1[j])
                    };
                    v_same && same_bits(&a.qm[r], &a.qm[ij])
                });
                if let Some(r) = same {
                    note_shared();
                    copy_within(&mut z.qm, r, ij);
                } else {
                    gemm(
                        &mut z.qm[ij],
                        &layer.w,
                        Transpose::No,
                        &a.qm[ij],
                        Transpose::No,
                    )?;
                    if !layer.v_zero[i] {
                        gemm_acc(&mut z.qm[ij], &layer.v[i], &a.c1[j])?;
                    }
                    reps_m.push(ij);
                }
            }
            let same = reps_r.iter().copied().filter(|_| share).find(|&r| {
                let tail = (zero_tail(r) && zero_tail(ij))
                    || (r % k == j && gi(r / k).to_bits() == gi(i).to_bits());
                tail && same_bits(&a.qm[r], &a.qm[ij]) && same_bits(&a.qr[r], &a.qr[ij])
            });
            if let Some(r) = same {
                note_shared();
                copy_within(&mut z.qr, r, ij);
                continue;
            }
            if !fused_q {
                fill_stacked(a, ij, j, gi(i), g2, n, &mut stacked_s);
            }
            gemm(
                &mut z.qr[ij],
                &layer.stacked_p,
                Transpose::No,
                &stacked_s,
                Transpose::No,
            )?;
            for x in z.qr[ij].as_mut_slice() {
                *x = infl_q.apply(*x);
            }
            reps_r.push(ij);
        }
    }
    ws.reps_m = reps_m;
    ws.reps_r = reps_r;
    ws.a1_zero = a1_zero;
    ws.give(stacked_s);
    Ok(z)
}

#[cfg(test)]
thread_local! {
    static SHARED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Products this thread copied from an earlier pair or direction instead of forming them
/// (tests only: the sharing test is not vacuous).
#[cfg(test)]
pub(crate) fn shared_count() -> usize {
    SHARED.with(|c| c.get())
}

#[inline(always)]
fn note_shared() {
    #[cfg(test)]
    SHARED.with(|c| c.set(c.get() + 1));
}

/// `x` and `y` have the same shape and the same bits entry by entry.
fn same_bits(x: &DMatrix<f64>, y: &DMatrix<f64>) -> bool {
    x.shape() == y.shape()
        && x.as_slice()
            .iter()
            .zip(y.as_slice())
            .all(|(a, b)| a.to_bits() == b.to_bits())
}

/// `v[to] = v[from]` for `from < to` (same shapes).
fn copy_within(v: &mut [DMatrix<f64>], from: usize, to: usize) {
    let (head, tail) = v.split_at_mut(to);
    tail[0].copy_from(&head[from]);
}

/// `out[r] = max_j m[r, j]` of a nonnegative matrix (0 for no columns), NaN kept
/// (`f64::max` would drop it, and a NaN must reach the bound).
fn row_maxima(m: &DMatrix<f64>, out: &mut Vec<f64>) {
    out.clear();
    out.extend(m.row_iter().map(|row| {
        row.iter()
            .fold(0.0f64, |mx, x| if x.is_nan() || *x > mx { *x } else { mx })
    }));
}

fn add_cols(m: &mut DMatrix<f64>, b: &[f64]) {
    let d = m.nrows();
    if d == 0 {
        return;
    }
    for col in m.as_mut_slice().chunks_exact_mut(d) {
        for (x, bb) in col.iter_mut().zip(b) {
            *x += bb;
        }
    }
}
