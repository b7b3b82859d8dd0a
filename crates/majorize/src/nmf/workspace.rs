//! Preallocated buffers of the multiplicative updates (no allocation per iteration).

use autodiff::Real;
use nalgebra::{DMatrix, DVector};

/// Buffers for one problem size `V: F x N`, rank `K`. Reuse it across iterations.
#[derive(Clone, Debug)]
pub struct NmfWorkspace<T: Real> {
    pub(crate) wh: DMatrix<T>,
    pub(crate) a: DMatrix<T>,
    pub(crate) b: DMatrix<T>,
    pub(crate) num_h: DMatrix<T>,
    pub(crate) den_h: DMatrix<T>,
    pub(crate) num_w: DMatrix<T>,
    pub(crate) den_w: DMatrix<T>,
    pub(crate) gram: DMatrix<T>,
    pub(crate) sums: DVector<T>,
}

impl<T: Real> NmfWorkspace<T> {
    /// Buffers for `V: f x n` and rank `k`.
    pub fn new(f: usize, n: usize, k: usize) -> Self {
        Self {
            wh: DMatrix::zeros(f, n),
            a: DMatrix::zeros(f, n),
            b: DMatrix::zeros(f, n),
            num_h: DMatrix::zeros(k, n),
            den_h: DMatrix::zeros(k, n),
            num_w: DMatrix::zeros(f, k),
            den_w: DMatrix::zeros(f, k),
            gram: DMatrix::zeros(k, k),
            sums: DVector::zeros(k),
        }
    }
    /// `(F, N, K)` this workspace was made for.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.wh.nrows(), self.wh.ncols(), self.gram.nrows())
    }
    pub(crate) fn ensure(&mut self, f: usize, n: usize, k: usize) {
        if self.dims() != (f, n, k) {
            *self = Self::new(f, n, k);
        }
    }
}
