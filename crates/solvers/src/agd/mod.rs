//! Automatic gradient descent (AGD) of Bernstein, Mingard, Huang, Azizan & Yue,
//! "Automatic Gradient Descent: Deep Learning without Hyperparameters", arXiv 2304.05187
//! (2023); ALGORITHMS.md section 8 with corrections 5-9.
//!
//! **Update** (per step = per mini-batch; [`agd_update`]): with `L` the number of dense
//! layers and `g_l` the gradient of layer `l`'s matrix,
//!
//! `G = (1/L) sum_l sqrt(d_l/d_{l-1}) ||g_l||_F`,  `eta = log((1 + sqrt(1 + 4G))/2)`,
//! `W_l <- W_l - gain (eta/L) sqrt(d_l/d_{l-1}) g_l / ||g_l||_F`.
//!
//! **Biases** (absent from the paper and rejected by the reference code): `[W_l b_l]` is
//! treated as one `d_l x (d_{l-1}+1)` matrix: `||g_l||_F` is the norm of
//! `[grad_W grad_b]` and the bias moves with the same normalised step; the dimensional
//! factor keeps `d_{l-1}` = number of inputs (columns of `W_l`), as in
//! `majorize::agd`. A layer with zero gradient does not move. `L` counts dense layers
//! (the reference code counts parameter tensors, which equals the layer count there
//! because it has no biases).
//!
//! **When the majorizer behind AGD holds** (say it plainly): the exponential bound
//! `F(W + dW) <= F(W) - eta G + (1/2)(e^eta - 1)^2` is derived for a bias-free ReLU
//! network with the square loss `(1/(2 d_L)) ||f - y||^2` under (i) the *orthogonality*
//! assumption (the network's linearisation error, paired with the loss gradient,
//! averages to zero), (ii) gradients of stable rank one (Frobenius = spectral norm), and
//! (iii) the dimensional prescription `||x||_2 = sqrt(d_0)`, `||W_l||_* = sqrt(d_l/d_{l-1})`,
//! `||y||_2 = sqrt(d_L)`. (i) and (ii) do not hold in general, so AGD is NOT a certified
//! MM method and its objective can increase; with biases, cross-entropy, mini-batches, or
//! inputs and weights away from the prescription, the derivation does not apply at all.
//! The paper's guarantees (objective bounded by 2, `G <= 2`, `min_t G_t^2 <= 22/T`;
//! corrections 5-7) assume AGD's own initialisation ([`agd_initialize`]: semi-orthogonal
//! `W_l` scaled by `sqrt(d_l/d_{l-1})`) and the prescribed input scaling; the comparison
//! runner gives every solver the same initial weights, so call [`agd_initialize`] on the
//! problem's network to run AGD as its authors intend.

mod config;
mod init;
mod solver;
mod update;

pub use config::AgdConfig;
pub use init::agd_initialize;
pub use solver::Agd;
pub use update::{AgdLayer, AgdStepInfo, agd_layers, agd_update};

#[cfg(test)]
mod tests;
