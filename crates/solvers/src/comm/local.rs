//! The single-process communicator.

use super::Comm;
use crate::SolverError;

/// One rank: every collective is the identity. The default communicator of every
/// problem, so single-process code pays nothing for the distributed design.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalComm;

impl Comm for LocalComm {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn allgather_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), SolverError> {
        if recv.len() != send.len() {
            return Err(SolverError::shape(
                "LocalComm::allgather_f64 receive buffer",
                send.len(),
                recv.len(),
            ));
        }
        recv.copy_from_slice(send);
        Ok(())
    }
    fn broadcast_f64(&self, _buf: &mut [f64], root: usize) -> Result<(), SolverError> {
        if root != 0 {
            return Err(SolverError::shape("LocalComm::broadcast_f64 root", 0, root));
        }
        Ok(())
    }
    fn barrier(&self) -> Result<(), SolverError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "single process".into()
    }
}
