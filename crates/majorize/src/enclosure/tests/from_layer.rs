//! `enclose_from_layer`: the sweep from a kept activation when the directions are zero
//! below a dense layer. From layer 0 it is `enclose_with_value` bit for bit; from a
//! higher layer its bound holds for the evaluation from that activation (and for nets'
//! own objective, which computes the same activation) and is at least as tight as the
//! whole network's enclosure of the same direction (slack, `Q_hi` and the upper bound),
//! up to the rounding of the midpoints.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::Activation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::*;
use super::{Case, random_case};

/// The case's directions with every entry of the layers below `layer` set to zero.
fn zero_below<T: Real>(c: &Case<T>, layer: usize) -> Vec<DVector<T>> {
    let mut dirs = c.dirs.clone();
    for info in c.net.param_layout() {
        if info.layer < layer {
            for d in dirs.iter_mut() {
                d.rows_mut(info.offset, info.rows * info.cols)
                    .fill(T::zero());
            }
        }
    }
    dirs
}

/// The driver's record from the activation `a` entering layer `layer`: the layers from
/// `layer` up at `apply_step(alpha)`, the loss in `T`, plus the penalty.
fn record_from<T: Real>(c: &Case<T>, layer: usize, a: &DMatrix<T>, alpha: &[T]) -> f64 {
    let mut net = c.net.clone();
    let base = c.net.flat_params();
    apply_step(&mut net, &base, &c.dirs, alpha).unwrap();
    let mut cur = a.clone();
    let mut next = DMatrix::zeros(0, 0);
    for l in &net.layers()[layer..] {
        l.forward(&cur, &mut next).unwrap();
        std::mem::swap(&mut cur, &mut next);
    }
    c.loss.value(&cur, &c.y).unwrap().to_f64() + net.weight_penalty(c.loss.l2)
}

/// Dense layers' indices in `net.layers()`.
fn dense_layers<T: Real>(c: &Case<T>) -> Vec<usize> {
    (0..c.net.layers().len())
        .filter(|i| c.net.layers()[*i].as_dense().is_some())
        .collect()
}

/// Checks one case from every dense layer; returns the number of cases compared.
fn check_case<T: Real>(seed: u64, rel: f64) -> usize {
    let mut c = random_case::<T>(seed, None, None);
    c.dirs.truncate(1);
    c.amax.truncate(1);
    let outs = c.net.layer_outputs(&c.x).unwrap();
    let v = c.net.objective(&c.loss, &c.x, &c.y).unwrap();
    let mut ws = EnclosureWorkspace::new();
    let mut compared = 0;
    for li in dense_layers(&c) {
        let mut cl = c.clone();
        cl.dirs = zero_below(&c, li);
        let input = if li == 0 { &c.x } else { &outs[li - 1] };
        let whole = enclose_with_value(&cl.request(), v, &mut ws).unwrap();
        let from = FromLayer {
            layer: li,
            input,
            output: None,
            output_dir: None,
        };
        let sub = enclose_from_layer(&cl.request(), Some(v), &from, &mut ws).unwrap();
        if li == 0 {
            assert_eq!(sub, whole, "seed {seed}: from layer 0 is the whole sweep");
        }
        let given = FromLayer {
            output: Some(&outs[li]),
            ..from
        };
        let own = enclose_from_layer(&cl.request(), None, &given, &mut ws).unwrap();
        // Sound at corners, random and tiny steps: the record from the activation and
        // nets' objective of the whole network.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf1);
        for a in cl.points(&mut rng, 10) {
            let rec = record_from(&cl, li, input, &a);
            let (f, d) = cl.objective_at(&a);
            for enc in [&sub, &own] {
                let ub = enc.upper_bound(&a).unwrap().to_f64();
                let lb = enc.lower_bound(&a).unwrap().to_f64();
                for x in [rec, f, d] {
                    assert!(
                        lb <= x && x <= ub,
                        "seed {seed} layer {li} alpha {a:?}: {x:e} outside [{lb:e}, {ub:e}]"
                    );
                }
            }
        }
        // The base point lies within value ± slack for the own value.
        let s = own.slack.to_f64();
        let d0 = (record_from(&cl, li, input, &[T::zero()]) - own.value.to_f64()).abs();
        assert!(
            d0 <= s,
            "seed {seed} layer {li}: |record - value| {d0:e} > slack {s:e}"
        );
        // At least as tight as the whole sweep, up to rounding of the midpoints.
        let tol = |x: f64| rel * x.abs() + 1e-300;
        if whole.slack.to_f64().is_finite() && whole.quad_upper[(0, 0)].to_f64().is_finite() {
            let (ws_, ss) = (whole.slack.to_f64(), sub.slack.to_f64());
            assert!(
                ss <= ws_ + tol(ws_),
                "seed {seed} layer {li}: slack {ss:e} > {ws_:e}"
            );
            let (wq, sq) = (
                whole.quad_upper[(0, 0)].to_f64(),
                sub.quad_upper[(0, 0)].to_f64(),
            );
            assert!(
                sq <= wq + tol(wq),
                "seed {seed} layer {li}: Q_hi {sq:e} > {wq:e}"
            );
            // The upper bound (what a step minimises) at the box's end and middle.
            for a in [cl.amax[0], T::of(0.5 * cl.amax[0].to_f64())] {
                let (wu, su) = (
                    whole.upper_bound(&[a]).unwrap().to_f64(),
                    sub.upper_bound(&[a]).unwrap().to_f64(),
                );
                assert!(
                    su <= wu + tol(wu),
                    "seed {seed} layer {li}: bound {su:e} > {wu:e}"
                );
            }
            // Not compared: `Q_lo`, which the 1-D rules do not make monotone in the input
            // range (6 of the cases here come out lower by 1e-9 to 1e-3 relative; sound,
            // as checked above, and no solver steps on it).
            let (wg, sg) = (whole.gradient[0].to_f64(), sub.gradient[0].to_f64());
            let amax = cl.amax[0].to_f64();
            assert!(
                (wg - sg).abs() * amax <= ws_ + tol(wg * amax),
                "seed {seed} layer {li}: gradient {sg:e} vs {wg:e}"
            );
            compared += 1;
        }
    }
    compared
}

/// f64 and f32 random networks (all activations, losses, reductions, L2): sound from
/// every dense layer, bit for bit the whole sweep from layer 0, and no looser than it.
#[test]
fn from_layer_is_sound_and_no_looser() {
    let mut compared = 0;
    for seed in 0..80u64 {
        compared += check_case::<f64>(seed, 1e-9);
        compared += check_case::<f32>(seed, 1e-4);
    }
    assert!(compared > 200, "only {compared} comparisons");
}

/// A ReLU network: starting at the last hidden layer drops the lower layers' rounding
/// radius, so the slack is strictly smaller than the whole sweep's.
#[test]
fn from_layer_drops_the_lower_radius() {
    let mut strict = 0;
    for seed in 0..40u64 {
        let mut c = random_case::<f64>(seed, Some(Activation::Relu), None);
        c.dirs.truncate(1);
        c.amax.truncate(1);
        let dl = dense_layers(&c);
        let Some(&li) = dl.last().filter(|_| dl.len() > 1) else {
            continue;
        };
        c.dirs = zero_below(&c, li);
        let outs = c.net.layer_outputs(&c.x).unwrap();
        let v = c.net.objective(&c.loss, &c.x, &c.y).unwrap();
        let mut ws = EnclosureWorkspace::new();
        let whole = enclose_with_value(&c.request(), v, &mut ws).unwrap();
        let from = FromLayer {
            layer: li,
            input: &outs[li - 1],
            output: Some(&outs[li]),
            output_dir: None,
        };
        let sub = enclose_from_layer(&c.request(), Some(v), &from, &mut ws).unwrap();
        strict += usize::from(sub.slack < whole.slack);
    }
    assert!(
        strict >= 10,
        "slack strictly smaller in only {strict} cases"
    );
}

/// Typed errors: a direction moving a layer below the start, a start that is not a
/// dense layer, an input of the wrong shape or non-finite, an output that is not the
/// layer's, a non-finite value.
#[test]
fn from_layer_errors_are_typed() {
    let c = (0..50u64)
        .map(|s| random_case::<f64>(s, Some(Activation::Tanh), None))
        .find(|c| c.net.layers().len() >= 3 && c.dirs.len() == 1)
        .unwrap();
    let outs = c.net.layer_outputs(&c.x).unwrap();
    let mut ws = EnclosureWorkspace::new();
    let from = FromLayer {
        layer: 2,
        input: &outs[1],
        output: Some(&outs[2]),
        output_dir: None,
    };
    let err =
        |c: &Case<f64>, f: &FromLayer<'_, f64>, v: Option<f64>, ws: &mut EnclosureWorkspace| {
            enclose_from_layer(&c.request(), v, f, ws)
                .unwrap_err()
                .to_string()
        };
    let e = err(&c, &from, None, &mut ws);
    assert!(e.contains("below the start layer 2"), "{e}");
    let mut cz = c.clone();
    cz.dirs = zero_below(&c, 2);
    assert!(enclose_from_layer(&cz.request(), None, &from, &mut ws).is_ok());
    let e = err(&cz, &FromLayer { layer: 1, ..from }, None, &mut ws);
    assert!(e.contains("layer 1 is not a dense layer"), "{e}");
    let wide = DMatrix::zeros(outs[1].nrows(), outs[1].ncols() + 1);
    let e = err(
        &cz,
        &FromLayer {
            input: &wide,
            ..from
        },
        None,
        &mut ws,
    );
    assert!(e.contains("input of layer 2"), "{e}");
    let mut nan = outs[1].clone();
    nan[(0, 0)] = f64::NAN;
    let e = err(
        &cz,
        &FromLayer {
            input: &nan,
            output: None,
            ..from
        },
        None,
        &mut ws,
    );
    assert!(e.contains("layer input"), "{e}");
    let mut off = outs[2].clone();
    off[(0, 0)] += 1e-3 * (1.0 + off[(0, 0)].abs());
    let e = err(
        &cz,
        &FromLayer {
            output: Some(&off),
            ..from
        },
        None,
        &mut ws,
    );
    assert!(e.contains("not this network's layer 2"), "{e}");
    let e = err(&cz, &from, Some(f64::NAN), &mut ws);
    assert!(e.contains("objective at the base point"), "{e}");
}

/// `V input + β` of the case's single direction on dense layer `li`, as nets' dense
/// forward pass computes it.
fn dir_product<T: Real>(c: &Case<T>, li: usize, input: &DMatrix<T>) -> DMatrix<T> {
    let layout = c.net.param_layout();
    let info = |name: &str| layout.iter().find(|p| p.layer == li && p.name == name);
    let (wi, bi) = (info("weight").unwrap(), info("bias").unwrap());
    let d = c.dirs[0].as_slice();
    let v = DMatrix::from_column_slice(
        wi.rows,
        wi.cols,
        &d[wi.offset..wi.offset + wi.rows * wi.cols],
    );
    let b = DVector::from_column_slice(&d[bi.offset..bi.offset + bi.rows]);
    let mut out = DMatrix::zeros(0, 0);
    nets::Layer::forward(&nets::Dense::new(v, b).unwrap(), input, &mut out).unwrap();
    out
}

/// The direction's product given (`output_dir`): f64 takes it, with the bound of the
/// recomputed one within 1e-12 relative and sound; f32 recomputes (the same bound bit
/// for bit). A product that is not the direction's, or a request with two directions,
/// is a typed error.
#[test]
fn given_direction_product_keeps_the_bound() {
    fn one<T: Real>(seed: u64, exact: bool) -> usize {
        let mut c = random_case::<T>(seed, None, None);
        c.dirs.truncate(1);
        c.amax.truncate(1);
        let outs = c.net.layer_outputs(&c.x).unwrap();
        let mut ws = EnclosureWorkspace::new();
        let mut n = 0;
        for li in dense_layers(&c) {
            let mut cl = c.clone();
            cl.dirs = zero_below(&c, li);
            let input = if li == 0 { &c.x } else { &outs[li - 1] };
            let vz = dir_product(&cl, li, input);
            let from = FromLayer {
                layer: li,
                input,
                output: Some(&outs[li]),
                output_dir: None,
            };
            let own = enclose_from_layer(&cl.request(), None, &from, &mut ws).unwrap();
            let with = FromLayer {
                output_dir: Some(&vz),
                ..from
            };
            let given = enclose_from_layer(&cl.request(), None, &with, &mut ws).unwrap();
            if exact {
                assert_eq!(own, given, "seed {seed} layer {li}: f32 recomputes");
            } else {
                let close = |a: f64, b: f64| {
                    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
                };
                let pairs = [
                    (own.slack.to_f64(), given.slack.to_f64()),
                    (own.gradient[0].to_f64(), given.gradient[0].to_f64()),
                    (
                        own.quad_upper[(0, 0)].to_f64(),
                        given.quad_upper[(0, 0)].to_f64(),
                    ),
                ];
                for (a, b) in pairs {
                    assert!(close(a, b), "seed {seed} layer {li}: {a:e} vs {b:e}");
                }
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd1);
            for a in cl.points(&mut rng, 8) {
                let rec = record_from(&cl, li, input, &a);
                let ub = given.upper_bound(&a).unwrap().to_f64();
                let lb = given.lower_bound(&a).unwrap().to_f64();
                assert!(lb <= rec && rec <= ub, "seed {seed} layer {li}: {rec:e}");
            }
            n += 1;
        }
        n
    }
    let mut n = 0;
    for seed in 0..60u64 {
        n += one::<f64>(seed, false);
        n += one::<f32>(seed, true);
    }
    assert!(n > 200, "{n} cases");
    // Errors.
    let mut c = (0..50u64)
        .map(|s| random_case::<f64>(s, Some(Activation::Relu), None))
        .find(|c| c.net.layers().len() >= 3)
        .unwrap();
    c.dirs.truncate(1);
    c.amax.truncate(1);
    c.dirs = zero_below(&c, 2);
    let outs = c.net.layer_outputs(&c.x).unwrap();
    let mut vz = dir_product(&c, 2, &outs[1]);
    let last = vz.ncols() - 1;
    vz[(0, last)] += 1e-3 * (1.0 + vz[(0, last)].abs());
    let from = FromLayer {
        layer: 2,
        input: &outs[1],
        output: None,
        output_dir: Some(&vz),
    };
    let mut ws = EnclosureWorkspace::new();
    let e = enclose_from_layer(&c.request(), None, &from, &mut ws)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not this network's layer 2 direction"), "{e}");
    let good = dir_product(&c, 2, &outs[1]);
    let from = FromLayer {
        output_dir: Some(&good),
        ..from
    };
    assert!(enclose_from_layer(&c.request(), None, &from, &mut ws).is_ok());
    c.dirs.push(c.dirs[0].clone());
    c.amax.push(c.amax[0]);
    let e = enclose_from_layer(&c.request(), None, &from, &mut ws)
        .unwrap_err()
        .to_string();
    assert!(e.contains("only with one"), "{e}");
}

/// One workspace shared by enclosures from every dense layer of networks of different
/// shapes, `k` and precisions, interleaved (block MM's slots per network layer): each
/// result is bit for bit the one a fresh workspace gives.
#[test]
fn shared_workspace_across_networks_and_start_layers_is_bit_identical() {
    fn one<T: Real>(seed: u64, ws: &mut EnclosureWorkspace) -> usize {
        let mut c = random_case::<T>(seed, None, None);
        if seed.is_multiple_of(2) {
            c.dirs.truncate(1);
            c.amax.truncate(1);
        }
        let outs = c.net.layer_outputs(&c.x).unwrap();
        let mut n = 0;
        for li in dense_layers(&c).into_iter().rev() {
            let mut cl = c.clone();
            cl.dirs = zero_below(&c, li);
            let input = if li == 0 { &c.x } else { &outs[li - 1] };
            let from = FromLayer {
                layer: li,
                input,
                output: Some(&outs[li]),
                output_dir: None,
            };
            let shared = enclose_from_layer(&cl.request(), None, &from, ws);
            let fresh =
                enclose_from_layer(&cl.request(), None, &from, &mut EnclosureWorkspace::new());
            match (shared, fresh) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "seed {seed} layer {li}");
                    n += 1;
                }
                (a, b) => assert_eq!(a.is_err(), b.is_err(), "seed {seed} layer {li}"),
            }
        }
        n
    }
    let mut ws = EnclosureWorkspace::new();
    let mut n = 0;
    for seed in 0..40u64 {
        n += one::<f64>(seed, &mut ws);
        n += one::<f32>(seed + 1000, &mut ws);
    }
    assert!(n > 100, "{n} cases");
}
