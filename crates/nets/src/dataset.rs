//! A supervised data set in the workspace layout (samples as columns).

use autodiff::Real;
use nalgebra::DMatrix;

/// Errors raised when a data set is assembled from inconsistent parts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatasetError {
    /// The inputs and the targets do not hold the same number of samples.
    #[error("data set has {inputs} input columns but {targets} targets")]
    SampleCountMismatch {
        /// Number of input columns (samples).
        inputs: usize,
        /// Number of targets.
        targets: usize,
    },
    /// A class label is not below the number of classes.
    #[error("label {label} at sample {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Offending label.
        label: usize,
        /// Sample index.
        index: usize,
        /// Number of classes.
        classes: usize,
    },
    /// An input or target entry is NaN or infinite.
    #[error("non-finite value in {what} at row {row}, column {col}")]
    NonFinite {
        /// `"inputs"` or `"targets"`.
        what: &'static str,
        /// Row of the entry.
        row: usize,
        /// Column (sample) of the entry.
        col: usize,
    },
    /// The data set has no samples.
    #[error("data set is empty")]
    Empty,
    /// A sample index given to a batch selection is out of range.
    #[error("sample index {index} is out of range for {len} samples")]
    IndexOutOfRange {
        /// Offending index.
        index: usize,
        /// Number of samples.
        len: usize,
    },
}

fn check_indices(idx: &[usize], len: usize) -> Result<(), DatasetError> {
    match idx.iter().find(|&&i| i >= len) {
        Some(&index) => Err(DatasetError::IndexOutOfRange { index, len }),
        None => Ok(()),
    }
}

/// `out` = the columns `idx` of `m` (resized when its shape differs).
fn select_columns_into<T: Real>(m: &DMatrix<T>, idx: &[usize], out: &mut DMatrix<T>) {
    if out.shape() != (m.nrows(), idx.len()) {
        *out = DMatrix::zeros(m.nrows(), idx.len());
    }
    for (j, &i) in idx.iter().enumerate() {
        out.column_mut(j).copy_from(&m.column(i));
    }
}

/// Training targets, one per sample (column).
#[derive(Debug, Clone, PartialEq)]
pub enum Targets<T: Real> {
    /// Class labels in `0..classes`.
    Labels {
        /// One label per sample.
        labels: Vec<usize>,
        /// Number of classes K.
        classes: usize,
    },
    /// Real-valued targets, `d_L x N` (regression, autoencoders, soft labels).
    Dense(DMatrix<T>),
}

impl<T: Real> Targets<T> {
    /// Number of samples the targets describe.
    pub fn len(&self) -> usize {
        match self {
            Targets::Labels { labels, .. } => labels.len(),
            Targets::Dense(m) => m.ncols(),
        }
    }

    /// Whether there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of samples `idx` (in that order, repeats allowed) into `out`,
    /// reusing its buffers: no allocation when `out` already has the same kind and size.
    pub fn select_into(&self, idx: &[usize], out: &mut Targets<T>) -> Result<(), DatasetError> {
        check_indices(idx, self.len())?;
        match self {
            Targets::Labels { labels, classes } => {
                if !matches!(out, Targets::Labels { .. }) {
                    *out = Targets::Labels {
                        labels: Vec::with_capacity(idx.len()),
                        classes: *classes,
                    };
                }
                if let Targets::Labels {
                    labels: o,
                    classes: c,
                } = out
                {
                    o.clear();
                    o.extend(idx.iter().map(|&i| labels[i]));
                    *c = *classes;
                }
            }
            Targets::Dense(m) => {
                if !matches!(out, Targets::Dense(_)) {
                    *out = Targets::Dense(DMatrix::zeros(0, 0));
                }
                if let Targets::Dense(o) = out {
                    select_columns_into(m, idx, o);
                }
            }
        }
        Ok(())
    }

    /// The targets of samples `idx` (allocating form of [`Targets::select_into`]).
    pub fn select(&self, idx: &[usize]) -> Result<Targets<T>, DatasetError> {
        let mut out = match self {
            Targets::Labels { classes, .. } => Targets::Labels {
                labels: Vec::new(),
                classes: *classes,
            },
            Targets::Dense(_) => Targets::Dense(DMatrix::zeros(0, 0)),
        };
        self.select_into(idx, &mut out)?;
        Ok(out)
    }
}

/// A supervised data set: inputs `X` (`d_0 x N`, samples as columns) and their targets.
/// Immutable once built; equality compares the inputs and targets (not [`Dataset::id`]).
#[derive(Debug, Clone)]
pub struct Dataset<T: Real> {
    inputs: DMatrix<T>,
    targets: Targets<T>,
    id: u64,
}

impl<T: Real> PartialEq for Dataset<T> {
    fn eq(&self, other: &Self) -> bool {
        self.inputs == other.inputs && self.targets == other.targets
    }
}

/// The source of [`Dataset::id`]: one number per data set built in this process.
static NEXT_DATASET_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl<T: Real> Dataset<T> {
    /// Builds a data set, checking that counts agree, labels are in range and every
    /// value is finite.
    pub fn new(inputs: DMatrix<T>, targets: Targets<T>) -> Result<Self, DatasetError> {
        if inputs.ncols() == 0 {
            return Err(DatasetError::Empty);
        }
        if inputs.ncols() != targets.len() {
            return Err(DatasetError::SampleCountMismatch {
                inputs: inputs.ncols(),
                targets: targets.len(),
            });
        }
        check_finite(&inputs, "inputs")?;
        match &targets {
            Targets::Labels { labels, classes } => {
                if let Some((index, &label)) =
                    labels.iter().enumerate().find(|(_, l)| **l >= *classes)
                {
                    return Err(DatasetError::LabelOutOfRange {
                        label,
                        index,
                        classes: *classes,
                    });
                }
            }
            Targets::Dense(m) => check_finite(m, "targets")?,
        }
        let id = NEXT_DATASET_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self {
            inputs,
            targets,
            id,
        })
    }

    /// A number that identifies this data set's contents for caches: every data set built
    /// by [`Dataset::new`] (or [`Dataset::subset`]) gets a new one, a clone keeps it, and
    /// a data set never changes after it is built, so two data sets with the same id hold
    /// the same inputs and targets (the converse need not hold). Unlike an address, it
    /// is not reused when a data set is dropped and another built in its place. Solvers
    /// key the quantities they derive from the data (`X X^T`, factorizations, a kept
    /// forward trace) by it; it never enters a result.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The inputs and the targets, moved out (the inverse of [`Dataset::new`]; no copy:
    /// a caller can refill the buffers and build the next data set in them, which then
    /// gets a new [`Dataset::id`] at the old address).
    pub fn into_parts(self) -> (DMatrix<T>, Targets<T>) {
        (self.inputs, self.targets)
    }

    /// The inputs, `d_0 x N`.
    pub fn inputs(&self) -> &DMatrix<T> {
        &self.inputs
    }

    /// The targets.
    pub fn targets(&self) -> &Targets<T> {
        &self.targets
    }

    /// Number of samples N.
    pub fn len(&self) -> usize {
        self.inputs.ncols()
    }

    /// Always false: a `Dataset` is never empty (checked at construction).
    pub fn is_empty(&self) -> bool {
        self.inputs.ncols() == 0
    }

    /// Input dimension d_0.
    pub fn input_dim(&self) -> usize {
        self.inputs.nrows()
    }

    /// The mini-batch of samples `idx` (in that order): inputs into `x` (`d_0 x |idx|`)
    /// and targets into `t`, reusing their buffers (no allocation at steady state).
    pub fn batch_into(
        &self,
        idx: &[usize],
        x: &mut DMatrix<T>,
        t: &mut Targets<T>,
    ) -> Result<(), DatasetError> {
        check_indices(idx, self.len())?;
        select_columns_into(&self.inputs, idx, x);
        self.targets.select_into(idx, t)
    }

    /// The mini-batch of samples `idx` as a new data set.
    pub fn subset(&self, idx: &[usize]) -> Result<Dataset<T>, DatasetError> {
        let mut x = DMatrix::zeros(0, 0);
        let mut t = self.targets.select(&[])?;
        self.batch_into(idx, &mut x, &mut t)?;
        Dataset::new(x, t)
    }
}

fn check_finite<T: Real>(m: &DMatrix<T>, what: &'static str) -> Result<(), DatasetError> {
    for col in 0..m.ncols() {
        for row in 0..m.nrows() {
            if !m[(row, col)].finite() {
                return Err(DatasetError::NonFinite { what, row, col });
            }
        }
    }
    Ok(())
}
