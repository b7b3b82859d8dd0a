//! User-supplied files: IDX (MNIST layout) and CSV, well-formed and malformed.

mod common;

use std::io::Write;
use std::path::Path;

use bench_suite::BenchError;
use bench_suite::data::idx::{IdxImages, encode_idx_images, encode_idx_labels, load_idx_pair};
use bench_suite::data::{CsvOptions, LabelColumn, load_mnist_dir, read_labeled_csv};
use common::temp_dir;
use nets::Targets;

fn images(count: usize) -> IdxImages {
    IdxImages {
        count,
        rows: 2,
        cols: 3,
        pixels: (0..count * 6).map(|i| (i * 37 % 256) as u8).collect(),
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn write_gz(path: &Path, bytes: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap();
}

fn write_mnist(dir: &Path, gz: bool, n_train: usize, n_test: usize) {
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
    let files = [
        (
            "train-images-idx3-ubyte",
            encode_idx_images(&images(n_train)),
        ),
        (
            "train-labels-idx1-ubyte",
            encode_idx_labels(&labels(n_train)),
        ),
        ("t10k-images-idx3-ubyte", encode_idx_images(&images(n_test))),
        ("t10k-labels-idx1-ubyte", encode_idx_labels(&labels(n_test))),
    ];
    for (name, bytes) in files {
        if gz {
            write_gz(&dir.join(format!("{name}.gz")), &bytes);
        } else {
            write(&dir.join(name), &bytes);
        }
    }
}

#[test]
fn mnist_directory_plain_and_gzipped_load_identically() {
    let plain = temp_dir("idx-plain");
    let gz = temp_dir("idx-gz");
    write_mnist(&plain, false, 12, 5);
    write_mnist(&gz, true, 12, 5);
    let (tr, te) = load_mnist_dir::<f64>(&plain, None, None).unwrap();
    let (tr2, te2) = load_mnist_dir::<f64>(&gz, None, None).unwrap();
    assert_eq!(tr, tr2);
    assert_eq!(te, te2);
    assert_eq!(tr.inputs().shape(), (6, 12));
    assert_eq!(te.len(), 5);
    // Image 1, pixel 0 is byte 6 of the pixel block: (6 * 37) % 256 = 222.
    assert_eq!(tr.inputs()[(0, 1)], 222.0 / 255.0);
    match tr.targets() {
        Targets::Labels { labels, classes } => {
            assert_eq!(*classes, 10);
            assert_eq!(labels[11], 1);
        }
        Targets::Dense(_) => panic!("labels expected"),
    }
    let (small, _) = load_mnist_dir::<f32>(&plain, Some(4), None).unwrap();
    assert_eq!(small.len(), 4);
}

#[test]
fn missing_directory_or_file_is_data_missing() {
    let dir = temp_dir("idx-missing");
    let err = load_mnist_dir::<f64>(&dir.join("nope"), None, None).unwrap_err();
    assert!(matches!(err, BenchError::DataMissing { .. }), "{err}");
    write_mnist(&dir, false, 3, 3);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    match load_mnist_dir::<f64>(&dir, None, None).unwrap_err() {
        BenchError::DataMissing { path } => {
            assert!(
                path.ends_with("t10k-labels-idx1-ubyte"),
                "{}",
                path.display()
            )
        }
        other => panic!("expected DataMissing, got {other}"),
    }
}

fn idx_error(dir: &Path, images: &[u8], labels: &[u8]) -> BenchError {
    write(&dir.join("i"), images);
    write(&dir.join("l"), labels);
    load_idx_pair::<f64>(dir, "i", "l", None).unwrap_err()
}

fn assert_idx(err: BenchError, file_end: &str, want_offset: u64, fragment: &str) {
    match err {
        BenchError::Idx {
            file,
            offset,
            message,
        } => {
            assert!(file.ends_with(file_end), "file {file}");
            assert_eq!(offset, want_offset, "{message}");
            assert!(message.contains(fragment), "message `{message}`");
        }
        other => panic!("expected an IDX error, got {other}"),
    }
}

#[test]
fn malformed_idx_files_name_file_and_offset() {
    let dir = temp_dir("idx-bad");
    let good_i = encode_idx_images(&images(4));
    let good_l = encode_idx_labels(&[1, 2, 3, 4]);

    // Bad magic (labels magic in the images file).
    let mut bad = good_i.clone();
    bad[3] = 1;
    assert_idx(idx_error(&dir, &bad, &good_l), "i", 0, "bad magic");
    // Wrong element type.
    let mut bad = good_i.clone();
    bad[2] = 0x0d;
    assert_idx(idx_error(&dir, &bad, &good_l), "i", 0, "bad magic");
    // Truncated header.
    assert_idx(
        idx_error(&dir, &good_i[..10], &good_l),
        "i",
        10,
        "truncated header",
    );
    // Truncated data: 4 images of 6 pixels = 24 bytes announced, 20 present.
    let cut = &good_i[..good_i.len() - 4];
    assert_idx(
        idx_error(&dir, cut, &good_l),
        "i",
        cut.len() as u64,
        "truncated data",
    );
    // Trailing bytes.
    let mut long = good_l.clone();
    long.push(0);
    assert_idx(idx_error(&dir, &good_i, &long), "l", 12, "trailing");
    // Label out of range at label index 2 -> offset 8 + 2.
    let bad_l = encode_idx_labels(&[1, 2, 10, 4]);
    assert_idx(
        idx_error(&dir, &good_i, &bad_l),
        "l",
        10,
        "label 10 out of range",
    );
    // Images of zero columns (review 3: accepted as a data set of 0 features).
    let flat = encode_idx_images(&IdxImages {
        count: 4,
        rows: 2,
        cols: 0,
        pixels: Vec::new(),
    });
    assert_idx(
        idx_error(&dir, &flat, &good_l),
        "i",
        12,
        "images of 2 x 0 pixels",
    );
    // Inconsistent counts.
    match idx_error(&dir, &good_i, &encode_idx_labels(&[1, 2, 3])) {
        BenchError::Inconsistent { message, .. } => {
            assert!(message.contains("4 images but 3 labels"), "{message}")
        }
        other => panic!("expected Inconsistent, got {other}"),
    }
    // Broken gzip stream.
    let mut gz = Vec::new();
    {
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        enc.write_all(&good_i).unwrap();
        enc.finish().unwrap();
    }
    gz.truncate(gz.len() / 2);
    let err = idx_error(&dir, &gz, &good_l);
    assert!(
        matches!(&err, BenchError::Idx { message, .. } if message.contains("gzip")),
        "{err}"
    );
}

fn csv_error(text: &str, opts: &CsvOptions) -> (usize, usize, String) {
    let dir = temp_dir("csv");
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    match read_labeled_csv(&path, opts).unwrap_err() {
        BenchError::Csv {
            file,
            line,
            column,
            message,
        } => {
            assert!(file.ends_with("data.csv"), "{file}");
            (line, column, message)
        }
        other => panic!("expected a CSV error, got {other}"),
    }
}

#[test]
fn csv_with_header_and_label_column_choice() {
    let dir = temp_dir("csv-ok");
    let path = dir.join("ok.csv");
    std::fs::write(&path, "label,a,b\n1, 0.5,2\n\n0,-1e-3,4\n2,7,8\n").unwrap();
    let opts = CsvOptions {
        label_column: LabelColumn::First,
        ..CsvOptions::default()
    };
    let t = read_labeled_csv(&path, &opts).unwrap();
    assert_eq!(t.header.as_deref().map(<[String]>::len), Some(3));
    assert_eq!(t.labels, vec![1, 0, 2]);
    assert_eq!(t.classes, 3);
    assert_eq!(t.features, vec![0.5, 2.0, -1e-3, 4.0, 7.0, 8.0]);
    let x = t.inputs::<f64>().unwrap();
    assert_eq!(x.shape(), (2, 3));
    assert_eq!(x[(1, 1)], 4.0);
    // Same data, label in the middle column, no header declared.
    let path2 = dir.join("mid.csv");
    std::fs::write(&path2, "0.5,1,2\n-1,0,4\n").unwrap();
    let opts = CsvOptions {
        label_column: LabelColumn::Index(1),
        header: Some(false),
        classes: Some(5),
        ..CsvOptions::default()
    };
    let t = read_labeled_csv(&path2, &opts).unwrap();
    assert_eq!((t.labels.clone(), t.classes), (vec![1, 0], 5));
    assert_eq!(t.features, vec![0.5, 2.0, -1.0, 4.0]);
}

#[test]
fn malformed_csv_names_line_and_column() {
    let no_header = CsvOptions {
        header: Some(false),
        ..CsvOptions::default()
    };
    let (l, c, m) = csv_error("1,2,0\n3,x,1\n", &no_header);
    assert_eq!((l, c), (2, 2));
    assert!(m.contains("non-numeric cell `x`"), "{m}");
    let (l, c, m) = csv_error("1,2,0\n3,4\n", &no_header);
    assert_eq!((l, c), (2, 0));
    assert!(m.contains("ragged row: 2 fields where 3"), "{m}");
    let (l, c, m) = csv_error("1,2,0\n\n3,4,1.5\n", &no_header);
    assert_eq!((l, c), (3, 3));
    assert!(m.contains("label `1.5` out of range"), "{m}");
    let with_classes = CsvOptions {
        classes: Some(2),
        ..no_header.clone()
    };
    let (l, c, m) = csv_error("1,2,0\n3,4,2\n", &with_classes);
    assert_eq!((l, c), (2, 3));
    assert!(m.contains("0..2"), "{m}");
    let (l, c, _) = csv_error("1,2,-1\n", &no_header);
    assert_eq!((l, c), (1, 3));
    let (l, c, m) = csv_error("1,inf,0\n", &no_header);
    assert_eq!((l, c), (1, 2));
    assert!(m.contains("non-finite"), "{m}");
    let (_, _, m) = csv_error("a,b,c\n", &CsvOptions::default());
    assert!(m.contains("no data records"), "{m}");
    let far = CsvOptions {
        label_column: LabelColumn::Index(7),
        ..no_header
    };
    let (l, c, _) = csv_error("1,2,0\n", &far);
    assert_eq!((l, c), (1, 8));
}

#[test]
fn numeric_csv_matrix() {
    let t = bench_suite::data::parse_numeric_csv("a;b\n1;2\n3; 4.5\n", "m.csv", None, ';').unwrap();
    assert_eq!((t.rows, t.cols), (2, 2));
    let m = t.to_matrix::<f64>().unwrap();
    assert_eq!(m[(1, 1)], 4.5);
    assert_eq!(m[(0, 1)], 2.0);
    let err =
        bench_suite::data::parse_numeric_csv("1,2\n3,-\n", "m.csv", Some(false), ',').unwrap_err();
    assert!(
        matches!(
            err,
            BenchError::Csv {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_csv_is_data_missing() {
    let dir = temp_dir("csv-missing");
    let err = read_labeled_csv(&dir.join("absent.csv"), &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, BenchError::DataMissing { .. }), "{err}");
}
