//! Whether the initialisation explains why strata's BCD starts far more slowly than its
//! reference code's MNIST trace (docs/PAPERS.md, issue #17): runs the `papers-bcd` setup
//! (784-1500-1500-1500-10 ReLU, softmax cross-entropy, the first `--train` Fashion-MNIST
//! training images and the first `--test` test images, f32, one thread, seed 0) with
//! strata's proximal BCD (`BcdConfig::default()`: gamma = rho = 1, alpha = 5, the code's
//! values) from two initial networks, for `--iterations` iterations, and prints the test
//! accuracy and the training objective at the iterations of `--at` and the CPU seconds
//! per iteration.
//!
//! ```sh
//! cargo run --release -p bench-suite --example papers_bcd_check -- \
//!     --train 10000 --iterations 4 --variants he,code-init
//! ```
//!
//! Variants: `he`: strata's He-uniform draw (runner seed 0, stream 1), what the papers
//! suite used before it drew the code's law itself (`InitSpec::Gaussian` on the runner's
//! stream, no penalty); `code-init`: every weight drawn from 0.01 N(0, 1) and every bias set to
//! 0.1, the law of the reference code's `bcd_dnn_mlp_mnist.ipynb` (here from ChaCha8
//! seed 40, so the same law, not the same numbers). The loss stays cross-entropy (the
//! code's squared loss on one-hot targets is not tried here), with the suite's default
//! penalty 1e-4 (as when the tables in docs/PAPERS.md were measured).
//!
//! Needs the `dataset-fashion-mnist` package (or `STRATA_FASHION_MNIST_DIR`).

mod common;

use nets::init::normal_pair;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::NetProblem;
use solvers::bcd::BcdConfig;

/// Scale of the reference code's weight draws, `W = 0.01 N(0, 1)`.
const CODE_WEIGHT_STD: f64 = 0.01;
/// The reference code's constant bias.
const CODE_BIAS: f32 = 0.1;

fn main() {
    let args =
        common::PapersCheckArgs::parse("papers_bcd_check", &[], 4, "he,code-init", "1,2,3,4");
    let common::PapersCheckData {
        loss,
        train,
        test,
        he,
        ..
    } = common::papers_check_data("bcd", &args);
    let mut code_init = he.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    let mut l = 0;
    while let Some(d) = code_init.dense_mut(l) {
        for pair in d.weight.as_mut_slice().chunks_mut(2) {
            let (z0, z1) = normal_pair(&mut rng);
            pair[0] = (CODE_WEIGHT_STD * z0) as f32;
            if pair.len() > 1 {
                pair[1] = (CODE_WEIGHT_STD * z1) as f32;
            }
        }
        d.bias.fill(CODE_BIAS);
        l += 1;
    }

    for v in args.variants.split(',') {
        let net = match v {
            "he" => &he,
            "code-init" => &code_init,
            other => args
                .opts
                .fail(&format!("variant {other}: expected he or code-init")),
        };
        let mut p = NetProblem::new(net.clone(), loss.to_nets(), train.clone(), test.clone())
            .expect("problem")
            .with_threads(1);
        let mut s = BcdConfig::default().build::<f32>().expect("config");
        common::print_papers_row(v, &mut p, &mut s, args.iterations, &args.at);
    }
}
