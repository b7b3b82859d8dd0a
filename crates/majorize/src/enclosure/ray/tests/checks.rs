//! The ray bound's checks (soundness, the top block as a special case, mutations).

use super::super::bound::KNOBS;
use super::*;

#[test]
fn sound_on_random_deep_nets() {
    let (mut checked, mut worst, mut cases) = (0usize, f64::INFINITY, 0usize);
    for seed in 0..300u64 {
        let c = random_rcase(seed, if seed % 10 == 0 { 300 } else { 10 });
        let r0 = c.record(0.0);
        for value in [Some(r0), None] {
            let b = c.bound(value).unwrap();
            assert!(b.slack.is_finite() && b.slack > 0.0, "seed {seed}: {b:?}");
            assert!(
                (c.accurate(0.0) - b.value).abs() <= b.slack,
                "seed {seed}: {b:?}"
            );
            let (bad, k, w) = c.check(&b, points(&b));
            assert!(bad.is_none(), "seed {seed}: {}", bad.unwrap());
            checked += k;
            worst = worst.min(w);
            cases += 1;
        }
    }
    println!(
        "ray soundness: {cases} bounds, {checked} comparisons, smallest (bound - x)/slack {worst:.3}"
    );
    assert!(checked > 60_000);
}
