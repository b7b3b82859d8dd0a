//! The validator of `results.json` documents (docs/RESULTS_SCHEMA.md): every required
//! field present with its JSON kind, statuses, trace records, runs and tuning records
//! checked, each error naming the offending path ([`BenchError::Schema`]).

use super::*;

fn schema_err(path: &str, message: impl Into<String>) -> BenchError {
    BenchError::Schema {
        path: path.to_string(),
        message: message.into(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Num,
    UInt,
    Bool,
    Obj,
    Arr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Num => "a number",
            Kind::UInt => "a nonnegative integer",
            Kind::Bool => "a boolean",
            Kind::Obj => "an object",
            Kind::Arr => "an array",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::Num => v.is_number(),
            Kind::UInt => v.is_u64(),
            Kind::Bool => v.is_boolean(),
            Kind::Obj => v.is_object(),
            Kind::Arr => v.is_array(),
        }
    }
}

/// Checks field `key` of object `obj` (at `path`): present (unless `nullable` allows
/// absence/null) and of kind `kind`.
fn field<'a>(
    obj: &'a Value,
    path: &str,
    key: &str,
    kind: Kind,
    nullable: bool,
) -> Result<Option<&'a Value>, BenchError> {
    let p = format!("{path}/{key}");
    match obj.get(key) {
        None | Some(Value::Null) if nullable => Ok(None),
        None => Err(schema_err(
            &p,
            format!("missing required field (must be {})", kind.name()),
        )),
        Some(v) if kind.matches(v) => Ok(Some(v)),
        Some(v) => Err(schema_err(
            &p,
            format!(
                "must be {}{}, found {v}",
                kind.name(),
                if nullable { " or null" } else { "" }
            ),
        )),
    }
}

fn req<'a>(obj: &'a Value, path: &str, key: &str, kind: Kind) -> Result<&'a Value, BenchError> {
    field(obj, path, key, kind, false)?.ok_or_else(|| schema_err(path, "unreachable"))
}

fn validate_metadata(m: &Value) -> Result<(), BenchError> {
    let p = "/metadata";
    req(m, p, "strata_version", Kind::Str)?;
    field(m, p, "git_commit", Kind::Str, true)?;
    let dtype = req(m, p, "dtype", Kind::Str)?;
    if dtype != "f32" && dtype != "f64" {
        return Err(schema_err(
            "/metadata/dtype",
            format!("must be \"f32\" or \"f64\", found {dtype}"),
        ));
    }
    req(m, p, "threads", Kind::UInt)?;
    let seeds = req(m, p, "seeds", Kind::Arr)?;
    for (i, s) in seeds.as_array().into_iter().flatten().enumerate() {
        if !s.is_u64() {
            return Err(schema_err(
                &format!("/metadata/seeds/{i}"),
                "must be a nonnegative integer",
            ));
        }
    }
    let b = req(m, p, "budget", Kind::Obj)?;
    field(b, "/metadata/budget", "max_epochs", Kind::Num, true)?;
    field(b, "/metadata/budget", "max_wall_time_s", Kind::Num, true)?;
    field(b, "/metadata/budget", "max_iterations", Kind::UInt, true)?;
    let cmd = req(m, p, "command_line", Kind::Arr)?;
    for (i, s) in cmd.as_array().into_iter().flatten().enumerate() {
        if !s.is_string() {
            return Err(schema_err(
                &format!("/metadata/command_line/{i}"),
                "must be a string",
            ));
        }
    }
    req(m, p, "started_unix_s", Kind::Num)?;
    req(m, p, "memory_method", Kind::Str)?;
    if let Some(k) = field(m, p, "eval_every_passes", Kind::Num, true)?
        && !k.as_f64().is_some_and(|k| k > 0.0)
    {
        return Err(schema_err(
            "/metadata/eval_every_passes",
            format!("must be a number > 0, found {k}"),
        ));
    }
    if let Some(r) = field(m, p, "ranks", Kind::UInt, true)?
        && r.as_u64() == Some(0)
    {
        return Err(schema_err(
            "/metadata/ranks",
            "must be at least 1 (a single-process run has 1)",
        ));
    }
    if let Some(pb) = field(m, p, "problem_budgets", Kind::Obj, true)? {
        for (name, b) in pb.as_object().into_iter().flatten() {
            let bp = format!("/metadata/problem_budgets/{name}");
            if !b.is_object() {
                return Err(schema_err(&bp, "must be an object"));
            }
            field(b, &bp, "max_epochs", Kind::Num, true)?;
            field(b, &bp, "max_wall_time_s", Kind::Num, true)?;
            field(b, &bp, "max_iterations", Kind::UInt, true)?;
        }
    }
    Ok(())
}

fn validate_status(s: &Value, path: &str) -> Result<(), BenchError> {
    let kind = req(s, path, "kind", Kind::Str)?;
    match kind.as_str().unwrap_or_default() {
        "completed" => field(s, path, "reason", Kind::Str, true).map(|_| ()),
        "budget_exhausted" => field(s, path, "which", Kind::Str, true).map(|_| ()),
        "diverged" => req(s, path, "reason", Kind::Str).map(|_| ()),
        "failed" => req(s, path, "error", Kind::Str).map(|_| ()),
        "skipped" => req(s, path, "reason", Kind::Str).map(|_| ()),
        other => Err(schema_err(
            &format!("{path}/kind"),
            format!(
                "unknown status `{other}` (completed, budget_exhausted, diverged, failed, skipped)"
            ),
        )),
    }
}

fn validate_record(r: &Value, path: &str) -> Result<(), BenchError> {
    if !r.is_object() {
        return Err(schema_err(path, "a trace record must be an object"));
    }
    req(r, path, "iteration", Kind::UInt)?;
    req(r, path, "epochs", Kind::Num)?;
    field(r, path, "samples_seen", Kind::UInt, true)?;
    req(r, path, "wall_time_s", Kind::Num)?;
    if r.get("objective").is_none() {
        return Err(schema_err(
            &format!("{path}/objective"),
            "missing required field (a number or null)",
        ));
    }
    field(r, path, "objective", Kind::Num, true)?;
    for key in [
        "surrogate",
        "train_accuracy",
        "test_objective",
        "test_accuracy",
    ] {
        field(r, path, key, Kind::Num, true)?;
    }
    for key in ["forward", "backward", "inner_solves"] {
        req(r, path, key, Kind::UInt)?;
    }
    if let Some(extras) = field(r, path, "extras", Kind::Obj, true)? {
        for (k, v) in extras.as_object().into_iter().flatten() {
            if !(v.is_number() || v.is_null()) {
                return Err(schema_err(
                    &format!("{path}/extras/{k}"),
                    "must be a number or null",
                ));
            }
        }
    }
    Ok(())
}

fn validate_run(run: &Value, path: &str) -> Result<(), BenchError> {
    if !run.is_object() {
        return Err(schema_err(path, "a run must be an object"));
    }
    req(run, path, "problem", Kind::Str)?;
    req(run, path, "solver", Kind::Str)?;
    req(run, path, "seed", Kind::UInt)?;
    let status = req(run, path, "status", Kind::Obj)?;
    validate_status(status, &format!("{path}/status"))?;
    let trace = req(run, path, "trace", Kind::Arr)?;
    let mut last_iter = None;
    for (i, rec) in trace.as_array().into_iter().flatten().enumerate() {
        let rp = format!("{path}/trace/{i}");
        validate_record(rec, &rp)?;
        let it = rec["iteration"].as_u64();
        if last_iter.is_some() && it <= last_iter {
            return Err(schema_err(
                &format!("{rp}/iteration"),
                "iterations must increase",
            ));
        }
        last_iter = it;
    }
    field(run, path, "peak_memory_bytes", Kind::UInt, true)?;
    req(run, path, "total_wall_time_s", Kind::Num)?;
    req(run, path, "hyperparameters", Kind::Obj)?;
    let tuned = req(run, path, "tuned", Kind::Bool)?;
    field(run, path, "trained_objective", Kind::Str, true)?;
    if let Some(c) = field(run, path, "classification", Kind::Obj, true)? {
        validate_classification(c, &format!("{path}/classification"))?;
    }
    let tuning = field(run, path, "tuning", Kind::Obj, true)?;
    if let Some(t) = tuning {
        validate_tuning(t, &format!("{path}/tuning"))?;
    }
    if tuned == &Value::Bool(true) && tuning.is_none() {
        return Err(schema_err(
            &format!("{path}/tuning"),
            "a run with `tuned: true` must record its search (`tuning`)",
        ));
    }
    Ok(())
}

/// A run's `classification` (crate::classification::ClassificationMetrics): `set` is
/// `"test"` or `"train"`, `confusion` a k x k matrix (k >= 1) of nonnegative integer
/// counts whose total stays within 2^53, `per_class_accuracy` k entries, each null or in
/// [0, 1]. The report and the heatmaps index the matrix as square.
fn validate_classification(c: &Value, path: &str) -> Result<(), BenchError> {
    let set = req(c, path, "set", Kind::Str)?;
    if set != "test" && set != "train" {
        return Err(schema_err(
            &format!("{path}/set"),
            format!("must be \"test\" or \"train\", found {set}"),
        ));
    }
    let rows = req(c, path, "confusion", Kind::Arr)?
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let k = rows.len();
    if k == 0 {
        return Err(schema_err(
            &format!("{path}/confusion"),
            "must have at least one class",
        ));
    }
    let mut total = 0u64;
    for (t, row) in rows.iter().enumerate() {
        let rp = format!("{path}/confusion/{t}");
        let Some(row) = row.as_array() else {
            return Err(schema_err(&rp, "must be an array of counts"));
        };
        if row.len() != k {
            return Err(schema_err(
                &rp,
                format!(
                    "has {} entries, but the matrix has {k} rows: it must be square",
                    row.len()
                ),
            ));
        }
        for (p, count) in row.iter().enumerate() {
            let Some(n) = count.as_u64() else {
                return Err(schema_err(
                    &format!("{rp}/{p}"),
                    format!("must be a nonnegative integer, found {count}"),
                ));
            };
            total = match total.checked_add(n) {
                Some(t) if t <= 1 << 53 => t,
                _ => {
                    return Err(schema_err(
                        &format!("{rp}/{p}"),
                        "the counts sum beyond 2^53",
                    ));
                }
            };
        }
    }
    let acc = req(c, path, "per_class_accuracy", Kind::Arr)?
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if acc.len() != k {
        return Err(schema_err(
            &format!("{path}/per_class_accuracy"),
            format!("has {} entries for {k} classes", acc.len()),
        ));
    }
    for (i, a) in acc.iter().enumerate() {
        let ok = a.is_null() || a.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v));
        if !ok {
            return Err(schema_err(
                &format!("{path}/per_class_accuracy/{i}"),
                format!("must be null or a number in [0, 1], found {a}"),
            ));
        }
    }
    Ok(())
}

fn validate_tuning(t: &Value, path: &str) -> Result<(), BenchError> {
    let params = req(t, path, "parameters", Kind::Arr)?;
    for (i, p) in params.as_array().into_iter().flatten().enumerate() {
        if !p.is_string() {
            return Err(schema_err(
                &format!("{path}/parameters/{i}"),
                "must be a string",
            ));
        }
    }
    req(t, path, "scale_factors", Kind::Arr)?;
    let grid = req(t, path, "grid", Kind::Arr)?;
    let scores = req(t, path, "validation_objectives", Kind::Arr)?;
    req(t, path, "candidate_status", Kind::Arr)?;
    let chosen = req(t, path, "chosen_index", Kind::UInt)?;
    req(t, path, "chosen", Kind::Obj)?;
    for key in [
        "validation_fraction",
        "wall_time_s",
        "solver_time_s",
        "data_passes",
    ] {
        req(t, path, key, Kind::Num)?;
    }
    req(t, path, "selection", Kind::Str)?;
    field(t, path, "not_tuned_reason", Kind::Str, true)?;
    for key in ["extended", "at_edge"] {
        if let Some(v) = field(t, path, key, Kind::Str, true)?
            && !matches!(v.as_str(), Some("low" | "high"))
        {
            return Err(schema_err(
                &format!("{path}/{key}"),
                "must be \"low\" or \"high\"",
            ));
        }
    }
    let n = grid.as_array().map_or(0, Vec::len);
    if scores.as_array().map_or(0, Vec::len) != n {
        return Err(schema_err(
            &format!("{path}/validation_objectives"),
            "must have one entry per grid point",
        ));
    }
    if n > 0 && chosen.as_u64().is_some_and(|c| c as usize >= n) {
        return Err(schema_err(
            &format!("{path}/chosen_index"),
            "must index a grid point",
        ));
    }
    Ok(())
}

/// Checks that `json` is a results document of [`SCHEMA_VERSION`]: every required field
/// present with its type, status kinds known, trace iterations increasing. The error
/// names the offending path (e.g. `/runs/2/trace/5/forward`).
pub fn validate_results(json: &Value) -> Result<(), BenchError> {
    if !json.is_object() {
        return Err(schema_err("", "the document must be a JSON object"));
    }
    let v = req(json, "", "schema_version", Kind::UInt)?;
    if v.as_u64() != Some(u64::from(SCHEMA_VERSION)) {
        return Err(schema_err(
            "/schema_version",
            format!("this reader understands version {SCHEMA_VERSION}, found {v}"),
        ));
    }
    validate_metadata(req(json, "", "metadata", Kind::Obj)?)?;
    let runs = req(json, "", "runs", Kind::Arr)?;
    for (i, run) in runs.as_array().into_iter().flatten().enumerate() {
        validate_run(run, &format!("/runs/{i}"))?;
    }
    Ok(())
}
