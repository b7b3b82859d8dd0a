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
//! metric, the method before issue #14) `--newton` (hidden weights blocks by
//! semismooth Newton-CG, `WeightsMethod::NewtonCg`) `--tol 1e-3` `--cap 50`.

mod common;

use common::cpu_ns;
use solvers::lifted::{BlockId, InnerStats, LiftedState};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let problems = get("--problems").unwrap_or("digits-mlp".into());
    let sweeps: usize = get("--sweeps").map_or(5, |v| v.parse().expect("--sweeps"));
    let tol: f64 = get("--tol").map_or(1e-3, |v| v.parse().expect("--tol"));
    let cap: usize = get("--cap").map_or(50, |v| v.parse().expect("--cap"));
    let euclidean = args.iter().any(|a| a == "--euclidean");
    let newton = args.iter().any(|a| a == "--newton");
    for pname in problems.split(',') {
        let (train, net, loss) = common::problem(pname);
        let hidden = net.num_dense() - 1;
        let mut st = LiftedState::from_forward(&net, &loss, train.inputs(), vec![1.0; hidden], 0.0)
            .expect("state");
        st.curvature_bounds = !euclidean;
        if newton {
            st.weights_method = solvers::lifted::WeightsMethod::NewtonCg;
        }
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
                    "{pname} sweep {sweep} {id:?}: iters {} trials {} conv {} start {:.6e} end {:.6e} L {:.3e} {ms:.1} ms",
                    s.iterations, s.trials, s.converged, s.start, s.end, s.lipschitz
                );
            }
            println!("{pname} sweep {sweep}: J = {j:.8e}");
        }
    }
}
