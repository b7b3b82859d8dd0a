//! Medians with distribution-free intervals over seeds, and the monotonicity check of
//! the report.
//!
//! ## Interval method (order statistics)
//!
//! For n values with order statistics `x_(1) <= ... <= x_(n)`, the interval
//! `[x_(k), x_(n+1-k)]` contains the population median with probability at least
//! `1 - 2 P(B <= k - 1)`, `B ~ Binomial(n, 1/2)`, for any continuous distribution
//! (the classical sign-test interval; e.g. Hollander, Wolfe & Chicken, *Nonparametric
//! Statistical Methods*, 3rd ed., section 3.6). We take the largest `k` whose coverage
//! is at least [`TARGET_COVERAGE`] = 95%. With fewer than 6 values no order-statistic
//! interval reaches 95%; then we report the widest one, the min-max range, with its
//! ACTUAL coverage `1 - 2^(1-n)`: 75% for 3 seeds, 87.5% for 4, 93.75% for 5. A
//! bootstrap interval would not help: with 3 seeds it can only resample the same 3
//! values and its nominal 95% would be a fiction. The coverage is printed with every
//! table.

/// Coverage the interval aims for.
pub const TARGET_COVERAGE: f64 = 0.95;

/// Relative increase of the true objective above which a monotone method is flagged.
pub const MONOTONE_TOLERANCE: f64 = 1e-10;

/// A median with an order-statistic interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Sample median (mean of the two middle values for even n); may be +infinity when
    /// more than half the values are (e.g. time to a target most seeds never reached).
    pub median: f64,
    /// Lower end `x_(k)`.
    pub lo: f64,
    /// Upper end `x_(n+1-k)`.
    pub hi: f64,
    /// Number of values.
    pub n: usize,
    /// Distribution-free coverage of the population median, `1 - 2 P(B <= k-1)`.
    pub coverage: f64,
}

/// `P(B <= j)` for `B ~ Binomial(n, 1/2)`.
fn binom_half_cdf(n: usize, j: usize) -> f64 {
    let mut c = 1.0f64; // C(n, 0)
    let mut s = 0.0;
    for i in 0..=j.min(n) {
        if i > 0 {
            c *= (n + 1 - i) as f64 / i as f64;
        }
        s += c;
    }
    s * 0.5f64.powi(n as i32)
}

/// Coverage of `[x_(k), x_(n+1-k)]` for the median: `1 - 2 P(B <= k-1)` (0 for k = 0 or
/// an empty interval order).
pub fn order_statistic_coverage(n: usize, k: usize) -> f64 {
    if k == 0 || 2 * k > n + 1 {
        return 0.0;
    }
    (1.0 - 2.0 * binom_half_cdf(n, k - 1)).max(0.0)
}

/// The `k` used for n values: the largest with coverage >= [`TARGET_COVERAGE`], else 1
/// (min-max).
pub fn interval_rank(n: usize) -> usize {
    (1..=n.div_ceil(2))
        .rev()
        .find(|&k| order_statistic_coverage(n, k) >= TARGET_COVERAGE)
        .unwrap_or(1)
}

/// Median and interval of the values; NaN values are dropped, +infinity is kept (an
/// unreached target). `None` when no value is left.
pub fn median_interval(values: &[f64]) -> Option<Interval> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // Odd n: the middle value; even n: the mean of the two middle values, or +infinity
    // when the upper one is (half the seeds or more never reached a target).
    let median = if n % 2 == 1 || v[n / 2].is_infinite() {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    let k = interval_rank(n);
    Some(Interval {
        median,
        lo: v[k - 1],
        hi: v[n - k],
        n,
        coverage: order_statistic_coverage(n, k),
    })
}

/// One line for reports: how the intervals of `n` values are formed and their coverage.
pub fn method_text(n: usize) -> String {
    let k = interval_rank(n);
    let cov = 100.0 * order_statistic_coverage(n, k);
    if n <= 1 {
        "one value per cell: no interval".to_string()
    } else if k == 1 {
        format!(
            "with {n} values per cell the interval is the min-max range [x_(1), x_({n})], \
             a distribution-free {cov:.2}% interval for the median (no order-statistic \
             interval reaches 95% below 6 values)"
        )
    } else {
        format!(
            "with {n} values per cell the interval is [x_({k}), x_({})], a \
             distribution-free {cov:.2}% interval for the median",
            n + 1 - k
        )
    }
}

/// Increases of a monotone method's true objective: `(count, largest relative
/// increase)` over consecutive records where `f_{k+1} - f_k > MONOTONE_TOLERANCE |f_k|`
/// (a finite value followed by a non-finite one counts, with increase +infinity).
/// `None` when there is none.
pub fn monotone_violations(objectives: &[f64]) -> Option<(usize, f64)> {
    let mut count = 0;
    let mut worst = 0.0f64;
    for w in objectives.windows(2) {
        let (a, b) = (w[0], w[1]);
        if !a.is_finite() {
            continue;
        }
        let rel = if b.is_finite() {
            (b - a) / a.abs().max(f64::MIN_POSITIVE)
        } else {
            f64::INFINITY
        };
        if rel > MONOTONE_TOLERANCE {
            count += 1;
            worst = worst.max(rel);
        }
    }
    (count > 0).then_some((count, worst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_of_order_statistic_intervals() {
        // 1 - 2^(1-n) for the min-max range.
        assert!((order_statistic_coverage(3, 1) - 0.75).abs() < 1e-15);
        assert!((order_statistic_coverage(5, 1) - 0.9375).abs() < 1e-15);
        // n = 6: min-max covers 1 - 2/64 = 96.875%, the first n reaching 95%.
        assert!((order_statistic_coverage(6, 1) - 0.96875).abs() < 1e-15);
        // n = 10: k = 2 gives 1 - 2 (1 + 10)/1024 = 97.85%, k = 3 gives 89.1%.
        assert!((order_statistic_coverage(10, 2) - (1.0 - 22.0 / 1024.0)).abs() < 1e-15);
        assert_eq!(interval_rank(10), 2);
        assert_eq!(interval_rank(3), 1);
        assert_eq!(interval_rank(20), 6); // 1 - 2 P(B <= 5) = 0.9586
        assert!(order_statistic_coverage(20, 6) >= 0.95 && order_statistic_coverage(20, 7) < 0.95);
    }

    #[test]
    fn median_interval_of_three_seeds_is_the_range_with_75_percent() {
        let i = median_interval(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((i.median, i.lo, i.hi, i.n), (2.0, 1.0, 3.0, 3));
        assert!((i.coverage - 0.75).abs() < 1e-15);
        let j = median_interval(&[1.0, f64::INFINITY, f64::INFINITY]).unwrap();
        assert!(j.median.is_infinite() && j.lo == 1.0);
        let e = median_interval(&[4.0, 2.0]).unwrap();
        assert_eq!(e.median, 3.0);
        assert!(median_interval(&[f64::NAN]).is_none());
        assert!(method_text(3).contains("75.00%"));
    }

    #[test]
    fn monotone_check_flags_relative_increases_above_1e_10() {
        assert_eq!(monotone_violations(&[3.0, 2.0, 2.0, 1.0]), None);
        // 1 + 5e-11 relative: within tolerance.
        assert_eq!(monotone_violations(&[1.0, 1.0 + 5e-11]), None);
        let (c, w) = monotone_violations(&[1.0, 1.0 + 1e-9, 0.5, 0.6]).unwrap();
        assert_eq!(c, 2);
        assert!((w - 0.2).abs() < 1e-12);
        assert_eq!(
            monotone_violations(&[1.0, f64::NAN]),
            Some((1, f64::INFINITY))
        );
    }
}
