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

pub use csv::{
    CsvOptions, LabelColumn, LabeledTable, NumericTable, parse_labeled_csv, parse_numeric_csv,
    read_labeled_csv, read_numeric_csv,
};
pub use digits::{DIGITS_CSV, digits_nonnegative, digits_split, digits_table};
pub use idx::{FASHION_MNIST_DIR_ENV, MNIST_DIR_ENV, load_mnist_dir};
pub use labeled::train_test_from_table;
pub use nmf::{NmfInstance, NmfNoise, synthetic_nmf};
pub use spectrogram::{PianoSpec, piano_signal, piano_spectrogram, stft_power};
pub use split::{Standardizer, random_split, stratified_split, take_columns};
pub use synthetic::{TeacherMlp, blob_centers, blobs, spirals, teacher_student};
