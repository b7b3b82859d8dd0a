//! The catalogue of problems: [`registry`] lists every problem `cargo xtask compare`
//! knows, in report order, with its data source, model, sizes and applicable families.

use super::*;

/// Every registered problem, in report order.
pub fn registry() -> Vec<ProblemSpec> {
    use HiddenActivation::{Relu, Softplus, Tanh};
    use LossSpec::{Mse, SoftmaxCrossEntropy as Ce};
    let netf = SolverFamily::NETWORK.to_vec();
    let nmf = vec![SolverFamily::Nmf];
    let spectro = |beta: f64, name: &str, description: &str, quick| ProblemSpec {
        name: name.into(),
        description: description.into(),
        kind: ProblemKind::Nmf { rank: 4, beta },
        source: DataSource::PianoSpectrogram(PianoSpec::default()),
        families: nmf.clone(),
        quick,
    };
    let fashion = |name: &str, subset: &str, train, test| ProblemSpec {
        name: name.into(),
        description: format!(
            "Fashion-MNIST ({subset}; package dataset-fashion-mnist or --fashion-mnist-dir), \
             784-128-10 ReLU MLP, cross-entropy + L2 1e-4"
        ),
        kind: net(&[784, 128, 10], Relu, Ce),
        source: DataSource::Mnist {
            fashion: true,
            train,
            test,
        },
        families: netf.clone(),
        quick: false,
    };
    vec![
        ProblemSpec {
            name: "digits-mlp".into(),
            description: "8x8 digits, 64-128-10 ReLU MLP, softmax cross-entropy + L2 1e-4 (1438 train / 359 test)".into(),
            kind: net(&[64, 128, 10], Relu, Ce),
            source: DataSource::Digits { autoencoder: false },
            families: netf.clone(),
            quick: true,
        },
        ProblemSpec {
            name: "digits-mlp-deep".into(),
            description: "8x8 digits, 64-128-128-128-10 ReLU MLP, softmax cross-entropy + L2 1e-4".into(),
            kind: net(&[64, 128, 128, 128, 10], Relu, Ce),
            source: DataSource::Digits { autoencoder: false },
            families: netf.clone(),
            quick: false,
        },
        ProblemSpec {
            name: "digits-autoencoder".into(),
            description: "8x8 digits autoencoder 64-32-16-8-16-32-64, ReLU, squared error".into(),
            kind: net(&[64, 32, 16, 8, 16, 32, 64], Relu, Mse),
            source: DataSource::Digits { autoencoder: true },
            families: netf.clone(),
            quick: false,
        },
        ProblemSpec {
            name: "digits-softplus-mse".into(),
            description: "8x8 digits, inputs pixel/16, 64-32-10 softplus MLP, (1/2) mean squared error on one-hot targets, full batch (the certified-MM acceptance problem)".into(),
            kind: net(&[64, 32, 10], Softplus, Mse),
            source: DataSource::DigitsUnit,
            families: netf.clone(),
            quick: false,
        },
        ProblemSpec {
            name: "teacher-student".into(),
            description: "regression on the outputs of a random 10-32-32-2 tanh teacher (zero loss reachable)".into(),
            kind: net(&[10, 32, 32, 2], Tanh, Mse),
            source: DataSource::TeacherStudent {
                train: 1000,
                test: 500,
                noise_std: 0.0,
            },
            families: netf.clone(),
            quick: true,
        },
        ProblemSpec {
            name: "spirals".into(),
            description: "three 2-D spiral arms (one turn, 0.1 rad noise), 2-64-64-3 ReLU MLP, cross-entropy + L2 1e-4".into(),
            kind: net(&[2, 64, 64, 3], Relu, Ce),
            source: DataSource::Spirals {
                train: 600,
                test: 300,
                classes: 3,
                turns: 1.0,
                noise: 0.1,
            },
            families: netf.clone(),
            quick: true,
        },
        ProblemSpec {
            name: "blobs".into(),
            description: "5 Gaussian blobs in 10-D (centres in [-3,3]^10, std 1.5), 10-32-5 ReLU MLP, cross-entropy + L2 1e-4".into(),
            kind: net(&[10, 32, 5], Relu, Ce),
            source: DataSource::Blobs {
                train: 1000,
                test: 500,
                dim: 10,
                classes: 5,
                spread: 3.0,
                std: 1.5,
            },
            families: netf.clone(),
            quick: false,
        },
        ProblemSpec {
            name: "mnist-mlp".into(),
            description: "MNIST (user-supplied IDX files, first 10000 training images), 784-128-10 ReLU MLP, cross-entropy + L2 1e-4".into(),
            kind: net(&[784, 128, 10], Relu, Ce),
            source: DataSource::Mnist {
                fashion: false,
                train: MNIST_DEFAULT_TRAIN,
                test: 10_000,
            },
            families: netf.clone(),
            quick: false,
        },
        fashion("fashion-mnist-mlp", "first 10000 training images", MNIST_DEFAULT_TRAIN, 10_000),
        fashion("fashion-mnist-full", "all 60000 training images", 60_000, 10_000),
        fashion("fashion-mnist-smoke", "first 1000 training and 1000 test images (CI smoke test)", 1_000, 1_000),
        spectro(
            0.0,
            "nmf-spectrogram-is",
            "power spectrogram (129 x 124) of a synthetic 4-note piano, rank 4, Itakura-Saito (beta 0)",
            true,
        ),
        spectro(
            1.0,
            "nmf-spectrogram-kl",
            "power spectrogram (129 x 124) of a synthetic 4-note piano, rank 4, Kullback-Leibler (beta 1)",
            true,
        ),
        spectro(
            2.0,
            "nmf-spectrogram-euc",
            "power spectrogram (129 x 124) of a synthetic 4-note piano, rank 4, squared Euclidean (beta 2)",
            true,
        ),
        ProblemSpec {
            name: "nmf-synthetic-poisson".into(),
            description: "rank-5 100 x 200 nonnegative matrix (mean 20) with Poisson noise, rank 5, KL (beta 1)".into(),
            kind: ProblemKind::Nmf { rank: 5, beta: 1.0 },
            source: DataSource::SyntheticNmf {
                rows: 100,
                cols: 200,
                rank: 5,
                noise: NmfNoise::Poisson { mean: 20.0 },
                floor: 0.0,
            },
            families: nmf.clone(),
            quick: false,
        },
        ProblemSpec {
            name: "nmf-synthetic-gamma".into(),
            description: "rank-5 100 x 200 nonnegative matrix with multiplicative Gamma(2, 1/2) noise, rank 5, IS (beta 0)".into(),
            kind: ProblemKind::Nmf { rank: 5, beta: 0.0 },
            source: DataSource::SyntheticNmf {
                rows: 100,
                cols: 200,
                rank: 5,
                noise: NmfNoise::Gamma { shape: 2.0 },
                floor: 1e-12,
            },
            families: nmf.clone(),
            quick: true,
        },
        ProblemSpec {
            name: "nmf-digits".into(),
            description: "digits pixels / 16 as a 64 x 1797 matrix, rank 10, KL (beta 1)".into(),
            kind: ProblemKind::Nmf {
                rank: 10,
                beta: 1.0,
            },
            source: DataSource::DigitsPixels { floor: 0.0 },
            families: nmf,
            quick: false,
        },
    ]
}

/// The registered problem called `name`.
pub fn find_problem(name: &str) -> Result<ProblemSpec, BenchError> {
    registry()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| BenchError::UnknownProblem(name.to_string()))
}

/// The problems of the default quick suite.
pub fn quick_suite() -> Vec<ProblemSpec> {
    registry().into_iter().filter(|p| p.quick).collect()
}
