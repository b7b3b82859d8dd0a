//! Preallocated buffers of the multiplicative updates (no allocation per iteration).

use autodiff::Real;
use nalgebra::{DMatrix, DVector};

use crate::error::Result;

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
    /// Buffers for `V: f x n` and rank `k`. Errors (before allocating) if a buffer
    /// (`f x n`, `f x k`, `k x n` or `k x k`) would exceed [`crate::MAX_ENTRIES`].
    pub fn new(f: usize, n: usize, k: usize) -> Result<Self> {
        const OP: &str = "NmfWorkspace::new";
        crate::validate::entries(OP, "V-sized buffer (F x N)", &[f, n])?;
        crate::validate::entries(OP, "W-sized buffer (F x K)", &[f, k])?;
        crate::validate::entries(OP, "H-sized buffer (K x N)", &[k, n])?;
        crate::validate::entries(OP, "Gram buffer (K x K)", &[k, k])?;
        Ok(Self {
            wh: DMatrix::zeros(f, n),
            a: DMatrix::zeros(f, n),
            b: DMatrix::zeros(f, n),
            num_h: DMatrix::zeros(k, n),
            den_h: DMatrix::zeros(k, n),
            num_w: DMatrix::zeros(f, k),
            den_w: DMatrix::zeros(f, k),
            gram: DMatrix::zeros(k, k),
            sums: DVector::zeros(k),
        })
    }
    /// `(F, N, K)` this workspace was made for.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.wh.nrows(), self.wh.ncols(), self.gram.nrows())
    }
    /// Reallocates for `(f, n, k)` if the sizes differ (errors as [`NmfWorkspace::new`]).
    pub(crate) fn ensure(&mut self, f: usize, n: usize, k: usize) -> Result<()> {
        if self.dims() != (f, n, k) {
            *self = Self::new(f, n, k)?;
        }
        Ok(())
    }
}
