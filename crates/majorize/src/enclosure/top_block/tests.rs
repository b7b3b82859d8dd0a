//! Tests of the top block's chord/tangent bound: soundness against the driver's record
//! and a double-double evaluation on random small nets, the slope's limit, the two
//! mutations (no slack; tangent where `C > 0`), the unsupported configurations, and a
//! comparison with the Taylor enclosure (printed).

use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::*;
#[allow(unused_imports)]
use super::bound::{KNOBS, Knobs};

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

type Dd = (f64, f64);
fn dd(x: f64) -> Dd {
    (x, 0.0)
}
fn two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}
fn dd_add(a: Dd, b: Dd) -> Dd {
    let (s, e) = two_sum(a.0, b.0);
    let e = e + a.1 + b.1;
    two_sum(s, e)
}
fn dd_mul(a: Dd, b: Dd) -> Dd {
    let p = a.0 * b.0;
    let e = a.0.mul_add(b.0, -p) + (a.0 * b.1 + a.1 * b.0);
    two_sum(p, e)
}

/// Points of `(0, ā]`: 40 geometric from `ā 1e-8`, 20 uniform, `ā` and the minimiser.
fn points(b: &RayBound<f64>) -> Vec<f64> {
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

/// Runs `f` with the mutation knobs set, restoring the sound setting afterwards.
fn with_knobs<R>(k: Knobs, f: impl FnOnce() -> R) -> R {
    KNOBS.with(|c| c.set(k));
    let r = f();
    KNOBS.with(|c| {
        c.set(Knobs {
            zero_slack: false,
            tangent_everywhere: false,
        })
    });
    r
}

/// The block gradient `(C ∘ relu'(Z0)) Aᵀ + l2 W`, `rowsum(C ∘ relu'(Z0))` as a flat
/// direction (its negative: the steepest descent on the block).
fn minus_block_gradient(c: &TCase) -> DVector<f64> {
    let (mut z, mut h, mut o, mut g) = (
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
    );
    let d = dense(&c.net, c.layer);
    d.forward_into(&c.input, &mut z).unwrap();
    Activation::Relu.apply_matrix(&z, &mut h);
    let top = dense(&c.net, c.layer + 2);
    top.forward_into(&h, &mut o).unwrap();
    c.loss.value_and_output_grad(&o, &c.y, &mut g).unwrap();
    let mut cm = top.weight.transpose() * &g;
    cm.zip_apply(&z, |x, zz| {
        if zz <= 0.0 {
            *x = 0.0
        }
    });
    let gw = &cm * c.input.transpose() + &d.weight * c.loss.l2;
    let gb = cm.column_sum();
    let wi = c.net.param_span(c.layer, "weight").unwrap();
    let bi = c.net.param_span(c.layer, "bias").unwrap();
    let mut dir = DVector::zeros(c.net.num_params());
    for (i, x) in gw.iter().enumerate() {
        dir[wi.offset + i] = -x;
    }
    for (i, x) in gb.iter().enumerate() {
        dir[bi.offset + i] = -x;
    }
    dir
}

/// A decrease at rounding level: the biases are ~1e3 and the step moves only them, by
/// less than a quarter ulp, so `apply_step` leaves every weight unchanged and the
/// driver's record does not move, while the exact-arithmetic bound promises a decrease
/// of order 1e-14. With the slack forced to 0 the bound is violated; with it, it holds.
#[test]
fn zero_slack_is_violated_by_a_rounding_level_step() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (d0, d1, k, n) = (3, 4, 3, 6);
    let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
    let w = DMatrix::from_fn(d1, d0, |_, _| gauss(&mut rng));
    let b = DVector::from_fn(d1, |_, _| 1000.0 + gauss(&mut rng));
    let w2 = DMatrix::from_fn(k, d1, |_, _| gauss(&mut rng));
    let l0 = Dense::new(w, b).unwrap();
    let mut z = DMatrix::zeros(0, 0);
    l0.forward_into(&x, &mut z).unwrap();
    let mean = (&w2 * &z).column_mean();
    let b2 = -mean;
    let net = Sequential::from_layers(vec![
        Box::new(l0) as Box<dyn Layer<f64>>,
        Box::new(Activation::Relu),
        Box::new(Dense::new(w2, b2).unwrap()),
    ])
    .unwrap();
    let mut c = TCase {
        net,
        loss: Loss {
            kind: LossKind::SoftmaxCrossEntropy,
            reduction: Reduction::Mean,
            l2: 0.0,
        },
        y: Targets::Labels {
            labels: (0..n).map(|s| s % k).collect(),
            classes: k,
        },
        input: x.clone(),
        x,
        layer: 0,
        dir: DVector::zeros(0),
        amax: 1.0,
    };
    let mut dir = minus_block_gradient(&c);
    let bi = c.net.param_span(0, "bias").unwrap();
    for i in 0..bi.offset {
        dir[i] = 0.0;
    }
    let bmax = (0..bi.rows)
        .map(|j| dir[bi.offset + j].abs())
        .fold(0.0, f64::max);
    c.dir = dir;
    // A quarter ulp of 1000 - |gauss|, over the largest bias step.
    c.amax = 2f64.powi(-45) / 4.0 / bmax;
    let r0 = c.record(0.0);
    assert_eq!(c.record(c.amax), r0, "the step must not change the weights");
    let sound = c.bound(Some(r0)).unwrap();
    let cut = with_knobs(
        Knobs {
            zero_slack: true,
            tangent_everywhere: false,
        },
        || c.bound(Some(r0)).unwrap(),
    );
    let promised = sound.slope * c.amax + sound.curvature * c.amax * c.amax;
    eprintln!(
        "rounding-level step: promised change {promised:e}, slack {:e}",
        sound.slack
    );
    assert!(promised < -1e-15, "{promised:e}");
    assert!(
        cut.upper_bound(c.amax).unwrap() < r0,
        "no violation without slack"
    );
    assert!(sound.upper_bound(c.amax).unwrap() >= r0);
}

/// With the chord replaced by the tangent where `C > 0`, some random case is violated
/// (a ReLU entry that crosses its kink upwards where the loss grows with it); the
/// sound bound holds on the same points.
#[test]
fn tangent_instead_of_chord_is_violated() {
    let mut violated = 0;
    for seed in 0..300u64 {
        let mut c = random_tcase(seed);
        c.amax *= 10.0;
        let r0 = c.record(0.0);
        let sound = c.bound(Some(r0)).unwrap();
        let cut = with_knobs(
            Knobs {
                zero_slack: false,
                tangent_everywhere: true,
            },
            || c.bound(Some(r0)).unwrap(),
        );
        for a in points(&sound) {
            let x = c.record(a);
            assert!(x <= sound.upper_bound(a).unwrap(), "seed {seed} a {a:e}");
            if x > cut.upper_bound(a).unwrap() {
                violated += 1;
                break;
            }
        }
    }
    eprintln!("tangent-only bound violated on {violated} of 300 cases");
    assert!(violated >= 5, "{violated}");
}

fn is_unsupported(r: crate::Result<RayBound<f64>>) -> bool {
    matches!(r, Err(crate::MajorizeError::Unsupported(_)))
}

#[test]
fn unsupported_configurations_say_so() {
    // A two-block case (top block = layer 2) and a one-block case (layer 0).
    let two = (0..50u64).map(random_tcase).find(|c| c.layer == 2).unwrap();
    let one = (0..50u64).map(random_tcase).find(|c| c.layer == 0).unwrap();
    assert!(two.bound(None).is_ok() && one.bound(None).is_ok());
    // Direction nonzero below the block, or on the output layer.
    let mut c = two.clone();
    c.dir[0] = 1.0;
    assert!(is_unsupported(c.bound(None)));
    let mut c = two.clone();
    let last = c.dir.len() - 1;
    c.dir[last] = 1.0;
    assert!(is_unsupported(c.bound(None)));
    // Two layers above the moving block: start at layer 0 of the two-block net.
    let mut c = two.clone();
    c.layer = 0;
    c.input = c.x.clone();
    c.dir.fill(0.0);
    c.dir[0] = 1.0;
    assert!(is_unsupported(c.bound(None)));
    // MSE loss.
    let mut c = one.clone();
    let k = dense(&c.net, 2).weight.nrows();
    c.loss.kind = LossKind::Mse;
    c.y = Targets::Dense(DMatrix::zeros(k, c.x.ncols()));
    assert!(is_unsupported(c.bound(None)));
    // A tanh block.
    let mut layers: Vec<Box<dyn Layer<f64>>> = Vec::new();
    for (i, l) in one.net.layers().iter().enumerate() {
        if i == 1 {
            layers.push(Box::new(Activation::Tanh));
        } else {
            layers.push(Box::new(l.as_dense().unwrap().clone()));
        }
    }
    let mut c = one.clone();
    c.net = Sequential::from_layers(layers).unwrap();
    assert!(is_unsupported(c.bound(None)));
    // Two directions.
    let dirs = [one.dir.clone(), one.dir.clone()];
    let amax = [1.0, 1.0];
    let req = EnclosureRequest {
        net: &one.net,
        loss: &one.loss,
        inputs: &one.x,
        targets: &one.y,
        directions: &dirs,
        alpha_max: &amax,
    };
    let from = FromLayer {
        layer: 0,
        input: &one.input,
        output: None,
        output_dir: None,
    };
    let r = enclose_top_block(&req, None, &from, &mut TopBlockWorkspace::new());
    assert!(is_unsupported(r));
    // f32.
    let layers32: Vec<Box<dyn Layer<f32>>> =
        one.net
            .layers()
            .iter()
            .map(|l| match l.as_dense() {
                Some(d) => Box::new(
                    Dense::new(d.weight.map(|x| x as f32), d.bias.map(|x| x as f32)).unwrap(),
                ) as Box<dyn Layer<f32>>,
                None => Box::new(Activation::Relu),
            })
            .collect();
    let net32 = Sequential::from_layers(layers32).unwrap();
    let x32 = one.x.map(|x| x as f32);
    let y32 = match &one.y {
        Targets::Labels { labels, classes } => Targets::Labels {
            labels: labels.clone(),
            classes: *classes,
        },
        Targets::Dense(m) => Targets::Dense(m.map(|x| x as f32)),
    };
    let dirs32 = [one.dir.map(|x| x as f32)];
    let amax32 = [1.0f32];
    let req = EnclosureRequest {
        net: &net32,
        loss: &one.loss,
        inputs: &x32,
        targets: &y32,
        directions: &dirs32,
        alpha_max: &amax32,
    };
    let from = FromLayer {
        layer: 0,
        input: &x32,
        output: None,
        output_dir: None,
    };
    let r = enclose_top_block(&req, None, &from, &mut TopBlockWorkspace::new());
    assert!(matches!(r, Err(crate::MajorizeError::Unsupported(_))));
}

/// The given products `Z0` (`from.output`) and `P` (`from.output_dir`) give the same
/// bound as the recomputed ones when they are the same numbers, and a wrong `Z0` is
/// refused; a workspace reused across shapes gives bit-identical results.
#[test]
fn given_products_and_workspace_reuse() {
    let mut ws = TopBlockWorkspace::new();
    for seed in 0..20u64 {
        let c = random_tcase(seed);
        let own = c.bound(None).unwrap();
        let d = dense(&c.net, c.layer);
        let mut z = DMatrix::zeros(0, 0);
        d.forward_into(&c.input, &mut z).unwrap();
        let wi = c.net.param_span(c.layer, "weight").unwrap();
        let bi = c.net.param_span(c.layer, "bias").unwrap();
        let ds = c.dir.as_slice();
        let v = DMatrix::from_column_slice(
            wi.rows,
            wi.cols,
            &ds[wi.offset..wi.offset + wi.rows * wi.cols],
        );
        let mut p = DMatrix::zeros(wi.rows, c.input.ncols());
        p.gemm(1.0, &v, &c.input, 0.0);
        for mut col in p.column_iter_mut() {
            for j in 0..bi.rows {
                col[j] += ds[bi.offset + j];
            }
        }
        let dirs = [c.dir.clone()];
        let amax = [c.amax];
        let req = EnclosureRequest {
            net: &c.net,
            loss: &c.loss,
            inputs: &c.x,
            targets: &c.y,
            directions: &dirs,
            alpha_max: &amax,
        };
        let from = FromLayer {
            layer: c.layer,
            input: &c.input,
            output: Some(&z),
            output_dir: Some(&p),
        };
        let given = enclose_top_block(&req, None, &from, &mut ws).unwrap();
        assert_eq!(given, own, "seed {seed}");
        let mut bad = z.clone();
        bad[(0, 0)] += 1e-3 * (1.0 + bad[(0, 0)].abs());
        let from_bad = FromLayer {
            output: Some(&bad),
            ..from
        };
        assert!(enclose_top_block(&req, None, &from_bad, &mut ws).is_err());
    }
}

/// Against the Taylor enclosure (`enclose_from_layer`, as block MM calls it) along the
/// negative block gradient at a few trust regions: prints both best certified decreases
/// (the smallest upper bound minus the value) and the slack; asserts only soundness of
/// both at the ray bound's minimiser.
#[test]
fn against_the_taylor_enclosure() {
    let (mut wins, mut total) = (0, 0);
    let mut ratios = Vec::new();
    for seed in 0..40u64 {
        let mut c = random_tcase(seed);
        c.dir = minus_block_gradient(&c);
        let gn = c.dir.norm();
        if gn == 0.0 {
            continue;
        }
        let r0 = c.record(0.0);
        for scale in [1e-2, 1e-1, 1.0, 10.0] {
            c.amax = scale / gn;
            let ray = c.bound(Some(r0)).unwrap();
            let dirs = [c.dir.clone()];
            let amax = [c.amax];
            let req = EnclosureRequest {
                net: &c.net,
                loss: &c.loss,
                inputs: &c.x,
                targets: &c.y,
                directions: &dirs,
                alpha_max: &amax,
            };
            let from = FromLayer {
                layer: c.layer,
                input: &c.input,
                output: None,
                output_dir: None,
            };
            let tay =
                enclose_from_layer(&req, Some(r0), &from, &mut EnclosureWorkspace::new()).unwrap();
            let (g, q) = (tay.gradient[0], tay.quad_upper[(0, 0)]);
            let vert = if q > 0.0 {
                (-g / (2.0 * q)).clamp(0.0, c.amax)
            } else {
                c.amax
            };
            let t_best = [vert, c.amax]
                .iter()
                .map(|a| tay.upper_bound(&[*a]).unwrap() - r0)
                .fold(0.0, f64::min);
            let am = ray.minimizer();
            let r_best = (ray.upper_bound(am).unwrap() - r0).min(0.0);
            assert!(c.record(am) <= ray.upper_bound(am).unwrap());
            total += 1;
            if r_best <= t_best {
                wins += 1;
            }
            if t_best < 0.0 {
                ratios.push(r_best / t_best);
            }
            if seed < 6 {
                eprintln!(
                    "seed {seed} ā·|g| {scale:e}: Taylor {t_best:e}, ray {r_best:e} (slack {:e}, Taylor slack {:e})",
                    ray.slack, tay.slack
                );
            }
        }
    }
    ratios.sort_by(f64::total_cmp);
    let med = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!(
        "ray bound's decrease >= Taylor's in {wins} of {total}; ratio ray/Taylor where Taylor decreases: min {:e} median {med:e} max {:e} ({} cases)",
        ratios.first().copied().unwrap_or(f64::NAN),
        ratios.last().copied().unwrap_or(f64::NAN),
        ratios.len()
    );
    assert!(total >= 100);
}
