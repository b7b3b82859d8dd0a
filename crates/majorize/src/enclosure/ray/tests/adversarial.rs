//! Review (session 16, `rayreview`): adversarial cases for the ray bound. Deep nets with
//! large weights (the band's radius blows up, products overflow), cancellation in the
//! centre `W c`, pre-activations exactly on the kink or at rounding level at every
//! layer at once, `-0.0`, `P' = 0`, width 1 and N = 1, huge `ā`, saturated logits,
//! signed soft targets, sum reduction. The check is strict: a record or double-double
//! value that is not finite (or NaN) under a finite upper bound is a violation, and so
//! is `|phi(0) - value| > slack` with a finite slack.

use super::super::super::top_block::tests::{Dd, dd, dd_add, dd_mul};
use super::*;

/// `-x` in double-double.
fn dd_neg(x: Dd) -> Dd {
    (-x.0, -x.1)
}

/// The exact objective as [`RCase::accurate`], but with the log-sum-exp shifted by the
/// largest logit as a double-double (`RCase::accurate` shifts by its high part only, so
/// its low part, up to half an ulp of the logit, enters `exp` unshifted and overflows for
/// logits beyond ~1e19) and each sample's loss summed in double-double.
fn accurate(c: &RCase, a: f64) -> f64 {
    let base = c.net.flat_params();
    let at = |i: usize| dd_add(dd(base[i]), dd_mul(dd(a), dd(c.dir[i])));
    let nl = c.net.layers().len();
    let n = c.input.ncols();
    let mut data = dd(0.0);
    for s in 0..n {
        let mut h: Vec<Dd> = c.input.column(s).iter().map(|x| dd(*x)).collect();
        for l in (c.layer..nl).step_by(2) {
            let wi = c.net.param_span(l, "weight").unwrap();
            let bi = c.net.param_span(l, "bias").unwrap();
            let mut z = vec![dd(0.0); wi.rows];
            for (j, zj) in z.iter_mut().enumerate() {
                let mut acc = at(bi.offset + j);
                for (col, hc) in h.iter().enumerate() {
                    acc = dd_add(acc, dd_mul(at(wi.offset + j + col * wi.rows), *hc));
                }
                *zj = if l + 1 < nl && acc.0 <= 0.0 {
                    dd(0.0)
                } else {
                    acc
                };
            }
            h = z;
        }
        let mx = *h
            .iter()
            .max_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)))
            .unwrap();
        let se: f64 = h
            .iter()
            .map(|v| {
                let d = dd_add(*v, dd_neg(mx));
                (d.0 + d.1).exp()
            })
            .sum();
        let lse = dd_add(mx, dd(se.ln()));
        for (k, zk) in h.iter().enumerate() {
            let yk = match &c.y {
                Targets::Labels { labels, .. } => f64::from(u8::from(labels[s] == k)),
                Targets::Dense(m) => m[(k, s)],
            };
            if yk != 0.0 {
                data = dd_add(data, dd_mul(dd(yk), dd_add(lse, dd_neg(*zk))));
            }
        }
    }
    let data = dd_mul(data, dd(c.loss.sample_weight(n)));
    let mut pen = dd(0.0);
    let mut off = 0;
    for layer in c.net.layers() {
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
    let t = dd_add(data, dd_mul(dd(0.5 * c.loss.l2), pen));
    t.0 + t.1
}

/// The knobs of [`build`].
#[derive(Clone)]
struct Spec {
    /// Hidden widths (the block is hidden layer `blk`).
    widths: Vec<usize>,
    blk: usize,
    din: usize,
    k: usize,
    n: usize,
    /// Scale of each dense layer's weights (hidden ones, then the output layer).
    wscale: Vec<f64>,
    bscale: f64,
    /// Share of the units at and above the block put on the kink for one sample.
    kink: f64,
    /// Kinks at rounding level (`b = -(w·h)` in another order) instead of exact zeros.
    rounding_kinks: bool,
    /// Signed soft targets (rows of mixed sign) instead of labels.
    soft: bool,
    sum: bool,
    l2: f64,
    amax: f64,
    dscale: f64,
    /// Rows of the direction set to exactly zero (`P' = 0` on those units).
    zero_dir_rows: bool,
}

/// A network from `spec` (weights Gaussian times the layer's scale / sqrt(fan-in)).
fn build(spec: &Spec, seed: u64) -> RCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = spec.n;
    let x = DMatrix::from_fn(spec.din, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
    let mut layers: Vec<Box<dyn Layer<f64>>> = Vec::new();
    let (mut h, mut input, mut din) = (x.clone(), x.clone(), spec.din);
    for (i, &dw) in spec.widths.iter().enumerate() {
        let sc = spec.wscale[i] / (din as f64).sqrt();
        let w = DMatrix::from_fn(dw, din, |_, _| sc * gauss(&mut rng));
        let mut b = DVector::from_fn(dw, |_, _| spec.bscale * gauss(&mut rng));
        if i >= spec.blk {
            let mut z = DMatrix::zeros(0, 0);
            Dense::new(w.clone(), DVector::zeros(dw))
                .unwrap()
                .forward_into(&h, &mut z)
                .unwrap();
            for j in 0..dw {
                if rng.random::<f64>() < spec.kink {
                    let s = rng.random_range(0..n);
                    b[j] = if spec.rounding_kinks {
                        -(w.row(j) * h.column(s))[0]
                    } else {
                        -z[(j, s)]
                    };
                }
            }
        }
        if i == spec.blk {
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
    let sc = spec.wscale[spec.widths.len()] / (din as f64).sqrt();
    let w2 = DMatrix::from_fn(spec.k, din, |_, _| sc * gauss(&mut rng));
    let b2 = DVector::from_fn(spec.k, |_, _| 0.2 * gauss(&mut rng));
    layers.push(Box::new(Dense::new(w2, b2).unwrap()));
    let net = Sequential::from_layers(layers).unwrap();
    let y = if spec.soft {
        Targets::Dense(DMatrix::from_fn(spec.k, n, |_, _| 2.0 * gauss(&mut rng)))
    } else {
        Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..spec.k)).collect(),
            classes: spec.k,
        }
    };
    let layer = 2 * spec.blk;
    let mut dir = DVector::zeros(net.num_params());
    let wi = net.param_span(layer, "weight").unwrap();
    let bi = net.param_span(layer, "bias").unwrap();
    let zero_row = |j: usize| spec.zero_dir_rows && j % 2 == 1;
    for c in 0..wi.cols {
        for j in 0..wi.rows {
            if !zero_row(j) {
                dir[wi.offset + j + c * wi.rows] = spec.dscale * gauss(&mut rng);
            }
        }
    }
    for j in 0..bi.rows {
        if !zero_row(j) {
            dir[bi.offset + j] = spec.dscale * gauss(&mut rng);
        }
    }
    RCase {
        net,
        loss: Loss {
            kind: LossKind::SoftmaxCrossEntropy,
            reduction: if spec.sum {
                Reduction::Sum
            } else {
                Reduction::Mean
            },
            l2: spec.l2,
        },
        x,
        y,
        layer,
        input,
        dir,
        amax: spec.amax,
    }
}

thread_local! {
    /// The smallest `(bound - x) / slack` seen by [`strict`] on this thread.
    static MARGIN: std::cell::Cell<f64> = const { std::cell::Cell::new(f64::INFINITY) };
}

/// The smallest `(bound - x) / slack` since the last call (and resets it).
pub(super) fn take_margin() -> f64 {
    MARGIN.with(|m| m.replace(f64::INFINITY))
}

/// `x <= y`, false when either is NaN.
fn at_most(x: f64, y: f64) -> bool {
    matches!(
        x.partial_cmp(&y),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

/// The strict check of one bound at `pts` (and at 0): `Err` with the first violation,
/// else the number of comparisons (0 when the slack is infinite: nothing to check).
pub(super) fn strict(
    c: &RCase,
    b: &RayBound<f64>,
    pts: &[f64],
) -> std::result::Result<usize, String> {
    if !b.slack.is_finite() {
        return Ok(0);
    }
    let acc0 = accurate(c, 0.0);
    if !at_most((acc0 - b.value).abs(), b.slack) {
        return Err(format!("phi(0) {acc0:e} vs value {:e} ({b:?})", b.value));
    }
    let mut k = 0;
    for &a in pts {
        let ub = b.upper_bound(a).unwrap();
        if ub == f64::INFINITY {
            continue;
        }
        for (what, x) in [("record", c.record(a)), ("exact", accurate(c, a))] {
            if !at_most(x, ub) {
                return Err(format!("a {a:e}: {what} {x:e} > {ub:e} ({b:?})"));
            }
            MARGIN.with(|m| m.set(m.get().min((ub - x) / b.slack)));
            k += 1;
        }
    }
    Ok(k)
}

/// `points` plus, near every `ā 2^-i`, its neighbours (`ā` itself down to 1e-12 ā).
pub(super) fn pts_of(b: &RayBound<f64>) -> Vec<f64> {
    let mut v = points(b);
    let m = b.alpha_max;
    for i in 0..40 {
        let a = m * 0.5f64.powi(i);
        v.extend([a.next_down(), a]);
    }
    v.into_iter().filter(|a| *a >= 0.0 && *a <= m).collect()
}

/// Runs `cases` cases of `spec_of(seed)`, given and own value; returns (comparisons,
/// finite bounds, bounds).
fn run(
    name: &str,
    cases: u64,
    spec_of: impl Fn(&mut ChaCha8Rng) -> Spec,
) -> (usize, usize, usize, usize) {
    let (mut checked, mut finite, mut total, mut errors) = (0usize, 0usize, 0usize, 0usize);
    for seed in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_7e57);
        let spec = spec_of(&mut rng);
        let c = build(&spec, seed);
        let r0 = c.record(0.0);
        let values: Vec<Option<f64>> = if r0.is_finite() {
            vec![Some(r0), None]
        } else {
            vec![None]
        };
        for value in values {
            let b = match c.bound(value) {
                Ok(b) => b,
                // A non-finite forward pass at 0 with no given value: a typed error (also
                // when only a hidden pre-activation is -inf, which the ReLU maps to 0, so
                // that the record is finite: documented, valid, useless).
                Err(crate::MajorizeError::NonFinite { .. }) if value.is_none() => {
                    errors += 1;
                    continue;
                }
                Err(e) => panic!("{name} seed {seed}: {e}"),
            };
            total += 1;
            finite += usize::from(b.slack.is_finite());
            match strict(&c, &b, &pts_of(&b)) {
                Ok(k) => checked += k,
                Err(e) => panic!("{name} seed {seed}: {e}"),
            }
        }
    }
    println!(
        "{name}: {checked} comparisons, {finite} of {total} bounds finite, {errors} NonFinite \
         errors; smallest (bound - x)/slack {:.3}",
        take_margin()
    );
    (checked, finite, total, errors)
}

fn base(rng: &mut ChaCha8Rng, nh: usize) -> Spec {
    let widths: Vec<usize> = (0..nh).map(|_| rng.random_range(1..=6usize)).collect();
    Spec {
        blk: rng.random_range(0..nh),
        widths,
        din: rng.random_range(1..=4),
        k: rng.random_range(2..=4),
        n: rng.random_range(1..=6),
        wscale: vec![1.5; nh + 1],
        bscale: 0.3,
        kink: 0.3,
        rounding_kinks: rng.random_range(0..2) == 0,
        soft: rng.random_range(0..3) == 0,
        sum: rng.random_range(0..2) == 0,
        l2: [0.0, 1e-3, 0.1][rng.random_range(0..3)],
        amax: 10f64.powf(rng.random_range(-6.0..1.0)),
        dscale: 10f64.powf(rng.random_range(-2.0..0.5)),
        zero_dir_rows: rng.random_range(0..3) == 0,
    }
}

/// 4-5 hidden layers with weight scales 10^0..10^40 per layer: the bands widen by the
/// product of the scales and overflow for the largest; every bound is either infinite
/// (valid, useless) or holds, never a finite wrong bound.
#[test]
fn deep_nets_with_large_weights() {
    let (checked, finite, total, _) = run("large weights", 300, |rng| {
        let nh = rng.random_range(4..=5);
        let mut s = base(rng, nh);
        s.wscale = (0..=nh)
            .map(|_| 10f64.powf(rng.random_range(0.0..40.0)))
            .collect();
        s.bscale = 10f64.powf(rng.random_range(-1.0..20.0));
        s
    });
    assert!(checked > 10_000 && finite > 0 && finite < total);
}

/// Weights so large that the anchors overflow (`Ẑ0` not finite): a `NonFinite` error
/// without a given value, an infinite slack with one; the bounds that stay finite hold.
#[test]
fn overflowing_anchors() {
    let (_, finite, total, errors) = run("overflowing anchors", 60, |rng| {
        let nh = rng.random_range(3..=5);
        let mut s = base(rng, nh);
        s.wscale = (0..=nh).map(|_| 1e120).collect();
        s
    });
    assert!(errors > 0 && finite < total);
}

/// Cancellation in the centre `W c`: the block's units come in identical pairs (same
/// weights, bias and direction), the layer above has rows `(x, -x(1 + δ))` on each
/// pair with `x` ~1e8 and `δ` ~1e-12, so `W c` cancels to ~1e-4 of `|W| |c|`.
#[test]
fn cancellation_in_the_centre() {
    let mut checked = 0usize;
    for seed in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(77_000 + seed);
        let (din, half, d2, k) = (3usize, 3usize, 4usize, 3usize);
        let n = rng.random_range(1..=5);
        let x = DMatrix::from_fn(din, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
        let w0h = DMatrix::from_fn(half, din, |_, _| gauss(&mut rng));
        let b0h = DVector::from_fn(half, |_, _| 0.3 + 0.1 * gauss(&mut rng));
        let w0 = DMatrix::from_fn(2 * half, din, |j, c| w0h[(j % half, c)]);
        let b0 = DVector::from_fn(2 * half, |j, _| b0h[j % half]);
        let big = 10f64.powf(rng.random_range(4.0..9.0));
        let delta = 10f64.powf(rng.random_range(-14.0..-8.0));
        let w1 = DMatrix::from_fn(d2, 2 * half, |i, j| {
            let x = big * (1.0 + 0.1 * (i as f64 + j as f64 % half as f64));
            if j < half { x } else { -x * (1.0 + delta) }
        });
        // The layer above's biases put its units near their kink at one sample.
        let mut h0 = DMatrix::zeros(0, 0);
        let l0 = Dense::new(w0.clone(), b0.clone()).unwrap();
        l0.forward_into(&x, &mut h0).unwrap();
        let mut a0 = DMatrix::zeros(0, 0);
        Activation::Relu.apply_matrix(&h0, &mut a0);
        let mut z1 = DMatrix::zeros(0, 0);
        Dense::new(w1.clone(), DVector::zeros(d2))
            .unwrap()
            .forward_into(&a0, &mut z1)
            .unwrap();
        let b1 = DVector::from_fn(d2, |i, _| -z1[(i, i % n)] + 1e-3 * gauss(&mut rng));
        let w2 = DMatrix::from_fn(k, d2, |_, _| gauss(&mut rng));
        let layers: Vec<Box<dyn Layer<f64>>> = vec![
            Box::new(l0),
            Box::new(Activation::Relu),
            Box::new(Dense::new(w1, b1).unwrap()),
            Box::new(Activation::Relu),
            Box::new(Dense::new(w2, DVector::zeros(k)).unwrap()),
        ];
        let net = Sequential::from_layers(layers).unwrap();
        let mut dir = DVector::zeros(net.num_params());
        let wi = net.param_span(0, "weight").unwrap();
        let bi = net.param_span(0, "bias").unwrap();
        let vh = DMatrix::from_fn(half, din, |_, _| gauss(&mut rng));
        let bh: Vec<f64> = (0..half).map(|_| gauss(&mut rng)).collect();
        for c in 0..din {
            for j in 0..2 * half {
                dir[wi.offset + j + c * wi.rows] = vh[(j % half, c)];
            }
        }
        for j in 0..2 * half {
            dir[bi.offset + j] = bh[j % half];
        }
        let c = RCase {
            net,
            loss: Loss {
                kind: LossKind::SoftmaxCrossEntropy,
                reduction: Reduction::Mean,
                l2: 0.0,
            },
            x: x.clone(),
            y: Targets::Labels {
                labels: (0..n).map(|s| s % k).collect(),
                classes: k,
            },
            layer: 0,
            input: x,
            dir,
            amax: 10f64.powf(rng.random_range(-16.0..-2.0)),
        };
        for value in [Some(c.record(0.0)), None] {
            let b = c.bound(value).unwrap();
            assert!(b.slack.is_finite(), "seed {seed}: {b:?}");
            match strict(&c, &b, &pts_of(&b)) {
                Ok(m) => checked += m,
                Err(e) => panic!("cancellation seed {seed}: {e}"),
            }
        }
    }
    println!(
        "cancellation in W c: {checked} comparisons; smallest (bound - x)/slack {:.3}",
        take_margin()
    );
    assert!(checked > 40_000);
}

/// Pre-activations exactly on the kink (or at rounding level) at every layer from the
/// block up at once, many units per layer, `P' = 0` rows, `-0.0` anchors (a unit with
/// weights and bias `-0.0`), N = 1 and every width 1, K = 1.
#[test]
fn kinks_everywhere_width_one_and_signed_zeros() {
    let (checked, finite, total, _) = run("kinks everywhere", 300, |rng| {
        let nh = rng.random_range(2..=5);
        let mut s = base(rng, nh);
        s.kink = 1.0;
        if rng.random_range(0..3) == 0 {
            s.widths = vec![1; nh];
            s.din = 1;
            s.n = 1;
        }
        if rng.random_range(0..4) == 0 {
            s.k = 1;
            s.soft = false;
        }
        s.amax = 10f64.powf(rng.random_range(-300.0..12.0));
        s
    });
    assert!(checked > 20_000 && finite == total);
    // Signed zeros: a unit whose row and bias are -0.0 (pre-activation -0.0 at every
    // sample) and a direction that moves it.
    let mut n0 = 0usize;
    for seed in 0..50u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(31_000 + seed);
        let mut s = base(&mut rng, 3);
        s.widths = vec![3, 3, 2];
        s.blk = rng.random_range(0..3);
        let mut c = build(&s, seed);
        for l in (0..6).step_by(2) {
            let w = c.net.param_mut(l, "weight").unwrap();
            for col in 0..w.cols {
                w.values[col * w.rows] = -0.0;
            }
            c.net.param_mut(l, "bias").unwrap().values[0] = -0.0;
        }
        let mut h = c.x.clone();
        for l in (0..c.layer).step_by(2) {
            let mut z = DMatrix::zeros(0, 0);
            dense(&c.net, l).forward_into(&h, &mut z).unwrap();
            Activation::Relu.apply_matrix(&z, &mut h);
        }
        c.input = h;
        for value in [Some(c.record(0.0)), None] {
            let b = c.bound(value).unwrap();
            assert!(b.slack.is_finite());
            match strict(&c, &b, &pts_of(&b)) {
                Ok(m) => n0 += m,
                Err(e) => panic!("signed zeros seed {seed}: {e}"),
            }
        }
    }
    println!(
        "signed zeros: {n0} comparisons; smallest (bound - x)/slack {:.3}",
        take_margin()
    );
    assert!(n0 > 5_000);
}

/// Huge `ā` (1e20..1e300): bands and `ā²` overflow; the bound is infinite or holds.
#[test]
fn huge_alpha_max() {
    let (_, finite, total, _) = run("huge ā", 200, |rng| {
        let nh = rng.random_range(2..=5);
        let mut s = base(rng, nh);
        s.amax = 10f64.powf(rng.random_range(20.0..300.0));
        s
    });
    assert!(total > 0 && finite < total);
}

/// Saturated logits (output weights x1e2..1e4), signed soft targets, sum reduction,
/// deep nets, the block anywhere.
#[test]
fn saturated_signed_soft_sum() {
    let (checked, finite, total, _) = run("saturated soft sum", 300, |rng| {
        let nh = rng.random_range(2..=5);
        let mut s = base(rng, nh);
        s.wscale[nh] = 10f64.powf(rng.random_range(2.0..4.0));
        s.soft = true;
        s.sum = true;
        s.k = rng.random_range(2..=6);
        s
    });
    assert!(checked > 20_000 && finite == total);
}
