//! Elementwise activations h and the structure they state for structured solvers.
//!
//! Values and derivatives are evaluated in the scalar type `T` with overflow-safe forms.
//! The proximal maps live in [`crate::prox`] and the Fenchel (LPOM) penalty in
//! [`crate::fenchel`]; both are also reachable as methods of [`Activation`].

use autodiff::Real;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::error::{NetsError, Result};

/// An elementwise activation `h: R -> R`.
///
/// Serialised (serde, and the model file format of [`crate::persist`]) in serde's
/// externally tagged form: `"Relu"`, `{"LeakyRelu": {"slope": 0.01}}`,
/// `{"Elu": {"alpha": 1.0}}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// h(z) = z.
    Identity,
    /// h(z) = max(z, 0).
    Relu,
    /// h(z) = z for z > 0, `slope * z` otherwise (Maas et al. 2013).
    LeakyRelu {
        /// Slope on the negative half-line (usually in (0, 1)).
        slope: f64,
    },
    /// h(z) = z for z > 0, `alpha (e^z - 1)` otherwise (Clevert et al., ICLR 2016).
    Elu {
        /// Scale of the negative branch (usually 1).
        alpha: f64,
    },
    /// h(z) = 1 / (1 + e^{-z}).
    Sigmoid,
    /// h(z) = tanh(z).
    Tanh,
    /// h(z) = ln(1 + e^z).
    Softplus,
}

/// Monotonicity of an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Monotonicity {
    /// h(x) < h(y) whenever x < y.
    StrictlyIncreasing,
    /// h(x) <= h(y) whenever x < y, with flat pieces.
    NonDecreasing,
    /// Neither (e.g. a leaky ReLU with negative slope).
    NotMonotone,
}

/// The structure an activation states; every field is checked numerically in the tests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationStructure {
    /// Global Lipschitz constant of h: `|h(x) - h(y)| <= lipschitz |x - y|` (= sup |h'|).
    pub lipschitz: f64,
    /// `(inf h', sup h')` over the points where h is differentiable.
    pub derivative_bounds: (f64, f64),
    /// `Some((lo, hi))` when h is C^1 and `lo <= h''(z) <= hi` wherever h'' exists, so h'
    /// is Lipschitz with constant `max(|lo|, |hi|)`. `None` when h' jumps (kinks).
    pub second_derivative_bounds: Option<(f64, f64)>,
    /// Monotonicity of h.
    pub monotonicity: Monotonicity,
    /// `(inf h, sup h)` (possibly infinite; whether the bounds are attained is not stated).
    pub range: (f64, f64),
    /// Whether h is piecewise linear (identity, ReLU, leaky ReLU).
    pub piecewise_linear: bool,
}

impl Activation {
    /// A short name ("relu", "leaky_relu", ...), used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Elu { .. } => "elu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
        }
    }

    /// Checks the activation's parameters (finite slope / alpha).
    pub fn validate(&self) -> Result<()> {
        let (name, v) = match *self {
            Activation::LeakyRelu { slope } => ("slope", slope),
            Activation::Elu { alpha } => ("alpha", alpha),
            _ => return Ok(()),
        };
        if v.is_finite() {
            Ok(())
        } else {
            Err(NetsError::InvalidArgument {
                op: "Activation::validate",
                name,
                value: v,
                reason: "must be finite",
            })
        }
    }

    /// h(z), in overflow-safe forms: sigmoid as `1/(1+e^{-z})` or `e^z/(1+e^z)` by sign,
    /// softplus as `max(z,0) + ln(1 + e^{-|z|})`.
    #[inline]
    pub fn apply<T: Real>(&self, z: T) -> T {
        let zero = T::zero();
        match *self {
            Activation::Identity => z,
            // `z <= 0` is false for NaN, so a NaN is carried, never masked to 0.
            Activation::Relu => {
                if z <= zero {
                    zero
                } else {
                    z
                }
            }
            Activation::LeakyRelu { slope } => {
                if z > zero {
                    z
                } else {
                    T::of(slope) * z
                }
            }
            Activation::Elu { alpha } => {
                if z > zero {
                    z
                } else {
                    T::of(alpha) * z.exp_m1()
                }
            }
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Softplus => softplus(z),
        }
    }

    /// h'(z). At the kink z = 0 of ReLU, leaky ReLU and ELU the left derivative is used
    /// (0, `slope`, `alpha` respectively), a valid element of the Clarke subdifferential.
    #[inline]
    pub fn derivative<T: Real>(&self, z: T) -> T {
        let zero = T::zero();
        let one = T::one();
        match *self {
            Activation::Identity => one,
            Activation::Relu => {
                if z > zero {
                    one
                } else {
                    zero
                }
            }
            Activation::LeakyRelu { slope } => {
                if z > zero {
                    one
                } else {
                    T::of(slope)
                }
            }
            Activation::Elu { alpha } => {
                if z > zero {
                    one
                } else {
                    T::of(alpha) * z.exp()
                }
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                s * (one - s)
            }
            Activation::Tanh => {
                let t = z.tanh();
                one - t * t
            }
            Activation::Softplus => sigmoid(z),
        }
    }

    /// h''(z) where it exists; 0 on the linear pieces of ReLU / leaky ReLU (and, by
    /// convention, at their kinks, where h'' does not exist).
    #[inline]
    pub fn second_derivative<T: Real>(&self, z: T) -> T {
        let zero = T::zero();
        let one = T::one();
        let two = one + one;
        match *self {
            Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. } => zero,
            Activation::Elu { alpha } => {
                if z > zero {
                    zero
                } else {
                    T::of(alpha) * z.exp()
                }
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                s * (one - s) * (one - two * s)
            }
            Activation::Tanh => {
                let t = z.tanh();
                -two * t * (one - t * t)
            }
            Activation::Softplus => {
                let s = sigmoid(z);
                s * (one - s)
            }
        }
    }

    /// `out = h(z)` elementwise. Shapes must agree; `out` is resized if they do not
    /// (the only allocation, and none when the caller reuses `out`).
    pub fn apply_matrix<T: Real>(&self, z: &DMatrix<T>, out: &mut DMatrix<T>) {
        if out.shape() != z.shape() {
            *out = DMatrix::zeros(z.nrows(), z.ncols());
        }
        for (o, &v) in out.as_mut_slice().iter_mut().zip(z.as_slice()) {
            *o = self.apply(v);
        }
    }

    /// `out = h'(z)` elementwise (resized like [`Activation::apply_matrix`]).
    pub fn derivative_matrix<T: Real>(&self, z: &DMatrix<T>, out: &mut DMatrix<T>) {
        if out.shape() != z.shape() {
            *out = DMatrix::zeros(z.nrows(), z.ncols());
        }
        for (o, &v) in out.as_mut_slice().iter_mut().zip(z.as_slice()) {
            *o = self.derivative(v);
        }
    }

    /// The structure of h (Lipschitz constant, derivative and second-derivative bounds,
    /// monotonicity, range, piecewise linearity). Constants:
    /// sigmoid: h' <= 1/4, |h''| <= 1/(6 sqrt 3) (at s = 1/2 -+ 1/(2 sqrt 3));
    /// tanh: |h''| <= 4/(3 sqrt 3) (at tanh z = -+ 1/sqrt 3); softplus: 0 < h'' <= 1/4.
    pub fn structure(&self) -> ActivationStructure {
        let inf = f64::INFINITY;
        let sqrt3 = 3f64.sqrt();
        match *self {
            Activation::Identity => ActivationStructure {
                lipschitz: 1.0,
                derivative_bounds: (1.0, 1.0),
                second_derivative_bounds: Some((0.0, 0.0)),
                monotonicity: Monotonicity::StrictlyIncreasing,
                range: (-inf, inf),
                piecewise_linear: true,
            },
            Activation::Relu => ActivationStructure {
                lipschitz: 1.0,
                derivative_bounds: (0.0, 1.0),
                second_derivative_bounds: None,
                monotonicity: Monotonicity::NonDecreasing,
                range: (0.0, inf),
                piecewise_linear: true,
            },
            Activation::LeakyRelu { slope } => ActivationStructure {
                lipschitz: slope.abs().max(1.0),
                derivative_bounds: (slope.min(1.0), slope.max(1.0)),
                second_derivative_bounds: if slope == 1.0 { Some((0.0, 0.0)) } else { None },
                monotonicity: if slope > 0.0 {
                    Monotonicity::StrictlyIncreasing
                } else if slope == 0.0 {
                    Monotonicity::NonDecreasing
                } else {
                    Monotonicity::NotMonotone
                },
                range: if slope > 0.0 { (-inf, inf) } else { (0.0, inf) },
                piecewise_linear: true,
            },
            Activation::Elu { alpha } => ActivationStructure {
                lipschitz: alpha.abs().max(1.0),
                // h' = alpha e^z on z <= 0 takes every value between 0 and alpha.
                derivative_bounds: (alpha.min(0.0), alpha.max(1.0)),
                // C^1 only when the two branches' slopes meet at 0 (alpha = 1).
                second_derivative_bounds: if alpha == 1.0 { Some((0.0, 1.0)) } else { None },
                monotonicity: if alpha > 0.0 {
                    Monotonicity::StrictlyIncreasing
                } else if alpha == 0.0 {
                    Monotonicity::NonDecreasing
                } else {
                    Monotonicity::NotMonotone
                },
                range: if alpha >= 0.0 {
                    (-alpha, inf)
                } else {
                    (0.0, inf)
                },
                piecewise_linear: alpha == 0.0,
            },
            Activation::Sigmoid => ActivationStructure {
                lipschitz: 0.25,
                derivative_bounds: (0.0, 0.25),
                second_derivative_bounds: Some((-1.0 / (6.0 * sqrt3), 1.0 / (6.0 * sqrt3))),
                monotonicity: Monotonicity::StrictlyIncreasing,
                range: (0.0, 1.0),
                piecewise_linear: false,
            },
            Activation::Tanh => ActivationStructure {
                lipschitz: 1.0,
                derivative_bounds: (0.0, 1.0),
                second_derivative_bounds: Some((-4.0 / (3.0 * sqrt3), 4.0 / (3.0 * sqrt3))),
                monotonicity: Monotonicity::StrictlyIncreasing,
                range: (-1.0, 1.0),
                piecewise_linear: false,
            },
            Activation::Softplus => ActivationStructure {
                lipschitz: 1.0,
                derivative_bounds: (0.0, 1.0),
                second_derivative_bounds: Some((0.0, 0.25)),
                monotonicity: Monotonicity::StrictlyIncreasing,
                range: (0.0, inf),
                piecewise_linear: false,
            },
        }
    }
}

/// Logistic sigmoid 1/(1+e^{-z}), evaluated without overflow for either sign of z.
#[inline]
pub fn sigmoid<T: Real>(z: T) -> T {
    let one = T::one();
    if z >= T::zero() {
        one / (one + (-z).exp())
    } else {
        let e = z.exp();
        e / (one + e)
    }
}

/// Softplus ln(1 + e^z) = max(z, 0) + ln(1 + e^{-|z|}), without overflow.
#[inline]
pub fn softplus<T: Real>(z: T) -> T {
    let zero = T::zero();
    let m = if z > zero { z } else { zero };
    m + (-z.abs()).exp().ln_1p()
}
