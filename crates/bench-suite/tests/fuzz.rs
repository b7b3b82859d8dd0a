//! A seeded fuzz harness for every loader of user files (#13): the labelled and numeric
//! CSV parsers, IDX images and labels (plain and gzipped), model files, checkpoints
//! (loaded and resumed through the driver) and results files. Inputs are random bytes
//! or mutations of valid files (bit flips, random bytes, truncation, insertion,
//! deletion, duplication, extreme numbers, huge IDX dimensions). Every input must give
//! `Ok` or a typed error: a panic is a failure.
//!
//! CI runs [`fuzz_loaders_ci`] (a few thousand cases, a few seconds in the dev
//! profile). The long run is ignored by default:
//!
//! ```text
//! cargo test --release -p bench-suite --test fuzz -- --ignored --nocapture
//! STRATA_FUZZ_CASES=200000 cargo test --release -p bench-suite --test fuzz -- --ignored --nocapture
//! ```
//!
//! It prints the inputs tried, the typed errors, the accepted inputs, the panics (must
//! be 0) and the peak heap (counting allocator).

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bench_suite::data::gunzip::gunzip_idx;
use bench_suite::data::idx::{
    IdxImages, encode_idx_images, encode_idx_labels, parse_idx_images, parse_idx_labels,
};
use bench_suite::data::{CsvOptions, LabelColumn, parse_labeled_csv, parse_numeric_csv};
use bench_suite::memory::{CountingAllocator, peak_bytes, reset_peak};
use bench_suite::problems::Dtype;
use bench_suite::results::{BudgetSpec, ResultsFile, RunMetadata, RunResult};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvers::first_order::SgdConfig;
use solvers::testing::LeastSquares;
use solvers::{Budget, CheckpointStore, Driver, FileStore, MemoryStore};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// The loaders under test.
#[derive(Clone, Copy, Debug)]
enum Target {
    LabeledCsv,
    NumericCsv,
    IdxImages,
    IdxLabels,
    IdxGzip,
    Model,
    Checkpoint,
    Results,
}

const TARGETS: [Target; 8] = [
    Target::LabeledCsv,
    Target::NumericCsv,
    Target::IdxImages,
    Target::IdxLabels,
    Target::IdxGzip,
    Target::Model,
    Target::Checkpoint,
    Target::Results,
];

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Valid files, one per target.
struct Seeds {
    labeled_csv: Vec<u8>,
    numeric_csv: Vec<u8>,
    idx_images: Vec<u8>,
    idx_labels: Vec<u8>,
    model: Vec<u8>,
    checkpoint: Vec<u8>,
    results: Vec<u8>,
}

fn seeds() -> Seeds {
    let images = IdxImages {
        count: 3,
        rows: 2,
        cols: 2,
        pixels: (0..12).map(|i| (i * 21) as u8).collect(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let net = nets::Sequential::<f64>::mlp(
        &[2, 3, 1],
        nets::Activation::Tanh,
        nets::Init::GlorotUniform,
        &mut rng,
    )
    .unwrap();
    let mut store = MemoryStore::default();
    Driver::new(Budget::iterations(2))
        .checkpointing(&mut store, 1)
        .run(&mut ls_problem(), &mut sgd())
        .unwrap();
    let cp = store.latest.unwrap();
    let mut results = ResultsFile::new(RunMetadata::collect(
        Dtype::F64,
        1,
        vec![0],
        BudgetSpec {
            max_epochs: Some(2.0),
            max_wall_time_s: None,
            max_iterations: None,
        },
    ));
    results
        .runs
        .push(RunResult::skipped("spirals", "adam", 0, "no data"));
    Seeds {
        labeled_csv: b"a,b,label\n0.5,1,0\n-2,3e2,1\n4,5,2\n".to_vec(),
        numeric_csv: b"1,2,3\n4.5,-6,7e-3\n".to_vec(),
        idx_images: encode_idx_images(&images),
        idx_labels: encode_idx_labels(&[0, 3, 9, 1]),
        model: nets::persist::to_json_string(&net).unwrap().into_bytes(),
        checkpoint: serde_json::to_vec(&cp).unwrap(),
        results: results.to_json_string().unwrap().into_bytes(),
    }
}

fn ls_problem() -> LeastSquares<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    LeastSquares::<f64>::random(3, 12, 0.1, &mut rng).unwrap()
}

fn sgd() -> impl solvers::Solver<LeastSquares<f64>> {
    SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    }
    .build::<f64>()
    .unwrap()
}

const EXTREMES: [&str; 9] = [
    "1e308",
    "-1",
    "NaN",
    "inf",
    "18446744073709551615",
    "1e400",
    "-0",
    "0",
    "4294967295",
];

/// One random mutation of `input` (in place).
fn mutate(input: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let len = input.len();
    let pos = |rng: &mut ChaCha8Rng, len: usize| rng.random_range(0..len.max(1));
    match rng.random_range(0..8) {
        0 if len > 0 => {
            let i = pos(rng, len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = pos(rng, len);
            input[i] = rng.random();
        }
        2 => input.truncate(pos(rng, len)),
        3 => {
            let i = pos(rng, len + 1).min(len);
            let k = rng.random_range(1..9);
            let bytes: Vec<u8> = (0..k).map(|_| rng.random()).collect();
            input.splice(i..i, bytes);
        }
        4 if len > 1 => {
            let a = pos(rng, len);
            let b = (a + rng.random_range(1..16)).min(len);
            input.drain(a..b);
        }
        5 if len > 1 => {
            let a = pos(rng, len);
            let b = (a + rng.random_range(1..32)).min(len);
            let chunk = input[a..b].to_vec();
            input.splice(b..b, chunk);
        }
        6 => {
            // Replace one run of number characters by an extreme value.
            let starts: Vec<usize> = (0..len)
                .filter(|&i| {
                    input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit())
                })
                .collect();
            if let Some(&s) = starts.get(pos(rng, starts.len())) {
                let e = (s..len)
                    .find(|&i| !(input[i].is_ascii_digit() || input[i] == b'.'))
                    .unwrap_or(len);
                let x = EXTREMES[rng.random_range(0..EXTREMES.len())];
                input.splice(s..e, x.bytes());
            }
        }
        _ => {
            // Binary headers: a huge big-endian u32 somewhere in the first 16 bytes.
            if len >= 8 {
                let i = 4 * rng.random_range(1..(len.min(16) / 4));
                input[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, rng.random()]);
            }
        }
    }
}

fn random_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let n = rng.random_range(0..256);
    (0..n).map(|_| rng.random()).collect()
}

/// Runs one loader on `input`: `true` if accepted, `false` for a typed error.
fn load(target: Target, input: &[u8], store: &FileStore) -> bool {
    let text = || String::from_utf8_lossy(input).into_owned();
    match target {
        Target::LabeledCsv => {
            let opts = CsvOptions {
                label_column: LabelColumn::Last,
                ..Default::default()
            };
            parse_labeled_csv(&text(), "fuzz.csv", &opts).is_ok()
        }
        Target::NumericCsv => parse_numeric_csv(&text(), "fuzz.csv", None, ',')
            .and_then(|t| t.to_matrix::<f32>())
            .is_ok(),
        Target::IdxImages => parse_idx_images(input, "fuzz-idx3").is_ok(),
        Target::IdxLabels => parse_idx_labels(input, "fuzz-idx1", 10).is_ok(),
        Target::IdxGzip => gunzip_idx(input, "fuzz.gz")
            .and_then(|b| parse_idx_images(&b, "fuzz.gz"))
            .is_ok(),
        Target::Model => nets::persist::from_json_str::<f64>(&text()).is_ok(),
        Target::Checkpoint => {
            std::fs::write(store.path(), input).unwrap();
            let Ok(Some(cp)) = store.load() else {
                return false;
            };
            let steps = cp.iteration.saturating_add(1);
            let mut mem = MemoryStore {
                latest: Some(cp),
                saves: 0,
            };
            Driver::new(Budget::iterations(steps))
                .checkpointing(&mut mem, 0)
                .resume(true)
                .run(&mut ls_problem(), &mut sgd())
                .is_ok()
        }
        Target::Results => bench_suite::results::ResultsFile::from_json_str(&text()).is_ok(),
    }
}

/// Counts of one fuzz campaign.
#[derive(Debug, Default)]
struct Counts {
    tried: u64,
    accepted: u64,
    errors: u64,
    panics: u64,
    peak_heap_bytes: usize,
    first_panics: Vec<String>,
}

fn campaign(cases: u64, seed: u64) -> Counts {
    let s = seeds();
    let dir = std::env::temp_dir().join(format!("strata-fuzz-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = FileStore::new(dir.join("checkpoint.json"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut c = Counts::default();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    reset_peak();
    for case in 0..cases {
        let target = TARGETS[(case % TARGETS.len() as u64) as usize];
        let valid: &[u8] = match target {
            Target::LabeledCsv => &s.labeled_csv,
            Target::NumericCsv => &s.numeric_csv,
            Target::IdxImages | Target::IdxGzip => &s.idx_images,
            Target::IdxLabels => &s.idx_labels,
            Target::Model => &s.model,
            Target::Checkpoint => &s.checkpoint,
            Target::Results => &s.results,
        };
        let mut input = if rng.random_range(0..4) == 0 {
            random_bytes(&mut rng)
        } else {
            let mut v = valid.to_vec();
            for _ in 0..rng.random_range(1..4) {
                mutate(&mut v, &mut rng);
            }
            v
        };
        if let Target::IdxGzip = target {
            // Mostly a valid gzip of a mutated file; sometimes mutated gzip bytes.
            input = gzip(&input);
            if rng.random_range(0..3) == 0 {
                mutate(&mut input, &mut rng);
            }
        }
        c.tried += 1;
        match catch_unwind(AssertUnwindSafe(|| load(target, &input, &store))) {
            Ok(true) => c.accepted += 1,
            Ok(false) => c.errors += 1,
            Err(_) => {
                c.panics += 1;
                if c.first_panics.len() < 5 {
                    c.first_panics.push(format!(
                        "{target:?} case {case}: {:?}",
                        String::from_utf8_lossy(&input[..input.len().min(200)])
                    ));
                }
            }
        }
    }
    std::panic::set_hook(hook);
    c.peak_heap_bytes = peak_bytes();
    let _ = std::fs::remove_dir_all(&dir);
    c
}

fn report(c: &Counts) {
    println!(
        "fuzz: {} inputs tried, {} typed errors, {} accepted, {} panics, peak heap {:.1} MiB",
        c.tried,
        c.errors,
        c.accepted,
        c.panics,
        c.peak_heap_bytes as f64 / (1 << 20) as f64
    );
    for p in &c.first_panics {
        println!("  panic: {p}");
    }
}

/// CI: a few thousand cases; no panic, and memory bounded (the gzip targets would
/// otherwise be free to allocate what a header announces).
#[test]
fn fuzz_loaders_ci() {
    let c = campaign(4_000, 13);
    report(&c);
    assert_eq!(c.panics, 0, "{:?}", c.first_panics);
    assert_eq!(c.tried, c.errors + c.accepted);
    assert!(
        c.errors > c.tried / 2,
        "mutations should mostly be rejected: {c:?}"
    );
    assert!(c.accepted > 0, "some mutations are harmless: {c:?}");
    assert!(
        c.peak_heap_bytes < 256 << 20,
        "peak heap {} bytes",
        c.peak_heap_bytes
    );
}

/// The long campaign: `STRATA_FUZZ_CASES` (default 10^6) cases, counts printed.
#[test]
#[ignore = "long: run with --release -- --ignored --nocapture"]
fn fuzz_loaders_long() {
    let cases = std::env::var("STRATA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let start = std::time::Instant::now();
    let c = campaign(cases, 2026);
    report(&c);
    println!("({:.1} s)", start.elapsed().as_secs_f64());
    assert_eq!(c.panics, 0, "{:?}", c.first_panics);
}
