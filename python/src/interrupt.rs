//! Ctrl-C between iterations while the GIL is released.
//!
//! Training runs inside `Python::detach` (other Python threads keep running). After
//! every record the driver notifies [`SignalCheck`], which reacquires the GIL for the
//! duration of `PyErr_CheckSignals` (Python's C-level SIGINT handler only sets a flag;
//! the Python-level handler runs here, in the main thread) and, if it raised, stops the
//! run and keeps the exception (normally `KeyboardInterrupt`) for the caller to re-raise.

use pyo3::prelude::*;
use solvers::{Control, Observer, Record};

/// A driver observer that stops the run when a Python signal handler raises.
#[derive(Debug, Default)]
pub struct SignalCheck {
    /// The exception raised by a signal handler, if any.
    pub raised: Option<PyErr>,
}

impl SignalCheck {
    /// Checks for pending signals now (reacquiring the GIL briefly); `true` if a handler
    /// raised (the exception is kept in [`SignalCheck::raised`]).
    pub fn poll(&mut self) -> bool {
        if self.raised.is_some() {
            return true;
        }
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            self.raised = Some(e);
            return true;
        }
        false
    }
}

impl Observer for SignalCheck {
    fn on_record(&mut self, _solver: &str, _record: &Record) -> Control {
        if self.poll() {
            Control::Stop("interrupted by a Python signal handler (Ctrl-C)".into())
        } else {
            Control::Continue
        }
    }
}
