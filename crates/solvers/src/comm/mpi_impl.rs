//! The MPI communicator (cargo feature `mpi`), over the system's MPI library through
//! rsmpi (the `mpi` crate).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mpi::Threading;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use super::Comm;
use crate::SolverError;

/// `MPI_COMM_WORLD` of a program started under `mpirun -np P`. Build it once per process
/// with [`MpiComm::init`] (it initialises MPI; MPI is finalised when it is dropped).
///
/// Failures: MPI's default error handler (`MPI_ERRORS_ARE_FATAL`) aborts the whole job
/// when a collective fails, and `mpirun` kills every rank when one rank dies, so a killed
/// rank never leaves the others waiting forever (tested in `.ci/run`).
///
/// Threads: MPI is initialised with `MPI_THREAD_SERIALIZED` (calls from any thread,
/// never two at once) and every call goes through one mutex, which is what makes the
/// communicator `Send + Sync` (the `unsafe impl`s below rely on exactly this).
pub struct MpiComm {
    // Dropping the universe finalises MPI: keep it for the life of the communicator.
    inner: Mutex<(Universe, SimpleCommunicator)>,
    rank: usize,
    size: usize,
    sent: AtomicU64,
}

// SAFETY: the raw MPI handles inside `Universe` and `SimpleCommunicator` are only used
// while holding `inner`'s lock, and MPI was initialised with at least
// MPI_THREAD_SERIALIZED (checked in `init`), which allows calls from any thread as long
// as no two are concurrent. Rank and size are plain integers copied at init.
unsafe impl Send for MpiComm {}
// SAFETY: as above: shared access never reaches MPI without the lock.
unsafe impl Sync for MpiComm {}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiComm")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .finish()
    }
}

impl MpiComm {
    /// Initialises MPI (once per process) and takes `MPI_COMM_WORLD`. Errors if MPI was
    /// already initialised in this process.
    pub fn init() -> Result<Self, SolverError> {
        let (universe, level) =
            mpi::initialize_with_threading(Threading::Serialized).ok_or_else(|| {
                SolverError::Problem("MPI: already initialised in this process".into())
            })?;
        if level < Threading::Serialized {
            return Err(SolverError::Problem(format!(
                "MPI: the library provides thread level {level:?}, strata needs Serialized"
            )));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(MpiComm {
            inner: Mutex::new((universe, world)),
            rank,
            size,
            sent: AtomicU64::new(0),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&SimpleCommunicator) -> R) -> Result<R, SolverError> {
        let guard = self.inner.lock().map_err(|_| {
            SolverError::Problem("MPI: a thread panicked inside a collective".into())
        })?;
        Ok(f(&guard.1))
    }
}

impl Comm for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn allgather_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), SolverError> {
        let p = self.size();
        if recv.len() != p * send.len() {
            return Err(SolverError::shape(
                "MpiComm::allgather_f64 receive buffer",
                p * send.len(),
                recv.len(),
            ));
        }
        self.with(|w| w.all_gather_into(send, recv))?;
        self.sent
            .fetch_add((8 * send.len() * (p - 1)) as u64, Ordering::Relaxed);
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<(), SolverError> {
        let p = self.size();
        if root >= p {
            return Err(SolverError::shape(
                "MpiComm::broadcast_f64 root",
                format!("< {p}"),
                root,
            ));
        }
        self.with(|w| w.process_at_rank(root as i32).broadcast_into(buf))?;
        if self.rank() == root {
            self.sent
                .fetch_add((8 * buf.len() * (p - 1)) as u64, Ordering::Relaxed);
        }
        Ok(())
    }
    fn barrier(&self) -> Result<(), SolverError> {
        self.with(|w| w.barrier())
    }
    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    fn describe(&self) -> String {
        let (major, minor) = mpi::environment::version();
        format!(
            "mpi ({}, MPI {major}.{minor}), {} ranks",
            mpi::environment::library_version()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or("")
                .trim(),
            self.size()
        )
    }
}
