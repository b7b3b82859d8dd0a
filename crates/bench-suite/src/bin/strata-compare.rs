//! The `cargo xtask compare` entry point (placeholder until the runner lands).

fn main() {
    println!(
        "strata compare: the runner is not built yet. It will run every registered solver \
         (gradient baselines, MM, ADMM, lifted) on every embedded problem (digits MLPs, \
         autoencoder, synthetic regression/classification, beta-NMF) under equal budgets and \
         write results.json, report.md and SVG plots to a new directory under results/."
    );
}
