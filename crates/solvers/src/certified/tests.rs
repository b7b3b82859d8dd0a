//! Tests of the certified-MM solvers.
