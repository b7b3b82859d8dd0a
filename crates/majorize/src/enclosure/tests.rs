//! Property and mutation tests of the enclosure engine: the bound must hold for the
//! objective nets computes at the weights `apply_step` writes, in f32 and f64.

use autodiff::{Real, Tape};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fp::{Knobs, set_knobs};
use super::*;
use crate::{CheckConfig, Objective, Surrogate, SurrogateBuilder, check_surrogate};

const ACTS: [Activation; 6] = [
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

fn gauss<R: Rng>(rng: &mut R) -> f64 {
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

fn no_violation<T: Real>(seed: u64) -> Result<(), TestCaseError> {
    let case = random_case::<T>(seed, None, None);
    let enc = enclose(&case.request()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(
        enc.value,
        case.net.objective(&case.loss, &case.x, &case.y).unwrap()
    );
    prop_assert!(enc.slack >= T::zero());
    let (n, worst) = violations(&case, &enc, seed, 6);
    prop_assert!(
        n == 0,
        "seed {seed} ({}): {n} violations, {worst}",
        T::dtype_name()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn bound_holds_f64(seed in any::<u64>()) { no_violation::<f64>(seed)?; }
    #[test]
    fn bound_holds_f32(seed in any::<u64>()) { no_violation::<f32>(seed)?; }
}

/// phi(alpha) as an [`Objective`] (value at `apply_step(alpha)`, gradient from the tape).
struct AlphaObjective<'a, T: Real> {
    case: &'a Case<T>,
}

impl<T: Real> Objective<T> for AlphaObjective<'_, T> {
    fn dim(&self) -> usize {
        self.case.dirs.len()
    }
    fn value(&self, a: &DVector<T>) -> crate::Result<T> {
        Ok(T::of(self.case.objective_at(a.as_slice()).0))
    }
    fn gradient(&self, a: &DVector<T>, g: &mut DVector<T>) -> crate::Result<()> {
        let mut net = self.case.net.clone();
        let base = self.case.net.flat_params();
        apply_step(&mut net, &base, &self.case.dirs, a.as_slice())?;
        let mut grad = vec![T::zero(); net.num_params()];
        let mut tape = Tape::new();
        nets::loss_and_grad(
            &net,
            &self.case.loss,
            &self.case.x,
            &self.case.y,
            &mut tape,
            &mut grad,
        )
        .unwrap();
        for (i, d) in self.case.dirs.iter().enumerate() {
            g[i] = d.iter().zip(&grad).fold(T::zero(), |s, (a, b)| s + *a * *b);
        }
        Ok(())
    }
}

struct Builder<'a, T: Real> {
    case: &'a Case<T>,
}

impl<T: Real> SurrogateBuilder<T> for Builder<'_, T> {
    type Surrogate = EnclosureSurrogate<T>;
    fn build(&self, _anchor: &DVector<T>) -> crate::Result<Self::Surrogate> {
        Ok(enclose(&self.case.request())?.surrogate())
    }
}

fn contract<T: Real>(seed: u64, tangency_tol: f64) -> Result<(), TestCaseError> {
    let case = random_case::<T>(seed, None, None);
    let obj = AlphaObjective { case: &case };
    let b = Builder { case: &case };
    let k = case.dirs.len();
    let amax = case.amax.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cfg = CheckConfig {
        anchors: 1,
        points_per_anchor: 12,
        ..CheckConfig::default()
    };
    let rep = check_surrogate(
        &obj,
        &b,
        &mut rng,
        |_| DVector::zeros(k),
        |r, _| {
            DVector::from_fn(k, |i, _| {
                let u: f64 = r.random();
                if r.random_range(0..3) == 0 {
                    amax[i]
                } else {
                    T::of(amax[i].to_f64() * u).min(amax[i])
                }
            })
        },
        &cfg,
    )
    .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert!(
        rep.majorization.is_none(),
        "seed {seed}: {:?}",
        rep.majorization
    );
    prop_assert!(rep.touching.is_none(), "seed {seed}: {:?}", rep.touching);
    prop_assert!(rep.descent.is_none(), "seed {seed}: {:?}", rep.descent);
    if case.smooth {
        // Tangency up to rounding noise: the enclosure's f64 derivative against the tape's,
        // with an absolute allowance for cancellation (gradients can vanish to rounding level).
        if let Some(v) = &rep.tangency {
            let f0 = case
                .net
                .objective(&case.loss, &case.x, &case.y)
                .unwrap()
                .to_f64();
            let abs_ok = v.absolute <= 1e-8 * (1.0 + f0.abs());
            prop_assert!(
                v.relative <= tangency_tol || abs_ok,
                "seed {seed}: tangency {:e} (absolute {:e})",
                v.relative,
                v.absolute
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn check_surrogate_passes_f64(seed in any::<u64>()) { contract::<f64>(seed, 1e-6)?; }
    #[test]
    fn check_surrogate_passes_f32(seed in any::<u64>()) { contract::<f32>(seed, f64::INFINITY)?; }
}

/// Every activation and every loss, in both precisions, with kinks and saturation.
#[test]
fn every_activation_and_loss() {
    let mut cases = 0;
    for (ai, act) in ACTS.iter().enumerate() {
        for (li, kind) in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ]
        .iter()
        .enumerate()
        {
            for s in 0..12u64 {
                let seed = 1000 * ai as u64 + 100 * li as u64 + s;
                let c64 = random_case::<f64>(seed, Some(*act), Some(*kind));
                let e64 = enclose(&c64.request()).unwrap();
                let (n, w) = violations(&c64, &e64, seed, 4);
                assert_eq!(n, 0, "f64 {act:?} {kind:?} seed {seed}: {w}");
                let c32 = random_case::<f32>(seed, Some(*act), Some(*kind));
                let e32 = enclose(&c32.request()).unwrap();
                let (n, w) = violations(&c32, &e32, seed, 4);
                assert_eq!(n, 0, "f32 {act:?} {kind:?} seed {seed}: {w}");
                cases += 2;
            }
        }
    }
    assert_eq!(cases, 6 * 3 * 12 * 2);
}

/// >= 1e5 random cases (run with `--ignored --nocapture`); prints the count.
#[test]
#[ignore]
fn hundred_thousand_cases() {
    let mut n = 0usize;
    let mut seed = 0xabcdef;
    while n < 100_000 {
        seed += 1;
        let c = random_case::<f64>(seed, None, None);
        let e = enclose(&c.request()).unwrap();
        assert_eq!(violations(&c, &e, seed, 2).0, 0, "f64 seed {seed}");
        let c = random_case::<f32>(seed, None, None);
        let e = enclose(&c.request()).unwrap();
        assert_eq!(violations(&c, &e, seed, 2).0, 0, "f32 seed {seed}");
        n += 2;
    }
    println!("hundred_thousand_cases: {n} cases, no violation");
}

/// Direction `-grad F` (from the tape), as a one-direction case.
fn descent_case<T: Real>(seed: u64, act: Activation, kind: LossKind) -> Case<T> {
    let mut c = random_case::<T>(seed, Some(act), Some(kind));
    let mut grad = vec![T::zero(); c.net.num_params()];
    let mut tape = Tape::new();
    nets::loss_and_grad(&c.net, &c.loss, &c.x, &c.y, &mut tape, &mut grad).unwrap();
    c.dirs = vec![DVector::from_iterator(grad.len(), grad.iter().map(|g| -*g))];
    c.amax = vec![T::one()];
    c
}

/// The bound is not vacuous: along `-grad F`, some trust region certifies a decrease
/// (`q(alpha*) < F(x)`), and then the true objective does decrease, in f64 and f32.
#[test]
fn certified_decrease_along_negative_gradient() {
    let mut certified = 0;
    let mut total = 0;
    for (ai, act) in ACTS.iter().enumerate() {
        for kind in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ] {
            for s in 0..4u64 {
                let seed = 77 + 10 * ai as u64 + s;
                for f32_case in [false, true] {
                    total += 1;
                    let ok = if f32_case {
                        certify::<f32>(seed, *act, kind)
                    } else {
                        certify::<f64>(seed, *act, kind)
                    };
                    certified += usize::from(ok);
                }
            }
        }
    }
    // Cases where the gradient vanishes to rounding level cannot be certified (f32 mostly);
    // all others must be.
    assert!(
        certified * 10 >= total * 9,
        "only {certified}/{total} cases certified a decrease"
    );
}

fn certify<T: Real>(seed: u64, act: Activation, kind: LossKind) -> bool {
    let mut c = descent_case::<T>(seed, act, kind);
    let gn: f64 = c.dirs[0].iter().map(|v| v.to_f64() * v.to_f64()).sum();
    if gn == 0.0 {
        return true;
    }
    for j in 0..14 {
        c.amax = vec![T::of(10f64.powi(-j) / gn.sqrt().max(1e-300))];
        let Ok(enc) = enclose(&c.request()) else {
            continue;
        };
        let m = enc
            .surrogate()
            .minimize(&crate::InnerSolve::default())
            .unwrap();
        let a = m.point[0];
        if a > T::zero() {
            let ub = enc.upper_bound(&[a]).unwrap();
            assert!(ub < enc.value);
            let (f, d) = c.objective_at(&[a]);
            assert!(f <= ub.to_f64() && d <= ub.to_f64());
            assert!(f < enc.value.to_f64(), "certified step did not decrease");
            return true;
        }
    }
    false
}

/// Mutation test: halving the softplus remainder interval is caught.
#[test]
fn halved_remainder_is_caught() {
    set_knobs(Knobs {
        rounding: true,
        remainder_scale: 0.5,
        scaled: Some("softplus"),
    });
    let mut found = 0;
    for seed in 0..200u64 {
        let mut c = random_case::<f64>(seed, Some(Activation::Softplus), Some(LossKind::Mse));
        c.amax.iter_mut().for_each(|a| *a = 0.3);
        let e = enclose(&c.request()).unwrap();
        found += violations(&c, &e, seed, 4).0;
        if found > 0 {
            break;
        }
    }
    set_knobs(Knobs {
        rounding: true,
        remainder_scale: 1.0,
        scaled: None,
    });
    assert!(found > 0, "halving the softplus remainder went unnoticed");
}

/// A case built to need rounding: f32, large cancelling inputs, tiny steps, so the
/// driver's rounding changes the objective more than the exact-arithmetic bound allows.
fn cancellation_case(seed: u64) -> Case<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = 16;
    let w = DMatrix::from_fn(1, d, |_, _| 1.0f32 + rng.random::<f32>());
    let net = Sequential::from_layers(vec![
        Box::new(Dense::new(w, DVector::zeros(1)).unwrap()) as Box<dyn Layer<f32>>
    ])
    .unwrap();
    let x = DMatrix::from_fn(
        d,
        4,
        |i, _| if i % 2 == 0 { 1e4 } else { -1e4 } * (1.0 + 1e-3 * rng.random::<f32>()),
    );
    let out = net.predict(&x).unwrap();
    let y = Targets::Dense(out.map(|v| v + 0.5));
    let p = net.num_params();
    let dirs = vec![DVector::from_fn(p, |_, _| {
        1e-6 * (2.0 * rng.random::<f32>() - 1.0)
    })];
    Case {
        net,
        loss: Loss::new(LossKind::Mse, Reduction::Sum),
        x,
        y,
        dirs,
        amax: vec![1.0],
        smooth: true,
    }
}

#[test]
fn rounding_off_is_caught_and_on_is_sound() {
    let mut off = 0;
    for seed in 0..40 {
        let c = cancellation_case(seed);
        set_knobs(Knobs {
            rounding: false,
            remainder_scale: 1.0,
            scaled: None,
        });
        let e = enclose(&c.request()).unwrap();
        off += violations(&c, &e, seed, 20).0;
        set_knobs(Knobs {
            rounding: true,
            remainder_scale: 1.0,
            scaled: None,
        });
        let e = enclose(&c.request()).unwrap();
        let (n, w) = violations(&c, &e, seed, 20);
        assert_eq!(n, 0, "seed {seed}: {w}");
    }
    assert!(off > 0, "switching rounding off went unnoticed");
}

/// Value and one-sided derivative at 0 against nets' objective, the tape gradient and a
/// central finite difference (smooth nets, f64).
#[test]
fn value_and_gradient_at_zero() {
    for (i, act) in [Activation::Tanh, Activation::Sigmoid, Activation::Softplus]
        .iter()
        .enumerate()
    {
        for kind in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ] {
            let c = descent_case::<f64>(500 + i as u64, *act, kind);
            let e = enclose(&c.request()).unwrap();
            assert_eq!(e.value, c.net.objective(&c.loss, &c.x, &c.y).unwrap());
            let g_tape: f64 = -c.dirs[0].norm_squared();
            let h = 1e-5 / c.dirs[0].norm().max(1e-12);
            let fd = (c.objective_at(&[h]).0 - c.objective_at(&[-h]).0) / (2.0 * h);
            let g = e.gradient[0];
            assert!(
                (g - g_tape).abs() <= 1e-9 * g_tape.abs().max(1.0),
                "{act:?} {kind:?}: {g} vs tape {g_tape}"
            );
            assert!(
                (g - fd).abs() <= 1e-5 * g.abs().max(1.0),
                "{act:?} {kind:?}: {g} vs fd {fd}"
            );
        }
    }
}

fn err_of(c: &Case<f64>) -> String {
    enclose(&c.request()).unwrap_err().to_string()
}

#[test]
fn bad_input_gets_typed_errors() {
    let base = random_case::<f64>(3, Some(Activation::Tanh), Some(LossKind::Mse));
    // ELU layer.
    let mut c = base.clone();
    let w = DMatrix::from_element(2, base.x.nrows(), 0.1);
    c.net = Sequential::from_layers(vec![
        Box::new(Dense::new(w, DVector::zeros(2)).unwrap()) as Box<dyn Layer<f64>>,
        Box::new(Activation::Elu { alpha: 1.0 }),
        Box::new(
            Dense::new(
                DMatrix::from_element(c.net.output_dim().unwrap(), 2, 0.1),
                DVector::zeros(c.net.output_dim().unwrap()),
            )
            .unwrap(),
        ),
    ])
    .unwrap();
    c.dirs = vec![DVector::zeros(c.net.num_params())];
    let m = err_of(&c);
    assert!(m.contains("layer 1 is activation elu"), "{m}");
    // Hinge loss.
    let mut c = base.clone();
    c.loss = Loss::new(LossKind::MulticlassHinge, Reduction::Mean);
    assert!(err_of(&c).contains("multiclass_hinge"));
    // Empty, negative and non-finite boxes.
    for a in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut c = base.clone();
        c.amax = vec![a; c.dirs.len()];
        assert!(err_of(&c).contains("alpha_max"), "{a}");
    }
    // Non-finite direction, wrong length, wrong count.
    let mut c = base.clone();
    c.dirs[0][1] = f64::NAN;
    assert_eq!(
        err_of(&c),
        "enclose: non-finite value in direction at (1, 0)"
    );
    let mut c = base.clone();
    c.dirs = vec![DVector::zeros(3)];
    assert!(err_of(&c).contains("direction 0 has length 3"));
    let mut c = base.clone();
    c.amax = vec![1.0, 1.0];
    assert!(err_of(&c).contains("alpha_max has length 2"));
    let mut c = base.clone();
    c.dirs.clear();
    c.amax.clear();
    assert!(err_of(&c).contains("no direction"));
    // Shapes and data.
    let mut c = base.clone();
    c.x = DMatrix::zeros(c.x.nrows() + 1, 2);
    assert!(err_of(&c).contains("input rows"));
    let mut c = base.clone();
    c.x[(0, 0)] = f64::INFINITY;
    assert!(err_of(&c).contains("non-finite value in inputs"));
    let mut c = base.clone();
    c.y = Targets::Dense(DMatrix::zeros(1, 1));
    assert!(matches!(
        enclose(&c.request()),
        Err(crate::MajorizeError::Domain { .. })
    ));
    // Bounds outside the box; apply_step lengths.
    let e = enclose(&base.request()).unwrap();
    assert!(e.upper_bound(&[2.0 * base.amax[0]]).is_err());
    assert!(e.upper_bound(&[-1e-9]).is_err());
    assert!(e.upper_bound(&[0.0, 0.0]).is_err());
    let mut net = base.net.clone();
    assert!(apply_step(&mut net, &[0.0], &base.dirs, &[0.0]).is_err());
    assert!(apply_step(&mut net, &base.net.flat_params(), &base.dirs, &[f64::NAN]).is_err());
}

/// Surrogate gradient and closed-form minimiser (k = 1) are consistent with the bound.
#[test]
fn surrogate_minimizer_is_best_of_candidates() {
    let c = descent_case::<f64>(9, Activation::Relu, LossKind::SoftmaxCrossEntropy);
    let mut c = c;
    c.amax = vec![1e-3 / c.dirs[0].norm()];
    let e = enclose(&c.request()).unwrap();
    let s = e.surrogate();
    let m = s.minimize(&crate::InnerSolve::default()).unwrap();
    let q = |a: f64| e.upper_bound(&[a]).unwrap();
    for i in 0..=100 {
        let a = c.amax[0] * i as f64 / 100.0;
        assert!(
            q(m.point[0]) <= q(a) + 1e-12 * q(a).abs(),
            "grid point {a} beats the minimiser"
        );
    }
    let mut g = DVector::zeros(1);
    s.gradient(&DVector::zeros(1), &mut g).unwrap();
    assert_eq!(g[0], e.gradient[0]);
}

/// How informative the bounds are on the property-test distribution (prints; run with
/// `--ignored --nocapture`): fraction of cases with a finite bound, and the median of
/// `(ub - lb) / |phi(0)|` at the far corner.
#[test]
#[ignore]
fn bound_statistics() {
    let mut finite = 0;
    let mut widths = Vec::new();
    let n = 2000;
    for seed in 0..n {
        let c = random_case::<f64>(seed, None, None);
        let e = enclose(&c.request()).unwrap();
        let a = c.amax.clone();
        let (ub, lb) = (e.upper_bound(&a).unwrap(), e.lower_bound(&a).unwrap());
        if ub.is_finite() {
            finite += 1;
            widths.push((ub - lb) / e.value.abs().max(1e-12));
        }
    }
    widths.sort_by(f64::total_cmp);
    let q = |p: f64| widths[((widths.len() - 1) as f64 * p) as usize];
    println!(
        "finite {finite}/{n}; relative width at the far corner: p10 {:.2e} median {:.2e} p90 {:.2e}",
        q(0.1),
        q(0.5),
        q(0.9)
    );
}

/// A user-defined layer the engine does not know (doubles its input).
#[derive(Clone, Debug)]
struct Doubler;

impl<T: Real> Layer<T> for Doubler {
    fn kind(&self) -> &str {
        "doubler"
    }
    fn input_dim(&self) -> Option<usize> {
        None
    }
    fn output_dim(&self, d: usize) -> nets::Result<usize> {
        Ok(d)
    }
    fn forward(&self, x: &DMatrix<T>, out: &mut DMatrix<T>) -> nets::Result<()> {
        *out = x * T::of(2.0);
        Ok(())
    }
    fn forward_tape(
        &self,
        ctx: &mut nets::TapeContext<'_, T>,
        input: autodiff::Var,
    ) -> nets::Result<autodiff::Var> {
        Ok(ctx.tape.add(input, input)?)
    }
}

#[test]
fn unknown_layer_is_named() {
    let mut c = random_case::<f64>(4, Some(Activation::Tanh), Some(LossKind::Mse));
    let mut layers: Vec<Box<dyn Layer<f64>>> = c.net.layers().to_vec();
    layers.insert(1, Box::new(Doubler));
    c.net = Sequential::from_layers(layers).unwrap();
    assert_eq!(
        err_of(&c),
        "unsupported configuration: enclose: layer 1 (doubler) is neither a dense layer nor an elementwise activation"
    );
}

/// Prints `gradient`, `quad_upper`, `quad_lower` and `slack` of fixed cases (run with
/// `--ignored --nocapture`): used to compare bounds before and after a performance change
/// (they may move only by rounding-level amounts or get tighter).
#[test]
#[ignore]
fn print_fixed_bounds() {
    for seed in [3u64, 11, 17, 29, 42, 57, 101, 202] {
        for act in [Activation::Relu, Activation::Tanh] {
            for kind in [LossKind::SoftmaxCrossEntropy, LossKind::Mse] {
                let c = random_case::<f64>(seed, Some(act), Some(kind));
                let e = enclose(&c.request()).unwrap();
                println!(
                    "seed {seed} {act:?} {kind:?} k={} g={:?} qhi={:?} qlo={:?} slack={:e}",
                    e.dim(),
                    e.gradient,
                    e.quad_upper.as_slice(),
                    e.quad_lower.as_slice(),
                    e.slack
                );
            }
        }
    }
}

/// A workspace reused across calls with different shapes, k and precisions gives the
/// same enclosure as a fresh one, bit for bit (buffers are zero-filled before use).
#[test]
fn reused_workspace_gives_identical_results() {
    let mut ws = EnclosureWorkspace::new();
    for seed in [5u64, 8, 13, 21, 34, 55, 89, 144] {
        let c = random_case::<f64>(seed, None, None);
        let fresh = enclose(&c.request()).unwrap();
        let reused = enclose_with(&c.request(), &mut ws).unwrap();
        assert_eq!(fresh, reused, "f64 seed {seed}");
        let c = random_case::<f32>(seed, None, None);
        assert_eq!(
            enclose(&c.request()).unwrap(),
            enclose_with(&c.request(), &mut ws).unwrap(),
            "f32 seed {seed}"
        );
    }
}
