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

/// Output-block inner iterations per iteration and the probes after it, from the
/// NumPy transcription (float64), for rho = 1e-6 (the code's start) and rho = 0.5.
#[rustfmt::skip]
const REFERENCE: [(f64, [(u64, [f64; 21]); 2]); 2] = [
    (1e-6, [
        (45, [8.9999999999999991e-01, -2.9999999999999999e-01, -2.9999999999999999e-01, -1.0000000000000403e-01, 6.5812232905455437e-01, -2.2499999999999137e-01, -1.4999999999999999e-01, 5.8993719761450153e-08, 5.8094791983529159e-01, -1.4999960744359411e-01, -3.0000000009580297e-01, -3.3513147509747804e-01, 7.0005921761195056e-01, 2.6850659493554685e-01, 1.2420828869118363e+00, 3.6738164619985825e-01, 1.8044145029818292e+01, 3.8935830816481567e+00, 3.8935760092498342e+00, 1.7926176260475017e-05, 4.2168920985114115e-06]),
        (2, [8.9999999999999991e-01, -2.9999999999999999e-01, -2.9999999999999999e-01, -1.0000000000002794e-01, 6.5812232905513457e-01, -2.2499999999995679e-01, -1.4999999999999999e-01, 2.6607249755757162e-07, 5.8094876104612703e-01, -1.4999881865262790e-01, -3.0000000086806655e-01, -3.3513197581019244e-01, 7.0005921761249590e-01, 2.6850841499520645e-01, 1.2420828869119551e+00, 3.6738219807318301e-01, 1.8161210021370326e+01, 3.9213449952662445e+00, 3.9213384478116851e+00, 3.5970125948881874e-05, 8.4615439644609748e-06]),
    ]),
    (0.5, [
        (8, [9.0046405236712213e-01, -2.9903197007615540e-01, -3.0029187656592310e-01, -1.0023229560142943e-01, 6.7149369693874073e-01, -2.2648879116886278e-01, -1.5225666767315452e-01, 1.0439650741394812e-02, 1.7101743422713771e+00, -3.7098260958264273e-01, -8.0089901335222580e-01, 4.6382149029337502e-02, 7.1159149571014380e-01, 1.1544035703562059e+00, 1.2439909860499141e+00, 4.5326354787438933e-01, 4.0898467730595316e+00, 9.8136519373317321e-01, 9.7854797385404757e-01, 1.3650691020824803e+00, 3.2880793214854870e-01]),
        (6, [9.0291152342919156e-01, -2.9627928797213859e-01, -3.0123246481432236e-01, -1.0079297777433281e-01, 7.1928449884279944e-01, -2.3925356191616398e-01, -1.5845738666672499e-01, 4.5633495207060837e-02, 3.7415079217140015e+00, -8.0078341118199581e-01, -1.7692746135289368e+00, -7.9756477386825168e-03, 7.4120652042358981e-01, 1.9752910388611724e+00, 1.2486475270067101e+00, 9.0513057433075639e-01, 4.7530243814177249e+00, 1.1385524557076490e+00, 1.1354609469964139e+00, 1.1564706559162969e+00, 2.7752762317629354e-01]),
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
