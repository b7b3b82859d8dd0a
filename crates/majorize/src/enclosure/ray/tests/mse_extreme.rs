//! Adversarial squared-error cases for the ray bound (written by session 19's review,
//! `review19`).
//! Huge targets and outputs (up to the square's overflow), zero and subnormal
//! residuals, K = 1, N = 1, sum reduction, labels, `ā` from 1e-300 to 1e12, L2
//! penalties; and the accumulation of the mean's unweighted sum (nets divides by `N`
//! only after summing the samples).

use super::*;

/// `x <= y`, false when either is NaN.
fn at_most(x: f64, y: f64) -> bool {
    matches!(
        x.partial_cmp(&y),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

/// Strict check of `b` at `points(b)` plus `ā 2^-i` and neighbours: the record and the
/// double-double value under a finite upper bound, `|phi(0) - value| <= slack`.
/// Returns `Err` with the first violation (which of record / reference), else the
/// number of comparisons.
fn strict(c: &RCase, b: &RayBound<f64>) -> std::result::Result<usize, String> {
    if !b.slack.is_finite() {
        return Ok(0);
    }
    let acc0 = c.accurate(0.0);
    if acc0.is_finite() && !at_most((acc0 - b.value).abs(), b.slack) {
        return Err(format!("phi(0) {acc0:e} vs value {:e} ({b:?})", b.value));
    }
    let m = b.alpha_max;
    let mut pts = points(b);
    for i in 0..40 {
        let a = m * 0.5f64.powi(i);
        pts.extend([a.next_down(), a]);
    }
    let mut k = 0;
    for a in pts.into_iter().filter(|a| *a >= 0.0 && *a <= m) {
        let ub = b.upper_bound(a).unwrap();
        if ub == f64::INFINITY {
            continue;
        }
        for (what, x) in [("record", c.record(a)), ("reference", c.accurate(a))] {
            if !at_most(x, ub) {
                return Err(format!("a {a:e}: {what} {x:e} > {ub:e} ({b:?})"));
            }
            k += 1;
        }
    }
    Ok(k)
}

/// A small net: `nh` hidden ReLU layers (widths 1-5), `K` outputs (1-3), `N` samples
/// (1-5), the block any hidden layer; the output layer scaled by `osc`, the inputs by
/// `xsc`; targets by `mode`: 0 dense `ysc N(0,1)`, 1 labels, 2 the outputs at 0 exactly
/// (zero residual), 3 the outputs at 0 plus `ysc N(0,1)`.
#[allow(clippy::too_many_arguments)]
fn small_case(rng: &mut ChaCha8Rng, osc: f64, xsc: f64, mode: u32, ysc: f64, amax: f64) -> RCase {
    let nh = rng.random_range(1..=3usize);
    let blk = rng.random_range(0..nh);
    let d0 = rng.random_range(1..=3usize);
    let k = if mode == 1 {
        rng.random_range(2..=3usize)
    } else {
        rng.random_range(1..=3usize)
    };
    let n = rng.random_range(1..=5usize);
    let x = DMatrix::from_fn(d0, n, |_, _| xsc * (2.0 * rng.random::<f64>() - 1.0));
    let mut layers: Vec<Box<dyn Layer<f64>>> = Vec::new();
    let (mut h, mut input, mut din) = (x.clone(), x.clone(), d0);
    for i in 0..nh {
        let dw = rng.random_range(1..=5usize);
        let w = DMatrix::from_fn(dw, din, |_, _| gauss(rng) * 1.5 / (din as f64).sqrt());
        let b = DVector::from_fn(dw, |_, _| 0.3 * xsc * gauss(rng));
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
    let w2 = DMatrix::from_fn(k, din, |_, _| osc * gauss(rng) / (din as f64).sqrt());
    let b2 = DVector::from_fn(k, |_, _| osc * 0.2 * gauss(rng));
    let out = Dense::new(w2, b2).unwrap();
    let mut z = DMatrix::zeros(0, 0);
    out.forward_into(&h, &mut z).unwrap();
    layers.push(Box::new(out));
    let net = Sequential::from_layers(layers).unwrap();
    let y = match mode {
        0 => Targets::Dense(DMatrix::from_fn(k, n, |_, _| ysc * gauss(rng))),
        1 => Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..k)).collect(),
            classes: k,
        },
        2 => Targets::Dense(z.clone()),
        _ => Targets::Dense(z.map(|v| v + ysc * gauss(rng))),
    };
    let layer = 2 * blk;
    let mut dir = DVector::zeros(net.num_params());
    let wi = net.param_span(layer, "weight").unwrap();
    let bi = net.param_span(layer, "bias").unwrap();
    let ds = 10f64.powf(rng.random_range(-3.0..1.0));
    for i in (wi.offset..wi.offset + wi.rows * wi.cols).chain(bi.offset..bi.offset + bi.rows) {
        dir[i] = ds * gauss(rng);
    }
    let reduction = if rng.random_range(0..2) == 0 {
        Reduction::Sum
    } else {
        Reduction::Mean
    };
    let l2 = [0.0, 1e-3, 10.0][rng.random_range(0..3)];
    RCase {
        net,
        loss: Loss {
            kind: LossKind::Mse,
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

/// Extreme scales: huge targets (1e8..1e150), outputs up to 1e160 (the square
/// overflows), tiny outputs with subnormal residuals, zero residuals, labels, `ā` in
/// 1e-300..1e12. No record and no double-double value above a finite bound.
#[test]
fn extreme_squared_error_cases() {
    let (mut checked, mut finite, mut bounds) = (0usize, 0usize, 0usize);
    let (mut fails, mut errors) = (Vec::new(), Vec::new());
    for seed in 0..3000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0019_5eed);
        let amax = 10f64.powf(rng.random_range(-300.0..12.0));
        let (osc, xsc, mode, ysc) = match seed % 6 {
            0 => (1.0, 1.0, 0, 10f64.powf(rng.random_range(8.0..150.0))),
            1 => (10f64.powf(rng.random_range(100.0..160.0)), 1.0, 0, 1.0),
            2 => (1.0, 10f64.powf(rng.random_range(-3.0..3.0)), 2, 0.0),
            3 => (1e-300, 1e-5, 3, 1e-310),
            4 => (1.0, 1.0, 1, 1.0),
            _ => (10f64.powf(rng.random_range(-10.0..150.0)), 1.0, 3, 1e-300),
        };
        let c = small_case(&mut rng, osc, xsc, mode, ysc, amax);
        for value in [Some(c.record(0.0)), None] {
            let b = match c.bound(value) {
                Ok(b) => b,
                Err(e) => {
                    if errors.len() < 3 {
                        errors.push(format!("seed {seed} value {value:?}: {e}"));
                    }
                    continue;
                }
            };
            bounds += 1;
            finite += usize::from(b.slack.is_finite());
            match strict(&c, &b) {
                Ok(k) => checked += k,
                Err(e) => fails.push(format!("seed {seed} (mode {}): {e}", seed % 6)),
            }
        }
    }
    println!(
        "review19 extreme: {checked} comparisons, {finite} of {bounds} bounds finite, {} violations",
        fails.len()
    );
    for e in &errors {
        println!("  error: {e}");
    }
    for f in fails.iter().take(10) {
        println!("  {f}");
    }
    assert!(fails.is_empty());
}

/// nets' `Mean` sums the samples' losses unweighted and divides by `N` afterwards, so
/// the record overflows to +inf once `Σ_s ℓ_s > MAX`, while every term of the bound is
/// weighted per sample (`lsum = Σ_s w lup_s`) and stays finite: N = 3 samples of
/// `½ ((1 + a) 1e154)²` each, `ā = 0.2`. Found by the review with a finite bound under
/// the record `+inf` at `a = 0.1`; since the fix the bound checks the unweighted sum
/// (`unweighted_sum_finite`) and its slack is infinite here (it certifies nothing).
#[test]
fn the_mean_overflows_before_its_division() {
    let n = 3;
    let x = DMatrix::from_element(1, n, 1e154);
    let layers: Vec<Box<dyn Layer<f64>>> = vec![
        Box::new(Dense::new(DMatrix::from_element(1, 1, 1.0), DVector::zeros(1)).unwrap()),
        Box::new(Activation::Relu),
        Box::new(Dense::new(DMatrix::from_element(1, 1, 1.0), DVector::zeros(1)).unwrap()),
    ];
    let net = Sequential::from_layers(layers).unwrap();
    let mut dir = DVector::zeros(net.num_params());
    dir[0] = 1.0; // the block's weight
    let mut c = RCase {
        net,
        loss: Loss::new(LossKind::Mse, Reduction::Mean),
        x: x.clone(),
        y: Targets::Dense(DMatrix::zeros(1, n)),
        layer: 0,
        input: x,
        dir,
        amax: 0.2,
    };
    let a = 0.1;
    assert_eq!(c.record(a), f64::INFINITY);
    let b = c.bound(None).unwrap();
    assert_eq!(b.slack, f64::INFINITY, "{b:?}");
    // A shorter ray whose losses stay summable keeps a finite, sound bound.
    c.amax = 1e-3;
    let b = c.bound(None).unwrap();
    assert!(b.slack.is_finite(), "{b:?}");
    assert!(c.check(&b, points(&b)).0.is_none());
}

/// The outputs of `c`'s net at `a = 0` from the block's input (`K x N`).
fn outputs0(c: &RCase) -> DMatrix<f64> {
    let nl = c.net.layers().len();
    let (mut h, mut z) = (c.input.clone(), DMatrix::zeros(0, 0));
    for l in (c.layer..nl).step_by(2) {
        dense(&c.net, l).forward_into(&h, &mut z).unwrap();
        if l + 1 < nl {
            Activation::Relu.apply_matrix(&z, &mut h);
        }
    }
    z
}

/// The random deep nets of the session's tests (2-4 hidden layers, near-kink
/// pre-activations, N up to 300 on every tenth), under squared error with targets
/// that are huge (1e8..1e150), the outputs themselves (zero residual), or the outputs
/// within a few ulps; sum or mean; `ā` in 1e-300..1e12.
#[test]
fn deep_nets_with_extreme_targets() {
    let (mut checked, mut finite) = (0usize, 0usize);
    let mut fails = Vec::new();
    for seed in 0..600u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0019_0019);
        let c0 = random_rcase_with(
            20_000 + seed,
            if seed % 10 == 0 { 300 } else { 10 },
            4,
            (-4.0, 1.0),
            30.0,
        );
        let mut c = to_mse(c0, seed);
        let (k, n) = (
            dense(&c.net, c.net.layers().len() - 1).weight.nrows(),
            c.x.ncols(),
        );
        let z = outputs0(&c);
        c.y = match seed % 3 {
            0 => {
                let sc = 10f64.powf(rng.random_range(8.0..150.0));
                Targets::Dense(DMatrix::from_fn(k, n, |_, _| sc * gauss(&mut rng)))
            }
            1 => Targets::Dense(z),
            _ => Targets::Dense(z.map(|v| {
                let mut w = v;
                for _ in 0..rng.random_range(0..4) {
                    w = if rng.random_bool(0.5) {
                        w.next_up()
                    } else {
                        w.next_down()
                    };
                }
                w
            })),
        };
        if rng.random_bool(0.5) {
            c.loss.reduction = Reduction::Sum;
        }
        c.amax = 10f64.powf(rng.random_range(-300.0..12.0));
        for value in [Some(c.record(0.0)), None] {
            let Ok(b) = c.bound(value) else { continue };
            finite += usize::from(b.slack.is_finite());
            match strict(&c, &b) {
                Ok(m) => checked += m,
                Err(e) => fails.push(format!("seed {seed}: {e}")),
            }
        }
    }
    println!(
        "review19 deep extreme targets: {checked} comparisons, {finite} of 1200 bounds finite, {} violations",
        fails.len()
    );
    for f in fails.iter().take(10) {
        println!("  {f}");
    }
    assert!(fails.is_empty());
}
