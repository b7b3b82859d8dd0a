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
//!
//! **Cost**: the layer's f64 operands (`W`, `V_i`, `|W|`, `VA`, `W_max`, `b_max`, row
//! maxima) live in the workspace ([`DenseDirs`]) and are overwritten per call; in f64
//! only the column sums of `s_e` enter the Hölder bound, so they are computed as five
//! vectorised column sums with one inflation per column (`degree0`), and `s_e` is never
//! stored; a direction that is zero on this layer (safe-layerwise: `V_i = 0`, `β_i = 0`)
//! contributes exact zeros, so its products are skipped. With several directions, a
//! degree-1 direction or degree-2 pair whose operands are bit for bit those of an
//! earlier one gets a copy of that product (a GEMM is a deterministic function of its
//! operands): with per-layer directions the directions of the layers above are exactly
//! zero, so on digits-mlp-deep (`k = 4`) about half of the products are shared
//! (docs/MAJORIZE.md, "Session 10").

use nalgebra::DMatrix;

use super::fp::Inflate;

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
    ///
    /// For `k > 1` the spread is summed buffer by buffer into `spread` (one vectorisable
    /// pass per coefficient buffer instead of a gather of `k + 2k²` buffers per entry),
    /// with every entry's additions in the same order as the per-entry sum, so the
    /// classes are the same bit for bit (tests/fast.rs).
    pub(crate) fn relu_classes(&self, amax: &[f64], class: &mut Vec<u8>, spread: &mut Vec<f64>) {
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
        spread.clear();
        spread.extend_from_slice(e);
        for i in 0..k {
            let a = amax[i];
            for (s, c) in spread.iter_mut().zip(self.c1[i].as_slice()) {
                *s += c.abs() * a;
            }
        }
        for ij in 0..k * k {
            let a = amax[ij / k] * amax[ij % k];
            for ((s, qm), qr) in spread
                .iter_mut()
                .zip(self.qm[ij].as_slice())
                .zip(self.qr[ij].as_slice())
            {
                *s += (qm.abs() + qr) * a;
            }
        }
        for ((o, c), s) in class.iter_mut().zip(c0).zip(spread.iter()) {
            *o = classify(*c, infl.apply(*s));
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

mod dense;

#[cfg(test)]
pub(crate) use dense::shared_count;
pub(crate) use dense::{DenseDirs, dense};
