//! The embedded digits data set (UCI optical digits, 8x8, 1,797 images; see
//! `data/README.md` for its credit and licence).

use autodiff::Real;
use nalgebra::DMatrix;
use nets::Dataset;

use super::csv::{CsvOptions, LabelColumn, LabeledTable, parse_labeled_csv};
use super::labeled::train_test_from_table;
use super::split::{stratified_split, take_columns};
use crate::BenchError;

/// The raw CSV text: 1,797 lines of 64 pixels (0..16) and a label (0..9), no header.
pub const DIGITS_CSV: &str = include_str!("../../data/digits.csv");

/// Number of images.
pub const DIGITS_ROWS: usize = 1797;
/// Pixels per image (8 x 8).
pub const DIGITS_FEATURES: usize = 64;
/// Number of classes.
pub const DIGITS_CLASSES: usize = 10;
/// Largest pixel intensity.
pub const DIGITS_MAX_PIXEL: f64 = 16.0;
/// Fraction of each class that goes to training in [`digits_split`].
pub const DIGITS_TRAIN_FRACTION: f64 = 0.8;

/// Parses the embedded CSV (pixels as features, last column the label, 10 classes).
pub fn digits_table() -> Result<LabeledTable, BenchError> {
    let opts = CsvOptions {
        label_column: LabelColumn::Last,
        header: Some(false),
        delimiter: ',',
        classes: Some(DIGITS_CLASSES),
    };
    parse_labeled_csv(DIGITS_CSV, "<embedded digits.csv>", &opts)
}

/// The digits classification data, split 80/20 and standardised.
///
/// The split is stratified: in each class, `round(0.8 n_c)` images chosen at random
/// (ChaCha8 seeded with `seed`) go to training, so training has 1,438 images and test
/// 359, with the class proportions of the whole set; each side is then shuffled. Inputs
/// are `64 x N`, standardised per pixel with the TRAINING mean and (population) std;
/// pixels constant over the training set are 0. Labels are 0..9.
pub fn digits_split<T: Real>(seed: u64) -> Result<(Dataset<T>, Dataset<T>), BenchError> {
    train_test_from_table(&digits_table()?, DIGITS_TRAIN_FRACTION, seed)
}

/// The digits classification data with raw intensities scaled to [0, 1] (pixel / 16,
/// not standardised), with the SAME stratified 80/20 split as [`digits_split`] for the
/// same seed (1,438 training and 359 test images). Labels 0..9 (the MSE loss reads them
/// as one-hot targets). Used by `digits-softplus-mse`.
pub fn digits_split_unit<T: Real>(seed: u64) -> Result<(Dataset<T>, Dataset<T>), BenchError> {
    let table = digits_table()?;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
    let (train_idx, test_idx) = stratified_split(
        &table.labels,
        table.classes,
        DIGITS_TRAIN_FRACTION,
        &mut rng,
    )?;
    let all = table.inputs::<T>()?.map(|v| v / T::of(DIGITS_MAX_PIXEL));
    let labels = |idx: &[usize]| nets::Targets::Labels {
        labels: idx.iter().map(|&i| table.labels[i]).collect(),
        classes: table.classes,
    };
    let train = Dataset::new(take_columns(&all, &train_idx)?, labels(&train_idx))?;
    let test = Dataset::new(take_columns(&all, &test_idx)?, labels(&test_idx))?;
    Ok((train, test))
}

/// The digits pixels as a nonnegative `64 x 1797` matrix for NMF: intensity / 16, so in
/// [0, 1], then `max(v, floor)` (pass `floor > 0`, e.g. 1e-6, for beta <= 0 divergences,
/// which are undefined at zero data; `floor = 0` keeps the exact zeros).
pub fn digits_nonnegative<T: Real>(floor: f64) -> Result<DMatrix<T>, BenchError> {
    if !(floor.is_finite() && (0.0..1.0).contains(&floor)) {
        return Err(BenchError::arg(
            "floor",
            format!("must lie in [0, 1), got {floor}"),
        ));
    }
    let table = digits_table()?;
    Ok(DMatrix::from_iterator(
        table.num_features,
        table.len(),
        table
            .features
            .iter()
            .map(|&v| T::of((v / DIGITS_MAX_PIXEL).max(floor))),
    ))
}
