//! dlADMM's hidden Z-step `Z_l <- argmin (z - m)^2 + (a - h(z))^2` entrywise
//! (`nets::prox::prox_weighted_matrix` with weights 1, 1), with the closed-form prox
//! (ReLU, leaky ReLU, identity) compiled for AVX-512F or AVX2 when the CPU has it
//! (run-time dispatch, as in `mac::z_kernel`; issue #14: the baseline build's loop and
//! its chained finiteness test were ~9% of a digits-mlp sweep). Every entry is
//! `ClosedProx::eval`, the function `prox_weighted_matrix` calls, so the results are the
//! same bit for bit; the finiteness of the inputs is tested in the same loop, and inputs
//! with a non-finite entry and activations without a closed form go through
//! `prox_weighted_matrix` itself (which reports the error).

use autodiff::Real;
use nalgebra::DMatrix;
use nets::Activation;
use nets::prox::{ClosedProx, WeightedProx, prox_weighted_matrix};

use crate::SolverError;
use crate::linalg::ensure_shape;

/// `out <- prox(a, m)` entrywise (module doc).
pub(super) fn hidden_z_step<T: Real>(
    h: &Activation,
    a: &DMatrix<T>,
    m: &DMatrix<T>,
    out: &mut DMatrix<T>,
) -> Result<(), SolverError> {
    let err = |e: nets::NetsError| SolverError::Problem(format!("DlAdmm Z-step: {e}"));
    if a.shape() == m.shape() && !a.is_empty() {
        let prox = WeightedProx::new(h, 1.0, 1.0).map_err(err)?;
        if let Some(cf) = prox.closed_form() {
            ensure_shape(out, a.nrows(), a.ncols());
            if closed_dispatch(cf, a.as_slice(), m.as_slice(), out.as_mut_slice()) {
                return Ok(());
            }
        }
    }
    prox_weighted_matrix(h, a, m, 1.0, 1.0, out).map_err(err)
}

/// [`closed`] for the widest vector unit the CPU has (same bits on every one: Rust never
/// contracts a multiply and an add).
fn closed_dispatch<T: Real>(cf: ClosedProx, a: &[T], m: &[T], out: &mut [T]) -> bool {
    autodiff::simd::widest(
        #[inline(always)]
        || closed(cf, a, m, out),
    )
}

/// The entrywise closed form; returns whether every input was finite (when not, `out`
/// holds meaningless values and the caller takes the checked path).
#[inline(always)]
fn closed<T: Real>(cf: ClosedProx, a: &[T], m: &[T], out: &mut [T]) -> bool {
    let mut ok = true;
    for ((o, &ai), &mi) in out.iter_mut().zip(a).zip(m) {
        let (ai, mi) = (ai.to_f64(), mi.to_f64());
        ok &= ai.is_finite() & mi.is_finite();
        *o = T::of(cf.eval(ai, mi));
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The same bits as `prox_weighted_matrix` for every activation, and the same
    /// error for a non-finite input.
    #[test]
    fn hidden_z_step_is_prox_weighted_matrix_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let a = DMatrix::from_fn(13, 29, |_, _| rng.random_range(-3.0..3.0));
        let m = DMatrix::from_fn(13, 29, |_, _| rng.random_range(-3.0..3.0));
        for h in [
            Activation::Relu,
            Activation::Identity,
            Activation::LeakyRelu { slope: 0.1 },
            Activation::Tanh,
        ] {
            let (mut got, mut want) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
            hidden_z_step(&h, &a, &m, &mut got).unwrap();
            prox_weighted_matrix(&h, &a, &m, 1.0, 1.0, &mut want).unwrap();
            assert_eq!(got, want, "{h:?}");
        }
        let mut out = DMatrix::zeros(0, 0);
        for (i, v) in [(4, f64::NAN), (12, f64::INFINITY)] {
            let mut bad = m.clone();
            bad[(i, 7)] = v;
            let e = hidden_z_step(&Activation::Relu, &a, &bad, &mut out).unwrap_err();
            assert!(e.to_string().contains("Z-step"), "{e}");
            let e = hidden_z_step(&Activation::Relu, &bad, &m, &mut out).unwrap_err();
            assert!(e.to_string().contains("Z-step"), "{e}");
        }
    }
}
