//! Property tests (f64): every op's gradient matches central finite differences to a
//! relative error of 1e-6, on random shapes and values kept away from kinks and outside
//! the domains' edges (the fused `affine` included), and so do random deep compositions
//! with fan-out.

use autodiff::gradcheck::{GradCheckConfig, check_tape_gradient};
use autodiff::{Reduction, Result, Tape, Transpose, Var};
use nalgebra::DMatrix;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f64 = 1e-6;

/// Entries in `[lo, hi]`.
fn uniform(r: usize, c: usize, lo: f64, hi: f64, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random_range(lo..hi))
}

/// Entries with `|x|` in `[0.1, 2]` and a random sign: away from the kinks at 0.
fn off_zero(r: usize, c: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| {
        let m = rng.random_range(0.1..2.0);
        if rng.random_bool(0.5) { m } else { -m }
    })
}

/// Checks `f = sum(W (.) g(x))` (W a fixed random weight, so the upstream gradient is
/// not uniform) for a unary op `g`.
fn check_unary(
    x: DMatrix<f64>,
    rng: &mut ChaCha8Rng,
    g: impl Fn(&mut Tape<f64>, Var) -> Result<Var>,
) -> std::result::Result<(), TestCaseError> {
    let w = uniform(x.nrows(), x.ncols(), -1.0, 1.0, rng);
    let r = check_tape_gradient(
        |t, p| {
            let y = g(t, p[0])?;
            let wv = t.constant(&w);
            let s = t.mul(y, wv)?;
            t.sum_all(s)
        },
        &[x],
        &GradCheckConfig::default(),
    )
    .unwrap();
    prop_assert!(r.passes(TOL), "{}", r);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn unary_ops(r in 1usize..5, c in 1usize..5, which in 0usize..16, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = rng.random_range(-1.5..2.5);
        let s = rng.random_range(0.01..0.5);
        let x = match which {
            1 | 2 | 5 => uniform(r, c, 0.5, 3.0, &mut rng), // log, sqrt, powf: positive
            _ => off_zero(r, c, &mut rng),
        };
        check_unary(x, &mut rng, |t, v| match which {
            0 => t.exp(v),
            1 => t.log(v),
            2 => t.sqrt(v),
            3 => t.abs(v),
            4 => t.square(v),
            5 => t.powf(v, p),
            6 => t.relu(v),
            7 => t.leaky_relu(v, s),
            8 => t.elu(v, 1.0 + s),
            9 => t.sigmoid(v),
            10 => t.tanh(v),
            11 => t.softplus(v),
            12 => t.add_scalar(v, p),
            13 => t.mul_scalar(v, p),
            14 => t.neg(v),
            _ => t.log_softmax(v),
        })?;
    }

    #[test]
    fn binary_ops_and_bias(r in 1usize..5, c in 1usize..5, which in 0usize..5, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = off_zero(r, c, &mut rng);
        let b = if which == 4 { off_zero(r, 1, &mut rng) } else { off_zero(r, c, &mut rng) };
        let w = uniform(r, c, -1.0, 1.0, &mut rng);
        let rep = check_tape_gradient(
            |t, p| {
                let y = match which {
                    0 => t.add(p[0], p[1])?,
                    1 => t.sub(p[0], p[1])?,
                    2 => t.mul(p[0], p[1])?,
                    3 => t.div(p[0], p[1])?,
                    _ => t.add_bias(p[0], p[1])?,
                };
                let wv = t.constant(&w);
                let s = t.mul(y, wv)?;
                t.sum_all(s)
            },
            &[a, b],
            &GradCheckConfig::default(),
        ).unwrap();
        prop_assert!(rep.passes(TOL), "{}", rep);
    }

    /// The fused dense layer `W X + b 1^T` (its own forward and backward kernel), with
    /// all three operands as parameters.
    #[test]
    fn affine(m in 1usize..5, k in 1usize..5, n in 1usize..5, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = uniform(m, k, -1.0, 1.0, &mut rng);
        let x = uniform(k, n, -1.0, 1.0, &mut rng);
        let b = uniform(m, 1, -1.0, 1.0, &mut rng);
        let s = uniform(m, n, -1.0, 1.0, &mut rng);
        let rep = check_tape_gradient(
            |t, p| {
                let y = t.affine(p[0], p[1], p[2])?;
                let sv = t.constant(&s);
                let q = t.mul(y, sv)?;
                let q = t.square(q)?;
                t.sum_all(q)
            },
            &[w, x, b],
            &GradCheckConfig::default(),
        ).unwrap();
        prop_assert!(rep.passes(TOL), "{}", rep);
    }

    #[test]
    fn reductions(r in 1usize..5, c in 1usize..5, which in 0usize..6, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(r, c, -2.0, 2.0, &mut rng);
        // Square the reduced value so the upstream gradient differs per entry.
        let rep = check_tape_gradient(
            |t, p| {
                let y = match which {
                    0 => t.sum_all(p[0])?,
                    1 => t.mean_all(p[0])?,
                    2 => t.sum_per_row(p[0])?,
                    3 => t.mean_per_row(p[0])?,
                    4 => t.sum_per_col(p[0])?,
                    _ => t.mean_per_col(p[0])?,
                };
                let q = t.square(y)?;
                t.sum_all(q)
            },
            &[x],
            &GradCheckConfig::default(),
        ).unwrap();
        prop_assert!(rep.passes(TOL), "{}", rep);
    }

    #[test]
    fn matmul_all_transposes(m in 1usize..5, n in 1usize..5, k in 1usize..5,
                             ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t_of = |b: bool| if b { Transpose::Yes } else { Transpose::No };
        let (ta, tb) = (t_of(ta), t_of(tb));
        let a = if ta == Transpose::No { uniform(m, k, -1.0, 1.0, &mut rng) } else { uniform(k, m, -1.0, 1.0, &mut rng) };
        let b = if tb == Transpose::No { uniform(k, n, -1.0, 1.0, &mut rng) } else { uniform(n, k, -1.0, 1.0, &mut rng) };
        let w = uniform(m, n, -1.0, 1.0, &mut rng);
        let rep = check_tape_gradient(
            |t, p| {
                let y = t.matmul(p[0], ta, p[1], tb)?;
                let wv = t.constant(&w);
                let s = t.mul(y, wv)?;
                t.sum_all(s)
            },
            &[a, b],
            &GradCheckConfig::default(),
        ).unwrap();
        prop_assert!(rep.passes(TOL), "{}", rep);
    }

    #[test]
    fn losses(k in 2usize..5, n in 1usize..5, which in 0usize..5, mean in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let red = if mean { Reduction::Mean } else { Reduction::Sum };
        let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
        let mut z = uniform(k, n, -2.0, 2.0, &mut rng);
        if which == 4 {
            // Keep every hinge margin 1 + z_j - z_y at least 0.1 away from its kink.
            for (col, &y) in labels.iter().enumerate() {
                for j in 0..k {
                    let m = 1.0 + z[(j, col)] - z[(y, col)];
                    if j != y && m.abs() < 0.1 {
                        z[(j, col)] += 0.2;
                    }
                }
            }
        }
        let t0 = uniform(k, n, 0.0, 1.0, &mut rng);
        let rep = check_tape_gradient(
            |t, p| match which {
                0 => t.softmax_cross_entropy_labels(p[0], &labels, red),
                1 => t.softmax_cross_entropy(p[0], p[1], red),
                2 => t.mse(p[0], p[1], red),
                3 => t.bce_with_logits(p[0], p[1], red),
                _ => t.multiclass_hinge(p[0], &labels, red),
            },
            &[z, t0],
            &GradCheckConfig::default(),
        ).unwrap();
        prop_assert!(rep.passes(TOL), "{}", rep);
    }

    /// Random graphs of 5 to 12 ops over square matrices (so any two nodes can be
    /// multiplied), drawing operands from every earlier node (fan-out), ending in a loss
    /// that uses one intermediate twice.
    #[test]
    fn deep_compositions_with_fan_out(n in 2usize..4, ops in prop::collection::vec((0usize..12, any::<u64>()), 5..12), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(n, n, -1.0, 1.0, &mut rng);
        let y = uniform(n, n, -1.0, 1.0, &mut rng);
        let b = uniform(n, 1, -1.0, 1.0, &mut rng);
        let labels: Vec<usize> = (0..n).map(|i| i % n).collect();
        let rep = check_tape_gradient(
            |t, p| {
                let mut pool = vec![p[0], p[1]];
                for &(code, pick) in &ops {
                    let u = pool[(pick % pool.len() as u64) as usize];
                    let v = pool[((pick >> 32) % pool.len() as u64) as usize];
                    let next = match code {
                        0 => t.add(u, v)?,
                        1 => t.sub(u, v)?,
                        2 => t.mul(u, v)?,
                        3 => t.tanh(u)?,
                        4 => t.sigmoid(u)?,
                        5 => t.softplus(u)?,
                        6 => {
                            let ta = if pick & 1 == 0 { Transpose::No } else { Transpose::Yes };
                            let tb = if pick & 2 == 0 { Transpose::No } else { Transpose::Yes };
                            let m = t.matmul(u, ta, v, tb)?;
                            t.mul_scalar(m, 0.5)?
                        }
                        7 => t.log_softmax(u)?,
                        8 => t.add_bias(u, p[2])?,
                        9 => {
                            let s = t.square(u)?;
                            t.mul_scalar(s, 0.5)?
                        }
                        10 => {
                            let e = t.tanh(u)?;
                            t.exp(e)?
                        }
                        _ => t.elu(u, 1.0)?.plus_tenth(t, v)?,
                    };
                    pool.push(next);
                }
                let last = *pool.last().unwrap();
                let mid = pool[pool.len() / 2];
                let prod = t.mul(last, mid)?;
                let s1 = t.sum_all(prod)?;
                let s2 = t.softmax_cross_entropy_labels(mid, &labels, Reduction::Mean)?;
                t.add(s1, s2)
            },
            &[x, y, b],
            &GradCheckConfig::default(),
        ).unwrap();
        prop_assert!(rep.passes(TOL), "{}", rep);
    }
}

/// Small helper used by the composition test: `a + 0.1 b`, a second way to fan out.
trait PlusTenth {
    fn plus_tenth(self, t: &mut Tape<f64>, other: Var) -> Result<Var>;
}

impl PlusTenth for Var {
    fn plus_tenth(self, t: &mut Tape<f64>, other: Var) -> Result<Var> {
        let s = t.mul_scalar(other, 0.1)?;
        t.add(self, s)
    }
}

/// `affine(W, X, b)` against central differences on degenerate and thin shapes
/// (`d_out x depth x N`: 1 x 1 x 1, no output rows, depth 0, no samples, width 1 on
/// either side), one and two threads, with a non-uniform upstream gradient
/// (`f = sum(S (.) Z (.) Z)`); every entry of all three parameters is compared. Also
/// one operand in two roles (`W` is also the input: `affine(W, W, b)` then again).
#[test]
fn affine_matches_finite_differences_on_degenerate_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (m, k, n) in [
        (1, 1, 1),
        (0, 3, 2),
        (2, 0, 3),
        (3, 2, 0),
        (0, 0, 0),
        (1, 5, 1),
        (5, 1, 7),
    ] {
        let s = uniform(m, n, -1.0, 1.0, &mut rng);
        let params = [
            uniform(m, k, -1.0, 1.0, &mut rng),
            uniform(k, n, -1.0, 1.0, &mut rng),
            uniform(m, 1, -1.0, 1.0, &mut rng),
        ];
        for threads in [1, 2] {
            let rep = check_tape_gradient(
                |t, p| {
                    t.set_threads(threads);
                    let z = t.affine(p[0], p[1], p[2])?;
                    let sv = t.constant(&s);
                    let q = t.mul(z, sv)?;
                    let q = t.mul(q, z)?;
                    t.sum_all(q)
                },
                &params,
                &GradCheckConfig::default(),
            )
            .unwrap();
            assert_eq!(rep.checked, m * k + k * n + m, "{m}x{k}x{n}");
            assert!(rep.passes(TOL), "{m}x{k}x{n}, {threads} threads: {rep}");
        }
    }
    let rep = check_tape_gradient(
        |t, p| {
            let z = t.affine(p[0], p[0], p[1])?;
            let z = t.affine(p[0], z, p[1])?;
            let z = t.tanh(z)?;
            t.sum_all(z)
        },
        &[
            uniform(2, 2, -1.0, 1.0, &mut rng),
            uniform(2, 1, -1.0, 1.0, &mut rng),
        ],
        &GradCheckConfig::default(),
    )
    .unwrap();
    assert_eq!(rep.checked, 6);
    assert!(rep.passes(TOL), "{rep}");
}
