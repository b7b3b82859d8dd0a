//! MNIST-layout IDX files (MNIST, Fashion-MNIST), plain or gzipped, supplied by the user.
//!
//! IDX layout (big-endian): bytes 0-1 are zero, byte 2 is the element type (0x08 =
//! unsigned byte, the only type accepted here), byte 3 the number of dimensions; then one
//! u32 per dimension; then the elements. Image files are 3-D (count, rows, cols), label
//! files 1-D (count). A file whose first two bytes are the gzip magic `1f 8b` is
//! decompressed first (bounded by the announced size, see [`super::gunzip`]); error
//! offsets then refer to the DECOMPRESSED bytes.
//!
//! Expected file names in the directory (each either plain or with a `.gz` suffix):
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte`. No download ever happens.

use std::path::{Path, PathBuf};

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Dataset, Targets};

use crate::BenchError;

/// Environment variable the CLI reads for the MNIST directory.
pub const MNIST_DIR_ENV: &str = "STRATA_MNIST_DIR";
/// Environment variable the CLI reads for the Fashion-MNIST directory.
pub const FASHION_MNIST_DIR_ENV: &str = "STRATA_FASHION_MNIST_DIR";
/// Where Debian's `dataset-fashion-mnist` package installs the four gzipped IDX files
/// (`dpkg -L dataset-fashion-mnist`, package version 0.0~git20200523.55506a9-1).
pub const FASHION_MNIST_PACKAGE_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The Debian package that ships Fashion-MNIST (MIT licence, about 30 MB).
pub const FASHION_MNIST_PACKAGE: &str = "dataset-fashion-mnist";
/// Number of classes of MNIST and Fashion-MNIST.
pub const IDX_CLASSES: usize = 10;

/// Images of an IDX3 file: `count` images of `rows x cols` bytes, row-major, image after
/// image.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixel bytes.
    pub pixels: Vec<u8>,
}

fn idx_err(file: &str, offset: usize, message: impl Into<String>) -> BenchError {
    BenchError::Idx {
        file: file.to_string(),
        offset: offset as u64,
        message: message.into(),
    }
}

/// Checks the magic number and reads the dimensions; returns them and the data offset.
fn header(bytes: &[u8], file: &str, ndims: u8) -> Result<(Vec<usize>, usize), BenchError> {
    if bytes.len() < 4 {
        return Err(idx_err(
            file,
            bytes.len(),
            format!("truncated: {} bytes, the magic number needs 4", bytes.len()),
        ));
    }
    let expected = [0u8, 0, 0x08, ndims];
    if bytes[..4] != expected {
        return Err(idx_err(
            file,
            0,
            format!(
                "bad magic number {:02x}{:02x}{:02x}{:02x}, expected {:02x}{:02x}{:02x}{:02x} \
                 (unsigned bytes, {ndims} dimension(s))",
                bytes[0], bytes[1], bytes[2], bytes[3], 0, 0, 8, ndims
            ),
        ));
    }
    let data_start = 4 + 4 * ndims as usize;
    if bytes.len() < data_start {
        return Err(idx_err(
            file,
            bytes.len(),
            format!(
                "truncated header: {} bytes, {ndims} dimension(s) need {data_start}",
                bytes.len()
            ),
        ));
    }
    let dims = (0..ndims as usize)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    Ok((dims, data_start))
}

fn check_len(bytes: &[u8], file: &str, start: usize, need: usize) -> Result<(), BenchError> {
    let have = bytes.len() - start;
    if have < need {
        return Err(idx_err(
            file,
            bytes.len(),
            format!("truncated data: header announces {need} bytes, file has {have}"),
        ));
    }
    if have > need {
        return Err(idx_err(
            file,
            start + need,
            format!("{} trailing bytes after the {need} announced", have - need),
        ));
    }
    Ok(())
}

/// Parses an IDX3 unsigned-byte image file (already decompressed). Images of zero rows
/// or columns are an error (at the offset of that dimension): they would make a data
/// set of 0 features.
pub fn parse_idx_images(bytes: &[u8], file: &str) -> Result<IdxImages, BenchError> {
    let (dims, start) = header(bytes, file, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if let Some(i) = [rows, cols].iter().position(|&d| d == 0) {
        return Err(idx_err(
            file,
            8 + 4 * i,
            format!("images of {rows} x {cols} pixels (a dimension is zero)"),
        ));
    }
    let need = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| idx_err(file, 4, "dimensions overflow"))?;
    check_len(bytes, file, start, need)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[start..].to_vec(),
    })
}

/// Parses an IDX1 unsigned-byte label file; every label must be below `classes`.
pub fn parse_idx_labels(bytes: &[u8], file: &str, classes: usize) -> Result<Vec<u8>, BenchError> {
    let (dims, start) = header(bytes, file, 1)?;
    check_len(bytes, file, start, dims[0])?;
    let labels = &bytes[start..];
    if let Some(i) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(idx_err(
            file,
            start + i,
            format!("label {} out of range 0..{classes}", labels[i]),
        ));
    }
    Ok(labels.to_vec())
}

/// Reads `dir/stem` or `dir/stem.gz` (the plain file wins if both exist), gunzipping if
/// the content starts with the gzip magic. Returns the file's path and its bytes.
/// Neither present: [`BenchError::DataMissing`] naming the plain path.
pub fn read_idx_file(dir: &Path, stem: &str) -> Result<(PathBuf, Vec<u8>), BenchError> {
    let plain = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    let path = if plain.is_file() {
        plain
    } else if gz.is_file() {
        gz
    } else {
        return Err(BenchError::DataMissing { path: plain });
    };
    let raw = std::fs::read(&path).map_err(|e| BenchError::io(&path, e))?;
    if super::gunzip::is_gzip(&raw) {
        let out = super::gunzip::gunzip_idx(&raw, &path.display().to_string())?;
        Ok((path, out))
    } else {
        Ok((path, raw))
    }
}

/// Loads one images/labels pair and checks the counts agree. Inputs are `rows*cols x N`
/// with pixel / 255 (in [0, 1]); at most `max` samples are kept (the first ones).
pub fn load_idx_pair<T: Real>(
    dir: &Path,
    images_stem: &str,
    labels_stem: &str,
    max: Option<usize>,
) -> Result<Dataset<T>, BenchError> {
    let (ipath, ibytes) = read_idx_file(dir, images_stem)?;
    let (lpath, lbytes) = read_idx_file(dir, labels_stem)?;
    let iname = ipath.display().to_string();
    let lname = lpath.display().to_string();
    let images = parse_idx_images(&ibytes, &iname)?;
    let labels = parse_idx_labels(&lbytes, &lname, IDX_CLASSES)?;
    if images.count != labels.len() {
        return Err(BenchError::Inconsistent {
            first: iname,
            second: lname,
            message: format!("{} images but {} labels", images.count, labels.len()),
        });
    }
    let n = max.map_or(images.count, |m| m.min(images.count));
    if n == 0 {
        return Err(idx_err(&iname, 4, "no images"));
    }
    let d = images.rows * images.cols;
    let x = DMatrix::from_iterator(
        d,
        n,
        images.pixels[..d * n]
            .iter()
            .map(|&p| T::of(f64::from(p) / 255.0)),
    );
    let targets = Targets::Labels {
        labels: labels[..n].iter().map(|&l| l as usize).collect(),
        classes: IDX_CLASSES,
    };
    Ok(Dataset::new(x, targets)?)
}

/// Loads MNIST or Fashion-MNIST (same layout) from `dir`: the 60,000 training and
/// 10,000 test images (or the first `max_train` / `max_test`), 784 x N inputs scaled to
/// [0, 1] (no standardisation), labels 0..9.
pub fn load_mnist_dir<T: Real>(
    dir: &Path,
    max_train: Option<usize>,
    max_test: Option<usize>,
) -> Result<(Dataset<T>, Dataset<T>), BenchError> {
    if !dir.is_dir() {
        return Err(BenchError::DataMissing {
            path: dir.to_path_buf(),
        });
    }
    let train = load_idx_pair(
        dir,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        max_train,
    )?;
    let test = load_idx_pair(
        dir,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        max_test,
    )?;
    if train.input_dim() != test.input_dim() {
        return Err(BenchError::Inconsistent {
            first: dir.join("train-images-idx3-ubyte").display().to_string(),
            second: dir.join("t10k-images-idx3-ubyte").display().to_string(),
            message: format!(
                "images of {} vs {} pixels",
                train.input_dim(),
                test.input_dim()
            ),
        });
    }
    Ok((train, test))
}

/// The Fashion-MNIST directory to read: `explicit` (the `--fashion-mnist-dir` flag or
/// [`FASHION_MNIST_DIR_ENV`]) when given, else `package_dir` (normally
/// [`FASHION_MNIST_PACKAGE_DIR`]; a parameter so tests can point it at a temporary copy
/// of the package's layout).
///
/// An explicit directory is returned as is (a missing one is reported by the loader as
/// [`BenchError::DataMissing`]). Without one, a `package_dir` that does not exist gives
/// [`BenchError::PackageMissing`], whose message holds the `apt-get install` command;
/// the runner reports that problem as `skipped`. Files inside an existing directory are
/// then checked by [`load_mnist_dir`], whose errors name the file.
pub fn resolve_fashion_mnist_dir(
    explicit: Option<&Path>,
    package_dir: &Path,
) -> Result<PathBuf, BenchError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if package_dir.is_dir() {
        Ok(package_dir.to_path_buf())
    } else {
        Err(BenchError::PackageMissing {
            path: package_dir.to_path_buf(),
            package: FASHION_MNIST_PACKAGE.to_string(),
            env: FASHION_MNIST_DIR_ENV.to_string(),
        })
    }
}

/// Encodes images as an IDX3 file (for tests and fixtures).
pub fn encode_idx_images(images: &IdxImages) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, 3];
    for d in [images.count, images.rows, images.cols] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Encodes labels as an IDX1 file (for tests and fixtures).
pub fn encode_idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}
