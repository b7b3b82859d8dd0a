//! The initial point of every run: the network weights (each problem's [`InitSpec`]) and
//! the NMF factors, drawn from stream [`INIT_STREAM`] of the seed's ChaCha8 generator so
//! that every solver of a seed starts from the same point.

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Init, Sequential};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::problems::{HiddenActivation, InitSpec};

/// The stream of the seed's ChaCha8 generator the initial weights / factors come from
/// (stream 0 is the data's; see [`crate::problems`]).
pub const INIT_STREAM: u64 = 1;

/// The initial network of a problem for `seed` with the default law
/// ([`InitSpec::Default`]): [`initial_network_with`].
pub fn initial_network<T: Real>(
    widths: &[usize],
    hidden: HiddenActivation,
    seed: u64,
) -> Result<Sequential<T>, nets::NetsError> {
    initial_network_with(widths, hidden, InitSpec::Default, seed)
}

/// The initial network of a problem for `seed`: the registered MLP with parameters drawn
/// from `ChaCha8Rng::seed_from_u64(seed)` on stream [`INIT_STREAM`] by the law `init`:
/// [`InitSpec::Default`] He-uniform weights for ReLU and Glorot-uniform for tanh and
/// softplus, zero biases; [`InitSpec::Gaussian`] `weight_std N(0, 1)` weights and
/// `bias_const + bias_std N(0, 1)` biases, layer by layer (weights column-major, then the
/// biases when `bias_std > 0`); [`InitSpec::GlorotUniformBias`] Glorot-uniform weights and
/// constant biases; [`InitSpec::TorchLinear`] weights then biases U(-1/sqrt(fan_in),
/// 1/sqrt(fan_in)), layer by layer; f64 draws rounded to `T`.
pub fn initial_network_with<T: Real>(
    widths: &[usize],
    hidden: HiddenActivation,
    init: InitSpec,
    seed: u64,
) -> Result<Sequential<T>, nets::NetsError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INIT_STREAM);
    match init {
        InitSpec::Default => {
            let init = match hidden {
                HiddenActivation::Relu => Init::HeUniform,
                HiddenActivation::Tanh | HiddenActivation::Softplus => Init::GlorotUniform,
            };
            Sequential::mlp(widths, hidden.to_nets(), init, &mut rng)
        }
        InitSpec::Gaussian {
            weight_std,
            bias_std,
            bias_const,
        } => {
            // Init::Zeros draws nothing: every draw below comes from the fresh stream.
            let mut net = Sequential::mlp(widths, hidden.to_nets(), Init::Zeros, &mut rng)?;
            let mut fill = |out: &mut [T], std: f64, mean: f64| {
                if std == 0.0 {
                    out.iter_mut().for_each(|x| *x = T::of(mean));
                    return;
                }
                for pair in out.chunks_mut(2) {
                    let (z0, z1) = nets::init::normal_pair(&mut rng);
                    pair[0] = T::of(mean + std * z0);
                    if let Some(x) = pair.get_mut(1) {
                        *x = T::of(mean + std * z1);
                    }
                }
            };
            let mut l = 0;
            while let Some(d) = net.dense_mut(l) {
                fill(d.weight.as_mut_slice(), weight_std, 0.0);
                fill(d.bias.as_mut_slice(), bias_std, bias_const);
                l += 1;
            }
            Ok(net)
        }
        InitSpec::GlorotUniformBias { bias_const } => {
            let mut net = Sequential::mlp(widths, hidden.to_nets(), Init::Zeros, &mut rng)?;
            let mut l = 0;
            while let Some(d) = net.dense_mut(l) {
                let (fan_out, fan_in) = d.weight.shape();
                Init::GlorotUniform.fill(d.weight.as_mut_slice(), fan_in, fan_out, &mut rng);
                d.bias.iter_mut().for_each(|b| *b = T::of(bias_const));
                l += 1;
            }
            Ok(net)
        }
        InitSpec::TorchLinear => {
            let mut net = Sequential::mlp(widths, hidden.to_nets(), Init::Zeros, &mut rng)?;
            let mut l = 0;
            while let Some(d) = net.dense_mut(l) {
                let bound = 1.0 / (d.weight.ncols().max(1) as f64).sqrt();
                let weights = d.weight.as_mut_slice().iter_mut();
                for x in weights.chain(d.bias.as_mut_slice().iter_mut()) {
                    *x = T::of(bound * (2.0 * nets::init::uniform01(&mut rng) - 1.0));
                }
                l += 1;
            }
            Ok(net)
        }
    }
}

/// Initial NMF factors: scikit-learn's 'random' scheme `|N(0, 1)| sqrt(mean(V) / K)`,
/// H (K x N) then W (F x K), entries drawn row by row from
/// `ChaCha8Rng::seed_from_u64(seed)` on stream [`INIT_STREAM`]; zeros (probability 0)
/// are floored at 1e-12 so every factor starts strictly positive. Errors (before
/// allocating) on a rank of 0 or factors of more than
/// [`MAX_FACTOR_ENTRIES`](super::limits::MAX_FACTOR_ENTRIES) entries.
pub fn initial_factors<T: Real>(
    v: &DMatrix<T>,
    rank: usize,
    seed: u64,
) -> Result<(DMatrix<T>, DMatrix<T>), crate::BenchError> {
    super::limits::check_factor_entries(rank, v.nrows(), v.ncols())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INIT_STREAM);
    let mean = v.iter().map(|x| x.to_f64()).sum::<f64>() / v.len().max(1) as f64;
    let scale = if mean > 0.0 && rank > 0 {
        (mean / rank as f64).sqrt()
    } else {
        1.0
    };
    let mut draw = |rows: usize, cols: usize| {
        let mut m = DMatrix::from_element(rows, cols, T::zero());
        for i in 0..rows {
            for j in 0..cols {
                let z: f64 = rng.sample(StandardNormal);
                m[(i, j)] = T::of((z.abs() * scale).max(1e-12));
            }
        }
        m
    };
    let h = draw(rank, v.ncols());
    let w = draw(v.nrows(), rank);
    Ok((w, h))
}
