//! NumPy <-> nalgebra without intermediate copies.
//!
//! The crates own their data as column-major `DMatrix<T>`, so one copy into that
//! storage is unavoidable; this module makes it the only one. A float32 or float64
//! array, C- or Fortran-ordered, is read in place (borrowed through the buffer protocol,
//! no NumPy-side conversion) and copied once with `memcpy`-like slice copies when its
//! memory order already is the target's column-major order, or one transposing pass
//! otherwise; strided views are gathered element by element. Results go back to Python
//! without a copy: the `Vec` behind a `DMatrix` becomes the NumPy array's buffer.
//!
//! Two conventions: [`Orient::AsIs`] (the NumPy `r x c` array is the `r x c` matrix;
//! NMF's `X` is strata's `V`, F x N) and [`Orient::SamplesAsColumns`] (a NumPy
//! `n_samples x d` array is strata's `d x N` data matrix; a C-ordered `X` already has
//! exactly that memory layout).

use autodiff::Real;
use nalgebra::DMatrix;
use numpy::ndarray::{Array2, ShapeBuilder};
use numpy::{Element, IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// How a NumPy 2-D array maps to a strata matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orient {
    /// NumPy `(r, c)` is the `r x c` matrix.
    AsIs,
    /// NumPy `(n, d)` is the `d x n` matrix (samples as columns).
    SamplesAsColumns,
}

/// A matrix in the precision of the array it was read from.
#[derive(Debug, Clone)]
pub enum Mat {
    /// From a float32 array.
    F32(DMatrix<f32>),
    /// From a float64 array.
    F64(DMatrix<f64>),
}

impl Mat {
    /// `"float32"` or `"float64"`.
    pub fn dtype(&self) -> &'static str {
        match self {
            Mat::F32(_) => "float32",
            Mat::F64(_) => "float64",
        }
    }
}

/// Which read path an array takes: `"contiguous"` (one slice copy) or `"strided"`.
fn read_typed<T: Real + Element>(
    a: &PyReadonlyArray2<'_, T>,
    orient: Orient,
) -> (DMatrix<T>, &'static str) {
    let v = a.as_array();
    let (r, c) = v.dim();
    let (rows, cols) = match orient {
        Orient::AsIs => (r, c),
        Orient::SamplesAsColumns => (c, r),
    };
    // C order: row-major r x c == column-major c x r.
    if let Some(s) = v.as_slice() {
        let m = match orient {
            Orient::AsIs => DMatrix::from_row_slice(rows, cols, s),
            Orient::SamplesAsColumns => DMatrix::from_column_slice(rows, cols, s),
        };
        return (m, "contiguous");
    }
    // Fortran order: column-major r x c.
    if let Some(s) = v.t().as_slice() {
        let m = match orient {
            Orient::AsIs => DMatrix::from_column_slice(rows, cols, s),
            Orient::SamplesAsColumns => DMatrix::from_row_slice(rows, cols, s),
        };
        return (m, "contiguous");
    }
    let m = match orient {
        Orient::AsIs => DMatrix::from_fn(rows, cols, |i, j| v[[i, j]]),
        Orient::SamplesAsColumns => DMatrix::from_fn(rows, cols, |i, j| v[[j, i]]),
    };
    (m, "strided")
}

fn read_with_path(
    obj: &Bound<'_, PyAny>,
    name: &str,
    orient: Orient,
) -> PyResult<(Mat, &'static str)> {
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'_, f64>>() {
        let (m, p) = read_typed(&a, orient);
        return Ok((Mat::F64(m), p));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'_, f32>>() {
        let (m, p) = read_typed(&a, orient);
        return Ok((Mat::F32(m), p));
    }
    let what = match obj.getattr("dtype").and_then(|d| d.str()) {
        Ok(d) => {
            let ndim = obj
                .getattr("ndim")
                .map(|n| n.to_string())
                .unwrap_or_default();
            format!("a {ndim}-D array of dtype {d}")
        }
        Err(_) => format!(
            "an object of type {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ),
    };
    Err(PyTypeError::new_err(format!(
        "{name} must be a 2-D float32 or float64 NumPy array, got {what}"
    )))
}

/// Reads a 2-D float32/float64 array (any memory order) into a strata matrix.
/// Any other dtype or dimension is a `TypeError` naming the argument.
pub fn read(obj: &Bound<'_, PyAny>, name: &str, orient: Orient) -> PyResult<Mat> {
    read_with_path(obj, name, orient).map(|(m, _)| m)
}

/// Reads `obj` in precision `T` (a float32 array given where float64 is needed, or the
/// reverse, is converted entry by entry).
pub fn read_as<T: Real + Element>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    orient: Orient,
) -> PyResult<DMatrix<T>> {
    Ok(match read(obj, name, orient)? {
        Mat::F32(m) => m.map(|x| T::of(f64::from(x))),
        Mat::F64(m) => m.map(T::of),
    })
}

/// The NumPy array of a strata matrix, without copying its buffer: `AsIs` gives an
/// `r x c` Fortran-ordered array, `SamplesAsColumns` the `c x r` C-ordered array.
pub fn to_numpy<'py, T: Element>(
    py: Python<'py>,
    m: DMatrix<T>,
    orient: Orient,
) -> Bound<'py, PyArray2<T>> {
    let (r, c) = m.shape();
    let data: Vec<T> = m.data.into();
    let arr = match orient {
        Orient::AsIs => Array2::from_shape_vec((r, c).f(), data),
        Orient::SamplesAsColumns => Array2::from_shape_vec((c, r), data),
    };
    // The shapes are the matrix's own, so the lengths agree.
    arr.expect("matrix buffer length equals rows x cols")
        .into_pyarray(py)
}

/// `(dtype, path)` of how an array would be read: path `"contiguous"` (C or Fortran
/// order: one slice copy, no NumPy conversion) or `"strided"` (gathered element by
/// element). For tests and curious users.
#[pyfunction]
#[pyo3(signature = (x, samples_as_columns = true))]
pub fn read_path(x: &Bound<'_, PyAny>, samples_as_columns: bool) -> PyResult<(String, String)> {
    let orient = if samples_as_columns {
        Orient::SamplesAsColumns
    } else {
        Orient::AsIs
    };
    let (m, path) = read_with_path(x, "x", orient)?;
    Ok((m.dtype().to_string(), path.to_string()))
}
