//! The ADMM engines' public `iterate` / `run_block` called directly with another data set
//! than the one `prepare` ran on (the `Solver::step` path is `data_change.rs`).
//!
//! * Same shapes, other targets: the next iterate must be bit for bit that of a fresh
//!   solver restored from the same state and prepared on the new data set (through
//!   `Solver::step`). Taylor ADMM's least-squares output term keeps the dense targets it
//!   was prepared with; before the fix `iterate` kept fitting the old ones.
//! * Another N, d0 or output width: a typed `ShapeMismatch` naming it (before the fix a
//!   panic deep in the block steps or a shape error of some product), the solver left
//!   as it was (the next iterate on the old data set is that of a twin never shown
//!   the bad one).

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::admm::{DlAdmm, DlAdmmConfig, Lifted, OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::*;

const N: usize = 40;

/// Inputs `d0 x n` (phase `xs`) and dense targets `k x n` (phase `ys`).
fn data(n: usize, d0: usize, k: usize, xs: usize, ys: usize) -> Dataset<f64> {
    let x = DMatrix::from_fn(d0, n, |i, j| ((i * 7 + j * 3 + 5 * xs) as f64 * 0.41).sin());
    let y = DMatrix::from_fn(k, n, |i, j| ((i + 2 * j + 3 * ys) as f64 * 0.23).cos());
    Dataset::new(x, Targets::Dense(y)).unwrap()
}

fn net() -> Sequential<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    Sequential::mlp(&[3, 6, 5, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap()
}

fn loss() -> Loss {
    Loss::new(LossKind::Mse, Reduction::Mean)
}

fn bits(v: &Lifted<f64>) -> Vec<u64> {
    let all = v.w.iter().chain(&v.z).chain(&v.a);
    all.flat_map(|m| m.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        .chain(v.b.iter().flat_map(|b| b.iter().map(|x| x.to_bits())))
        .collect()
}

fn mat_bits(m: &DMatrix<f64>) -> Vec<u64> {
    m.iter().map(|x| x.to_bits()).collect()
}

/// Bit-equal, or a short message naming the first differing entry.
fn assert_bits(a: &[u64], b: &[u64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
        let n = (0..a.len()).filter(|&i| a[i] != b[i]).count();
        panic!(
            "{what}: {n} of {} entries differ, first at {i}: {} vs {}",
            a.len(),
            f64::from_bits(a[i]),
            f64::from_bits(b[i])
        );
    }
}

/// The engine calls both tests need, for either solver.
trait Engine: Solver<NetProblem<f64>> + Sized {
    fn make() -> Self;
    fn start(&mut self, net: &Sequential<f64>, train: &Dataset<f64>);
    /// `iterate`; returns the augmented objective times the sample weight (the step
    /// report's surrogate).
    fn iter(&mut self, train: &Dataset<f64>) -> Result<f64, SolverError>;
    /// The first block of a sweep on `train`.
    fn first_block(&mut self, train: &Dataset<f64>) -> Result<u64, SolverError>;
    fn vars(&self) -> &Lifted<f64>;
    fn mult(&self) -> &DMatrix<f64>;
    fn weights(&self, net: &mut Sequential<f64>);
}

/// The same calls on either solver: `make` is its constructor expression.
macro_rules! engine {
    ($solver:ty, $make:expr) => {
        impl Engine for $solver {
            fn make() -> Self {
                $make
            }
            fn start(&mut self, net: &Sequential<f64>, train: &Dataset<f64>) {
                self.initialize(net, &loss(), train).unwrap();
            }
            fn iter(&mut self, train: &Dataset<f64>) -> Result<f64, SolverError> {
                Ok(self.iterate(train, 1)?.augmented * self.sample_weight())
            }
            fn first_block(&mut self, train: &Dataset<f64>) -> Result<u64, SolverError> {
                let b = self.blocks()[0];
                self.run_block(b, train, 1)
            }
            fn vars(&self) -> &Lifted<f64> {
                self.lifted().unwrap()
            }
            fn mult(&self) -> &DMatrix<f64> {
                self.multiplier()
            }
            fn weights(&self, net: &mut Sequential<f64>) {
                self.write_weights(net).unwrap();
            }
        }
    };
}

// Least squares: the output term keeps dense targets (the defect's case).
engine!(
    TaylorAdmm<f64>,
    TaylorAdmm::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        warm_start: 1,
        ..Default::default()
    })
    .unwrap()
);
engine!(DlAdmm<f64>, DlAdmm::new(DlAdmmConfig::default()).unwrap());

/// A solver started on the old data set and run two iterations on it.
fn started<S: Engine>(old: &Dataset<f64>) -> S {
    let mut s = S::make();
    s.start(&net(), old);
    for _ in 0..2 {
        s.iter(old).unwrap();
    }
    s
}

/// Direct `iterate` on `new` (same shapes) against a fresh solver restored from the same
/// state and stepped on a problem holding `new` (its `prepare` reads `new`).
fn same_shapes<S: Engine>(name: &str, new: Dataset<f64>) {
    let old = data(N, 3, 2, 0, 0);
    let mut a: S = started(&old);
    let mut fresh = S::make();
    fresh.load_state(&a.save_state()).unwrap();
    let mut net_b = net();
    a.weights(&mut net_b);
    let mut pb = NetProblem::new(net_b, loss(), new.clone(), None).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 3,
        threads: 1,
    };
    let want = fresh.step(&mut pb, &mut ctx).unwrap().surrogate.unwrap();
    let got = a.iter(&new).unwrap();
    assert_bits(
        &bits(a.vars()),
        &bits(fresh.vars()),
        &format!("{name}: lifted variables"),
    );
    assert_bits(
        &mat_bits(a.mult()),
        &mat_bits(fresh.mult()),
        &format!("{name}: multiplier"),
    );
    assert_eq!(got.to_bits(), want.to_bits(), "{name}: augmented objective");
    // And the following iterate on the new data set as well.
    let want = fresh.step(&mut pb, &mut ctx).unwrap().surrogate.unwrap();
    let got = a.iter(&new).unwrap();
    assert_bits(
        &bits(a.vars()),
        &bits(fresh.vars()),
        &format!("{name}: second iterate"),
    );
    assert_eq!(got.to_bits(), want.to_bits(), "{name}: second objective");
}

#[test]
fn taylor_iterate_on_other_targets_is_a_fresh_prepare_bit_for_bit() {
    // Same inputs, other targets: only the output term can tell them apart.
    same_shapes::<TaylorAdmm<f64>>("admm-taylor", data(N, 3, 2, 0, 1));
    // Other inputs and targets.
    same_shapes::<TaylorAdmm<f64>>("admm-taylor", data(N, 3, 2, 1, 1));
}

#[test]
fn dladmm_iterate_on_other_targets_is_a_fresh_prepare_bit_for_bit() {
    same_shapes::<DlAdmm<f64>>("dladmm", data(N, 3, 2, 0, 1));
    same_shapes::<DlAdmm<f64>>("dladmm", data(N, 3, 2, 1, 1));
}

/// Every entry point given `bad` returns a `ShapeMismatch` whose `what` names `word`;
/// afterwards the solver iterates on the old data set as a twin never shown `bad`.
fn refuses<S: Engine>(name: &str, bad: &Dataset<f64>, word: &str) {
    let old = data(N, 3, 2, 0, 0);
    let (mut a, mut twin): (S, S) = (started(&old), started(&old));
    for (call, r) in [
        ("iterate", a.iter(bad).map(|_| 0)),
        ("run_block", a.first_block(bad)),
    ] {
        match r {
            Err(SolverError::ShapeMismatch { what, .. }) => {
                assert!(what.contains(word), "{name} {call}: {what}")
            }
            other => panic!("{name} {call}: expected ShapeMismatch ({word}), got {other:?}"),
        }
    }
    // The same through `Solver::step` on a problem holding `bad` (where it can be built).
    if bad.input_dim() == 3
        && let Ok(mut pb) = NetProblem::new(net(), loss(), bad.clone(), None)
    {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut counters = Counters::default();
        let mut ctx = Context {
            rng: &mut rng,
            counters: &mut counters,
            iteration: 3,
            threads: 1,
        };
        let r = a.step(&mut pb, &mut ctx);
        assert!(
            matches!(r, Err(SolverError::ShapeMismatch { .. })),
            "{name} step: {r:?}"
        );
    }
    for _ in 0..2 {
        let (got, want) = (a.iter(&old).unwrap(), twin.iter(&old).unwrap());
        assert_eq!(got.to_bits(), want.to_bits(), "{name}: after the refusal");
        assert_bits(
            &bits(a.vars()),
            &bits(twin.vars()),
            &format!("{name}: after the refusal"),
        );
    }
}

#[test]
fn taylor_refuses_another_n_with_a_typed_error() {
    refuses::<TaylorAdmm<f64>>("admm-taylor N", &data(N + 5, 3, 2, 1, 1), "samples");
}

#[test]
fn taylor_refuses_another_input_dimension_with_a_typed_error() {
    refuses::<TaylorAdmm<f64>>("admm-taylor d0", &data(N, 4, 2, 1, 1), "input rows");
}

#[test]
fn taylor_refuses_another_target_width_with_a_typed_error() {
    refuses::<TaylorAdmm<f64>>("admm-taylor K", &data(N, 3, 3, 1, 1), "targets");
}

#[test]
fn dladmm_refuses_another_n_with_a_typed_error() {
    refuses::<DlAdmm<f64>>("dladmm N", &data(N + 5, 3, 2, 1, 1), "samples");
}

#[test]
fn dladmm_refuses_another_input_dimension_with_a_typed_error() {
    refuses::<DlAdmm<f64>>("dladmm d0", &data(N, 4, 2, 1, 1), "input rows");
}

#[test]
fn dladmm_refuses_another_target_width_with_a_typed_error() {
    refuses::<DlAdmm<f64>>("dladmm K", &data(N, 3, 3, 1, 1), "targets");
}
