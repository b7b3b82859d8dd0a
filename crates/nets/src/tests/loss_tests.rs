use super::{rng, unif};
use crate::loss::CurvatureBound;
use crate::{Loss, LossKind, NetsError, Reduction, Targets, accuracy};
use nalgebra::{DMatrix, SymmetricEigen};

fn rand_matrix(r: &mut rand_chacha::ChaCha8Rng, k: usize, n: usize, s: f64) -> DMatrix<f64> {
    DMatrix::from_fn(k, n, |_, _| unif(r, -s, s))
}

/// Every (loss, targets) combination the tests exercise on a K x N output.
fn cases(r: &mut rand_chacha::ChaCha8Rng, k: usize, n: usize) -> Vec<(Loss, Targets<f64>)> {
    let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % k).collect();
    let lab = Targets::Labels {
        labels: labels.clone(),
        classes: k,
    };
    let dense = Targets::Dense(rand_matrix(r, k, n, 1.0));
    let probs = {
        let mut m = DMatrix::from_fn(k, n, |_, _| unif(r, 0.0, 1.0));
        for mut c in m.column_iter_mut() {
            let s = c.sum();
            c /= s;
        }
        Targets::Dense(m)
    };
    let mut out = vec![];
    for red in [Reduction::Sum, Reduction::Mean] {
        out.push((Loss::new(LossKind::Mse, red), dense.clone()));
        out.push((Loss::new(LossKind::Mse, red), lab.clone()));
        out.push((Loss::new(LossKind::SoftmaxCrossEntropy, red), lab.clone()));
        out.push((Loss::new(LossKind::SoftmaxCrossEntropy, red), probs.clone()));
        out.push((Loss::new(LossKind::Logistic, red), probs.clone()));
        out.push((Loss::new(LossKind::Logistic, red), lab.clone()));
        out.push((Loss::new(LossKind::MulticlassHinge, red), lab.clone()));
    }
    out
}

#[test]
fn values_match_hand_computations() {
    let z: DMatrix<f64> = DMatrix::from_column_slice(3, 2, &[1.0, 2.0, 0.5, -1.0, 0.0, 3.0]);
    let lab = Targets::Labels {
        labels: vec![1, 0],
        classes: 3,
    };
    // MSE vs one-hot: col0 (1,2,.5)-(0,1,0): 1+1+.25 -> .5*2.25 = 1.125; col1 (-1,0,3)-(1,0,0): 4+0+9 -> 6.5.
    let mse = Loss::new(LossKind::Mse, Reduction::Sum)
        .value(&z, &lab)
        .unwrap();
    assert!((mse - 7.625).abs() < 1e-14);
    let mse_mean = Loss::new(LossKind::Mse, Reduction::Mean)
        .value(&z, &lab)
        .unwrap();
    assert!((mse_mean - 7.625 / 2.0).abs() < 1e-14);
    // Softmax CE: lse(z) - z_y.
    let lse = |c: &[f64]| c.iter().map(|x| x.exp()).sum::<f64>().ln();
    let ce = lse(&[1.0, 2.0, 0.5]) - 2.0 + lse(&[-1.0, 0.0, 3.0]) + 1.0;
    let v = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum)
        .value(&z, &lab)
        .unwrap();
    assert!((v - ce).abs() < 1e-13);
    // Hinge: col0 y=1: max(0,1+1-2)=0, max(0,1+.5-2)=0 -> 0; col1 y=0: max(0,1+0+1)=2, max(0,1+3+1)=5 -> 7.
    let h = Loss::new(LossKind::MulticlassHinge, Reduction::Mean)
        .value(&z, &lab)
        .unwrap();
    assert!((h - 3.5).abs() < 1e-14);
    // Logistic, one output, labels {0,1}: softplus(z) - y z.
    let z1 = DMatrix::from_row_slice(1, 2, &[0.3, -2.0]);
    let b = Targets::Labels {
        labels: vec![1, 0],
        classes: 2,
    };
    let want = (1.0f64 + (-0.3f64).exp()).ln() + (1.0f64 + (-2.0f64).exp()).ln();
    let l = Loss::new(LossKind::Logistic, Reduction::Sum)
        .value(&z1, &b)
        .unwrap();
    assert!((l - want).abs() < 1e-14, "{l} vs {want}");
    // f32 agrees.
    let z32 = z.map(|x| x as f32);
    let lab32 = Targets::Labels {
        labels: vec![1, 0],
        classes: 3,
    };
    let v32 = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum)
        .value(&z32, &lab32)
        .unwrap();
    assert!((v32 as f64 - ce).abs() < 1e-5);
}

#[test]
fn output_gradients_match_finite_differences() {
    let mut r = rng(41);
    let (k, n) = (4, 5);
    for (loss, t) in cases(&mut r, k, n) {
        let z = rand_matrix(&mut r, k, n, 2.0);
        let mut g = DMatrix::zeros(0, 0);
        let v = loss.value_and_output_grad(&z, &t, &mut g).unwrap();
        assert!((v - loss.value(&z, &t).unwrap()).abs() < 1e-14);
        let e = 1e-6;
        for i in 0..k * n {
            let mut zp = z.clone();
            zp[i] += e;
            let mut zm = z.clone();
            zm[i] -= e;
            let fd = (loss.value(&zp, &t).unwrap() - loss.value(&zm, &t).unwrap()) / (2.0 * e);
            assert!(
                (fd - g[i]).abs() < 1e-7,
                "{loss:?}: entry {i}: fd {fd} vs {}",
                g[i]
            );
        }
    }
}

/// The f32 output gradients (softmax takes its own f32 branch: exps in f32) agree with
/// the f64 ones checked above, to f32 precision, for every loss and target kind.
#[test]
fn f32_output_gradients_agree_with_the_checked_f64_ones() {
    let mut r = rng(45);
    let (k, n) = (4, 5);
    for (loss, t) in cases(&mut r, k, n) {
        let z = rand_matrix(&mut r, k, n, 2.0);
        let mut g = DMatrix::zeros(0, 0);
        let v = loss.value_and_output_grad(&z, &t, &mut g).unwrap();
        let t32 = match &t {
            Targets::Labels { labels, classes } => Targets::Labels {
                labels: labels.clone(),
                classes: *classes,
            },
            Targets::Dense(m) => Targets::Dense(m.map(|x| x as f32)),
        };
        let mut g32 = DMatrix::zeros(0, 0);
        let v32 = loss
            .value_and_output_grad(&z.map(|x| x as f32), &t32, &mut g32)
            .unwrap();
        assert!(
            (v32 as f64 - v).abs() <= 1e-6 * (1.0 + v.abs()),
            "{loss:?}: value f32 {v32} vs f64 {v}"
        );
        let err = (g32.map(|x| x as f64) - &g).amax();
        assert!(
            err <= 1e-6 * (1.0 + g.amax()),
            "{loss:?}: gradient differs by {err:e}"
        );
        assert!(g.amax() > 1e-2, "{loss:?}: vanishing gradient");
    }
}

/// Analytic per-sample Hessian in the logits.
fn hessian(kind: LossKind, z: &[f64], ysum: f64) -> DMatrix<f64> {
    let k = z.len();
    match kind {
        LossKind::Mse => DMatrix::identity(k, k),
        LossKind::Logistic => DMatrix::from_diagonal(&nalgebra::DVector::from_fn(k, |i, _| {
            let s = crate::activation::sigmoid(z[i]);
            s * (1.0 - s)
        })),
        LossKind::SoftmaxCrossEntropy => {
            let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let se: f64 = z.iter().map(|x| (x - mx).exp()).sum();
            let p: Vec<f64> = z.iter().map(|x| (x - mx).exp() / se).collect();
            DMatrix::from_fn(k, k, |i, j| {
                ysum * (if i == j { p[i] } else { 0.0 } - p[i] * p[j])
            })
        }
        LossKind::MulticlassHinge => DMatrix::zeros(k, k),
    }
}

#[test]
fn curvature_bounds_dominate_the_true_hessian() {
    let mut r = rng(42);
    for kind in [
        LossKind::Mse,
        LossKind::Logistic,
        LossKind::SoftmaxCrossEntropy,
    ] {
        let loss = Loss::new(kind, Reduction::Sum);
        for k in [1usize, 2, 3, 7] {
            let bound = loss.curvature_bound(k).matrix(k).unwrap();
            for trial in 0..200 {
                let s = [0.1, 1.0, 5.0, 30.0][trial % 4];
                let z: Vec<f64> = (0..k).map(|_| unif(&mut r, -s, s)).collect();
                let h = hessian(kind, &z, 1.0);
                let eig = SymmetricEigen::new(&bound - &h).eigenvalues.min();
                assert!(eig >= -1e-12, "{kind:?} K={k}: min eig of B - H = {eig}");
            }
            // The analytic Hessian is the true one (finite differences of the gradient).
            if kind == LossKind::SoftmaxCrossEntropy && k == 1 {
                continue;
            }
            let z = DMatrix::from_fn(k, 1, |_, _| unif(&mut r, -2.0, 2.0));
            let t = if kind == LossKind::Logistic {
                Targets::Dense(DMatrix::from_element(k, 1, 0.3))
            } else {
                Targets::Labels {
                    labels: vec![0],
                    classes: k,
                }
            };
            let h = hessian(kind, z.as_slice(), 1.0);
            let mut g0 = DMatrix::zeros(0, 0);
            let mut g1 = DMatrix::zeros(0, 0);
            for j in 0..k {
                let e = 1e-6;
                let mut zp = z.clone();
                zp[j] += e;
                let mut zm = z.clone();
                zm[j] -= e;
                loss.value_and_output_grad(&zp, &t, &mut g1).unwrap();
                loss.value_and_output_grad(&zm, &t, &mut g0).unwrap();
                for i in 0..k {
                    let fd = (g1[i] - g0[i]) / (2.0 * e);
                    assert!(
                        (fd - h[(i, j)]).abs() < 1e-6,
                        "{kind:?}: H[{i},{j}] fd {fd} vs {}",
                        h[(i, j)]
                    );
                }
            }
        }
    }
    // Tightness: Böhning's bound is attained in the direction orthogonal to 1 at z = 0, K = 2.
    let b = CurvatureBound::Bohning { classes: 2 }.matrix(2).unwrap();
    let h = hessian(LossKind::SoftmaxCrossEntropy, &[0.0, 0.0], 1.0);
    assert!((&b - &h).norm() < 1e-15);
    assert_eq!(
        Loss::new(LossKind::Logistic, Reduction::Sum)
            .curvature_bound(3)
            .max_eigenvalue(),
        Some(0.25)
    );
    assert_eq!(
        Loss::new(LossKind::MulticlassHinge, Reduction::Sum).curvature_bound(3),
        CurvatureBound::NotSmooth
    );
    assert_eq!(
        Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum)
            .curvature_bound(4)
            .max_eigenvalue(),
        Some(0.5)
    );
}

#[test]
fn curvature_bound_apply_matches_matrix() {
    let mut r = rng(43);
    let d = rand_matrix(&mut r, 5, 3, 1.0);
    for cb in [
        CurvatureBound::ScaledIdentity(0.25),
        CurvatureBound::Bohning { classes: 5 },
    ] {
        let mut out = DMatrix::zeros(0, 0);
        cb.apply(&d, &mut out).unwrap();
        let want = cb.matrix(5).unwrap() * &d;
        assert!((out - want).norm() < 1e-14);
    }
    assert!(
        CurvatureBound::NotSmooth
            .apply(&d, &mut DMatrix::zeros(0, 0))
            .is_err()
    );
}

#[test]
fn target_mismatches_are_typed_errors() {
    let z = DMatrix::<f64>::zeros(3, 2);
    let sum = Reduction::Sum;
    let msg = |l: LossKind, t: &Targets<f64>| match Loss::new(l, sum).value(&z, t) {
        Err(e @ NetsError::Targets { .. }) => e.to_string(),
        other => panic!("{l:?}: expected a targets error, got {other:?}"),
    };
    let lab = |labels: Vec<usize>, classes| Targets::Labels { labels, classes };
    assert!(
        msg(LossKind::SoftmaxCrossEntropy, &lab(vec![0, 1], 4))
            .contains("3 rows but the labels have 4 classes")
    );
    assert!(msg(LossKind::Mse, &lab(vec![0], 3)).contains("2 samples"));
    assert!(
        msg(
            LossKind::MulticlassHinge,
            &Targets::Dense(DMatrix::zeros(3, 2))
        )
        .contains("needs class labels")
    );
    assert!(
        msg(
            LossKind::Logistic,
            &Targets::Dense(DMatrix::from_element(3, 2, 1.5))
        )
        .contains("[0, 1]")
    );
    assert!(
        msg(LossKind::Mse, &Targets::Dense(DMatrix::zeros(2, 2))).contains("dense targets have 2")
    );
    assert!(msg(LossKind::Mse, &lab(vec![0, 5], 3)).contains("label 5 at sample 1"));
    let e = Loss::new(LossKind::Mse, sum)
        .with_l2(-1.0)
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("l2"));
}

#[test]
fn accuracy_counts_argmax_and_binary_sign() {
    let z = DMatrix::from_column_slice(
        3,
        4,
        &[1.0, 2.0, 0.0, 5.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 3.0, 3.0],
    );
    let t = Targets::Labels {
        labels: vec![1, 0, 0, 2],
        classes: 3,
    };
    // Predictions: 1, 0, 0 (tie -> first), 1 (tie 3,3 -> first max index 1).
    assert_eq!(accuracy(&z, &t), Some(0.75));
    let b = DMatrix::from_row_slice(1, 3, &[0.5, -0.1, 0.0]);
    assert_eq!(
        accuracy(
            &b,
            &Targets::Labels {
                labels: vec![1, 0, 1],
                classes: 2
            }
        ),
        Some(2.0 / 3.0)
    );
    assert_eq!(accuracy(&z, &Targets::Dense(DMatrix::zeros(3, 4))), None);
    assert_eq!(
        accuracy(
            &z,
            &Targets::Labels {
                labels: vec![0; 3],
                classes: 3
            }
        ),
        None
    );
    assert_eq!(
        accuracy(
            &z,
            &Targets::Labels {
                labels: vec![0; 4],
                classes: 5
            }
        ),
        None
    );
}

/// The softmax cross-entropy's value and gradient, written as before the shared exps
/// (issue #14): the value from `value`, the gradient with two exps per entry in T.
fn ce_reference<T: autodiff::Real>(loss: &Loss, z: &DMatrix<T>, t: &Targets<T>) -> (T, DMatrix<T>) {
    let v = loss.value(z, t).unwrap();
    let (k, n) = z.shape();
    let wt = T::of(loss.sample_weight(n));
    let y = |i: usize, j: usize| match t {
        Targets::Labels { labels, .. } => T::of(f64::from(u8::from(labels[j] == i))),
        Targets::Dense(m) => m[(i, j)],
    };
    let mut g = DMatrix::zeros(k, n);
    for j in 0..n {
        let col = z.column(j);
        let mx = col.max();
        let mut se = T::zero();
        for i in 0..k {
            se += (col[i] - mx).exp();
        }
        let mut ysum = T::zero();
        for i in 0..k {
            ysum += y(i, j);
        }
        for i in 0..k {
            g[(i, j)] = wt * (ysum * ((col[i] - mx).exp() / se) - y(i, j));
        }
    }
    (v, g)
}

#[test]
fn softmax_value_and_gradient_with_shared_exps_are_the_former_ones_bit_for_bit() {
    let mut r = rng(44);
    let (k, n) = (10, 37);
    for red in [Reduction::Sum, Reduction::Mean] {
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, red);
        let labels: Vec<usize> = (0..n).map(|i| (i * 3 + 1) % k).collect();
        let z = rand_matrix(&mut r, k, n, 30.0);
        let t = Targets::Labels {
            labels: labels.clone(),
            classes: k,
        };
        let mut g = DMatrix::zeros(0, 0);
        let v = loss.value_and_output_grad(&z, &t, &mut g).unwrap();
        let (v0, g0) = ce_reference(&loss, &z, &t);
        assert_eq!(v.to_bits(), v0.to_bits());
        assert_eq!(g, g0);
        // f32 (value from f64 exps, gradient from f32 exps) and dense targets.
        let z32 = z.map(|x| x as f32);
        let dense = Targets::Dense(DMatrix::from_fn(k, n, |_, _| unif(&mut r, 0.0, 0.3) as f32));
        for t32 in [
            Targets::Labels {
                labels: labels.clone(),
                classes: k,
            },
            dense,
        ] {
            let mut g32 = DMatrix::zeros(0, 0);
            let v32 = loss.value_and_output_grad(&z32, &t32, &mut g32).unwrap();
            let (v0, g0) = ce_reference(&loss, &z32, &t32);
            assert_eq!(v32.to_bits(), v0.to_bits());
            assert_eq!(g32, g0);
        }
    }
}
