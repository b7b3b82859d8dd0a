//! End to end, the way the runner will do it: registry problem -> nets network ->
//! solvers driver -> results mirror types -> results.json, report.md and plots.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use bench_suite::convert::{RunContext, run_result};
use bench_suite::memory::{CountingAllocator, PeakScope};
use bench_suite::outdir::create_run_dir;
use bench_suite::problems::{BuildOptions, Dtype, ProblemData, ProblemKind, find_problem};
use bench_suite::report::{format_summary_table, write_outputs};
use bench_suite::results::{BudgetSpec, ResultsFile, RunMetadata, RunStatus, validate_results};
use nets::{Init, Sequential};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::first_order::{AdamConfig, SgdConfig};
use solvers::{Budget, Driver, NetProblem};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn digits_mlp_adam_and_sgd_through_driver_to_report() {
    let spec = find_problem("digits-mlp").unwrap();
    let ProblemKind::Network {
        widths,
        hidden,
        loss,
        ..
    } = spec.kind.clone()
    else {
        panic!("network problem expected")
    };
    let seeds = [0u64, 1];
    let mut results = ResultsFile::new(RunMetadata::collect(
        Dtype::F32,
        1,
        seeds.to_vec(),
        BudgetSpec {
            max_epochs: Some(2.0),
            ..BudgetSpec::default()
        },
    ));
    for &seed in &seeds {
        for solver_name in ["adam", "sgd"] {
            let ProblemData::Supervised { train, test } =
                spec.build::<f32>(seed, &BuildOptions::default()).unwrap()
            else {
                panic!()
            };
            let mut init_rng = ChaCha8Rng::seed_from_u64(seed);
            init_rng.set_stream(1);
            let net =
                Sequential::mlp(&widths, hidden.to_nets(), Init::HeUniform, &mut init_rng).unwrap();
            let mut problem = NetProblem::new(net, loss.to_nets(), train, test).unwrap();
            let scope = PeakScope::start();
            let t = Instant::now();
            let mut driver = Driver::new(Budget::epochs(2.0)).seed(seed);
            let (outcome, hyper) = if solver_name == "adam" {
                let mut s = AdamConfig::default().build::<f32>().unwrap();
                (driver.run(&mut problem, &mut s).unwrap(), ("lr", 1e-3))
            } else {
                let cfg = SgdConfig {
                    lr: 0.05,
                    ..SgdConfig::default() // mini-batches of 64
                };
                let mut s = cfg.build::<f32>().unwrap();
                (driver.run(&mut problem, &mut s).unwrap(), ("lr", 0.05))
            };
            results.runs.push(run_result(
                &outcome,
                RunContext {
                    problem: spec.name.clone(),
                    seed,
                    peak_memory_bytes: scope.peak_increase(),
                    total_wall_time_s: t.elapsed().as_secs_f64(),
                    hyperparameters: BTreeMap::from([(
                        hyper.0.to_string(),
                        serde_json::json!(hyper.1),
                    )]),
                    tuned: false,
                },
            ));
        }
    }
    assert_eq!(results.runs.len(), 4);
    for r in &results.runs {
        assert_eq!(
            r.status,
            RunStatus::BudgetExhausted {
                which: Some("epochs".into())
            }
        );
        let first = &r.trace[0];
        let last = r.last().unwrap();
        assert_eq!(first.iteration, 0);
        assert_eq!(last.epochs, 2.0);
        // Two epochs of training decrease the cross-entropy from ~ln 10.
        assert!(last.objective < first.objective, "{}", r.solver);
        assert!(
            last.test_accuracy.unwrap() > 0.5,
            "{}: {:?}",
            r.solver,
            last.test_accuracy
        );
        // The network's activations and gradients live on the heap during the run.
        assert!(
            r.peak_memory_bytes.unwrap() > 100_000,
            "{:?}",
            r.peak_memory_bytes
        );
    }
    // Same seed, same data and initial weights: both solvers start from one objective.
    assert_eq!(
        results.runs[0].trace[0].objective,
        results.runs[1].trace[0].objective
    );
    let dir = create_run_dir(&common::temp_dir("pipeline"), "compare").unwrap();
    let out = write_outputs(&dir, &results).unwrap();
    let text = std::fs::read_to_string(&out.results_json).unwrap();
    validate_results(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(out.plots.len(), 3);
    let report = std::fs::read_to_string(&out.report_md).unwrap();
    assert!(report.contains("## digits-mlp"));
    let table = format_summary_table(&results);
    eprintln!("{table}");
    assert_eq!(table.lines().count(), 2 + 2);
}

#[test]
fn teacher_student_zero_loss_is_reachable_by_the_registered_student() {
    // Rebuild the registry's teacher from the same seed (teacher drawn first), copy its
    // weights into the registered student network (nets MLP, same widths, tanh), and
    // check the student's training loss is zero up to rounding.
    let spec = find_problem("teacher-student").unwrap();
    let ProblemKind::Network {
        widths,
        hidden,
        loss,
        ..
    } = spec.kind.clone()
    else {
        panic!()
    };
    let seed = 4;
    let ProblemData::Supervised { train, .. } =
        spec.build::<f64>(seed, &BuildOptions::default()).unwrap()
    else {
        panic!()
    };
    let teacher =
        bench_suite::data::TeacherMlp::random(&widths, &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
    let mut net = Sequential::<f64>::mlp(
        &widths,
        hidden.to_nets(),
        Init::HeUniform,
        &mut ChaCha8Rng::seed_from_u64(99),
    )
    .unwrap();
    let before = loss
        .to_nets()
        .value(&net.predict(train.inputs()).unwrap(), train.targets())
        .unwrap();
    for (l, (w, b)) in teacher.weights.iter().zip(&teacher.biases).enumerate() {
        let d = net.dense_mut(l).unwrap();
        d.weight.copy_from(w);
        d.bias.copy_from(b);
    }
    let after = loss
        .to_nets()
        .value(&net.predict(train.inputs()).unwrap(), train.targets())
        .unwrap();
    assert!(before > 0.05, "random student loss {before}");
    assert!(after < 1e-20, "teacher weights give loss {after}");
}
