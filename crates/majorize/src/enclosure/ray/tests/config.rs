//! The ray bound's configurations: what is `Unsupported`, the given products, and a
//! workspace reused across shapes.

use super::*;

fn is_unsupported(r: crate::Result<RayBound<f64>>) -> bool {
    matches!(r, Err(crate::MajorizeError::Unsupported(_)))
}

fn bound_with(
    c: &RCase,
    output: Option<&DMatrix<f64>>,
    output_dir: Option<&DMatrix<f64>>,
    ws: &mut RayWorkspace,
) -> crate::Result<RayBound<f64>> {
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
        output,
        output_dir,
    };
    enclose_ray(&req, None, &from, ws)
}

#[test]
fn unsupported_configurations_say_so() {
    let c = (0..50u64)
        .map(|s| random_rcase(s, 10))
        .find(|c| c.layer == 2 && c.net.layers().len() == 7)
        .unwrap();
    assert!(c.bound(None).is_ok());
    // Direction nonzero below the block, or on the output layer.
    let mut m = c.clone();
    m.dir[0] = 1.0;
    assert!(is_unsupported(m.bound(None)));
    let mut m = c.clone();
    let last = m.dir.len() - 1;
    m.dir[last] = 1.0;
    assert!(is_unsupported(m.bound(None)));
    // The output layer as the block.
    let mut m = c.clone();
    m.layer = 6;
    m.dir.fill(0.0);
    assert!(is_unsupported(m.bound(None)));
    // The logistic loss (squared error is supported since session 19; `tests::mse`).
    let mut m = c.clone();
    let k = dense(&m.net, 6).weight.nrows();
    m.loss.kind = LossKind::Logistic;
    m.y = Targets::Dense(DMatrix::zeros(k, m.x.ncols()));
    assert!(is_unsupported(m.bound(None)));
    m.loss.kind = LossKind::Mse;
    assert!(m.bound(None).is_ok());
    // A tanh above the block.
    let layers: Vec<Box<dyn Layer<f64>>> = c
        .net
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| match l.as_dense() {
            Some(d) => Box::new(d.clone()) as Box<dyn Layer<f64>>,
            None if i == 3 => Box::new(Activation::Tanh),
            None => Box::new(Activation::Relu),
        })
        .collect();
    let mut m = c.clone();
    m.net = Sequential::from_layers(layers).unwrap();
    assert!(is_unsupported(m.bound(None)));
    // Two directions.
    let dirs = [c.dir.clone(), c.dir.clone()];
    let amax = [1.0, 1.0];
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
    assert!(is_unsupported(enclose_ray(
        &req,
        None,
        &from,
        &mut RayWorkspace::default()
    )));
}

/// The given products `Z0`, `P` give the bound of the recomputed ones when they are the
/// same numbers, a wrong `Z0` is refused, and one workspace reused across 40 cases of
/// different shapes and depths gives the bits of a fresh one.
#[test]
fn given_products_and_workspace_reuse() {
    let mut ws = RayWorkspace::default();
    for seed in 0..40u64 {
        let c = random_rcase(seed, if seed % 4 == 0 { 60 } else { 10 });
        let fresh = c.bound(None).unwrap();
        let reused = bound_with(&c, None, None, &mut ws).unwrap();
        assert_eq!(fresh, reused, "seed {seed}");
        let d = dense(&c.net, c.layer);
        let mut z = DMatrix::zeros(0, 0);
        d.forward_into(&c.input, &mut z).unwrap();
        let wi = c.net.param_span(c.layer, "weight").unwrap();
        let bi = c.net.param_span(c.layer, "bias").unwrap();
        let v = DMatrix::from_column_slice(
            wi.rows,
            wi.cols,
            &c.dir.as_slice()[wi.offset..wi.offset + wi.rows * wi.cols],
        );
        let mut p = DMatrix::zeros(wi.rows, c.input.ncols());
        p.gemm(1.0, &v, &c.input, 0.0);
        for mut col in p.column_iter_mut() {
            for (x, b) in col
                .iter_mut()
                .zip(&c.dir.as_slice()[bi.offset..bi.offset + bi.rows])
            {
                *x += *b;
            }
        }
        let given = bound_with(&c, Some(&z), Some(&p), &mut ws).unwrap();
        assert_eq!(fresh, given, "seed {seed}");
        let mut wrong = z.clone();
        wrong[(0, 0)] += 1.0;
        assert!(bound_with(&c, Some(&wrong), None, &mut ws).is_err());
    }
}

/// A band that overflows while the forward pass does not (direction entries scaled by
/// 1e290..1e300, the weights of the layer above the block by 1e10) gives a valid,
/// useless bound: the own value (finite, the unscaled direction's) and an infinite
/// slack, not an error.
#[test]
fn an_overflowing_band_has_an_infinite_slack() {
    let mut infinite = 0;
    for seed in 0..50u64 {
        let mut c0 = random_rcase(seed, 10);
        if c0.layer + 3 == c0.net.layers().len() {
            continue;
        }
        let wi = c0.net.param_span(c0.layer + 2, "weight").unwrap();
        let mut flat = c0.net.flat_params();
        flat[wi.offset..wi.offset + wi.rows * wi.cols]
            .iter_mut()
            .for_each(|x| *x *= 1e10);
        c0.net.params_from_flat(&flat).unwrap();
        let v0 = c0.bound(None).unwrap().value;
        for e in [290, 295, 300] {
            let mut c = c0.clone();
            c.dir.iter_mut().for_each(|x| *x *= 10f64.powi(e));
            c.amax = 1.0;
            let b = c.bound(None).unwrap();
            assert!(b.value == v0 && b.slack >= 0.0, "seed {seed} 1e{e}: {b:?}");
            infinite += usize::from(b.slack == f64::INFINITY);
        }
    }
    assert!(infinite > 0);
}

/// The caller's forward trace above the block as R1's anchors: the same numbers give the
/// bits of the own forward pass; a wrong entry or a wrong count is refused.
#[test]
fn given_anchors() {
    use super::super::enclose_ray_with;
    for seed in 0..40u64 {
        let c = random_rcase(seed, if seed % 4 == 0 { 60 } else { 10 });
        let own = c.bound(None).unwrap();
        let nl = c.net.layers().len();
        let (mut z, mut h) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        dense(&c.net, c.layer)
            .forward_into(&c.input, &mut z)
            .unwrap();
        let mut trace = Vec::new();
        for l in (c.layer + 2..nl).step_by(2) {
            Activation::Relu.apply_matrix(&z, &mut h);
            let mut zn = DMatrix::zeros(0, 0);
            dense(&c.net, l).forward_into(&h, &mut zn).unwrap();
            trace.push(zn.clone());
            z = zn;
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
            output: None,
            output_dir: None,
        };
        let mut ws = RayWorkspace::default();
        let given = enclose_ray_with(&req, None, &from, Some(&trace), &mut ws).unwrap();
        assert_eq!(own, given, "seed {seed}");
        let mut wrong = trace.clone();
        let last = wrong.len() - 1;
        wrong[last][(0, 0)] += 1.0;
        assert!(enclose_ray_with(&req, None, &from, Some(&wrong), &mut ws).is_err());
        assert!(enclose_ray_with(&req, None, &from, Some(&trace[..last]), &mut ws).is_err());
    }
}
