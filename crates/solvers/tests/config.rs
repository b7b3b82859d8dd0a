//! Hyperparameters and inputs are validated once, with messages naming what is wrong.

use solvers::first_order::*;
use solvers::inna::InnaConfig;
use solvers::lbfgs::LbfgsConfig;
use solvers::step_tuned::StepTunedConfig;
use solvers::testing::{LeastSquares, Logistic};
use solvers::*;

fn msg<T: std::fmt::Debug>(r: Result<T, SolverError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn first_order_configs_reject_bad_values() {
    assert_eq!(
        msg(SgdConfig {
            lr: 0.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid SGD config: lr = 0 must be finite and > 0"
    );
    assert_eq!(
        msg(SgdConfig {
            lr: -0.1,
            ..Default::default()
        }
        .build::<f32>()),
        "invalid SGD config: lr = -0.1 must be finite and > 0"
    );
    assert_eq!(
        msg(SgdConfig {
            nesterov: true,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid SGD config: momentum = 0 must be > 0 with Nesterov"
    );
    assert_eq!(
        msg(SgdConfig {
            momentum: 1.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid SGD config: momentum = 1 must be in [0, 1)"
    );
    assert_eq!(
        msg(AdamConfig {
            beta1: 1.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adam config: beta1 = 1 must be in [0, 1)"
    );
    assert_eq!(
        msg(AdamConfig {
            beta2: 1.5,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adam config: beta2 = 1.5 must be in [0, 1)"
    );
    assert_eq!(
        msg(AdamConfig {
            eps: 0.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adam config: eps = 0 must be finite and > 0"
    );
    assert_eq!(
        msg(AdamConfig {
            lr: f64::NAN,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adam config: lr = NaN must be finite and > 0"
    );
    assert_eq!(
        msg(AdamConfig {
            batching: Batching::mini(0),
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adam config: batch size = 0 must be >= 1"
    );
    assert_eq!(
        msg(AdamWConfig {
            weight_decay: -1.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid AdamW config: weight_decay = -1 must be finite and >= 0"
    );
    assert_eq!(
        msg(RmsPropConfig {
            alpha: 1.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid RMSProp config: alpha = 1 must be in [0, 1)"
    );
    assert_eq!(
        msg(AdagradConfig {
            eps: -1e-10,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adagrad config: eps = -0.0000000001 must be finite and > 0"
    );
    let bad_schedule = Schedule::Warmup {
        steps: 10,
        then: Box::new(Schedule::Cosine {
            total: 0,
            min_factor: 0.0,
        }),
    };
    assert_eq!(
        msg(AdamConfig {
            schedule: bad_schedule,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Adam config: schedule.total = 0 must be >= 1"
    );
}

#[test]
fn other_configs_reject_bad_values() {
    assert_eq!(
        msg(LbfgsConfig {
            history: 0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid L-BFGS config: history = 0 must be >= 1"
    );
    assert_eq!(
        msg(LbfgsConfig {
            c1: 0.95,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid L-BFGS config: c1 = 0.95 must satisfy 0 < c1 < c2"
    );
    assert_eq!(
        msg(LbfgsConfig {
            c2: 1.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid L-BFGS config: c2 = 1 must satisfy c1 < c2 < 1"
    );
    assert_eq!(
        msg(InnaConfig {
            beta: 0.0,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid INNA config: beta = 0 must be finite and > 0"
    );
    assert_eq!(
        msg(StepTunedConfig {
            big_m: 0.1,
            ..Default::default()
        }
        .build::<f64>()),
        "invalid Step-Tuned SGD config: M = 0.1 must be finite and >= m"
    );
}

#[test]
fn budgets_are_validated() {
    let mut p = LeastSquares::<f64>::new(1, vec![1.0], vec![1.0], 0.0).unwrap();
    let mut gd = SgdConfig::gd(0.1).build::<f64>().unwrap();
    let err = |b: Budget, p: &mut LeastSquares<f64>, gd: &mut _| {
        Driver::new(b).run(p, gd).unwrap_err().to_string()
    };
    assert_eq!(
        err(Budget::iterations(0), &mut p, &mut gd),
        "invalid budget: max_iterations = 0 must be >= 1"
    );
    assert_eq!(
        err(Budget::default().with_target(0.0), &mut p, &mut gd),
        "invalid budget: set at least one of max_iterations, max_epochs, max_time"
    );
    assert_eq!(
        err(Budget::epochs(-1.0), &mut p, &mut gd),
        "invalid budget: max_epochs = -1 must be finite and > 0"
    );
}

#[test]
fn problems_reject_empty_and_mismatched_data() {
    assert_eq!(
        msg(LeastSquares::<f64>::new(3, vec![], vec![], 0.1)),
        "empty data: least squares with d = 3, N = 0"
    );
    assert_eq!(
        msg(LeastSquares::<f64>::new(
            3,
            vec![0.0; 5],
            vec![1.0, 2.0],
            0.1
        )),
        "shape mismatch in least-squares data matrix (d*N): expected 6, got 5"
    );
    assert_eq!(
        msg(Logistic::<f64>::new(1, vec![1.0, 2.0], vec![1.0, 0.0], 0.1)),
        "invalid Logistic config: label = 0 must be -1 or +1"
    );
    let mut p = LeastSquares::<f64>::new(2, vec![1.0, 0.0, 0.0, 1.0], vec![1.0, 2.0], 0.1).unwrap();
    assert_eq!(
        msg(p.set_params(&[1.0])),
        "shape mismatch in LeastSquares::set_params: expected 2, got 1"
    );
    let mut g = [0.0; 2];
    assert_eq!(
        msg(p.value_grad(Some(&[0, 7]), &mut g)),
        "shape mismatch in mini-batch index bound: expected < 2, got 7"
    );
    assert_eq!(
        msg(p.load_params(&serde_json::json!([1.0, 2.0, 3.0]))),
        "shape mismatch in loaded parameters: expected 2, got 3"
    );
}
