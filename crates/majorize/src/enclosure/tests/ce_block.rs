//! The block kernel of the plain cross-entropy: the run-time-dispatched code (AVX-512F /
//! AVX2 where the CPU has them) gives the same bits as the portable code, a reused
//! scratch of another size gives the same bits as a fresh one, and samples that fail the
//! guard are left out.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::ce_block::{Block, Logits, ce_block, ce_block_for};
use super::super::ce_plain::Plain;
use super::super::scalar1::Acc1;

struct Case {
    k: usize,
    c0: Vec<f64>,
    c1: Vec<f64>,
    qm: Vec<f64>,
    qr: Vec<f64>,
    e: Vec<f64>,
    y: Vec<f64>,
}

/// `n` samples of `k` logits: ordinary, saturated (logits far apart), tied, tiny
/// factors, and a few that fail the guard (NaN, a logit of `2⁷⁰`, a negative radius).
fn case(k: usize, n: usize, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let kn = k * n;
    let mut c = Case {
        k,
        c0: Vec::with_capacity(kn),
        c1: Vec::with_capacity(kn),
        qm: Vec::with_capacity(kn),
        qr: Vec::with_capacity(kn),
        e: Vec::with_capacity(kn),
        y: vec![0.0; kn],
    };
    for s in 0..n {
        let kind = rng.random_range(0..6);
        for _ in 0..k {
            let z = match kind {
                1 => rng.random_range(-800.0..800.0),
                2 => 3.0,
                _ => rng.random_range(-10.0..10.0),
            };
            c.c0.push(z);
            c.c1.push(rng.random_range(-5.0..5.0));
            c.qm.push(rng.random_range(-2.0..2.0));
            c.qr.push(rng.random_range(0.0..0.1));
            c.e.push(if kind == 3 {
                700.0
            } else {
                rng.random_range(0.0..0.01)
            });
        }
        c.y[s * k + rng.random_range(0..k)] = 1.0;
        if kind == 4 {
            let j = s * k + rng.random_range(0..k);
            match rng.random_range(0..3) {
                0 => c.c0[j] = f64::NAN,
                1 => c.c1[j] = 2f64.powi(70),
                _ => c.qr[j] = -1.0,
            }
        }
    }
    c
}

fn logits(c: &Case) -> Logits<'_> {
    Logits {
        c0: &c.c0,
        c1: &c.c1,
        qm: &c.qm,
        qr: &c.qr,
        e: &c.e,
        y: &c.y,
    }
}

fn bits(a: &Acc1) -> [u64; 7] {
    [
        a.c0.lo.to_bits(),
        a.c0.hi.to_bits(),
        a.c1.lo.to_bits(),
        a.c1.hi.to_bits(),
        a.q.lo.to_bits(),
        a.q.hi.to_bits(),
        a.e.to_bits(),
    ]
}

fn run(c: &Case, b: &mut Block, dispatched: bool) -> ([u64; 7], Vec<bool>, Vec<u64>) {
    let p = Plain::new(0.3, c.k).expect("plain path applies");
    let mut acc = Acc1::ZERO;
    if dispatched {
        ce_block(&p, &logits(c), c.k, b, &mut acc);
    } else {
        ce_block_for(&p, &logits(c), c.k, b, &mut acc);
    }
    let n = c.c0.len() / c.k;
    let out = (0..n).flat_map(|s| [b.zm[s].to_bits(), b.ya[s].to_bits()]);
    (bits(&acc), b.ok[..n].to_vec(), out.collect())
}

#[test]
fn dispatched_kernel_equals_portable_bit_for_bit() {
    for (seed, (k, n)) in [(10, 300), (10, 37), (3, 256), (1, 5), (17, 64)]
        .into_iter()
        .enumerate()
    {
        let c = case(k, n, seed as u64);
        let fast = run(&c, &mut Block::default(), true);
        let portable = run(&c, &mut Block::default(), false);
        assert_eq!(fast, portable, "k {k}, n {n}");
        // Some samples fail the guard, most pass.
        let failed = fast.1.iter().filter(|&&ok| !ok).count();
        assert!(failed < n / 2 + 1, "k {k}, n {n}: {failed} failed");
        if n >= 64 {
            assert!(failed > 0, "k {k}, n {n}: no guard failure exercised");
        }
    }
}

#[test]
fn reused_scratch_equals_fresh() {
    let mut kept = Block::default();
    for (seed, (k, n)) in [(10, 300), (10, 37), (4, 500), (10, 256)]
        .into_iter()
        .enumerate()
    {
        let c = case(k, n, 100 + seed as u64);
        let again = run(&c, &mut kept, true);
        let fresh = run(&c, &mut Block::default(), true);
        assert_eq!(again, fresh, "k {k}, n {n}");
    }
}
