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

/// On the top block the ray bound is `enclose_top_block`'s: the same value (within the
/// top block's slack), a slope and a curvature no larger (the slope differs by rounding
/// terms: the ray's `Ĉ` error has no `dz`, its logits being the anchor; the curvature
/// by `M <= |P'|`), and a slack of the same order (R4's `wa_max` against the top block's
/// row-wise `M1`, and the anchor: no `dz`).
#[test]
fn the_top_block_is_a_special_case() {
    let (mut cases, mut sr_max, mut sr_min, mut dslope, mut curv_ratio) =
        (0usize, 0.0f64, f64::INFINITY, 0.0f64, 0.0f64);
    for seed in 0..400u64 {
        let c = random_rcase(seed, if seed % 10 == 0 { 300 } else { 10 });
        if c.layer + 3 != c.net.layers().len() {
            continue;
        }
        for value in [Some(c.record(0.0)), None] {
            let (r, t) = (c.bound(value).unwrap(), c.top_bound(value).unwrap());
            assert!(
                (r.value - t.value).abs() <= t.slack,
                "seed {seed}: {r:?} {t:?}"
            );
            // The slopes agree to rounding level (the ray's Ĉ error term has no `dz`:
            // its logits are the anchor); the ray's is never the larger.
            let ds = (t.slope - r.slope) * c.amax / t.slack;
            assert!(r.slope <= t.slope, "seed {seed}: {r:?} {t:?}");
            assert!(r.curvature <= t.curvature, "seed {seed}: {r:?} {t:?}");
            dslope = dslope.max(ds);
            sr_max = sr_max.max(r.slack / t.slack);
            sr_min = sr_min.min(r.slack / t.slack);
            if t.curvature > 0.0 {
                curv_ratio = curv_ratio.max(r.curvature / t.curvature);
            }
            cases += 1;
        }
    }
    println!(
        "top block: {cases} bounds; slack ray/top in [{sr_min:.3}, {sr_max:.3}]; \
         max (top slope - ray slope) ā / top slack {dslope:.3e}; max curvature ray/top {curv_ratio:.6}"
    );
    assert!(cases > 200 && sr_max < 4.0 && sr_min > 0.25);
}
