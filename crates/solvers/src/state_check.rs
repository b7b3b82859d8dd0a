//! Validation of restored solver state: a checkpoint is user data (#13).
//!
//! [`crate::Solver::load_state`] checks what it can alone (types, counts, finite
//! scalars, internal consistency); [`crate::Solver::check_state`], which the driver
//! calls right after it, checks every array against the shapes of the problem the run
//! continues on. A mismatch is a [`SolverError::Checkpoint`] naming the field, never a
//! silent truncation by `zip` or a panic in a matrix product.
//!
//! [`same_structure`] compares a restored state with a fresh one built for the same
//! problem (same keys, same array lengths, numbers where numbers are expected), which
//! covers every array of a state at once.

use autodiff::Real;
use serde_json::Value;

use crate::SolverError;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn mismatch(what: &str, path: &str, expected: String, got: String) -> SolverError {
    SolverError::Checkpoint(format!(
        "{what} state at `{}`: expected {expected}, got {got}",
        if path.is_empty() { "/" } else { path }
    ))
}

/// Checks that `got` has the structure of `expected`: the same kind of value
/// everywhere, objects with the same keys, arrays of the same length (recursively).
/// Numbers may differ in value, not in kind; `what` names the solver in the error.
pub fn same_structure(what: &str, expected: &Value, got: &Value) -> Result<(), SolverError> {
    fn walk(what: &str, path: &mut String, e: &Value, g: &Value) -> Result<(), SolverError> {
        match (e, g) {
            (Value::Array(a), Value::Array(b)) => {
                if a.len() != b.len() {
                    return Err(mismatch(
                        what,
                        path,
                        format!("{} elements", a.len()),
                        format!("{}", b.len()),
                    ));
                }
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    let n = path.len();
                    path.push_str(&format!("/{i}"));
                    walk(what, path, x, y)?;
                    path.truncate(n);
                }
                Ok(())
            }
            (Value::Object(a), Value::Object(b)) => {
                if let Some(k) = a.keys().find(|k| !b.contains_key(*k)) {
                    return Err(mismatch(what, path, format!("field `{k}`"), "none".into()));
                }
                if let Some(k) = b.keys().find(|k| !a.contains_key(*k)) {
                    return Err(mismatch(
                        what,
                        path,
                        "no such field".into(),
                        format!("`{k}`"),
                    ));
                }
                for (k, x) in a {
                    let n = path.len();
                    path.push('/');
                    path.push_str(k);
                    walk(what, path, x, &b[k])?;
                    path.truncate(n);
                }
                Ok(())
            }
            (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::String(_), Value::String(_))
            | (Value::Null, Value::Null) => Ok(()),
            _ => Err(mismatch(what, path, kind(e).into(), kind(g).into())),
        }
    }
    walk(what, &mut String::new(), expected, got)
}

/// Errors unless `got == expected` (the length of a restored array).
pub fn check_len(what: &str, field: &str, expected: usize, got: usize) -> Result<(), SolverError> {
    if expected != got {
        return Err(SolverError::Checkpoint(format!(
            "{what} state: `{field}` has {got} elements, the problem needs {expected}"
        )));
    }
    Ok(())
}

/// Errors if some element of `v` is NaN or infinite.
pub fn check_finite<T: Real>(what: &str, field: &str, v: &[T]) -> Result<(), SolverError> {
    if let Some(i) = v.iter().position(|x| !x.to_f64().is_finite()) {
        return Err(SolverError::Checkpoint(format!(
            "{what} state: `{field}[{i}]` is not finite"
        )));
    }
    Ok(())
}

/// Errors unless `lo <= x <= hi` (NaN fails).
pub fn check_range(what: &str, field: &str, x: f64, lo: f64, hi: f64) -> Result<(), SolverError> {
    if !(x >= lo && x <= hi) {
        return Err(SolverError::Checkpoint(format!(
            "{what} state: `{field}` = {x} is outside [{lo}, {hi}]"
        )));
    }
    Ok(())
}

/// Largest step/update count accepted in a restored state (2^53: beyond, counts stop
/// being exact in the f64 arithmetic of bias corrections and schedules).
pub const MAX_COUNT: u64 = 1 << 53;

/// Errors if a restored count exceeds [`MAX_COUNT`].
pub fn check_count(what: &str, field: &str, n: u64) -> Result<(), SolverError> {
    if n > MAX_COUNT {
        return Err(SolverError::Checkpoint(format!(
            "{what} state: `{field}` = {n} exceeds {MAX_COUNT}"
        )));
    }
    Ok(())
}

/// Checks per-layer matrices restored from a checkpoint: `mats[i]` must be
/// `rows[i] x cols` with finite entries, and there must be `rows.len()` of them.
pub fn check_layer_matrices<T: Real>(
    what: &str,
    field: &str,
    mats: &[nalgebra::DMatrix<T>],
    rows: &[usize],
    cols: usize,
) -> Result<(), SolverError> {
    check_len(what, field, rows.len(), mats.len())?;
    for (i, (m, &r)) in mats.iter().zip(rows).enumerate() {
        if m.shape() != (r, cols) {
            return Err(SolverError::Checkpoint(format!(
                "{what} state: `{field}[{i}]` is {}x{}, the network and data need {r}x{cols}",
                m.nrows(),
                m.ncols()
            )));
        }
        check_finite(what, &format!("{field}[{i}]"), m.as_slice())?;
    }
    Ok(())
}

/// Errors if some unsigned integer anywhere in `v` exceeds [`MAX_COUNT`] (counts such
/// as Adam's `t` would overflow on the next `+= 1`), naming its path.
pub fn check_counts_in(what: &str, v: &Value) -> Result<(), SolverError> {
    fn walk(what: &str, path: &mut String, v: &Value) -> Result<(), SolverError> {
        match v {
            Value::Number(n) => match n.as_u64() {
                Some(c) if c > MAX_COUNT => Err(SolverError::Checkpoint(format!(
                    "{what} state at `{path}`: count {c} exceeds {MAX_COUNT}"
                ))),
                _ => Ok(()),
            },
            Value::Array(a) => a.iter().enumerate().try_for_each(|(i, x)| {
                let n = path.len();
                path.push_str(&format!("/{i}"));
                walk(what, path, x)?;
                path.truncate(n);
                Ok(())
            }),
            Value::Object(o) => o.iter().try_for_each(|(k, x)| {
                let n = path.len();
                path.push('/');
                path.push_str(k);
                walk(what, path, x)?;
                path.truncate(n);
                Ok(())
            }),
            _ => Ok(()),
        }
    }
    walk(what, &mut String::new(), v)
}

/// Errors if a matrix encoded in `v` claims `nrows * ncols` beyond `usize` (nalgebra
/// encodes a matrix as `[data, nrows, ncols]`, `ncols` null for a vector, and its
/// deserializer multiplies the two unchecked, which overflows on hostile input).
pub fn check_matrix_sizes(what: &str, v: &Value) -> Result<(), SolverError> {
    match v {
        Value::Array(a) => {
            if let [Value::Array(_), Value::Number(r), c] = a.as_slice()
                && let Some(r) = r.as_u64()
            {
                let c = match c {
                    Value::Null => Some(1),
                    Value::Number(c) => c.as_u64(),
                    _ => None,
                };
                if let Some(c) = c
                    && (r.checked_mul(c).is_none() || usize::try_from(r * c).is_err())
                {
                    return Err(SolverError::Checkpoint(format!(
                        "{what}: a matrix of {r} x {c} entries overflows"
                    )));
                }
            }
            a.iter().try_for_each(|x| check_matrix_sizes(what, x))
        }
        Value::Object(o) => o.values().try_for_each(|x| check_matrix_sizes(what, x)),
        _ => Ok(()),
    }
}

/// Serialises a state for [`same_structure`] (a failure is a checkpoint error).
pub fn to_value<S: serde::Serialize>(s: &S) -> Result<Value, SolverError> {
    Ok(serde_json::to_value(s)?)
}

/// Checks the driver's part of a checkpoint before anything is restored: a non-empty
/// trace starting at iteration 0 and ending at `cp.iteration`, counters equal to those
/// of the last record and below [`MAX_COUNT`] (so `samples_seen` cannot wrap), a finite
/// initial objective and a finite, nonnegative wall time. `n` is the problem's number
/// of samples (a count of samples seen beyond `MAX_COUNT` is refused whatever `n`).
pub fn check_checkpoint(cp: &crate::CheckpointV1, n: usize) -> Result<(), SolverError> {
    let bad = |m: String| Err(SolverError::Checkpoint(m));
    let (Some(first), Some(last)) = (cp.trace.records.first(), cp.trace.records.last()) else {
        return bad("the trace is empty (a checkpoint holds at least iteration 0)".into());
    };
    if first.iteration != 0 || last.iteration != cp.iteration {
        return bad(format!(
            "the trace runs from iteration {} to {}, the checkpoint is at iteration {}",
            first.iteration, last.iteration, cp.iteration
        ));
    }
    let c = &cp.counters;
    for (field, got, rec) in [
        ("samples_seen", c.samples_seen, last.samples_seen),
        ("forward", c.forward, last.forward),
        ("backward", c.backward, last.backward),
        ("inner_solves", c.inner_solves, last.inner_solves),
    ] {
        check_count("checkpoint", field, got)?;
        if got != rec {
            return bad(format!(
                "counter `{field}` = {got} disagrees with the last trace record ({rec})"
            ));
        }
    }
    check_count("checkpoint", "iteration", cp.iteration)?;
    check_matrix_sizes("checkpoint solver state", &cp.solver_state)?;
    check_matrix_sizes("checkpoint parameters", &cp.problem_params)?;
    if n == 0 {
        return bad("the problem has no samples".into());
    }
    if !cp.initial_objective.is_finite() {
        return bad(format!(
            "initial objective {} is not finite",
            cp.initial_objective
        ));
    }
    if !(cp.wall_time_s >= 0.0 && cp.wall_time_s.is_finite()) {
        return bad(format!(
            "wall time {} s is not finite and >= 0",
            cp.wall_time_s
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structure_mismatches_are_named() {
        let e = json!({"t": 3, "m": [1.0, 2.0], "v": [[1, 2], [3, 4]]});
        assert!(
            same_structure(
                "Adam",
                &e,
                &json!({"t": 9, "m": [0.5, 0.0], "v": [[0, 0], [0, 1]]})
            )
            .is_ok()
        );
        let cases = [
            (json!({"t": 3, "m": [1.0], "v": [[1, 2], [3, 4]]}), "/m"),
            (
                json!({"t": 3, "m": [1.0, 2.0, 3.0], "v": [[1, 2], [3, 4]]}),
                "/m",
            ),
            (
                json!({"t": "3", "m": [1.0, 2.0], "v": [[1, 2], [3, 4]]}),
                "/t",
            ),
            (
                json!({"t": 3, "m": [1.0, null], "v": [[1, 2], [3, 4]]}),
                "/m/1",
            ),
            (json!({"t": 3, "m": [1.0, 2.0], "v": [[1, 2], [3]]}), "/v/1"),
            (json!({"m": [1.0, 2.0], "v": [[1, 2], [3, 4]]}), "`t`"),
        ];
        for (got, at) in cases {
            let err = same_structure("Adam", &e, &got).unwrap_err().to_string();
            assert!(err.contains(at), "{err} should name {at}");
        }
        assert!(check_finite("x", "m", &[1.0f64, f64::NAN]).is_err());
        assert!(check_range("x", "gamma", f64::NAN, 0.0, 1.0).is_err());
        assert!(check_count("x", "t", u64::MAX).is_err());
        assert!(check_len("x", "g", 3, 2).is_err());
        let m = |r: u64, c: Value| json!({"z": [[[1.0, 2.0], r, c]]});
        assert!(check_matrix_sizes("s", &m(2, json!(1))).is_ok());
        assert!(check_matrix_sizes("s", &m(u64::MAX, json!(2))).is_err());
        assert!(check_matrix_sizes("s", &m(u64::MAX, Value::Null)).is_ok());
        assert!(check_counts_in("s", &json!({"a": [1, {"t": u64::MAX}]})).is_err());
        assert!(check_counts_in("s", &json!({"a": [1, {"t": 7}]})).is_ok());
    }
}
