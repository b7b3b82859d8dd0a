//! The beta-divergence and its Févotte-Idier auxiliary function (ALGORITHMS.md 1.1-1.6).
//!
//! Source: C. Févotte, J. Idier, "Algorithms for nonnegative matrix factorization with
//! the beta-divergence", Neural Computation 23(9), 2011 (arXiv 1010.1763).
//!
//! `d_beta(x|y)` for `x >= 0`, `y > 0` is convex + concave + constant in `y`
//! ([`split`]). For `C(h) = sum_f d_beta(v_f | [W h]_f)` with `W >= 0`, anchor
//! `h~ > 0`, `v~ = W h~`, Jensen on the convex part (weights `w_fk h~_k / v~_f`) and the
//! tangent on the concave part give a separable majorizer. Writing `p_k = h_k / h~_k`,
//! `N_k = sum_f w_fk v_f v~_f^(beta-2)` and `D_k = sum_f w_fk v~_f^(beta-1)`:
//!
//! `G(h|h~) = C(h~) + sum_k h~_k D_k [psi_{R_k}(p_k) - psi_{R_k}(1)]`, `R_k = N_k / D_k`,
//!
//! - `beta < 1`:       `psi_R(p) = R p^(beta-1) / (1 - beta) + p`
//! - `beta = 1`:       `psi_R(p) = p - R log p`
//! - `1 < beta <= 2`:  `psi_R(p) = p^beta / beta - R p^(beta-1) / (beta - 1)`
//! - `beta > 2`:       `psi_R(p) = p^beta / beta - R p`
//!
//! (derived here from the split; `psi_R` is strictly convex, its minimiser is the MM
//! point `p = R^gamma(beta)`, [`gamma`]). Differences `psi(p) - psi(1)` are evaluated
//! with `expm1`/`ln` forms to avoid cancellation.
//!
//! **Penalties** (scikit-learn's convention, ALGORITHMS.md 1.7): `l1 sum h + (l2/2) ||h||^2`.
//! The `l1` term is linear; for `beta > 1` it is majorized by the tangent bound
//! `p <= p^beta/beta + (beta-1)/beta`, for `beta >= 2` the `l2` term by Young's bound
//! `p^2/2 <= p^beta/beta + (beta-2)/(2 beta)` (both tight at `p = 1`). Both then add to
//! `D_k`: `D_eff = D + l1 + [beta >= 2] l2 h~`. For `beta < 2` the `l2` term is kept
//! exactly, `q = l2 h~`, and the per-entry surrogate is
//! `Phi(p) = D_eff (psi_R(p) - psi_R(1)) + q (p^2 - 1)/2` with `R = N / D_eff`.
//! Its minimiser is `R^gamma` when `q = 0` (so scikit-learn's penalised update
//! `(N / (D + l1 + l2 h))^gamma` is an exact MM step for `beta >= 2`, and for every beta
//! when `l2 = 0`), and a scalar root solve ([`crate::root::ROOT_TOL`]) otherwise.
//!
//! **Majorization-equalization** (ME, 1.6): the other point `p != 1` of the level set
//! `Phi(p) = Phi(1) = 0`. Closed forms without `l2` (for `beta < 2`): `beta = 0`: `p = R`
//! (the heuristic update); `beta = 2`: `p = 2R - 1`. Otherwise a bracketed safeguarded
//! Newton solve returning the end of the final bracket with `Phi <= 0`, so the surrogate
//! never increases (in exact arithmetic the tolerance is [`crate::root::ROOT_TOL`]).
//! **Nonnegativity safeguard**: when the MM point is below 1 and `Phi(0+) <= 0` (possible
//! for `beta > 1`, e.g. `R < 1/2` at `beta = 2`), no positive ME point exists; we then
//! take the MM point itself (documented choice: it is the surrogate's minimiser, never
//! reaches zero, and keeps the descent guarantee).

use autodiff::Real;
use nalgebra::{DMatrix, DVector};

use crate::error::{MajorizeError, Result, shape_err};
use crate::root::solve_bracket;
use crate::surrogate::{
    InnerSolve, Minimizer, MinimizerKind, Objective, Surrogate, SurrogateBuilder, check_len,
};

/// The MM exponent `gamma(beta)`: `1/(2 - beta)` for `beta < 1`, 1 on `[1, 2]`,
/// `1/(beta - 1)` for `beta > 2` (Févotte & Idier 2011, Table 2).
pub fn gamma(beta: f64) -> f64 {
    if beta < 1.0 {
        1.0 / (2.0 - beta)
    } else if beta > 2.0 {
        1.0 / (beta - 1.0)
    } else {
        1.0
    }
}

/// The scalar beta-divergence `d_beta(x|y)` (`x >= 0`, `y > 0`; `x > 0` for
/// `beta <= 0`), ALGORITHMS.md 1.1; `beta = 1` is the generalised KL divergence
/// (`0 log 0 = 0`), `beta = 0` Itakura-Saito, `beta = 2` is `(x - y)^2 / 2`.
pub fn divergence(x: f64, y: f64, beta: f64) -> f64 {
    if beta == 2.0 {
        0.5 * (x - y) * (x - y)
    } else if beta == 1.0 {
        if x == 0.0 {
            y
        } else {
            x * (x / y).ln() - x + y
        }
    } else if beta == 0.0 {
        x / y - (x / y).ln() - 1.0
    } else {
        (x.powf(beta) + (beta - 1.0) * y.powf(beta) - beta * x * y.powf(beta - 1.0))
            / (beta * (beta - 1.0))
    }
}

/// `d/dy d_beta(x|y) = y^(beta-2) (y - x)` (every beta).
pub fn divergence_dy(x: f64, y: f64, beta: f64) -> f64 {
    y.powf(beta - 2.0) * (y - x)
}

/// The split `d_beta(x|y) = dc(y) + dv(y) + d0(x)` into a convex, a concave and a
/// constant part (ALGORITHMS.md 1.2), returned as `(dc, dv, d0)`.
pub fn split(x: f64, y: f64, beta: f64) -> (f64, f64, f64) {
    if beta == 0.0 {
        (x / y, y.ln(), -x.ln() - 1.0)
    } else if beta < 1.0 {
        (
            x * y.powf(beta - 1.0) / (1.0 - beta),
            y.powf(beta) / beta,
            x.powf(beta) / (beta * (beta - 1.0)),
        )
    } else if beta <= 2.0 {
        (divergence(x, y, beta), 0.0, 0.0)
    } else {
        (
            y.powf(beta) / beta,
            -x * y.powf(beta - 1.0) / (beta - 1.0),
            x.powf(beta) / (beta * (beta - 1.0)),
        )
    }
}

/// `psi_R(p) - psi_R(1)` (see the module doc), cancellation-free.
pub fn delta_psi(p: f64, r: f64, beta: f64) -> f64 {
    let lp = p.ln();
    let em = |a: f64| (a * lp).exp_m1();
    if beta < 1.0 {
        r * em(beta - 1.0) / (1.0 - beta) + (p - 1.0)
    } else if beta == 1.0 {
        (p - 1.0) - r * lp
    } else if beta <= 2.0 {
        em(beta) / beta - r * em(beta - 1.0) / (beta - 1.0)
    } else {
        em(beta) / beta - r * (p - 1.0)
    }
}

/// `d/dp psi_R(p)`.
pub fn dpsi(p: f64, r: f64, beta: f64) -> f64 {
    if beta < 1.0 {
        1.0 - r * p.powf(beta - 2.0)
    } else if beta <= 2.0 {
        p.powf(beta - 1.0) - r * p.powf(beta - 2.0)
    } else {
        p.powf(beta - 1.0) - r
    }
}

/// The per-entry surrogate data `(N, D_eff, q)` (see the module doc), with the
/// surrogate `Phi(p) = D_eff (psi_R(p) - psi_R(1)) + q (p^2 - 1) / 2`, `R = N / D_eff`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntrySurrogate {
    /// `N = sum_f w_fk v_f v~_f^(beta-2)` (numerator).
    pub n: f64,
    /// `D_eff = D + l1 + [beta >= 2] l2 h~` (effective denominator).
    pub d_eff: f64,
    /// `q = [beta < 2] l2 h~` (exact quadratic penalty coefficient).
    pub q: f64,
    /// The beta of the divergence.
    pub beta: f64,
}

impl EntrySurrogate {
    /// Builds the entry surrogate from the numerator `n`, the plain denominator `d`,
    /// the anchor value `h` and the penalties.
    pub fn new(beta: f64, n: f64, d: f64, h: f64, l1: f64, l2: f64) -> Self {
        let (d_eff, q) = if beta >= 2.0 {
            (d + l1 + l2 * h, 0.0)
        } else {
            (d + l1, l2 * h)
        };
        Self { n, d_eff, q, beta }
    }
    fn r(&self) -> f64 {
        self.n / self.d_eff
    }
    /// `Phi(p)` (0 at `p = 1`).
    pub fn phi(&self, p: f64) -> f64 {
        self.d_eff * delta_psi(p, self.r(), self.beta) + self.q * (p * p - 1.0) / 2.0
    }
    /// `Phi'(p)`.
    pub fn dphi(&self, p: f64) -> f64 {
        self.d_eff * dpsi(p, self.r(), self.beta) + self.q * p
    }
    fn d2phi(&self, p: f64) -> f64 {
        let (b, r) = (self.beta, self.r());
        let core = if b < 1.0 {
            -r * (b - 2.0) * p.powf(b - 3.0)
        } else if b <= 2.0 {
            (b - 1.0) * p.powf(b - 2.0) - r * (b - 2.0) * p.powf(b - 3.0)
        } else {
            (b - 1.0) * p.powf(b - 2.0)
        };
        self.d_eff * core + self.q
    }

    /// The MM factor `p = argmin Phi` and the root-solve iterations (0 in closed form).
    /// Conventions: `D_eff <= 0` (no information, e.g. an all-zero column of `W`) gives 1;
    /// `N = 0` gives 0 (the minimiser on the boundary).
    pub fn mm(&self) -> (f64, usize) {
        if self.d_eff <= 0.0 || self.d_eff.is_nan() {
            return (1.0, 0);
        }
        if self.n <= 0.0 {
            return (0.0, 0);
        }
        let g = gamma(self.beta);
        let pr = if g == 1.0 { self.r() } else { self.r().powf(g) };
        if self.q == 0.0 {
            return (pr, 0);
        }
        // Phi' is increasing, Phi'(pr) = q pr > 0 and Phi'(0+) = -infinity (N > 0).
        let mut lo = pr;
        for _ in 0..4000 {
            lo *= 0.5;
            if self.dphi(lo) <= 0.0 || lo == 0.0 {
                break;
            }
        }
        if lo == 0.0 {
            return (pr, 0);
        }
        solve_bracket(|p| (self.dphi(p), self.d2phi(p)), pr, lo)
    }

    /// The heuristic (exponent-1) factor `N / (D + l1 + l2 h~)`.
    pub fn heuristic(&self) -> f64 {
        let den = self.d_eff + self.q;
        if den <= 0.0 || den.is_nan() {
            1.0
        } else {
            self.n / den
        }
    }

    /// The exact majorization-equalization factor (see the module doc) and root-solve
    /// iterations; falls back to the MM factor when no positive ME point exists. This is
    /// the relaxed rule [`EntrySurrogate::me_relaxed`] at `theta = 1`.
    pub fn me(&self) -> (f64, usize) {
        let (pe, pm, it) = self.equalization();
        (pe.unwrap_or(pm), it)
    }

    /// The relaxed majorization-equalization factor of Févotte & Idier's reference
    /// implementation: for `beta >= 1`, `p = p_MM + theta (p_ME - p_MM)`, where a missing
    /// (nonpositive) ME point counts as `p_ME = 0`; for `beta < 1` the exact ME point
    /// ([`EntrySurrogate::me`]), unrelaxed. `theta = 1` is exactly [`EntrySurrogate::me`]
    /// (whose safeguard keeps `p_MM` where `p_ME = 0` would lock the entry at zero).
    ///
    /// Descent: `Phi` is convex with `Phi(p_MM) < 0 = Phi(1)` and `Phi(p_ME) = 0`
    /// (or `Phi(0+) <= 0` when no positive ME point exists), so for `theta` in `[0, 1)`
    /// `Phi(p) <= (1 - theta) Phi(p_MM) < 0`: a strict surrogate decrease of at least
    /// `(1 - theta) |Phi(p_MM)|`, where the exact ME point (`theta = 1`) guarantees none.
    /// The factor stays positive (`>= (1 - theta) p_MM`).
    pub fn me_relaxed(&self, theta: f64) -> (f64, usize) {
        let (pe, pm, it) = self.equalization();
        if self.beta < 1.0 || theta == 1.0 {
            return (pe.unwrap_or(pm), it);
        }
        let pe = pe.unwrap_or(0.0);
        (pm + theta * (pe - pm), it)
    }

    /// `(p_ME, p_MM, iterations)`: the other point of the level set `Phi = 0`, `None`
    /// when no positive one exists (the nonnegativity case of the module doc); `p_ME =
    /// p_MM` where the step is degenerate (`p_MM` in {0, 1}, no information) or a
    /// bracket search fails numerically.
    fn equalization(&self) -> (Option<f64>, f64, usize) {
        let (pm, it_mm) = self.mm();
        if pm == 1.0 || pm == 0.0 || self.d_eff <= 0.0 || self.d_eff.is_nan() {
            return (Some(pm), pm, it_mm);
        }
        if self.q == 0.0 && self.beta == 0.0 {
            return (Some(self.r()), pm, 0);
        }
        if self.q == 0.0 && self.beta == 2.0 {
            let p = 2.0 * self.r() - 1.0;
            return (if p > 0.0 { Some(p) } else { None }, pm, 0);
        }
        let f = |p: f64| (self.phi(p), self.dphi(p));
        if pm > 1.0 {
            let mut hi = pm;
            for _ in 0..2000 {
                hi *= 2.0;
                if !hi.is_finite() {
                    return (Some(pm), pm, it_mm);
                }
                if self.phi(hi) > 0.0 {
                    let (p, it) = solve_bracket(f, hi, pm);
                    return (Some(p), pm, it + it_mm);
                }
            }
            (Some(pm), pm, it_mm)
        } else {
            // Phi(0+) is +infinity for beta <= 1 (N > 0), finite for beta > 1.
            if self.beta > 1.0 {
                let (b, r) = (self.beta, self.r());
                let psi0 = if b <= 2.0 {
                    -1.0 / b + r / (b - 1.0)
                } else {
                    -1.0 / b + r
                };
                if self.d_eff * psi0 - self.q / 2.0 <= 0.0 {
                    return (None, pm, it_mm);
                }
            }
            let mut lo = pm;
            for _ in 0..4000 {
                lo *= 0.5;
                if lo == 0.0 {
                    return (Some(pm), pm, it_mm);
                }
                if self.phi(lo) > 0.0 {
                    let (p, it) = solve_bracket(f, lo, pm);
                    return (Some(p), pm, it + it_mm);
                }
            }
            (Some(pm), pm, it_mm)
        }
    }
}

/// One column of beta-NMF as an objective of `h` (length `K`, domain `h > 0`):
/// `C(h) = sum_f d_beta(v_f | [W h]_f) + l1 sum_k h_k + (l2/2) ||h||^2`, with `W >= 0`
/// (`F x K`), `v >= 0` (`F`; `v > 0` for `beta <= 0`). The row-block update of `W` is
/// the same problem on `V^T ~ H^T W^T`.
#[derive(Clone, Debug, PartialEq)]
pub struct BetaColumn<T: Real> {
    w: DMatrix<T>,
    v: DVector<T>,
    beta: f64,
    l1: f64,
    l2: f64,
}

impl<T: Real> BetaColumn<T> {
    /// Validates and builds the objective (see [`crate::nmf`] for the data rules).
    pub fn new(w: DMatrix<T>, v: DVector<T>, beta: f64, l1: f64, l2: f64) -> Result<Self> {
        const OP: &str = "BetaColumn::new";
        crate::nmf::validate_beta(beta)?;
        crate::nmf::validate_penalty("l1", l1)?;
        crate::nmf::validate_penalty("l2", l2)?;
        if w.nrows() != v.len() {
            return Err(shape_err(
                OP,
                format!("W is {}x{}, v has length {}", w.nrows(), w.ncols(), v.len()),
            ));
        }
        crate::validate::nonnegative(OP, "W", &w)?;
        let vm = DMatrix::from_column_slice(v.len(), 1, v.as_slice());
        if beta <= 0.0 {
            crate::validate::positive(OP, "v", &vm, "beta <= 0 needs positive data")?;
        } else {
            crate::validate::nonnegative(OP, "v", &vm)?;
        }
        Ok(Self { w, v, beta, l1, l2 })
    }
    fn wh(&self, op: &'static str, h: &DVector<T>) -> Result<Vec<f64>> {
        check_len(op, h, self.w.ncols())?;
        if let Some(k) = h.iter().position(|x| !(x.to_f64() > 0.0 && x.finite())) {
            return Err(MajorizeError::Domain {
                op,
                detail: format!("h[{k}] = {} is not positive and finite", h[k]),
            });
        }
        let mut out = vec![0.0; self.w.nrows()];
        for k in 0..self.w.ncols() {
            let hk = h[k].to_f64();
            for (f, o) in out.iter_mut().enumerate() {
                *o += self.w[(f, k)].to_f64() * hk;
            }
        }
        if let Some(f) = out.iter().position(|&y| y <= 0.0) {
            return Err(MajorizeError::Domain {
                op,
                detail: format!("[W h]_{f} = 0 (row {f} of W is zero)"),
            });
        }
        Ok(out)
    }
    fn penalty(&self, h: &DVector<T>) -> f64 {
        h.iter()
            .map(|x| {
                let x = x.to_f64();
                self.l1 * x + 0.5 * self.l2 * x * x
            })
            .sum()
    }
}

impl<T: Real> Objective<T> for BetaColumn<T> {
    fn dim(&self) -> usize {
        self.w.ncols()
    }
    fn value(&self, h: &DVector<T>) -> Result<T> {
        let y = self.wh("BetaColumn::value", h)?;
        let d: f64 = y
            .iter()
            .enumerate()
            .map(|(f, &yf)| divergence(self.v[f].to_f64(), yf, self.beta))
            .sum();
        Ok(T::of(d + self.penalty(h)))
    }
    fn gradient(&self, h: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let y = self.wh("BetaColumn::gradient", h)?;
        check_len("BetaColumn::gradient", grad, self.dim())?;
        for k in 0..self.dim() {
            let mut g = self.l1 + self.l2 * h[k].to_f64();
            for (f, &yf) in y.iter().enumerate() {
                g += self.w[(f, k)].to_f64() * divergence_dy(self.v[f].to_f64(), yf, self.beta);
            }
            grad[k] = T::of(g);
        }
        Ok(())
    }
}

/// The Févotte-Idier surrogate of a [`BetaColumn`] at an anchor (module doc); its
/// minimiser is the MM update, [`BetaColumnSurrogate::me_point`] the ME update.
#[derive(Clone, Debug, PartialEq)]
pub struct BetaColumnSurrogate<T: Real> {
    anchor: DVector<T>,
    c0: f64,
    entries: Vec<EntrySurrogate>,
}

impl<T: Real> BetaColumnSurrogate<T> {
    /// The per-entry surrogates (one per component `k`).
    pub fn entries(&self) -> &[EntrySurrogate] {
        &self.entries
    }
    /// The majorization-equalization point `h~_k p_k^ME`.
    pub fn me_point(&self) -> DVector<T> {
        DVector::from_fn(self.anchor.len(), |k, _| {
            T::of(self.anchor[k].to_f64() * self.entries[k].me().0)
        })
    }
    /// The relaxed majorization-equalization point `h~_k p_k` with
    /// `p_k = EntrySurrogate::me_relaxed(theta)` (the update of `nmf::Rule::Me`).
    pub fn me_point_relaxed(&self, theta: f64) -> DVector<T> {
        DVector::from_fn(self.anchor.len(), |k, _| {
            T::of(self.anchor[k].to_f64() * self.entries[k].me_relaxed(theta).0)
        })
    }
    /// The heuristic (exponent-1) point `h~_k N_k / (D_k + l1 + l2 h~_k)`.
    pub fn heuristic_point(&self) -> DVector<T> {
        DVector::from_fn(self.anchor.len(), |k, _| {
            T::of(self.anchor[k].to_f64() * self.entries[k].heuristic())
        })
    }
}

impl<T: Real> Surrogate<T> for BetaColumnSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, h: &DVector<T>) -> Result<T> {
        check_len("BetaColumnSurrogate::value", h, self.anchor.len())?;
        let mut g = self.c0;
        for (k, e) in self.entries.iter().enumerate() {
            let a = self.anchor[k].to_f64();
            g += a * e.phi(h[k].to_f64() / a);
        }
        Ok(T::of(g))
    }
    fn gradient(&self, h: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("BetaColumnSurrogate::gradient", h, self.anchor.len())?;
        check_len("BetaColumnSurrogate::gradient", grad, self.anchor.len())?;
        for (k, e) in self.entries.iter().enumerate() {
            grad[k] = T::of(e.dphi(h[k].to_f64() / self.anchor[k].to_f64()));
        }
        Ok(())
    }
    fn admissible(&self, h: &DVector<T>) -> bool {
        h.iter().all(|x| x.to_f64() > 0.0 && x.finite())
    }
    fn minimize(&self, _inner: &InnerSolve) -> Result<Minimizer<T>> {
        let mut iters = 0;
        let mut any_root = false;
        let point = DVector::from_fn(self.anchor.len(), |k, _| {
            let (p, it) = self.entries[k].mm();
            iters = iters.max(it);
            any_root |= self.entries[k].q != 0.0;
            T::of(self.anchor[k].to_f64() * p)
        });
        let kind = if any_root {
            MinimizerKind::Inner {
                iterations: iters,
                residual: crate::root::ROOT_TOL,
                converged: iters < crate::root::ROOT_MAX_ITER,
            }
        } else {
            MinimizerKind::ClosedForm
        };
        Ok(Minimizer { point, kind })
    }
}

impl<T: Real> SurrogateBuilder<T> for BetaColumn<T> {
    type Surrogate = BetaColumnSurrogate<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<BetaColumnSurrogate<T>> {
        let y = self.wh("BetaColumn::build", anchor)?;
        let c0 = self.value(anchor)?.to_f64();
        let b = self.beta;
        let entries = (0..self.dim())
            .map(|k| {
                let (mut n, mut d) = (0.0, 0.0);
                for (f, &yf) in y.iter().enumerate() {
                    let w = self.w[(f, k)].to_f64();
                    n += w * self.v[f].to_f64() * yf.powf(b - 2.0);
                    d += w * yf.powf(b - 1.0);
                }
                EntrySurrogate::new(b, n, d, anchor[k].to_f64(), self.l1, self.l2)
            })
            .collect();
        Ok(BetaColumnSurrogate {
            anchor: anchor.clone(),
            c0,
            entries,
        })
    }
}
