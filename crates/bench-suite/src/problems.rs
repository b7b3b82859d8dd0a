//! The problem registry: every problem `cargo xtask compare` knows, with its data source,
//! default model, sizes and the solver families that apply.
//!
//! Network architectures and losses are described with small mirror enums
//! ([`HiddenActivation`], [`LossSpec`]) so the registry does not depend on the internal
//! types of `nets`; the runner maps them to `nets::Activation` / `nets::Loss`.
//!
//! Seeds: [`ProblemSpec::build`] draws the DATA from `ChaCha8Rng::seed_from_u64(seed)`
//! (for problems with random data or splits). The runner must draw the initial weights
//! from a different stream (e.g. `ChaCha8Rng::seed_from_u64(seed)` with
//! `set_stream(1)`), so that every solver of a given seed sees the same data and the same
//! initial weights.

use std::path::PathBuf;

use autodiff::Real;
use nalgebra::DMatrix;
use nets::Dataset;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::data::{self, NmfNoise, PianoSpec, TeacherMlp};

mod build;
mod catalogue;
pub use catalogue::{find_problem, quick_suite, registry};

/// The algorithm families of strata; a problem lists those that apply to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SolverFamily {
    /// First-order and quasi-Newton baselines (SGD, Adam, L-BFGS) on any differentiable
    /// problem.
    Gradient,
    /// Layer-wise majorization-minimization of a network's weights.
    LayerwiseMm,
    /// ADMM on the layer-splitting of a network.
    Admm,
    /// Lifted / penalty / block-coordinate-descent methods on a network.
    Lifted,
    /// beta-NMF solvers (multiplicative updates and their MM variants).
    Nmf,
    /// Certified majorization-minimization (`solvers::certified`): first-order
    /// directions with step sizes from a certified Taylor-enclosure bound.
    CertifiedMm,
}

impl SolverFamily {
    /// All network families.
    pub const NETWORK: [SolverFamily; 5] = [
        SolverFamily::Gradient,
        SolverFamily::LayerwiseMm,
        SolverFamily::Admm,
        SolverFamily::Lifted,
        SolverFamily::CertifiedMm,
    ];
}

/// Floating-point type of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

impl Dtype {
    /// `"f32"` or `"f64"`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

/// Hidden-layer activation of a registered network (mirror of `nets::Activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenActivation {
    /// max(0, z).
    Relu,
    /// tanh(z).
    Tanh,
    /// softplus(z) = ln(1 + e^z).
    Softplus,
}

/// Training loss of a registered network (mirror of `nets::LossKind`, mean reduction over
/// samples), with the problem's default L2 weight penalty [`LossSpec::l2`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossSpec {
    /// Softmax cross-entropy on integer labels.
    SoftmaxCrossEntropy,
    /// (1/2) sum over outputs of squared errors.
    Mse,
}

/// L2 weight penalty `(lambda/2) sum_l ||W_l||_F^2` (weights only, biases free) of every
/// classification problem: lambda = 1e-4.
///
/// Why: with separable training data (digits, spirals with a wide enough network) the
/// mean cross-entropy has no minimiser: it tends to 0 as the weight norm grows, so a
/// ranking by final training objective rewards norm growth rather than optimisation.
/// A penalty makes the objective coercive in the weights. 1e-4 is the conventional
/// weight decay of the PyTorch ImageNet reference recipes (and of many CIFAR/ResNet
/// papers); it was fixed before looking at any result of this suite and is not tuned:
/// small enough that it barely moves the test accuracy of a well-trained net, large
/// enough that the minimiser's weight norm stays moderate (the penalty's gradient
/// lambda W balances a data gradient of order 1e-4).
pub const CLASSIFICATION_L2: f64 = 1e-4;

impl LossSpec {
    /// The default L2 weight penalty: [`CLASSIFICATION_L2`] for cross-entropy, 0 for
    /// squared error (teacher-student and autoencoders have a minimiser without it).
    pub fn l2(self) -> f64 {
        match self {
            LossSpec::SoftmaxCrossEntropy => CLASSIFICATION_L2,
            LossSpec::Mse => 0.0,
        }
    }

    /// The L2 weight penalty a problem actually uses: `l2` when the problem sets one
    /// (e.g. 0 for a paper's own objective, [`crate::papers`]), else [`LossSpec::l2`].
    pub fn penalty(self, l2: Option<f64>) -> f64 {
        l2.unwrap_or(self.l2())
    }

    /// The training objective in words with the default penalty [`LossSpec::l2`] (for
    /// reports and `--list`); [`LossSpec::objective_text_with`] for a problem's own.
    pub fn objective_text(self) -> String {
        self.objective_text_with(None)
    }

    /// The training objective in words with the penalty [`LossSpec::penalty`]`(l2)`.
    pub fn objective_text_with(self, l2: Option<f64>) -> String {
        let data = match self {
            LossSpec::SoftmaxCrossEntropy => "mean softmax cross-entropy",
            LossSpec::Mse => "mean over samples of (1/2) ||output - target||^2",
        };
        match self.penalty(l2) {
            l2 if l2 > 0.0 => format!(
                "{data} + ({l2:e}/2) sum_l ||W_l||_F^2 (L2 on weights, not biases); test loss = data term"
            ),
            _ => format!("{data} (no penalty); test loss = data term"),
        }
    }
}

/// The law of a network's initial parameters (drawn by `runner::initial_network` from
/// the seed's generator on stream `runner::INIT_STREAM`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum InitSpec {
    /// strata's default: He-uniform weights for ReLU, Glorot-uniform for tanh and
    /// softplus (`nets::Init`), zero biases.
    #[default]
    Default,
    /// Every weight `weight_std * N(0, 1)`, every bias `bias_const + bias_std * N(0, 1)`
    /// (a bias with `bias_std = 0` draws nothing), layer by layer: the weights column-major,
    /// then the biases, normals from `nets::init::normal_pair`. The reference codes' laws:
    /// dlADMM's `main.py` W, b ~ N(0, 0.1^2) (`weight_std = bias_std = 0.1`), the BCD
    /// code's W = 0.01 N(0, 1), b = 0.1 (`weight_std = 0.01, bias_const = 0.1`).
    Gaussian {
        /// Standard deviation of every weight.
        weight_std: f64,
        /// Standard deviation of every bias.
        bias_std: f64,
        /// Mean of every bias.
        bias_const: f64,
    },
    /// Glorot-uniform weights U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio,
    /// AISTATS 2010, eq. 16), every bias `bias_const`; layer by layer, the weights
    /// column-major. The Fenchel lifted networks code's law (`layers.py`, `FCLayer`:
    /// TensorFlow's `xavier_initializer()`, uniform by default, and
    /// `constant_initializer(0.1)`).
    GlorotUniformBias {
        /// Value of every bias.
        bias_const: f64,
    },
    /// PyTorch's `nn.Linear` default since 1.0: every weight and every bias
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (`kaiming_uniform_` with a = sqrt(5) gives the
    /// bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in)); layer by layer, the weights
    /// column-major, then the biases. The ProxProp code's law (its layers are `nn.Linear`
    /// and it re-initialises nothing).
    TorchLinear,
}

impl InitSpec {
    /// The law in words, for problem descriptions.
    pub fn text(self, hidden: HiddenActivation) -> String {
        match self {
            InitSpec::Default => match hidden {
                HiddenActivation::Relu => "He-uniform weights, zero biases".into(),
                HiddenActivation::Tanh | HiddenActivation::Softplus => {
                    "Glorot-uniform weights, zero biases".into()
                }
            },
            InitSpec::Gaussian {
                weight_std,
                bias_std,
                bias_const,
            } => format!("weights {weight_std} N(0, 1), biases {bias_const} + {bias_std} N(0, 1)"),
            InitSpec::GlorotUniformBias { bias_const } => {
                format!("Glorot-uniform weights, biases {bias_const}")
            }
            InitSpec::TorchLinear => {
                "weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch nn.Linear)".into()
            }
        }
    }
}

/// What is being optimised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProblemKind {
    /// Train an MLP `widths[0] - ... - widths[L]`, `hidden` after every dense layer but
    /// the last (linear output), on `loss`.
    Network {
        /// Layer widths, input first.
        widths: Vec<usize>,
        /// Hidden activation.
        hidden: HiddenActivation,
        /// Loss.
        loss: LossSpec,
        /// L2 weight penalty; `None`: the loss's default [`LossSpec::l2`].
        #[serde(default)]
        l2: Option<f64>,
        /// Law of the initial parameters.
        #[serde(default)]
        init: InitSpec,
    },
    /// Factorise V (F x N) as W H with W (F x rank), H (rank x N) nonnegative,
    /// minimising the beta-divergence D_beta(V | WH).
    Nmf {
        /// Inner dimension K.
        rank: usize,
        /// beta: 0 Itakura-Saito, 1 Kullback-Leibler, 2 squared Euclidean (half).
        beta: f64,
    },
}

/// Where a problem's data comes from, with every generator parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// Embedded digits, stratified 80/20 split, standardised ([`data::digits_split`]).
    /// With `autoencoder`, the targets are the (standardised) inputs themselves.
    Digits {
        /// Use inputs as dense targets.
        autoencoder: bool,
    },
    /// Teacher-student regression ([`data::teacher_student`] with a [`TeacherMlp`] of
    /// the problem's widths): teacher drawn first, then training, then test data.
    TeacherStudent {
        /// Training samples.
        train: usize,
        /// Test samples.
        test: usize,
        /// Target noise std (0: exact teacher outputs, zero loss reachable).
        noise_std: f64,
    },
    /// 2-D spirals ([`data::spirals`]): training then test samples.
    Spirals {
        /// Training samples.
        train: usize,
        /// Test samples.
        test: usize,
        /// Number of arms (classes).
        classes: usize,
        /// Turns of each arm.
        turns: f64,
        /// Angular noise std (radians).
        noise: f64,
    },
    /// Gaussian blobs ([`data::blobs`]): centres, then training, then test samples.
    Blobs {
        /// Training samples.
        train: usize,
        /// Test samples.
        test: usize,
        /// Input dimension.
        dim: usize,
        /// Number of blobs (classes).
        classes: usize,
        /// Centres uniform in [-spread, spread]^dim.
        spread: f64,
        /// Std of each blob.
        std: f64,
    },
    /// Embedded digits with the same split as [`DataSource::Digits`], inputs = pixel / 16
    /// in [0, 1] (not standardised), labels ([`data::digits_split_unit`]).
    DigitsUnit,
    /// MNIST-layout IDX files ([`data::load_mnist_dir`]): MNIST from a user directory;
    /// Fashion-MNIST from a user directory or, when none is given, from the
    /// `dataset-fashion-mnist` package's directory ([`data::resolve_fashion_mnist_dir`]).
    Mnist {
        /// Fashion-MNIST instead of MNIST (another directory, same layout).
        fashion: bool,
        /// Training images used: the first `train` of the 60,000
        /// ([`BuildOptions::mnist_max_train`] overrides it).
        train: usize,
        /// Test images used: the first `test` of the 10,000.
        test: usize,
    },
    /// Power spectrogram of the synthetic piano ([`data::piano_spectrogram`]).
    PianoSpectrogram(PianoSpec),
    /// Synthetic low-rank nonnegative data ([`data::synthetic_nmf`]).
    SyntheticNmf {
        /// Rows F.
        rows: usize,
        /// Columns N.
        cols: usize,
        /// Rank of the clean matrix.
        rank: usize,
        /// Noise model.
        noise: NmfNoise,
        /// Floor applied last.
        floor: f64,
    },
    /// A user's labelled numeric CSV ([`data::read_labeled_csv`]), split and
    /// standardised by [`data::train_test_from_table`].
    Csv {
        /// The file.
        path: PathBuf,
        /// How to read it.
        options: data::CsvOptions,
        /// Fraction of each class used for training.
        train_fraction: f64,
        /// Records in the file (checked again at build time).
        rows: usize,
        /// Features per record.
        features: usize,
    },
    /// The digits pixels / 16 as a 64 x 1797 nonnegative matrix, floored
    /// ([`data::digits_nonnegative`]).
    DigitsPixels {
        /// Floor.
        floor: f64,
    },
}

/// Sizes of a problem (as registered; for user files, the upper bounds applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemSizes {
    /// Network: input dimension d_0. NMF: rows F.
    pub features: usize,
    /// Network: training samples. NMF: columns N.
    pub train: usize,
    /// Network: test samples (0 if none). NMF: 0.
    pub test: usize,
    /// Network: number of parameters of the default architecture. NMF: F K + K N.
    pub params: usize,
}

/// Options of [`ProblemSpec::build`] that come from the user, not from the registry.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BuildOptions {
    /// Directory of the MNIST IDX files (the CLI fills it from a flag or
    /// [`data::MNIST_DIR_ENV`]).
    pub mnist_dir: Option<PathBuf>,
    /// Directory of the Fashion-MNIST IDX files (flag or [`data::FASHION_MNIST_DIR_ENV`]).
    pub fashion_mnist_dir: Option<PathBuf>,
    /// Keep at most this many MNIST training images (the first ones). `None`: the
    /// problem's registered count. Use `Some(usize::MAX)` for all 60,000.
    pub mnist_max_train: Option<usize>,
    /// Where the `dataset-fashion-mnist` package's files are looked for when no
    /// Fashion-MNIST directory is given. `None`: [`data::FASHION_MNIST_PACKAGE_DIR`]
    /// (tests point it at a temporary copy of the package's layout).
    pub fashion_mnist_package_dir: Option<PathBuf>,
}

/// Default number of (Fashion-)MNIST training images used, to keep runs modest.
pub const MNIST_DEFAULT_TRAIN: usize = 10_000;

impl BuildOptions {
    /// Directories from the environment variables `STRATA_MNIST_DIR` and
    /// `STRATA_FASHION_MNIST_DIR` (unset: `None`).
    pub fn from_env() -> Self {
        Self {
            mnist_dir: std::env::var_os(data::MNIST_DIR_ENV).map(PathBuf::from),
            fashion_mnist_dir: std::env::var_os(data::FASHION_MNIST_DIR_ENV).map(PathBuf::from),
            mnist_max_train: None,
            fashion_mnist_package_dir: None,
        }
    }
}

/// The data of a built problem.
#[derive(Clone, Debug, PartialEq)]
pub enum ProblemData<T: Real> {
    /// A supervised network problem.
    Supervised {
        /// Training set (the objective is evaluated on all of it).
        train: Dataset<T>,
        /// Held-out test set.
        test: Option<Dataset<T>>,
    },
    /// An NMF problem: the nonnegative matrix V (F x N).
    Nmf {
        /// The data matrix.
        v: DMatrix<T>,
    },
}

/// [`ProblemData`] in the precision chosen at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyProblemData {
    /// Single precision.
    F32(ProblemData<f32>),
    /// Double precision.
    F64(ProblemData<f64>),
}

/// One registered problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ProblemSpec {
    /// Unique name, e.g. `digits-mlp`.
    pub name: String,
    /// One-line description for reports.
    pub description: String,
    /// Model and objective.
    pub kind: ProblemKind,
    /// Data source and its parameters.
    pub source: DataSource,
    /// Families of solvers that apply.
    pub families: Vec<SolverFamily>,
    /// Part of the default quick suite (`cargo xtask compare` without arguments).
    pub quick: bool,
}

fn mlp_params(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[1] * w[0] + w[1]).sum()
}

impl ProblemSpec {
    /// A classification problem on a user's labelled CSV: reads the file once (to learn
    /// its sizes and class count), and registers an MLP `d - hidden... - K` with
    /// `activation` and softmax cross-entropy, all network families, a stratified split
    /// with `train_fraction` for training. Sizes in [`ProblemSpec::sizes`] are
    /// approximate (per-class rounding).
    pub fn user_csv(
        name: &str,
        path: &std::path::Path,
        options: data::CsvOptions,
        hidden: &[usize],
        activation: HiddenActivation,
        train_fraction: f64,
    ) -> Result<Self, BenchError> {
        let table = data::read_labeled_csv(path, &options)?;
        if table.classes < 2 {
            return Err(BenchError::arg(
                "path",
                format!("{} has fewer than two classes", path.display()),
            ));
        }
        let mut widths = vec![table.num_features];
        widths.extend_from_slice(hidden);
        widths.push(table.classes);
        Ok(Self {
            name: name.to_string(),
            description: format!(
                "user CSV {} ({} rows, {} features, {} classes), MLP {:?}, softmax cross-entropy + L2 {CLASSIFICATION_L2:e}",
                path.display(),
                table.len(),
                table.num_features,
                table.classes,
                widths
            ),
            kind: net(&widths, activation, LossSpec::SoftmaxCrossEntropy),
            source: DataSource::Csv {
                path: path.to_path_buf(),
                options,
                train_fraction,
                rows: table.len(),
                features: table.num_features,
            },
            families: SolverFamily::NETWORK.to_vec(),
            quick: false,
        })
    }
}

fn net(widths: &[usize], hidden: HiddenActivation, loss: LossSpec) -> ProblemKind {
    ProblemKind::Network {
        widths: widths.to_vec(),
        hidden,
        loss,
        l2: None,
        init: InitSpec::Default,
    }
}
