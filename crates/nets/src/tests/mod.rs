//! Unit tests of the crate (one binary, to keep link time small).

mod activation_tests;
mod fenchel_tests;
mod init_tests;
mod loss_prox_tests;
mod loss_tests;
mod prox_tests;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Activation;

pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform on [lo, hi).
pub(crate) fn unif(r: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * crate::init::uniform01(r)
}

pub(crate) fn all_activations() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::LeakyRelu { slope: 0.0 },
        Activation::LeakyRelu { slope: -0.3 },
        Activation::LeakyRelu { slope: 2.5 },
        Activation::Elu { alpha: 1.0 },
        Activation::Elu { alpha: 0.5 },
        Activation::Elu { alpha: 2.0 },
        Activation::Elu { alpha: -0.5 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
    ]
}
