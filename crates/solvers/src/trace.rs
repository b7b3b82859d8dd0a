//! The record of a run: one [`Record`] per iteration, iteration 0 being the initial
//! point. Serialises to JSON; non-finite numbers are written as the strings `"NaN"`,
//! `"inf"`, `"-inf"` so that the trace of a diverged run round-trips.

use serde::{Deserialize, Serialize};

/// One row of a trace: the driver's evaluation of the parameters after `iteration`
/// steps, with the work done so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Number of steps taken (0 = initial point, after `Solver::init`).
    pub iteration: u64,
    /// Data passes so far: `samples_seen / N`.
    pub epochs: f64,
    /// Samples touched so far by the solver.
    pub samples_seen: u64,
    /// Cumulative solver wall time in seconds (evaluations and checkpoints excluded).
    pub wall_time_s: f64,
    /// True training objective of the current parameters.
    #[serde(with = "json_f64")]
    pub objective: f64,
    /// Surrogate / penalised / augmented value reported by the step.
    #[serde(with = "json_opt_f64")]
    pub surrogate: Option<f64>,
    /// Training accuracy, if it applies.
    pub train_accuracy: Option<f64>,
    /// Test objective, if there is a test set.
    #[serde(with = "json_opt_f64")]
    pub test_objective: Option<f64>,
    /// Test accuracy, if it applies.
    pub test_accuracy: Option<f64>,
    /// Forward passes so far.
    pub forward: u64,
    /// Backward passes so far.
    pub backward: u64,
    /// Inner solves so far.
    pub inner_solves: u64,
    /// Method-specific values reported by the step.
    #[serde(with = "json_extras")]
    pub extras: Vec<(String, f64)>,
}

impl Record {
    /// A copy with the wall time zeroed: what must be bit-identical between two runs
    /// with the same seed and thread count (determinism and resume tests).
    pub fn without_time(&self) -> Record {
        Record {
            wall_time_s: 0.0,
            ..self.clone()
        }
    }
}

/// The trace of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trace {
    /// Solver name.
    pub solver: String,
    /// One record per iteration, starting with iteration 0.
    pub records: Vec<Record>,
}

impl Trace {
    /// The last record, if any.
    pub fn last(&self) -> Option<&Record> {
        self.records.last()
    }

    /// All records with wall times zeroed (for bit-identity comparisons).
    pub fn without_time(&self) -> Vec<Record> {
        self.records.iter().map(Record::without_time).collect()
    }

    /// The trace as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A JSON-safe f64: finite values as numbers, others as strings.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum JsonF64 {
    Num(f64),
    Text(String),
}

impl From<f64> for JsonF64 {
    fn from(x: f64) -> Self {
        if x.is_finite() {
            JsonF64::Num(x)
        } else if x.is_nan() {
            JsonF64::Text("NaN".into())
        } else if x > 0.0 {
            JsonF64::Text("inf".into())
        } else {
            JsonF64::Text("-inf".into())
        }
    }
}

impl JsonF64 {
    fn into_f64<E: serde::de::Error>(self) -> Result<f64, E> {
        match self {
            JsonF64::Num(x) => Ok(x),
            JsonF64::Text(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!("not a number: {other:?}"))),
            },
        }
    }
}

mod json_f64 {
    use super::JsonF64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        JsonF64::from(*x).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        JsonF64::deserialize(d)?.into_f64()
    }
}

mod json_opt_f64 {
    use super::JsonF64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        x.map(JsonF64::from).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<JsonF64>::deserialize(d)?
            .map(JsonF64::into_f64)
            .transpose()
    }
}

mod json_extras {
    use super::JsonF64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(x: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(&str, JsonF64)> = x.iter().map(|(k, v)| (k.as_str(), (*v).into())).collect();
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        Vec::<(String, JsonF64)>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| v.into_f64().map(|x| (k, x)))
            .collect()
    }
}
