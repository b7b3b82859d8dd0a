//! The `cargo xtask nmf` entry point (placeholder until the beta-NMF solvers land).

fn main() {
    println!("strata nmf: beta-NMF of a CSV matrix is not built yet.");
}
