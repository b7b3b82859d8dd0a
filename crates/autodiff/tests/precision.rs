//! f32 and f64 agree to f32 precision on the same inputs: values and gradients of a
//! small network with every activation family and loss.

use autodiff::{Real, Reduction, Tape, Transpose};
use nalgebra::DMatrix;

struct Out {
    losses: Vec<f64>,
    grads: Vec<DMatrix<f64>>,
}

fn run<T: Real>(params: &[DMatrix<f64>], x: &DMatrix<f64>, labels: &[usize]) -> Out {
    let mut t = Tape::<T>::new();
    let cast = |m: &DMatrix<f64>| m.map(T::of);
    let p: Vec<_> = params.iter().map(|m| t.param(&cast(m))).collect();
    let xv = t.constant(&cast(x));
    let z1 = t.matmul(p[0], Transpose::No, xv, Transpose::No).unwrap();
    let z1 = t.add_bias(z1, p[1]).unwrap();
    let a1 = t.tanh(z1).unwrap();
    let a1b = t.softplus(z1).unwrap();
    let a1 = t.mul(a1, a1b).unwrap();
    let z2 = t.matmul(p[2], Transpose::No, a1, Transpose::No).unwrap();
    let z2 = t.add_bias(z2, p[3]).unwrap();
    let ce = t
        .softmax_cross_entropy_labels(z2, labels, Reduction::Mean)
        .unwrap();
    let s = t.sigmoid(z2).unwrap();
    let h = t.multiclass_hinge(s, labels, Reduction::Sum).unwrap();
    let l = t.add(ce, h).unwrap();
    t.backward(l).unwrap();
    Out {
        losses: [ce, h, l]
            .iter()
            .map(|&v| t.scalar(v).unwrap().to_f64())
            .collect(),
        grads: p
            .iter()
            .map(|&v| t.grad(v).unwrap().map(|g| g.to_f64()))
            .collect(),
    }
}

#[test]
fn f32_and_f64_agree_to_f32_precision() {
    let f = |r: usize, c: usize, s: f64| {
        DMatrix::from_fn(r, c, |i, j| ((i * 7 + j * 3) as f64 * s).sin())
    };
    let params = [f(6, 4, 0.37), f(6, 1, 0.91), f(3, 6, 1.13), f(3, 1, 0.29)];
    let x = f(4, 5, 0.71);
    let labels = [0, 2, 1, 2, 0];
    let a = run::<f32>(&params, &x, &labels);
    let b = run::<f64>(&params, &x, &labels);
    for (u, v) in a.losses.iter().zip(&b.losses) {
        assert!(
            (u - v).abs() <= 1e-6 * v.abs().max(1.0),
            "loss f32 {u} vs f64 {v}"
        );
    }
    for (ga, gb) in a.grads.iter().zip(&b.grads) {
        let scale = gb.abs().max().max(1.0);
        let err = (ga - gb).abs().max();
        assert!(
            err <= 1e-5 * scale,
            "gradient differs by {err:e} (scale {scale})"
        );
        // And the check is not vacuous: gradients are not all zero.
        assert!(gb.abs().max() > 1e-3);
    }
}
