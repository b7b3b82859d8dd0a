//! The MLP used by the step benchmark and the CPU-time example: dense layers with ReLU
//! between them and softmax cross-entropy, built directly with tape ops, trained by a
//! plain SGD update written here.

use autodiff::{Reduction, Tape, Transpose};
use nalgebra::DMatrix;

/// Weights `W_l` (`d_l x d_{l-1}`) and biases `b_l` (`d_l x 1`).
pub struct Mlp {
    weights: Vec<DMatrix<f32>>,
    biases: Vec<DMatrix<f32>>,
}

/// A deterministic input batch (`d0 x batch`) and labels for `k` classes.
pub fn data(d0: usize, batch: usize, k: usize) -> (DMatrix<f32>, Vec<usize>) {
    let x = DMatrix::<f32>::from_fn(d0, batch, |i, j| ((i * 13 + j * 7) % 11) as f32 / 11.0);
    let labels = (0..batch).map(|j| (j * 7) % k).collect();
    (x, labels)
}

impl Mlp {
    /// He-scaled deterministic weights, zero biases.
    pub fn new(widths: &[usize]) -> Self {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for (l, w) in widths.windows(2).enumerate() {
            let s = (2.0 / w[0] as f32).sqrt();
            weights.push(DMatrix::from_fn(w[1], w[0], |i, j| {
                (((i * 31 + j * 17 + l * 7) % 97) as f32 / 48.5 - 1.0) * s
            }));
            biases.push(DMatrix::zeros(w[1], 1));
        }
        Mlp { weights, biases }
    }

    /// Forward + backward + SGD; returns the loss.
    pub fn step(
        &mut self,
        tape: &mut Tape<f32>,
        x: &DMatrix<f32>,
        labels: &[usize],
        lr: f32,
    ) -> f32 {
        tape.reset();
        let ws: Vec<_> = self.weights.iter().map(|w| tape.param(w)).collect();
        let bs: Vec<_> = self.biases.iter().map(|b| tape.param(b)).collect();
        let mut a = tape.constant(x);
        let layers = ws.len();
        for l in 0..layers {
            let z = tape.matmul(ws[l], Transpose::No, a, Transpose::No).unwrap();
            let z = tape.add_bias(z, bs[l]).unwrap();
            a = if l + 1 < layers {
                tape.relu(z).unwrap()
            } else {
                z
            };
        }
        let loss = tape
            .softmax_cross_entropy_labels(a, labels, Reduction::Mean)
            .unwrap();
        tape.backward(loss).unwrap();
        let params = self.weights.iter_mut().chain(self.biases.iter_mut());
        for (p, &v) in params.zip(ws.iter().chain(&bs)) {
            let g = tape.grad(v).unwrap();
            p.as_mut_slice()
                .iter_mut()
                .zip(g.as_slice())
                .for_each(|(p, &g)| *p -= lr * g);
        }
        tape.scalar(loss).unwrap()
    }
}
