//! Adversarial soundness tests of `majorize::enclosure` (issue #11), through the public API
//! only. The claim under test: for every `alpha` in the box, `lower_bound(alpha) <=
//! phî(alpha) <= upper_bound(alpha)`, where `phî` is what nets computes in `T` at the
//! weights written by `apply_step` — both `Sequential::objective` and the solvers'
//! driver record `Loss::value(predict).to_f64() + weight_penalty(l2)`
//! (crates/solvers/src/net_problem.rs `evaluate`).
//!
//! Two groups:
//! - `counterexample_*` (ignored): hand-built cases where the claim fails in this
//!   revision; each states the numbers. Run with `--ignored` to see them fail.
//! - `regression_*`: seeded random stress cases (f32/f64, extreme scales, kinks, saturated
//!   softmax, tiny and huge trust regions, dependent directions); they must find nothing.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use majorize::enclosure::{EnclosureRequest, QuadraticEnclosure, apply_step, enclose};

/// One problem instance.
struct Case<T: Real> {
    net: Sequential<T>,
    loss: Loss,
    x: DMatrix<T>,
    y: Targets<T>,
    dirs: Vec<DVector<T>>,
    amax: Vec<T>,
}

/// A violation found at `alpha`.
#[derive(Debug)]
struct Violation {
    alpha: Vec<f64>,
    what: &'static str,
    bound: f64,
    actual: f64,
    slack: f64,
}

impl<T: Real> Case<T> {
    fn enclose(&self) -> majorize::Result<QuadraticEnclosure<T>> {
        enclose(&EnclosureRequest {
            net: &self.net,
            loss: &self.loss,
            inputs: &self.x,
            targets: &self.y,
            directions: &self.dirs,
            alpha_max: &self.amax,
        })
    }

    /// `(Sequential::objective, driver record)` at the weights `apply_step` writes.
    fn objectives(&self, alpha: &[T]) -> (f64, f64) {
        let mut net = self.net.clone();
        let base = self.net.flat_params();
        apply_step(&mut net, &base, &self.dirs, alpha).expect("apply_step");
        let obj = net
            .objective(&self.loss, &self.x, &self.y)
            .map_or(f64::NAN, |v| v.to_f64());
        let drv = net
            .predict(&self.x)
            .ok()
            .and_then(|o| self.loss.value(&o, &self.y).ok())
            .map_or(f64::NAN, |v| v.to_f64())
            + net.weight_penalty(self.loss.l2);
        (obj, drv)
    }

    /// Checks the bounds at `alpha` against both evaluation paths. A non-finite
    /// objective is a violation unless the bound is `+inf`. At `alpha = 0` the driver
    /// record is exempt (documented: it may differ from `value` by one rounding to `T`).
    fn check_at(&self, enc: &QuadraticEnclosure<T>, alpha: &[T], out: &mut Vec<Violation>) {
        let ub = enc.upper_bound(alpha).expect("alpha in box").to_f64();
        let lb = enc.lower_bound(alpha).expect("alpha in box").to_f64();
        let (obj, drv) = self.objectives(alpha);
        let zero = alpha.iter().all(|a| *a == T::zero());
        let a64: Vec<f64> = alpha.iter().map(|a| a.to_f64()).collect();
        let mut push = |what, bound, actual| {
            out.push(Violation {
                alpha: a64.clone(),
                what,
                bound,
                actual,
                slack: enc.slack.to_f64(),
            })
        };
        let ok_up = |v: f64| v <= ub || ub == f64::INFINITY;
        let ok_lo = |v: f64| v >= lb || lb == f64::NEG_INFINITY;
        if !ok_up(obj) {
            push("objective > upper_bound", ub, obj);
        }
        if !ok_lo(obj) {
            push("objective < lower_bound", lb, obj);
        }
        if !zero {
            if !ok_up(drv) {
                push("driver record > upper_bound", ub, drv);
            }
            if !ok_lo(drv) {
                push("driver record < lower_bound", lb, drv);
            }
        }
    }

    /// Corners, edges, random points, tiny steps and a 1-D grid towards the bound's
    /// minimiser along the diagonal.
    fn sweep(&self, enc: &QuadraticEnclosure<T>, rng: &mut ChaCha8Rng, out: &mut Vec<Violation>) {
        let k = self.amax.len();
        let am: Vec<f64> = self.amax.iter().map(|a| a.to_f64()).collect();
        let mut pts: Vec<Vec<f64>> = Vec::new();
        if k <= 5 {
            for mask in 0..(1usize << k) {
                pts.push(
                    (0..k)
                        .map(|i| if mask >> i & 1 == 1 { am[i] } else { 0.0 })
                        .collect(),
                );
            }
        }
        for f in [1e-12, 1e-6, 0.5] {
            pts.push(am.iter().map(|a| a * f).collect());
        }
        for _ in 0..6 {
            pts.push(am.iter().map(|a| a * rng.random::<f64>()).collect());
        }
        // Fine grid near the minimiser of the 1-D bound along each axis.
        for i in 0..k {
            let g = enc.gradient[i].to_f64();
            let q = enc.quad_upper[(i, i)].to_f64();
            let t = if q > 0.0 {
                (-g / (2.0 * q)).clamp(0.0, am[i])
            } else {
                am[i]
            };
            for s in [0.9, 0.99, 1.0, 1.01, 1.1] {
                let mut p = vec![0.0; k];
                p[i] = (t * s).clamp(0.0, am[i]);
                pts.push(p);
            }
        }
        for p in pts {
            let a: Vec<T> = p
                .iter()
                .zip(&self.amax)
                .map(|(v, m)| {
                    let t = T::of(*v);
                    if t > *m { *m } else { t }
                })
                .collect();
            self.check_at(enc, &a, out);
        }
    }
}

fn dense<T: Real>(w: &[f64], rows: usize, cols: usize, b: &[f64]) -> Box<dyn Layer<T>> {
    let wm = DMatrix::from_row_slice(rows, cols, w).map(T::of);
    let bv = DVector::from_column_slice(b).map(T::of);
    Box::new(Dense::new(wm, bv).expect("dense"))
}

fn mse_sum() -> Loss {
    Loss::new(LossKind::Mse, Reduction::Sum)
}

fn report<T: Real>(c: &Case<T>, alpha: &[T]) -> Vec<Violation> {
    let enc = c.enclose().expect("enclose");
    let mut v = Vec::new();
    c.check_at(&enc, alpha, &mut v);
    for x in &v {
        eprintln!(
            "{}: alpha {:?}: bound {:e}, actual {:e}, excess {:e}, slack {:e}",
            x.what,
            x.alpha,
            x.bound,
            x.actual,
            x.actual - x.bound,
            x.slack
        );
    }
    v
}

/// f32: `alpha * v` underflows inside `apply_step` and rounds *up* to the smallest
/// subnormal; a huge input amplifies the error. `|fl - exact| <= γ (|w| + ᾱ|v|)` (no
/// absolute underflow term) does not cover it. w = 0, x = 2^100, v = 2^-100,
/// alpha = 0.75·2^-49: exact weight 0.75·2^-149, written weight 2^-149, so the output
/// is 2^-49 instead of 0.75·2^-49 and the MSE (target 0) is 2^-99 instead of
/// 0.5625·2^-99, while the bound is ≈ 0.5625·2^-99 + slack (slack ≈ 1e-37).
#[test]
fn counterexample_f32_underflow_in_apply_step() {
    let net = Sequential::from_layers(vec![dense::<f32>(&[0.0], 1, 1, &[0.0])]).unwrap();
    let c = Case {
        net,
        loss: mse_sum(),
        x: DMatrix::from_element(1, 1, 2f32.powi(100)),
        y: Targets::Dense(DMatrix::zeros(1, 1)),
        dirs: vec![DVector::from_vec(vec![2f32.powi(-100), 0.0])],
        amax: vec![2f32.powi(-48)],
    };
    let v = report(&c, &[0.75 * 2f32.powi(-49)]);
    assert!(v.is_empty(), "{v:?}");
}

/// f32: a GEMM product in the driver's forward pass underflows (rounding up to the
/// smallest subnormal) and a large second-layer weight amplifies it: γ_n bounds of a
/// GEMM assume no underflow. Layer 1: h = (2^-40 + alpha)·2^-100, exact at alpha = 0;
/// at alpha = 0.75·2^-49 the exact product is 2^-140 + 0.75·2^-149, stored as
/// 2^-140 + 2^-149. Layer 2: z = 2^120 h, target 2^-20 (MSE exactly 0 at the anchor).
#[test]
fn counterexample_f32_gemm_underflow() {
    let net = Sequential::from_layers(vec![
        dense::<f32>(&[2f64.powi(-40)], 1, 1, &[0.0]),
        dense::<f32>(&[2f64.powi(120)], 1, 1, &[0.0]),
    ])
    .unwrap();
    let mut d = DVector::zeros(4);
    d[0] = 1.0f32;
    let c = Case {
        net,
        loss: mse_sum(),
        x: DMatrix::from_element(1, 1, 2f32.powi(-100)),
        y: Targets::Dense(DMatrix::from_element(1, 1, 2f32.powi(-20))),
        dirs: vec![d],
        amax: vec![2f32.powi(-48)],
    };
    let v = report(&c, &[0.75 * 2f32.powi(-49)]);
    assert!(v.is_empty(), "{v:?}");
}

/// f64, subnormal L2 coefficient: nets computes the penalty as `(0.5 * l2) * Σw²` and
/// `0.5 * 5e-324` rounds to 0, so the recorded penalty is identically 0, while the
/// enclosure's degree-1 term uses `l2 <w, v>` = -5e-24 (its c0 and Q use the rounded
/// 0.5·l2). The data term is identically 0 (input 0, target = bias). At alpha = 1 the
/// upper bound was ≈ -5e-24 < 0 = objective; such an `l2` is now refused.
#[test]
fn subnormal_l2_is_refused_with_a_typed_error() {
    let net = Sequential::from_layers(vec![dense::<f64>(&[1e150], 1, 1, &[0.0])]).unwrap();
    let loss = mse_sum().with_l2(5e-324);
    let x = DMatrix::zeros(1, 1);
    let y = Targets::Dense(DMatrix::zeros(1, 1));
    let dirs = vec![DVector::from_vec(vec![-1e150, 0.0])];
    let req = EnclosureRequest {
        net: &net,
        loss: &loss,
        inputs: &x,
        targets: &y,
        directions: &dirs,
        alpha_max: &[1.0],
    };
    let err = enclose(&req).unwrap_err().to_string();
    assert!(err.contains("l2") && err.contains("2^-1021"), "{err}");
}

/// f32 overflow: `alpha * v = 1e3 * 1e36` overflows to +inf in `apply_step`; the weight
/// multiplies an input that is exactly 0 (a constant-zero feature, as in digits), so the
/// driver's GEMM computes `inf * 0 = NaN` and the objective is NaN, while the enclosure
/// (in f64, where nothing overflows) returns a finite bound.
#[test]
fn counterexample_f32_overflow_in_apply_step() {
    let net = Sequential::from_layers(vec![dense::<f32>(&[0.0, 0.5], 1, 2, &[0.0])]).unwrap();
    let c = Case {
        net,
        loss: mse_sum(),
        x: DMatrix::from_row_slice(2, 1, &[0.0, 1.0]),
        y: Targets::Dense(DMatrix::from_element(1, 1, 0.5)),
        dirs: vec![DVector::from_vec(vec![1e36, 0.0, 0.0])],
        amax: vec![1e3],
    };
    let v = report(&c, &[1e3]);
    assert!(v.is_empty(), "{v:?}");
}

const ACTS: [Activation; 8] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.1 },
    Activation::LeakyRelu { slope: -0.5 },
    Activation::LeakyRelu { slope: 3.0 },
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
];

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn pick<X: Copy>(rng: &mut ChaCha8Rng, xs: &[X]) -> X {
    xs[rng.random_range(0..xs.len())]
}

/// A random stress case. Scales stay inside the range where `α v` and the forward pass
/// neither underflow to subnormals nor overflow in `T` (those regimes are the
/// counterexamples above).
fn stress_case<T: Real>(seed: u64) -> Case<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let depth = rng.random_range(1..=4usize);
    let wide = rng.random_range(0..6) == 0;
    let wmax = if wide { 64 } else { 6 };
    let mut widths: Vec<usize> = (0..=depth).map(|_| rng.random_range(1..=wmax)).collect();
    let kind = pick(
        &mut rng,
        &[
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ],
    );
    if kind == LossKind::SoftmaxCrossEntropy && widths[depth] == 1 {
        widths[depth] = 3;
    }
    let act = pick(&mut rng, &ACTS);
    // 0: plain; 1: exact kinks (zero biases, zero input column); 2: one tiny ulp off the
    // kink; 3: saturated output (logits up to ~1e4); 4: large weights with small
    // differences (cancellation).
    let mode = rng.random_range(0..5);
    let mut layers: Vec<Box<dyn Layer<T>>> = Vec::new();
    for l in 0..depth {
        let (din, dout) = (widths[l], widths[l + 1]);
        let mut s = 1.5 / (din as f64).sqrt();
        if mode == 3 && l + 1 == depth {
            s *= pick(&mut rng, &[40.0, 300.0]);
        }
        let w = DMatrix::from_fn(dout, din, |_, _| {
            let g = gauss(&mut rng) * s;
            T::of(if mode == 4 { 1e3 + g } else { g })
        });
        let b = DVector::from_fn(dout, |_, _| match mode {
            1 => T::zero(),
            2 => T::of(pick(&mut rng, &[1.0, -1.0]) * f64::from(f32::from_bits(1))),
            4 => T::of(-1e3 * din as f64 + gauss(&mut rng)),
            _ => T::of(0.5 * gauss(&mut rng)),
        });
        layers.push(Box::new(Dense::new(w, b).unwrap()));
        if l + 1 < depth {
            layers.push(Box::new(act));
        }
    }
    let net = Sequential::from_layers(layers).unwrap();
    let n = if rng.random_range(0..4) == 0 {
        1
    } else {
        rng.random_range(1..=6usize)
    };
    let scale = pick(&mut rng, &[1.0, 30.0, 1e3]);
    let mut x = DMatrix::from_fn(widths[0], n, |_, _| {
        T::of(if mode == 4 {
            1.0
        } else {
            scale * (2.0 * rng.random::<f64>() - 1.0)
        })
    });
    if mode == 1 || mode == 2 {
        x.column_mut(0).fill(T::zero());
    }
    let kout = widths[depth];
    let y = match kind {
        LossKind::SoftmaxCrossEntropy => match rng.random_range(0..4) {
            // Soft targets of any sign and sum (nets accepts them).
            0 => Targets::Dense(DMatrix::from_fn(kout, n, |_, _| T::of(gauss(&mut rng)))),
            _ => Targets::Labels {
                labels: (0..n).map(|_| rng.random_range(0..kout)).collect(),
                classes: kout,
            },
        },
        LossKind::Logistic if kout == 1 => Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..2)).collect(),
            classes: 2,
        },
        LossKind::Logistic => Targets::Dense(DMatrix::from_fn(kout, n, |_, _| {
            T::of(pick(&mut rng, &[0.0, 1.0, 0.3]))
        })),
        _ => {
            if rng.random_range(0..3) == 0 {
                // MSE exactly 0 at the anchor.
                Targets::Dense(net.predict(&x).unwrap())
            } else {
                Targets::Dense(DMatrix::from_fn(kout, n, |_, _| T::of(gauss(&mut rng))))
            }
        }
    };
    let reduction = pick(&mut rng, &[Reduction::Sum, Reduction::Mean]);
    let l2 = pick(&mut rng, &[0.0, 0.0, 1e-2, 10.0]);
    let loss = Loss::new(kind, reduction).with_l2(l2);
    let p = net.num_params();
    let k = rng.random_range(1..=5usize);
    let dscale = pick(&mut rng, &[1e-6, 1.0, 1e3]);
    let mut dirs: Vec<DVector<T>> = Vec::new();
    for i in 0..k {
        let d = match rng.random_range(0..6) {
            0 if i > 0 => dirs[0].map(|v| v * T::of(-2.0)), // linearly dependent
            1 => DVector::zeros(p),                         // zero direction
            _ => {
                let g = DVector::from_fn(p, |_, _| gauss(&mut rng));
                let nrm = g.norm().max(1e-300);
                g.map(|v| T::of(dscale * v / nrm))
            }
        };
        dirs.push(d);
    }
    let amax = (0..k)
        .map(|_| T::of(pick(&mut rng, &[1e-12, 1e-4, 1e-1, 1.0, 1e3])))
        .collect();
    Case {
        net,
        loss,
        x,
        y,
        dirs,
        amax,
    }
}

/// Runs `cases` seeded stress cases of type `T`; returns (enclosed cases, cases whose
/// bound is finite and within 1e-3 (relative) of the objective at the smallest probe
/// step, violations).
fn run_stress<T: Real>(seed0: u64, cases: u64) -> (usize, usize, Vec<(u64, Violation)>) {
    let mut found = Vec::new();
    let mut checked = 0;
    let mut tight = 0;
    for s in seed0..seed0 + cases {
        let c = stress_case::<T>(s);
        let Ok(enc) = c.enclose() else {
            continue; // typed error (e.g. non-finite derivative): not a soundness issue
        };
        checked += 1;
        let small: Vec<T> = c.amax.iter().map(|a| *a * T::of(1e-6)).collect();
        let ub = enc.upper_bound(&small).map_or(f64::NAN, |v| v.to_f64());
        let (obj, _) = c.objectives(&small);
        if ub.is_finite() && ub - obj <= 1e-3 * (1.0 + obj.abs()) {
            tight += 1;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(s ^ 0x5eed);
        let mut v = Vec::new();
        c.sweep(&enc, &mut rng, &mut v);
        found.extend(v.into_iter().map(|x| (s, x)));
    }
    (checked, tight, found)
}

#[test]
fn regression_stress_f32() {
    let (n, tight, v) = run_stress::<f32>(1_000, 150);
    assert!(n >= 120, "only {n} cases enclosed");
    // Non-vacuity: most bounds are finite and sharp near the anchor.
    eprintln!("{tight} of {n} bounds tight near 0");
    assert!(tight * 2 >= n, "only {tight} of {n} bounds tight near 0");
    assert!(
        v.is_empty(),
        "{} violations, first {:?}",
        v.len(),
        v.first()
    );
}

#[test]
fn regression_stress_f64() {
    let (n, tight, v) = run_stress::<f64>(2_000, 150);
    assert!(n >= 120, "only {n} cases enclosed");
    // Non-vacuity: most bounds are finite and sharp near the anchor.
    eprintln!("{tight} of {n} bounds tight near 0");
    assert!(tight * 2 >= n, "only {tight} of {n} bounds tight near 0");
    assert!(
        v.is_empty(),
        "{} violations, first {:?}",
        v.len(),
        v.first()
    );
}

#[test]
#[ignore = "heavy: 20k stress cases per precision; prints its count"]
fn heavy_stress() {
    let (n32, t32, v32) = run_stress::<f32>(100_000, 20_000);
    let (n64, t64, v64) = run_stress::<f64>(200_000, 20_000);
    eprintln!(
        "heavy_stress: {n32} f32 ({t32} tight near 0) + {n64} f64 ({t64} tight) cases enclosed and checked"
    );
    assert!(
        v32.is_empty(),
        "{} f32 violations, first {:?}",
        v32.len(),
        v32.first()
    );
    assert!(
        v64.is_empty(),
        "{} f64 violations, first {:?}",
        v64.len(),
        v64.first()
    );
}

/// Non-finite or degenerate requests are typed errors, never panics.
#[test]
fn regression_bad_directions_are_typed_errors() {
    let net = Sequential::from_layers(vec![dense::<f32>(&[1.0, 2.0], 1, 2, &[0.5])]).unwrap();
    let x = DMatrix::from_row_slice(2, 1, &[1.0f32, -1.0]);
    let y = Targets::Dense(DMatrix::from_element(1, 1, 0.0f32));
    let loss = mse_sum();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let d = vec![DVector::from_vec(vec![1.0, bad, 0.0])];
        let r = enclose(&EnclosureRequest {
            net: &net,
            loss: &loss,
            inputs: &x,
            targets: &y,
            directions: &d,
            alpha_max: &[1.0],
        });
        assert!(
            matches!(r, Err(majorize::MajorizeError::NonFinite { .. })),
            "{r:?}"
        );
    }
    let d = vec![DVector::from_vec(vec![1.0f32, 0.0, 0.0])];
    for am in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        let r = enclose(&EnclosureRequest {
            net: &net,
            loss: &loss,
            inputs: &x,
            targets: &y,
            directions: &d,
            alpha_max: &[am],
        });
        assert!(r.is_err(), "alpha_max {am}: {r:?}");
    }
    // Zero direction: phi is constant; the bound is value + slack with slack tiny.
    let z = vec![DVector::zeros(3)];
    let enc = enclose(&EnclosureRequest {
        net: &net,
        loss: &loss,
        inputs: &x,
        targets: &y,
        directions: &z,
        alpha_max: &[1e3],
    })
    .unwrap();
    assert_eq!(enc.gradient, vec![0.0]);
    assert!(enc.quad_upper[(0, 0)].abs() <= 1e-6, "{:?}", enc.quad_upper);
    let ub = enc.upper_bound(&[1e3]).unwrap();
    assert!(
        ub >= enc.value && ub - enc.value <= 1e-5,
        "{ub} vs {}",
        enc.value
    );
}

/// MSE with `Targets::Labels { classes: 1 }` on one output: nets reads the one-hot target
/// 1, the enclosure (at cd92ce6) read the label value 0 for any single-row output, so its
/// gradient is wrong and the bound fails away from 0 (z = 1 at the anchor, loss 0; at
/// alpha = 1, z = 0 and the loss is 0.5 while the bound is ≈ 0). Fixed on branch
/// cert-enclosure (a60627d: binary view only for one output with two classes); remove
/// the `ignore` after that merge.
#[test]
fn counterexample_single_class_labels_mse() {
    let net = Sequential::from_layers(vec![dense::<f64>(&[1.0], 1, 1, &[0.0])]).unwrap();
    let c = Case {
        net,
        loss: mse_sum(),
        x: DMatrix::from_element(1, 1, 1.0),
        y: Targets::Labels {
            labels: vec![0],
            classes: 1,
        },
        dirs: vec![DVector::from_vec(vec![-1.0, 0.0])],
        amax: vec![1.0],
    };
    let v = report(&c, &[1.0]);
    assert!(v.is_empty(), "{v:?}");
}
