//! Review (session 16, `rayreview`): given block products `Z0'`, `P'` as far from the
//! exact ones as step 1 of the top block's bound allows, on cases where the block's own
//! rounding dominates the slack.

use super::super::super::top_block::tests::{dd, dd_add, dd_mul};
use super::adversarial::{pts_of, strict, take_margin};
use super::*;

/// `W A + b` rounded from double-double, moved by `frac γ_{n+1} (|W||A| + |b|)` with a
/// random sign on every column but the first and last (which the engine checks): a
/// given product as far from the exact one as step 1 of the top block allows (`2
/// γ_{n+1}`, less the final rounding).
fn far_product(
    w: &DMatrix<f64>,
    b: &[f64],
    a: &DMatrix<f64>,
    frac: f64,
    rng: &mut ChaCha8Rng,
) -> DMatrix<f64> {
    let (rows, n) = w.shape();
    let g = crate::enclosure::fp::gamma(n + 1, crate::enclosure::fp::U64);
    let cols = a.ncols();
    let mut exact_fl = DMatrix::zeros(rows, cols);
    Dense::new(w.clone(), DVector::from_column_slice(b))
        .unwrap()
        .forward_into(a, &mut exact_fl)
        .unwrap();
    DMatrix::from_fn(rows, cols, |j, s| {
        if s == 0 || s + 1 == cols {
            return exact_fl[(j, s)];
        }
        let (mut acc, mut mag) = (dd(b[j]), b[j].abs());
        for c in 0..n {
            acc = dd_add(acc, dd_mul(dd(w[(j, c)]), dd(a[(c, s)])));
            mag += (w[(j, c)] * a[(c, s)]).abs();
        }
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        let t = dd_add(acc, dd(sign * frac * g * mag * (1.0 - 1e-6)));
        t.0 + t.1
    })
}

/// Given `Z0'` and `P'` off the exact products by up to 1.4 `γ_{n+1}` of their
/// magnitudes (within step 1's `2 γ_{n+1}` after the final rounding; the checked columns
/// exact-rounded) on rounding-dominated cases (block inputs ±1e4 in cancelling pairs,
/// `ā` 1e-14..1e-6): no violation.
#[test]
fn given_products_at_the_edge_of_step_one() {
    let mut checked = 0usize;
    for seed in 0..150u64 {
        let mut c = random_rcase(7100 + seed, 10);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = c.input.ncols();
        if n < 3 {
            continue;
        }
        make_rounding_dominated(&mut c, &mut rng);
        // Paired weight columns: `W x` cancels to ~1e-8 of `|W||x|` (so the block's
        // rounding, step 1, is what the slack must cover, not the layers above).
        {
            let w = c.net.param_mut(c.layer, "weight").unwrap();
            let rows = w.rows;
            for col in (1..w.cols).step_by(2) {
                for j in 0..rows {
                    w.values[j + col * rows] = w.values[j + (col - 1) * rows];
                }
            }
        }
        let blk = dense(&c.net, c.layer);
        let wi = c.net.param_span(c.layer, "weight").unwrap();
        let bi = c.net.param_span(c.layer, "bias").unwrap();
        let v = DMatrix::from_column_slice(
            wi.rows,
            wi.cols,
            &c.dir.as_slice()[wi.offset..wi.offset + wi.rows * wi.cols],
        );
        let beta = &c.dir.as_slice()[bi.offset..bi.offset + bi.rows];
        let z0 = far_product(&blk.weight, blk.bias.as_slice(), &c.input, 1.4, &mut rng);
        let pd = far_product(&v, beta, &c.input, 1.4, &mut rng);
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
            output: Some(&z0),
            output_dir: Some(&pd),
        };
        for value in [Some(c.record(0.0)), None] {
            let b = enclose_ray(&req, value, &from, &mut RayWorkspace::default()).unwrap();
            assert!(b.slack.is_finite(), "seed {seed}: {b:?}");
            match strict(&c, &b, &pts_of(&b)) {
                Ok(m) => checked += m,
                Err(e) => panic!("given products seed {seed}: {e}"),
            }
        }
    }
    println!(
        "given products at the edge of step 1: {checked} comparisons; smallest (bound - x)/slack {:.3}",
        take_margin()
    );
    assert!(checked > 10_000);
}
