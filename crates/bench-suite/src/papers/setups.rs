//! The setups of the papers suite: each paper's architecture, iteration count, objective,
//! initial weights and solvers ([`paper_setups`]), the solvers the suite adds to the
//! registry ([`papers_solver_registry`]), the `--list` text and the problem of a setup.

use crate::problems::{DataSource, HiddenActivation, InitSpec, LossSpec, ProblemKind, ProblemSpec};
use crate::runner::{SolverEntry, solver_registry};

/// One paper's experimental setup.
#[derive(Clone, Debug)]
pub struct PaperSetup {
    /// Short key: the problem is called `papers-<key>`.
    pub key: &'static str,
    /// The paper (authors, venue, year) the setup comes from.
    pub paper: &'static str,
    /// Layer widths, input first (ReLU hidden layers, linear output).
    pub widths: Vec<usize>,
    /// The paper's iteration count (full-batch sweeps or epochs).
    pub iterations: u64,
    /// What the paper (or its reference code) reports for this setup, with the source;
    /// docs/PAPERS.md has the discussion.
    pub reported: &'static str,
    /// Solver names (in [`papers_solver_registry`]) run under the paper's iteration count.
    pub paper_solvers: Vec<&'static str>,
    /// Solver names run in the equal-time variant.
    pub equal_time_solvers: Vec<&'static str>,
    /// The paper's L2 weight penalty: `Some(0.0)` where the paper and its code have none,
    /// `None` (the suite's [`LossSpec::l2`], 1e-4) where it was not checked.
    pub l2: Option<f64>,
    /// The reference code's law of the initial parameters ([`InitSpec::Default`]: strata's
    /// He-uniform, where the code's law is not known).
    pub init: InitSpec,
    /// The data term of every solver of the setup: softmax cross-entropy, or the squared
    /// error on one-hot labels of the BCD code (`bcd-squared`).
    pub loss: LossSpec,
}

/// The data term of a setup in a few words (list text, problem description).
fn loss_name(loss: LossSpec) -> &'static str {
    match loss {
        LossSpec::SoftmaxCrossEntropy => "softmax cross-entropy",
        LossSpec::Mse => "squared error (1/2)||output - onehot||^2",
    }
}

/// The setups of the papers suite. See the module doc and docs/PAPERS.md.
pub fn paper_setups() -> Vec<PaperSetup> {
    vec![
        PaperSetup {
            key: "dladmm",
            paper: "Wang, Yu, Chen, Zhao, KDD 2019 (dlADMM); Taylor et al. ICML 2016 as its baseline",
            widths: vec![784, 1000, 1000, 10],
            iterations: 200,
            reported: "paper (Figure 5(b), read from the plot, one run): Fashion-MNIST test accuracy of dlADMM 0.700 at iteration 10, 0.771 at 20, 0.844 at 195; full-batch Adam 0.621 / 0.760 / 0.877; Taylor ADMM 0.773 flat (docs/PAPERS.md)",
            // Taylor ADMM from its paper's N(0, 1) start (seventh session); `admm-taylor`
            // (forward pass of the initial weights) stalls on this objective (PAPERS.md).
            paper_solvers: vec!["dladmm", "admm-taylor-paper", "gd", "adam-full", "lbfgs"],
            equal_time_solvers: vec!["dladmm", "admm-taylor-paper", "adam", "lbfgs"],
            // main.py: no weight penalty; W, b ~ N(0, 0.1^2) (docs/PAPERS.md).
            l2: Some(0.0),
            init: InitSpec::Gaussian {
                weight_std: 0.1,
                bias_std: 0.1,
                bias_const: 0.0,
            },
            loss: LossSpec::SoftmaxCrossEntropy,
        },
        PaperSetup {
            key: "bcd",
            paper: "Zeng, Lau, Lin, Yao, ICML 2019 (proximal BCD)",
            widths: vec![784, 1500, 1500, 1500, 10],
            iterations: 50,
            reported: "reference code (MNIST, squared loss, not Fashion-MNIST): test accuracy 0.9439-0.9492 over 5 seeds after 50 iterations, 0.13 / 0.73 / 0.88 / 0.91 after iterations 1-4 (one seed), ~1.9 s/iteration on a GPU; the ICML paper's own figures not read (docs/PAPERS.md)",
            paper_solvers: vec!["bcd", "gd", "adam-full", "lbfgs"],
            equal_time_solvers: vec!["bcd", "adam", "lbfgs"],
            // bcd_dnn_mlp_mnist.ipynb: no weight penalty; W = 0.01 N(0, 1), b = 0.1. Its loss
            // is squared error on one-hot targets, not the cross-entropy used here.
            l2: Some(0.0),
            init: InitSpec::Gaussian {
                weight_std: 0.01,
                bias_std: 0.0,
                bias_const: 0.1,
            },
            loss: LossSpec::SoftmaxCrossEntropy,
        },
        PaperSetup {
            key: "bcd-squared",
            paper: "Zeng, Lau, Lin, Yao, ICML 2019 (proximal BCD), with the code's squared loss",
            widths: vec![784, 1500, 1500, 1500, 10],
            iterations: 50,
            reported: "reference code (MNIST, this squared loss): test accuracy 0.9439-0.9492 over 5 seeds after 50 iterations, 0.13 / 0.73 / 0.88 / 0.91 after iterations 1-4 (one seed) (docs/PAPERS.md)",
            paper_solvers: vec!["bcd", "gd", "adam-full", "lbfgs"],
            equal_time_solvers: vec!["bcd", "adam", "lbfgs"],
            // bcd_dnn_mlp_mnist.ipynb: the output block fits (1/2)||V_L - Y||^2 to one-hot
            // targets Y (docs/PAPERS.md); weights and penalty as `bcd`.
            l2: Some(0.0),
            init: InitSpec::Gaussian {
                weight_std: 0.01,
                bias_std: 0.0,
                bias_const: 0.1,
            },
            loss: LossSpec::Mse,
        },
        PaperSetup {
            key: "lifted",
            paper: "Gu, Askari, El Ghaoui, AISTATS 2020 (Fenchel lifted networks), mnist_batch.py setup",
            widths: vec![784, 300, 10],
            iterations: 50,
            reported: "Fenchel paper: matches or beats the same network trained by backprop on MNIST (abstract); its tables not read (PMLR PDF over the fetch limit). MAC paper (AISTATS 2014): autoencoders on USPS / COIL-20, objective curves only, no classification number (docs/PAPERS.md)",
            paper_solvers: vec!["lifted-fenchel", "mac", "adam-b500", "sgd-b500"],
            equal_time_solvers: vec!["lifted-fenchel", "mac", "adam", "lbfgs"],
            // mnist_batch.py @0e19c8c: Model(rho = 0.0), so no ridge term on W, and the
            // backprop loss is the mean softmax cross-entropy; FCLayer draws W by TF's
            // xavier_initializer() (uniform) and sets b = 0.1.
            l2: Some(0.0),
            init: InitSpec::GlorotUniformBias { bias_const: 0.1 },
            loss: LossSpec::SoftmaxCrossEntropy,
        },
        PaperSetup {
            key: "proxprop",
            paper: "Frerix, Moellenhoff, Moeller, Cremers, ICLR 2018 (ProxProp), MLP 3072-4000-1000-4000-10 with a 784 input",
            widths: vec![784, 4000, 1000, 4000, 10],
            iterations: 50,
            reported: "paper: CIFAR-10 and USPS only (no Fashion-MNIST); ProxProp+Adam reaches lower training loss than Adam per epoch (figures)",
            paper_solvers: vec!["proxprop", "adam-b500"],
            equal_time_solvers: vec!["proxprop", "adam"],
            // proxprop_pytorch.py @42ce280: weight_decay 0 and torch.nn.CrossEntropyLoss
            // (mean); ProxPropLinear and the final layer are nn.Linear with its default init.
            l2: Some(0.0),
            init: InitSpec::TorchLinear,
            loss: LossSpec::SoftmaxCrossEntropy,
        },
        PaperSetup {
            key: "certified",
            paper: "Streeter & Dillon 2022 (AutoBound, arXiv 2212.11429 ch. 5) and Streeter 2023 (Universal MM, arXiv 2308.00190): SafeRate / SafeCombination; strata's certified block MM",
            // The one setup that could be read (Google Research blog, 14 Apr 2023): "a
            // single-hidden-layer neural network on a subset of the MNIST dataset, in the
            // full-batch setting". Width, subset size, step count, loss and activation were
            // not readable here; 128 hidden units and 200 full-batch steps are strata's
            // choice (docs/PAPERS.md).
            widths: vec![784, 128, 10],
            iterations: 200,
            reported: "blog (SafeRate(Adam), single hidden layer, MNIST subset, full batch): training loss below Adam's on a log-scale plot, each step about 2x an Adam step's wall time; paper abstracts: beats tuned GD, Adam and AdaGrad on some problems, no tuning; no number could be read (docs/PAPERS.md)",
            paper_solvers: vec![
                "safe-adam",
                "safe-layerwise",
                "block-mm",
                "gd",
                "adam-full",
                "lbfgs",
            ],
            equal_time_solvers: vec!["safe-adam", "safe-layerwise", "block-mm", "adam", "lbfgs"],
            // Not stated where it could be read: the suite's penalty and He-uniform.
            l2: None,
            init: InitSpec::Default,
            loss: LossSpec::SoftmaxCrossEntropy,
        },
    ]
}

/// The text of `strata-compare --suite papers --list`: per setup, its two problems
/// (`papers-<key>` under the paper's iteration count, `papers-<key>-equal-time`) with the
/// architecture, the iteration count, the objective, the initial weights and the solvers
/// of each variant; then the solvers the suite adds to the registry
/// ([`papers_solver_registry`]).
pub fn papers_list_text() -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "Papers setups (`--problems papers-<setup>` selects both variants; \
         `papers-<setup>-paper-iterations` / `papers-<setup>-equal-time` one of them):\n",
    );
    for setup in paper_setups() {
        let _ = writeln!(
            s,
            "  papers-{:<20} {:?} ReLU, {} iterations, {} + L2 {:e}, init: {}\n      {}\n      \
             paper iterations: {}\n      equal time: {}",
            setup.key,
            setup.widths,
            setup.iterations,
            loss_name(setup.loss),
            setup.loss.penalty(setup.l2),
            setup.init.text(HiddenActivation::Relu),
            setup.paper,
            setup.paper_solvers.join(", "),
            setup.equal_time_solvers.join(", "),
        );
    }
    s.push_str("\nSolvers the papers suite adds to the registry:\n");
    let base: Vec<&str> = solver_registry().into_iter().map(|e| e.name).collect();
    for e in papers_solver_registry() {
        if !base.contains(&e.name) {
            let _ = writeln!(s, "  {:<22} {}", e.name, e.description);
        }
    }
    s
}

/// The solver registry plus the baselines in the papers' batch regimes (full-batch
/// Adam; Adam and SGD on batches of 500, as the lifted and ProxProp codes use) and
/// Taylor ADMM from its paper's N(0, 1) start (`admm-taylor-paper`).
#[rustfmt::skip]
pub fn papers_solver_registry() -> Vec<SolverEntry> {
    use solvers::Batching;
    use solvers::first_order::{AdamConfig, SgdConfig};
    let mut r = solver_registry();
    r.extend([
        crate::net_solver!("adam-full", Gradient, full, "full-batch Adam, lr 1e-3 (the dlADMM/BCD papers' full-batch baselines)", |_| AdamConfig { batching: Batching::Full, ..Default::default() }),
        crate::net_solver!("adam-b500", Gradient, full, "Adam lr 1e-3 on shuffled batches of 500 (ProxProp's and the lifted code's batch size)", |_| AdamConfig { batching: Batching::mini(500), ..Default::default() }),
        crate::net_solver!("admm-taylor-paper", Admm, full, "ADMM of Taylor et al. (ICML 2016) from the paper's start: Z_l, A_l i.i.d. N(0, 1) from the run's seed, weights by least squares from them (Section 6, p. 6); gamma 10, beta 1, 10 warm-start sweeps, binary hinge output", |_| solvers::admm::TaylorConfig::default().with_gaussian_start(1.0), |c, T| solvers::admm::TaylorAdmm::<T>::new(c)),
        crate::net_solver!("sgd-b500", Gradient, full, "SGD momentum 0.9, lr 0.01, shuffled batches of 500", |_| SgdConfig { lr: 0.01, momentum: 0.9, batching: Batching::mini(500), ..Default::default() }),
    ]);
    r
}

/// The problem of a setup on the first `train` Fashion-MNIST training and `test` test images.
pub fn setup_problem(setup: &PaperSetup, name: String, train: usize, test: usize) -> ProblemSpec {
    ProblemSpec {
        description: format!(
            "Fashion-MNIST (first {train} training images, first {test} test), MLP {:?} ReLU, \
             {}, L2 {:e}, init: {}; setup of {}",
            setup.widths,
            loss_name(setup.loss),
            setup.loss.penalty(setup.l2),
            setup.init.text(HiddenActivation::Relu),
            setup.paper
        ),
        name,
        kind: ProblemKind::Network {
            widths: setup.widths.clone(),
            hidden: HiddenActivation::Relu,
            loss: setup.loss,
            l2: setup.l2,
            init: setup.init,
        },
        source: DataSource::Mnist {
            fashion: true,
            train,
            test,
        },
        families: crate::problems::SolverFamily::NETWORK.to_vec(),
        quick: false,
    }
}
