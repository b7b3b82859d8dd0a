//! Tests of the AGD update, initialisation, bias support, errors.

use autodiff::Reduction;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::{Batching, Budget, Driver, NetProblem};

#[test]
fn update_matches_a_hand_computation() {
    // Layer 1: W 2x1 with gradient (3, 4); layer 2: W 1x2 with gradient (0.6, 0.8).
    // G = (sqrt(2) 5 + sqrt(1/2) 1) / 2 = 11 sqrt(2) / 4, eta = log((1 + sqrt(1 + 4G))/2).
    let layers = [
        AgdLayer {
            weight: 0,
            rows: 2,
            cols: 1,
            bias: None,
        },
        AgdLayer {
            weight: 2,
            rows: 1,
            cols: 2,
            bias: None,
        },
    ];
    let mut p = vec![1.0f64; 4];
    let g = [3.0, 4.0, 0.6, 0.8];
    let info = agd_update(&mut p, &g, &layers, 1.0).unwrap();
    let s2 = 2f64.sqrt();
    let g_hand = 11.0 * s2 / 4.0;
    let eta = ((1.0 + (1.0 + 11.0 * s2).sqrt()) / 2.0).ln();
    assert!((info.g - g_hand).abs() < 1e-15);
    assert!((info.eta - eta).abs() < 1e-15);
    assert!((eta - 0.929_9).abs() < 1e-3);
    // W_1 <- W_1 - (eta/2) sqrt(2) (3, 4)/5; W_2 <- W_2 - (eta/2) sqrt(1/2) (0.6, 0.8).
    let want = [
        1.0 - eta * s2 * 0.3,
        1.0 - eta * s2 * 0.4,
        1.0 - eta / (2.0 * s2) * 0.6,
        1.0 - eta / (2.0 * s2) * 0.8,
    ];
    for (a, b) in p.iter().zip(want) {
        assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    }
    // Gain multiplies the step; G and eta do not change.
    let mut q = vec![1.0f64; 4];
    let info10 = agd_update(&mut q, &g, &layers, 10.0).unwrap();
    assert_eq!(info10, info);
    assert!((1.0 - q[0] - 10.0 * (1.0 - p[0])).abs() < 1e-13);
}

#[test]
fn biases_join_the_layer_norm() {
    // The same layer 1 as above but its gradient split between W (3, 0) and b (0, 4):
    // the joint norm is still 5, so G, eta and the step lengths are identical.
    let layers = [
        AgdLayer {
            weight: 0,
            rows: 2,
            cols: 1,
            bias: Some(2),
        },
        AgdLayer {
            weight: 4,
            rows: 1,
            cols: 2,
            bias: None,
        },
    ];
    let mut p = vec![1.0f64; 6];
    let g = [3.0, 0.0, 0.0, 4.0, 0.6, 0.8];
    let info = agd_update(&mut p, &g, &layers, 1.0).unwrap();
    let s2 = 2f64.sqrt();
    assert!((info.g - 11.0 * s2 / 4.0).abs() < 1e-15);
    let eta = info.eta;
    assert!((p[0] - (1.0 - eta * s2 * 0.3)).abs() < 1e-15);
    assert_eq!(p[1], 1.0);
    assert_eq!(p[2], 1.0);
    assert!((p[3] - (1.0 - eta * s2 * 0.4)).abs() < 1e-15);
}

#[test]
fn update_agrees_with_majorize_agd_step_on_a_network_layout() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net =
        Sequential::<f64>::mlp(&[5, 7, 4, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let layers = agd_layers(&net).unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!((layers[1].rows, layers[1].cols), (4, 7));
    let n = net.num_params();
    let grad: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 7.0).collect();
    let mut p = net.flat_params();
    let info = agd_update(&mut p, &grad, &layers, 2.5).unwrap();
    // The same with majorize's matrix form.
    let mat = |off: usize, r: usize, c: usize, v: &[f64]| {
        DMatrix::from_column_slice(r, c, &v[off..off + r * c])
    };
    let flat = net.flat_params();
    let mut ws: Vec<DMatrix<f64>> = layers
        .iter()
        .map(|l| mat(l.weight, l.rows, l.cols, &flat))
        .collect();
    let mut bs: Vec<DVector<f64>> = layers
        .iter()
        .map(|l| DVector::from_column_slice(&flat[l.bias.unwrap()..l.bias.unwrap() + l.rows]))
        .collect();
    let gws: Vec<DMatrix<f64>> = layers
        .iter()
        .map(|l| mat(l.weight, l.rows, l.cols, &grad))
        .collect();
    let gbs: Vec<DVector<f64>> = layers
        .iter()
        .map(|l| DVector::from_column_slice(&grad[l.bias.unwrap()..l.bias.unwrap() + l.rows]))
        .collect();
    let m = majorize::agd::agd_step(&mut ws, Some(&mut bs), &gws, Some(&gbs), 2.5).unwrap();
    assert!((m.g - info.g).abs() < 1e-14 && (m.eta - info.eta).abs() < 1e-14);
    for (k, l) in layers.iter().enumerate() {
        assert!((mat(l.weight, l.rows, l.cols, &p) - &ws[k]).amax() < 1e-14);
        let b = l.bias.unwrap();
        assert!((DVector::from_column_slice(&p[b..b + l.rows]) - &bs[k]).amax() < 1e-14);
    }
}

#[test]
fn initialisation_has_the_prescribed_spectral_norms() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut net =
        Sequential::<f64>::mlp(&[5, 8, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    agd_initialize(&mut net, &mut rng).unwrap();
    for (k, (din, dout)) in [(5usize, 8usize), (8, 3)].into_iter().enumerate() {
        let d = net.dense(k).unwrap();
        let sv = d.weight.clone().singular_values();
        let want = (dout as f64 / din as f64).sqrt();
        // Semi-orthogonal: all min(din, dout) singular values equal the prescribed norm.
        assert!(sv.iter().all(|s| (s - want).abs() < 1e-12), "{sv}");
        assert!(d.bias.iter().all(|b| *b == 0.0));
    }
}

#[test]
fn biases_are_trained() {
    // Inputs are all zero, so every weight gradient vanishes and only the biases can fit
    // the constant target 3 (MSE): AGD must move the output bias there.
    let x = DMatrix::<f64>::zeros(2, 10);
    let y = DMatrix::from_element(1, 10, 3.0);
    let data = Dataset::new(x, Targets::Dense(y)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut net = Sequential::mlp(&[2, 4, 1], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    agd_initialize(&mut net, &mut rng).unwrap();
    let w_before = net.dense(1).unwrap().weight.clone();
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let mut p = NetProblem::new(net, loss, data, None).unwrap();
    let cfg = AgdConfig {
        gain: 1.0,
        batching: Batching::Full,
    };
    let out = Driver::new(Budget::iterations(200))
        .run(&mut p, &mut cfg.build::<f64>().unwrap())
        .unwrap();
    let recs = &out.trace.records;
    assert_eq!(recs[0].objective, 4.5);
    assert!(recs[200].objective < 1e-4 * 4.5, "{}", recs[200].objective);
    assert!(recs.windows(2).all(|w| w[1].objective <= w[0].objective));
    let b = p.net.dense(1).unwrap().bias[0];
    assert!((b - 3.0).abs() < 1e-2, "{b}");
    assert_eq!(p.net.dense(1).unwrap().weight, w_before);
}

#[test]
fn bad_hyperparameters_and_non_finite_values_are_errors() {
    assert_eq!(
        AgdConfig {
            gain: 0.0,
            ..Default::default()
        }
        .build::<f64>()
        .unwrap_err()
        .to_string(),
        "invalid AGD config: gain = 0 must be finite and > 0"
    );
    assert_eq!(
        AgdConfig {
            gain: f64::INFINITY,
            ..Default::default()
        }
        .build::<f64>()
        .unwrap_err()
        .to_string(),
        "invalid AGD config: gain = inf must be finite and > 0"
    );
    assert_eq!(
        AgdConfig {
            batching: Batching::mini(0),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap_err()
        .to_string(),
        "invalid AGD config: batch size = 0 must be >= 1"
    );
    let layers = [AgdLayer {
        weight: 0,
        rows: 1,
        cols: 2,
        bias: None,
    }];
    let mut p = vec![1.0f64, 2.0];
    let err = agd_update(&mut p, &[0.5, f64::NAN], &layers, 1.0).unwrap_err();
    assert_eq!(err.to_string(), "non-finite value in AGD gradient entry 1");
    assert_eq!(p, vec![1.0, 2.0]);
    // A network whose weights are already NaN: the run fails instead of returning them.
    let x = DMatrix::<f64>::from_element(2, 6, 0.5);
    let data = Dataset::new(
        x,
        Targets::Labels {
            labels: vec![0, 1, 0, 1, 0, 1],
            classes: 2,
        },
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut net = Sequential::mlp(&[2, 3, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    net.dense_mut(0).unwrap().weight[(0, 0)] = f64::NAN;
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mut prob = NetProblem::new(net, loss, data, None).unwrap();
    let out = Driver::new(Budget::iterations(1))
        .run(&mut prob, &mut AgdConfig::default().build::<f64>().unwrap());
    let msg = match out {
        Ok(o) => format!("{:?}", o.status),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("non-finite") || msg.contains("NaN"), "{msg}");
}
