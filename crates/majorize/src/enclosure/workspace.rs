//! Buffers reused across calls of [`super::enclose_with`]: the engine's models and
//! temporaries are `d x N` matrices (megabytes for a full batch), and allocating them
//! afresh on every call costs page faults and zeroing. A workspace keeps the freed
//! buffers and hands them out again (zeroed), so that at steady state (same shapes, same
//! `k`) a call allocates no large matrix. Results do not depend on the workspace's
//! history: every buffer is zero-filled before use, exactly like a fresh allocation,
//! except scratch buffers that the caller overwrites entirely before reading them.

use nalgebra::DMatrix;

use super::model::Model;

/// Reusable scratch memory of the enclosure engine (see [`super::enclose_with`]).
/// Keep one per thread and pass it to every call; `EnclosureWorkspace::default()` is
/// empty and grows to the largest shapes it has seen.
#[derive(Debug, Default)]
pub struct EnclosureWorkspace {
    pool: Vec<Vec<f64>>,
    /// Per-entry classes of the ReLU step (see `Model::relu_classes`).
    pub(crate) class: Vec<u8>,
}

impl EnclosureWorkspace {
    /// An empty workspace.
    pub fn new() -> EnclosureWorkspace {
        EnclosureWorkspace::default()
    }

    /// A zeroed `rows x cols` matrix, reusing a pooled buffer when one is large enough.
    pub(crate) fn zeros(&mut self, rows: usize, cols: usize) -> DMatrix<f64> {
        let mut m = self.scratch(rows, cols);
        m.fill(0.0);
        m
    }

    /// A `rows x cols` matrix with unspecified (stale) contents, for outputs that are
    /// entirely overwritten before being read (GEMM with `beta = 0`, full loops).
    pub(crate) fn scratch(&mut self, rows: usize, cols: usize) -> DMatrix<f64> {
        let n = rows * cols;
        let pick = self
            .pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = match pick {
            Some(i) => self.pool.swap_remove(i),
            None => Vec::with_capacity(n),
        };
        v.resize(n, 0.0);
        DMatrix::from_vec(rows, cols, v)
    }

    /// Returns a matrix's buffer to the pool.
    pub(crate) fn give(&mut self, m: DMatrix<f64>) {
        self.pool.push(m.data.into());
    }

    /// A zeroed (non-constant) model.
    pub(crate) fn model(&mut self, rows: usize, cols: usize, k: usize) -> Model {
        Model {
            k,
            c0: self.zeros(rows, cols),
            c1: (0..k).map(|_| self.zeros(rows, cols)).collect(),
            qm: (0..k * k).map(|_| self.zeros(rows, cols)).collect(),
            qr: (0..k * k).map(|_| self.zeros(rows, cols)).collect(),
            e: self.zeros(rows, cols),
            constant: false,
        }
    }

    /// A model whose `c0`, `c1` and `e` are scratch (to be overwritten by GEMMs) and whose
    /// degree-2 coefficients are zeroed if `zero_q`, scratch otherwise.
    pub(crate) fn model_scratch(
        &mut self,
        rows: usize,
        cols: usize,
        k: usize,
        zero_q: bool,
    ) -> Model {
        let q = |ws: &mut Self| {
            if zero_q {
                ws.zeros(rows, cols)
            } else {
                ws.scratch(rows, cols)
            }
        };
        let mut qm = Vec::with_capacity(k * k);
        let mut qr = Vec::with_capacity(k * k);
        for _ in 0..k * k {
            qm.push(q(self));
            qr.push(q(self));
        }
        Model {
            k,
            c0: self.scratch(rows, cols),
            c1: (0..k).map(|_| self.scratch(rows, cols)).collect(),
            qm,
            qr,
            e: self.scratch(rows, cols),
            constant: false,
        }
    }

    /// Returns every buffer of a model to the pool.
    pub(crate) fn give_model(&mut self, m: Model) {
        self.give(m.c0);
        self.give(m.e);
        for x in m.c1.into_iter().chain(m.qm).chain(m.qr) {
            self.give(x);
        }
    }
}
