//! Cost of one certified-MM step against one full-batch Adam step on digits-mlp
//! (64-128-10 ReLU MLP, softmax cross-entropy, 1438 training images), f64 and f32, and
//! on digits-softplus-mse (64-32-10 softplus MLP, squared error), f64, single thread,
//! side by side in one run. A safe-adam step is one gradient, Adam's moment update, one
//! enclosure pass and a 1-D minimisation; the target is <= 3x an Adam step.
//! safe-layerwise (k = 2 step sizes) is measured too. The example `certified_cost`
//! measures the same steps in CPU time, with the parts of a step.
//!
//! Run: `cargo bench -p bench-suite --bench certified_step`

use std::hint::black_box;
use std::time::Duration;

use autodiff::Real;
use bench_suite::problems::{ProblemData, ProblemKind, find_problem};
use bench_suite::runner::initial_network;
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use solvers::certified::CertifiedConfig;
use solvers::first_order::AdamConfig;
use solvers::{Batching, Context, Counters, NetProblem, Solver};

fn digits<T: Real>(name: &str) -> NetProblem<T> {
    let spec = find_problem(name).expect("registered");
    let ProblemKind::Network {
        widths,
        hidden,
        loss,
        ..
    } = &spec.kind
    else {
        panic!("{name} is a network problem")
    };
    let ProblemData::Supervised { train, .. } =
        spec.build::<T>(0, &Default::default()).expect("data")
    else {
        panic!("supervised")
    };
    let net = initial_network::<T>(widths, *hidden, 0).expect("net");
    NetProblem::new(net, loss.to_nets(), train, None).expect("problem")
}

fn bench_one<T: Real, S: Solver<NetProblem<T>>>(c: &mut Criterion, id: &str, mut solver: S) {
    let problem = if id.starts_with("softplus") {
        "digits-softplus-mse"
    } else {
        "digits-mlp"
    };
    let mut p = digits::<T>(problem);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 0,
        threads: 1,
    };
    solver.init(&mut p, &mut ctx).expect("init");
    // A few steps first, so the trust region has adapted (steady state).
    for _ in 0..5 {
        solver.step(&mut p, &mut ctx).expect("step");
    }
    c.bench_function(id, |b| {
        b.iter(|| black_box(solver.step(&mut p, &mut ctx).expect("step")))
    });
}

fn benches(c: &mut Criterion) {
    let adam = || AdamConfig {
        batching: Batching::Full,
        ..Default::default()
    };
    bench_one::<f64, _>(
        c,
        "digits_f64/adam_full_batch",
        adam().build::<f64>().unwrap(),
    );
    bench_one::<f64, _>(
        c,
        "digits_f64/safe_adam",
        CertifiedConfig::safe_adam().build::<f64>().unwrap(),
    );
    bench_one::<f64, _>(
        c,
        "digits_f64/safe_layerwise",
        CertifiedConfig::safe_layerwise().build::<f64>().unwrap(),
    );
    bench_one::<f32, _>(
        c,
        "digits_f32/adam_full_batch",
        adam().build::<f32>().unwrap(),
    );
    bench_one::<f32, _>(
        c,
        "digits_f32/safe_adam",
        CertifiedConfig::safe_adam().build::<f32>().unwrap(),
    );
    bench_one::<f64, _>(
        c,
        "softplus_mse_f64/adam_full_batch",
        adam().build::<f64>().unwrap(),
    );
    bench_one::<f64, _>(
        c,
        "softplus_mse_f64/safe_adam",
        CertifiedConfig::safe_adam().build::<f64>().unwrap(),
    );
    bench_one::<f64, _>(
        c,
        "softplus_mse_f64/safe_layerwise",
        CertifiedConfig::safe_layerwise().build::<f64>().unwrap(),
    );
}

criterion_group! {
    name = certified;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(certified);
