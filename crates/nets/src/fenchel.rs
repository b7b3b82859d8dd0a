//! The biconvex Fenchel penalty whose minimiser over the activation is the activation:
//! Fenchel lifted networks (Gu, Askari, El Ghaoui, AISTATS 2020) and LPOM (Li, Fang, Lin,
//! AAAI 2019); ALGORITHMS.md 6.1 with correction 4.
//!
//! For a nondecreasing activation h let `F(x) = int_0^x h^{-1}(t) dt` (convex in x) and
//! `F*(u) = int_{h^{-1}(0)}^u h(t) dt` (its true convex conjugate; the lower limit is
//! `-infinity` for sigmoid and softplus). By Fenchel-Young,
//!
//! ```text
//! B_h(z, a) = F(a) + F*(z) - z a >= 0,   with equality iff a = h(z),
//! ```
//!
//! convex in `a` for fixed `z` and convex in `z` for fixed `a` (biconvex), with
//! `dB/dz = h(z) - a` and `dB/da = h^{-1}(a) - z`. `B = +infinity` when `a` is outside the
//! closure of the range of h. Closed forms used (`Li2` is the dilogarithm):
//!
//! | h | F(a), domain | F*(z) |
//! |---|---|---|
//! | identity | a^2/2 | z^2/2 |
//! | relu | a^2/2, a >= 0 | relu(z)^2/2 |
//! | leaky relu, s > 0 | a^2/2 (a >= 0), a^2/(2s) (a < 0) | z^2/2 (z >= 0), s z^2/2 (z < 0) |
//! | elu, alpha > 0 | a^2/2 (a >= 0), (alpha + a) ln(1 + a/alpha) - a (a in [-alpha, 0)) | z^2/2 (z >= 0), alpha (e^z - 1 - z) (z < 0) |
//! | sigmoid | a ln a + (1 - a) ln(1 - a), a in [0, 1] | ln(1 + e^z) |
//! | tanh | ((1 + a) ln(1 + a) + (1 - a) ln(1 - a)) / 2, a in [-1, 1] | ln cosh z |
//! | softplus | a^2/2 + Li2(e^{-a}) - pi^2/6, a >= 0 | -Li2(-e^z) |
//!
//! With `int_0^z h` instead of the true conjugate, B would be shifted by `-c_h`
//! (`c_h = ln 2` for sigmoid, `pi^2/12` for softplus, 0 for the others).
//! The ReLU case is half the `neo` penalty of the Fenchel lifted networks code.

use std::f64::consts::{LN_2, PI};

use autodiff::Real;
use nalgebra::DMatrix;

use crate::activation::{Activation, softplus};
use crate::error::{NetsError, Result};

fn unsupported(h: &Activation) -> NetsError {
    NetsError::Unsupported {
        op: "fenchel_penalty",
        what: format!("{h:?}"),
        reason: "the Fenchel penalty needs a nondecreasing activation (slope/alpha >= 0)",
    }
}

/// `x ln x` with `0 ln 0 = 0`.
fn xlogx(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * x.ln() }
}

/// `F(a) = int_0^a h^{-1}`, `+infinity` outside the domain.
pub fn fenchel_f(h: &Activation, a: f64) -> Result<f64> {
    let inf = f64::INFINITY;
    Ok(match *h {
        Activation::Identity => 0.5 * a * a,
        Activation::Relu => {
            if a >= 0.0 {
                0.5 * a * a
            } else {
                inf
            }
        }
        Activation::LeakyRelu { slope } => {
            if slope < 0.0 {
                return Err(unsupported(h));
            }
            if a >= 0.0 {
                0.5 * a * a
            } else if slope == 0.0 {
                inf
            } else {
                0.5 * a * a / slope
            }
        }
        Activation::Elu { alpha } => {
            if alpha < 0.0 {
                return Err(unsupported(h));
            }
            if a >= 0.0 {
                0.5 * a * a
            } else if a < -alpha {
                inf
            } else {
                // (alpha + a) ln(1 + a/alpha) - a, with 0 ln 0 = 0 at a = -alpha.
                let t = alpha + a;
                if t == 0.0 {
                    -a
                } else {
                    t * (a / alpha).ln_1p() - a
                }
            }
        }
        Activation::Sigmoid => {
            if (0.0..=1.0).contains(&a) {
                xlogx(a) + xlogx(1.0 - a)
            } else {
                inf
            }
        }
        Activation::Tanh => {
            if (-1.0..=1.0).contains(&a) {
                0.5 * (xlogx(1.0 + a) + xlogx(1.0 - a))
            } else {
                inf
            }
        }
        Activation::Softplus => {
            if a >= 0.0 {
                0.5 * a * a + li2((-a).exp()) - PI * PI / 6.0
            } else {
                inf
            }
        }
    })
}

/// `F*(z) = int_{h^{-1}(0)}^z h`, the convex conjugate of [`fenchel_f`].
pub fn fenchel_f_conj(h: &Activation, z: f64) -> Result<f64> {
    Ok(match *h {
        Activation::Identity => 0.5 * z * z,
        Activation::Relu => {
            let r = z.max(0.0);
            0.5 * r * r
        }
        Activation::LeakyRelu { slope } => {
            if slope < 0.0 {
                return Err(unsupported(h));
            }
            if z >= 0.0 {
                0.5 * z * z
            } else {
                0.5 * slope * z * z
            }
        }
        Activation::Elu { alpha } => {
            if alpha < 0.0 {
                return Err(unsupported(h));
            }
            if z >= 0.0 {
                0.5 * z * z
            } else {
                alpha * (z.exp_m1() - z)
            }
        }
        Activation::Sigmoid => softplus(z),
        Activation::Tanh => {
            let t = z.abs();
            t + (-2.0 * t).exp().ln_1p() - LN_2
        }
        Activation::Softplus => {
            if z <= 0.0 {
                -li2(-z.exp())
            } else {
                // Inversion Li2(y) + Li2(1/y) = -pi^2/6 - ln^2(-y)/2 for y < 0.
                PI * PI / 6.0 + 0.5 * z * z + li2(-(-z).exp())
            }
        }
    })
}

/// The penalty `B_h(z, a) = F(a) + F*(z) - z a` (>= 0, zero iff `a = h(z)`; `+infinity`
/// outside the domain of F). Errors for a decreasing branch (leaky ReLU with negative
/// slope, ELU with negative alpha) or non-finite input.
pub fn fenchel_penalty(h: &Activation, z: f64, a: f64) -> Result<f64> {
    check_finite(z, a)?;
    let f = fenchel_f(h, a)?;
    if f == f64::INFINITY {
        return Ok(f);
    }
    Ok(f + fenchel_f_conj(h, z)? - z * a)
}

/// Gradient of [`fenchel_penalty`]: `(dB/dz, dB/da) = (h(z) - a, h^{-1}(a) - z)`.
/// At the boundary of the domain `h^{-1}(a)` is infinite; outside it, an error.
pub fn fenchel_penalty_grad(h: &Activation, z: f64, a: f64) -> Result<(f64, f64)> {
    check_finite(z, a)?;
    Ok((h.apply(z) - a, inverse(h, a)? - z))
}

/// `h^{-1}(a)` for `a` in the closure of the range of h (infinite at open ends, e.g.
/// `logit(0) = -infinity`; for ReLU the smallest preimage, 0 at a = 0).
pub fn inverse(h: &Activation, a: f64) -> Result<f64> {
    let out_of_range = || NetsError::InvalidArgument {
        op: "Activation::inverse",
        name: "a",
        value: a,
        reason: "outside the range of the activation",
    };
    match *h {
        Activation::Identity => Ok(a),
        Activation::Relu => {
            if a >= 0.0 {
                Ok(a)
            } else {
                Err(out_of_range())
            }
        }
        Activation::LeakyRelu { slope } => {
            if slope < 0.0 {
                Err(unsupported(h))
            } else if a >= 0.0 {
                Ok(a)
            } else if slope == 0.0 {
                Err(out_of_range())
            } else {
                Ok(a / slope)
            }
        }
        Activation::Elu { alpha } => {
            if alpha < 0.0 {
                Err(unsupported(h))
            } else if a >= 0.0 {
                Ok(a)
            } else if a < -alpha {
                Err(out_of_range())
            } else {
                Ok((a / alpha).ln_1p())
            }
        }
        Activation::Sigmoid => {
            if (0.0..=1.0).contains(&a) {
                Ok(a.ln() - (-a).ln_1p())
            } else {
                Err(out_of_range())
            }
        }
        Activation::Tanh => {
            if (-1.0..=1.0).contains(&a) {
                Ok(a.atanh())
            } else {
                Err(out_of_range())
            }
        }
        Activation::Softplus => {
            if a >= 0.0 {
                // ln(e^a - 1) = a + ln(1 - e^{-a})
                Ok(a + (-(-a).exp()).ln_1p())
            } else {
                Err(out_of_range())
            }
        }
    }
}

/// `sum_ij B_h(z_ij, a_ij)` over two matrices of the same shape (a layer's penalty
/// `1^T B_h(W A + b 1^T, A_next) 1`).
pub fn fenchel_penalty_sum<T: Real>(h: &Activation, z: &DMatrix<T>, a: &DMatrix<T>) -> Result<f64> {
    if z.shape() != a.shape() {
        return Err(NetsError::Shape {
            op: "fenchel_penalty_sum",
            detail: format!("z is {:?} but a is {:?}", z.shape(), a.shape()),
        });
    }
    let mut s = 0.0;
    for (&zi, &ai) in z.as_slice().iter().zip(a.as_slice()) {
        s += fenchel_penalty(h, zi.to_f64(), ai.to_f64())?;
    }
    Ok(s)
}

fn check_finite(z: f64, a: f64) -> Result<()> {
    for (name, v) in [("z", z), ("a", a)] {
        if !v.is_finite() {
            return Err(NetsError::InvalidArgument {
                op: "fenchel_penalty",
                name,
                value: v,
                reason: "must be finite",
            });
        }
    }
    Ok(())
}

/// Real dilogarithm `Li2(x) = -int_0^x ln(1 - t)/t dt` for `x <= 1`.
///
/// Method: reflection `Li2(x) = pi^2/6 - ln x ln(1-x) - Li2(1-x)` for x > 1/2,
/// inversion `Li2(x) = -pi^2/6 - ln^2(-x)/2 - Li2(1/x)` for x < -1, and on [-1, 1/2]
/// the Bernoulli series `Li2(x) = sum_n B_n u^{n+1}/(n+1)!`, `u = -ln(1 - x)`,
/// `|u| <= ln 2` (terms shrink like `(u / 2 pi)^n`; truncated after n = 20).
pub fn li2(x: f64) -> f64 {
    let pi2_6 = PI * PI / 6.0;
    if x.is_nan() || x > 1.0 {
        return f64::NAN;
    }
    if x == 1.0 {
        return pi2_6;
    }
    if x < -1.0 {
        let l = (-x).ln();
        return -pi2_6 - 0.5 * l * l - li2(1.0 / x);
    }
    if x > 0.5 {
        return pi2_6 - x.ln() * (-x).ln_1p() - li2(1.0 - x);
    }
    // B_n / (n+1)! for n = 0, 1, 2, 4, ..., 20 (odd n > 1 vanish).
    const C: [f64; 12] = [
        1.0,
        -0.25,
        1.0 / 36.0,
        -1.0 / 3600.0,
        1.0 / 211_680.0,
        -1.0 / 10_886_400.0,
        (5.0 / 66.0) / 39_916_800.0,
        (-691.0 / 2730.0) / 6_227_020_800.0,
        (7.0 / 6.0) / 1_307_674_368_000.0,
        (-3617.0 / 510.0) / 355_687_428_096_000.0,
        (43_867.0 / 798.0) / 121_645_100_408_832_000.0,
        (-174_611.0 / 330.0) / 51_090_942_171_709_440_000.0,
    ];
    let u = -(-x).ln_1p();
    let u2 = u * u;
    // Even-n terms (n >= 2) carry u^{n+1} = u^3, u^5, ...
    let mut s = 0.0;
    let mut p = u * u2; // u^3
    for c in &C[2..] {
        s += c * p;
        p *= u2;
    }
    C[0] * u + C[1] * u2 + s
}

impl Activation {
    /// The Fenchel / LPOM penalty `B_h(z, a)`; see [`fenchel_penalty`].
    pub fn fenchel_penalty(&self, z: f64, a: f64) -> Result<f64> {
        fenchel_penalty(self, z, a)
    }

    /// `h^{-1}(a)`; see [`inverse`].
    pub fn inverse(&self, a: f64) -> Result<f64> {
        inverse(self, a)
    }
}
