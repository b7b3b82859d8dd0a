//! `FirstOrder::with_batch_order` reproduces a known batch sequence, and
//! `mean_batch_loss` is the batch-size-weighted running loss (unequal last batch).

use solvers::first_order::SgdConfig;
use solvers::testing::LeastSquares;
use solvers::*;

/// Wraps a problem, recording every batch and the batch loss it returned.
struct Recorder {
    inner: LeastSquares<f64>,
    batches: Vec<Vec<usize>>,
    losses: Vec<f64>,
}

impl Problem for Recorder {
    fn evaluate(&mut self) -> Evaluation {
        self.inner.evaluate()
    }
    fn num_samples(&self) -> usize {
        self.inner.num_samples()
    }
    fn save_params(&self) -> serde_json::Value {
        self.inner.save_params()
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.inner.load_params(v)
    }
}

impl Differentiable for Recorder {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn params(&self, out: &mut [f64]) {
        self.inner.params(out)
    }
    fn set_params(&mut self, p: &[f64]) -> Result<(), SolverError> {
        self.inner.set_params(p)
    }
    fn value_grad(
        &mut self,
        batch: Option<&[usize]>,
        grad: &mut [f64],
    ) -> Result<f64, SolverError> {
        self.batches
            .push(batch.map_or_else(Vec::new, <[usize]>::to_vec));
        let f = self.inner.value_grad(batch, grad)?;
        self.losses.push(f);
        Ok(f)
    }
}

fn recorder() -> Recorder {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    Recorder {
        inner: LeastSquares::random(3, 7, 0.1, &mut rng).unwrap(),
        batches: Vec::new(),
        losses: Vec::new(),
    }
}

#[test]
fn a_fixed_batch_order_is_followed_epoch_by_epoch() {
    let orders = vec![vec![6, 0, 5, 1, 4, 2, 3], vec![0, 1, 2, 3, 4, 5, 6]];
    let mut sgd = SgdConfig {
        lr: 0.01,
        batching: Batching::mini(3),
        ..Default::default()
    }
    .build::<f64>()
    .unwrap()
    .with_batch_order(orders)
    .unwrap();
    let mut p = recorder();
    let out = Driver::new(Budget::iterations(3))
        .run(&mut p, &mut sgd)
        .unwrap();
    assert!(matches!(out.status, Status::BudgetExhausted(_)));
    let want: Vec<Vec<usize>> = vec![
        vec![6, 0, 5],
        vec![1, 4, 2],
        vec![3],
        vec![0, 1, 2],
        vec![3, 4, 5],
        vec![6],
        vec![6, 0, 5], // epoch 3 cycles back to the first order
        vec![1, 4, 2],
        vec![3],
    ];
    assert_eq!(p.batches, want);

    // The weighted running loss of the last epoch: (3 f1 + 3 f2 + 1 f3) / 7.
    let l = &p.losses[6..9];
    let expect = (3.0 * l[0] + 3.0 * l[1] + l[2]) / 7.0;
    let got = out
        .trace
        .last()
        .unwrap()
        .extras
        .iter()
        .find(|(n, _)| n == "mean_batch_loss")
        .unwrap()
        .1;
    assert!(
        (got - expect).abs() <= 1e-15 * expect.abs(),
        "{got} vs {expect}"
    );
    // ... which differs from the unweighted mean of the three batch losses.
    assert!((got - (l[0] + l[1] + l[2]) / 3.0).abs() > 1e-6 * expect.abs());
}

#[test]
fn bad_orders_are_typed_errors() {
    let sgd = || {
        SgdConfig {
            lr: 0.01,
            batching: Batching::mini(3),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
    };
    // Not a permutation of 0..7 (a repeat, an index out of range, a wrong length).
    for order in [
        vec![0, 0, 1, 2, 3, 4, 5],
        vec![0, 1, 2, 3, 4, 5, 7],
        vec![0, 1, 2],
    ] {
        let mut s = sgd().with_batch_order(vec![order]).unwrap();
        let out = Driver::new(Budget::iterations(1))
            .run(&mut recorder(), &mut s)
            .unwrap();
        let Status::Failed { error } = &out.status else {
            panic!("{:?}", out.status)
        };
        assert!(error.contains("must be a permutation of 0..N"), "{error}");
    }
    assert!(matches!(
        sgd().with_batch_order(vec![]),
        Err(SolverError::InvalidConfig { .. })
    ));
    let full = SgdConfig::gd(0.1).build::<f64>().unwrap();
    assert!(matches!(
        full.with_batch_order(vec![vec![0]]),
        Err(SolverError::InvalidConfig {
            param: "batch order",
            ..
        })
    ));
}
