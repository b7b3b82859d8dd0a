//! A problem's own objective and initial weights (`ProblemKind::Network { l2, init }`):
//! the registry keeps the suite's defaults bit for bit, the Gaussian law has its stated
//! moments, the papers setups carry their papers' objective and init, and the runner
//! starts from them.

use bench_suite::papers::{paper_setups, papers_solver_registry, setup_problem};
use bench_suite::problems::{
    BuildOptions, DataSource, HiddenActivation, InitSpec, LossSpec, ProblemData, ProblemKind,
    ProblemSpec, SolverFamily, registry,
};
use bench_suite::runner::{
    CompareArgs, INIT_STREAM, NetProblem, initial_network, initial_network_with, run_with,
};
use clap::Parser;
use nets::{Init, Sequential};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::Problem;

/// Every registered network keeps `l2: None, init: Default`, and its runner init is the
/// He-uniform (ReLU) / Glorot-uniform draw of the seed's stream 1, bit for bit.
#[test]
fn registry_networks_keep_the_default_objective_and_init() {
    let mut checked = 0;
    for spec in registry() {
        let ProblemKind::Network {
            widths,
            hidden,
            loss,
            l2,
            init,
        } = &spec.kind
        else {
            continue;
        };
        assert_eq!(*l2, None, "{}", spec.name);
        assert_eq!(*init, InitSpec::Default, "{}", spec.name);
        assert_eq!(loss.to_nets_with(*l2).l2, loss.l2(), "{}", spec.name);
        if widths.windows(2).map(|w| w[0] * w[1]).sum::<usize>() > 300_000 {
            continue; // large MNIST nets: same code path, not worth the debug time
        }
        let seed = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(INIT_STREAM);
        let law = match hidden {
            HiddenActivation::Relu => Init::HeUniform,
            _ => Init::GlorotUniform,
        };
        let expected = Sequential::<f64>::mlp(widths, hidden.to_nets(), law, &mut rng).unwrap();
        let got = initial_network_with::<f64>(widths, *hidden, *init, seed).unwrap();
        assert_eq!(got.flat_params(), expected.flat_params(), "{}", spec.name);
        let wrapper = initial_network::<f64>(widths, *hidden, seed).unwrap();
        assert_eq!(
            wrapper.flat_params(),
            expected.flat_params(),
            "{}",
            spec.name
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
    // The text of a registry classification problem still shows the suite's penalty.
    assert!(
        LossSpec::SoftmaxCrossEntropy
            .objective_text()
            .contains("1e-4")
    );
}

/// Mean, standard deviation, min, max of a slice.
fn moments(x: &[f64]) -> (f64, f64, f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

/// The dlADMM code's law N(0, 0.1^2) on weights and biases, and the BCD code's
/// 0.01 N(0, 1) weights with constant biases 0.1, on a 400-2500-400 net (10^6 weights
/// per layer).
#[test]
fn gaussian_init_has_the_stated_moments() {
    let widths = [400, 2500, 400];
    let dladmm = InitSpec::Gaussian {
        weight_std: 0.1,
        bias_std: 0.1,
        bias_const: 0.0,
    };
    let net = initial_network_with::<f64>(&widths, HiddenActivation::Relu, dladmm, 7).unwrap();
    let mut biases = Vec::new();
    for l in 0..2 {
        let d = net.dense(l).unwrap();
        let (mean, std, min, max) = moments(d.weight.as_slice());
        assert!(mean.abs() < 1e-3, "layer {l}: mean {mean}");
        assert!((std / 0.1 - 1.0).abs() < 0.02, "layer {l}: std {std}");
        assert!(
            min < -0.4 && max > 0.4,
            "layer {l}: untruncated normal, {min} {max}"
        );
        biases.extend(d.bias.iter().copied());
    }
    let (mean, std, _, _) = moments(&biases);
    assert_eq!(biases.len(), 2900);
    assert!(mean.abs() < 0.01, "bias mean {mean}");
    assert!((std / 0.1 - 1.0).abs() < 0.05, "bias std {std}");
    // Same seed: same draw; another seed: another.
    let again = initial_network_with::<f64>(&widths, HiddenActivation::Relu, dladmm, 7).unwrap();
    assert_eq!(again.flat_params(), net.flat_params());
    let other = initial_network_with::<f64>(&widths, HiddenActivation::Relu, dladmm, 8).unwrap();
    assert_ne!(other.flat_params(), net.flat_params());

    let bcd = InitSpec::Gaussian {
        weight_std: 0.01,
        bias_std: 0.0,
        bias_const: 0.1,
    };
    let net = initial_network_with::<f32>(&widths, HiddenActivation::Relu, bcd, 7).unwrap();
    for l in 0..2 {
        let d = net.dense(l).unwrap();
        let w: Vec<f64> = d.weight.iter().map(|&x| f64::from(x)).collect();
        let (mean, std, _, _) = moments(&w);
        assert!(mean.abs() < 1e-4, "layer {l}: mean {mean}");
        assert!((std / 0.01 - 1.0).abs() < 0.02, "layer {l}: std {std}");
        assert!(d.bias.iter().all(|&b| b == 0.1f32), "layer {l}: biases 0.1");
    }
}

/// Every setup: no penalty and its reference code's init (dlADMM, BCD, the Fenchel
/// code for the lifted setup, the ProxProp code), or the suite's penalty and init where
/// the paper's could not be read (certified MM); reports show the actual penalty.
#[test]
fn papers_setups_carry_their_papers_objective_and_init() {
    for setup in paper_setups() {
        let spec = setup_problem(&setup, format!("papers-{}", setup.key), 100, 50);
        let ProblemKind::Network { loss, l2, init, .. } = &spec.kind else {
            panic!("network");
        };
        let (want_l2, want_init) = match setup.key {
            "dladmm" => (
                Some(0.0),
                InitSpec::Gaussian {
                    weight_std: 0.1,
                    bias_std: 0.1,
                    bias_const: 0.0,
                },
            ),
            "bcd" | "bcd-squared" => (
                Some(0.0),
                InitSpec::Gaussian {
                    weight_std: 0.01,
                    bias_std: 0.0,
                    bias_const: 0.1,
                },
            ),
            "lifted" => (Some(0.0), InitSpec::GlorotUniformBias { bias_const: 0.1 }),
            "proxprop" => (Some(0.0), InitSpec::TorchLinear),
            // The certified-MM papers' objective and init could not be read: the suite's
            // penalty 1e-4 and strata's He-uniform (docs/PAPERS.md).
            "certified" => (None, InitSpec::Default),
            other => panic!("setup {other} not checked here"),
        };
        assert_eq!(*l2, want_l2, "{}", setup.key);
        assert_eq!(*init, want_init, "{}", setup.key);
        // The BCD code's squared loss on one-hot labels only in `bcd-squared`.
        let want_loss = if setup.key == "bcd-squared" {
            LossSpec::Mse
        } else {
            LossSpec::SoftmaxCrossEntropy
        };
        assert_eq!(*loss, want_loss, "{}", setup.key);
        let text = spec.objective_text();
        if want_l2 == Some(0.0) {
            assert_eq!(loss.to_nets_with(*l2).l2, 0.0);
            assert!(text.contains("no penalty"), "{}: {text}", setup.key);
            assert!(spec.description.contains("L2 0e0"), "{}", spec.description);
        } else {
            assert_eq!(loss.to_nets_with(*l2).l2, 1e-4);
            assert!(text.contains("1e-4"), "{}: {text}", setup.key);
        }
    }
}

/// The Fenchel code's law (Glorot-uniform weights, biases 0.1) and PyTorch's `nn.Linear`
/// law (weights and biases U(+-1/sqrt(fan_in))) on a 400-2500-400 net: bounds, standard
/// deviations (a / sqrt 3 for U(-a, a)), constant biases, and a fresh draw per seed.
#[test]
fn uniform_inits_have_the_stated_bounds_and_moments() {
    let widths = [400, 2500, 400];
    let fenchel = InitSpec::GlorotUniformBias { bias_const: 0.1 };
    let net = initial_network_with::<f64>(&widths, HiddenActivation::Relu, fenchel, 7).unwrap();
    for l in 0..2 {
        let d = net.dense(l).unwrap();
        let a = (6.0 / (widths[l] + widths[l + 1]) as f64).sqrt();
        let (mean, std, min, max) = moments(d.weight.as_slice());
        assert!(mean.abs() < 2e-3 * a, "layer {l}: mean {mean}");
        assert!(
            (std / (a / 3f64.sqrt()) - 1.0).abs() < 0.01,
            "layer {l}: {std}"
        );
        assert!(
            min >= -a && max < a && min < -0.99 * a && max > 0.99 * a,
            "{min} {max}"
        );
        assert!(d.bias.iter().all(|&b| b == 0.1), "layer {l}: biases 0.1");
    }
    let torch = InitSpec::TorchLinear;
    let net = initial_network_with::<f32>(&widths, HiddenActivation::Relu, torch, 7).unwrap();
    for (l, &fan_in) in widths.iter().enumerate().take(2) {
        let d = net.dense(l).unwrap();
        let a = 1.0 / (fan_in as f64).sqrt();
        for (what, x, tol) in [
            ("weights", d.weight.as_slice(), 0.01),
            ("biases", d.bias.as_slice(), 0.06),
        ] {
            let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let (mean, std, min, max) = moments(&x);
            assert!(mean.abs() < 0.15 * a, "layer {l} {what}: mean {mean}");
            assert!(
                (std / (a / 3f64.sqrt()) - 1.0).abs() < tol,
                "layer {l} {what}: {std}"
            );
            assert!(
                min >= -a * 1.000001 && max <= a * 1.000001,
                "{what}: {min} {max}"
            );
            assert!(
                min < -0.9 * a && max > 0.9 * a,
                "layer {l} {what}: {min} {max}"
            );
        }
    }
    for law in [fenchel, torch] {
        let a = initial_network_with::<f64>(&[5, 4, 3], HiddenActivation::Relu, law, 1).unwrap();
        let b = initial_network_with::<f64>(&[5, 4, 3], HiddenActivation::Relu, law, 1).unwrap();
        let c = initial_network_with::<f64>(&[5, 4, 3], HiddenActivation::Relu, law, 2).unwrap();
        assert_eq!(a.flat_params(), b.flat_params());
        assert_ne!(a.flat_params(), c.flat_params());
    }
    assert!(fenchel.text(HiddenActivation::Relu).contains("biases 0.1"));
    assert!(torch.text(HiddenActivation::Relu).contains("nn.Linear"));
}

/// The runner starts every solver from the problem's init on the problem's objective:
/// the iteration-0 objective of a run equals the objective of `initial_network_with`
/// under `to_nets_with(l2)`, and differs from the default init's.
#[test]
fn the_runner_uses_the_problems_init_and_penalty() {
    let widths = vec![6, 16, 3];
    let init = InitSpec::Gaussian {
        weight_std: 0.5,
        bias_std: 0.0,
        bias_const: 0.3,
    };
    let spec = ProblemSpec {
        name: "blobs-init".into(),
        description: "init check".into(),
        kind: ProblemKind::Network {
            widths: widths.clone(),
            hidden: HiddenActivation::Relu,
            loss: LossSpec::SoftmaxCrossEntropy,
            l2: Some(0.05),
            init,
        },
        source: DataSource::Blobs {
            train: 120,
            test: 30,
            dim: 6,
            classes: 3,
            spread: 3.0,
            std: 1.0,
        },
        families: SolverFamily::NETWORK.to_vec(),
        quick: false,
    };
    let out = std::env::temp_dir().join(format!("strata-init-spec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let args = CompareArgs::parse_from([
        "strata-compare",
        "--no-progress",
        "--problems",
        "blobs-init",
        "--solvers",
        "gd",
        "--epochs",
        "1",
        "--time-budget",
        "0",
        "--seeds",
        "2,",
        "--out",
        out.to_str().unwrap(),
    ]);
    let res = run_with(
        &args,
        std::slice::from_ref(&spec),
        &papers_solver_registry(),
    )
    .unwrap();
    assert_eq!(res.results.runs[0].seed, 2);
    let first = &res.results.runs[0].trace[0];
    assert_eq!(first.iteration, 0);
    let ProblemData::Supervised { train, test } =
        spec.build::<f64>(2, &BuildOptions::default()).unwrap()
    else {
        panic!("supervised");
    };
    let loss = LossSpec::SoftmaxCrossEntropy.to_nets_with(Some(0.05));
    let objective = |net| {
        let mut p = NetProblem::new(net, loss, train.clone(), test.clone()).unwrap();
        p.evaluate().objective
    };
    let own = objective(initial_network_with(&widths, HiddenActivation::Relu, init, 2).unwrap());
    let default = objective(initial_network(&widths, HiddenActivation::Relu, 2).unwrap());
    assert!(
        (first.objective - own).abs() <= 1e-12 * own.abs(),
        "{} vs {own} (default init {default})",
        first.objective
    );
    assert!((own - default).abs() > 1e-3, "{own} vs {default}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// A network kind serialized before the fields existed reads back with the defaults,
/// and a Gaussian law round-trips.
#[test]
fn older_serialized_kinds_read_with_the_defaults() {
    let old = r#"{"Network":{"widths":[2,3],"hidden":"Relu","loss":"Mse"}}"#;
    let kind: ProblemKind = serde_json::from_str(old).unwrap();
    assert_eq!(
        kind,
        ProblemKind::Network {
            widths: vec![2, 3],
            hidden: HiddenActivation::Relu,
            loss: LossSpec::Mse,
            l2: None,
            init: InitSpec::Default,
        }
    );
    let own = ProblemKind::Network {
        widths: vec![2, 3],
        hidden: HiddenActivation::Tanh,
        loss: LossSpec::SoftmaxCrossEntropy,
        l2: Some(0.0),
        init: InitSpec::Gaussian {
            weight_std: 0.01,
            bias_std: 0.0,
            bias_const: 0.1,
        },
    };
    let text = serde_json::to_string(&own).unwrap();
    assert_eq!(serde_json::from_str::<ProblemKind>(&text).unwrap(), own);
    for init in [
        InitSpec::GlorotUniformBias { bias_const: 0.1 },
        InitSpec::TorchLinear,
    ] {
        let text = serde_json::to_string(&init).unwrap();
        assert_eq!(serde_json::from_str::<InitSpec>(&text).unwrap(), init);
    }
}
