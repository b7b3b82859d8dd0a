//! Tests of the ray bound of a lower block: soundness against the driver's record and a
//! double-double evaluation on random deep nets, the top block as a special case, the
//! mutations (tangent for chord; no deviation terms above the block).

use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::top_block::tests::{Dd, dd, dd_add, dd_mul, points};
use super::super::*;
use super::{RayWorkspace, enclose_ray};

mod adversarial;
mod centred;
mod checks;
mod compare;
mod config;
mod exact_sums;
mod given_anchors;
mod given_far;
mod mse;
mod mse_extreme;
mod units;
mod vectorised;

/// One problem: `layer` is the moving dense layer (ReLU, dense pairs above it), `input`
/// enters it, `dir` moves only it.
#[derive(Clone)]
pub(super) struct RCase {
    pub(super) net: Sequential<f64>,
    pub(super) loss: Loss,
    pub(super) x: DMatrix<f64>,
    pub(super) y: Targets<f64>,
    pub(super) layer: usize,
    pub(super) input: DMatrix<f64>,
    pub(super) dir: DVector<f64>,
    pub(super) amax: f64,
}

/// Output `k`'s target for sample `s` (one-hot for labels).
fn target(y: &Targets<f64>, k: usize, s: usize) -> f64 {
    match y {
        Targets::Labels { labels, .. } => f64::from(u8::from(labels[s] == k)),
        Targets::Dense(m) => m[(k, s)],
    }
}

/// `c` with the squared-error loss: dense targets `scale · N(0, 1)`, independent of the
/// outputs (`scale` = 10^U(-2, 2)), or random labels one-hot on every fifth
/// seed; the reduction and L2 weight kept. A generator of its own, so that the
/// cross-entropy cases keep their draws.
pub(super) fn to_mse(mut c: RCase, seed: u64) -> RCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0f5e);
    let (k, n) = (
        dense(&c.net, c.net.layers().len() - 1).weight.nrows(),
        c.x.ncols(),
    );
    c.loss.kind = LossKind::Mse;
    c.y = if seed.is_multiple_of(5) {
        Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..k)).collect(),
            classes: k,
        }
    } else {
        let scale = 10f64.powf(rng.random_range(-2.0..2.0));
        Targets::Dense(DMatrix::from_fn(k, n, |_, _| scale * gauss(&mut rng)))
    };
    c
}

/// Makes `c` rounding-dominated: the block's inputs `±1e4` (alternating signs, relative
/// noise 1e-12; the net's inputs too when the block is the first layer) and `ā` in
/// 1e-14..1e-6, so that rounding is a large part of each change.
pub(super) fn make_rounding_dominated(c: &mut RCase, rng: &mut ChaCha8Rng) {
    let (d, n) = c.input.shape();
    for s in 0..n {
        for j in 0..d {
            c.input[(j, s)] = if j % 2 == 0 { 1e4 } else { -1e4 } * (1.0 + 1e-12 * gauss(rng));
        }
    }
    if c.layer == 0 {
        c.x = c.input.clone();
    }
    c.amax = 10f64.powf(rng.random_range(-14.0..-6.0));
}

fn gauss<R: Rng>(rng: &mut R) -> f64 {
    super::super::tests::gauss(rng)
}

fn dense(net: &Sequential<f64>, l: usize) -> &Dense<f64> {
    net.layers()[l].as_dense().unwrap()
}

/// A random case: 2 or 3 hidden ReLU layers, the block any of them (the top one
/// included), near-kink pre-activations (bias set so that the entry is at rounding
/// level) in the block and above, saturated softmax sometimes; `n_max` samples at most.
pub(super) fn random_rcase(seed: u64, n_max: usize) -> RCase {
    random_rcase_with(seed, n_max, 3, (-4.0, 1.0), 30.0)
}

/// [`random_rcase`] with 2 to `nh_max` hidden layers, `log10 ā` uniform in `la`, and the
/// output weights scaled by `sat` on every fourth case.
pub(super) fn random_rcase_with(
    seed: u64,
    n_max: usize,
    nh_max: usize,
    la: (f64, f64),
    sat_scale: f64,
) -> RCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nh = rng.random_range(2..=nh_max);
    let blk = rng.random_range(0..nh);
    let d0 = rng.random_range(1..=5usize);
    let widths: Vec<usize> = (0..nh).map(|_| rng.random_range(1..=8usize)).collect();
    let k = rng.random_range(2..=5usize);
    let n = rng.random_range(1..=n_max);
    let sat = if rng.random_range(0..4) == 0 {
        sat_scale
    } else {
        1.0
    };
    let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
    let mut layers: Vec<Box<dyn Layer<f64>>> = Vec::new();
    let mut h = x.clone();
    let mut input = x.clone();
    let mut din = d0;
    for (i, &dw) in widths.iter().enumerate() {
        let w = DMatrix::from_fn(dw, din, |_, _| gauss(&mut rng) * 1.5 / (din as f64).sqrt());
        let mut b = DVector::from_fn(dw, |_, _| 0.3 * gauss(&mut rng));
        if i >= blk {
            for j in 0..dw {
                if rng.random_range(0..3) == 0 {
                    let s = rng.random_range(0..n);
                    b[j] = -(w.row(j) * h.column(s))[0];
                }
            }
        }
        if i == blk {
            input = h.clone();
        }
        let l = Dense::new(w, b).unwrap();
        let mut z = DMatrix::zeros(0, 0);
        l.forward_into(&h, &mut z).unwrap();
        Activation::Relu.apply_matrix(&z, &mut h);
        layers.push(Box::new(l));
        layers.push(Box::new(Activation::Relu));
        din = dw;
    }
    let w2 = DMatrix::from_fn(k, din, |_, _| sat * gauss(&mut rng) / (din as f64).sqrt());
    let b2 = DVector::from_fn(k, |_, _| 0.2 * gauss(&mut rng));
    layers.push(Box::new(Dense::new(w2, b2).unwrap()));
    let net = Sequential::from_layers(layers).unwrap();
    let y = if rng.random_range(0..4) == 0 {
        let mut m = DMatrix::from_fn(k, n, |_, _| rng.random::<f64>());
        for mut c in m.column_iter_mut() {
            let s = c.sum();
            c /= s;
        }
        Targets::Dense(m)
    } else {
        Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..k)).collect(),
            classes: k,
        }
    };
    let reduction = if rng.random_range(0..3) == 0 {
        Reduction::Sum
    } else {
        Reduction::Mean
    };
    let l2 = [0.0, 1e-3, 0.1][rng.random_range(0..3)];
    let layer = 2 * blk;
    let mut dir = DVector::zeros(net.num_params());
    let wi = net.param_span(layer, "weight").unwrap();
    let bi = net.param_span(layer, "bias").unwrap();
    let ds = 10f64.powf(rng.random_range(-2.0..0.5));
    for i in (wi.offset..wi.offset + wi.rows * wi.cols).chain(bi.offset..bi.offset + bi.rows) {
        dir[i] = ds * gauss(&mut rng);
    }
    let amax = 10f64.powf(rng.random_range(la.0..la.1));
    RCase {
        net,
        loss: Loss {
            kind: LossKind::SoftmaxCrossEntropy,
            reduction,
            l2,
        },
        x,
        y,
        layer,
        input,
        dir,
        amax,
    }
}

impl RCase {
    fn req_parts(&self) -> ([DVector<f64>; 1], [f64; 1]) {
        ([self.dir.clone()], [self.amax])
    }

    /// The ray bound (`value`: the caller's record at 0, or `None`).
    pub(super) fn bound(&self, value: Option<f64>) -> crate::Result<RayBound<f64>> {
        let (dirs, amax) = self.req_parts();
        let req = EnclosureRequest {
            net: &self.net,
            loss: &self.loss,
            inputs: &self.x,
            targets: &self.y,
            directions: &dirs,
            alpha_max: &amax,
        };
        let from = FromLayer {
            layer: self.layer,
            input: &self.input,
            output: None,
            output_dir: None,
        };
        enclose_ray(&req, value, &from, &mut RayWorkspace::default())
    }

    /// `enclose_top_block` on the same request (valid when the block is the top one).
    pub(super) fn top_bound(&self, value: Option<f64>) -> crate::Result<RayBound<f64>> {
        let (dirs, amax) = self.req_parts();
        let req = EnclosureRequest {
            net: &self.net,
            loss: &self.loss,
            inputs: &self.x,
            targets: &self.y,
            directions: &dirs,
            alpha_max: &amax,
        };
        let from = FromLayer {
            layer: self.layer,
            input: &self.input,
            output: None,
            output_dir: None,
        };
        enclose_top_block(&req, value, &from, &mut TopBlockWorkspace::new())
    }

    /// The driver's record (block MM's `forward_trial` from the block, `data_term`,
    /// penalty) at the weights `apply_step` writes for step `a`.
    pub(super) fn record(&self, a: f64) -> f64 {
        let mut net = self.net.clone();
        let base = self.net.flat_params();
        apply_step(&mut net, &base, std::slice::from_ref(&self.dir), &[a]).unwrap();
        let mut h = self.input.clone();
        let (mut z, mut g) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        let nl = net.layers().len();
        for l in (self.layer..nl).step_by(2) {
            dense(&net, l).forward_into(&h, &mut z).unwrap();
            if l + 1 < nl {
                Activation::Relu.apply_matrix(&z, &mut h);
            }
        }
        let d = self
            .loss
            .value_and_output_grad(&z, &self.y, &mut g)
            .unwrap();
        d + net.weight_penalty(self.loss.l2)
    }

    /// The exact objective: weights `w + a v`, every product and the penalty in
    /// double-double, the log-sum-exp in f64 from the double-double logits (squared
    /// error: the residuals and their squares in double-double).
    pub(super) fn accurate(&self, a: f64) -> f64 {
        let base = self.net.flat_params();
        let at = |i: usize| dd_add(dd(base[i]), dd_mul(dd(a), dd(self.dir[i])));
        let nl = self.net.layers().len();
        let n = self.input.ncols();
        let mut data = 0.0;
        for s in 0..n {
            let mut h: Vec<Dd> = self.input.column(s).iter().map(|x| dd(*x)).collect();
            for l in (self.layer..nl).step_by(2) {
                let wi = self.net.param_span(l, "weight").unwrap();
                let bi = self.net.param_span(l, "bias").unwrap();
                let mut z = vec![dd(0.0); wi.rows];
                for (j, zj) in z.iter_mut().enumerate() {
                    let mut acc = at(bi.offset + j);
                    for (c, hc) in h.iter().enumerate() {
                        acc = dd_add(acc, dd_mul(at(wi.offset + j + c * wi.rows), *hc));
                    }
                    *zj = if l + 1 < nl && acc.0 <= 0.0 {
                        dd(0.0)
                    } else {
                        acc
                    };
                }
                h = z;
            }
            if self.loss.kind == LossKind::Mse {
                // ½ Σ (z_k - y_k)² in double-double.
                let mut sq = dd(0.0);
                for (k, zk) in h.iter().enumerate() {
                    let r = dd_add(*zk, dd(-target(&self.y, k, s)));
                    sq = dd_add(sq, dd_mul(r, r));
                }
                data += 0.5 * (sq.0 + sq.1);
                continue;
            }
            let mx = h.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
            let se: f64 = h.iter().map(|v| ((v.0 - mx) + v.1).exp()).sum();
            let lse = mx + se.ln();
            for (k, zk) in h.iter().enumerate() {
                let yk = target(&self.y, k, s);
                if yk != 0.0 {
                    data += yk * ((lse - zk.0) - zk.1);
                }
            }
        }
        data *= self.loss.sample_weight(n);
        let mut pen = dd(0.0);
        let mut off = 0;
        for layer in self.net.layers() {
            for t in (0..layer.num_param_tensors()).filter_map(|i| layer.param(i)) {
                if t.penalised {
                    for i in off..off + t.values.len() {
                        let v = at(i);
                        pen = dd_add(pen, dd_mul(v, v));
                    }
                }
                off += t.values.len();
            }
        }
        data + 0.5 * self.loss.l2 * (pen.0 + pen.1)
    }

    /// The first violation of `b` by the record or the double-double value at `pts`
    /// (`None`: none), and the number of comparisons and the smallest `(bound - x) /
    /// slack`.
    pub(super) fn check(
        &self,
        b: &RayBound<f64>,
        pts: impl IntoIterator<Item = f64>,
    ) -> (Option<String>, usize, f64) {
        let (mut checked, mut worst) = (0usize, f64::INFINITY);
        for a in pts {
            let ub = b.upper_bound(a).unwrap();
            for x in [self.record(a), self.accurate(a)] {
                // A NaN record or value under a finite bound is a violation too (review
                // rayreview: `x > ub` let it pass); an infinite bound certifies nothing.
                let under = matches!(
                    x.partial_cmp(&ub),
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                );
                if !under && ub != f64::INFINITY {
                    return (
                        Some(format!("a {a:e}: {x:e} > {ub:e} ({b:?})")),
                        checked,
                        worst,
                    );
                }
                worst = worst.min((ub - x) / b.slack);
                checked += 1;
            }
        }
        (None, checked, worst)
    }
}
