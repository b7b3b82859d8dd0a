//! Tests of the top block's chord/tangent bound: soundness against the driver's record
//! and a double-double evaluation on random small nets, the slope's limit, the two
//! mutations (no slack; tangent where `C > 0`), the unsupported configurations, and a
//! comparison with the Taylor enclosure (printed).

use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::*;

/// One top-block problem: `net` ends with dense `layer`, ReLU, dense output; `input`
/// enters `layer`; `dir` moves only that layer.
#[derive(Clone)]
struct TCase {
    net: Sequential<f64>,
    loss: Loss,
    x: DMatrix<f64>,
    y: Targets<f64>,
    layer: usize,
    input: DMatrix<f64>,
    dir: DVector<f64>,
    amax: f64,
}

fn gauss<R: Rng>(rng: &mut R) -> f64 {
    super::super::tests::gauss(rng)
}

fn dense(net: &Sequential<f64>, l: usize) -> &Dense<f64> {
    net.layers()[l].as_dense().unwrap()
}

/// The one-hidden-layer net `W2 relu(W x + b) + b2` of most fixtures.
fn relu_net(
    w: DMatrix<f64>,
    b: DVector<f64>,
    w2: DMatrix<f64>,
    b2: DVector<f64>,
) -> Sequential<f64> {
    let layers: Vec<Box<dyn Layer<f64>>> = vec![
        Box::new(Dense::new(w, b).unwrap()),
        Box::new(Activation::Relu),
        Box::new(Dense::new(w2, b2).unwrap()),
    ];
    Sequential::from_layers(layers).unwrap()
}

/// A random case: 1 or 2 hidden ReLU blocks (the top one moves), near-kink `Z0`
/// entries (bias set so that `Z0` is at rounding level), saturated softmax sometimes.
fn random_tcase(seed: u64) -> TCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let two = rng.random_range(0..2) == 0;
    let (d0, d1, d2) = (
        rng.random_range(1..=6usize),
        rng.random_range(1..=8usize),
        rng.random_range(1..=8usize),
    );
    let k = rng.random_range(2..=5usize);
    let n = rng.random_range(1..=10usize);
    let sat = if rng.random_range(0..4) == 0 {
        30.0
    } else {
        1.0
    };
    let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
    let mut layers: Vec<Box<dyn Layer<f64>>> = Vec::new();
    let mut input = x.clone();
    let mut din = d0;
    if two {
        let w = DMatrix::from_fn(d1, d0, |_, _| gauss(&mut rng) * 1.5 / (d0 as f64).sqrt());
        let b = DVector::from_fn(d1, |_, _| 0.3 * gauss(&mut rng));
        let l0 = Dense::new(w, b).unwrap();
        let mut z = DMatrix::zeros(0, 0);
        l0.forward_into(&x, &mut z).unwrap();
        Activation::Relu.apply_matrix(&z, &mut input);
        layers.push(Box::new(l0));
        layers.push(Box::new(Activation::Relu));
        din = d1;
    }
    let w = DMatrix::from_fn(d2, din, |_, _| gauss(&mut rng) * 1.5 / (din as f64).sqrt());
    let mut b = DVector::from_fn(d2, |_, _| 0.3 * gauss(&mut rng));
    // Near kinks: b_j = -W_j a_s for one sample, so Z0_js is at rounding level.
    for j in 0..d2 {
        if rng.random_range(0..3) == 0 {
            let s = rng.random_range(0..n);
            b[j] = -(w.row(j) * input.column(s))[0];
        }
    }
    let top = layers.len();
    layers.push(Box::new(Dense::new(w, b).unwrap()));
    layers.push(Box::new(Activation::Relu));
    let w2 = DMatrix::from_fn(k, d2, |_, _| sat * gauss(&mut rng) / (d2 as f64).sqrt());
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
    let mut dir = DVector::zeros(net.num_params());
    let wi = net.param_span(top, "weight").unwrap();
    let bi = net.param_span(top, "bias").unwrap();
    let ds = 10f64.powf(rng.random_range(-2.0..0.5));
    for i in wi.offset..wi.offset + wi.rows * wi.cols {
        dir[i] = ds * gauss(&mut rng);
    }
    for i in bi.offset..bi.offset + bi.rows {
        dir[i] = ds * gauss(&mut rng);
    }
    let amax = 10f64.powf(rng.random_range(-4.0..1.0));
    TCase {
        net,
        loss: Loss {
            kind: LossKind::SoftmaxCrossEntropy,
            reduction,
            l2,
        },
        x,
        y,
        layer: top,
        input,
        dir,
        amax,
    }
}

impl TCase {
    fn bound(&self, value: Option<f64>) -> crate::Result<RayBound<f64>> {
        let dirs = [self.dir.clone()];
        let amax = [self.amax];
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

    /// The driver's record (block MM's `forward_trial` + `data_term` + penalty) at the
    /// weights `apply_step` writes for step `a`.
    fn record(&self, a: f64) -> f64 {
        let mut net = self.net.clone();
        let base = self.net.flat_params();
        apply_step(&mut net, &base, std::slice::from_ref(&self.dir), &[a]).unwrap();
        let (mut z, mut h, mut o, mut g) = (
            DMatrix::zeros(0, 0),
            DMatrix::zeros(0, 0),
            DMatrix::zeros(0, 0),
            DMatrix::zeros(0, 0),
        );
        dense(&net, self.layer)
            .forward_into(&self.input, &mut z)
            .unwrap();
        Activation::Relu.apply_matrix(&z, &mut h);
        dense(&net, self.layer + 2)
            .forward_into(&h, &mut o)
            .unwrap();
        let d = self
            .loss
            .value_and_output_grad(&o, &self.y, &mut g)
            .unwrap();
        d + net.weight_penalty(self.loss.l2)
    }

    /// `psi(a)` with the weights `w + a v`, the layer products and the penalty in
    /// double-double, the log-sum-exp in f64 from the double-double logits.
    fn accurate(&self, a: f64) -> f64 {
        let base = self.net.flat_params();
        let at = |i: usize| dd_add(dd(base[i]), dd_mul(dd(a), dd(self.dir[i])));
        let wi = self.net.param_span(self.layer, "weight").unwrap();
        let bi = self.net.param_span(self.layer, "bias").unwrap();
        let top = dense(&self.net, self.layer + 2);
        let (rows, cols) = (wi.rows, wi.cols);
        let n = self.input.ncols();
        let k = top.weight.nrows();
        let mut data = 0.0;
        for s in 0..n {
            let mut hcol = vec![dd(0.0); rows];
            for (j, hj) in hcol.iter_mut().enumerate() {
                let mut acc = at(bi.offset + j);
                for c in 0..cols {
                    let w = at(wi.offset + j + c * rows);
                    acc = dd_add(acc, dd_mul(w, dd(self.input[(c, s)])));
                }
                *hj = if acc.0 > 0.0 { acc } else { dd(0.0) };
            }
            let mut z = vec![dd(0.0); k];
            for (kk, zk) in z.iter_mut().enumerate() {
                let mut acc = dd(top.bias[kk]);
                for (j, hj) in hcol.iter().enumerate() {
                    acc = dd_add(acc, dd_mul(dd(top.weight[(kk, j)]), *hj));
                }
                *zk = acc;
            }
            let m = z.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
            let se: f64 = z.iter().map(|v| ((v.0 - m) + v.1).exp()).sum();
            let lse = m + se.ln();
            for (kk, zk) in z.iter().enumerate() {
                let yk = match &self.y {
                    Targets::Labels { labels, .. } => f64::from(u8::from(labels[s] == kk)),
                    Targets::Dense(mm) => mm[(kk, s)],
                };
                if yk != 0.0 {
                    data += yk * ((lse - zk.0) - zk.1);
                }
            }
        }
        data *= self.loss.sample_weight(n);
        let mut pen = dd(0.0);
        let mut off = 0;
        for l in 0..self.net.layers().len() {
            let layer = &self.net.layers()[l];
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
}

pub(crate) type Dd = (f64, f64);
pub(crate) fn dd(x: f64) -> Dd {
    (x, 0.0)
}
fn two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}
pub(crate) fn dd_add(a: Dd, b: Dd) -> Dd {
    let (s, e) = two_sum(a.0, b.0);
    let e = e + a.1 + b.1;
    two_sum(s, e)
}
pub(crate) fn dd_mul(a: Dd, b: Dd) -> Dd {
    let p = a.0 * b.0;
    let e = a.0.mul_add(b.0, -p) + (a.0 * b.1 + a.1 * b.0);
    two_sum(p, e)
}

impl TCase {
    /// A case on a one-hidden-layer net (block 0 moves, so its input is the data `x`)
    /// with softmax cross-entropy of the given reduction and L2 weight.
    fn ce(
        net: Sequential<f64>,
        reduction: Reduction,
        l2: f64,
        x: DMatrix<f64>,
        y: Targets<f64>,
        dir: DVector<f64>,
        amax: f64,
    ) -> TCase {
        TCase {
            net,
            loss: Loss {
                kind: LossKind::SoftmaxCrossEntropy,
                reduction,
                l2,
            },
            x: x.clone(),
            y,
            layer: 0,
            input: x,
            dir,
            amax,
        }
    }

    /// Asserts that the driver's record and the double-double `psi` lie under the bound
    /// `b` at every point of `pts` (`what` names the case in a failure); returns the
    /// number of comparisons and the smallest `(bound - x) / slack`.
    fn assert_under(
        &self,
        b: &RayBound<f64>,
        pts: impl IntoIterator<Item = f64>,
        what: &str,
    ) -> (usize, f64) {
        let (mut checked, mut worst) = (0usize, f64::INFINITY);
        for a in pts {
            let ub = b.upper_bound(a).unwrap();
            for x in [self.record(a), self.accurate(a)] {
                assert!(x <= ub, "{what} a {a:e}: {x:e} > {ub:e} ({b:?})");
                worst = worst.min((ub - x) / b.slack);
                checked += 1;
            }
        }
        (checked, worst)
    }
}

/// Points of `(0, ā]`: 40 geometric from `ā 1e-8`, 20 uniform, `ā` and the minimiser.
pub(crate) fn points(b: &RayBound<f64>) -> Vec<f64> {
    let m = b.alpha_max;
    let mut v: Vec<f64> = (0..40)
        .map(|i| m * 10f64.powf(-8.0 * f64::from(i) / 39.0))
        .collect();
    v.extend((1..=20).map(|i| m * f64::from(i) / 20.0));
    v.push(b.minimizer());
    v.iter().map(|a| a.min(m)).collect()
}

#[test]
fn sound_on_random_top_blocks() {
    let (mut checked, mut worst) = (0usize, f64::INFINITY);
    for seed in 0..300u64 {
        let c = random_tcase(seed);
        let r0 = c.record(0.0);
        for value in [Some(r0), None] {
            let b = c.bound(value).unwrap();
            assert!(b.slack.is_finite() && b.slack >= 0.0 && b.curvature >= 0.0);
            let acc0 = c.accurate(0.0);
            for x in [r0, acc0] {
                assert!(
                    (x - b.value).abs() <= b.slack,
                    "seed {seed}: phi(0) {x:e} vs value {:e} slack {:e}",
                    b.value,
                    b.slack
                );
            }
            for a in points(&b) {
                let ub = b.upper_bound(a).unwrap();
                for (what, x) in [("record", c.record(a)), ("accurate", c.accurate(a))] {
                    assert!(
                        x <= ub,
                        "seed {seed} a {a:e}: {what} {x:e} > bound {ub:e} (slack {:e})",
                        b.slack
                    );
                    worst = worst.min((ub - x) / b.slack.max(f64::MIN_POSITIVE));
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50_000, "{checked}");
    eprintln!("checked {checked} points; smallest (bound - phi)/slack {worst:e}");
}

/// The one-sided derivative at `0+` of `psi` built on the driver's `Z0 = fl(W A + b)`:
/// `Σ C_js relu'(Z0_js; P_js) + l2 <W, V>`, `C = W2ᵀ g` from nets' gradient, and the
/// smallest kink distance `|Z0 / P|` over entries with `C != 0`.
fn tangent_derivative(c: &TCase) -> (f64, f64) {
    let (mut z, mut h, mut o, mut g) = (
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
    );
    dense(&c.net, c.layer)
        .forward_into(&c.input, &mut z)
        .unwrap();
    Activation::Relu.apply_matrix(&z, &mut h);
    let top = dense(&c.net, c.layer + 2);
    top.forward_into(&h, &mut o).unwrap();
    c.loss.value_and_output_grad(&o, &c.y, &mut g).unwrap();
    let cm = top.weight.transpose() * &g;
    let wi = c.net.param_span(c.layer, "weight").unwrap();
    let bi = c.net.param_span(c.layer, "bias").unwrap();
    let ds = c.dir.as_slice();
    let v = DMatrix::from_column_slice(
        wi.rows,
        wi.cols,
        &ds[wi.offset..wi.offset + wi.rows * wi.cols],
    );
    let mut p = v * &c.input;
    for mut col in p.column_iter_mut() {
        for j in 0..bi.rows {
            col[j] += ds[bi.offset + j];
        }
    }
    let (mut tot, mut kink) = (0.0, f64::INFINITY);
    for (i, (zz, pp)) in z.iter().zip(p.iter()).enumerate() {
        let d = if *zz > 0.0 {
            *pp
        } else if *zz < 0.0 {
            0.0
        } else {
            pp.max(0.0)
        };
        tot += cm[i] * d;
        if cm[i] != 0.0 {
            kink = kink.min((zz / pp).abs());
        }
    }
    let w = dense(&c.net, c.layer).weight.as_slice();
    let wv: f64 = w.iter().zip(&ds[wi.offset..]).map(|(a, b)| a * b).sum();
    (tot + c.loss.l2 * wv, kink)
}

#[test]
fn slope_tends_to_the_one_sided_derivative() {
    let mut richardson = 0;
    for seed in 0..100u64 {
        let mut c = random_tcase(seed);
        let (deriv, kink) = tangent_derivative(&c);
        let mut prev = f64::INFINITY;
        for e in [-2.0, -4.0, -6.0, -20.0] {
            c.amax = 10f64.powf(e);
            let b = c.bound(None).unwrap();
            // The chord shrinks with the interval (up to the rounding of the sums).
            assert!(b.slope <= prev + 1e-12 * (1.0 + prev.abs()), "seed {seed}");
            prev = b.slope;
            let h = c.amax;
            if e == -20.0 {
                // Below every kink at rounding level (|Z0| >= 1e-17 or exactly 0): the
                // chord/tangent slope is the one-sided derivative.
                assert!(
                    (b.slope - deriv).abs() <= 1e-9 * (1.0 + deriv.abs()),
                    "seed {seed}: slope {:e} vs one-sided derivative {deriv:e}",
                    b.slope
                );
            } else if e == -6.0 && kink > 1e-3 {
                // No kink within 1000 ā: Richardson on the double-double psi,
                // 2 secant(h/2) - secant(h) = the derivative + O(h²).
                let sec = |t: f64| (c.accurate(t) - c.accurate(0.0)) / t;
                let rich = 2.0 * sec(h / 2.0) - sec(h);
                assert!(
                    (b.slope - rich).abs() <= 1e-5 * (1.0 + rich.abs()) + 1e-8,
                    "seed {seed}: slope {:e} vs derivative {rich:e} at ā {h:e}",
                    b.slope
                );
                richardson += 1;
            }
        }
    }
    assert!(richardson >= 20, "{richardson}");
}

mod adversarial;
mod checks;
mod fastpaths;
mod review16;
