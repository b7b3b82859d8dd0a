//! `--tune`: the same hyperparameter search for every solver, and the per-solver
//! declarations the runner needs (what to tune, whether the method promises a monotone
//! decrease of the objective).
//!
//! ## Declaring a solver: one line
//!
//! Every registry entry has one line in [`DECLARATIONS`], keyed by its display name:
//!
//! ```text
//! tuned("adam", &["/lr"]),                                  // one parameter
//! tuned("bcd", &["/rho", "/gamma", "/alpha"]).monotone(),   // joint scaling, monotone
//! fixed("last-layer-mm", "closed-form step ...").monotone(), // nothing to tune (why)
//! ```
//!
//! A parameter is a JSON pointer (RFC 6901) into the serde form of the solver's config
//! (what `results.json` shows under `hyperparameters`), e.g. `/penalty/Adaptive/rho0`
//! for a field of an enum variant. Integer fields (L-BFGS's history) are rounded, at
//! least 1.
//!
//! ## The grid: the same size for every solver
//!
//! With `P` points (default [`DEFAULT_TUNE_POINTS`] = 5) the k-th grid point multiplies
//! EVERY declared parameter by the same factor
//! `s_k = 10^(SPAN (2k/(P-1) - 1))`, k = 0..P-1, `SPAN` = [`TUNE_SPAN_DECADES`] = 1:
//! `{0.1, 0.316, 1, 3.16, 10}` x the documented default. Single-parameter solvers get a
//! log-spaced grid centred on their default; multi-parameter solvers (Taylor ADMM's
//! gamma and beta, dlADMM's rho schedule, BCD's rho, gamma, alpha) move all their
//! parameters together along one log-line through the defaults (a joint log-scaling),
//! so every solver gets exactly `P` candidates and no family gets a larger search.
//! The default itself is always a candidate (odd `P`).
//!
//! ## Selection, never on the test set
//!
//! For each (problem, seed) a validation split is carved from the TRAINING set: a
//! fraction [`VALIDATION_FRACTION`] = 0.2 (stratified by class for labelled data), drawn
//! from `ChaCha8Rng::seed_from_u64(seed)` on stream [`VALIDATION_STREAM`]. Every grid
//! point runs on the remaining 80% from the seed's initial weights under the problem's
//! full budget (same data passes, same wall-time cap); the candidate with the lowest
//! FINAL VALIDATION OBJECTIVE (the loss's data term on the validation samples, no
//! penalty) wins; diverged, failed or non-finite candidates never win; ties go to the
//! first in grid order; if none is finite the default wins. The chosen values then run
//! on the full training set, and that run is reported (`tuned: true`, with its
//! [`TuningRecord`]). The test set is never looked at. NMF problems have no held-out
//! samples: their (parameter-free) solvers are not tuned.
//!
//! The search's cost (wall time, solver time, data passes in units of the FULL training
//! set) is recorded per reported run, and the report adds tuning-inclusive columns.
//!
//! ## Edges: one extension, then a flag
//!
//! A choice at the grid's first or last point means the optimum may lie outside the
//! grid. The search then extends ONCE in that direction by [`extension_points`]`(P)` =
//! `(P-1)/2` more points at the same log spacing (for `P = 5`: two points, one more
//! decade, e.g. `{0.0316, 0.01}` x the default below the grid), the same number for every
//! solver whose choice hits an edge, charged to the tuning cost like every candidate;
//! selection is then redone over all candidates (ties still go to the original grid). If
//! the final choice is still the smallest or largest scale factor tried, the search was
//! not bracketed: the [`TuningRecord`] says so (`extended`, `at_edge`) and the report
//! marks the value `(at edge: not bracketed)`. No further extension is made, so the cost
//! of a search is bounded by `P + (P-1)/2` runs for every solver.

use autodiff::Real;
use nets::Dataset;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

pub use crate::results::TuningRecord;

/// Grid points per solver when `--tune` is given without `--tune-points`.
pub const DEFAULT_TUNE_POINTS: usize = 5;
/// Half-width of the grid in decades around the default.
pub const TUNE_SPAN_DECADES: f64 = 1.0;
/// Fraction of the training set held out for the selection.
pub const VALIDATION_FRACTION: f64 = 0.2;
/// Stream of the seed's ChaCha8 generator the validation split is drawn from (0: data,
/// 1: initial weights).
pub const VALIDATION_STREAM: u64 = 2;

/// What the runner knows about one registered solver besides its factory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Declaration {
    /// The registry display name.
    pub name: &'static str,
    /// JSON pointers of the tuned parameters (empty: nothing to tune).
    pub tune: &'static [&'static str],
    /// Why nothing is tuned (for reports), when `tune` is empty.
    pub why_not_tuned: &'static str,
    /// The method promises a monotone decrease of the true training objective (MM, BCD,
    /// lifted, monotone NMF updates, certified MM): the report flags any increase.
    pub monotone: bool,
}

/// A declaration with tuned parameters.
pub const fn tuned(name: &'static str, tune: &'static [&'static str]) -> Declaration {
    Declaration {
        name,
        tune,
        why_not_tuned: "",
        monotone: false,
    }
}

/// A declaration of a solver with nothing to tune, and why.
pub const fn fixed(name: &'static str, why: &'static str) -> Declaration {
    Declaration {
        name,
        tune: &[],
        why_not_tuned: why,
        monotone: false,
    }
}

impl Declaration {
    /// The same declaration, promising a monotone decrease.
    pub const fn monotone(self) -> Self {
        Declaration {
            monotone: true,
            ..self
        }
    }
}

const MULTIPLICATIVE: &str =
    "multiplicative updates: no step size or penalty (parameter-free), nothing to tune";

/// One line per registered solver (see the module doc).
#[rustfmt::skip]
pub const DECLARATIONS: &[Declaration] = &[
    tuned("adam", &["/lr"]),
    tuned("sgd-momentum", &["/lr"]),
    tuned("lbfgs", &["/history"]),
    tuned("inna", &["/lr"]),
    tuned("step-tuned", &["/alpha"]),
    tuned("gd", &["/lr"]),
    tuned("adamw", &["/lr"]),
    tuned("rmsprop", &["/lr"]),
    tuned("adagrad", &["/lr"]),
    tuned("block-mm", &["/initial_scale", "/certified_trust_region"]).monotone(),
    tuned("block-mm-chord", &["/initial_scale", "/certified_trust_region"]).monotone(),
    tuned("block-mm-taylor", &["/initial_scale", "/certified_trust_region"]).monotone(),
    tuned("block-mm-ray-top", &["/initial_scale", "/certified_trust_region"]).monotone(),
    tuned("block-mm-safeguarded", &["/initial_scale"]).monotone(),
    // Retired names (the certified path, then the lower blocks' ray bound, became
    // `block-mm`'s default): results written before still get their monotone check in
    // the report.
    tuned("block-mm-certified", &["/initial_scale", "/certified_trust_region"]).monotone(),
    tuned("block-mm-ray", &["/initial_scale", "/certified_trust_region"]).monotone(),
    fixed("last-layer-mm", "closed-form step with the loss's exact curvature bound: no step size or penalty").monotone(),
    tuned("agd", &["/gain"]),
    tuned("admm-taylor", &["/gamma", "/beta"]),
    tuned("dladmm", &["/penalty/Adaptive/rho0", "/penalty/Adaptive/rho_max"]),
    tuned("bcd", &["/rho", "/gamma", "/alpha"]).monotone(),
    tuned("mac", &["/mu0"]),
    tuned("lifted-fenchel", &["/lambda"]).monotone(),
    tuned("proxprop", &["/tau_prox"]),
    // Certified MM (branch cert-solvers): the initial trust region of the step sizes.
    tuned("safe-adam", &["/trust_region"]).monotone(),
    tuned("safe-layerwise", &["/trust_region"]).monotone(),
    tuned("safe-gd", &["/trust_region"]).monotone(),
    tuned("safe-heavy-ball", &["/trust_region"]).monotone(),
    fixed("nmf-mm", MULTIPLICATIVE).monotone(),
    fixed("nmf-heuristic", MULTIPLICATIVE),
    fixed("nmf-me", MULTIPLICATIVE).monotone(),
];

/// The declaration of the solver called `name`, if any.
pub fn declaration(name: &str) -> Option<&'static Declaration> {
    DECLARATIONS.iter().find(|d| d.name == name)
}

/// The `points` scale factors `10^(SPAN (2k/(points-1) - 1))` (one point: `[1]`).
pub fn scale_factors(points: usize) -> Vec<f64> {
    if points <= 1 {
        return vec![1.0; points];
    }
    let half = (points - 1) as f64 / 2.0;
    (0..points)
        .map(|k| 10f64.powf(TUNE_SPAN_DECADES * (k as f64 - half) / half))
        .collect()
}

/// Which end of the tried scale factors a choice sits at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridEdge {
    /// The smallest factor tried.
    Low,
    /// The largest factor tried.
    High,
}

impl GridEdge {
    /// `"low"` or `"high"` (as recorded in `results.json`).
    pub fn label(self) -> &'static str {
        match self {
            GridEdge::Low => "low",
            GridEdge::High => "high",
        }
    }
}

/// Points added beyond an edge (module doc): `(points - 1) / 2`, at least 1 for a grid
/// of 2 or more points, 0 for a single point.
pub fn extension_points(points: usize) -> usize {
    if points <= 1 {
        0
    } else {
        ((points - 1) / 2).max(1)
    }
}

/// The factors beyond `edge` of the `points`-point grid, continuing its log spacing
/// `2 SPAN / (points - 1)` decades: for the low edge `10^(-SPAN - k step)`, for the high
/// edge `10^(SPAN + k step)`, `k = 1..=extension_points(points)`, nearest first.
pub fn extension_factors(points: usize, edge: GridEdge) -> Vec<f64> {
    if points <= 1 {
        return Vec::new();
    }
    let step = 2.0 * TUNE_SPAN_DECADES / (points - 1) as f64;
    (1..=extension_points(points))
        .map(|k| {
            let d = TUNE_SPAN_DECADES + k as f64 * step;
            10f64.powf(match edge {
                GridEdge::Low => -d,
                GridEdge::High => d,
            })
        })
        .collect()
}

/// Whether `factors[chosen]` is the smallest or the largest of `factors` (None when it
/// is neither, when all factors are equal, or when `chosen` is out of range).
pub fn edge_of(factors: &[f64], chosen: usize) -> Option<GridEdge> {
    let c = *factors.get(chosen)?;
    let lo = factors.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = factors.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo == hi {
        None
    } else if c == lo {
        Some(GridEdge::Low)
    } else if c == hi {
        Some(GridEdge::High)
    } else {
        None
    }
}

/// Sets `value` at JSON pointer `ptr` of `config`, which must hold a number there; an
/// integer slot gets the value rounded (at least 1).
pub fn set_number(config: &mut Value, ptr: &str, value: f64) -> Result<(), String> {
    let slot = config
        .pointer_mut(ptr)
        .ok_or_else(|| format!("the config has no field `{ptr}`"))?;
    if slot.is_u64() || slot.is_i64() {
        *slot = serde_json::json!((value.round() as i64).max(1));
    } else if slot.is_number() {
        *slot = serde_json::json!(value);
    } else {
        return Err(format!("`{ptr}` is not a number ({slot})"));
    }
    Ok(())
}

/// The numeric value at `ptr` of `config`.
pub fn get_number(config: &Value, ptr: &str) -> Result<f64, String> {
    config
        .pointer(ptr)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("the config has no numeric field `{ptr}`"))
}

/// The grid of one solver: for each scale factor, the (pointer, value) overrides,
/// computed from the default config (its serde form). Integer parameters are rounded.
pub fn grid(
    default_config: &Value,
    params: &[&str],
    points: usize,
) -> Result<Vec<Vec<(String, f64)>>, String> {
    grid_at(default_config, params, &scale_factors(points))
}

/// The candidates for the given scale `factors` (each multiplies every parameter's
/// default; integer parameters rounded, at least 1): [`grid`] and the edge extension.
pub fn grid_at(
    default_config: &Value,
    params: &[&str],
    factors: &[f64],
) -> Result<Vec<Vec<(String, f64)>>, String> {
    let defaults = params
        .iter()
        .map(|p| {
            let v = get_number(default_config, p)?;
            let int = default_config.pointer(p).is_some_and(Value::is_u64);
            Ok((p.to_string(), v, int))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(factors
        .iter()
        .map(|&s| {
            defaults
                .iter()
                .map(|(p, v, int)| {
                    let x = v * s;
                    (p.clone(), if *int { x.round().max(1.0) } else { x })
                })
                .collect()
        })
        .collect())
}

/// Index of the winning candidate: the lowest finite score, first on ties; `fallback`
/// when no score is finite.
pub fn select(scores: &[Option<f64>], fallback: usize) -> usize {
    scores
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|v| v.is_finite()).map(|v| (i, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(fallback, |(i, _)| i)
}

/// The selection rule as recorded in every [`TuningRecord`].
pub const SELECTION_RULE: &str = "lowest final validation objective (data term on a 20% \
    validation split of the training set; test set unused), same budget and initial \
    weights for every candidate; then the chosen values run on the full training set";

/// The validation split of `train` for `--tune` (this module): stratified by class
/// for labels, uniform for dense targets; (training part, validation part).
pub fn validation_split<T: Real>(
    train: &Dataset<T>,
    seed: u64,
) -> Result<(Dataset<T>, Dataset<T>), crate::BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(VALIDATION_STREAM);
    let keep = 1.0 - VALIDATION_FRACTION;
    let (fit, val) = match train.targets() {
        nets::Targets::Labels { labels, classes } => {
            crate::data::stratified_split(labels, *classes, keep, &mut rng)?
        }
        nets::Targets::Dense(_) => crate::data::random_split(train.len(), keep, &mut rng)?,
    };
    let sub = |idx: &[usize]| {
        train
            .subset(idx)
            .map_err(|e| crate::BenchError::arg("validation split", e.to_string()))
    };
    Ok((sub(&fit)?, sub(&val)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn five_points_span_two_decades_centred_on_the_default() {
        let s = scale_factors(5);
        let want = [0.1, 10f64.powf(-0.5), 1.0, 10f64.powf(0.5), 10.0];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-12 * b, "{a} vs {b}");
        }
        assert_eq!(scale_factors(1), vec![1.0]);
        assert_eq!(scale_factors(3), vec![0.1, 1.0, 10.0]);
    }

    #[test]
    fn joint_grid_scales_every_parameter_and_rounds_integers() {
        let cfg = json!({"gamma": 10.0, "beta": 1.0, "history": 10, "penalty": {"Adaptive": {"rho0": 1e-6}}});
        let g = grid(&cfg, &["/gamma", "/beta"], 5).unwrap();
        assert_eq!(g.len(), 5);
        assert_eq!(g[0], vec![("/gamma".into(), 1.0), ("/beta".into(), 0.1)]);
        assert_eq!(g[2], vec![("/gamma".into(), 10.0), ("/beta".into(), 1.0)]);
        let h = grid(&cfg, &["/history"], 5).unwrap();
        let hist: Vec<f64> = h.iter().map(|p| p[0].1).collect();
        assert_eq!(hist, vec![1.0, 3.0, 10.0, 32.0, 100.0]);
        let r = grid(&cfg, &["/penalty/Adaptive/rho0"], 3).unwrap();
        assert!((r[2][0].1 - 1e-5).abs() < 1e-18);
        assert!(grid(&cfg, &["/nope"], 5).unwrap_err().contains("/nope"));
        let mut c = cfg.clone();
        set_number(&mut c, "/history", 31.6).unwrap();
        assert_eq!(c["history"], 32);
        set_number(&mut c, "/penalty/Adaptive/rho0", 0.5).unwrap();
        assert_eq!(c["penalty"]["Adaptive"]["rho0"], 0.5);
        assert!(set_number(&mut c, "/penalty", 1.0).is_err());
    }

    #[test]
    fn extension_continues_the_log_spacing_beyond_the_edge() {
        assert_eq!(extension_points(5), 2);
        assert_eq!(extension_points(3), 1);
        assert_eq!(extension_points(2), 1);
        assert_eq!(extension_points(1), 0);
        let lo = extension_factors(5, GridEdge::Low);
        let hi = extension_factors(5, GridEdge::High);
        let want_lo = [10f64.powf(-1.5), 0.01];
        let want_hi = [10f64.powf(1.5), 100.0];
        for (a, b) in lo.iter().zip(want_lo).chain(hi.iter().zip(want_hi)) {
            assert!((a - b).abs() < 1e-12 * b, "{a} vs {b}");
        }
        assert_eq!(extension_factors(3, GridEdge::High), vec![100.0]);
        assert!(extension_factors(1, GridEdge::Low).is_empty());
        // The extended grid scales every parameter jointly, like the grid.
        let cfg = json!({"gamma": 10.0, "beta": 1.0});
        let g = grid_at(&cfg, &["/gamma", "/beta"], &[0.01]).unwrap();
        assert_eq!(
            g,
            vec![vec![("/gamma".into(), 0.1), ("/beta".into(), 0.01)]]
        );
    }

    #[test]
    fn edges_are_the_extreme_factors_tried() {
        let mut f = scale_factors(5);
        assert_eq!(edge_of(&f, 0), Some(GridEdge::Low));
        assert_eq!(edge_of(&f, 4), Some(GridEdge::High));
        assert_eq!(edge_of(&f, 2), None);
        assert_eq!(edge_of(&f, 9), None);
        // After extending low, the old low edge is bracketed; the new last point is the edge.
        f.extend(extension_factors(5, GridEdge::Low));
        assert_eq!(edge_of(&f, 0), None);
        assert_eq!(edge_of(&f, 6), Some(GridEdge::Low));
        assert_eq!(edge_of(&[1.0], 0), None);
        assert_eq!(GridEdge::High.label(), "high");
    }

    #[test]
    fn selection_takes_the_lowest_finite_score_first_on_ties() {
        assert_eq!(select(&[Some(3.0), None, Some(1.0), Some(1.0)], 2), 2);
        assert_eq!(select(&[None, Some(f64::NAN), None], 1), 1);
        assert_eq!(select(&[Some(f64::INFINITY), Some(5.0)], 0), 1);
    }
}
