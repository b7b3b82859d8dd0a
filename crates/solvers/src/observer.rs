//! Observers: progress, logging, early stopping, anything that watches a run.

use crate::{Record, RunOutcome};

/// What an observer asks of the driver after seeing a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Control {
    /// Keep going.
    #[default]
    Continue,
    /// Stop the run with [`crate::Status::Stopped`] and this reason.
    Stop(String),
}

/// How often an observer is notified, chosen when it is attached (argmin's
/// `ObserverMode`). The initial record (iteration 0) is always shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Every record.
    Always,
    /// Records whose iteration is a multiple of n (n >= 1).
    Every(u64),
    /// Only the initial record and the end of the run.
    Never,
}

impl Frequency {
    /// Whether a record of this iteration is shown.
    pub fn fires(&self, iteration: u64) -> bool {
        match *self {
            Frequency::Always => true,
            Frequency::Every(n) => iteration.is_multiple_of(n.max(1)),
            Frequency::Never => iteration == 0,
        }
    }
}

/// Watches a run. Every method has a no-op default.
pub trait Observer {
    /// A new record (subject to the attach-time [`Frequency`]).
    fn on_record(&mut self, _solver: &str, _record: &Record) -> Control {
        Control::Continue
    }
    /// The run ended (always called).
    fn on_finish(&mut self, _outcome: &RunOutcome) {}
}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn on_record(&mut self, solver: &str, record: &Record) -> Control {
        (**self).on_record(solver, record)
    }
    fn on_finish(&mut self, outcome: &RunOutcome) {
        (**self).on_finish(outcome)
    }
}

/// Stops when the tracked objective (test objective if present and `use_test`, else the
/// training objective) has not improved by more than `min_delta` for `patience` records.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    /// Records without improvement tolerated.
    pub patience: u64,
    /// Minimum decrease counted as an improvement.
    pub min_delta: f64,
    /// Track the test objective (when the problem has one).
    pub use_test: bool,
    best: f64,
    waited: u64,
}

impl EarlyStopping {
    /// Early stopping with the given patience and minimum improvement.
    pub fn new(patience: u64, min_delta: f64, use_test: bool) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            use_test,
            best: f64::INFINITY,
            waited: 0,
        }
    }
}

impl Observer for EarlyStopping {
    fn on_record(&mut self, _solver: &str, r: &Record) -> Control {
        let v = match (self.use_test, r.test_objective) {
            (true, Some(t)) => t,
            _ => r.objective,
        };
        if v < self.best - self.min_delta {
            self.best = v;
            self.waited = 0;
            Control::Continue
        } else {
            self.waited += 1;
            if self.waited >= self.patience {
                Control::Stop(format!(
                    "no improvement over {:.6e} for {} records",
                    self.best, self.waited
                ))
            } else {
                Control::Continue
            }
        }
    }
}

/// Writes one line per record (iteration, epochs, objective, accuracies, time) to a
/// writer the caller supplies (e.g. `std::io::stderr()`). Write errors are ignored.
pub struct ProgressLog<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> ProgressLog<W> {
    /// A progress log writing to `out`.
    pub fn new(out: W) -> Self {
        ProgressLog { out }
    }
}

impl<W: std::io::Write> Observer for ProgressLog<W> {
    fn on_record(&mut self, solver: &str, r: &Record) -> Control {
        let acc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.4}", a));
        let _ = writeln!(
            self.out,
            "{solver} it {:>5} ep {:>7.2} f {:.6e} train_acc {} test_acc {} t {:.3}s",
            r.iteration,
            r.epochs,
            r.objective,
            acc(r.train_accuracy),
            acc(r.test_accuracy),
            r.wall_time_s
        );
        Control::Continue
    }
    fn on_finish(&mut self, outcome: &RunOutcome) {
        let _ = writeln!(self.out, "finished: {:?}", outcome.status);
    }
}

/// Writes every record it is shown as one JSON line (`{"solver": .., "record": ..}`)
/// to a writer the caller supplies: trace recording that survives a crash. Write
/// errors are counted, not raised.
pub struct JsonLines<W: std::io::Write> {
    out: W,
    /// Number of failed writes.
    pub errors: u64,
}

impl<W: std::io::Write> JsonLines<W> {
    /// A JSON-lines writer to `out`.
    pub fn new(out: W) -> Self {
        JsonLines { out, errors: 0 }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: std::io::Write> Observer for JsonLines<W> {
    fn on_record(&mut self, solver: &str, record: &Record) -> Control {
        let line = serde_json::json!({ "solver": solver, "record": record });
        if writeln!(self.out, "{line}").is_err() {
            self.errors += 1;
        }
        Control::Continue
    }
}

/// An observer from a closure over records.
pub struct FnObserver<F: FnMut(&str, &Record) -> Control>(pub F);

impl<F: FnMut(&str, &Record) -> Control> Observer for FnObserver<F> {
    fn on_record(&mut self, solver: &str, record: &Record) -> Control {
        (self.0)(solver, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_order::SgdConfig;
    use crate::testing::LeastSquares;
    use crate::{Budget, Driver, Trace};
    use rand::SeedableRng;

    #[test]
    fn json_lines_reproduce_the_trace() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut p = LeastSquares::<f64>::random(3, 20, 0.1, &mut rng).unwrap();
        let mut gd = SgdConfig::gd(0.1).build::<f64>().unwrap();
        let mut log = JsonLines::new(Vec::new());
        let mut text = Vec::new();
        let out = Driver::new(Budget::iterations(4))
            .observe(&mut log, Frequency::Always)
            .observe(ProgressLog::new(&mut text), Frequency::Every(2))
            .run(&mut p, &mut gd)
            .unwrap();
        let lines = String::from_utf8(log.into_inner()).unwrap();
        let records: Vec<Record> = lines
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["solver"], "SGD(lr=0.1)[full]");
                serde_json::from_value(v["record"].clone()).unwrap()
            })
            .collect();
        let back = Trace {
            solver: out.trace.solver.clone(),
            records,
        };
        assert_eq!(back, out.trace);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.lines().count(), 4); // iterations 0, 2, 4 and the final status
        assert!(
            text.ends_with("finished: BudgetExhausted(Iterations)\n"),
            "{text}"
        );
    }
}
