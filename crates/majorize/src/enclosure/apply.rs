//! Applying a certified step: the one rounding of the new weights that the enclosure's
//! slack accounts for (see [`apply_step`]).

use autodiff::Real;
use nalgebra::DVector;

use crate::error::{MajorizeError, Result};

/// Sets the weights of `net` to `fl(base + sum_i alpha_i v_i)`, evaluated per entry as
/// `acc = base_j; for i in 0..k { acc = acc + alpha_i * v_i[j] }` in `T` (no FMA). This
/// is the one way solvers must apply a certified step: the enclosure's slack accounts
/// for exactly this rounding, `|fl - exact| <= γ_{2k+2}(|base_j| + Σ ᾱ_i |v_i[j]|)`.
/// With `alpha = 0` the weights are `base` bit for bit (up to the sign of zeros).
/// Errors on wrong lengths or non-finite `alpha`.
pub fn apply_step<T: Real>(
    net: &mut nets::Sequential<T>,
    base: &[T],
    directions: &[DVector<T>],
    alpha: &[T],
) -> Result<()> {
    let p = net.num_params();
    if base.len() != p {
        return Err(MajorizeError::Shape {
            op: "apply_step",
            detail: format!(
                "base has length {} but the network has {p} parameters",
                base.len()
            ),
        });
    }
    if alpha.len() != directions.len() {
        return Err(MajorizeError::Shape {
            op: "apply_step",
            detail: format!(
                "{} directions but alpha has length {}",
                directions.len(),
                alpha.len()
            ),
        });
    }
    if let Some(i) = directions.iter().position(|d| d.len() != p) {
        return Err(MajorizeError::Shape {
            op: "apply_step",
            detail: format!(
                "direction {i} has length {} but the network has {p} parameters",
                directions[i].len()
            ),
        });
    }
    if let Some(a) = alpha.iter().find(|a| !a.finite()) {
        return Err(MajorizeError::InvalidParameter {
            name: "alpha",
            value: a.to_f64(),
            reason: "must be finite",
        });
    }
    // Written tensor by tensor into the network, in the flat order (layer by layer, the
    // tensors a layer reports through `param`): no parameter-sized temporary and no
    // named layout, so nothing is allocated.
    let mut offset = 0;
    for layer in 0..net.len() {
        for tensor in 0..net.layers()[layer].num_param_tensors() {
            let Some(len) = net.layers()[layer].param(tensor).map(|p| p.values.len()) else {
                continue;
            };
            let writable = net.param_mut_at(layer, tensor);
            let Some(w) = writable.filter(|w| w.values.len() == len) else {
                return Err(MajorizeError::Unsupported(format!(
                    "apply_step: layer {layer} parameter {tensor} is not writable as the {len} values it reports"
                )));
            };
            let values = &base[offset..offset + len];
            for (j, (w, b)) in (offset..).zip(w.values.iter_mut().zip(values)) {
                let mut acc = *b;
                for (d, a) in directions.iter().zip(alpha) {
                    acc += *a * d[j];
                }
                *w = acc;
            }
            offset += len;
        }
    }
    Ok(())
}
