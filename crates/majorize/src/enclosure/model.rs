//! Matrix Taylor models: every unit of every sample carries a degree-2 enclosure in
//! `alpha`, and the dense layer's propagation of them with GEMMs.
//!
//! **Invariant** of a [`Model`] for an intermediate `d x N` matrix `Z(alpha)`: for every
//! `alpha` in the box `B = [0, ᾱ]^k`, both the exact value `Z(alpha)` and the value the
//! driver computes in floating point at the weights `fl(x + Σ α_i v_i)` lie, entrywise, in
//!
//! ```text
//! c0 + Σ_i c1_i α_i + Σ_ij α_i α_j [qm_ij - qr_ij, qm_ij + qr_ij] + [-e, e].
//! ```
//!
//! `c0`, `c1_i` are plain floating-point numbers (their own rounding errors are folded
//! into `e`), the degree-2 coefficients are intervals in midpoint-radius form (so that
//! point x interval products are two GEMMs), and `e >= 0` collects everything of degree 0:
//! rounding of the coefficients, the driver's evaluation error and the rounding of the
//! weights.
//!
//! **Dense layer** `Z = W(α) A + b(α) 1ᵀ` with `W(α) = W + Σ α_i V_i`, `b(α) = b + Σ α_i β_i`
//! (bilinear in weights and activations). With `A = a0 + Σ α_i a1_i + αᵀ[Q]α + ρ`:
//!
//! - degree 0: `W a0 + b`; degree 1: `W a1_i + V_i a0 + β_i`;
//! - degree 2: `W [Q_ij] + V_i a1_j`;
//! - degree 3: `Σ_l α_l V_l [Q_ij]` is folded into degree 2 with `α_l ∈ [0, ᾱ_l]`:
//!   it lies in `±(Σ_l ᾱ_l |V_l|)(|qm_ij| + qr_ij)`;
//! - the degree-0 part `W(α) ρ` is bounded by `W_max e`, `W_max = |W| + Σ ᾱ_l |V_l|`
//!   (with the rounding terms, one nonnegative product `W_max s_e`; in f64 it is bounded
//!   by Hölder, `max_j W_max,ij · Σ_j s_e,jn`, instead of a GEMM).
//!
//! Floating point: a GEMM with inner dimension `n` satisfies
//! `|fl(PM) - PM| <= γ_n |P||M|` (Higham, Thm 3.5 / eq. 3.13, any order, FMA or not). The
//! driver computes `fl(Ŵ Â + b̂)` with `Ŵ = W(α) + Δ`, `|Δ| <= γ_{2k+2}^T W_max` (the
//! rounding of `apply_step`), `Â` within the input model; its deviation from the exact map
//! of the same input is at most `D |Â| + γ_{n+1}^T((W_max + D)|Â| + b_max + D_b) + D_b`,
//! which is added to `e` (see `docs/MAJORIZE.md`, "Rounding").

use autodiff::Transpose;
use nalgebra::DMatrix;

use super::fp::{Inflate, U64, gamma, up_ops};
use super::workspace::EnclosureWorkspace;
use crate::error::Result;
use crate::prod::{gemm, gemm_acc};

/// A degree-2 matrix Taylor model (see the module doc for its invariant).
#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub(crate) k: usize,
    pub(crate) c0: DMatrix<f64>,
    pub(crate) c1: Vec<DMatrix<f64>>,
    pub(crate) qm: Vec<DMatrix<f64>>,
    pub(crate) qr: Vec<DMatrix<f64>>,
    pub(crate) e: DMatrix<f64>,
    /// `true` while the model is a constant (the input data): c1, q and e are zero.
    pub(crate) constant: bool,
}

impl Model {
    /// ReLU classes per entry, from the spread `Σ|c1_i| ᾱ_i + Σ ᾱ_i ᾱ_j (|qm| + qr) + e`
    /// (rounded up, an upper bound of `max_α |value - c0|` over the box): 1 if
    /// `c0 - spread > 0` (active on the whole box), 0 if `c0 + spread < 0` (inactive),
    /// 2 otherwise (the kink may be inside the range; NaN also lands here).
    pub(crate) fn relu_classes(&self, amax: &[f64], class: &mut Vec<u8>) {
        let k = self.k;
        let n = self.e.len();
        class.clear();
        class.resize(n, 2);
        let infl = Inflate::new(2 * (k + k * k) + 2);
        let (c0, e) = (self.c0.as_slice(), self.e.as_slice());
        let classify = |c: f64, sp: f64| -> u8 {
            if c - sp > 0.0 {
                1
            } else if c + sp < 0.0 {
                0
            } else {
                2
            }
        };
        if self.constant {
            for ((o, c), s) in class.iter_mut().zip(c0).zip(e) {
                *o = classify(*c, *s);
            }
            return;
        }
        if k == 1 {
            let (c1, qm, qr) = (
                self.c1[0].as_slice(),
                self.qm[0].as_slice(),
                self.qr[0].as_slice(),
            );
            let (a, aa) = (amax[0], amax[0] * amax[0]);
            for (idx, o) in class.iter_mut().enumerate() {
                let s = e[idx] + c1[idx].abs() * a + (qm[idx].abs() + qr[idx]) * aa;
                *o = classify(c0[idx], infl.apply(s));
            }
            return;
        }
        let aa: Vec<f64> = (0..k * k).map(|ij| amax[ij / k] * amax[ij % k]).collect();
        for (idx, o) in class.iter_mut().enumerate() {
            let mut s = e[idx];
            for i in 0..k {
                s += self.c1[i].as_slice()[idx].abs() * amax[i];
            }
            for (ij, a) in aa.iter().enumerate() {
                s += (self.qm[ij].as_slice()[idx].abs() + self.qr[ij].as_slice()[idx]) * a;
            }
            *o = classify(c0[idx], infl.apply(s));
        }
    }

    /// Entrywise bound of `max_α |value|` over the box at entry `idx`: `|c0| + Σ|c1_i| ᾱ_i +
    /// Σ ᾱ_i ᾱ_j (|qm| + qr) + e`, rounded up; `infl` must be `Inflate::new(2(k + k²) + 2)`.
    #[inline]
    pub(crate) fn magnitude_at(&self, idx: usize, amax: &[f64], infl: Inflate) -> f64 {
        let k = self.k;
        let mut s = self.c0.as_slice()[idx].abs() + self.e.as_slice()[idx];
        if !self.constant {
            for i in 0..k {
                s += self.c1[i].as_slice()[idx].abs() * amax[i];
                for j in 0..k {
                    let q = self.qm[i * k + j].as_slice()[idx].abs()
                        + self.qr[i * k + j].as_slice()[idx];
                    s += q * (amax[i] * amax[j]);
                }
            }
        }
        infl.apply(s)
    }
}

/// One dense layer's data in f64: `W`, `b`, and per direction `V_i`, `β_i`.
pub(crate) struct DenseDirs {
    pub(crate) w: DMatrix<f64>,
    pub(crate) b: Vec<f64>,
    pub(crate) v: Vec<DMatrix<f64>>,
    pub(crate) vb: Vec<Vec<f64>>,
}

/// Propagates a model through `Z = W(α) A + b(α) 1ᵀ` (module doc). `amax` is `ᾱ`,
/// `u_t` the driver's unit roundoff.
pub(crate) fn dense(
    a: &Model,
    layer: &DenseDirs,
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
    let abs_w = layer.w.abs();
    // VA = Σ ᾱ_l |V_l| and W_max = |W| + VA (rounded up entrywise: 2k nonneg ops).
    let mut va = DMatrix::zeros(d_out, n);
    for (l, v) in layer.v.iter().enumerate() {
        for (o, x) in va.as_mut_slice().iter_mut().zip(v.as_slice()) {
            *o += x.abs() * amax[l];
        }
    }
    let infl_va = Inflate::new(2 * k);
    for o in va.as_mut_slice() {
        *o = infl_va.apply(*o);
    }
    let mut wmax = abs_w.clone();
    let infl_1 = Inflate::new(1);
    for (o, x) in wmax.as_mut_slice().iter_mut().zip(va.as_slice()) {
        *o = infl_1.apply(*o + x);
    }
    let bmax: Vec<f64> = (0..d_out)
        .map(|r| {
            let s: f64 =
                layer.b[r].abs() + (0..k).map(|l| layer.vb[l][r].abs() * amax[l]).sum::<f64>();
            up_ops(s, 2 * k + 1)
        })
        .collect();

    // Degree 0: W a0 + b.
    gemm(&mut z.c0, &layer.w, Transpose::No, &a.c0, Transpose::No)?;
    add_cols(&mut z.c0, &layer.b);
    // Degree 1: W a1_i + V_i a0 + β_i (the second product accumulated into the first:
    // one sum of 2n products, within the γ_{2n+2} charged below).
    for i in 0..k {
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
    let mut s_e = ws.scratch(n, cols);
    let infl_e = Inflate::new(2 * k + 6);
    let infl_mag = Inflate::new(2 * (k + k * k) + 2);
    if k == 1 && !a.constant {
        // The same arithmetic as the general loop below, on slices (k = 1 fast path).
        let (c0, c1, qm, qr, e) = (
            a.c0.as_slice(),
            a.c1[0].as_slice(),
            a.qm[0].as_slice(),
            a.qr[0].as_slice(),
            a.e.as_slice(),
        );
        let (a0, aa) = (amax[0], amax[0] * amax[0]);
        for (idx, s) in s_e.as_mut_slice().iter_mut().enumerate() {
            let (ac0, ac1, ea) = (c0[idx].abs(), c1[idx].abs(), e[idx]);
            let m = ac0 + ea + ac1 * a0 + (qm[idx].abs() + qr[idx]) * aa;
            let a_mag = infl_mag.apply(m);
            let own = ac0 + ac1 * a0;
            *s = infl_e.apply(ea + g_own * own + tau * a_mag);
        }
    } else {
        for (idx, s) in s_e.as_mut_slice().iter_mut().enumerate() {
            let a_mag = a.magnitude_at(idx, amax, infl_mag);
            let mut own = a.c0.as_slice()[idx].abs();
            if !a.constant {
                for i in 0..k {
                    own += a.c1[i].as_slice()[idx].abs() * amax[i];
                }
            }
            let v = a.e.as_slice()[idx] + g_own * own + tau * a_mag;
            *s = infl_e.apply(v);
        }
    }
    if u_t <= U64 {
        // T = f64: the degree-0 radius is rounding-level, so the GEMM is replaced by the
        // Hölder bound (W_max s_e)_in <= max_j W_max,ij · Σ_j s_e,jn (all terms >= 0),
        // O(d_out N) instead of a product: a few times looser on a term of order
        // γ |W||A|, which costs nothing visible in f64 (in f32 it would, so T = f32 keeps
        // the GEMM).
        holder_bound(&mut z.e, &wmax, &s_e);
    } else {
        gemm(&mut z.e, &wmax, Transpose::No, &s_e, Transpose::No)?;
    }
    let infl_z = Inflate::new(n + 3);
    for mut col in z.e.column_iter_mut() {
        for (x, bm) in col.iter_mut().zip(&bmax) {
            *x = infl_z.apply(*x + beta * bm);
        }
    }
    ws.give(s_e);
    if a.constant {
        // q = 0 and a1 = 0: no degree-2 term.
        return Ok(z);
    }
    // Degree 2: mid W qm_ij + V_i a1_j; radius
    // |W|(qr_ij + γ|qm_ij|) + VA(|qm_ij| + qr_ij + (γ/ᾱ_i)|a1_j|) (fold and own rounding).
    let g2 = gamma(2 * n + 2, U64);
    let stacked_p = {
        let mut p = DMatrix::zeros(d_out, 2 * n);
        p.columns_mut(0, n).copy_from(&abs_w);
        p.columns_mut(n, n).copy_from(&va);
        p
    };
    let mut stacked_s = ws.scratch(2 * n, cols);
    for i in 0..k {
        for j in 0..k {
            let ij = i * k + j;
            gemm(
                &mut z.qm[ij],
                &layer.w,
                Transpose::No,
                &a.qm[ij],
                Transpose::No,
            )?;
            gemm_acc(&mut z.qm[ij], &layer.v[i], &a.c1[j])?;
            let gi = up_ops(g2 / amax[i], 1);
            let (i2, i4) = (Inflate::new(2), Inflate::new(4));
            let (qm_a, qr_a, c1_a) = (a.qm[ij].as_slice(), a.qr[ij].as_slice(), a.c1[j].as_slice());
            // Column c of stacked_s is [qr + γ|qm| ; |qm| + qr + (γ/ᾱ_i)|a1_j|] (2n rows).
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
            gemm(
                &mut z.qr[ij],
                &stacked_p,
                Transpose::No,
                &stacked_s,
                Transpose::No,
            )?;
            let infl_q = Inflate::new(2 * n + 1);
            for x in z.qr[ij].as_mut_slice() {
                *x = infl_q.apply(*x);
            }
        }
    }
    ws.give(stacked_s);
    Ok(z)
}

/// `out_in >= max_j p_ij · Σ_j s_jn >= (P S)_in` for nonnegative `P`, `S` (rounded up:
/// the column sums through [`Inflate`] for their `rows - 1` additions, the product by
/// one more inflation). NaN propagates (`f64::max` would drop it, so a NaN row maximum
/// is kept explicitly).
fn holder_bound(out: &mut DMatrix<f64>, p: &DMatrix<f64>, s: &DMatrix<f64>) {
    let rows = s.nrows();
    let infl_sum = Inflate::new(rows);
    let infl_1 = Inflate::new(1);
    let rowmax: Vec<f64> = p
        .row_iter()
        .map(|r| {
            r.iter()
                .fold(0.0f64, |m, x| if x.is_nan() || *x > m { *x } else { m })
        })
        .collect();
    for (mut o, sc) in out.column_iter_mut().zip(s.column_iter()) {
        let sum = infl_sum.apply(sc.iter().sum::<f64>());
        for (x, rm) in o.iter_mut().zip(&rowmax) {
            *x = infl_1.apply(rm * sum);
        }
    }
}

fn add_cols(m: &mut DMatrix<f64>, b: &[f64]) {
    for mut col in m.column_iter_mut() {
        for (x, bb) in col.iter_mut().zip(b) {
            *x += bb;
        }
    }
}
