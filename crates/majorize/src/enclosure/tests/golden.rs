//! Bit-identity guard for refactorings of the engine (ignored; run by hand): writes the
//! bits of many random enclosures (f32 and f64, k = 1 and k > 1, every activation and
//! loss) to the file named by `ENCLOSURE_GOLDEN`, or compares with it when
//! `ENCLOSURE_GOLDEN_CHECK` names a file written before the change.

use super::super::*;
use super::random_case;

fn dump<T: autodiff::Real>(out: &mut String, seeds: std::ops::Range<u64>) {
    let mut ws = EnclosureWorkspace::new();
    for seed in seeds {
        let case = random_case::<T>(seed, None, None);
        let line = match enclose_with(&case.request(), &mut ws) {
            Ok(e) => {
                let mut s = format!("{seed} {:x}", e.value.to_f64().to_bits());
                for g in &e.gradient {
                    s += &format!(" {:x}", g.to_f64().to_bits());
                }
                for q in e.quad_lower.iter().chain(e.quad_upper.iter()) {
                    s += &format!(" {:x}", q.to_f64().to_bits());
                }
                s += &format!(" {:x}", e.slack.to_f64().to_bits());
                s
            }
            Err(e) => format!("{seed} err {e}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
}

#[test]
#[ignore]
fn golden_bits() {
    let mut s = String::new();
    dump::<f64>(&mut s, 0..4000);
    dump::<f32>(&mut s, 0..4000);
    if let Ok(p) = std::env::var("ENCLOSURE_GOLDEN") {
        std::fs::write(p, &s).unwrap();
    }
    if let Ok(p) = std::env::var("ENCLOSURE_GOLDEN_CHECK") {
        let old = std::fs::read_to_string(p).unwrap();
        let diff: Vec<_> = old
            .lines()
            .zip(s.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .collect();
        assert!(
            diff.is_empty(),
            "{} differing lines, first {diff:?}",
            old.lines().zip(s.lines()).filter(|(a, b)| a != b).count()
        );
    }
}
