//! Spectral norms by warm-started power iteration (used for the structural curvature
//! bounds of the block-MM hidden-layer steps, ALGORITHMS.md 10.5 and 12).
//!
//! `||W||_* = sqrt(lambda_max(W^T W))`. Each call runs `iterations` steps of
//! `v <- W^T W v / ||W^T W v||` from the vector kept in `state` (warm start: the top
//! right singular vector moves little between sweeps), then returns `safety * ||W v||`.
//! Power iteration approaches `||W||_*` from below (`||W v|| <= ||W||_*` for unit `v`),
//! so the safety factor (>= 1) compensates for a not-yet-converged vector; the estimate
//! is a heuristic starting point for backtracking, never a certificate.

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;

use crate::SolverError;
use crate::linalg::gemm;

/// Power-iteration state of one matrix: the current right vector and two buffers.
#[derive(Debug, Clone)]
pub struct PowerIteration<T: Real> {
    v: DMatrix<T>,
    u: DMatrix<T>,
}

impl<T: Real> PowerIteration<T> {
    /// State for a matrix with `cols` columns, started at the normalised all-ones vector
    /// (deterministic; it is not orthogonal to the top singular vector for generic `W`).
    pub fn new(cols: usize) -> Self {
        let c = T::of(1.0 / (cols.max(1) as f64).sqrt());
        PowerIteration {
            v: DMatrix::from_element(cols, 1, c),
            u: DMatrix::zeros(0, 1),
        }
    }

    /// The current right vector (for checkpoints).
    pub fn vector(&self) -> &[T] {
        self.v.as_slice()
    }

    /// Restores a right vector saved by [`PowerIteration::vector`].
    pub fn set_vector(&mut self, v: &[T]) -> Result<(), SolverError> {
        if v.len() != self.v.nrows() {
            return Err(SolverError::shape(
                "power-iteration vector",
                self.v.nrows(),
                v.len(),
            ));
        }
        self.v.as_mut_slice().copy_from_slice(v);
        Ok(())
    }

    /// `safety * ||W v||` after `iterations` power steps (see the module doc).
    pub fn estimate(
        &mut self,
        w: &DMatrix<T>,
        iterations: usize,
        safety: f64,
    ) -> Result<f64, SolverError> {
        if w.ncols() != self.v.nrows() {
            return Err(SolverError::shape(
                "power iteration: matrix columns",
                self.v.nrows(),
                w.ncols(),
            ));
        }
        if self.u.nrows() != w.nrows() {
            self.u = DMatrix::zeros(w.nrows(), 1);
        }
        for _ in 0..iterations {
            gemm(
                &mut self.u,
                1.0,
                w,
                Transpose::No,
                &self.v,
                Transpose::No,
                0.0,
                1,
            )?;
            gemm(
                &mut self.v,
                1.0,
                w,
                Transpose::Yes,
                &self.u,
                Transpose::No,
                0.0,
                1,
            )?;
            let n = self.v.norm();
            if !(n > T::zero() && n.finite()) {
                // W^T W v = 0: restart from the ones vector (W may be zero).
                let c = T::of(1.0 / (self.v.nrows().max(1) as f64).sqrt());
                self.v.fill(c);
            } else {
                self.v /= n;
            }
        }
        gemm(
            &mut self.u,
            1.0,
            w,
            Transpose::No,
            &self.v,
            Transpose::No,
            0.0,
            1,
        )?;
        Ok(safety * self.u.norm().to_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_iteration_finds_the_top_singular_value_from_below() {
        // diag(3, 1) rotated: singular values 3 and 1.
        let (c, s) = (0.6f64, 0.8f64);
        let w = DMatrix::from_row_slice(2, 2, &[3.0 * c, -s, 3.0 * s, c]);
        let mut p = PowerIteration::new(2);
        let one = p.estimate(&w, 1, 1.0).unwrap();
        assert!(one <= 3.0 + 1e-12 && one > 2.0, "{one}");
        let many = p.estimate(&w, 30, 1.0).unwrap();
        assert!((many - 3.0).abs() < 1e-10, "{many}");
        assert!((p.estimate(&w, 0, 1.1).unwrap() - 3.3).abs() < 1e-9);
        let z = DMatrix::<f64>::zeros(3, 2);
        assert_eq!(p.estimate(&z, 3, 1.0).unwrap(), 0.0);
        let wrong = DMatrix::<f64>::zeros(2, 3);
        assert_eq!(
            p.estimate(&wrong, 3, 1.0).unwrap_err().to_string(),
            "shape mismatch in power iteration: matrix columns: expected 2, got 3"
        );
    }
}
