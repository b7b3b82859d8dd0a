//! The public types of the enclosure engine.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};

use crate::error::{MajorizeError, Result};

/// What to enclose: `phi(alpha) = F(x + sum_i alpha_i v_i)` for `alpha` in `[0, alpha_max]`,
/// where `x` are the weights stored in `net` and `F` is `loss` on `(inputs, targets)`
/// plus the L2 penalty (as [`nets::Sequential::objective`] computes it).
#[derive(Clone, Copy, Debug)]
pub struct EnclosureRequest<'a, T: Real> {
    /// The network at the base point `x` (dense layers and elementwise activations).
    pub net: &'a nets::Sequential<T>,
    /// The loss: kind, reduction and L2 coefficient (the L2 term is enclosed exactly).
    pub loss: &'a nets::Loss,
    /// Inputs, `d_0 x N`: the full batch or a given mini-batch (only this batch's
    /// objective is certified).
    pub inputs: &'a DMatrix<T>,
    /// Targets of the `N` samples.
    pub targets: &'a nets::Targets<T>,
    /// The `k >= 1` directions, each of length [`nets::Sequential::num_params`], in the
    /// flat order of [`nets::Sequential::params_to_flat`].
    pub directions: &'a [DVector<T>],
    /// The trust region `[0, alpha_max_i]` per direction; each finite and `> 0`.
    pub alpha_max: &'a [T],
}

/// A certified degree-2 enclosure of `phi(alpha)` on the box `[0, alpha_max]`:
/// for every `alpha` in the box,
/// `lower_bound(alpha) <= phi(alpha) <= upper_bound(alpha)`, where `phi(alpha)` is the
/// floating-point objective ([`nets::Sequential::objective`], or the solvers' driver's
/// record `data + penalty`) of the network whose weights were set by [`apply_step`].
/// Convention: `phi ∈ value + gradient·α + αᵀ[quad_lower, quad_upper]α ± slack` (no 1/2).
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticEnclosure<T: Real> {
    /// `phi(0)`: the objective at the base point exactly as `Sequential::objective` computes it.
    pub value: T,
    /// One-sided derivatives `d phi / d alpha_i` at `0+` (k entries). At an exact ReLU kink
    /// this is the slope in the direction of increasing `alpha` and may differ from autodiff.
    pub gradient: Vec<T>,
    /// Lower endpoints of the degree-2 coefficient interval (k x k), valid on the whole box.
    pub quad_lower: DMatrix<T>,
    /// Upper endpoints of the degree-2 coefficient interval (k x k).
    pub quad_upper: DMatrix<T>,
    /// `>= 0`: additive term covering floating-point effects (rounding of the weights in
    /// [`apply_step`], the driver's evaluation error, the enclosure's own arithmetic).
    /// Not applied at `alpha = 0`, where the bound is exact (`value`).
    pub slack: T,
    /// The trust region.
    pub alpha_max: Vec<T>,
}

impl<T: Real> QuadraticEnclosure<T> {
    /// Number of directions k.
    pub fn dim(&self) -> usize {
        self.gradient.len()
    }

    /// The certified upper bound at `alpha` (in the box), rounded up.
    pub fn upper_bound(&self, alpha: &[T]) -> Result<T> {
        let _ = alpha;
        Err(MajorizeError::Unsupported(
            "enclosure: not implemented yet".into(),
        ))
    }

    /// The certified lower bound at `alpha` (in the box), rounded down.
    pub fn lower_bound(&self, alpha: &[T]) -> Result<T> {
        let _ = alpha;
        Err(MajorizeError::Unsupported(
            "enclosure: not implemented yet".into(),
        ))
    }

    /// The majorizer `q(alpha) = upper_bound(alpha)` as a [`crate::Surrogate`] over `alpha`
    /// (anchor 0, admissible = in the box).
    pub fn surrogate(&self) -> EnclosureSurrogate<T> {
        EnclosureSurrogate {
            enclosure: self.clone(),
            anchor: DVector::zeros(self.dim()),
        }
    }
}

/// [`QuadraticEnclosure::upper_bound`] as a [`crate::Surrogate`] in `alpha`-space.
#[derive(Clone, Debug, PartialEq)]
pub struct EnclosureSurrogate<T: Real> {
    enclosure: QuadraticEnclosure<T>,
    anchor: DVector<T>,
}

impl<T: Real> EnclosureSurrogate<T> {
    /// The enclosure it wraps.
    pub fn enclosure(&self) -> &QuadraticEnclosure<T> {
        &self.enclosure
    }
}

impl<T: Real> crate::Surrogate<T> for EnclosureSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.enclosure.upper_bound(x.as_slice())
    }
    fn gradient(&self, _x: &DVector<T>, _grad: &mut DVector<T>) -> Result<()> {
        Err(MajorizeError::Unsupported(
            "enclosure: not implemented yet".into(),
        ))
    }
}

/// Computes the certified enclosure of the request (see [`QuadraticEnclosure`]).
pub fn enclose<T: Real>(req: &EnclosureRequest<'_, T>) -> Result<QuadraticEnclosure<T>> {
    let _ = req;
    Err(MajorizeError::Unsupported(
        "enclosure: not implemented yet".into(),
    ))
}

/// Sets the weights of `net` to `fl(base + sum_i alpha_i v_i)`, evaluated per entry as
/// `acc = base_j; for i in 0..k { acc = acc + alpha_i * v_i[j] }` in `T`. This is the one
/// way solvers must apply a certified step: the enclosure's slack accounts for exactly
/// this rounding.
pub fn apply_step<T: Real>(
    net: &mut nets::Sequential<T>,
    base: &[T],
    directions: &[DVector<T>],
    alpha: &[T],
) -> Result<()> {
    let _ = (net, base, directions, alpha);
    Err(MajorizeError::Unsupported(
        "enclosure: not implemented yet".into(),
    ))
}
