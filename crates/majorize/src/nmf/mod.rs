//! beta-NMF by multiplicative updates: `V (F x N) ~ W (F x K) H (K x N)`, `V, W, H >= 0`,
//! minimising `D_beta(V | W H) + l1_w sum W + (l2_w/2)||W||^2 + l1_h sum H + (l2_h/2)||H||^2`
//! (ALGORITHMS.md section 1; Févotte & Idier, Neural Computation 23(9), 2011).
//!
//! Per entry, each update multiplies the current value by a factor computed from the
//! numerator `N` and denominator `D` of the gradient split
//! (for `H`: `N = W^T (V o (WH)^(beta-2))`, `D = W^T (WH)^(beta-1)`; `W` by symmetry),
//! see [`crate::beta::EntrySurrogate`]:
//!
//! - [`Rule::Mm`]: the minimiser of the Févotte-Idier auxiliary function,
//!   `(N / (D + l1 + l2 h))^gamma(beta)` in closed form (exact MM for every beta when
//!   `l2 = 0`, and for `beta >= 2`), a scalar root solve per entry when `beta < 2` and
//!   `l2 > 0`. Never increases the objective.
//! - [`Rule::Heuristic`]: exponent 1, `N / (D + l1 + l2 h)`. Equal to MM on `[1, 2]`
//!   and to ME at `beta = 0`, so monotone there; monotone for `beta` in `(0, 1)` per
//!   Févotte & Idier and in our tests. Not guaranteed outside `[0, 2]`: ALGORITHMS.md
//!   reports increases for `beta = 3, 4, 5`; a random search of ours over 400 single
//!   columns at `beta = 3` found none, so we neither assert nor rule them out.
//! - [`Rule::Me`]: majorization-equalization (1.6): for `beta >= 1` the relaxed point
//!   `h = h_MM + theta (h_ME - h_MM)` with [`NmfConfig::me_theta`] (default
//!   [`DEFAULT_ME_THETA`] = 0.95), where `h_ME` is the other point of the surrogate's
//!   level set through the current value and a nonpositive `h_ME` counts as 0 before
//!   relaxing; for `beta < 1` the exact closed-form / root-solved ME point. Monotone with
//!   a strict surrogate decrease for `theta < 1`
//!   ([`crate::beta::EntrySurrogate::me_relaxed`]); `theta = 1` is the exact
//!   equalization point, with the nonnegativity safeguard documented in [`crate::beta`].
//!   Against the authors' MATLAB code (`beta_nmf_ME.m`, see [`DEFAULT_ME_THETA`]): the
//!   same map at `beta = 1.5` and `beta = 2` (W then H, `theta = 0.95`), and the exact
//!   point at `beta = 0, 0.5` (and `-1`); at `beta = 3` the code relaxes towards the
//!   exponent-1 (heuristic) point instead of the MM point, which can leave the
//!   surrogate's sublevel set (with `R = N / D = 4`, in units of `h~`: heuristic 4, ME
//!   point `(sqrt(12 R - 3) - 1) / 2 = 2.854`, relaxed 2.911, outside `[1, 2.854]`), so
//!   strata relaxes towards the MM point there too; every other `beta`, KL (`beta = 1`)
//!   included, is strata's extension by the same rule (the code implements only
//!   `beta in {-1, 0, 0.5, 1.5, 2, 3}`).
//!
//! **Conventions (strata mode).** One iteration updates `W` then `H` (as scikit-learn),
//! each from the current other factor, with `W H` formed afresh before each update.
//! Epsilon guards: `W H` entries below `EPS^2` of the type (f64: 4.9e-32, f32: 1.4e-14)
//! are raised to it before negative powers (never triggers on positive iterates of
//! well-scaled data, so the monotonicity guarantee is exact there); an entry whose
//! denominator is 0 or NaN keeps its value (factor 1); an entry whose numerator is 0
//! (e.g. an all-zero data row) goes to 0 (the surrogate's minimiser on the boundary).
//!
//! **scikit-learn mode** ([`NmfConfig::sklearn_compatible`]): follows
//! `sklearn.decomposition.NMF(solver='mu')` 1.9.1 operation by operation (see
//! [`sklearn`]): update order W then H, `EPS = 2^-23` clipping of `WH` (numerator copy
//! when `beta < 2`, denominator copy when `beta < 1`), the `beta = 1` denominators (row
//! sums of `H`; column sums of `W` with zero sums replaced by 1), penalties added to the
//! denominator, zero denominators set to `EPS`, then zeroing entries below f64 epsilon
//! (`W` when `beta < 1`, `H` when `beta <= 1`), and the objective with masking
//! ([`sklearn::sklearn_divergence`]). Only [`Rule::Mm`] exists there. The same
//! initialisation gives the same objective trace to ~1e-13 (tested against a committed
//! golden trace made with scikit-learn).
//!
//! Inputs are validated once by [`validate_inputs`]: shapes, finiteness, `V >= 0`,
//! `V > 0` when `beta <= 0`, `W > 0` and `H > 0` (a zero entry can never move).

pub mod sklearn;
mod update;
mod workspace;

use autodiff::Real;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::error::{MajorizeError, Result, shape_err};

pub use update::{divergence, iterate, objective, update_h, update_w, update_w_reduced};
pub use workspace::NmfWorkspace;

/// Which multiplicative update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// Majorization-minimization, exponent `gamma(beta)`.
    Mm,
    /// The classical exponent-1 update.
    Heuristic,
    /// Majorization-equalization, relaxed towards MM by [`NmfConfig::me_theta`] for
    /// `beta >= 1` (module doc). The exact equalization point (`me_theta = 1`) returns
    /// each coordinate to the surrogate's level at the anchor, so its guaranteed decrease
    /// is only the Jensen gap; on 12 x 10 positive data, rank 3, 200 iterations it ended
    /// behind MM for beta = 1 (17.938 vs 9.218) and beta = 1.5 (9.261 vs 8.699), which is
    /// why the relaxed rule of the authors' implementation is the default.
    Me,
}

/// L1 / L2 penalties on the factors, in the objective
/// `l1_w sum W + (l2_w/2) ||W||^2 + l1_h sum H + (l2_h/2) ||H||^2` (already scaled;
/// see [`Penalties::sklearn`] for scikit-learn's `alpha_W, alpha_H, l1_ratio`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Penalties {
    /// L1 weight on W.
    pub l1_w: f64,
    /// L2 weight on W.
    pub l2_w: f64,
    /// L1 weight on H.
    pub l1_h: f64,
    /// L2 weight on H.
    pub l2_h: f64,
}

impl Penalties {
    /// scikit-learn's scaling (`_compute_regularization`): with `F = n_samples`,
    /// `N = n_features`: `l1_w = N alpha_w l1_ratio`, `l2_w = N alpha_w (1 - l1_ratio)`,
    /// `l1_h = F alpha_h l1_ratio`, `l2_h = F alpha_h (1 - l1_ratio)`.
    pub fn sklearn(
        alpha_w: f64,
        alpha_h: f64,
        l1_ratio: f64,
        n_samples: usize,
        n_features: usize,
    ) -> Self {
        let (f, n) = (n_samples as f64, n_features as f64);
        Self {
            l1_w: n * alpha_w * l1_ratio,
            l2_w: n * alpha_w * (1.0 - l1_ratio),
            l1_h: f * alpha_h * l1_ratio,
            l2_h: f * alpha_h * (1.0 - l1_ratio),
        }
    }
    fn validate(&self) -> Result<()> {
        validate_penalty("l1_w", self.l1_w)?;
        validate_penalty("l2_w", self.l2_w)?;
        validate_penalty("l1_h", self.l1_h)?;
        validate_penalty("l2_h", self.l2_h)
    }
    /// The penalty value at `(W, H)`.
    pub fn value<T: Real>(&self, w: &DMatrix<T>, h: &DMatrix<T>) -> f64 {
        let part = |m: &DMatrix<T>, l1: f64, l2: f64| -> f64 {
            if l1 == 0.0 && l2 == 0.0 {
                return 0.0;
            }
            m.iter()
                .map(|x| {
                    let x = x.to_f64();
                    l1 * x + 0.5 * l2 * x * x
                })
                .sum()
        };
        part(w, self.l1_w, self.l2_w) + part(h, self.l1_h, self.l2_h)
    }
}

/// The default relaxation of majorization-equalization, `theta = 0.95`: the hard-coded
/// "relaxation coefficient" of Févotte & Idier's own MATLAB code `beta_nmf_ME.m`
/// (copyright 2011, GPL v3; read in the copy kept by the TDALAB toolbox,
/// `andrewssobral/TDALAB`, `BSS/beta_nmf_ME.m`, commit `79b14fd`): "mixed update
/// prolonged ME and MM", `h = h_MM + theta (h_ME - h_MM)` with `h_ME` set to 0 where
/// nonpositive, W then H, once each per iteration (its l1 normalisation of W's columns
/// after each iteration leaves the multiplicative updates unchanged in exact
/// arithmetic). Y. Pradat's Julia port (CentraleSupélec, 2020; `FIParams`,
/// `_update_nmf_ME!`) has the same value and adds a floor at machine epsilon. The
/// paper's abstract (Neural Computation 23(9), 2011) speaks of the equalization point
/// only; its body was not read.
pub const DEFAULT_ME_THETA: f64 = 0.95;

fn default_me_theta() -> f64 {
    DEFAULT_ME_THETA
}

/// Configuration of the updates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NmfConfig {
    /// The beta of the divergence (any finite real).
    pub beta: f64,
    /// Update rule.
    pub rule: Rule,
    /// Relaxation `theta` in `[0, 1]` of [`Rule::Me`] for `beta >= 1`:
    /// `h = h_MM + theta (h_ME - h_MM)` ([`DEFAULT_ME_THETA`]; 1 = the exact ME point,
    /// 0 = MM). Ignored by the other rules and for `beta < 1`.
    #[serde(default = "default_me_theta")]
    pub me_theta: f64,
    /// Penalties.
    pub penalties: Penalties,
    /// Follow scikit-learn's `NMF(solver='mu')` exactly (requires [`Rule::Mm`]).
    pub sklearn_compatible: bool,
}

impl NmfConfig {
    /// MM updates for `beta`, no penalties, strata mode.
    pub fn new(beta: f64) -> Self {
        Self {
            beta,
            rule: Rule::Mm,
            me_theta: DEFAULT_ME_THETA,
            penalties: Penalties::default(),
            sklearn_compatible: false,
        }
    }
    /// The same with another ME relaxation `theta` ([`NmfConfig::me_theta`]).
    pub fn with_me_theta(mut self, theta: f64) -> Self {
        self.me_theta = theta;
        self
    }
    /// The same with another rule.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rule = rule;
        self
    }
    /// The same with penalties.
    pub fn with_penalties(mut self, penalties: Penalties) -> Self {
        self.penalties = penalties;
        self
    }
    /// The same in scikit-learn mode.
    pub fn sklearn(mut self) -> Self {
        self.sklearn_compatible = true;
        self
    }
    /// Checks beta finite, `me_theta` in `[0, 1]`, penalties finite and `>= 0`, and that
    /// scikit-learn mode uses MM.
    pub fn validate(&self) -> Result<()> {
        validate_beta(self.beta)?;
        if !(0.0..=1.0).contains(&self.me_theta) {
            return Err(MajorizeError::InvalidParameter {
                name: "me_theta",
                value: self.me_theta,
                reason: "ME relaxation must be in [0, 1]",
            });
        }
        self.penalties.validate()?;
        if self.sklearn_compatible && self.rule != Rule::Mm {
            return Err(MajorizeError::Unsupported(format!(
                "scikit-learn mode implements only the MM rule (its 'mu' solver), not {:?}",
                self.rule
            )));
        }
        Ok(())
    }
}

pub(crate) fn validate_beta(beta: f64) -> Result<()> {
    if !beta.is_finite() {
        return Err(MajorizeError::InvalidParameter {
            name: "beta",
            value: beta,
            reason: "must be finite",
        });
    }
    Ok(())
}

pub(crate) fn validate_penalty(name: &'static str, v: f64) -> Result<()> {
    if !(v >= 0.0 && v.is_finite()) {
        return Err(MajorizeError::InvalidParameter {
            name,
            value: v,
            reason: "penalty must be >= 0 and finite",
        });
    }
    Ok(())
}

/// Checks the shapes `V: F x N`, `W: F x K`, `H: K x N`.
pub fn check_shapes<T: Real>(
    op: &'static str,
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &DMatrix<T>,
) -> Result<()> {
    if w.nrows() != v.nrows() || h.ncols() != v.ncols() || w.ncols() != h.nrows() {
        return Err(shape_err(
            op,
            format!(
                "V is {}x{}, W is {}x{}, H is {}x{}; expected V F x N, W F x K, H K x N",
                v.nrows(),
                v.ncols(),
                w.nrows(),
                w.ncols(),
                h.nrows(),
                h.ncols()
            ),
        ));
    }
    Ok(())
}

/// Full validation of a beta-NMF problem (module doc): shapes, finiteness, `V >= 0`
/// (`V > 0` for `beta <= 0`), strictly positive `W` and `H`.
pub fn validate_inputs<T: Real>(
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &DMatrix<T>,
    beta: f64,
) -> Result<()> {
    const OP: &str = "nmf::validate_inputs";
    validate_beta(beta)?;
    check_shapes(OP, v, w, h)?;
    if beta <= 0.0 {
        crate::validate::positive(OP, "V", v, "beta <= 0 needs strictly positive data")?;
    } else {
        crate::validate::nonnegative(OP, "V", v)?;
    }
    const LOCK: &str =
        "a zero entry of an initial factor can never move under multiplicative updates";
    crate::validate::positive(OP, "W", w, LOCK)?;
    crate::validate::positive(OP, "H", h, LOCK)
}

/// The most trace entries [`factorize`] reserves before iterating (it grows past this).
const TRACE_PREALLOC: usize = 1 << 16;

/// Runs `iterations` iterations from `(w, h)` after validating, returning the objective
/// ([`objective`]) at the start and after every iteration (length `iterations + 1`).
pub fn factorize<T: Real>(
    v: &DMatrix<T>,
    w: &mut DMatrix<T>,
    h: &mut DMatrix<T>,
    config: &NmfConfig,
    iterations: usize,
) -> Result<Vec<f64>> {
    config.validate()?;
    validate_inputs(v, w, h, config.beta)?;
    let mut ws = NmfWorkspace::new(v.nrows(), v.ncols(), w.ncols())?;
    // The trace grows as it is filled: a huge `iterations` must not be allocated upfront.
    let mut trace = Vec::with_capacity(iterations.min(TRACE_PREALLOC) + 1);
    trace.push(objective(v, w, h, config, &mut ws)?);
    for _ in 0..iterations {
        iterate(v, w, h, config, &mut ws)?;
        trace.push(objective(v, w, h, config, &mut ws)?);
    }
    Ok(trace)
}
