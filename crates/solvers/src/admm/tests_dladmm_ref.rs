//! strata's dlADMM against an independent transcription of the reference code's
//! iteration (issue #17, docs/PAPERS.md "Is strata's dlADMM the reference iteration?").
//!
//! The constants below were computed with a NumPy (float64) transcription of the
//! reference code (xianggebenben/dlADMM @49e93ef, `MLP/pytorch_version`: `main.py`'s
//! loop, `common.py`'s `update_zl`, `update_b`, `update_W`, `update_a`, `update_z`),
//! written from reading that code, NOT from strata's: backward pass `Z_L, b_L, W_L,
//! A_{L-1}, ..., Z_1, b_1, W_1`, forward pass `W_1, b_1, Z_1, A_1, ..., W_L, b_L, Z_L`,
//! then `U += rho (Z_L - W_L A_{L-1} - b_L)`; one penalty `rho` for every equation;
//! W- and A-steps `X - G / t` with `t` doubled from 1 until the code's quadratic upper
//! bound holds; `b` the exact mean; hidden `Z` the better of the code's two
//! closed-form candidates; `Z_L` from the +/-1 targets by the code's output iterations
//! (eta 4, at most 500, stop when the summed objective moves by < 1e-3) run as PLAIN
//! proximal gradient (the code accelerates them, FISTA; strata does not: see the
//! module doc of `output_pg`). The script lives outside the repository (throwaway);
//! the problem is defined by formulas so that it can be rebuilt exactly.

use autodiff::Reduction;
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

const WIDTHS: [usize; 4] = [5, 4, 3, 3];
const N: usize = 12;

/// The formula-defined problem: `x_ij = ((3i + 5j) mod 7) / 7 - 0.3`, label
/// `(2j + j div 3) mod 3`, `W_l[r, c] = 0.3 (((5r + 3c + l) mod 9) / 4 - 1)`,
/// `b_l[r] = 0.1 ((r + l) mod 3 - 1)`.
fn problem() -> (Sequential<f64>, Dataset<f64>) {
    let x = DMatrix::from_fn(WIDTHS[0], N, |i, j| {
        ((3 * i + 5 * j) % 7) as f64 / 7.0 - 0.3
    });
    let labels = (0..N).map(|j| (2 * j + j / 3) % 3).collect();
    let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut net = Sequential::mlp(&WIDTHS, Activation::Relu, Init::HeUniform, &mut rng).unwrap();
    let mut flat = Vec::new();
    for l in 0..3 {
        let w = DMatrix::from_fn(WIDTHS[l + 1], WIDTHS[l], |r, c| {
            0.3 * (((5 * r + 3 * c + l) % 9) as f64 / 4.0 - 1.0)
        });
        flat.extend_from_slice(w.as_slice());
        flat.extend((0..WIDTHS[l + 1]).map(|r| 0.1 * (((r + l) % 3) as f64 - 1.0)));
    }
    net.params_from_flat(&flat).unwrap();
    (net, data)
}

/// Probes after an iteration, in the script's order: per layer `||W_l||_F`, `W_l[0,0]`,
/// `W_l[last,last]`, `b_l[0]`; `||A_1||`, `||A_2||`, `||Z_1||`, `||Z_2||`; `||Z_3||`,
/// `Z_3[0,0]`, `Z_3[2,5]`, `||U||`, `U[1,3]`.
fn probes(s: &DlAdmm<f64>) -> Vec<f64> {
    let v = s.lifted().unwrap();
    let mut p = Vec::new();
    for l in 0..3 {
        let w = &v.w[l];
        p.extend([
            w.norm(),
            w[(0, 0)],
            w[(w.nrows() - 1, w.ncols() - 1)],
            v.b[l][0],
        ]);
    }
    p.extend([v.a[0].norm(), v.a[1].norm(), v.z[0].norm(), v.z[1].norm()]);
    let (z, u) = (&v.z[2], s.multiplier());
    p.extend([z.norm(), z[(0, 0)], z[(2, 5)], u.norm(), u[(1, 3)]]);
    p
}

/// Output-block inner iterations of an iteration and the 21 probes after it.
type Probed = (u64, [f64; 21]);

/// Output-block inner iterations per iteration and the probes after it, from the
/// NumPy transcription (float64), for rho = 1e-6 (the code's start) and rho = 0.5.
#[rustfmt::skip]
const REFERENCE: [(f64, [Probed; 2]); 2] = [
    (1e-6, [
        (45, [0.8999999999999999, -0.3, -0.3, -0.10000000000000403, 0.6581223290545544, -0.22499999999999137, -0.15, 5.899371976145015e-08, 0.5809479198352916, -0.1499996074435941, -0.30000000009580297, -0.33513147509747804, 0.7000592176119506, 0.26850659493554685, 1.2420828869118363, 0.36738164619985825, 18.044145029818292, 3.8935830816481567, 3.893576009249834, 1.7926176260475017e-05, 4.2168920985114115e-06]),
        (2, [0.8999999999999999, -0.3, -0.3, -0.10000000000002794, 0.6581223290551346, -0.2249999999999568, -0.15, 2.660724975575716e-07, 0.580948761046127, -0.1499988186526279, -0.30000000086806655, -0.33513197581019244, 0.7000592176124959, 0.26850841499520645, 1.2420828869119551, 0.367382198073183, 18.161210021370326, 3.9213449952662445, 3.921338447811685, 3.5970125948881874e-05, 8.461543964460975e-06]),
    ]),
    (0.5, [
        (8, [0.9004640523671221, -0.2990319700761554, -0.3002918765659231, -0.10023229560142943, 0.6714936969387407, -0.22648879116886278, -0.15225666767315452, 0.010439650741394812, 1.710174342271377, -0.37098260958264273, -0.8008990133522258, 0.0463821490293375, 0.7115914957101438, 1.1544035703562059, 1.243990986049914, 0.4532635478743893, 4.089846773059532, 0.9813651937331732, 0.9785479738540476, 1.3650691020824803, 0.3288079321485487]),
        (6, [0.9029115234291916, -0.2962792879721386, -0.30123246481432236, -0.10079297777433281, 0.7192844988427994, -0.23925356191616398, -0.158457386666725, 0.04563349520706084, 3.7415079217140015, -0.8007834111819958, -1.7692746135289368, -0.007975647738682517, 0.7412065204235898, 1.9752910388611724, 1.2486475270067101, 0.9051305743307564, 4.753024381417725, 1.138552455707649, 1.1354609469964139, 1.156470655916297, 0.27752762317629354]),
    ]),
];

/// strata's default dlADMM (the code's +/-1 output init, its output iterations, theta =
/// tau = 1, backtracking x2), with the code's single penalty fixed at rho, equals the
/// transcription of the reference iteration to rounding over two iterations, every
/// block of every layer included (the probes touch all of them).
#[test]
fn two_iterations_equal_the_reference_transcription() {
    let (net, data) = problem();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    for (rho, iters) in REFERENCE {
        let cfg = DlAdmmConfig {
            penalty: DlPenalty::Fixed { nu: rho, rho },
            ..DlAdmmConfig::default()
        };
        let mut s = DlAdmm::new(cfg).unwrap();
        s.initialize(&net, &loss, &data).unwrap();
        for (it, (inner, want)) in iters.iter().enumerate() {
            let info = s.iterate(&data, 1).unwrap();
            assert_eq!(info.output_inner, *inner, "rho {rho}, iteration {}", it + 1);
            for (k, (got, want)) in probes(&s).iter().zip(want.iter()).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-11 * want.abs().max(1e-3),
                    "rho {rho}, iteration {}, probe {k}: strata {got:e}, reference {want:e}",
                    it + 1
                );
            }
        }
    }
}

/// The problem's L2 weight penalty enters dlADMM at SUM scale (`l2 / w = l2 N` for a
/// mean loss): with the benchmark default 1e-4 on Fashion-MNIST (N = 10,000: 1 per
/// weight) it outweighs the coupling `rho ||A||^2` (rho = 1e-6) and the W-steps mostly
/// shrink the weights (docs/PAPERS.md). Here: at rho = 1e-6 and l2 = 1e-4 x N the
/// W-step of the output layer must shrink `||W_3||` against the unpenalised run, by the
/// factor the majorized step predicts, `1 - l2 N / theta` to first order.
#[test]
fn sum_scale_weight_penalty_shrinks_the_weights() {
    let (net, data) = problem();
    let run = |l2: f64| {
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(l2);
        let mut s = DlAdmm::new(DlAdmmConfig {
            penalty: DlPenalty::Fixed {
                nu: 1e-6,
                rho: 1e-6,
            },
            ..DlAdmmConfig::default()
        })
        .unwrap();
        s.initialize(&net, &loss, &data).unwrap();
        for b in &s.blocks()[..3] {
            s.run_block(*b, &data, 1).unwrap();
        }
        s.lifted().unwrap().w[2].norm()
    };
    let (plain, decayed) = (run(0.0), run(0.05 / N as f64 * 1.0));
    // l2 N = 0.05 < theta = 1: one step at theta = 1 multiplies W by 0.95 (the coupling
    // gradient is ~1e-6 and changes the norm by < 1e-5).
    assert!((decayed / plain - 0.95).abs() < 1e-4, "{decayed} / {plain}");
}
