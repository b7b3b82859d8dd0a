//! The tape: an arena of nodes recorded in evaluation order, with pooled buffers.
//!
//! Node `i` is stored column-wise across parallel vectors (`ops[i]`, `values[i]`,
//! `grads[i]`, ...), so a backward rule can read values and the output gradient while
//! writing input gradients without any `Rc<RefCell<_>>`. The arena order is a
//! topological order (an op only refers to earlier nodes), so backward is one reverse
//! sweep.
//!
//! Buffers belong to slots, not to nodes: [`Tape::reset`] forgets the nodes but keeps
//! every slot's value, gradient and scratch buffers, and recording node `i` again reuses
//! slot `i`'s buffers (re-shaped in place when the shape changed, reallocated only when
//! it grew beyond the old capacity). Recording the same graph again therefore allocates
//! nothing.

use crate::op::Op;
use crate::{AutodiffError, Real, Result};
use nalgebra::DMatrix;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// Handle to a node of a tape: an index into its arena, plus the identity of the tape
/// and of the recording (the number of resets) it belongs to, so that a handle from
/// another tape or from before a [`Tape::reset`] is detected instead of silently
/// pointing at another node. `Copy` and cheap. Both counters are 64-bit, so neither
/// wraps in practice: a 32-bit epoch came back to a stale handle's value after 2^32
/// resets (about a minute of small recordings), which then read another node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    pub(crate) index: usize,
    pub(crate) tape: u64,
    pub(crate) epoch: u64,
}

impl Var {
    /// Position of the node in its tape (0 for the first node recorded after a reset).
    pub fn index(&self) -> usize {
        self.index
    }
}

/// A reverse-mode autodiff tape over dense column-major matrices.
///
/// Record a computation with the op methods (each returns `Result<Var>` and checks
/// shapes), call [`Tape::backward`] on a 1x1 result (or [`Tape::vjp`] with a seed), read
/// gradients with [`Tape::grad`], then [`Tape::reset`] and record again: the second and
/// later recordings of the same graph reuse every buffer.
pub struct Tape<T: Real> {
    pub(crate) id: u64,
    pub(crate) epoch: u64,
    pub(crate) threads: usize,
    /// One op per recorded node; `ops.len()` is the number of live nodes.
    pub(crate) ops: Vec<Op<T>>,
    /// Forward values, one slot per node ever recorded (pool: may be longer than `ops`).
    pub(crate) values: Vec<DMatrix<T>>,
    /// Gradient buffers, same slots.
    pub(crate) grads: Vec<DMatrix<T>>,
    /// Per-op scratch kept from forward for backward (e.g. log-probabilities).
    pub(crate) aux: Vec<DMatrix<T>>,
    /// Integer labels of label-based losses, same slots.
    pub(crate) labels: Vec<Vec<usize>>,
    /// Whether a gradient must flow into the node (a param or depends on one).
    pub(crate) needs_grad: Vec<bool>,
    /// Whether the last backward/vjp wrote the node's gradient buffer.
    pub(crate) has_grad: Vec<bool>,
    /// Returned by [`Tape::value`] for an invalid handle.
    empty: DMatrix<T>,
}

impl<T: Real> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> std::fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("dtype", &T::dtype_name())
            .field("nodes", &self.ops.len())
            .field("pooled_slots", &self.values.len())
            .field("threads", &self.threads)
            .finish()
    }
}

/// Re-shapes `m` to `rows x cols` in place, reusing its allocation when it is large
/// enough. Contents are unspecified afterwards (zeros where the buffer grew).
pub(crate) fn ensure_shape<T: Real>(m: &mut DMatrix<T>, rows: usize, cols: usize) {
    if m.shape() == (rows, cols) {
        return;
    }
    let old = std::mem::replace(m, DMatrix::from_vec(0, 0, Vec::new()));
    let mut v: Vec<T> = old.data.into();
    v.clear();
    v.resize(rows * cols, T::zero());
    *m = DMatrix::from_vec(rows, cols, v);
}

impl<T: Real> Tape<T> {
    /// An empty tape whose products run on one thread.
    pub fn new() -> Self {
        Self::with_threads(1)
    }

    /// An empty tape whose large products may use `threads` rayon threads (0 is taken
    /// as 1, more than [`crate::kernels::MAX_THREADS`] as that). Results are
    /// bit-identical for a fixed thread count.
    pub fn with_threads(threads: usize) -> Self {
        Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            epoch: 0,
            threads: threads.clamp(1, crate::kernels::MAX_THREADS),
            ops: Vec::new(),
            values: Vec::new(),
            grads: Vec::new(),
            aux: Vec::new(),
            labels: Vec::new(),
            needs_grad: Vec::new(),
            has_grad: Vec::new(),
            empty: DMatrix::from_vec(0, 0, Vec::new()),
        }
    }

    /// Number of threads products may use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Changes the number of threads products may use (0 is taken as 1, more than
    /// [`crate::kernels::MAX_THREADS`] as that).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.clamp(1, crate::kernels::MAX_THREADS);
    }

    /// Number of nodes recorded since the last reset.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no node was recorded since the last reset.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Forgets all nodes but keeps their buffers: recording the same graph again
    /// allocates no new matrix buffers. Every `Var` recorded before becomes stale.
    pub fn reset(&mut self) {
        self.ops.clear();
        self.needs_grad.clear();
        self.has_grad.clear();
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Leaf that receives a gradient (copies `value` into a pooled buffer).
    pub fn param(&mut self, value: &DMatrix<T>) -> Var {
        self.leaf(value, true)
    }

    /// Leaf that receives no gradient (inputs, targets).
    pub fn constant(&mut self, value: &DMatrix<T>) -> Var {
        self.leaf(value, false)
    }

    /// Param leaf from column-major data (`rows * cols` values), e.g. a `DVector`'s
    /// slice or a contiguous range of columns of a data matrix (a mini-batch).
    pub fn param_from_slice(&mut self, rows: usize, cols: usize, data: &[T]) -> Result<Var> {
        self.leaf_from_slice("param_from_slice", rows, cols, data, true)
    }

    /// Constant leaf from column-major data (`rows * cols` values); see
    /// [`Tape::param_from_slice`].
    pub fn constant_from_slice(&mut self, rows: usize, cols: usize, data: &[T]) -> Result<Var> {
        self.leaf_from_slice("constant_from_slice", rows, cols, data, false)
    }

    /// Constant leaf made of the columns `cols` of `x`, in that order (`x.nrows() x
    /// cols.len()`): a mini-batch gathered straight into the tape's pooled buffer, one
    /// contiguous copy per column (column `j` of a column-major matrix is the slice
    /// `[j d, (j + 1) d)`), without an intermediate batch matrix. Errors on an index
    /// `>= x.ncols()`.
    pub fn constant_columns(&mut self, x: &DMatrix<T>, cols: &[usize]) -> Result<Var> {
        let (d, n) = x.shape();
        if let Some(&j) = cols.iter().find(|&&j| j >= n) {
            return Err(AutodiffError::InvalidArgument {
                op: "constant_columns",
                what: format!("column {j} of a {d}x{n} matrix"),
            });
        }
        let v = self.push(Op::Leaf, d, cols.len(), false);
        if d > 0 {
            let src = x.as_slice();
            let dst = self.values[v.index].as_mut_slice();
            for (to, &j) in dst.chunks_exact_mut(d).zip(cols) {
                to.copy_from_slice(&src[j * d..(j + 1) * d]);
            }
        }
        Ok(v)
    }

    fn leaf_from_slice(
        &mut self,
        op: &'static str,
        rows: usize,
        cols: usize,
        data: &[T],
        needs_grad: bool,
    ) -> Result<Var> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(AutodiffError::InvalidArgument {
                op,
                what: format!("{} values given for a {rows}x{cols} matrix", data.len()),
            });
        }
        let v = self.push(Op::Leaf, rows, cols, needs_grad);
        self.values[v.index].as_mut_slice().copy_from_slice(data);
        Ok(v)
    }

    fn leaf(&mut self, value: &DMatrix<T>, needs_grad: bool) -> Var {
        let (r, c) = value.shape();
        let v = self.push(Op::Leaf, r, c, needs_grad);
        self.values[v.index]
            .as_mut_slice()
            .copy_from_slice(value.as_slice());
        v
    }

    /// The forward value of `v`. An invalid handle (another tape, or stale after a
    /// reset) gives an empty 0x0 matrix; use [`Tape::try_value`] to get the error.
    pub fn value(&self, v: Var) -> &DMatrix<T> {
        match self.check("value", v) {
            Ok(i) => &self.values[i],
            Err(_) => &self.empty,
        }
    }

    /// The forward value of `v`, or the error saying why the handle is invalid.
    pub fn try_value(&self, v: Var) -> Result<&DMatrix<T>> {
        let i = self.check("value", v)?;
        Ok(&self.values[i])
    }

    /// The single entry of a 1x1 node (e.g. a loss).
    pub fn scalar(&self, v: Var) -> Result<T> {
        let i = self.check("scalar", v)?;
        let m = &self.values[i];
        if m.shape() != (1, 1) {
            return Err(AutodiffError::NotScalar { shape: m.shape() });
        }
        Ok(m[(0, 0)])
    }

    /// Shape `(rows, cols)` of `v` (`(0, 0)` for an invalid handle).
    pub fn shape(&self, v: Var) -> (usize, usize) {
        self.value(v).shape()
    }

    /// Whether a gradient flows into `v` (it is a param or depends on one).
    pub fn requires_grad(&self, v: Var) -> bool {
        self.check("requires_grad", v)
            .map(|i| self.needs_grad[i])
            .unwrap_or(false)
    }

    /// Gradient of the last backward/vjp with respect to `v` (None if nothing flowed
    /// into it, or the handle is invalid).
    pub fn grad(&self, v: Var) -> Option<&DMatrix<T>> {
        let i = self.check("grad", v).ok()?;
        if self.has_grad[i] {
            Some(&self.grads[i])
        } else {
            None
        }
    }

    /// Validates a handle and returns its node index.
    pub(crate) fn check(&self, op: &'static str, v: Var) -> Result<usize> {
        if v.tape != self.id {
            return Err(AutodiffError::ForeignVar { op, index: v.index });
        }
        if v.epoch != self.epoch || v.index >= self.ops.len() {
            return Err(AutodiffError::StaleVar { op, index: v.index });
        }
        Ok(v.index)
    }

    /// Appends a node with a `rows x cols` value buffer (reusing the slot's buffer) and
    /// returns its handle. The caller fills the value.
    pub(crate) fn push(&mut self, op: Op<T>, rows: usize, cols: usize, needs_grad: bool) -> Var {
        let i = self.ops.len();
        if i == self.values.len() {
            self.values.push(DMatrix::zeros(rows, cols));
            self.grads.push(DMatrix::from_vec(0, 0, Vec::new()));
            self.aux.push(DMatrix::from_vec(0, 0, Vec::new()));
            self.labels.push(Vec::new());
        } else {
            ensure_shape(&mut self.values[i], rows, cols);
        }
        self.ops.push(op);
        self.needs_grad.push(needs_grad);
        self.has_grad.push(false);
        Var {
            index: i,
            tape: self.id,
            epoch: self.epoch,
        }
    }

    /// Inputs (all earlier values) and the output buffer of node `i`, borrowed together.
    pub(crate) fn io(&mut self, i: usize) -> (&[DMatrix<T>], &mut DMatrix<T>) {
        let (ins, outs) = self.values.split_at_mut(i);
        (ins, &mut outs[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handle recorded before `2^32` resets is stale. With 32-bit epochs the counter
    /// wrapped back to the handle's epoch and the handle read whatever node now sat at its
    /// index (here the second recording's `b`).
    #[test]
    fn a_handle_stays_stale_after_two_to_the_32_resets() {
        let mut tape = Tape::<f64>::new();
        let a = tape.param(&DMatrix::from_element(1, 1, 3.0));
        tape.reset();
        // Jump the counter as 2^32 - 1 further resets would (each adds one).
        tape.epoch += (1u64 << 32) - 1;
        let b = tape.param(&DMatrix::from_element(1, 1, 5.0));
        assert_eq!(b.index(), a.index());
        assert!(matches!(
            tape.try_value(a),
            Err(AutodiffError::StaleVar { index: 0, .. })
        ));
        assert_eq!(tape.try_value(b).unwrap()[(0, 0)], 5.0);
    }
}
