//! ME against MM on the suite's piano spectrogram (129 x 124, rank 4), the runner's
//! initial factors of each seed, as in the quick suite's NMF rows (500 iterations =
//! its 2000-pass budget), f64. Prints the objective after 10, 50, 100, 200 and 500
//! iterations for MM, the relaxed ME of Févotte & Idier's implementation (theta 0.95)
//! and the exact ME point (theta 1), per beta and seed, and the iteration from which
//! MM stays below relaxed ME (if any).
//!
//! `cargo run --release -p bench-suite --example nmf_me_vs_mm [-- BETA...]`

use bench_suite::data::{PianoSpec, piano_spectrogram};
use bench_suite::runner::initial_factors;
use majorize::nmf::{self, NmfConfig, Rule};
use nalgebra::DMatrix;

fn main() {
    let betas: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("beta must be a number"))
        .collect();
    let betas = if betas.is_empty() {
        vec![1.0, 2.0]
    } else {
        betas
    };
    let v: DMatrix<f64> = piano_spectrogram(&PianoSpec::default()).expect("spectrogram");
    let at = [10usize, 50, 100, 200, 500];
    for beta in betas {
        for seed in 0..3u64 {
            let (w0, h0) = initial_factors(&v, 4, seed);
            let run = |cfg: NmfConfig| {
                let (mut w, mut h) = (w0.clone(), h0.clone());
                nmf::factorize(&v, &mut w, &mut h, &cfg, 500).expect("factorize")
            };
            let mm = run(NmfConfig::new(beta));
            let me = run(NmfConfig::new(beta).with_rule(Rule::Me));
            let exact = run(NmfConfig::new(beta).with_rule(Rule::Me).with_me_theta(1.0));
            println!("beta {beta} seed {seed} (objective at iteration {at:?})");
            for (name, t) in [("mm", &mm), ("me 0.95", &me), ("me exact", &exact)] {
                let row: Vec<String> = at.iter().map(|&i| format!("{:.6e}", t[i])).collect();
                println!("  {name:9} {}", row.join("  "));
            }
            // Last iteration at which relaxed ME was at or below MM.
            let last_ahead = (0..=500).rev().find(|&i| me[i] <= mm[i]);
            println!(
                "  relaxed ME at or below MM last at iteration {last_ahead:?}; final ratio ME/MM {:.6}",
                me[500] / mm[500]
            );
        }
    }
}
