//! Property and mutation tests of the enclosure engine: the bound must hold for the
//! objective nets computes at the weights `apply_step` writes, in f32 and f64.
//! This module holds the random-case generator and the checker; the tests are in
//! `soundness` (property tests), `mutation` (loosened rules are caught), `api` (values,
//! errors, surrogate, workspace) and `stats` (non-vacuity, printed statistics).

mod api;
mod blocks;
mod ce_block;
mod ce_plain;
mod expo;
mod fast;
mod first;
mod from_layer;
mod golden;
mod mutation;
mod soundness;
mod sparse;
mod stats;

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

pub(crate) const ACTS: [Activation; 6] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.1 },
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
];

/// One random problem: network, loss, data, directions, trust region.
#[derive(Clone, Debug)]
pub(crate) struct Case<T: Real> {
    pub(crate) net: Sequential<T>,
    pub(crate) loss: Loss,
    pub(crate) x: DMatrix<T>,
    pub(crate) y: Targets<T>,
    pub(crate) dirs: Vec<DVector<T>>,
    pub(crate) amax: Vec<T>,
    pub(crate) smooth: bool,
}

pub(crate) fn gauss<R: Rng>(rng: &mut R) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

pub(crate) fn random_case<T: Real>(
    seed: u64,
    act: Option<Activation>,
    kind: Option<LossKind>,
) -> Case<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let depth = rng.random_range(1..=4usize);
    let big = rng.random_range(0..4) == 0;
    let wmax = if big { 32 } else { 8 };
    let mut widths = vec![rng.random_range(1..=wmax)];
    for _ in 0..depth {
        widths.push(rng.random_range(1..=wmax));
    }
    let kind = kind.unwrap_or(match rng.random_range(0..3) {
        0 => LossKind::Mse,
        1 => LossKind::SoftmaxCrossEntropy,
        _ => LossKind::Logistic,
    });
    if kind == LossKind::SoftmaxCrossEntropy && widths[depth] == 1 {
        widths[depth] = 2;
    }
    let act = act.unwrap_or(ACTS[rng.random_range(0..ACTS.len())]);
    let kinks = rng.random_range(0..5) == 0;
    let saturate = rng.random_range(0..5) == 0;
    let mut layers: Vec<Box<dyn Layer<T>>> = Vec::new();
    for l in 0..depth {
        let (din, dout) = (widths[l], widths[l + 1]);
        let s = 1.5 / (din as f64).sqrt()
            * if saturate && l + 1 == depth {
                40.0
            } else {
                1.0
            };
        let w = DMatrix::from_fn(dout, din, |_, _| T::of(gauss(&mut rng) * s));
        let b = DVector::from_fn(dout, |_, _| {
            if kinks {
                T::zero()
            } else {
                T::of(0.5 * gauss(&mut rng))
            }
        });
        layers.push(Box::new(Dense::new(w, b).unwrap()));
        if l + 1 < depth {
            layers.push(Box::new(act));
        }
    }
    let net = Sequential::from_layers(layers).unwrap();
    let n = rng.random_range(1..=8usize);
    let scale = [1.0, 5.0, 30.0][rng.random_range(0..3)];
    let mut x = DMatrix::from_fn(widths[0], n, |_, _| {
        T::of(scale * (2.0 * rng.random::<f64>() - 1.0))
    });
    if kinks {
        x.column_mut(0).fill(T::zero());
    }
    let kout = widths[depth];
    let y = match kind {
        LossKind::SoftmaxCrossEntropy => {
            if rng.random_range(0..4) == 0 {
                // Soft targets summing to one.
                let mut m = DMatrix::from_fn(kout, n, |_, _| T::of(rng.random::<f64>()));
                for mut c in m.column_iter_mut() {
                    let s = c.sum();
                    c /= s;
                }
                Targets::Dense(m)
            } else {
                Targets::Labels {
                    labels: (0..n).map(|_| rng.random_range(0..kout)).collect(),
                    classes: kout,
                }
            }
        }
        LossKind::Logistic => {
            if kout == 1 {
                Targets::Labels {
                    labels: (0..n).map(|_| rng.random_range(0..2)).collect(),
                    classes: 2,
                }
            } else {
                Targets::Dense(DMatrix::from_fn(kout, n, |_, _| T::of(rng.random::<f64>())))
            }
        }
        _ => Targets::Dense(DMatrix::from_fn(kout, n, |_, _| {
            T::of(2.0 * gauss(&mut rng))
        })),
    };
    let red = if rng.random() {
        Reduction::Mean
    } else {
        Reduction::Sum
    };
    let l2 = if rng.random_range(0..3) == 0 {
        1e-2
    } else {
        0.0
    };
    let loss = Loss::new(kind, red).with_l2(l2);
    let p = net.num_params();
    let layout = net.param_layout();
    let per_layer = depth > 1 && rng.random();
    let dirs: Vec<DVector<T>> = if per_layer {
        (0..depth)
            .map(|l| {
                let mut d = DVector::zeros(p);
                let li = 2 * l;
                for info in layout.iter().filter(|i| i.layer == li) {
                    for j in info.offset..info.offset + info.rows * info.cols {
                        d[j] = T::of(gauss(&mut rng));
                    }
                }
                d
            })
            .collect()
    } else {
        vec![DVector::from_fn(p, |_, _| T::of(gauss(&mut rng)))]
    };
    let k = dirs.len();
    let amax = (0..k)
        .map(|_| T::of(10f64.powf(rng.random_range(-4.0..1.0))))
        .collect();
    // Unit-norm directions, so the trust region is the step length.
    let dirs: Vec<DVector<T>> = dirs
        .into_iter()
        .map(|d| {
            let n = d
                .iter()
                .map(|v| v.to_f64() * v.to_f64())
                .sum::<f64>()
                .sqrt()
                .max(1e-300);
            d.map(|v| T::of(v.to_f64() / n))
        })
        .collect();
    let smooth = !kinks
        && matches!(
            act,
            Activation::Tanh | Activation::Sigmoid | Activation::Softplus | Activation::Identity
        );
    Case {
        net,
        loss,
        x,
        y,
        dirs,
        amax,
        smooth,
    }
}

impl<T: Real> Case<T> {
    pub(crate) fn request(&self) -> EnclosureRequest<'_, T> {
        EnclosureRequest {
            net: &self.net,
            loss: &self.loss,
            inputs: &self.x,
            targets: &self.y,
            directions: &self.dirs,
            alpha_max: &self.amax,
        }
    }

    /// nets' objective (`Sequential::objective`) and the driver's record
    /// (`data.to_f64() + weight_penalty`) at `apply_step(alpha)`.
    pub(crate) fn objective_at(&self, alpha: &[T]) -> (f64, f64) {
        let mut net = self.net.clone();
        let base = self.net.flat_params();
        apply_step(&mut net, &base, &self.dirs, alpha).unwrap();
        let f = net
            .objective(&self.loss, &self.x, &self.y)
            .unwrap()
            .to_f64();
        let out = net.predict(&self.x).unwrap();
        let d = self.loss.value(&out, &self.y).unwrap().to_f64() + net.weight_penalty(self.loss.l2);
        (f, d)
    }

    /// Corners, uniform points and tiny steps of the box.
    pub(crate) fn points(&self, rng: &mut ChaCha8Rng, random: usize) -> Vec<Vec<T>> {
        let k = self.amax.len();
        let mut pts = Vec::new();
        for mask in 1..(1usize << k) {
            pts.push(
                (0..k)
                    .map(|i| {
                        if mask >> i & 1 == 1 {
                            self.amax[i]
                        } else {
                            T::zero()
                        }
                    })
                    .collect(),
            );
        }
        for r in 0..random {
            let tiny = r % 3 == 0;
            pts.push(
                self.amax
                    .iter()
                    .map(|m| {
                        let u: f64 = rng.random();
                        let f = if tiny {
                            u * 10f64.powf(-rng.random_range(2.0..8.0))
                        } else {
                            u
                        };
                        T::of(m.to_f64() * f).min(*m)
                    })
                    .collect(),
            );
        }
        pts
    }
}

/// Checks the bounds at corners and random points; returns the number of violations and
/// a description of the worst.
pub(crate) fn violations<T: Real>(
    case: &Case<T>,
    enc: &QuadraticEnclosure<T>,
    seed: u64,
    random: usize,
) -> (usize, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut count = 0;
    let mut worst = String::new();
    for a in case.points(&mut rng, random) {
        let ub = enc.upper_bound(&a).unwrap().to_f64();
        let lb = enc.lower_bound(&a).unwrap().to_f64();
        let (f, d) = case.objective_at(&a);
        for v in [f, d] {
            if v > ub || v < lb || v.is_nan() {
                count += 1;
                worst = format!("alpha {a:?}: objective {v:e} outside [{lb:e}, {ub:e}]");
            }
        }
    }
    (count, worst)
}
