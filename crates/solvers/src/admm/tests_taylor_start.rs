//! Tests of Taylor ADMM's Gaussian start (Taylor et al., ICML 2016, Section 6, p. 6):
//! the law of the draws, reproducibility from the run's seed, weights that do not depend
//! on the network's initial weights, the warm-start sweeps, and the pass counts.

use autodiff::Reduction;
use nalgebra::DMatrix;
use nets::{Dataset, Loss, LossKind, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::tests_taylor::{gauss, net};
use super::*;
use crate::{Budget, BudgetKind, Driver, NetProblem, SolverError, Status};

/// A 3-class problem: labels of a planted linear map of Gaussian inputs.
fn classes(d0: usize, n: usize, seed: u64) -> Dataset<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = gauss(&mut rng, d0, n);
    let w = gauss(&mut rng, 3, d0);
    let s = &w * &x;
    let labels = (0..n).map(|j| s.column(j).imax()).collect();
    Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap()
}

fn ce() -> Loss {
    Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean)
}

fn paper_config(warm_start: u64) -> TaylorConfig {
    TaylorConfig {
        warm_start,
        ..TaylorConfig::default()
    }
    .with_gaussian_start(1.0)
}

/// Mean and variance of every entry of `ms`.
fn moments(ms: &[&DMatrix<f64>]) -> (f64, f64, usize) {
    let n: usize = ms.iter().map(|m| m.len()).sum();
    let mean = ms.iter().flat_map(|m| m.iter()).sum::<f64>() / n as f64;
    let var = ms
        .iter()
        .flat_map(|m| m.iter())
        .map(|v| (v - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    (mean, var, n)
}

#[test]
fn gaussian_draws_have_mean_zero_and_the_given_variance() {
    let n0 = net(&[3, 120, 80, 10], 1);
    for std in [1.0, 2.5] {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let v = Lifted::gaussian(&n0, 400, std, &mut rng).unwrap();
        assert_eq!(v.z.len(), 3);
        assert_eq!(v.a.len(), 2);
        for (l, d) in [120, 80, 10].into_iter().enumerate() {
            assert_eq!(v.z[l].shape(), (d, 400));
        }
        let all: Vec<&DMatrix<f64>> = v.z.iter().chain(v.a.iter()).collect();
        let (mean, var, n) = moments(&all);
        assert_eq!(n, 400 * (2 * 120 + 2 * 80 + 10));
        // 5 standard errors: sd(mean) = std / sqrt(n), sd(var) ~ std^2 sqrt(2 / n).
        let nf = n as f64;
        assert!(mean.abs() < 5.0 * std / nf.sqrt(), "std {std}: mean {mean}");
        let rel = (var / (std * std) - 1.0).abs();
        assert!(rel < 5.0 * (2.0 / nf).sqrt(), "std {std}: var {var}");
        // Consecutive entries (the two halves of a polar pair among them) uncorrelated.
        let flat: Vec<f64> = all.iter().flat_map(|m| m.iter().copied()).collect();
        let r = flat.windows(2).map(|p| p[0] * p[1]).sum::<f64>() / (nf - 1.0) / var;
        assert!(r.abs() < 5.0 / nf.sqrt(), "lag-1 correlation {r}");
        // A standard normal puts 68.3% of its mass within one sd.
        let inside = flat.iter().filter(|x| x.abs() < std).count() as f64 / nf;
        assert!(
            (inside - 0.6827).abs() < 0.005,
            "mass within 1 sd: {inside}"
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            Lifted::<f64>::gaussian(&n0, 4, bad, &mut rng),
            Err(SolverError::InvalidConfig { .. })
        ));
    }
}

#[test]
fn gaussian_start_needs_a_positive_std_and_the_rng() {
    let bad = TaylorConfig::default().with_gaussian_start(0.0);
    assert!(matches!(
        TaylorAdmm::<f64>::new(bad),
        Err(SolverError::InvalidConfig { .. })
    ));
    let data = classes(4, 20, 1);
    let mut s = TaylorAdmm::<f64>::new(paper_config(2)).unwrap();
    let err = s.initialize(&net(&[4, 6, 3], 2), &ce(), &data).unwrap_err();
    assert!(err.to_string().contains("initialize_with"), "{err}");
}

/// Runs the solver through the `Driver` with `seed`: the trace and final weights.
fn driven(seed: u64, net_seed: u64, iters: u64) -> (crate::RunOutcome, Vec<f64>) {
    let data = classes(5, 60, 3);
    let mut p = NetProblem::new(net(&[5, 8, 6, 3], net_seed), ce(), data, None).unwrap();
    let mut s = TaylorAdmm::new(paper_config(3)).unwrap();
    let out = Driver::new(Budget::iterations(iters))
        .seed(seed)
        .run(&mut p, &mut s)
        .unwrap();
    (out, p.net.flat_params())
}

#[test]
fn gaussian_start_is_reproducible_from_the_run_seed() {
    let (a, wa) = driven(7, 1, 5);
    let (b, wb) = driven(7, 1, 5);
    assert!(
        matches!(a.status, Status::BudgetExhausted(BudgetKind::Iterations)),
        "{:?}",
        a.status
    );
    let bits = |o: &crate::RunOutcome| -> Vec<(u64, Option<u64>)> {
        o.trace
            .records
            .iter()
            .map(|r| (r.objective.to_bits(), r.surrogate.map(f64::to_bits)))
            .collect()
    };
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(
        wa.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        wb.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // Another seed draws other Z, A: other weights after the first step.
    let (c, wc) = driven(8, 1, 5);
    assert_ne!(bits(&a)[1..], bits(&c)[1..]);
    let diff = wa
        .iter()
        .zip(&wc)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(diff > 1e-3, "seeds 7 and 8 give weights within {diff}");
    // The iteration-0 record is the problem's initial weights, as for every solver.
    assert_eq!(a.trace.records[0].objective, c.trace.records[0].objective);
}

#[test]
fn gaussian_start_weights_do_not_depend_on_the_initial_weights() {
    // "Because our method updates the weights before anything else, the weight
    // matrices do not require any initialization" (Section 6): from the same draws, two
    // different networks give the same weights, up to the 1e-8 relative proximal ridge.
    let data = classes(5, 80, 4);
    let widths = [5, 9, 7, 3];
    let start = |net_seed: u64| {
        let mut s = TaylorAdmm::new(paper_config(3)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let passes = s
            .initialize_with(&net(&widths, net_seed), &ce(), &data, &mut rng, 1)
            .unwrap();
        assert_eq!(passes, (0, 3));
        s
    };
    let (s1, s2) = (start(1), start(2));
    let (v1, v2) = (s1.lifted().unwrap(), s2.lifted().unwrap());
    let n1 = net(&widths, 1);
    for l in 0..3 {
        let scale = v1.w[l].abs().max().max(1.0);
        let d = (&v1.w[l] - &v2.w[l]).abs().max();
        assert!(d < 1e-6 * scale, "layer {}: W differs by {d}", l + 1);
        let db = (&v1.b[l] - &v2.b[l]).abs().max();
        assert!(db < 1e-6 * scale, "layer {}: b differs by {db}", l + 1);
        // ... and not the network's own weights.
        let w0 = &n1.dense(l).unwrap().weight;
        assert!((&v1.w[l] - w0).abs().max() > 1e-2, "layer {} kept W", l + 1);
        assert_eq!(v1.z[l], v2.z[l]);
    }
    assert_eq!(s1.multiplier().iter().filter(|v| **v != 0.0).count(), 0);
    // Layer 1's W-step is the least-squares fit of the random Z_1 on [X; 1]: the
    // normal equations hold (up to the ridge).
    let x = data.inputs();
    let mut xt = DMatrix::from_element(x.nrows() + 1, x.ncols(), 1.0);
    xt.rows_mut(0, x.nrows()).copy_from(x);
    let mut wb = DMatrix::zeros(9, 6);
    wb.columns_mut(0, 5).copy_from(&v1.w[0]);
    wb.column_mut(5).copy_from(&v1.b[0]);
    let normal = (&v1.z[0] - &wb * &xt) * xt.transpose();
    let g = (&v1.z[0] * xt.transpose()).abs().max();
    assert!(
        normal.abs().max() < 1e-6 * g,
        "normal equations off by {}",
        normal.abs().max()
    );
}

#[test]
fn warm_start_sweeps_from_the_gaussian_start_decrease_the_objective() {
    // With Lambda = 0 held during the warm start, every block is an exact minimiser of
    // J: J is finite and non-increasing from the start through the warm-start sweeps,
    // the multiplier stays 0, and the sweeps remove most of the random draws' misfit.
    let data = classes(6, 120, 5);
    let warm = 6;
    let mut s = TaylorAdmm::new(paper_config(warm)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    s.initialize_with(&net(&[6, 10, 8, 3], 1), &ce(), &data, &mut rng, 1)
        .unwrap();
    let j0 = s.augmented_objective(&data, 1).unwrap();
    assert!(j0.is_finite() && j0 > 0.0);
    let mut prev = j0;
    for k in 1..=warm {
        let info = s.iterate(&data, 1).unwrap();
        assert!(!info.multiplier_updated, "iteration {k}");
        assert!(info.augmented.is_finite(), "iteration {k}");
        assert!(
            info.augmented <= prev * (1.0 + 1e-12),
            "iteration {k}: J rose from {prev} to {}",
            info.augmented
        );
        assert!(s.multiplier().iter().all(|v| *v == 0.0));
        prev = info.augmented;
    }
    assert!(prev < 0.5 * j0, "J only fell from {j0} to {prev}");
    // The first iteration after the warm start updates the multiplier.
    let info = s.iterate(&data, 1).unwrap();
    assert!(info.multiplier_updated);
    assert!(s.multiplier().iter().any(|v| *v != 0.0));
}

#[test]
fn gaussian_start_counts_one_w_step_per_layer_and_no_forward_pass() {
    use super::taylor::tally;
    let (n, iters, l) = (40u64, 4u64, 3u64);
    let data = classes(5, n as usize, 6);
    let mut problem = NetProblem::new(net(&[5, 8, 6, 3], 2), ce(), data, None).unwrap();
    let mut s = TaylorAdmm::new(paper_config(2)).unwrap();
    let t0 = tally::read();
    let out = Driver::new(Budget::iterations(iters))
        .run(&mut problem, &mut s)
        .unwrap();
    let t1 = tally::read();
    let [maps, sums, transposed, _] = std::array::from_fn(|i| t1[i] - t0[i]);
    assert_eq!(maps, iters * l);
    assert_eq!((sums, transposed), ((iters + 1) * l, iters * (l - 1)));
    let c = out.counters;
    assert_eq!((c.forward, c.backward), (maps, sums + transposed));
    assert_eq!(c.samples_seen, n * (maps + sums + transposed));
    let r0 = &out.trace.records[0];
    assert_eq!((r0.iteration, r0.forward, r0.backward), (0, 0, l));
}
