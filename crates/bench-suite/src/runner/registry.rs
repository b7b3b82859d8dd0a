//! The solver registry: every method `cargo xtask compare` can run, with a short display
//! name, its family, whether it is in the quick suite, a description, and a factory that
//! builds it (for `f32` and `f64`) from its documented default configuration.
//!
//! Registering a solver is ONE entry in [`solver_registry`], made by one of two macros:
//!
//! ```text
//! net_solver!("adam", Gradient, quick, "Adam, PyTorch defaults", |_ctx| AdamConfig::default()),
//! nmf_solver!("nmf-me", quick, "ME updates", |ctx| BetaNmfConfig { beta: ctx.beta, rule: Rule::Me, ..Default::default() }, |c| BetaNmf::new(c)),
//! ```
//!
//! - [`net_solver!`]`(name, Family, quick | full, "description", |ctx| CONFIG)` for a
//!   method on network problems whose config (serde-serialisable, with
//!   `build::<T>() -> Result<S, SolverError>`, `S: Solver<NetProblem<T>>`) is `CONFIG`;
//!   append `, |c, T| EXPR` when the solver is built another way (e.g.
//!   `|c, T| Mac::<T>::new(c)`).
//! - [`nmf_solver!`]`(name, quick | full, "description", |ctx| CONFIG, |c| EXPR)` for a
//!   beta-NMF method (`ctx.beta` is the problem's beta).
//!
//! The configuration is serialised into the run's `hyperparameters` (so every result
//! states what was run); with `--tune`, the parameters the entry declares in
//! [`super::tune::DECLARATIONS`] (one more line per solver) are replaced through serde
//! ([`apply_overrides`]) for each grid point.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use solvers::nmf::NmfProblem;
use solvers::{NetProblem, Solver, SolverError};

use crate::problems::SolverFamily;

/// What a factory may depend on besides the registry entry.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SolverCtx {
    /// beta of the NMF problem (0 for network problems).
    pub beta: f64,
    /// Values imposed by the `--tune` search: (JSON pointer into the config's serde
    /// form, value); empty: the config's defaults.
    pub overrides: Vec<(String, f64)>,
    /// The network problem's loss kind (None for NMF), for methods whose documented
    /// default depends on the kind of targets (e.g. the ADMM output loss).
    pub loss: Option<nets::LossKind>,
    /// Fields of the configuration replaced through its serde form (name -> JSON value),
    /// applied after the `--tune` overrides; an unknown name is an error listing the valid
    /// ones (the Python package's solver keyword arguments).
    pub options: BTreeMap<String, Value>,
}

/// A solver built by a factory, with the hyperparameters it was built from.
pub struct Built<P> {
    /// The solver, boxed (runs through `solvers`' blanket `Solver for Box<S>`).
    pub solver: Box<dyn Solver<P>>,
    /// The configuration as JSON (name -> value).
    pub hyperparameters: BTreeMap<String, Value>,
}

/// Factory of a network solver for scalar `T`.
pub type NetFactory<T> = fn(&SolverCtx) -> Result<Built<NetProblem<T>>, SolverError>;
/// Factory of a beta-NMF solver for scalar `T`.
pub type NmfFactory<T> = fn(&SolverCtx) -> Result<Built<NmfProblem<T>>, SolverError>;

/// How an entry builds its solver: for network problems or for NMF, in both precisions.
#[derive(Clone, Copy)]
pub enum Factory {
    /// A `Solver<NetProblem<T>>`.
    Network {
        /// Single precision.
        f32: NetFactory<f32>,
        /// Double precision.
        f64: NetFactory<f64>,
    },
    /// A `Solver<NmfProblem<T>>`.
    Nmf {
        /// Single precision.
        f32: NmfFactory<f32>,
        /// Double precision.
        f64: NmfFactory<f64>,
    },
}

/// One registered solver.
#[derive(Clone)]
pub struct SolverEntry {
    /// Short display name used on the command line and in reports, e.g. `adam`.
    pub name: &'static str,
    /// Its family; it runs on the problems that list this family.
    pub family: SolverFamily,
    /// Part of the default quick suite.
    pub quick: bool,
    /// One line: method, source, the defaults used.
    pub description: &'static str,
    /// The factory.
    pub factory: Factory,
}

impl std::fmt::Debug for SolverEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolverEntry")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("quick", &self.quick)
            .finish()
    }
}

/// The config with the `--tune` overrides of `ctx` applied through its serde form
/// (see [`super::tune::set_number`]). Errors if a pointer does not name a number.
#[doc(hidden)]
pub fn apply_overrides<C: Serialize + DeserializeOwned>(
    config: C,
    ctx: &SolverCtx,
) -> Result<C, SolverError> {
    let config = if ctx.overrides.is_empty() {
        config
    } else {
        let mut v = serde_json::to_value(&config)?;
        for (ptr, value) in &ctx.overrides {
            super::tune::set_number(&mut v, ptr, *value)
                .map_err(|m| SolverError::Problem(format!("--tune: {m}")))?;
        }
        serde_json::from_value(v)?
    };
    apply_options(config, &ctx.options)
}

/// The config with the fields named in `options` replaced through its serde form.
/// Errors name an unknown field (listing the valid ones) or a value of the wrong type.
#[doc(hidden)]
pub fn apply_options<C: Serialize + DeserializeOwned>(
    config: C,
    options: &BTreeMap<String, Value>,
) -> Result<C, SolverError> {
    if options.is_empty() {
        return Ok(config);
    }
    let mut v = serde_json::to_value(&config)?;
    let Value::Object(fields) = &mut v else {
        return Err(SolverError::Problem(
            "this solver's configuration has no named fields to set".into(),
        ));
    };
    for (name, value) in options {
        match fields.get_mut(name) {
            Some(slot) => *slot = value.clone(),
            None => {
                let valid: Vec<&str> = fields.keys().map(String::as_str).collect();
                return Err(SolverError::Problem(format!(
                    "unknown solver option `{name}`; valid options: {}",
                    valid.join(", ")
                )));
            }
        }
    }
    serde_json::from_value(v).map_err(|e| {
        SolverError::Problem(format!(
            "invalid solver option value ({e}); options given: {}",
            serde_json::to_string(options).unwrap_or_default()
        ))
    })
}

/// The config's serde form as a name -> value map (a non-object config is stored under
/// `config`).
#[doc(hidden)]
pub fn hyperparameters<C: Serialize>(config: &C) -> BTreeMap<String, Value> {
    match serde_json::to_value(config) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        Ok(v) => BTreeMap::from([("config".to_string(), v)]),
        Err(e) => BTreeMap::from([("config_error".to_string(), Value::String(e.to_string()))]),
    }
}

/// Boxes a built solver with its hyperparameters.
#[doc(hidden)]
pub fn boxed<P: solvers::Problem, S: Solver<P> + 'static>(
    solver: Result<S, SolverError>,
    hyperparameters: BTreeMap<String, Value>,
) -> Result<Built<P>, SolverError> {
    Ok(Built {
        solver: Box::new(solver?),
        hyperparameters,
    })
}

/// `quick` -> `true`, `full` -> `false` (used by the registration macros).
#[doc(hidden)]
#[macro_export]
macro_rules! __strata_quick {
    (quick) => {
        true
    };
    (full) => {
        false
    };
}

/// Registers a network solver (see the `bench_suite::runner` module doc):
/// `net_solver!(name, Family, quick | full, "description", |ctx| CONFIG)`, optionally
/// followed by `, |c, T| BUILD` (default `c.build::<T>()`). `Family` is a
/// [`SolverFamily`] variant; `CONFIG` is a serde-serialisable configuration and may
/// read the [`SolverCtx`].
#[macro_export]
macro_rules! net_solver {
    ($name:literal, $family:ident, $quick:ident, $desc:literal, |$ctx:pat_param| $cfg:expr) => {
        $crate::net_solver!($name, $family, $quick, $desc, |$ctx| $cfg, |c, T| c
            .build::<T>())
    };
    ($name:literal, $family:ident, $quick:ident, $desc:literal, |$ctx:pat_param| $cfg:expr,
     |$c:ident, $t:ident| $build:expr) => {
        $crate::runner::SolverEntry {
            name: $name,
            family: $crate::problems::SolverFamily::$family,
            quick: $crate::__strata_quick!($quick),
            description: $desc,
            factory: $crate::runner::Factory::Network {
                f32: {
                    fn make(
                        ctx: &$crate::runner::SolverCtx,
                    ) -> ::std::result::Result<
                        $crate::runner::Built<$crate::runner::NetProblem<f32>>,
                        $crate::runner::SolverError,
                    > {
                        #[allow(dead_code)]
                        type $t = f32;
                        let $c = {
                            let $ctx = ctx;
                            $crate::runner::apply_overrides($cfg, ctx)?
                        };
                        let hp = $crate::runner::hyperparameters(&$c);
                        $crate::runner::boxed($build, hp)
                    }
                    make
                },
                f64: {
                    fn make(
                        ctx: &$crate::runner::SolverCtx,
                    ) -> ::std::result::Result<
                        $crate::runner::Built<$crate::runner::NetProblem<f64>>,
                        $crate::runner::SolverError,
                    > {
                        #[allow(dead_code)]
                        type $t = f64;
                        let $c = {
                            let $ctx = ctx;
                            $crate::runner::apply_overrides($cfg, ctx)?
                        };
                        let hp = $crate::runner::hyperparameters(&$c);
                        $crate::runner::boxed($build, hp)
                    }
                    make
                },
            },
        }
    };
}

/// Registers a beta-NMF solver (see the `bench_suite::runner` module doc):
/// `nmf_solver!(name, quick | full, "description", |ctx| CONFIG, |c| BUILD)`; `ctx.beta`
/// is the problem's beta and `BUILD` gives `Result<S, SolverError>` with
/// `S: Solver<NmfProblem<T>>` for both precisions (e.g. `BetaNmf::new(c)`).
#[macro_export]
macro_rules! nmf_solver {
    ($name:literal, $quick:ident, $desc:literal, |$ctx:pat_param| $cfg:expr, |$c:ident| $build:expr) => {
        $crate::runner::SolverEntry {
            name: $name,
            family: $crate::problems::SolverFamily::Nmf,
            quick: $crate::__strata_quick!($quick),
            description: $desc,
            factory: $crate::runner::Factory::Nmf {
                f32: {
                    fn make(
                        ctx: &$crate::runner::SolverCtx,
                    ) -> ::std::result::Result<
                        $crate::runner::Built<$crate::runner::NmfProblem<f32>>,
                        $crate::runner::SolverError,
                    > {
                        let $c = {
                            let $ctx = ctx;
                            $crate::runner::apply_overrides($cfg, ctx)?
                        };
                        let hp = $crate::runner::hyperparameters(&$c);
                        $crate::runner::boxed($build, hp)
                    }
                    make
                },
                f64: {
                    fn make(
                        ctx: &$crate::runner::SolverCtx,
                    ) -> ::std::result::Result<
                        $crate::runner::Built<$crate::runner::NmfProblem<f64>>,
                        $crate::runner::SolverError,
                    > {
                        let $c = {
                            let $ctx = ctx;
                            $crate::runner::apply_overrides($cfg, ctx)?
                        };
                        let hp = $crate::runner::hyperparameters(&$c);
                        $crate::runner::boxed($build, hp)
                    }
                    make
                },
            },
        }
    };
}

/// The beta-NMF configuration of an NMF entry: the problem's `beta`, the given rule,
/// no penalties, no scikit-learn mode, no tolerance (the budget ends the run).
pub fn nmf_config(beta: f64, rule: majorize::nmf::Rule) -> solvers::nmf::BetaNmfConfig {
    solvers::nmf::BetaNmfConfig {
        beta,
        rule,
        ..Default::default()
    }
}

/// Taylor et al.'s ADMM with its defaults; the output loss is the paper's binary hinge
/// on classification problems and least squares on MSE (dense-target) problems, where
/// the hinge is undefined.
pub fn taylor_config(ctx: &SolverCtx) -> solvers::admm::TaylorConfig {
    let output_loss = match ctx.loss {
        Some(nets::LossKind::Mse) => solvers::admm::OutputLoss::LeastSquares,
        _ => solvers::admm::OutputLoss::Hinge,
    };
    solvers::admm::TaylorConfig {
        output_loss,
        ..Default::default()
    }
}

/// Every registered solver, in report order. ONE line per solver (see the module doc);
/// the defaults are each method's documented defaults (no per-problem tuning).
#[rustfmt::skip]
pub fn solver_registry() -> Vec<SolverEntry> {
    use majorize::nmf::Rule;
    use solvers::first_order::{AdagradConfig, AdamConfig, AdamWConfig, RmsPropConfig, SgdConfig};
    use solvers::inna::InnaConfig;
    use solvers::lbfgs::LbfgsConfig;
    use solvers::nmf::BetaNmf;
    use solvers::step_tuned::StepTunedConfig;
    use solvers::{admm, agd, bcd, lifted, mac, mm, proxprop};
    vec![
        net_solver!("adam", Gradient, quick, "Adam (Kingma & Ba 2015), PyTorch defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8; mini-batches of 64", |_| AdamConfig::default()),
        net_solver!("sgd-momentum", Gradient, quick, "SGD with heavy-ball momentum 0.9 (PyTorch form), lr 0.01; mini-batches of 64", |_| SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() }),
        net_solver!("lbfgs", Gradient, quick, "full-batch L-BFGS, history 10, strong-Wolfe line search (Nocedal & Wright Alg. 7.5, 3.5)", |_| LbfgsConfig::default()),
        net_solver!("inna", Gradient, quick, "INNA inertial Newton (Castera et al., JMLR 2021), authors' defaults lr 0.1, alpha 0.5, beta 0.1; mini-batches of 64", |_| InnaConfig::default()),
        net_solver!("step-tuned", Gradient, full, "Step-Tuned SGD (Castera et al. 2022), alpha 0.1, nu 2, beta 0.9, m 0.5, M 2; mini-batches of 64", |_| StepTunedConfig::default()),
        net_solver!("gd", Gradient, full, "full-batch gradient descent, lr 0.1", |_| SgdConfig::gd(0.1)),
        net_solver!("adamw", Gradient, full, "AdamW (Loshchilov & Hutter 2019), PyTorch defaults: lr 1e-3, weight decay 1e-2; mini-batches of 64", |_| AdamWConfig::default()),
        net_solver!("rmsprop", Gradient, full, "RMSProp, PyTorch defaults: lr 1e-2, alpha 0.99; mini-batches of 64", |_| RmsPropConfig::default()),
        net_solver!("adagrad", Gradient, full, "Adagrad, PyTorch defaults: lr 1e-2; mini-batches of 64", |_| AdagradConfig::default()),
        net_solver!("block-mm", LayerwiseMm, quick, "block MM on every dense layer, backward order; hidden blocks take certified steps along their damped MM step (no backtracking): the lower hidden ReLU blocks of a softmax cross-entropy or squared-error net (f64) by the ray (band) bound of majorize::enclosure::enclose_ray_with (docs/MAJORIZE.md), every other hidden block by the Taylor enclosure; the safeguarded path where that certifies nothing; output layer closed form (ALGORITHMS.md 10.4-10.5); crate defaults", |_| mm::BlockMmConfig::default()),
        net_solver!("block-mm-chord", LayerwiseMm, full, "block MM as block-mm, with the top hidden ReLU block (under the output layer, softmax cross-entropy, f64) certified by the chord/tangent bound of majorize::enclosure::enclose_top_block (docs/MAJORIZE.md) instead of the Taylor enclosure; every other block as block-mm", |_| mm::BlockMmConfig { top_block_bound: true, ..Default::default() }),
        net_solver!("block-mm-ray-top", LayerwiseMm, full, "block MM as block-mm, with the top hidden ReLU block certified by the ray bound too (top_block_ray = true: majorize::enclosure::enclose_ray_with's m = 1 case, softmax cross-entropy or squared error, f64) instead of the Taylor enclosure; a candidate for block-mm's default (docs/PERFORMANCE.md, session 19)", |_| mm::BlockMmConfig { top_block_ray: true, ..Default::default() }),
        net_solver!("block-mm-taylor", LayerwiseMm, full, "block MM as block-mm, with every hidden block certified by the Taylor enclosure through the layers above (lower_block_bound = false; block-mm's default before session 18)", |_| mm::BlockMmConfig { lower_block_bound: false, ..Default::default() }),
        net_solver!("block-mm-safeguarded", LayerwiseMm, quick, "block MM with every hidden block on the safeguarded path: structural curvature + backtracking (ALGORITHMS.md 10.4-10.5), the default before the certified path", |_| mm::BlockMmConfig::safeguarded()),
        net_solver!("last-layer-mm", LayerwiseMm, quick, "MM on the output layer only (Bohning / least-squares closed-form step); hidden layers stay at their initial weights", |_| mm::BlockMmConfig::last_layer()),
        net_solver!("agd", LayerwiseMm, quick, "Automatic Gradient Descent (Bernstein et al. 2023), gain 1, mini-batches of 128", |_| agd::AgdConfig::default()),
        net_solver!("admm-taylor", Admm, quick, "ADMM of Taylor et al. (ICML 2016): gamma 10, beta 1, 10 warm-start sweeps, binary hinge output loss on labels, least squares on MSE problems (the hinge needs 0/1 targets)", |ctx| taylor_config(ctx), |c, T| admm::TaylorAdmm::<T>::new(c)),
        net_solver!("dladmm", Admm, quick, "dlADMM of Wang et al. (KDD 2019): adaptive rho 1e-6 -> 0.1, backtracked W/A steps", |_| admm::DlAdmmConfig::default(), |c, T| admm::DlAdmm::<T>::new(c)),
        net_solver!("bcd", Lifted, quick, "proximal BCD of Zeng et al. (ICML 2019): gamma 1, rho 1, alpha 5, exact weight steps", |_| bcd::BcdConfig::default()),
        net_solver!("mac", Lifted, quick, "method of auxiliary coordinates (Carreira-Perpinan & Wang 2014): mu 1 x1.5, 2 iterations per mu", |_| mac::MacConfig::default()),
        net_solver!("lifted-fenchel", Lifted, quick, "Fenchel/LPOM lifted ReLU network, lambda 1, one BCD sweep per step", |_| lifted::LiftedConfig::default()),
        net_solver!("proxprop", Lifted, quick, "ProxProp (Frerix et al., ICLR 2018): tau 1, 1 CG iteration, Adam outer lr 1e-3, batches of 500", |_| proxprop::ProxPropConfig::default()),
        net_solver!("safe-adam", CertifiedMm, quick, "certified MM along Adam's direction (betas 0.9, 0.999): step size minimising a certified Taylor-enclosure bound (SafeRate, Streeter & Dillon 2022), no learning rate; initial trust region 1e-3, x2 / x0.5; full batch", |_| solvers::certified::CertifiedConfig::safe_adam()),
        net_solver!("safe-layerwise", CertifiedMm, quick, "certified MM, one step size per dense layer along Adam's direction, exact box QP over the certified bound; initial trust region 1e-3; full batch", |_| solvers::certified::CertifiedConfig::safe_layerwise()),
        net_solver!("safe-gd", CertifiedMm, full, "certified MM along the negative gradient (SafeRate); initial trust region 1e-3; full batch", |_| solvers::certified::CertifiedConfig::safe_gd()),
        net_solver!("safe-heavy-ball", CertifiedMm, full, "certified MM along the heavy-ball direction (momentum 0.9); initial trust region 1e-3; full batch", |_| solvers::certified::CertifiedConfig::safe_heavy_ball()),
        nmf_solver!("nmf-mm", quick, "beta-NMF multiplicative MM updates, exponent gamma(beta) (Fevotte & Idier 2011); monotone", |ctx| nmf_config(ctx.beta, Rule::Mm), |c| BetaNmf::new(c)),
        nmf_solver!("nmf-heuristic", quick, "beta-NMF heuristic multiplicative updates (exponent 1)", |ctx| nmf_config(ctx.beta, Rule::Heuristic), |c| BetaNmf::new(c)),
        nmf_solver!("nmf-me", quick, "beta-NMF majorization-equalization updates (Fevotte & Idier 2011), relaxed towards MM with theta = 0.95 as in the authors' implementation; monotone", |ctx| nmf_config(ctx.beta, Rule::Me), |c| BetaNmf::new(c)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_entry_declares_its_tuning() {
        let r = solver_registry();
        let mut names: Vec<&str> = r.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), r.len());
        // Every entry has a line in tune::DECLARATIONS, and every declared parameter is a
        // number in its default config (so the grid can be formed).
        for e in &r {
            let d = super::super::tune::declaration(e.name)
                .unwrap_or_else(|| panic!("`{}` has no line in tune::DECLARATIONS", e.name));
            assert!(
                !d.tune.is_empty() || !d.why_not_tuned.is_empty(),
                "{}",
                e.name
            );
            let ctx = SolverCtx {
                beta: 1.0,
                loss: Some(nets::LossKind::SoftmaxCrossEntropy),
                ..Default::default()
            };
            let hp = match e.factory {
                Factory::Network { f64, .. } => f64(&ctx).map(|b| b.hyperparameters),
                Factory::Nmf { f64, .. } => f64(&ctx).map(|b| b.hyperparameters),
            }
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
            let cfg = serde_json::to_value(&hp).unwrap();
            for p in d.tune {
                super::super::tune::get_number(&cfg, p)
                    .unwrap_or_else(|m| panic!("{}: {m}", e.name));
            }
        }
    }

    #[test]
    fn factories_build_with_the_lr_override_and_record_hyperparameters() {
        let r = solver_registry();
        let adam = r.iter().find(|e| e.name == "adam").unwrap();
        let Factory::Network { f32, f64 } = adam.factory else {
            panic!()
        };
        let ctx = SolverCtx {
            overrides: vec![("/lr".into(), 0.5)],
            ..Default::default()
        };
        let b = f64(&ctx).unwrap();
        assert_eq!(b.hyperparameters["lr"], 0.5);
        assert!(b.solver.name().contains("lr=0.5"), "{}", b.solver.name());
        assert_eq!(
            f32(&SolverCtx::default()).unwrap().hyperparameters["lr"],
            1e-3
        );
        let lbfgs = r.iter().find(|e| e.name == "lbfgs").unwrap();
        let Factory::Network { f64, .. } = lbfgs.factory else {
            panic!()
        };
        let err = f64(&ctx).err().unwrap().to_string();
        assert!(err.contains("no field `/lr`"), "{err}");
        // Options replace named fields; unknown names list the valid ones.
        let opts = SolverCtx {
            options: BTreeMap::from([("history".to_string(), serde_json::json!(3))]),
            ..Default::default()
        };
        assert_eq!(f64(&opts).unwrap().hyperparameters["history"], 3);
        let bad = SolverCtx {
            options: BTreeMap::from([("nope".to_string(), serde_json::json!(1))]),
            ..Default::default()
        };
        let err = f64(&bad).err().unwrap().to_string();
        assert!(
            err.contains("unknown solver option `nope`") && err.contains("history"),
            "{err}"
        );
        let wrong = SolverCtx {
            options: BTreeMap::from([("history".to_string(), serde_json::json!("ten"))]),
            ..Default::default()
        };
        assert!(
            f64(&wrong)
                .err()
                .unwrap()
                .to_string()
                .contains("invalid solver option value")
        );
        let me = r.iter().find(|e| e.name == "nmf-me").unwrap();
        let Factory::Nmf { f64, .. } = me.factory else {
            panic!()
        };
        let b = f64(&SolverCtx::default()).unwrap();
        assert_eq!(b.hyperparameters["beta"], 0.0);
        assert_eq!(b.hyperparameters["rule"], "Me");
        // Taylor ADMM: the paper's hinge on labels, least squares on MSE problems.
        let mse = SolverCtx {
            loss: Some(nets::LossKind::Mse),
            ..Default::default()
        };
        assert_eq!(
            taylor_config(&mse).output_loss,
            solvers::admm::OutputLoss::LeastSquares
        );
        assert_eq!(
            taylor_config(&SolverCtx::default()).output_loss,
            solvers::admm::OutputLoss::Hinge
        );
    }
}
