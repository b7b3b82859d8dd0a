//! Facts about the embedded digits data and its split.

use bench_suite::data::{digits_nonnegative, digits_split, digits_table};
use nets::Targets;

#[test]
fn digits_table_has_the_known_shape_range_and_class_counts() {
    let t = digits_table().unwrap();
    assert_eq!(t.len(), 1797);
    assert_eq!(t.num_features + 1, 65);
    assert_eq!(t.classes, 10);
    assert!(
        t.features
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0)
    );
    assert_eq!(t.features.iter().copied().fold(0.0, f64::max), 16.0);
    assert_eq!(
        t.class_counts().unwrap(),
        vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    // First record of the file: pixel 2 is 5, label 0.
    assert_eq!(t.features[2], 5.0);
    assert_eq!(t.labels[0], 0);
}

fn labels(t: &Targets<f64>) -> Vec<usize> {
    match t {
        Targets::Labels { labels, classes } => {
            assert_eq!(*classes, 10);
            labels.clone()
        }
        Targets::Dense(_) => panic!("digits targets are labels"),
    }
}

#[test]
fn split_is_stratified_80_20_and_standardised_with_training_statistics() {
    let (train, test) = digits_split::<f64>(7).unwrap();
    assert_eq!(train.len(), 1438);
    assert_eq!(test.len(), 359);
    assert_eq!(train.input_dim(), 64);
    let mut counts = [0usize; 10];
    for l in labels(train.targets()) {
        counts[l] += 1;
    }
    // round(0.8 n_c) per class.
    assert_eq!(counts, [142, 146, 142, 146, 145, 146, 145, 143, 139, 144]);
    let x = train.inputs();
    let mut constant = 0;
    for i in 0..64 {
        let row = x.row(i);
        let n = row.len() as f64;
        let mean = row.sum() / n;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        if row.iter().all(|&v| v == 0.0) {
            constant += 1;
            continue;
        }
        assert!(mean.abs() < 1e-12, "feature {i} mean {mean}");
        assert!(
            (var.sqrt() - 1.0).abs() < 1e-12,
            "feature {i} std {}",
            var.sqrt()
        );
    }
    // Pixel (0,0) is always 0 in the digits data: a constant feature left at 0.
    assert!(constant >= 1);
    assert!(x.row(0).iter().all(|&v| v == 0.0));
    assert!(test.inputs().row(0).iter().all(|&v| v == 0.0));
    // Test features are NOT standardised by their own statistics: their means are not
    // all exactly 0.
    let tx = test.inputs();
    let max_test_mean = (0..64)
        .map(|i| (tx.row(i).sum() / tx.ncols() as f64).abs())
        .fold(0.0, f64::max);
    assert!(max_test_mean > 1e-3);
}

#[test]
fn same_seed_same_split_other_seed_other_split() {
    let (a, at) = digits_split::<f32>(3).unwrap();
    let (b, bt) = digits_split::<f32>(3).unwrap();
    assert_eq!(a, b);
    assert_eq!(at, bt);
    let (c, _) = digits_split::<f32>(4).unwrap();
    assert_ne!(a.inputs(), c.inputs());
}

#[test]
fn nonnegative_digits_are_scaled_and_floored() {
    let v = digits_nonnegative::<f64>(0.0).unwrap();
    assert_eq!(v.shape(), (64, 1797));
    assert_eq!(v.max(), 1.0);
    assert_eq!(v.min(), 0.0);
    assert_eq!(v[(2, 0)], 5.0 / 16.0);
    let f = digits_nonnegative::<f32>(1e-6).unwrap();
    assert_eq!(f.min(), 1e-6);
    assert!(digits_nonnegative::<f64>(-1.0).is_err());
}
