//! Block MM's default certified path (the lower blocks on the ray bound since session 18),
//! alone and with the top block's chord/tangent bound, on extreme inputs: 300 seeded
//! random ReLU nets with two or three hidden layers, inputs
//! scaled from 0 and 1e-300 to 1e300, weights scaled from 1e-150 to 1e50, every L2
//! weight. Each run must end `Ok` (any status) or with a typed error, never a panic, and
//! its recorded objective must never rise (the certificate, where the bound applies,
//! and the safeguarded path's check elsewhere), and no certified step may need the
//! guard that restores a block whose certified step raised the objective
//! (`GUARD_RESTORES`: a violated certificate).

use std::panic::{AssertUnwindSafe, catch_unwind};

use autodiff::Reduction;
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Loss, LossKind, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::tests::{extra, net};
use super::*;
use crate::{Budget, Driver, NetProblem, Status};

/// One random case with hidden activation `h`: the problem (or `None` when building it
/// is refused, a typed error of `nets`).
pub(crate) fn case(rng: &mut ChaCha8Rng, h: Activation) -> Option<NetProblem<f64>> {
    case_with(rng, h, LossKind::SoftmaxCrossEntropy)
}

/// [`case`] with the loss `kind`: squared error takes dense targets scaled from 0 to
/// 1e150 (drawn after everything the cross-entropy case draws, so that its cases keep
/// their draws).
pub(crate) fn case_with(
    rng: &mut ChaCha8Rng,
    h: Activation,
    kind: LossKind,
) -> Option<NetProblem<f64>> {
    const Y_SCALES: [f64; 6] = [0.0, 1e-8, 1.0, 1e3, 1e8, 1e150];
    const X_SCALES: [f64; 9] = [0.0, 1e-300, 1e-150, 1e-8, 1.0, 1e3, 1e8, 1e150, 1e300];
    const W_SCALES: [f64; 6] = [1e-150, 1e-8, 1e-2, 1.0, 1e4, 1e50];
    let hidden = rng.random_range(2..=3);
    let mut widths = vec![rng.random_range(1..=5)];
    for _ in 0..hidden {
        widths.push(rng.random_range(1..=7));
    }
    let classes = rng.random_range(2..=3);
    widths.push(classes);
    let mut model = net::<f64>(&widths, h, rng.random::<u64>());
    for k in 0..=hidden {
        let s = W_SCALES[rng.random_range(0..W_SCALES.len())];
        let d = model.dense_mut(k)?;
        d.weight.iter_mut().for_each(|w| *w *= s);
    }
    let n = rng.random_range(1..=24);
    let sx = X_SCALES[rng.random_range(0..X_SCALES.len())];
    let mut x = DMatrix::zeros(widths[0], n);
    for v in x.iter_mut() {
        *v = sx * crate::testing::normal(rng);
    }
    if n > 1 && rng.random_bool(0.3) {
        // Duplicate samples (a rank-deficient Gram matrix).
        let first = x.column(0).clone_owned();
        x.column_mut(n - 1).copy_from(&first);
    }
    let labels = (0..n).map(|_| rng.random_range(0..classes)).collect();
    let mut targets = Targets::Labels { labels, classes };
    let mut loss = Loss::new(kind, Reduction::Mean);
    loss.l2 = [0.0, 1e-4, 1.0][rng.random_range(0..3)];
    if kind == LossKind::Mse && rng.random_bool(0.7) {
        let sy = Y_SCALES[rng.random_range(0..Y_SCALES.len())];
        targets = Targets::Dense(DMatrix::from_fn(classes, n, |_, _| {
            sy * crate::testing::normal(rng)
        }));
    }
    let data = Dataset::new(x, targets).ok()?;
    NetProblem::new(model, loss, data, None).ok()
}

/// Tally of extreme-input runs: runs that returned, typed errors, panics, and the
/// runs' statuses.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Runs that returned `Ok` (any status).
    pub runs: usize,
    /// Runs that returned a typed error.
    pub errors: usize,
    /// Runs that panicked (must stay 0).
    pub panics: usize,
    /// Statuses of the returned runs, by kind.
    pub statuses: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    /// Runs `solver` on `p` for `iterations` steps, catching panics, and checks what
    /// every run must satisfy: a `Diverged` status only at the initial point (an initial
    /// objective that is not finite), a `Failed` one only where `failed_ok` accepts its
    /// message, and a recorded objective that never rises from a finite value. Returns
    /// the records of a run that returned.
    pub(crate) fn run<S: crate::Solver<NetProblem<f64>>>(
        &mut self,
        label: &str,
        p: &mut NetProblem<f64>,
        solver: &mut S,
        iterations: u64,
        failed_ok: impl Fn(&str) -> bool,
    ) -> Option<Vec<crate::Record>> {
        let out = catch_unwind(AssertUnwindSafe(|| {
            Driver::new(Budget::iterations(iterations)).run(p, solver)
        }));
        let Ok(out) = out else {
            self.panics += 1;
            eprintln!("{label}: panic");
            return None;
        };
        let Ok(out) = out else {
            self.errors += 1;
            return None;
        };
        self.runs += 1;
        let recs = out.trace.records;
        let kind = match &out.status {
            Status::BudgetExhausted(_) => "budget".to_string(),
            Status::Converged { .. } => "converged".to_string(),
            Status::Diverged { reason } => {
                // Only where the initial objective is already undefined (logits that
                // overflow to infinities of both signs).
                let first = recs.first().map(|r| r.objective);
                assert!(
                    recs.len() == 1
                        && first.is_some_and(|f| !f.is_finite())
                        && reason.ends_with("at the initial point (iteration 0, before any step)"),
                    "{label}: diverged ({reason}) from {first:?}"
                );
                "diverged at the start".to_string()
            }
            Status::Failed { error } => {
                assert!(failed_ok(error), "{label}: failed: {error}");
                format!("failed: {}", error.split(':').next().unwrap_or(""))
            }
            other => format!("{other:?}"),
        };
        *self.statuses.entry(kind).or_default() += 1;
        for w in recs.windows(2) {
            assert!(
                w[1].objective <= w[0].objective || !w[0].objective.is_finite(),
                "{label}: the objective rose at iteration {}: {} -> {}",
                w[1].iteration,
                w[0].objective,
                w[1].objective
            );
        }
        Some(recs)
    }
}

/// The chord/tangent bounds that ran and failed over the `hidden` blocks of a run's
/// sweeps (`rays_l`, `bound_errors_l`; absent extras count 0).
fn ray_counts(recs: &[crate::Record], hidden: usize) -> (f64, f64) {
    let (mut rays, mut failures) = (0.0, 0.0);
    for r in recs.iter().skip(1) {
        for i in 0..hidden {
            let ray = extra(r, &format!("rays_{i}"));
            let err = extra(r, &format!("bound_errors_{i}"));
            rays += if ray.is_nan() { 0.0 } else { ray };
            failures += if err.is_nan() { 0.0 } else { err };
        }
    }
    (rays, failures)
}

#[test]
fn default_block_mm_on_extreme_inputs_never_panics_and_never_rises() {
    use super::certified_block::GUARD_RESTORES;
    GUARD_RESTORES.with(|g| g.set(0));
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let (mut tally, mut rays, mut failures) = (Tally::default(), 0.0, 0.0);
    let mut case_seed = 0;
    // The default, and the default with the top block's chord/tangent bound as well
    // (`block-mm-chord`), on every case.
    let configs = [
        BlockMmConfig::default(),
        BlockMmConfig {
            top_block_bound: true,
            ..Default::default()
        },
    ];
    for c in 0..600 {
        // Both configurations get the same case: one seed per pair.
        if c % 2 == 0 {
            case_seed = rng.random::<u64>();
        }
        let Some(mut p) = case(&mut ChaCha8Rng::seed_from_u64(case_seed), Activation::Relu) else {
            continue;
        };
        let hidden = p.net.mlp_view().map(|v| v.widths.len() - 2).unwrap_or(0);
        let mut solver = configs[c % 2].clone().build::<f64>().unwrap();
        let label = format!("case {c}");
        // No run may fail (an overflowed bound gives way to the safeguarded path).
        let Some(recs) = tally.run(&label, &mut p, &mut solver, 3, |_| false) else {
            continue;
        };
        let (r, f) = ray_counts(&recs, hidden);
        (rays, failures) = (rays + r, failures + f);
    }
    println!("{tally:?}; {rays} ray bounds, {failures} failed bounds");
    let violated = GUARD_RESTORES.with(|g| g.get());
    println!("{violated} certified steps restored by the guard");
    assert_eq!(violated, 0, "certificates violated");
    assert_eq!((tally.panics, tally.errors), (0, 0), "{tally:?}");
    assert!(tally.runs >= 400, "{tally:?}");
    assert!(rays >= 100.0, "the ray bound ran {rays} times");
}

/// The default block MM under squared error (the lower blocks on the ray bound since
/// session 19) on 300 extreme cases of the same kind, with dense targets scaled from 0
/// to 1e150 on 70% of them: no panic, no typed error, no rise, no guard restore, and
/// the ray bound runs.
#[test]
fn default_block_mm_under_squared_error_on_extreme_inputs() {
    use super::certified_block::GUARD_RESTORES;
    GUARD_RESTORES.with(|g| g.set(0));
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let (mut tally, mut rays, mut failures) = (Tally::default(), 0.0, 0.0);
    for c in 0..300 {
        let mut case_rng = ChaCha8Rng::seed_from_u64(rng.random::<u64>());
        let Some(mut p) = case_with(&mut case_rng, Activation::Relu, LossKind::Mse) else {
            continue;
        };
        let hidden = p.net.mlp_view().map(|v| v.widths.len() - 2).unwrap_or(0);
        let mut solver = BlockMmConfig::default().build::<f64>().unwrap();
        let label = format!("case {c}");
        let Some(recs) = tally.run(&label, &mut p, &mut solver, 3, |_| false) else {
            continue;
        };
        let (r, f) = ray_counts(&recs, hidden);
        (rays, failures) = (rays + r, failures + f);
    }
    println!("squared error: {tally:?}; {rays} ray bounds, {failures} failed bounds");
    let violated = GUARD_RESTORES.with(|g| g.get());
    assert_eq!(violated, 0, "certificates violated");
    assert_eq!((tally.panics, tally.errors), (0, 0), "{tally:?}");
    assert!(tally.runs >= 200, "{tally:?}");
    assert!(rays >= 100.0, "the ray bound ran {rays} times");
}
