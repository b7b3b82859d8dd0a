//! Buffers reused across calls of [`super::enclose_with`]: the engine's models and
//! temporaries are `d x N` matrices (megabytes for a full batch), and allocating them
//! afresh on every call costs page faults and zeroing. A workspace keeps the freed
//! buffers and hands them out again (zeroed), so that at steady state (same shapes, same
//! `k`) a call allocates no large matrix. Results do not depend on the workspace's
//! history: every buffer is zero-filled before use, exactly like a fresh allocation,
//! except scratch buffers that the caller overwrites entirely before reading them, and
//! two kinds of buffers kept whole between calls:
//!
//! - the constant input model ([`EnclosureWorkspace::input_model`]): its first-order,
//!   degree-2 and radius buffers are zero-filled once and never written afterwards (the
//!   steps only read their input model), so a call refills only `c0` with the inputs;
//! - the per-layer f64 operands ([`DenseDirs`]), overwritten entirely by
//!   [`DenseDirs::load`] on every call.

use autodiff::Real;
use nalgebra::DMatrix;

use super::model::{DenseDirs, Model};
use super::sparse::Pattern;

/// Reusable scratch memory of the enclosure engine (see [`super::enclose_with`]).
/// Keep one per thread and pass it to every call; `EnclosureWorkspace::default()` is
/// empty and grows to the largest shapes it has seen.
#[derive(Debug, Default)]
pub struct EnclosureWorkspace {
    pool: Vec<Vec<f64>>,
    /// Buffers known to be all `+0.0` (the degree-2 coefficients of a dense layer on the
    /// constant input, which no step writes): handed out by [`Self::zeros`] without a fill.
    zero_pool: Vec<Vec<f64>>,
    /// Per-entry classes of the ReLU step (see `Model::relu_classes`).
    pub(crate) class: Vec<u8>,
    /// Per-entry spread of the general (`k > 1`) ReLU classification, reused.
    pub(crate) spread: Vec<f64>,
    /// Degree-2 products of the current dense layer already formed (`model::dense`,
    /// `k > 1`): the pairs whose operands later pairs are compared with, reused.
    pub(crate) reps_m: Vec<usize>,
    /// As `reps_m`, for the degree-2 radius products.
    pub(crate) reps_r: Vec<usize>,
    /// Per direction: the dense layer's input has `a1_j = ±0` everywhere, reused.
    pub(crate) a1_zero: Vec<bool>,
    /// Entries of a zero-pool model's degree-2 buffers that the in-place ReLU wrote
    /// (`relu1::relu_zero_q_in_place`); [`Self::give_model_kink_q`] zeroes them again.
    pub(crate) kinks: Vec<usize>,
    /// Set by the sweep before a dense layer: the input's degree-2 entries are `±0`
    /// outside [`Self::kinks`] (the in-place ReLU's output), so `dense` takes its sparse
    /// pattern from that list instead of scanning.
    pub(crate) q_at_kinks: bool,
    /// Nonzero degree-2 positions of a dense layer's input (`sparse`), reused.
    pub(crate) pattern: Pattern,
    /// Column sums of `|a1|` (the sparse radius's Hölder term), reused.
    pub(crate) abs_sums: Vec<f64>,
    /// Constant input models of recent blocks (zero coefficients, kept), one per shape.
    input: Vec<Model>,
    /// The dense layers' f64 operands, indexed by the layer's index in the network
    /// (slots of layers outside the current plan keep their last shapes).
    pub(crate) layers: Vec<DenseDirs>,
    /// Emptied coefficient lists of returned models (capacity kept), so that a model
    /// built at steady state allocates no list either.
    shells: Vec<Vec<DMatrix<f64>>>,
}

impl EnclosureWorkspace {
    /// An empty workspace.
    pub fn new() -> EnclosureWorkspace {
        EnclosureWorkspace::default()
    }

    /// The constant model of the samples `start..end` of the inputs `x` for `k`
    /// directions: `c0` = those columns in f64, every other coefficient zero. The zero
    /// buffers of earlier calls are reused as they are (no step writes into its input
    /// model; [`Self::keep_input`] takes it back), so only `c0` is written; a shape or `k`
    /// not seen before builds a fresh zeroed model.
    pub(crate) fn input_model<T: Real>(
        &mut self,
        x: &DMatrix<T>,
        start: usize,
        end: usize,
        k: usize,
    ) -> Model {
        let (r, c) = (x.nrows(), end - start);
        let mut m = match self
            .input
            .iter()
            .position(|m| m.k == k && m.c0.shape() == (r, c))
        {
            Some(i) => self.input.swap_remove(i),
            None => self.model(r, c, k),
        };
        let src = &x.as_slice()[start * r..end * r];
        for (d, s) in m.c0.as_mut_slice().iter_mut().zip(src) {
            *d = s.to_f64();
        }
        m.constant = true;
        m
    }

    /// Keeps an input model for later blocks and calls (see [`Self::input_model`]); at
    /// most a few shapes are kept (the blocks of one batch have at most two widths).
    pub(crate) fn keep_input(&mut self, m: Model) {
        debug_assert!(m.constant);
        if self.input.len() >= 4 {
            let old = self.input.remove(0);
            self.give_model(old);
        }
        self.input.push(m);
    }

    /// A zeroed `rows x cols` matrix: a kept all-zero buffer of that size if there is one
    /// (no fill), else a pooled or new buffer, zero-filled.
    pub(crate) fn zeros(&mut self, rows: usize, cols: usize) -> DMatrix<f64> {
        let n = rows * cols;
        if let Some(i) = self.zero_pool.iter().position(|v| v.len() == n) {
            let v = self.zero_pool.swap_remove(i);
            debug_assert!(v.iter().all(|x| x.to_bits() == 0));
            return DMatrix::from_vec(rows, cols, v);
        }
        let mut m = self.scratch(rows, cols);
        m.fill(0.0);
        m
    }

    /// A `rows x cols` matrix with unspecified (stale) contents, for outputs that are
    /// entirely overwritten before being read (GEMM with `beta = 0`, full loops).
    pub(crate) fn scratch(&mut self, rows: usize, cols: usize) -> DMatrix<f64> {
        let n = rows * cols;
        // Only a buffer of exactly this length is reused: at steady state the same shapes
        // recur, so every request finds its buffer and `resize` below writes nothing
        // (reusing a buffer of another length would zero-fill on every call, as the next
        // request of the other length would then find none).
        let mut v = match self.pool.iter().position(|v| v.len() == n) {
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

    /// An empty list for `n` coefficient matrices: a kept one if any (no allocation
    /// once it has grown to `n`), else a new one.
    fn shell(&mut self, n: usize) -> Vec<DMatrix<f64>> {
        let mut v = self.shells.pop().unwrap_or_default();
        v.reserve(n);
        v
    }

    /// Keeps an emptied coefficient list (see [`Self::shell`]).
    fn give_shell(&mut self, mut v: Vec<DMatrix<f64>>) {
        v.clear();
        self.shells.push(v);
    }

    /// A zeroed (non-constant) model.
    pub(crate) fn model(&mut self, rows: usize, cols: usize, k: usize) -> Model {
        let (mut c1, mut qm, mut qr) = (self.shell(k), self.shell(k * k), self.shell(k * k));
        for _ in 0..k {
            c1.push(self.zeros(rows, cols));
        }
        for _ in 0..k * k {
            qm.push(self.zeros(rows, cols));
            qr.push(self.zeros(rows, cols));
        }
        Model {
            k,
            c0: self.zeros(rows, cols),
            c1,
            qm,
            qr,
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
        let (mut c1, mut qm, mut qr) = (self.shell(k), self.shell(k * k), self.shell(k * k));
        for _ in 0..k * k {
            qm.push(q(self));
            qr.push(q(self));
        }
        for _ in 0..k {
            c1.push(self.scratch(rows, cols));
        }
        Model {
            k,
            c0: self.scratch(rows, cols),
            c1,
            qm,
            qr,
            e: self.scratch(rows, cols),
            constant: false,
        }
    }

    /// A copy of `m` in pooled buffers (bit for bit, `constant` included).
    pub(crate) fn copy_model(&mut self, m: &Model) -> Model {
        let (rows, cols) = m.c0.shape();
        let mut out = self.model_scratch(rows, cols, m.k, false);
        out.c0.copy_from(&m.c0);
        out.e.copy_from(&m.e);
        for (o, x) in out.c1.iter_mut().zip(&m.c1) {
            o.copy_from(x);
        }
        for (o, x) in out.qm.iter_mut().zip(&m.qm) {
            o.copy_from(x);
        }
        for (o, x) in out.qr.iter_mut().zip(&m.qr) {
            o.copy_from(x);
        }
        out.constant = m.constant;
        out
    }

    /// Returns the buffers of a model whose degree-2 coefficients are still all `+0.0`
    /// (the output of a dense layer on the constant input, see [`Self::zeros`]): those
    /// go to the zero pool, the rest to the pool.
    pub(crate) fn give_model_zero_q(&mut self, mut m: Model) {
        self.give(m.c0);
        self.give(m.e);
        for x in m.c1.drain(..) {
            self.pool.push(x.data.into());
        }
        for x in m.qm.drain(..).chain(m.qr.drain(..)) {
            self.zero_pool.push(x.data.into());
        }
        self.give_shell(m.c1);
        self.give_shell(m.qm);
        self.give_shell(m.qr);
    }

    /// Returns a model whose degree-2 buffers are `+0.0` except at the entries listed in
    /// `self.kinks` (the first dense layer's output after the in-place ReLU of
    /// `relu1::relu_zero_q_in_place`): those entries are set to `+0.0` again, so the
    /// buffers go to the zero pool as in [`Self::give_model_zero_q`] (about 1.5% of the
    /// entries written instead of a fill of the whole buffers on their next use); the
    /// list is cleared.
    pub(crate) fn give_model_kink_q(&mut self, mut m: Model) {
        for x in m.qm.iter_mut().chain(m.qr.iter_mut()) {
            let s = x.as_mut_slice();
            for &i in &self.kinks {
                s[i] = 0.0;
            }
        }
        self.kinks.clear();
        self.give_model_zero_q(m);
    }

    /// Returns every buffer of a model to the pool.
    pub(crate) fn give_model(&mut self, mut m: Model) {
        self.give(m.c0);
        self.give(m.e);
        for x in m.c1.drain(..).chain(m.qm.drain(..)).chain(m.qr.drain(..)) {
            self.pool.push(x.data.into());
        }
        self.give_shell(m.c1);
        self.give_shell(m.qm);
        self.give_shell(m.qr);
    }
}
