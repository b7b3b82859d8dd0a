//! Fashion-MNIST from the `dataset-fashion-mnist` package: directory resolution, the
//! skip message with the install command, typed errors for corrupt or truncated files in
//! a copy of the package's layout, and the CI smoke test on the package's data (skipped
//! with a message when the package is not installed).

use std::io::Write;
use std::path::{Path, PathBuf};

use bench_suite::BenchError;
use bench_suite::data::idx::{IdxImages, encode_idx_images, encode_idx_labels};
use bench_suite::data::{FASHION_MNIST_PACKAGE_DIR, load_mnist_dir, resolve_fashion_mnist_dir};
use bench_suite::problems::{BuildOptions, ProblemData, find_problem};
use bench_suite::results::RunStatus;
use bench_suite::runner::{CompareArgs, run};
use clap::Parser;

const STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-fashion-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_gz(path: &Path, bytes: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap();
}

/// The package's layout (four `.gz` files) with `n` tiny 2x2 images per split.
fn fake_package(dir: &Path, n: usize) {
    let images = IdxImages {
        count: n,
        rows: 2,
        cols: 2,
        pixels: (0..n * 4).map(|i| (i % 251) as u8).collect(),
    };
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for (stem, bytes) in [
        (STEMS[0], encode_idx_images(&images)),
        (STEMS[1], encode_idx_labels(&labels)),
        (STEMS[2], encode_idx_images(&images)),
        (STEMS[3], encode_idx_labels(&labels)),
    ] {
        write_gz(&dir.join(format!("{stem}.gz")), &bytes);
    }
}

fn package_installed() -> bool {
    STEMS.iter().all(|s| {
        Path::new(FASHION_MNIST_PACKAGE_DIR)
            .join(format!("{s}.gz"))
            .is_file()
    })
}

#[test]
fn explicit_directory_wins_and_a_missing_package_names_the_install_command() {
    let root = temp_dir("resolve");
    let explicit = root.join("mine");
    assert_eq!(
        resolve_fashion_mnist_dir(Some(&explicit), &root.join("absent")).unwrap(),
        explicit
    );
    assert_eq!(resolve_fashion_mnist_dir(None, &root).unwrap(), root);
    let err = resolve_fashion_mnist_dir(None, &root.join("absent")).unwrap_err();
    assert!(matches!(err, BenchError::PackageMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    assert!(msg.contains("STRATA_FASHION_MNIST_DIR"), "{msg}");
    // Through the problem registry: no directory given, package dir absent.
    let opts = BuildOptions {
        fashion_mnist_package_dir: Some(root.join("absent")),
        ..Default::default()
    };
    let err = find_problem("fashion-mnist-mlp")
        .unwrap()
        .build::<f32>(0, &opts)
        .unwrap_err();
    assert!(matches!(err, BenchError::PackageMissing { .. }), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn problems_read_the_package_layout_without_a_directory_option() {
    let root = temp_dir("layout");
    fake_package(&root, 30);
    let opts = BuildOptions {
        fashion_mnist_package_dir: Some(root.clone()),
        ..Default::default()
    };
    let smoke = find_problem("fashion-mnist-smoke").unwrap();
    let ProblemData::Supervised { train, test } = smoke.build::<f64>(0, &opts).unwrap() else {
        panic!("supervised")
    };
    // Fewer images than the subset asks for: all of them are used.
    assert_eq!(
        (train.len(), test.unwrap().len(), train.input_dim()),
        (30, 30, 4)
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn corrupt_or_truncated_package_files_give_typed_errors_naming_the_file() {
    // Truncated gzip stream of the training labels.
    let root = temp_dir("truncated");
    fake_package(&root, 20);
    let labels = root.join(format!("{}.gz", STEMS[1]));
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 2]).unwrap();
    let dir = resolve_fashion_mnist_dir(None, &root).unwrap();
    match load_mnist_dir::<f32>(&dir, None, None).unwrap_err() {
        BenchError::Idx { file, message, .. } => {
            assert!(file.ends_with("train-labels-idx1-ubyte.gz"), "{file}");
            assert!(message.contains("gzip"), "{message}");
        }
        other => panic!("expected an IDX error, got {other}"),
    }
    // Valid gzip, corrupt content (bad magic number) in the test images.
    fake_package(&root, 20);
    write_gz(&root.join(format!("{}.gz", STEMS[2])), &[0, 0, 9, 3, 0, 0]);
    match load_mnist_dir::<f64>(&dir, None, None).unwrap_err() {
        BenchError::Idx { file, message, .. } => {
            assert!(file.ends_with("t10k-images-idx3-ubyte.gz"), "{file}");
            assert!(message.contains("magic"), "{message}");
        }
        other => panic!("expected an IDX error, got {other}"),
    }
    // A file of the package removed: DataMissing naming it (the runner skips).
    fake_package(&root, 20);
    std::fs::remove_file(root.join(format!("{}.gz", STEMS[0]))).unwrap();
    match load_mnist_dir::<f64>(&dir, None, None).unwrap_err() {
        BenchError::DataMissing { path } => {
            assert!(
                path.ends_with("train-images-idx3-ubyte"),
                "{}",
                path.display()
            )
        }
        other => panic!("expected DataMissing, got {other}"),
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn truncated_copy_of_the_real_package_names_the_file() {
    if !package_installed() {
        eprintln!(
            "SKIPPED: {FASHION_MNIST_PACKAGE_DIR} not found; install it with \
             `apt-get install dataset-fashion-mnist`"
        );
        return;
    }
    let root = temp_dir("realcopy");
    for s in STEMS {
        let name = format!("{s}.gz");
        std::fs::copy(
            Path::new(FASHION_MNIST_PACKAGE_DIR).join(&name),
            root.join(&name),
        )
        .unwrap();
    }
    let path = root.join(format!("{}.gz", STEMS[3]));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let opts = BuildOptions {
        fashion_mnist_package_dir: Some(root.clone()),
        ..Default::default()
    };
    let err = find_problem("fashion-mnist-smoke")
        .unwrap()
        .build::<f32>(0, &opts)
        .unwrap_err();
    match &err {
        BenchError::Idx { file, .. } => {
            assert!(file.ends_with("t10k-labels-idx1-ubyte.gz"), "{err}")
        }
        other => panic!("expected an IDX error, got {other}"),
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// CI smoke test: the first 1,000 training and 1,000 test images of the package's data,
/// found without any directory option, through the whole compare pipeline.
#[test]
fn smoke_compare_on_the_package_data() {
    if !package_installed() {
        eprintln!(
            "SKIPPED: Fashion-MNIST smoke test: {FASHION_MNIST_PACKAGE_DIR} not found; install \
             it with `apt-get install dataset-fashion-mnist` (.ci/run tries to)"
        );
        return;
    }
    let out = temp_dir("smoke");
    let args = CompareArgs::parse_from([
        "strata-compare",
        "--problems",
        "fashion-mnist-smoke",
        "--solvers",
        "adam,block-mm",
        "--epochs",
        "3",
        "--time-budget",
        "0",
        "--seeds",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ]);
    let outcome = run(&args).unwrap();
    assert_eq!(outcome.results.runs.len(), 2);
    for r in &outcome.results.runs {
        assert!(
            matches!(
                r.status,
                RunStatus::Completed { .. } | RunStatus::BudgetExhausted { .. }
            ),
            "{}: {:?}",
            r.solver,
            r.status
        );
        let m = r.classification.as_ref().expect("confusion matrix");
        assert_eq!(m.set, "test");
        assert_eq!(m.confusion.iter().flatten().sum::<u64>(), 1000);
        let acc = r.last().unwrap().test_accuracy.unwrap();
        assert!((m.accuracy().unwrap() - acc).abs() < 1e-12, "{acc}");
        // 10 classes, 3 epochs on 1,000 images: far above chance (10%).
        assert!(acc > 0.5, "{}: test accuracy {acc}", r.solver);
    }
    let report = std::fs::read_to_string(&outcome.outputs.report_md).unwrap();
    assert!(report.contains("Per-class results"), "{report}");
    assert!(outcome.dir.join("confusion").read_dir().unwrap().count() == 2);
    std::fs::remove_dir_all(&out).unwrap();
}
