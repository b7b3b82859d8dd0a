//! Saving and loading models (architecture + weights) as versioned JSON.
//!
//! # Format, version 1
//!
//! One JSON object:
//!
//! ```json
//! {
//!   "format": "strata-nets-model",
//!   "version": 1,
//!   "dtype": "f64",
//!   "layers": [
//!     { "type": "dense", "in": 2, "out": 3,
//!       "weight": [w00, w10, w20, w01, w11, w21],
//!       "bias": [b0, b1, b2] },
//!     { "type": "activation", "activation": "Relu" },
//!     { "type": "activation", "activation": { "LeakyRelu": { "slope": 0.01 } } },
//!     { "type": "dense", "in": 3, "out": 1, "weight": [...], "bias": [...] }
//!   ]
//! }
//! ```
//!
//! * `format` is the literal `"strata-nets-model"`; `version` the integer format version
//!   (this build reads and writes 1); `dtype` is `"f32"` or `"f64"`, the scalar type of the
//!   network that wrote the file; loading into the other type is an error.
//! * `layers` in network order. A dense layer stores its widths `in` = d_in and
//!   `out` = d_out, its weight `out x in` **column-major** (`out * in` numbers) and its bias
//!   (`out` numbers). An activation layer stores the [`Activation`] in serde's externally
//!   tagged form (`"Identity"`, `"Relu"`, `"Sigmoid"`, `"Tanh"`, `"Softplus"`,
//!   `{"LeakyRelu": {"slope": s}}`, `{"Elu": {"alpha": a}}`).
//! * Numbers are the values widened to f64 (exact for f32) and written by serde_json
//!   in shortest round-trip form; with the `float_roundtrip` parser they read back
//!   bit-exactly, and narrowing to f32 is exact. Non-finite values cannot be saved.
//! * User-defined layers cannot be saved (an error names the layer).
//! * A model holds at least one dense layer: `"layers": []` (or activations only) is
//!   refused on load, and such a network cannot be saved.
//!
//! Loading checks, in order: JSON syntax (a truncated file is reported as such), the
//! `format` tag, the version, the dtype, then per layer the widths against the value
//! counts, the chain (`in` of each dense layer = `out` of the previous one), the
//! finiteness of every value (also after narrowing to f32) and the activation
//! parameters. Every failure is a [`NetsError::ModelFile`] naming the file (or
//! `<string>`) and the problem. File writes are atomic: the JSON goes to a temporary
//! file in the same directory, is flushed to disk, then moved into place (a hard link
//! when `overwrite` is false, so an existing file is never replaced; a rename otherwise).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::activation::Activation;
use crate::dense::Dense;
use crate::error::{ModelFileError, NetsError, Result};
use crate::sequential::Sequential;

/// The `format` tag of model files.
pub const FORMAT_TAG: &str = "strata-nets-model";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    format: String,
    version: u64,
    dtype: String,
    layers: Vec<LayerV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum LayerV1 {
    Dense {
        #[serde(rename = "in")]
        d_in: usize,
        #[serde(rename = "out")]
        d_out: usize,
        weight: Vec<f64>,
        bias: Vec<f64>,
    },
    Activation {
        activation: Activation,
    },
}

fn model_err(path: Option<&Path>, problem: ModelFileError) -> NetsError {
    NetsError::ModelFile {
        path: path.map(Path::to_path_buf),
        problem,
    }
}

fn encode<T: Real>(net: &Sequential<T>, path: Option<&Path>) -> Result<String> {
    let mut layers = Vec::with_capacity(net.len());
    for (i, l) in net.layers().iter().enumerate() {
        if let Some(d) = l.as_dense() {
            if d.bias.len() != d.weight.nrows() {
                return Err(model_err(
                    path,
                    ModelFileError::Shape {
                        layer: i,
                        detail: format!(
                            "weight is {}x{} but bias has length {}",
                            d.weight.nrows(),
                            d.weight.ncols(),
                            d.bias.len()
                        ),
                    },
                ));
            }
            let widen = |v: &[T], param: &'static str| -> Result<Vec<f64>> {
                v.iter()
                    .enumerate()
                    .map(|(index, x)| {
                        if x.finite() {
                            Ok(x.to_f64())
                        } else {
                            Err(model_err(
                                path,
                                ModelFileError::NonFinite {
                                    layer: i,
                                    param,
                                    index,
                                },
                            ))
                        }
                    })
                    .collect()
            };
            layers.push(LayerV1::Dense {
                d_in: d.input_dim(),
                d_out: d.output_dim(),
                weight: widen(d.weight.as_slice(), "weight")?,
                bias: widen(d.bias.as_slice(), "bias")?,
            });
        } else if let Some(h) = l.as_activation() {
            h.validate().map_err(|e| {
                model_err(
                    path,
                    ModelFileError::Activation {
                        layer: i,
                        detail: e.to_string(),
                    },
                )
            })?;
            layers.push(LayerV1::Activation { activation: h });
        } else {
            return Err(model_err(
                path,
                ModelFileError::UnsupportedLayer {
                    layer: i,
                    kind: l.kind().to_string(),
                },
            ));
        }
    }
    if !net.layers().iter().any(|l| l.as_dense().is_some()) {
        return Err(model_err(path, ModelFileError::Format(NO_DENSE.into())));
    }
    let file = FileV1 {
        format: FORMAT_TAG.into(),
        version: FORMAT_VERSION,
        dtype: T::dtype_name().into(),
        layers,
    };
    serde_json::to_string_pretty(&file)
        .map_err(|e| model_err(path, ModelFileError::Format(e.to_string())))
}

fn decode<T: Real>(text: &str, path: Option<&Path>) -> Result<Sequential<T>> {
    let err = |p: ModelFileError| model_err(path, p);
    let value: Value = serde_json::from_str(text).map_err(|e| {
        err(if e.is_eof() {
            ModelFileError::Truncated {
                line: e.line(),
                column: e.column(),
            }
        } else {
            ModelFileError::Syntax(e.to_string())
        })
    })?;
    let obj = value.as_object().ok_or_else(|| {
        err(ModelFileError::Format(
            "top level is not a JSON object".into(),
        ))
    })?;
    match obj.get("format").and_then(Value::as_str) {
        Some(FORMAT_TAG) => {}
        Some(other) => {
            return Err(err(ModelFileError::Format(format!(
                "format tag is {other:?}, expected {FORMAT_TAG:?}"
            ))));
        }
        None => {
            return Err(err(ModelFileError::Format(
                "missing string field \"format\"".into(),
            )));
        }
    }
    let version = obj.get("version").and_then(Value::as_u64).ok_or_else(|| {
        err(ModelFileError::Format(
            "missing or non-integer field \"version\"".into(),
        ))
    })?;
    if version != FORMAT_VERSION {
        return Err(err(ModelFileError::Version {
            found: version,
            supported: FORMAT_VERSION,
        }));
    }
    let dtype = obj.get("dtype").and_then(Value::as_str).ok_or_else(|| {
        err(ModelFileError::Format(
            "missing string field \"dtype\"".into(),
        ))
    })?;
    if dtype != T::dtype_name() {
        return Err(err(ModelFileError::Dtype {
            found: dtype.to_string(),
            expected: T::dtype_name(),
        }));
    }
    let file: FileV1 =
        serde_json::from_value(value).map_err(|e| err(ModelFileError::Format(e.to_string())))?;
    let mut net = Sequential::new();
    let mut width: Option<(usize, usize)> = None; // (layer index, output width) of the last dense layer
    for (i, layer) in file.layers.into_iter().enumerate() {
        match layer {
            LayerV1::Dense {
                d_in,
                d_out,
                weight,
                bias,
            } => {
                let shape = |detail: String| err(ModelFileError::Shape { layer: i, detail });
                if d_in == 0 || d_out == 0 {
                    return Err(shape(format!(
                        "dense widths must be positive, found in = {d_in}, out = {d_out}"
                    )));
                }
                let n_w = d_in
                    .checked_mul(d_out)
                    .ok_or_else(|| shape("in * out overflows".into()))?;
                if weight.len() != n_w {
                    return Err(shape(format!(
                        "weight has {} values but in x out = {d_in} x {d_out} needs {n_w}",
                        weight.len()
                    )));
                }
                if bias.len() != d_out {
                    return Err(shape(format!(
                        "bias has {} values but out = {d_out}",
                        bias.len()
                    )));
                }
                if let Some((j, prev)) = width
                    && prev != d_in
                {
                    return Err(shape(format!(
                        "takes in = {d_in} inputs but dense layer {j} outputs {prev}"
                    )));
                }
                let narrow = |v: &[f64], param: &'static str| -> Result<Vec<T>> {
                    v.iter()
                        .enumerate()
                        .map(|(index, &x)| {
                            let t = T::of(x);
                            if x.is_finite() && t.finite() {
                                Ok(t)
                            } else {
                                Err(err(ModelFileError::NonFinite {
                                    layer: i,
                                    param,
                                    index,
                                }))
                            }
                        })
                        .collect()
                };
                let w = DMatrix::from_vec(d_out, d_in, narrow(&weight, "weight")?);
                let b = DVector::from_vec(narrow(&bias, "bias")?);
                net.push(Box::new(Dense::new(w, b)?))?;
                width = Some((i, d_out));
            }
            LayerV1::Activation { activation } => {
                activation.validate().map_err(|e| {
                    err(ModelFileError::Activation {
                        layer: i,
                        detail: e.to_string(),
                    })
                })?;
                net.push(Box::new(activation))?;
            }
        }
    }
    if width.is_none() {
        return Err(err(ModelFileError::Format(NO_DENSE.into())));
    }
    Ok(net)
}

/// Why a model without a dense layer (e.g. `"layers": []`) is refused, on save and on
/// load: it has no parameters and no input width, so it is not a model anyone trained;
/// an empty network loaded silently would map any input to itself.
const NO_DENSE: &str = "the model has no dense layer (at least one is required)";

/// The model as a JSON string (format of the module doc).
pub fn to_json_string<T: Real>(net: &Sequential<T>) -> Result<String> {
    encode(net, None)
}

/// A model from a JSON string (format of the module doc), checked as described there.
pub fn from_json_str<T: Real>(text: &str) -> Result<Sequential<T>> {
    decode(text, None)
}

/// The model as a JSON value (for embedding in checkpoints); same format as the file.
pub fn to_json_value<T: Real>(net: &Sequential<T>) -> Result<Value> {
    let text = encode(net, None)?;
    serde_json::from_str(&text).map_err(|e| model_err(None, ModelFileError::Format(e.to_string())))
}

/// A model from a JSON value written by [`to_json_value`], with the same checks as files.
pub fn from_json_value<T: Real>(value: &Value) -> Result<Sequential<T>> {
    decode(&value.to_string(), None)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(op: &'static str, path: &Path, e: std::io::Error) -> NetsError {
    NetsError::Io {
        op,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes `text` to `path` atomically (temp file in the same directory, fsync, then
/// hard link or rename). Never replaces an existing file unless `overwrite`.
pub fn write_atomic(path: &Path, text: &str, overwrite: bool) -> Result<()> {
    write_atomic_bytes(path, text.as_bytes(), overwrite)
}

/// [`write_atomic`] for bytes: the workspace's one atomic write (models, checkpoints,
/// results, plots, `strata-nmf`'s factors). The temporary name
/// `.<name>.tmp-<pid>-<k>` is created exclusively (`create_new`), so it never replaces
/// a file of the user's, and is flushed (`sync_all`) before the link or rename.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    if !overwrite && path.exists() {
        return Err(NetsError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // Errors name the user's `path`: the temporary name is an implementation detail (a
    // missing directory used to be reported as a missing `.name.tmp-<pid>-<n>`).
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err("create", path, e))?;
        f.write_all(bytes).map_err(|e| io_err("write", path, e))?;
        f.sync_all().map_err(|e| io_err("sync", path, e))?;
        drop(f);
        if overwrite {
            fs::rename(&tmp, path).map_err(|e| io_err("rename", path, e))
        } else {
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(NetsError::AlreadyExists {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => Err(io_err("link", path, e)),
            }
        }
    })();
    // The temporary name is gone after a rename; after a link (or a failure) remove it.
    let _ = fs::remove_file(&tmp);
    result
}

/// Saves the model to `path` (atomic write; refuses to replace an existing file unless
/// `overwrite`).
pub fn save<T: Real>(net: &Sequential<T>, path: impl AsRef<Path>, overwrite: bool) -> Result<()> {
    let path = path.as_ref();
    let text = encode(net, Some(path))?;
    write_atomic(path, &text, overwrite)
}

/// Loads a model saved by [`save`] into scalar type `T` (the file's dtype must match).
/// `path` must be a regular file: a device or FIFO (`/dev/zero`, `/dev/stdin`) is an
/// [`NetsError::Io`] error, not an unbounded read that ends in a failed allocation.
pub fn load<T: Real>(path: impl AsRef<Path>) -> Result<Sequential<T>> {
    let path = path.as_ref();
    let text = read_regular_to_string(path).map_err(|e| io_err("read", path, e))?;
    decode(&text, Some(path))
}

/// Reads the whole of `path`, refusing anything but a regular file: a device or FIFO
/// (`/dev/zero`, `/dev/stdin`) would be read without end, or block, until memory runs
/// out. The refusal is an [`std::io::Error`] saying "not a regular file"; other errors
/// (`NotFound` included) are the OS's, so callers can tell a missing file apart. The
/// workspace's one such check (models, checkpoints, CSV data, `strata-nmf`'s inputs).
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    check_regular(path)?;
    fs::read(path)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_to_string(path: &Path) -> std::io::Result<String> {
    check_regular(path)?;
    fs::read_to_string(path)
}

/// Errors if `path` exists and is not a regular file (checked before opening: opening a
/// FIFO for reading blocks until a writer appears).
fn check_regular(path: &Path) -> std::io::Result<()> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(std::io::Error::other("not a regular file")),
        _ => Ok(()), // a missing or unreadable file is reported by the read itself
    }
}
