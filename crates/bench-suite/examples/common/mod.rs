//! Shared by the examples: the problems of issue #14 and the default list of structured
//! solvers (`sweep_ratios`, `trace_check`, ...), and the row printer of the papers checks
//! (`papers_dladmm_check`, `papers_bcd_check`).

#![allow(dead_code)]

mod opts;
pub use opts::Opts;

use bench_suite::problems::{
    BuildOptions, DataSource, HiddenActivation, LossSpec, ProblemData, ProblemKind, ProblemSpec,
    SolverFamily, find_problem,
};
use bench_suite::runner::{NetProblem, SolverEntry, initial_network};
use nets::{Dataset, Loss, Sequential};

/// Nanoseconds this thread has spent on a CPU (0 if unavailable).
pub fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `solver` on `problem` for `iterations` iterations through the `Driver` (seed 0) and
/// prints one markdown row: `variant`, the CPU seconds per iteration, then the test
/// accuracy and training objective recorded at each iteration of `at` (`-` where none was
/// recorded); the final status and the wall time go to stderr.
pub fn print_papers_row<S: solvers::Solver<NetProblem<f32>>>(
    variant: &str,
    problem: &mut NetProblem<f32>,
    solver: &mut S,
    iterations: u64,
    at: &[u64],
) {
    let t0 = std::time::Instant::now();
    let cpu0 = cpu_ns();
    let out = solvers::Driver::new(solvers::Budget::iterations(iterations))
        .seed(0)
        .run(problem, solver)
        .expect("run");
    let cpu = (cpu_ns() - cpu0) as f64 * 1e-9;
    let rec = &out.trace.records;
    let done = rec.last().map_or(1, |r| r.iteration.max(1));
    print!("| {variant} | {:.1} |", cpu / done as f64);
    for k in at {
        match rec.iter().find(|r| r.iteration == *k) {
            Some(r) => print!(
                " {} | {:.4} |",
                r.test_accuracy
                    .map_or("-".to_string(), |a| format!("{:.1}%", 100.0 * a)),
                r.objective
            ),
            None => print!(" - | - |"),
        }
    }
    println!();
    eprintln!(
        "{variant}: status {:?}, {done} iterations, {:.0} s wall",
        out.status,
        t0.elapsed().as_secs_f64()
    );
}

/// The structured solvers of issue #14, then any other layer-wise MM entry except the
/// mini-batch AGD and last-layer MM, then the certified-MM solvers.
pub fn default_solvers(reg: &[SolverEntry]) -> Vec<String> {
    let mut names: Vec<String> = [
        "proxprop",
        "block-mm",
        "admm-taylor",
        "bcd",
        "mac",
        "dladmm",
        "lifted-fenchel",
    ]
    .map(str::to_string)
    .to_vec();
    for e in reg {
        let layerwise = e.family == SolverFamily::LayerwiseMm
            && !["agd", "last-layer-mm", "block-mm"].contains(&e.name);
        // Certified MM (issue #11): safe-adam, safe-layerwise, safe-gd, ... (full batch).
        if layerwise || e.family == SolverFamily::CertifiedMm {
            names.push(e.name.to_string());
        }
    }
    names
}

/// An MNIST-shaped synthetic problem: 784-128-10 ReLU MLP, softmax cross-entropy,
/// `train` samples of 10 Gaussian blobs in 784 dimensions (centres uniform in
/// [-1, 1]^784, std 1).
pub fn mnist_synth(train: usize) -> ProblemSpec {
    mnist_synth_widths(train, vec![784, 128, 10])
}

/// [`mnist_synth`] with other layer widths (`mnist-synth-small-deep`: 784-128-128-10,
/// a net with a lower hidden block, in no suite).
pub fn mnist_synth_widths(train: usize, widths: Vec<usize>) -> ProblemSpec {
    ProblemSpec {
        name: "mnist-synth".into(),
        description: "MNIST-shaped synthetic: 784-128-10 ReLU MLP, 10 Gaussian blobs".into(),
        kind: ProblemKind::Network {
            widths,
            hidden: HiddenActivation::Relu,
            loss: LossSpec::SoftmaxCrossEntropy,
            l2: None,
            init: Default::default(),
        },
        source: DataSource::Blobs {
            train,
            test: 10,
            dim: 784,
            classes: 10,
            spread: 1.0,
            std: 1.0,
        },
        families: SolverFamily::NETWORK.to_vec(),
        quick: false,
    }
}

/// A named problem's training set, initial network (runner seed 0) and loss.
/// `mnist-synth` has 10 000 samples, `mnist-synth-small` and `mnist-synth-small-deep`
/// 1 000.
pub fn problem(opts: &Opts, name: &str) -> (Dataset<f64>, Sequential<f64>, Loss) {
    let spec = match name {
        "mnist-synth" => mnist_synth(10_000),
        "mnist-synth-small" => mnist_synth(1_000),
        "mnist-synth-small-deep" => mnist_synth_widths(1_000, vec![784, 128, 128, 10]),
        _ => find_problem(name).unwrap_or_else(|e| {
            opts.fail(&format!(
                "{e} (or mnist-synth, mnist-synth-small, mnist-synth-small-deep)"
            ))
        }),
    };
    let ProblemKind::Network {
        widths,
        hidden,
        loss,
        ..
    } = &spec.kind
    else {
        opts.fail(&format!("{name} is not a network problem"));
    };
    let train = match spec.build::<f64>(0, &BuildOptions::from_env()) {
        Ok(ProblemData::Supervised { train, .. }) => train,
        Ok(_) => opts.fail(&format!("{name} is not a supervised problem")),
        Err(e) => opts.fail(&format!("{name}: {e}")),
    };
    let net = initial_network::<f64>(widths, *hidden, 0)
        .unwrap_or_else(|e| opts.fail(&format!("{name}: initial network: {e}")));
    (train, net, loss.to_nets())
}

/// A fresh problem on copies of the data and initial network.
pub fn make(
    train: &Dataset<f64>,
    net: &Sequential<f64>,
    loss: Loss,
    threads: usize,
) -> NetProblem<f64> {
    NetProblem::new(net.clone(), loss, train.clone(), None)
        .expect("problem")
        .with_threads(threads)
}

/// The command line shared by the papers checks (`papers_dladmm_check`,
/// `papers_bcd_check`): `--train N` and `--test M` (first N training / M test
/// Fashion-MNIST images, default 10,000 each), `--iterations K`, `--variants a,b`,
/// `--at i,j` (iterations whose values are printed), and the example's own `--key value`
/// options through [`PapersCheckArgs::opts`] (a bad command line: usage, status 2).
pub struct PapersCheckArgs {
    /// The parsed command line.
    pub opts: Opts,
    /// Training images.
    pub train: usize,
    /// Test images.
    pub test: usize,
    /// Iterations run per variant.
    pub iterations: u64,
    /// Comma-separated variants.
    pub variants: String,
    /// Iterations whose test accuracy and objective are printed.
    pub at: Vec<u64>,
}

impl PapersCheckArgs {
    /// Parses the process arguments with the example's defaults for `--iterations`,
    /// `--variants` and `--at`; `extra` are the example's own valued options.
    pub fn parse(name: &str, extra: &[&str], iterations: u64, variants: &str, at: &str) -> Self {
        let mut valued = vec!["--train", "--test", "--iterations", "--variants", "--at"];
        valued.extend_from_slice(extra);
        let usage = format!(
            "usage: {name} [--train 10000] [--test 10000] [--iterations {iterations}] \
             [--variants {variants}] [--at {at}]{}",
            extra
                .iter()
                .map(|k| format!(" [{k} V]"))
                .collect::<String>()
        );
        let opts = Opts::parse(&usage, &valued, &[], false);
        Self {
            train: opts.num("--train", 10_000),
            test: opts.num("--test", 10_000),
            iterations: opts.num("--iterations", iterations),
            variants: opts.get("--variants").unwrap_or(variants.into()),
            at: opts.list("--at", at),
            opts,
        }
    }
}

/// What a papers check runs on: the `papers-<key>` setup's widths and loss (with the
/// suite's default penalty: `LossSpec::to_nets`), its Fashion-MNIST training and test
/// sets (f32) and strata's He-uniform initial network (runner seed 0, stream 1).
pub struct PapersCheckData {
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// The setup's loss.
    pub loss: LossSpec,
    /// Training set.
    pub train: Dataset<f32>,
    /// Test set.
    pub test: Option<Dataset<f32>>,
    /// He-uniform initial network.
    pub he: Sequential<f32>,
}

/// Loads the data of the `papers-<key>` setup for `args` (panics, naming the package,
/// when Fashion-MNIST is missing) and prints the header of the markdown table.
pub fn papers_check_data(key: &str, args: &PapersCheckArgs) -> PapersCheckData {
    let setup = bench_suite::papers::paper_setups()
        .into_iter()
        .find(|s| s.key == key)
        .expect("papers setup");
    let spec =
        bench_suite::papers::setup_problem(&setup, format!("papers-{key}"), args.train, args.test);
    let ProblemKind::Network { widths, loss, .. } = spec.kind.clone() else {
        panic!("not a network problem");
    };
    let ProblemData::Supervised { train, test } = spec
        .build::<f32>(0, &BuildOptions::from_env())
        .expect("Fashion-MNIST (install dataset-fashion-mnist)")
    else {
        panic!("not supervised");
    };
    let he = initial_network::<f32>(&widths, HiddenActivation::Relu, 0).expect("net");
    print!("| variant | CPU s / iteration |");
    for k in &args.at {
        print!(" test acc @ {k} | objective @ {k} |");
    }
    println!();
    PapersCheckData {
        widths,
        loss,
        train,
        test,
        he,
    }
}
