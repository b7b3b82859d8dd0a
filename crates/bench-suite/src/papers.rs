//! `cargo xtask compare --suite papers`: each structured method in its own paper's
//! experimental setup on Fashion-MNIST, next to gradient baselines in the same setup.
//!
//! A [`PaperSetup`] fixes the architecture, the batch regime, the paper's iteration count
//! and the method's hyperparameters (the reference code's defaults, see
//! `/work/shared/docs/ALGORITHMS.md` sections 2-7). Every setup is planned twice:
//!
//! - `papers-<setup>` ("does it reproduce"): every solver is capped at the paper's
//!   iteration count (one iteration = one full-batch sweep for full-batch methods, one
//!   epoch for mini-batch methods), baselines run in the SAME batch regime (full-batch GD
//!   / Adam / L-BFGS next to a full-batch method), plus a common wall-time safety cap;
//! - `papers-<setup>-equal-time` ("is it worth it"): every solver gets the same solver
//!   wall time and no iteration cap; the baselines run at their usual defaults
//!   (mini-batch Adam).
//!
//! Data: the first [`PAPERS_DEFAULT_TRAIN`] training images (all 60,000 with `--full`)
//! and all 10,000 test images, pixels in [0, 1] (no standardisation), as the reference
//! codes do.
//!
//! Objective and initial weights: each setup carries its paper's ([`PaperSetup::l2`],
//! [`PaperSetup::init`]; drawn on seed stream 1 like every run). dlADMM (and Taylor ADMM,
//! run in the dlADMM setup as that paper's baseline, from its own paper's start: Z_l,
//! A_l i.i.d. N(0, 1), `admm-taylor-paper`): mean softmax cross-entropy without
//! weight penalty, W, b ~ N(0, 0.1^2) as dlADMM's `main.py`; BCD: no penalty, W =
//! 0.01 N(0, 1), b = 0.1 as the BCD code; its loss, squared error on one-hot targets, is
//! the setup `bcd-squared` (`bcd` keeps the cross-entropy). Lifted / MAC: no
//! penalty, Glorot-uniform weights and biases 0.1, as the Fenchel code's `mnist_batch.py`;
//! ProxProp: no penalty, PyTorch's `nn.Linear` law (weights and biases U(+-1/sqrt(fan_in)))
//! as the ProxProp code. Every solver of a setup, baselines included, starts from the same
//! weights on the same objective. docs/PAPERS.md lists the differences left.
//!
//! Memory: before a run, [`estimate_peak_bytes`] bounds the run's allocations from the
//! sizes (auxiliary variables Z_l, A_l, multipliers for all N samples); a run whose
//! estimate exceeds the limit (`--memory-limit-gib`, default [`DEFAULT_MEMORY_LIMIT_GIB`])
//! is not started and is reported `failed` with [`BenchError::MemoryLimit`].

use crate::BenchError;
use crate::problems::{
    DataSource, Dtype, HiddenActivation, InitSpec, LossSpec, ProblemKind, ProblemSpec,
};
use crate::report::write_outputs;
use crate::results::{BudgetSpec, RunResult, RunStatus};
use crate::runner::{
    CompareArgs, CompareOutcome, Plan, PlannedProblem, SolverEntry, execute_plan, plan,
    solver_registry,
};

/// Training images of the papers suite without `--full` (CPU: 2 shared cores).
pub const PAPERS_DEFAULT_TRAIN: usize = 10_000;
/// Memory every run must fit in unless `--memory-limit-gib` says otherwise (further capped
/// by [`default_memory_limit_bytes`] at 90% of the machine's physical memory).
pub const DEFAULT_MEMORY_LIMIT_GIB: f64 = 24.0;

/// The limit used without `--memory-limit-gib`: the smaller of [`DEFAULT_MEMORY_LIMIT_GIB`]
/// and 90% of `MemTotal` in `/proc/meminfo` (a "24 GiB" machine reports about 23 GiB, so a
/// run estimated at 23.3 GiB must be refused there, not started). Where `/proc/meminfo`
/// cannot be read, the constant alone.
pub fn default_memory_limit_bytes() -> u64 {
    let constant = (DEFAULT_MEMORY_LIMIT_GIB * (1u64 << 30) as f64) as u64;
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024) / 10 * 9)
        });
    physical.map_or(constant, |p| p.min(constant))
}
/// Wall-time safety cap (s) of a run under the paper's iteration count.
pub const PAPER_ITERATIONS_WALL_CAP_S: f64 = 600.0;
/// Solver wall time (s) of every run in the equal-time variant.
pub const EQUAL_TIME_S: f64 = 60.0;

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

/// Bytes per scalar of `dtype`.
fn scalar_bytes(dtype: Dtype) -> u64 {
    match dtype {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
    }
}

/// Upper estimate of a run's peak allocation (bytes) from the sizes alone.
///
/// With `H = sum_{l>=1} d_l` (values per sample of all layers' Z_l / A_l), `P` the
/// parameter count, `N` training and `M` test samples, `b` bytes per scalar:
///
/// `bytes = b * (2 d_0 (N + M) + c_aux * N * H + c_eval * max(N, M) * H + c_par * P)`
///
/// `2 d_0 (N + M)`: the data each run holds and one copy of it (tape input, batch). `c_eval = 3`: the evaluation forward pass
/// (Z, A and a scratch per layer). `c_par = 8`: weights, gradients, optimiser moments,
/// line-search copies. `c_aux`: per-sample auxiliary matrices of the method (dlADMM: Z,
/// A, previous Z/A, multiplier, scratch and gradient blocks; Taylor ADMM: Z, A,
/// multiplier, scratch; BCD: U, V, scratch; MAC: Z, A, scratch; lifted: X and the block
/// scratch; full-batch gradient methods: the tape's forward values and adjoints; a
/// mini-batch method keeps none for all N). The constants were set from the peaks the
/// counting allocator measured (`tests/papers.rs` checks that the estimate bounds the
/// measured peak).
pub fn estimate_peak_bytes(
    solver: &str,
    widths: &[usize],
    train: usize,
    test: usize,
    dtype: Dtype,
) -> u64 {
    let h: u64 = widths.iter().skip(1).map(|&d| d as u64).sum();
    let p: u64 = widths.windows(2).map(|w| (w[0] * w[1] + w[1]) as u64).sum();
    let (n, m) = (train as u64, test as u64);
    let c_aux: u64 = match solver {
        "dladmm" => 12,
        "admm-taylor" | "admm-taylor-paper" => 8,
        "bcd" => 8,
        "mac" => 8,
        "lifted-fenchel" => 8,
        "gd" | "adam-full" | "lbfgs" | "block-mm" | "block-mm-safeguarded" | "last-layer-mm" => 6,
        // A full-batch gradient plus the enclosure, which runs over blocks of samples.
        "safe-adam" | "safe-layerwise" | "safe-gd" | "safe-heavy-ball" => 6,
        _ => 0,
    };
    let d0 = widths.first().copied().unwrap_or(0) as u64;
    scalar_bytes(dtype) * (2 * d0 * (n + m) + c_aux * n * h + 3 * n.max(m) * h + 8 * p)
}

/// [`BenchError::MemoryLimit`] if the estimate of `solver` exceeds `limit_bytes`.
pub fn check_memory(
    solver: &str,
    problem: &str,
    widths: &[usize],
    train: usize,
    test: usize,
    dtype: Dtype,
    limit_bytes: u64,
) -> Result<u64, BenchError> {
    let estimate = estimate_peak_bytes(solver, widths, train, test, dtype);
    if estimate > limit_bytes {
        return Err(BenchError::MemoryLimit {
            solver: solver.to_string(),
            problem: problem.to_string(),
            estimate_bytes: estimate,
            limit_bytes,
        });
    }
    Ok(estimate)
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

/// Whether the `--problems` selector `sel` picks the variant called `name`:
/// `papers-<key>` picks both variants of the setup, `papers-<key>-equal-time` only the
/// equal-time one, `papers-<key>-paper-iterations` only the paper-iteration one (named
/// `papers-<key>`; used to measure one method at full scale without the equal-time run).
fn selects(sel: &str, name: &str) -> bool {
    match sel.strip_suffix("-paper-iterations") {
        Some(base) => name == base,
        // Exact names: `papers-bcd` must not pick `papers-bcd-squared`.
        None => name == sel || name == format!("{sel}-equal-time"),
    }
}

/// The plan of `--suite papers`, and the runs refused by the memory check.
///
/// `--problems` selects setups by problem name (`papers-dladmm`, ...; see [`selects`]), `--solvers`
/// filters solvers, `--time-budget` replaces [`EQUAL_TIME_S`] (and caps the paper-iteration
/// runs), `--epochs` is ignored (the paper's iteration count is the budget), `--full`
/// uses all 60,000 training images, `--max-train N` the first N, `--max-test M` the
/// first M of the 10,000 test images.
pub fn papers_plan(
    args: &CompareArgs,
    memory_limit_bytes: u64,
) -> Result<(Plan, Vec<RunResult>), BenchError> {
    let registry = papers_solver_registry();
    let train = match args.max_train {
        Some(0) => return Err(BenchError::arg("max-train", "must be >= 1")),
        Some(n) => n.min(60_000),
        None if args.full => 60_000,
        None => PAPERS_DEFAULT_TRAIN,
    };
    let test = match args.max_test {
        Some(0) => return Err(BenchError::arg("max-test", "must be >= 1")),
        Some(n) => n.min(10_000),
        None => 10_000,
    };
    let equal = args
        .time_budget
        .filter(|t| *t > 0.0)
        .unwrap_or(EQUAL_TIME_S);
    let cap = args
        .time_budget
        .filter(|t| *t > 0.0)
        .unwrap_or(PAPER_ITERATIONS_WALL_CAP_S);
    let mut problems = Vec::new();
    let mut refused = Vec::new();
    let seeds = match &args.seeds {
        Some(s) => crate::runner::parse_seeds(s)?,
        None => vec![0],
    };
    for setup in paper_setups() {
        let variants = [
            (
                format!("papers-{}", setup.key),
                &setup.paper_solvers,
                BudgetSpec {
                    max_epochs: None,
                    max_wall_time_s: Some(cap),
                    max_iterations: Some(setup.iterations),
                },
            ),
            (
                format!("papers-{}-equal-time", setup.key),
                &setup.equal_time_solvers,
                BudgetSpec {
                    max_epochs: None,
                    max_wall_time_s: Some(equal),
                    max_iterations: None,
                },
            ),
        ];
        for (name, names, budget) in variants {
            if let Some(sel) = &args.problems
                && !sel.iter().any(|p| selects(p, &name))
            {
                continue;
            }
            let mut solvers = Vec::new();
            for s in names.iter() {
                if let Some(sel) = &args.solvers
                    && !sel.iter().any(|x| x == s)
                {
                    continue;
                }
                let entry = registry
                    .iter()
                    .find(|e| e.name == *s)
                    .ok_or_else(|| BenchError::arg("solvers", format!("`{s}` not registered")))?;
                match check_memory(
                    s,
                    &name,
                    &setup.widths,
                    train,
                    test,
                    args.dtype,
                    memory_limit_bytes,
                ) {
                    Ok(_) => solvers.push(entry.clone()),
                    Err(e) => {
                        for &seed in &seeds {
                            let mut r = RunResult::skipped(&name, s, seed, "");
                            r.status = RunStatus::Failed {
                                error: e.to_string(),
                            };
                            refused.push(r);
                        }
                    }
                }
            }
            if !solvers.is_empty() {
                problems.push(PlannedProblem {
                    spec: setup_problem(&setup, name, train, test),
                    solvers,
                    budget,
                });
            }
        }
    }
    if problems.is_empty() && refused.is_empty() {
        return Err(BenchError::arg(
            "problems/solvers",
            "no papers setup selected",
        ));
    }
    // Reuse the runner's plan for settings and data directories, then replace problems.
    let mut base_args = args.clone();
    base_args.problems = Some(vec!["digits-mlp".into()]);
    base_args.solvers = Some(vec!["adam".into()]);
    base_args.seeds = Some(
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
            + ",",
    );
    let mut p = plan(&base_args, &crate::problems::registry(), &solver_registry())?;
    p.problems = problems;
    p.overrides = BudgetSpec {
        max_epochs: None,
        max_wall_time_s: args.time_budget.filter(|t| *t > 0.0),
        max_iterations: None,
    };
    Ok((p, refused))
}

/// Runs `--suite papers` and writes the usual outputs into a new directory.
pub fn run_papers(args: &CompareArgs) -> Result<CompareOutcome, BenchError> {
    let limit = match args.memory_limit_gib {
        Some(gib) => (gib * (1u64 << 30) as f64) as u64,
        None => default_memory_limit_bytes(),
    };
    let (plan, refused) = papers_plan(args, limit)?;
    // Built under a `.papers-…partial` name, renamed into place when complete (as `run`).
    let partial = crate::partial::PartialRunDir::create(&args.out, "papers")?;
    let show = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut results = if plan.problems.is_empty() {
        crate::results::ResultsFile::new(crate::results::RunMetadata::collect(
            plan.dtype,
            plan.settings.threads,
            plan.seeds.clone(),
            plan.overrides.clone(),
        ))
    } else {
        execute_plan(&plan, show)
    };
    for r in &refused {
        if let RunStatus::Failed { error } = &r.status {
            eprintln!("strata-compare: {} / {}: {error}", r.problem, r.solver);
        }
    }
    results.runs.extend(refused);
    let write = |dir: &std::path::Path| -> Result<crate::report::WrittenOutputs, BenchError> {
        let outputs = write_outputs(dir, &results)?;
        let mut md = std::fs::read_to_string(&outputs.report_md)
            .map_err(|e| BenchError::io(&outputs.report_md, e))?;
        md.push_str(&render_papers_section(&results));
        crate::outdir::write_atomic(&outputs.report_md, md.as_bytes())?;
        Ok(outputs)
    };
    let written = match write(partial.path()) {
        Ok(w) => w,
        Err(e) => {
            let kept = partial.keep();
            return Err(BenchError::io(
                kept,
                std::io::Error::other(format!(
                    "writing the outputs failed ({e}); what was written is kept in this directory"
                )),
            ));
        }
    };
    let tmp = partial.path().to_path_buf();
    let dir = partial.finish()?;
    let moved = |p: std::path::PathBuf| p.strip_prefix(&tmp).map_or(p.clone(), |r| dir.join(r));
    let outputs = crate::report::WrittenOutputs {
        results_json: moved(written.results_json),
        report_md: moved(written.report_md),
        plots: written.plots,
        profiles: written.profiles,
    };
    Ok(CompareOutcome {
        dir,
        outputs,
        results,
    })
}

/// The side-by-side section of a papers report: per setup, what the paper reports, then
/// per (variant, solver): status, iterations done, solver time per iteration, final
/// training objective, final test accuracy and peak memory (median/maximum over seeds is
/// not taken: one row per seed).
pub fn render_papers_section(results: &crate::results::ResultsFile) -> String {
    use crate::analysis::{fmt_bytes, fmt_percent, fmt_sig};
    use std::fmt::Write as _;
    let mut s = String::from("\n## Papers side by side\n\n");
    let _ = writeln!(
        s,
        "`papers-<setup>`: every solver capped at the paper's iteration count (and the \
         wall-time cap); `-equal-time`: the same solver wall time for all. Time per \
         iteration = solver wall time / iterations done (evaluation excluded).\n"
    );
    for setup in paper_setups() {
        let base = format!("papers-{}", setup.key);
        let runs: Vec<_> = results
            .runs
            .iter()
            .filter(|r| r.problem == base || r.problem == format!("{base}-equal-time"))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "### {} ({:?})\n\nSetup: {}. Reported: {}.\n",
            base, setup.widths, setup.paper, setup.reported
        );
        let _ = writeln!(
            s,
            "| variant | solver | seed | status | iterations | s / iteration | final objective | test accuracy | peak memory |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for r in runs {
            let last = r.last();
            let iters = last.map(|l| l.iteration);
            let per =
                last.and_then(|l| (l.iteration > 0).then(|| l.wall_time_s / l.iteration as f64));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if r.problem == base {
                    "paper iterations"
                } else {
                    "equal time"
                },
                r.solver,
                r.seed,
                match &r.status {
                    RunStatus::Failed { error } => format!("failed: {error}"),
                    RunStatus::Skipped { reason } => format!("skipped: {reason}"),
                    other => other.label().to_string(),
                },
                iters.map_or("-".into(), |i| i.to_string()),
                fmt_sig(per, 3),
                fmt_sig(last.map(|l| l.objective), 4),
                fmt_percent(last.and_then(|l| l.test_accuracy)),
                fmt_bytes(r.peak_memory_bytes),
            );
        }
        s.push('\n');
    }
    s
}
