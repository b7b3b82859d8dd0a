//! Data-parallel runs with P = 1, 2, 3 ranks (in-process `ThreadComm`): the trace of a
//! sharded run equals the single-process trace up to the rounding of the reductions
//! (<= 1e-9 relative after K iterations), and a fixed rank count is bit-identical run
//! to run.

use std::sync::Arc;

use autodiff::Reduction;
use majorize::nmf::Rule;
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::admm::{OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::comm::{Comm, ThreadComm};
use solvers::distributed::{
    DistributedBetaNmf, DistributedTaylorAdmm, ShardedNetProblem, ShardedNmfProblem,
};
use solvers::first_order::AdamConfig;
use solvers::lbfgs::LbfgsConfig;
use solvers::nmf::{BetaNmf, BetaNmfConfig, NmfProblem};
use solvers::{Batching, Budget, Driver, NetProblem, Problem, Solver};

/// Four Gaussian blobs in 5-D, 103 samples (not divisible by 2 or 3), a 5-12-4 MLP.
fn net_problem(act: Activation, loss: LossKind) -> NetProblem<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 103;
    let mut x = DMatrix::zeros(5, n);
    let mut labels = Vec::new();
    for j in 0..n {
        let c = (j * 7) % 4;
        for i in 0..5 {
            let u: f64 = rand::RngExt::random::<f64>(&mut rng) - 0.5;
            x[(i, j)] = u + if i == c { 1.5 } else { 0.0 };
        }
        labels.push(c);
    }
    let data = Dataset::new(x, Targets::Labels { labels, classes: 4 }).unwrap();
    let net = Sequential::mlp(&[5, 12, 4], act, Init::GlorotUniform, &mut rng).unwrap();
    let loss = Loss::new(loss, Reduction::Mean).with_l2(1e-3);
    NetProblem::new(net, loss, data.clone(), Some(data)).unwrap()
}

fn objectives(out: &solvers::RunOutcome) -> Vec<f64> {
    out.trace.records.iter().map(|r| r.objective).collect()
}

/// Runs `make_solver` on P thread-ranks, each with its shard; returns every rank's
/// objective trace and final flat parameters.
fn run_ranks<S, F>(p: usize, budget: Budget, make_solver: F) -> Vec<(Vec<f64>, Vec<f64>)>
where
    S: Solver<ShardedNetProblem<f64>>,
    F: Fn() -> S + Sync,
{
    let comms = ThreadComm::group(p);
    std::thread::scope(|s| {
        let handles: Vec<_> = comms
            .into_iter()
            .map(|c| {
                let make_solver = &make_solver;
                s.spawn(move || {
                    let comm: Arc<dyn Comm> = Arc::new(c);
                    let full = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
                    let mut sharded = ShardedNetProblem::new(full, comm).unwrap();
                    let out = Driver::new(budget)
                        .seed(5)
                        .run(&mut sharded, &mut make_solver())
                        .unwrap();
                    assert!(
                        matches!(out.status, solvers::Status::BudgetExhausted(_)),
                        "{:?}",
                        out.status
                    );
                    (objectives(&out), sharded.net().flat_params())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: trace lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let rel = (x - y).abs() / x.abs().max(1e-300);
        assert!(
            rel <= tol,
            "{what}: iteration {i}: {x} vs {y} (rel {rel:e})"
        );
    }
}

fn check_net_solver<S, F, G>(name: &str, budget: Budget, single: G, make: F)
where
    S: Solver<ShardedNetProblem<f64>>,
    F: Fn() -> S + Sync,
    G: FnOnce(&mut NetProblem<f64>, Budget) -> solvers::RunOutcome,
{
    let mut one = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
    let reference = objectives(&single(&mut one, budget));
    assert!(
        reference.last().unwrap() < &(0.9 * reference[0]),
        "{name} trains"
    );
    for p in [1usize, 2, 3] {
        let ranks = run_ranks(p, budget, &make);
        for (r, (trace, params)) in ranks.iter().enumerate() {
            // Every rank holds the same trace and the same weights, bit for bit.
            assert_eq!(trace, &ranks[0].0, "{name} P={p} rank {r} trace");
            assert_eq!(params, &ranks[0].1, "{name} P={p} rank {r} weights");
        }
        assert_close(&ranks[0].0, &reference, 1e-9, &format!("{name} P={p}"));
        if p == 3 {
            let again = run_ranks(p, budget, &make);
            assert_eq!(again[0].0, ranks[0].0, "{name}: P=3 rerun is bit-identical");
        }
    }
}

#[test]
fn lbfgs_on_shards_reproduces_the_single_process_trace() {
    let make = || LbfgsConfig::default().build::<f64>().unwrap();
    check_net_solver(
        "lbfgs",
        Budget::iterations(15),
        |p, b| Driver::new(b).seed(5).run(p, &mut make()).unwrap(),
        make,
    );
}

#[test]
fn adam_minibatches_on_shards_reproduce_the_single_process_trace() {
    let make = || {
        AdamConfig {
            lr: 0.01,
            batching: Batching::mini(16),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
    };
    check_net_solver(
        "adam",
        Budget::epochs(5.0),
        |p, b| Driver::new(b).seed(5).run(p, &mut make()).unwrap(),
        make,
    );
}

#[test]
fn taylor_admm_on_shards_reproduces_the_single_process_trace() {
    let config = TaylorConfig {
        output_loss: OutputLoss::Problem,
        warm_start: 3,
        ..Default::default()
    };
    check_net_solver(
        "admm-taylor",
        Budget::iterations(12),
        |p, b| {
            let mut s = TaylorAdmm::<f64>::new(config.clone()).unwrap();
            Driver::new(b).seed(5).run(p, &mut s).unwrap()
        },
        || DistributedTaylorAdmm::<f64>::new(config.clone()).unwrap(),
    );
}

/// (forward, backward, samples_seen) of every record.
fn pass_counts(out: &solvers::RunOutcome) -> Vec<(u64, u64, u64)> {
    out.trace
        .records
        .iter()
        .map(|r| (r.forward, r.backward, r.samples_seen))
        .collect()
}

#[test]
fn taylor_admm_on_shards_counts_the_single_process_passes() {
    // One pass per block over the global N (docs/RESULTS_SCHEMA.md): on the 5-12-4 net
    // (L = 2) an iteration is 2 forward (Z-steps) and 3 backward (W_1, A_1, W_2) passes
    // on every rank count, plus the initial forward pass.
    let config = TaylorConfig {
        output_loss: OutputLoss::Problem,
        warm_start: 1,
        ..Default::default()
    };
    let budget = Budget::iterations(4);
    let mut one = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
    let mut s = TaylorAdmm::<f64>::new(config.clone()).unwrap();
    let reference = pass_counts(&Driver::new(budget).seed(5).run(&mut one, &mut s).unwrap());
    let expected: Vec<_> = (0..5u64)
        .map(|k| (1 + 2 * k, 3 * k, 103 * (1 + 5 * k)))
        .collect();
    assert_eq!(reference, expected);
    for p in [2usize, 3] {
        let comms = ThreadComm::group(p);
        let counts: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = comms
                .into_iter()
                .map(|c| {
                    let config = config.clone();
                    scope.spawn(move || {
                        let comm: Arc<dyn Comm> = Arc::new(c);
                        let full = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
                        let mut sharded = ShardedNetProblem::new(full, comm).unwrap();
                        let mut s = DistributedTaylorAdmm::<f64>::new(config).unwrap();
                        let out = Driver::new(budget).seed(5).run(&mut sharded, &mut s);
                        pass_counts(&out.unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (r, c) in counts.iter().enumerate() {
            assert_eq!(c, &reference, "P={p} rank {r}");
        }
    }
}

#[test]
fn nmf_on_column_shards_reproduces_the_single_process_trace() {
    for (beta, rule) in [
        (1.0, Rule::Mm),
        (2.0, Rule::Mm),
        (0.5, Rule::Heuristic),
        (3.0, Rule::Me),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut u = || 0.1 + rand::RngExt::random::<f64>(&mut rng);
        let v = DMatrix::from_fn(9, 31, |_, _| u());
        let w = DMatrix::from_fn(9, 3, |_, _| u());
        let h = DMatrix::from_fn(3, 31, |_, _| u());
        let config = BetaNmfConfig {
            beta,
            rule,
            ..Default::default()
        };
        let mut one = NmfProblem::new(v.clone(), w.clone(), h.clone(), &config).unwrap();
        let reference = objectives(
            &Driver::new(Budget::iterations(40))
                .run(&mut one, &mut BetaNmf::new(config).unwrap())
                .unwrap(),
        );
        assert!(reference[40] < reference[0]);
        for p in [1usize, 2, 3] {
            let traces: Vec<Vec<f64>> = std::thread::scope(|s| {
                let handles: Vec<_> = ThreadComm::group(p)
                    .into_iter()
                    .map(|c| {
                        let (v, w, h) = (v.clone(), w.clone(), h.clone());
                        s.spawn(move || {
                            let comm: Arc<dyn Comm> = Arc::new(c);
                            let mut sp = ShardedNmfProblem::new(v, w, h, &config, comm).unwrap();
                            assert_eq!(sp.num_samples(), 31);
                            let out = Driver::new(Budget::iterations(40))
                                .run(&mut sp, &mut DistributedBetaNmf::new(config).unwrap())
                                .unwrap();
                            objectives(&out)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for t in &traces {
                assert_eq!(t, &traces[0]);
            }
            assert_close(
                &traces[0],
                &reference,
                1e-9,
                &format!("nmf beta {beta} P={p}"),
            );
        }
    }
}

#[test]
fn sharding_errors_are_typed() {
    let comms = ThreadComm::group(3);
    let c: Arc<dyn Comm> = Arc::new(comms.into_iter().next().unwrap());
    let mut p = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
    p.train = p.train.subset(&[0, 1]).unwrap();
    let err = ShardedNetProblem::new(p, Arc::clone(&c)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "empty data: 2 training samples cannot be sharded over 3 ranks"
    );
    let config = BetaNmfConfig {
        sklearn_compatible: true,
        ..Default::default()
    };
    let m = DMatrix::from_element(3, 3, 1.0);
    let err = ShardedNmfProblem::new(m.clone(), m.clone(), m, &config, c).unwrap_err();
    assert!(err.to_string().contains("one process only"), "{err}");
}
