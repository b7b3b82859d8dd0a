//! Ranks as threads of one process: the collectives of [`Comm`] over shared memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::Comm;
use crate::SolverError;

#[derive(Debug, PartialEq)]
enum Phase {
    /// Ranks are depositing their buffers.
    Filling,
    /// Every rank has deposited; ranks are copying the gathered buffers out.
    Draining,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    arrived: usize,
    departed: usize,
    slots: Vec<Vec<f64>>,
}

#[derive(Debug)]
struct Shared {
    size: usize,
    state: Mutex<State>,
    cv: Condvar,
    timeout: Duration,
}

/// `size` ranks living in one process, one per thread ([`ThreadComm::group`]): the same
/// collective semantics as MPI (every rank calls every collective in the same order),
/// implemented with a mutex and a condition variable. It lets the distributed solvers
/// run with several ranks in `cargo test` on a machine without MPI, and it is how the
/// tests check that P ranks reproduce the single-process trace.
///
/// A rank that does not reach a collective within the timeout (default 60 s: it
/// panicked, or the program is not collective) makes the waiting ranks fail with
/// [`SolverError::Problem`] instead of hanging.
#[derive(Debug)]
pub struct ThreadComm {
    rank: usize,
    shared: Arc<Shared>,
    sent: AtomicU64,
}

impl ThreadComm {
    /// The `size` communicators of one group (give one to each thread), with the default
    /// 60 s timeout. `size = 0` is read as 1.
    pub fn group(size: usize) -> Vec<ThreadComm> {
        Self::group_with_timeout(size, Duration::from_secs(60))
    }

    /// Like [`ThreadComm::group`] with a chosen timeout for a rank that never arrives.
    pub fn group_with_timeout(size: usize, timeout: Duration) -> Vec<ThreadComm> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            size,
            state: Mutex::new(State {
                phase: Phase::Filling,
                arrived: 0,
                departed: 0,
                slots: vec![Vec::new(); size],
            }),
            cv: Condvar::new(),
            timeout,
        });
        (0..size)
            .map(|rank| ThreadComm {
                rank,
                shared: Arc::clone(&shared),
                sent: AtomicU64::new(0),
            })
            .collect()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, SolverError> {
        self.shared
            .state
            .lock()
            .map_err(|_| SolverError::Problem("ThreadComm: another rank panicked".into()))
    }

    fn wait<'g>(
        &self,
        guard: MutexGuard<'g, State>,
        until: impl Fn(&State) -> bool,
    ) -> Result<MutexGuard<'g, State>, SolverError> {
        let (g, res) = self
            .shared
            .cv
            .wait_timeout_while(guard, self.shared.timeout, |s| !until(s))
            .map_err(|_| SolverError::Problem("ThreadComm: another rank panicked".into()))?;
        if res.timed_out() {
            return Err(SolverError::Problem(format!(
                "ThreadComm: rank {} waited {:?} for the other ranks (one exited or is not collective)",
                self.rank, self.shared.timeout
            )));
        }
        Ok(g)
    }
}

impl Comm for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn allgather_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), SolverError> {
        let p = self.shared.size;
        let len = send.len();
        if recv.len() != p * len {
            return Err(SolverError::shape(
                "ThreadComm::allgather_f64 receive buffer",
                p * len,
                recv.len(),
            ));
        }
        let mut st = self.lock()?;
        st = self.wait(st, |s| s.phase == Phase::Filling)?;
        st.slots[self.rank].clear();
        st.slots[self.rank].extend_from_slice(send);
        st.arrived += 1;
        if st.arrived == p {
            st.phase = Phase::Draining;
            st.departed = 0;
            self.shared.cv.notify_all();
        } else {
            st = self.wait(st, |s| s.phase == Phase::Draining)?;
        }
        for (r, slot) in st.slots.iter().enumerate() {
            if slot.len() != len {
                return Err(SolverError::shape(
                    format!("ThreadComm::allgather_f64 length of rank {r}"),
                    len,
                    slot.len(),
                ));
            }
            recv[r * len..(r + 1) * len].copy_from_slice(slot);
        }
        st.departed += 1;
        if st.departed == p {
            st.phase = Phase::Filling;
            st.arrived = 0;
            self.shared.cv.notify_all();
        }
        self.sent
            .fetch_add((8 * len * (p - 1)) as u64, Ordering::Relaxed);
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<(), SolverError> {
        let p = self.shared.size;
        if root >= p {
            return Err(SolverError::shape(
                "ThreadComm::broadcast_f64 root",
                format!("< {p}"),
                root,
            ));
        }
        let mut all = vec![0.0; p * buf.len()];
        self.allgather_f64(buf, &mut all)?;
        let len = buf.len();
        buf.copy_from_slice(&all[root * len..(root + 1) * len]);
        Ok(())
    }
    fn barrier(&self) -> Result<(), SolverError> {
        self.allgather_f64(&[], &mut [])
    }
    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    fn describe(&self) -> String {
        format!("threads, {} ranks", self.shared.size)
    }
}
