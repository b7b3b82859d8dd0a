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
use solvers::admm::{DlAdmm, DlAdmmConfig, OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::comm::{Comm, ThreadComm};
use solvers::distributed::{
    DistributedBetaNmf, DistributedDlAdmm, DistributedTaylorAdmm, ShardedNetProblem,
    ShardedNmfProblem,
};
use solvers::first_order::AdamConfig;
use solvers::lbfgs::LbfgsConfig;
use solvers::nmf::{BetaNmf, BetaNmfConfig, NmfProblem};
use solvers::{Batching, Budget, Driver, NetProblem, Problem, Solver};

/// Four Gaussian blobs in 5-D, 103 samples (not divisible by 2 or 3), a 5-12-4 MLP.
fn net_problem(act: Activation, loss: LossKind) -> NetProblem<f64> {
    blobs_problem(&[5, 12, 4], act, loss)
}

/// The blobs of [`net_problem`] with an MLP of the given widths (input 5, output 4).
fn blobs_problem(widths: &[usize], act: Activation, loss: LossKind) -> NetProblem<f64> {
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
    let net = Sequential::mlp(widths, act, Init::GlorotUniform, &mut rng).unwrap();
    let loss = Loss::new(loss, Reduction::Mean).with_l2(1e-3);
    NetProblem::new(net, loss, data.clone(), Some(data)).unwrap()
}

fn objectives(out: &solvers::RunOutcome) -> Vec<f64> {
    out.trace.records.iter().map(|r| r.objective).collect()
}

/// Runs `make_solver` on P thread-ranks, each with its shard of the problem
/// `make_problem` builds (identically on every rank); returns every rank's objective
/// trace and final flat parameters.
fn run_ranks_on<S, F, M>(
    p: usize,
    budget: Budget,
    make_solver: F,
    make_problem: M,
) -> Vec<(Vec<f64>, Vec<f64>)>
where
    S: Solver<ShardedNetProblem<f64>>,
    F: Fn() -> S + Sync,
    M: Fn() -> NetProblem<f64> + Sync,
{
    let comms = ThreadComm::group(p);
    std::thread::scope(|s| {
        let handles: Vec<_> = comms
            .into_iter()
            .map(|c| {
                let (make_solver, make_problem) = (&make_solver, &make_problem);
                s.spawn(move || {
                    let comm: Arc<dyn Comm> = Arc::new(c);
                    let full = make_problem();
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
    check_net_solver_on(name, budget, single, make, 1e-9, || {
        net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy)
    })
}

/// [`check_net_solver`] on the problem `make_problem` builds, with relative tolerance
/// `tol` against the single-process trace.
fn check_net_solver_on<S, F, G, M>(
    name: &str,
    budget: Budget,
    single: G,
    make: F,
    tol: f64,
    make_problem: M,
) where
    S: Solver<ShardedNetProblem<f64>>,
    F: Fn() -> S + Sync,
    G: FnOnce(&mut NetProblem<f64>, Budget) -> solvers::RunOutcome,
    M: Fn() -> NetProblem<f64> + Sync,
{
    let mut one = make_problem();
    let reference = objectives(&single(&mut one, budget));
    assert!(
        reference.last().unwrap() < &(0.9 * reference[0]),
        "{name} trains"
    );
    for p in [1usize, 2, 3] {
        let ranks = run_ranks_on(p, budget, &make, &make_problem);
        for (r, (trace, params)) in ranks.iter().enumerate() {
            // Every rank holds the same trace and the same weights, bit for bit.
            assert_eq!(trace, &ranks[0].0, "{name} P={p} rank {r} trace");
            assert_eq!(params, &ranks[0].1, "{name} P={p} rank {r} weights");
        }
        assert_close(&ranks[0].0, &reference, tol, &format!("{name} P={p}"));
        let worst = ranks[0]
            .0
            .iter()
            .zip(&reference)
            .map(|(x, y)| (x - y).abs() / y.abs())
            .fold(0.0, f64::max);
        eprintln!("{name} P={p}: largest relative difference to one process {worst:.1e}");
        if p == 3 {
            let again = run_ranks_on(p, budget, &make, &make_problem);
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

/// dlADMM (issue #15): the W-step's `R A^T` and curvature sums, the b-step's row sums,
/// the A-step's and the output iterations' scalars are added over ranks; every rank
/// holds bit-identical weights and the trace matches one process to 1e-9 relative (not
/// bit for bit: the sums over samples are added shard by shard, then over ranks, a
/// different order of additions). The code's defaults (adaptive rho, prox-gradient
/// softmax output) on a 5-12-12-4 net (layer 1: the cached `X X^T`; layer 2: the Gram
/// path; layer 3: the narrow `G A` path), and the paper's form (fixed penalties, Newton
/// output prox) on the 5-12-4 net.
#[test]
fn dladmm_on_shards_reproduces_the_single_process_trace() {
    let deep = || {
        blobs_problem(
            &[5, 12, 12, 4],
            Activation::Relu,
            LossKind::SoftmaxCrossEntropy,
        )
    };
    let shallow = || net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
    for (name, config, deep_net) in [
        ("dladmm (code defaults)", DlAdmmConfig::default(), true),
        ("dladmm (paper form)", DlAdmmConfig::paper(1.0, 1.0), false),
    ] {
        let make_problem = move || if deep_net { deep() } else { shallow() };
        check_net_solver_on(
            name,
            Budget::iterations(12),
            |p, b| {
                let mut s = DlAdmm::<f64>::new(config.clone()).unwrap();
                Driver::new(b).seed(5).run(p, &mut s).unwrap()
            },
            || DistributedDlAdmm::<f64>::new(config.clone()).unwrap(),
            1e-9,
            make_problem,
        );
    }
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

/// dlADMM's communication volume (docs/DISTRIBUTED.md): one iteration on 5-12-12-4
/// (L = 3; layer 2 wide, layer 3 narrow) with the code's defaults sends, per rank,
/// `8 (P - 1)` bytes for each of `2 sum_l (d_l d_{l-1} + d_l) + 2 d_1^2 + 2 + 4 (L - 1) +
/// 2 (k + 2) + 2L + (2L + 3) + 1 = 878 + 2k` values (k: the output steps' inner
/// iterations), plus `d_0^2 = 25` for `X X^T` in the first iteration only.
#[test]
fn dladmm_sends_the_documented_values_per_iteration() {
    let p = 2;
    let per_rank: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = ThreadComm::group(p)
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let comm: Arc<dyn Comm> = Arc::new(c);
                    let full = blobs_problem(
                        &[5, 12, 12, 4],
                        Activation::Relu,
                        LossKind::SoftmaxCrossEntropy,
                    );
                    let mut sharded = ShardedNetProblem::new(full, Arc::clone(&comm)).unwrap();
                    let mut solver =
                        DistributedDlAdmm::<f64>::new(DlAdmmConfig::default()).unwrap();
                    let mut rng = <ChaCha8Rng as SeedableRng>::seed_from_u64(1);
                    let mut counters = solvers::Counters::default();
                    let mut ctx = solvers::Context {
                        rng: &mut rng,
                        counters: &mut counters,
                        iteration: 0,
                        threads: 1,
                    };
                    solver.init(&mut sharded, &mut ctx).unwrap();
                    let mut out = Vec::new();
                    for it in 1..=3 {
                        ctx.iteration = it;
                        let b0 = comm.bytes_sent();
                        let report = solver.step(&mut sharded, &mut ctx).unwrap();
                        let k = report
                            .extras
                            .iter()
                            .find(|(n, _)| n == "output_inner")
                            .unwrap()
                            .1 as u64;
                        out.push((comm.bytes_sent() - b0, k));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for rank in &per_rank {
        for (i, &(bytes, k)) in rank.iter().enumerate() {
            let values = 878 + 2 * k + if i == 0 { 25 } else { 0 };
            assert_eq!(bytes, 8 * (p as u64 - 1) * values, "iteration {}", i + 1);
        }
    }
}

/// Resume under distribution (Taylor ADMM and dlADMM on 2 thread-ranks): a run stopped
/// after 4 iterations with a per-rank checkpoint and resumed to 9 gives every rank the
/// uninterrupted run's trace and weights, bit for bit. A resumed run skips `init`, so
/// the distributed wrappers must re-attach the communicator (and rebuild the output
/// term) in `step`; without it each rank would continue on its shard's sums alone.
#[test]
fn taylor_and_dladmm_resume_on_shards_as_if_never_stopped() {
    fn resumed_equals_full<S, F>(make: F)
    where
        S: Solver<ShardedNetProblem<f64>>,
        F: Fn() -> S + Sync,
    {
        let comms = ThreadComm::group(2);
        std::thread::scope(|s| {
            let handles: Vec<_> = comms
                .into_iter()
                .map(|c| {
                    let make = &make;
                    s.spawn(move || {
                        let comm: Arc<dyn Comm> = Arc::new(c);
                        let shard = || {
                            let full = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
                            ShardedNetProblem::new(full, Arc::clone(&comm)).unwrap()
                        };
                        let mut p = shard();
                        let full = Driver::new(Budget::iterations(9))
                            .seed(5)
                            .run(&mut p, &mut make())
                            .unwrap();
                        let mut store = solvers::MemoryStore::default();
                        let mut p1 = shard();
                        Driver::new(Budget::iterations(4))
                            .seed(5)
                            .checkpointing(&mut store, 4)
                            .run(&mut p1, &mut make())
                            .unwrap();
                        let mut p2 = shard();
                        let resumed = Driver::new(Budget::iterations(9))
                            .seed(5)
                            .checkpointing(&mut store, 4)
                            .resume(true)
                            .run(&mut p2, &mut make())
                            .unwrap();
                        assert_eq!(resumed.status, full.status);
                        assert_eq!(resumed.trace.without_time(), full.trace.without_time());
                        assert_eq!(p2.net().flat_params(), p.net().flat_params());
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        });
    }
    let taylor = TaylorConfig {
        output_loss: OutputLoss::Problem,
        warm_start: 2,
        ..Default::default()
    };
    resumed_equals_full(|| DistributedTaylorAdmm::<f64>::new(taylor.clone()).unwrap());
    resumed_equals_full(|| DistributedDlAdmm::<f64>::new(DlAdmmConfig::default()).unwrap());
}

/// The Gaussian start of Taylor ADMM (`TaylorStart::Gaussian`) is not sharded: every rank
/// would draw the same columns from the same seed. The run stops as not applicable,
/// before any step, with the reason.
#[test]
fn taylor_admm_on_shards_refuses_the_gaussian_start() {
    let comm: Arc<dyn Comm> = Arc::new(ThreadComm::group(1).into_iter().next().unwrap());
    let full = net_problem(Activation::Relu, LossKind::SoftmaxCrossEntropy);
    let mut sharded = ShardedNetProblem::new(full, comm).unwrap();
    let config = TaylorConfig::default().with_gaussian_start(1.0);
    let mut s = DistributedTaylorAdmm::<f64>::new(config).unwrap();
    let out = Driver::new(Budget::iterations(2))
        .seed(5)
        .run(&mut sharded, &mut s)
        .unwrap();
    match out.status {
        solvers::Status::NotApplicable { reason } => {
            assert!(reason.contains("Gaussian start"), "{reason}")
        }
        other => panic!("expected NotApplicable, got {other:?}"),
    }
    assert!(out.trace.records.is_empty());
}
