//! Data: the embedded digits set, seeded synthetic problems, NMF matrices and
//! user-supplied files (MNIST-layout IDX, labelled CSV).
//!
//! Layout everywhere: samples are columns (`d x N`). Randomness only from explicit
//! seeds or RNGs (`ChaCha8Rng`).

pub mod csv;
pub mod digits;
pub mod gunzip;
pub mod idx;
pub mod labeled;
pub mod nmf;
pub mod spectrogram;
pub mod split;
pub mod synthetic;

/// Most entries (`rows x cols`) a generated data matrix may have: 10^9, 8 GB of f64
/// (defined as `majorize::MAX_ENTRIES`, the workspace's one size cap, which also bounds
/// `nets::MAX_MLP_PARAMS` and the NMF factors). The generators
/// ([`synthetic_nmf`], [`piano_spectrogram`], [`stft_power`], [`spirals`], [`blobs`],
/// [`teacher_student`]) check their sizes against it before allocating: a mistyped size
/// is an error, not an abort of the process on a failed allocation.
pub const MAX_DATA_ENTRIES: usize = majorize::MAX_ENTRIES;

/// `Ok` when a `rows x cols` matrix has at most [`MAX_DATA_ENTRIES`] entries (counted
/// without overflow); an [`BenchError::InvalidArgument`] naming `name` otherwise.
pub(crate) fn check_entries(
    name: &'static str,
    rows: usize,
    cols: usize,
) -> Result<(), crate::BenchError> {
    if rows.checked_mul(cols).is_none_or(|e| e > MAX_DATA_ENTRIES) {
        return Err(crate::BenchError::arg(
            name,
            format!("{rows} x {cols} entries are more than MAX_DATA_ENTRIES = {MAX_DATA_ENTRIES}"),
        ));
    }
    Ok(())
}

pub use csv::{
    CsvOptions, LabelColumn, LabeledTable, NumericTable, parse_labeled_csv, parse_numeric_csv,
    read_labeled_csv, read_numeric_csv,
};
pub use digits::{DIGITS_CSV, digits_nonnegative, digits_split, digits_split_unit, digits_table};
pub use idx::{
    FASHION_MNIST_DIR_ENV, FASHION_MNIST_PACKAGE, FASHION_MNIST_PACKAGE_DIR, MNIST_DIR_ENV,
    load_mnist_dir, resolve_fashion_mnist_dir,
};
pub use labeled::train_test_from_table;
pub use nmf::{NmfInstance, NmfNoise, synthetic_nmf};
pub use spectrogram::{PianoSpec, piano_signal, piano_spectrogram, stft_power};
pub use split::{Standardizer, random_split, stratified_split, take_columns};
pub use synthetic::{TeacherMlp, blob_centers, blobs, spirals, teacher_student};
