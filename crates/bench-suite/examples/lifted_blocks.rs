//! Where the lifted network's sweep spends its inner iterations (issue #14): runs a few
//! sweeps of `LiftedState::sweep` (f64, one thread, the runner's initial network for
//! seed 0) and prints, per sweep and block, the inner iterations, backtracking trials,
//! whether the tolerance was met, the block objective's decrease, the CPU time and the
//! lifted objective after the sweep.
//!
//! ```sh
//! cargo run --release -p bench-suite --example lifted_blocks -- --problems digits-mlp --sweeps 5
//! ```
//!
//! Options: `--problems a,b` `--sweeps 5` `--euclidean` (weights blocks without the
//! metric, the method before issue #14) `--fista` (hidden weights blocks by FISTA,
//! `WeightsMethod::Fista`, instead of the default semismooth Newton-CG; `--newton`, the
//! default, is still accepted) `--tol 1e-3` `--cap 50`. Before session 11 made Newton-CG
//! `LiftedState::from_forward`'s default, no flag meant FISTA: the commands without
//! `--newton` in docs/PERFORMANCE.md's rounds 3 and 4 ran FISTA (`--fista` now).

mod common;

use common::cpu_ns;
use solvers::lifted::{BlockId, InnerStats, LiftedState};

const USAGE: &str = "usage: lifted_blocks [--problems digits-mlp] [--sweeps 5] [--tol 1e-3] \
[--cap 50] [--euclidean] [--newton | --fista]";

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &["--problems", "--sweeps", "--tol", "--cap"],
        &["--euclidean", "--newton", "--fista"],
        false,
    );
    let problems = opts.get("--problems").unwrap_or("digits-mlp".into());
    let sweeps: usize = opts.num("--sweeps", 5);
    let tol: f64 = opts.num("--tol", 1e-3);
    let cap: usize = opts.num("--cap", 50);
    let euclidean = opts.flag("--euclidean");
    if opts.flag("--newton") && opts.flag("--fista") {
        opts.fail("--newton and --fista exclude each other");
    }
    let fista = opts.flag("--fista");
    for pname in problems.split(',') {
        let (train, net, loss) = common::problem(&opts, pname);
        let hidden = net.num_dense() - 1;
        let mut st = LiftedState::from_forward(&net, &loss, train.inputs(), vec![1.0; hidden], 0.0)
            .expect("state");
        st.curvature_bounds = !euclidean;
        st.weights_method = if fista {
            solvers::lifted::WeightsMethod::Fista
        } else {
            solvers::lifted::WeightsMethod::NewtonCg
        };
        let (inputs, targets) = (train.inputs(), train.targets());
        for sweep in 1..=sweeps {
            let mut t = cpu_ns();
            let mut rows = Vec::new();
            let mut hook = |_: &mut LiftedState<f64>, id: BlockId, s: &InnerStats| {
                let now = cpu_ns();
                rows.push((id, *s, (now - t) as f64 * 1e-6));
                t = now;
                Ok(())
            };
            st.sweep(inputs, targets, &loss, tol, cap, 1, &mut hook)
                .expect("sweep");
            let j = st.objective(inputs, targets, &loss, 1).expect("objective");
            for (id, s, ms) in rows {
                println!(
                    "{pname} sweep {sweep} {id:?}: iters {} trials {} conv {} stalled {} start {:.6e} end {:.6e} L {:.3e} {ms:.1} ms",
                    s.iterations, s.trials, s.converged, s.stalled, s.start, s.end, s.lipschitz
                );
            }
            println!("{pname} sweep {sweep}: J = {j:.8e}");
        }
    }
}
