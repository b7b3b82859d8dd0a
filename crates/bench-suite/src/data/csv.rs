//! Numeric CSV files: a labelled table (features plus one class-label column) and a plain
//! numeric matrix.
//!
//! Format accepted: one record per line, fields separated by a single delimiter
//! character (default `,`), surrounding spaces around a field ignored, no quoting.
//! Lines that are empty or only whitespace are skipped (their line numbers still count in
//! error messages). A header line is optional: it is either declared present/absent or
//! detected (the first non-empty line is a header iff one of its fields is not a number).

use std::path::Path;

use autodiff::Real;
use nalgebra::DMatrix;

use crate::BenchError;

/// Largest number of classes: the cap of an inferred class count, and of a stated one
/// (`CsvOptions::classes`, checked before anything of that size is allocated).
pub const MAX_INFERRED_CLASSES: usize = 65_536;

/// Which column of a labelled CSV holds the class label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first field of each record.
    First,
    /// The last field of each record (the digits layout).
    Last,
    /// The field with this 0-based index.
    Index(usize),
}

/// How to read a labelled numeric CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// Which field is the label.
    pub label_column: LabelColumn,
    /// `Some(true)`: the first non-empty line is a header; `Some(false)`: no header;
    /// `None`: detect it (a header iff one of its fields does not parse as a number).
    pub header: Option<bool>,
    /// Field separator.
    pub delimiter: char,
    /// Number of classes K, if known: labels must then lie in `0..K`. If `None`, K is
    /// one more than the largest label (labels must be below [`MAX_INFERRED_CLASSES`]).
    pub classes: Option<usize>,
}

impl Default for CsvOptions {
    /// Label in the last column, header detected, comma-separated, classes inferred.
    fn default() -> Self {
        Self {
            label_column: LabelColumn::Last,
            header: None,
            delimiter: ',',
            classes: None,
        }
    }
}

/// A labelled numeric table: N records of d features and one class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledTable {
    /// Features, record after record (`rows * features` values). Read as a column-major
    /// `d x N` matrix this is exactly the workspace layout (samples as columns).
    pub features: Vec<f64>,
    /// One label per record, in `0..classes`.
    pub labels: Vec<usize>,
    /// Number of features d per record (the label column excluded).
    pub num_features: usize,
    /// Number of classes K.
    pub classes: usize,
    /// Header fields (label column included), if the file had a header.
    pub header: Option<Vec<String>>,
}

impl LabeledTable {
    /// Number of records N.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the table has no records.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Checks the invariants a parsed table has and a table built by hand (the fields
    /// are public) may not: `features` holds `num_features x len()` values and every
    /// label lies in `0..classes`, with `classes <= MAX_INFERRED_CLASSES`. An
    /// [`BenchError::InvalidArgument`] naming the field otherwise.
    pub fn validate(&self) -> Result<(), BenchError> {
        let need = self.num_features.checked_mul(self.len());
        if need != Some(self.features.len()) {
            return Err(BenchError::arg(
                "features",
                format!(
                    "has {} values, {} features x {} records need {}",
                    self.features.len(),
                    self.num_features,
                    self.len(),
                    need.map_or("more than usize::MAX".into(), |n| n.to_string())
                ),
            ));
        }
        if self.classes > MAX_INFERRED_CLASSES {
            return Err(BenchError::arg(
                "classes",
                format!("{} is more than {MAX_INFERRED_CLASSES}", self.classes),
            ));
        }
        if let Some((i, l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l >= self.classes)
        {
            return Err(BenchError::arg(
                "labels",
                format!(
                    "label {l} of record {i} is not below {} classes",
                    self.classes
                ),
            ));
        }
        Ok(())
    }

    /// The features as a `d x N` matrix (samples as columns), rounded to `T`. Errors as
    /// [`LabeledTable::validate`].
    pub fn inputs<T: Real>(&self) -> Result<DMatrix<T>, BenchError> {
        self.validate()?;
        Ok(DMatrix::from_iterator(
            self.num_features,
            self.len(),
            self.features.iter().map(|&v| T::of(v)),
        ))
    }

    /// The class count of each label `0..classes`. Errors as [`LabeledTable::validate`].
    pub fn class_counts(&self) -> Result<Vec<usize>, BenchError> {
        self.validate()?;
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            counts[l] += 1;
        }
        Ok(counts)
    }
}

/// A numeric matrix read from CSV: `rows x cols`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericTable {
    /// Values, row after row.
    pub values: Vec<f64>,
    /// Number of records (lines with data).
    pub rows: usize,
    /// Number of fields per record.
    pub cols: usize,
    /// Header fields, if the file had a header.
    pub header: Option<Vec<String>>,
}

impl NumericTable {
    /// The table as a `rows x cols` matrix (the CSV's own orientation), rounded to `T`.
    /// Errors ([`BenchError::Csv`], naming the record and field) if a value is finite in
    /// f64 but overflows `T` (e.g. 1e39 in f32), instead of silently becoming infinite;
    /// an [`BenchError::InvalidArgument`] if `values` does not hold `rows x cols` values
    /// (a table built by hand: the fields are public).
    pub fn to_matrix<T: Real>(&self) -> Result<DMatrix<T>, BenchError> {
        let need = self.rows.checked_mul(self.cols);
        if need != Some(self.values.len()) {
            return Err(BenchError::arg(
                "values",
                format!(
                    "has {} values, {} rows x {} columns need {}",
                    self.values.len(),
                    self.rows,
                    self.cols,
                    need.map_or("more than usize::MAX".into(), |n| n.to_string())
                ),
            ));
        }
        if let Some(i) = self.values.iter().position(|&v| !T::of(v).finite()) {
            let (r, c) = (i / self.cols.max(1), i % self.cols.max(1));
            return Err(BenchError::Csv {
                file: "<numeric table>".into(),
                line: r + 1,
                column: c + 1,
                message: format!(
                    "value {} (record {}) overflows the {}-byte floating-point type",
                    self.values[i],
                    r + 1,
                    std::mem::size_of::<T>()
                ),
            });
        }
        Ok(DMatrix::from_row_iterator(
            self.rows,
            self.cols,
            self.values.iter().map(|&v| T::of(v)),
        ))
    }
}

/// One non-empty line split into trimmed fields, with its 1-based line number.
struct Record<'a> {
    line: usize,
    fields: Vec<&'a str>,
}

fn records(text: &str, delimiter: char) -> impl Iterator<Item = Record<'_>> {
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            None
        } else {
            Some(Record {
                line: i + 1,
                fields: trimmed.split(delimiter).map(str::trim).collect(),
            })
        }
    })
}

fn is_header(fields: &[&str]) -> bool {
    fields.iter().any(|f| f.parse::<f64>().is_err())
}

fn csv_err(file: &str, line: usize, column: usize, message: impl Into<String>) -> BenchError {
    BenchError::Csv {
        file: file.to_string(),
        line,
        column,
        message: message.into(),
    }
}

/// Parses one cell as a finite number.
fn number(file: &str, line: usize, column: usize, cell: &str) -> Result<f64, BenchError> {
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(csv_err(
            file,
            line,
            column,
            format!("non-finite value `{v}`"),
        )),
        Err(_) => Err(csv_err(
            file,
            line,
            column,
            format!("non-numeric cell `{cell}`"),
        )),
    }
}

/// Splits off the header (declared or detected) and checks the remaining records are
/// rectangular. Returns (header, records, columns).
fn split_header<'a>(
    text: &'a str,
    file: &str,
    header: Option<bool>,
    delimiter: char,
) -> Result<(Option<Vec<String>>, Vec<Record<'a>>), BenchError> {
    let mut recs: Vec<Record<'a>> = records(text, delimiter).collect();
    let has_header = match (header, recs.first()) {
        (_, None) => false,
        (Some(h), Some(_)) => h,
        (None, Some(first)) => is_header(&first.fields),
    };
    let header = if has_header {
        let first = recs.remove(0);
        Some(first.fields.iter().map(|s| s.to_string()).collect())
    } else {
        None
    };
    if recs.is_empty() {
        return Err(csv_err(file, 1, 0, "no data records"));
    }
    let width = header
        .as_ref()
        .map_or(recs[0].fields.len(), |h: &Vec<String>| h.len());
    for r in &recs {
        if r.fields.len() != width {
            return Err(csv_err(
                file,
                r.line,
                0,
                format!(
                    "ragged row: {} fields where {} were expected",
                    r.fields.len(),
                    width
                ),
            ));
        }
    }
    Ok((header, recs))
}

/// Parses a labelled numeric CSV held in memory. `file` names it in error messages.
///
/// Errors ([`BenchError::Csv`], with 1-based line and column): no data records, ragged
/// rows, a non-numeric or non-finite cell, a label that is not a nonnegative integer or
/// is out of range, a label column beyond the row width.
pub fn parse_labeled_csv(
    text: &str,
    file: &str,
    opts: &CsvOptions,
) -> Result<LabeledTable, BenchError> {
    let (header, recs) = split_header(text, file, opts.header, opts.delimiter)?;
    let width = recs[0].fields.len();
    let label_idx = match opts.label_column {
        LabelColumn::First => 0,
        LabelColumn::Last => width - 1,
        LabelColumn::Index(i) => i,
    };
    if label_idx >= width {
        return Err(csv_err(
            file,
            recs[0].line,
            label_idx + 1,
            format!(
                "label column {} is beyond the {width} fields of a row",
                label_idx + 1
            ),
        ));
    }
    if width < 2 {
        return Err(csv_err(
            file,
            recs[0].line,
            0,
            "a labelled row needs at least one feature and the label",
        ));
    }
    if let Some(k) = opts.classes
        && !(1..=MAX_INFERRED_CLASSES).contains(&k)
    {
        return Err(BenchError::arg(
            "classes",
            format!("{k} must be between 1 and {MAX_INFERRED_CLASSES}"),
        ));
    }
    let label_limit = opts.classes.unwrap_or(MAX_INFERRED_CLASSES);
    let mut features = Vec::with_capacity(recs.len() * (width - 1));
    let mut labels = Vec::with_capacity(recs.len());
    for r in &recs {
        for (j, cell) in r.fields.iter().enumerate() {
            let v = number(file, r.line, j + 1, cell)?;
            if j == label_idx {
                if v < 0.0 || v.fract() != 0.0 || v >= label_limit as f64 {
                    return Err(csv_err(
                        file,
                        r.line,
                        j + 1,
                        format!(
                            "label `{cell}` out of range: labels must be integers in 0..{label_limit}"
                        ),
                    ));
                }
                labels.push(v as usize);
            } else {
                features.push(v);
            }
        }
    }
    let classes = opts
        .classes
        .unwrap_or_else(|| labels.iter().max().map_or(0, |m| m + 1));
    Ok(LabeledTable {
        features,
        labels,
        num_features: width - 1,
        classes,
        header,
    })
}

/// Parses a numeric CSV matrix (every cell a finite number) held in memory.
pub fn parse_numeric_csv(
    text: &str,
    file: &str,
    header: Option<bool>,
    delimiter: char,
) -> Result<NumericTable, BenchError> {
    let (header, recs) = split_header(text, file, header, delimiter)?;
    let cols = recs[0].fields.len();
    let mut values = Vec::with_capacity(recs.len() * cols);
    for r in &recs {
        for (j, cell) in r.fields.iter().enumerate() {
            values.push(number(file, r.line, j + 1, cell)?);
        }
    }
    Ok(NumericTable {
        values,
        rows: recs.len(),
        cols,
        header,
    })
}

/// Reads a whole text file; a missing file is [`BenchError::DataMissing`], and anything
/// but a regular file (a device or FIFO such as `/dev/zero`, whose read never ends) an
/// [`BenchError::Io`] error.
pub(crate) fn read_text(path: &Path) -> Result<String, BenchError> {
    match nets::persist::read_regular_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BenchError::DataMissing {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(BenchError::io(path, e)),
    }
}

/// Reads and parses a labelled numeric CSV file (see [`parse_labeled_csv`]).
pub fn read_labeled_csv(path: &Path, opts: &CsvOptions) -> Result<LabeledTable, BenchError> {
    let text = read_text(path)?;
    parse_labeled_csv(&text, &path.display().to_string(), opts)
}

/// Reads and parses a numeric CSV matrix file (see [`parse_numeric_csv`]).
pub fn read_numeric_csv(
    path: &Path,
    header: Option<bool>,
    delimiter: char,
) -> Result<NumericTable, BenchError> {
    let text = read_text(path)?;
    parse_numeric_csv(&text, &path.display().to_string(), header, delimiter)
}
