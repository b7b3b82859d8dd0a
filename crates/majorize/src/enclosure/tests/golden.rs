//! Bit-identity guard for refactorings of the engine (ignored; run by hand): writes the
//! bits of many random enclosures (f32 and f64, k = 1 and k > 1, every activation and
//! loss) to the file named by `ENCLOSURE_GOLDEN`, or compares with it when
//! `ENCLOSURE_GOLDEN_CHECK` names a file written before the change.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::*;
use super::{Case, gauss, random_case};

/// A safe-layerwise-shaped case at the sizes of the benchmarks (session 10): 2-4 dense
/// layers of width 8-140, 65-300 samples (several sweep blocks, the GEMMs' blocked
/// paths), one unit-norm direction per layer (`k = L`), ReLU mostly, softmax
/// cross-entropy mostly; one case in four has zero biases and a zero input column
/// (exact kinks).
pub(crate) fn layerwise_case<T: Real>(seed: u64) -> Case<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1a7e_5eed);
    let depth = rng.random_range(2..=4usize);
    let widths: Vec<usize> = (0..=depth).map(|_| rng.random_range(8..=140)).collect();
    let act = if rng.random_range(0..4) == 0 {
        [Activation::LeakyRelu { slope: 0.1 }, Activation::Tanh][rng.random_range(0..2)]
    } else {
        Activation::Relu
    };
    let kinks = rng.random_range(0..4) == 0;
    let mut layers: Vec<Box<dyn Layer<T>>> = Vec::new();
    for l in 0..depth {
        let (din, dout) = (widths[l], widths[l + 1]);
        let s = 1.5 / (din as f64).sqrt();
        let w = DMatrix::from_fn(dout, din, |_, _| T::of(gauss(&mut rng) * s));
        let b = DVector::from_fn(dout, |_, _| {
            T::of(if kinks { 0.0 } else { 0.1 * gauss(&mut rng) })
        });
        layers.push(Box::new(Dense::new(w, b).unwrap()));
        if l + 1 < depth {
            layers.push(Box::new(act));
        }
    }
    let net = Sequential::from_layers(layers).unwrap();
    let n = rng.random_range(65..=300usize);
    let mut x = DMatrix::from_fn(widths[0], n, |_, _| T::of(2.0 * rng.random::<f64>() - 1.0));
    if kinks {
        x.column_mut(0).fill(T::zero());
    }
    let kout = widths[depth];
    let (kind, y) = if rng.random_range(0..4) == 0 {
        let y = Targets::Dense(DMatrix::from_fn(kout, n, |_, _| T::of(gauss(&mut rng))));
        (LossKind::Mse, y)
    } else {
        let labels = (0..n).map(|_| rng.random_range(0..kout)).collect();
        (
            LossKind::SoftmaxCrossEntropy,
            Targets::Labels {
                labels,
                classes: kout,
            },
        )
    };
    let loss = Loss::new(kind, Reduction::Mean).with_l2(1e-4);
    let p = net.num_params();
    let layout = net.param_layout();
    let dirs: Vec<DVector<T>> = (0..depth)
        .map(|l| {
            let mut d = DVector::zeros(p);
            for info in layout.iter().filter(|i| i.layer == 2 * l) {
                for j in info.offset..info.offset + info.rows * info.cols {
                    d[j] = T::of(gauss(&mut rng));
                }
            }
            let norm = d.iter().map(|v| v.to_f64().powi(2)).sum::<f64>().sqrt();
            d.map(|v| T::of(v.to_f64() / norm.max(1e-300)))
        })
        .collect();
    let amax = (0..depth)
        .map(|_| T::of(10f64.powf(rng.random_range(-4.0..-0.5))))
        .collect();
    Case {
        net,
        loss,
        x,
        y,
        dirs,
        amax,
        smooth: false,
    }
}

fn dump<T: autodiff::Real>(out: &mut String, seeds: std::ops::Range<u64>) {
    let mut ws = EnclosureWorkspace::new();
    for seed in seeds {
        let case = if seed >= LAYERWISE_SEEDS {
            layerwise_case::<T>(seed)
        } else {
            random_case::<T>(seed, None, None)
        };
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

/// Seeds from here on are [`layerwise_case`]s.
const LAYERWISE_SEEDS: u64 = 1 << 20;

#[test]
#[ignore]
fn golden_bits() {
    let mut s = String::new();
    dump::<f64>(&mut s, 0..4000);
    dump::<f32>(&mut s, 0..4000);
    dump::<f64>(&mut s, LAYERWISE_SEEDS..LAYERWISE_SEEDS + 150);
    dump::<f32>(&mut s, LAYERWISE_SEEDS..LAYERWISE_SEEDS + 150);
    if let Ok(p) = std::env::var("ENCLOSURE_GOLDEN") {
        std::fs::write(p, &s).unwrap();
    }
    if let Ok(p) = std::env::var("ENCLOSURE_GOLDEN_CHECK") {
        let old = std::fs::read_to_string(p).unwrap();
        assert_eq!(
            old.lines().count(),
            s.lines().count(),
            "dump lengths differ"
        );
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
