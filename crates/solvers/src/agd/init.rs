//! AGD's initialisation on a network.

use autodiff::Real;
use nets::Sequential;

use crate::SolverError;

/// Re-initialises every dense layer of `net` as AGD prescribes: `W_l` a random
/// semi-orthogonal `d_l x d_{l-1}` matrix (orthonormal rows or columns, from the QR factor
/// of a Gaussian matrix, `majorize::agd::agd_init`) scaled by `sqrt(d_l/d_{l-1})`, so
/// `||W_l||_* = sqrt(d_l/d_{l-1})`; biases set to zero. Other layers are untouched.
pub fn agd_initialize<T: Real, R: rand::Rng + ?Sized>(
    net: &mut Sequential<T>,
    rng: &mut R,
) -> Result<(), SolverError> {
    for k in 0..net.num_dense() {
        let Some(d) = net.dense_mut(k) else {
            return Err(SolverError::Problem(format!(
                "agd_initialize: dense layer {k} missing"
            )));
        };
        let (dout, din) = d.weight.shape();
        let mut w = majorize::agd::agd_init::<T, R>(&[din, dout], rng)
            .map_err(|e| SolverError::Problem(format!("agd_initialize: {e}")))?;
        let Some(w) = w.pop() else {
            return Err(SolverError::Problem(
                "agd_initialize: no matrix drawn".into(),
            ));
        };
        d.weight = w;
        d.bias.fill(T::zero());
    }
    Ok(())
}
