//! From a labelled table to standardised train/test [`Dataset`]s.

use autodiff::Real;
use nets::{Dataset, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::csv::LabeledTable;
use super::split::{Standardizer, stratified_split, take_columns};
use crate::BenchError;

/// Splits a labelled table into training and test sets (stratified by class, see
/// [`stratified_split`], RNG `ChaCha8Rng::seed_from_u64(seed)`), then standardises both
/// with the TRAINING statistics ([`Standardizer`]). Labels are kept as
/// [`Targets::Labels`] with the table's class count.
pub fn train_test_from_table<T: Real>(
    table: &LabeledTable,
    train_fraction: f64,
    seed: u64,
) -> Result<(Dataset<T>, Dataset<T>), BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (train_idx, test_idx) =
        stratified_split(&table.labels, table.classes, train_fraction, &mut rng)?;
    if train_idx.is_empty() || test_idx.is_empty() {
        return Err(BenchError::arg(
            "train_fraction",
            format!(
                "{train_fraction} leaves an empty split of {} samples",
                table.len()
            ),
        ));
    }
    let all = table.inputs::<T>()?;
    let mut x_train = take_columns(&all, &train_idx)?;
    let mut x_test = take_columns(&all, &test_idx)?;
    let stats = Standardizer::fit(&x_train);
    stats.apply(&mut x_train)?;
    stats.apply(&mut x_test)?;
    let labels = |idx: &[usize]| Targets::Labels {
        labels: idx.iter().map(|&i| table.labels[i]).collect(),
        classes: table.classes,
    };
    let train = Dataset::new(x_train, labels(&train_idx))?;
    let test = Dataset::new(x_test, labels(&test_idx))?;
    Ok((train, test))
}
