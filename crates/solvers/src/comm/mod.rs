//! Communicators for data-parallel training: the [`Comm`] trait, the single-process
//! [`LocalComm`] (the default everywhere), the in-process [`ThreadComm`] (several ranks
//! as threads of one process, for tests and for machines without MPI) and, behind the
//! cargo feature `mpi`, `MpiComm` over the system's MPI library (rsmpi).
//!
//! ## Deterministic reductions
//!
//! Every sum over ranks goes through [`allreduce_sum`], which gathers each rank's
//! partial sums to every rank (`allgather`) and adds them **in rank order, in f64**, on
//! every rank. MPI's own `MPI_Allreduce` may add in an order that depends on the
//! algorithm the library picks at run time (message sizes, topology); the gather-then-add
//! form makes a run with a fixed number of ranks bit-identical run to run, and all ranks
//! hold bit-identical results, so their control flow never diverges. The price is volume:
//! each rank receives `(P - 1) len` values instead of the `2 (P - 1)/P len` of a ring
//! allreduce; `docs/DISTRIBUTED.md` models both. Partial sums of `f32` data are carried
//! and added in f64 (exact widening) and rounded once at the end.
//!
//! Across different rank counts, results differ only by the order of additions
//! (local sums over a shard, then over ranks), i.e. by rounding.

mod local;
#[cfg(feature = "mpi")]
mod mpi_impl;
mod threads;

pub use local::LocalComm;
#[cfg(feature = "mpi")]
pub use mpi_impl::MpiComm;
pub use threads::ThreadComm;

use autodiff::Real;

use crate::SolverError;

/// A group of `size` processes (ranks) that run the same program on different shards of
/// the data and combine partial results. All methods are collective: every rank must
/// call them in the same order with buffers of the same length, or the group hangs or
/// fails (an MPI implementation aborts every rank on a failure, see `MpiComm`).
pub trait Comm: Send + Sync + std::fmt::Debug {
    /// This process's rank in `0..size`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Gathers `send` (the same length on every rank) from every rank into `recv`
    /// (length `size * send.len()`), rank `r`'s values at `r * send.len()`.
    fn allgather_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), SolverError>;
    /// Copies `buf` of rank `root` into `buf` of every rank.
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<(), SolverError>;
    /// Returns when every rank has called it.
    fn barrier(&self) -> Result<(), SolverError>;
    /// Bytes this rank has sent so far through the collectives (for the scaling report).
    fn bytes_sent(&self) -> u64 {
        0
    }
    /// Short description, e.g. `"mpi (OpenMPI 4.1.4), 3 ranks"`.
    fn describe(&self) -> String;
}

/// `Ok` when `comm` reports at least one rank and a rank in `0..size` (a user's
/// [`Comm`] may not); a [`SolverError::Problem`] naming both otherwise. The sharded
/// problems check it before cutting the data.
pub fn check_group(comm: &dyn Comm) -> Result<(), SolverError> {
    let (rank, size) = (comm.rank(), comm.size());
    if size == 0 || rank >= size {
        return Err(SolverError::Problem(format!(
            "communicator reports rank {rank} of {size} ranks (the rank must lie in 0..size)"
        )));
    }
    Ok(())
}

/// The contiguous, deterministic shard of `n` samples held by `rank` of `size`:
/// samples `[rank n / size, (rank + 1) n / size)` (sizes differ by at most one).
pub fn shard_range(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    let lo = (n as u128 * rank as u128 / size as u128) as usize;
    let hi = (n as u128 * (rank as u128 + 1) / size as u128) as usize;
    lo..hi.min(n)
}

/// Sums `buf` over all ranks in place, deterministically (module doc): the partial sums
/// are widened to f64, gathered to every rank and added in rank order `0, 1, ..., P-1`,
/// then rounded to `T`. With one rank this is the identity (no rounding for f64; f32
/// round-trips exactly). `scratch` is reused between calls (no allocation at steady
/// state).
pub fn allreduce_sum<T: Real>(
    comm: &dyn Comm,
    buf: &mut [T],
    scratch: &mut Vec<f64>,
) -> Result<(), SolverError> {
    let p = comm.size();
    if p <= 1 {
        return Ok(());
    }
    let len = buf.len();
    scratch.clear();
    scratch.resize(len * (p + 1), 0.0);
    let (send, recv) = scratch.split_at_mut(len);
    for (s, &b) in send.iter_mut().zip(buf.iter()) {
        *s = b.to_f64();
    }
    comm.allgather_f64(send, recv)?;
    for (i, out) in buf.iter_mut().enumerate() {
        let mut acc = 0.0f64;
        for r in 0..p {
            acc += recv[r * len + i];
        }
        *out = T::of(acc);
    }
    Ok(())
}

/// Sums f64 values over all ranks (deterministic, see [`allreduce_sum`]).
pub fn allreduce_sum_f64(comm: &dyn Comm, buf: &mut [f64]) -> Result<(), SolverError> {
    let mut scratch = Vec::new();
    allreduce_sum(comm, buf, &mut scratch)
}

/// Whether `flag` is true on any rank (for collective stopping decisions, e.g. a
/// wall-time budget that one rank reaches first).
pub fn any_rank(comm: &dyn Comm, flag: bool) -> Result<bool, SolverError> {
    if comm.size() <= 1 {
        return Ok(flag);
    }
    let mut v = [if flag { 1.0 } else { 0.0 }];
    allreduce_sum_f64(comm, &mut v)?;
    Ok(v[0] > 0.0)
}

#[cfg(test)]
mod tests;
