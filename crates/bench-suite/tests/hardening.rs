//! #13: the reproductions of a hostile user's inputs, each a typed error and (for a
//! command) a non-zero exit, with nothing lost.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use bench_suite::BenchError;
use bench_suite::data::idx::{IdxImages, encode_idx_images};
use bench_suite::data::{CsvOptions, Standardizer, parse_labeled_csv, parse_numeric_csv};
use bench_suite::runner::{CompareArgs, run};
use clap::Parser;
use nalgebra::DMatrix;

const BIN: &str = env!("CARGO_BIN_EXE_strata-compare");

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Defects 4, 7, 8: huge counts and durations are refused up front by the library
/// (typed `InvalidArgument`) and by the binary (exit 2), before any run or directory.
#[test]
fn huge_counts_and_durations_are_refused_before_anything_runs() {
    let root = common::temp_dir("hard-args");
    let cases: [&[&str]; 7] = [
        &["--threads", "18446744073709551615"],
        &["--threads", "1000000"],
        &["--seeds", "18446744073709551615"],
        &["--seeds", "0..18446744073709551615"],
        &["--seeds", "1000000000"],
        &["--time-budget", "1e20"],
        &["--time-budget", "1e-10"],
    ];
    for extra in cases {
        let mut v = vec![
            "strata-compare",
            "--problems",
            "spirals",
            "--solvers",
            "lbfgs",
        ];
        let out = root.display().to_string();
        v.extend_from_slice(&["--out", &out]);
        v.extend_from_slice(extra);
        let e = run(&CompareArgs::parse_from(&v)).unwrap_err();
        assert!(
            matches!(e, BenchError::InvalidArgument { .. }),
            "{extra:?}: {e}"
        );
        let o = Command::new(BIN).args(&v[1..]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("invalid argument"), "{extra:?}: {err}");
    }
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
}

/// Review 2: the options the table above missed. `--memory-limit-gib` NaN, 0, a
/// negative value or infinity became a 0-byte (or saturated) limit: with `--suite
/// papers` every run was refused and a results directory written (exit 3); `--max-train
/// 0` built empty data sets. Each is now refused up front, with or without the suite:
/// `InvalidArgument`, exit 2, nothing written. `--memory-limit-gib` and `--max-test` act
/// only in the papers suite: without `--suite` they are a command-line error (exit 2),
/// whatever their value, instead of being checked and then ignored.
#[test]
fn memory_limits_and_sample_caps_out_of_range_are_refused_up_front() {
    let root = common::temp_dir("hard-caps");
    let out = root.display().to_string();
    for suite in [None, Some("papers")] {
        for extra in [
            ["--memory-limit-gib", "NaN"],
            ["--memory-limit-gib", "0"],
            ["--memory-limit-gib", "-1"],
            ["--memory-limit-gib", "inf"],
            ["--memory-limit-gib", "1e30"],
            ["--max-train", "0"],
            ["--max-test", "0"],
        ] {
            let mut v = vec!["strata-compare", "--out", &out, "--no-progress"];
            match suite {
                Some(s) => v.extend_from_slice(&["--suite", s, "--seeds", "1"]),
                None => v.extend_from_slice(&["--problems", "spirals", "--solvers", "lbfgs"]),
            }
            v.extend_from_slice(&extra);
            if suite.is_none() && extra[0] != "--max-train" {
                assert!(CompareArgs::try_parse_from(&v).is_err(), "{extra:?}");
                let o = Command::new(BIN).args(&v[1..]).output().unwrap();
                assert_eq!(o.status.code(), Some(2), "{extra:?}");
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(err.contains("--suite"), "{extra:?}: {err}");
                continue;
            }
            let e = run(&CompareArgs::parse_from(&v)).unwrap_err();
            assert!(
                matches!(&e, BenchError::InvalidArgument { name, .. } if *name == &extra[0][2..]),
                "{suite:?} {extra:?}: {e}"
            );
            let o = Command::new(BIN).args(&v[1..]).output().unwrap();
            assert_eq!(o.status.code(), Some(2), "{suite:?} {extra:?}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("invalid argument"), "{extra:?}: {err}");
        }
    }
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
    // In range but without the suite: refused too (it would not apply).
    for extra in [["--memory-limit-gib", "4"], ["--max-test", "100"]] {
        let mut v = vec!["strata-compare", "--out", &out, "--problems", "spirals"];
        v.extend_from_slice(&extra);
        assert!(CompareArgs::try_parse_from(&v).is_err(), "{extra:?}");
        v.extend_from_slice(&["--suite", "papers"]);
        assert!(CompareArgs::try_parse_from(&v).is_ok(), "{extra:?}");
    }
}

/// Defect 9: Ctrl-C during a comparison removes the partial directory and exits 130;
/// no directory carrying a run's name is left behind.
#[cfg(unix)]
#[test]
fn sigint_removes_the_partial_run_directory() {
    let root = common::temp_dir("hard-sigint");
    let mut child = Command::new(BIN)
        .args([
            "--no-progress",
            "--problems",
            "digits-mlp",
            "--solvers",
            "adam",
            "--epochs",
            "100000",
            "--time-budget",
            "60",
            "--out",
        ])
        .arg(&root)
        .spawn()
        .unwrap();
    // Wait until the partial directory exists (the run is under way).
    let t = std::time::Instant::now();
    while !entries(&root).iter().any(|e| e.ends_with(".partial")) {
        assert!(t.elapsed().as_secs() < 60, "no partial directory appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(entries(&root).iter().all(|e| e.starts_with(".compare-")));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        entries(&root).is_empty(),
        "left behind: {:?}",
        entries(&root)
    );
}

/// Defects 2 and 3 through the directory loader: a multi-member gzip loads like the
/// plain file, and a bomb is refused after reading at most the announced size + 1.
#[test]
fn gzip_members_and_bombs_through_the_idx_loader() {
    let dir = common::temp_dir("hard-gz");
    let images = IdxImages {
        count: 4,
        rows: 2,
        cols: 3,
        pixels: (0..24).map(|i| (i * 11) as u8).collect(),
    };
    let raw = encode_idx_images(&images);
    let mut multi = gz(&raw[..10]);
    multi.extend(gz(&raw[10..]));
    std::fs::write(dir.join("x-idx3-ubyte.gz"), &multi).unwrap();
    let (_, bytes) = bench_suite::data::idx::read_idx_file(&dir, "x-idx3-ubyte").unwrap();
    assert_eq!(bytes, raw);
    let mut bomb = raw[..16].to_vec();
    bomb.resize(16 + (32 << 20), 7);
    std::fs::write(dir.join("b-idx3-ubyte.gz"), gz(&bomb)).unwrap();
    let (_, bytes) = bench_suite::data::idx::read_idx_file(&dir, "b-idx3-ubyte").unwrap();
    assert_eq!(bytes.len(), 16 + 24 + 1);
    let e = bench_suite::data::idx::parse_idx_images(&bytes, "b").unwrap_err();
    assert!(e.to_string().contains("trailing"), "{e}");
}

/// Defect 6: a feature around 1e200 (and near f64::MAX) is standardised to its true
/// z-scores, not zeroed.
#[test]
fn the_standardiser_does_not_overflow() {
    for scale in [1e200, 1e307, 1.0] {
        let x = DMatrix::from_row_slice(1, 4, &[1.0, 2.0, 3.0, 4.0]) * scale;
        let s = Standardizer::fit(&x);
        assert!(
            (s.mean[0] / (2.5 * scale) - 1.0).abs() < 1e-12,
            "{scale}: {:?}",
            s.mean
        );
        let sd = (1.25f64).sqrt() * scale;
        assert!((s.std[0] / sd - 1.0).abs() < 1e-12, "{scale}: {:?}", s.std);
        let mut y = x.clone();
        s.apply(&mut y).unwrap();
        let want = [-1.5, -0.5, 0.5, 1.5].map(|v: f64| v / 1.25f64.sqrt());
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{scale}: {a} vs {b}");
        }
    }
    let x = DMatrix::from_row_slice(1, 2, &[f64::MAX, -f64::MAX]);
    let s = Standardizer::fit(&x);
    assert_eq!((s.mean[0], s.std[0]), (0.0, f64::MAX));
    let mut y = x.clone();
    s.apply(&mut y).unwrap();
    assert_eq!(y.as_slice(), &[1.0, -1.0]);
}

/// Defect 7 (`CsvOptions::classes`) and item 11 (`to_matrix::<f32>` overflow).
#[test]
fn csv_class_counts_and_f32_overflow_are_typed_errors() {
    let text = "1,2,0\n3,4,1\n";
    for k in [Some(usize::MAX), Some(0), Some(1 << 40)] {
        let opts = CsvOptions {
            classes: k,
            ..Default::default()
        };
        let e = parse_labeled_csv(text, "t.csv", &opts).unwrap_err();
        assert!(
            matches!(
                e,
                BenchError::InvalidArgument {
                    name: "classes",
                    ..
                }
            ),
            "{e}"
        );
    }
    let ok = CsvOptions {
        classes: Some(2),
        ..Default::default()
    };
    assert_eq!(
        parse_labeled_csv(text, "t.csv", &ok)
            .unwrap()
            .class_counts()
            .unwrap(),
        vec![1, 1]
    );
    let t = parse_numeric_csv("1,1e39\n2,3\n", "n.csv", Some(false), ',').unwrap();
    let e = t.to_matrix::<f32>().unwrap_err();
    assert!(e.to_string().contains("line 1, column 2"), "{e}");
    assert_eq!(t.to_matrix::<f64>().unwrap()[(0, 1)], 1e39);
}

/// Review 2: the initial NMF factors are counted before they are allocated (Python's
/// `NMF(n_components=10**9)` aborted the interpreter on an 32 GB allocation): a typed
/// error naming the rank; a rank of 0 too.
#[test]
fn initial_nmf_factors_beyond_the_entry_cap_are_an_error() {
    let v = DMatrix::from_element(30, 4, 1.0f64);
    for rank in [1_000_000_000, usize::MAX, 0] {
        let e = bench_suite::runner::initial_factors(&v, rank, 0).unwrap_err();
        assert!(
            matches!(e, BenchError::InvalidArgument { name: "rank", .. }),
            "{rank}: {e}"
        );
    }
    let (w, h) = bench_suite::runner::initial_factors(&v, 3, 0).unwrap();
    assert_eq!((w.shape(), h.shape()), ((30, 3), (3, 4)));
}

/// Review 3: `LabeledTable` and `NumericTable` have public fields, so a table built by
/// hand may break what a parsed one guarantees. `inputs`, `class_counts`,
/// `train_test_from_table` and `to_matrix` give typed errors naming the field instead
/// of panicking (`from_iterator` on too few values, an out-of-range count index).
#[test]
fn hand_built_tables_that_break_their_invariants_are_typed_errors() {
    use bench_suite::data::{LabeledTable, NumericTable, train_test_from_table};
    let good = LabeledTable {
        features: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        labels: vec![0, 1, 0, 1],
        num_features: 2,
        classes: 2,
        header: None,
    };
    assert_eq!(good.class_counts().unwrap(), vec![2, 2]);
    assert_eq!(good.inputs::<f64>().unwrap()[(1, 3)], 8.0);
    let short = LabeledTable {
        num_features: 3,
        ..good.clone()
    };
    let far = LabeledTable {
        labels: vec![0, 1, 0, 7],
        ..good.clone()
    };
    let named = |e: BenchError, name: &str, needle: &str| match e {
        BenchError::InvalidArgument { name: n, message } => {
            assert_eq!(n, name, "{message}");
            assert!(message.contains(needle), "{message}");
        }
        other => panic!("expected an error naming {name}, got {other}"),
    };
    let need = "has 8 values, 3 features x 4 records need 12";
    named(short.inputs::<f64>().unwrap_err(), "features", need);
    named(short.class_counts().unwrap_err(), "features", need);
    named(
        train_test_from_table::<f64>(&short, 0.5, 1).unwrap_err(),
        "features",
        need,
    );
    let below = "label 7 of record 3 is not below 2 classes";
    named(far.class_counts().unwrap_err(), "labels", below);
    named(far.inputs::<f32>().unwrap_err(), "labels", below);
    let t = NumericTable {
        values: vec![1.0, 2.0, 3.0],
        rows: 2,
        cols: 2,
        header: None,
    };
    named(
        t.to_matrix::<f64>().unwrap_err(),
        "values",
        "has 3 values, 2 rows x 2 columns need 4",
    );
}

/// Review 3: a CSV path that is not a regular file is refused before reading
/// (`/dev/zero` never ends: `read_to_string` grew its buffer until the allocation
/// failed).
#[cfg(unix)]
#[test]
fn a_device_as_csv_file_is_an_error_not_an_endless_read() {
    use bench_suite::data::{read_labeled_csv, read_numeric_csv};
    let dev = Path::new("/dev/zero");
    for e in [
        read_labeled_csv(dev, &CsvOptions::default()).unwrap_err(),
        read_numeric_csv(dev, None, ',').unwrap_err(),
    ] {
        assert!(
            matches!(&e, BenchError::Io { source, .. } if source.to_string() == "not a regular file"),
            "{e}"
        );
    }
}
