//! Measurement (session 16): can a forward linear band along the ray (a one-variable
//! cousin of CROWN/DeepPoly) certify block MM's steps on the LOWER hidden blocks, where
//! only the Taylor-model enclosure exists? Nothing here is wired into a solver;
//! derivation and results in docs/PERFORMANCE.md, "A chord/tangent certificate for lower
//! blocks (session 16, measurement)".
//!
//! For `phi(a) = F(θ + a D)` (`D` = weight `V`, bias `β` of hidden block `l`), the block's
//! output is exact, `Z(a) = Z0 + a P` (`P = V A_l + β`). Every entry above it gets a band
//! exact at `a = 0`: `h0 + a sL <= h(a) <= h0 + a sU` on `[0, ā]`.
//! - ReLU of a pre-activation band `z0 + a [lo, hi]`: relu is monotone, so
//!   `relu(z0 + a lo) <= h(a) <= relu(z0 + a hi)`; both are convex in `a`, so the upper
//!   one is below its chord over `[0, ā]` (`sU = (relu(z0 + ā hi) - relu(z0))/ā`) and the
//!   lower one above its tangent at 0 (`sL` = right derivative: `lo` if `z0 > 0`,
//!   `max(lo, 0)` if `z0 = 0`, else 0). This covers the non-crossing cases exactly.
//! - Dense `W`: `h(a) = h0 + a s(a)` with `s(a)` in the box `c ± r`, so the next
//!   pre-activation is `z0 + a W s(a)` with `W s(a) ∈ W c ± |W| r` (two products).
//! - Data term (softmax cross-entropy, mean): per sample Taylor with the Lagrange
//!   remainder along the logits, `Δ = a s(a)`: `CE(z0 + Δ) = CE(z0) + <∇, Δ> + ½ Δᵀ H(ξ) Δ`.
//!   Linear: `<g, W_{L-1} s_h> = <C, s_h> <= Σ max(C sL, C sU)` at the last hidden layer
//!   (`C = W_{L-1}ᵀ g`). Quadratic: `sᵀ H s <= min(λ (||Π m|| + ||rad||)², Σ_{j≠c} p̄_j
//!   (|m_j - m_c| + rad_j + rad_c)²)` for `s ∈ m ± rad` (session 15's sharp form), the
//!   softmax range over the logits' box `z0 + [min(0, ā (m - rad)), max(0, ā (m + rad))]`.
//! - Penalty: exact, `l2 <W, V> a + (l2/2)||V||² a²`.
//!
//! So `phi(a) <= phi(0) + a (ℓ + pen1) + a² (Q + pen2)` on `[0, ā]`, in exact arithmetic
//! (no rounding slack); the Taylor enclosure (`enclose_from_layer`, as block MM calls it)
//! carries its full floating-point slack. Every bound is checked against the true `phi` at
//! its minimiser (`Sequential::objective` after `apply_step`) and at `--points` equally
//! spaced points of `[0, ā]` (forward from the block); a violation is printed loudly.
//!
//! Run: `nice -n 10 cargo run --release -p bench-suite --example ray_certificate`
//! Options: `--problems digits-mlp-deep,spirals` `--sweeps 5,25` `--reps 5` (timing samples,
//! each the mean over >= 20 ms of calls; the median is printed) `--points 50` `--kmax 12`
//! (grid `ā = scale 10^{k/2}`, `k = -8..=kmax`).

#[path = "../common/mod.rs"]
mod common;

mod bound;

use autodiff::Tape;
use bound::{Block, Dir, RayWs};
use majorize::enclosure::{
    EnclosureRequest, EnclosureWorkspace, FromLayer, QuadraticEnclosure, apply_step,
    enclose_from_layer,
};
use nets::{Dataset, Loss, Sequential};
use solvers::mm::BlockMmConfig;
use solvers::{Budget, Driver, Solver};
use std::time::Instant;

const USAGE: &str = "usage: ray_certificate [--problems digits-mlp-deep,spirals] \
[--sweeps 5,25] [--reps 5] [--points 50] [--kmax 12]";

/// Wall milliseconds per call of `f`: the median over `reps` samples, each the mean over
/// calls repeated for at least 20 ms.
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            let mut calls = 0u32;
            while calls == 0 || t0.elapsed().as_secs_f64() < 0.02 {
                f();
                calls += 1;
            }
            t0.elapsed().as_secs_f64() * 1e3 / f64::from(calls)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A problem: data and loss.
struct Prob {
    name: String,
    train: Dataset<f64>,
    loss: Loss,
}

/// `phi(a)` as the driver records it: `apply_step`, then `Sequential::objective`.
fn phi_exact(blk: &Block, net: &mut Sequential<f64>, dir: &Dir, a: f64, prob: &Prob) -> f64 {
    apply_step(net, &blk.base, std::slice::from_ref(&dir.flat), &[a]).expect("apply");
    net.objective(&prob.loss, prob.train.inputs(), prob.train.targets())
        .expect("objective")
}

/// Minimiser of `f0 + a s + a² q` on `[0, abar]` (`q >= 0`) and its value minus `f0`.
fn argmin_quad(s: f64, q: f64, abar: f64) -> (f64, f64) {
    let a = if q > 0.0 {
        (-s / (2.0 * q)).clamp(0.0, abar)
    } else if s < 0.0 {
        abar
    } else {
        0.0
    };
    let dec = a * s + a * a * q;
    if dec < 0.0 { (a, dec) } else { (0.0, 0.0) }
}

/// Minimiser of the Taylor enclosure's upper bound and its certified decrease.
fn argmin_taylor(e: &QuadraticEnclosure<f64>, abar: f64) -> (f64, f64) {
    let (g, q) = (e.gradient[0], e.quad_upper[(0, 0)]);
    let mut cands = vec![abar];
    if q > 0.0 {
        cands.push((-g / (2.0 * q)).clamp(0.0, abar));
    }
    let mut best = (0.0, 0.0);
    for a in cands {
        if a > 0.0 {
            let dec = e.upper_bound(&[a]).expect("in the box") - e.value;
            if dec < best.1 {
                best = (a, dec);
            }
        }
    }
    best
}

/// Best certified decrease over the grid per bound (decrease, at a), and times.
#[derive(Default)]
struct Best {
    taylor: (f64, f64),
    ray: (f64, f64),
    truth: (f64, f64),
    t_taylor: Vec<f64>,
    t_ray: Vec<f64>,
    /// Wall ms per call of each bound at its own best `abar`.
    t_at_best: [f64; 2],
    /// At the ray bound's best point: the terms of `bound - phi(0)` = `a g_T` (first
    /// order, exact slope) + `a (slope_R - g_T)` (the band's loss in the linear term) +
    /// `a² Q_R`, and the kink fraction and `Σ rad / Σ |m|` there.
    split: [f64; 3],
    kinks: f64,
    widen: f64,
}

/// Soundness bookkeeping: violations and the worst relative margin per bound.
struct Check {
    violations: usize,
    worst: [f64; 2],
}

fn run_dir(
    prob: &Prob,
    net: &Sequential<f64>,
    blk: &Block,
    dir: &Dir,
    state: &str,
    (reps, points, kmax): (usize, u32, i32),
    chk: &mut Check,
) -> Best {
    let w = prob.loss.sample_weight(prob.train.len());
    let mut ews = EnclosureWorkspace::new();
    let mut rws = RayWs::default();
    let mut scratch = net.clone();
    let mut best = Best::default();
    for kexp in -8..=kmax {
        let abar = dir.scale * 10f64.powf(f64::from(kexp) / 2.0);
        let dirs = std::slice::from_ref(&dir.flat);
        let amax = [abar];
        let req = EnclosureRequest {
            net,
            loss: &prob.loss,
            inputs: prob.train.inputs(),
            targets: prob.train.targets(),
            directions: dirs,
            alpha_max: &amax,
        };
        let from = FromLayer {
            layer: blk.layer,
            input: &blk.a_in,
            output: Some(&blk.zs[0]),
            output_dir: Some(&dir.p),
        };
        let enc = |ws: &mut EnclosureWorkspace| {
            enclose_from_layer(&req, Some(blk.f0), &from, ws).expect("enclosure")
        };
        let e = enc(&mut ews);
        let t_t = median_ms(reps, || {
            std::hint::black_box(enc(&mut ews));
        });
        let ry = blk.ray(dir, abar, w, &mut rws);
        let t_r = median_ms(reps, || {
            std::hint::black_box(blk.ray(dir, abar, w, &mut rws));
        });
        let slope = ry.lin + dir.pen1;
        let qr = ry.quad + dir.pen2;
        let (at, dt) = argmin_taylor(&e, abar);
        let (ar, dr) = argmin_quad(slope, qr, abar);
        let ub_t = |a: f64| e.upper_bound(&[a]).expect("in the box");
        let ub_r = |a: f64| blk.f0 + a * slope + a * a * qr;
        let mut check = |which: usize, a: f64, bound: f64, phi: f64| {
            let what = ["taylor", "ray"][which];
            let margin = (bound - phi) / phi.abs().max(1.0);
            chk.worst[which] = chk.worst[which].min(margin);
            if margin < -1e-12 {
                chk.violations += 1;
                println!(
                    "!!! VIOLATION: {} {state} block {} {} abar {abar:.3e}: {what} bound {bound:.15e} < phi({a:.6e}) = {phi:.15e}",
                    prob.name, blk.dense, dir.name
                );
            }
        };
        let mut true_at = [0.0; 2];
        for (i, (a, ub)) in [(at, &ub_t as &dyn Fn(f64) -> f64), (ar, &ub_r)]
            .into_iter()
            .enumerate()
        {
            if a > 0.0 {
                let phi = phi_exact(blk, &mut scratch, dir, a, prob);
                check(i, a, ub(a), phi);
                true_at[i] = phi - blk.f0;
            }
        }
        for j in 1..=points {
            let a = (abar * f64::from(j) / f64::from(points)).min(abar);
            let phi = blk.phi_fast(dir, a, &prob.loss, &prob.train);
            check(0, a, ub_t(a), phi);
            check(1, a, ub_r(a), phi);
            if phi - blk.f0 < best.truth.1 {
                best.truth = (a, phi - blk.f0);
            }
        }
        for (i, (b, a, dec, t)) in [
            (&mut best.taylor, at, dt, t_t),
            (&mut best.ray, ar, dr, t_r),
        ]
        .into_iter()
        .enumerate()
        {
            if dec < b.1 {
                *b = (a, dec);
                best.t_at_best[i] = t;
                if i == 1 {
                    let g = e.gradient[0];
                    best.split = [a * g, a * (slope - g), a * a * qr];
                    (best.kinks, best.widen) = (ry.kinks, ry.widen);
                }
            }
        }
        best.t_taylor.push(t_t);
        best.t_ray.push(t_r);
        let ratio = if dt < 0.0 {
            format!("{:.2}", dr / dt)
        } else {
            "-".into()
        };
        println!(
            "| {} | {state} | {} | {} | 1e{:+.1} | {abar:.3e} | {dt:.3e} | {dr:.3e} | {ratio} | {:.3e} | {:.3e} | {:.3e} | {slope:.3e} | {:.3e} | {:.3e} | {qr:.3e} | {:.3} | {:.2e} | {t_t:.3} | {t_r:.3} |",
            prob.name,
            blk.dense,
            dir.name,
            f64::from(kexp) / 2.0,
            true_at[0],
            true_at[1],
            e.gradient[0],
            ry.lin_box + dir.pen1,
            e.quad_upper[(0, 0)],
            ry.kinks,
            ry.widen,
        );
    }
    best
}

/// A GD step's products in units of one `unit x unit x N` GEMM: forward one per layer,
/// backward the weight gradient per layer and the input gradient above the first.
fn gd_units(net: &Sequential<f64>, unit: usize) -> f64 {
    let wd = net.mlp_view().expect("an MLP").widths;
    let u = (unit * unit) as f64;
    (0..wd.len() - 1)
        .map(|k| {
            let p = (wd[k] * wd[k + 1]) as f64 / u;
            if k == 0 { 2.0 * p } else { 3.0 * p }
        })
        .sum()
}

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &["--problems", "--sweeps", "--reps", "--points", "--kmax"],
        &[],
        false,
    );
    let problems = opts
        .get("--problems")
        .unwrap_or("digits-mlp-deep,spirals".into());
    let sweeps: Vec<u64> = opts.list("--sweeps", "5,25");
    let reps: usize = opts.num("--reps", 5);
    let points: u32 = opts.num("--points", 50).max(1);
    let kmax: i32 = opts.num("--kmax", 12);
    println!("# ray (forward linear band) certificate of hidden blocks vs the Taylor enclosure");
    println!(
        "\nColumns: certified decrease `min bound - phi(0)` of the Taylor enclosure and the ray \
         bound, ratio ray/Taylor; the true decrease at each minimiser; slopes (Taylor g, ray \
         incl. penalty, ray's slope from the logits' box); curvatures (Taylor Q_hi, ray); \
         fraction of band entries above the block crossing a kink; Σ rad / Σ |m| at the \
         logits; wall ms per call (median of {reps} samples).\n"
    );
    println!(
        "| problem | state | block | direction | abar/scale | abar | Taylor | ray | ray/T | true at a_T | true at a_R | g_T | slope_R | slope_box | Q_T | Q_R | kinks | rad/|m| | ms T | ms R |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    let mut chk = Check {
        violations: 0,
        worst: [f64::INFINITY; 2],
    };
    for pname in problems.split(',') {
        let (train, net0, loss) = common::problem(&opts, pname);
        let prob = Prob {
            name: pname.to_string(),
            train,
            loss,
        };
        let mut states = vec![("init".to_string(), net0.clone(), serde_json::Value::Null)];
        for &k in &sweeps {
            let mut p = common::make(&prob.train, &net0, loss, 1);
            let mut solver = BlockMmConfig::default().build::<f64>().expect("config");
            Driver::new(Budget::iterations(k))
                .seed(0)
                .run(&mut p, &mut solver)
                .expect("block-mm run");
            let trust = solver.save_state()["trust"].clone();
            states.push((format!("{k} sweeps"), p.net.clone(), trust));
        }
        let widths = net0.mlp_view().expect("an MLP").widths;
        let unit = widths[1..widths.len() - 1]
            .iter()
            .copied()
            .max()
            .unwrap_or(1);
        for (state, net, trust) in states {
            let mut tape = Tape::new();
            let mut g = vec![0.0; net.num_params()];
            let t_gd = median_ms(reps, || {
                nets::loss_and_grad(
                    &net,
                    &prob.loss,
                    prob.train.inputs(),
                    prob.train.targets(),
                    &mut tape,
                    &mut g,
                )
                .expect("gradient");
            });
            for l in 0..widths.len() - 2 {
                let blk = Block::new(&net, &prob.loss, &prob.train, l);
                for dir in [blk.grad_dir(&prob.loss), blk.bmm_dir(&prob.loss)] {
                    let b = run_dir(
                        &prob,
                        &net,
                        &blk,
                        &dir,
                        &state,
                        (reps, points, kmax),
                        &mut chk,
                    );
                    summary.push((
                        pname.to_string(),
                        state.clone(),
                        l,
                        dir.name,
                        dir.scale,
                        b,
                        t_gd,
                        trust[l].as_f64(),
                        blk.gemm_units(unit),
                        gd_units(&net, unit),
                    ));
                }
            }
        }
    }
    println!(
        "\n## Best over the abar grid (decrease @ a) and median over the grid of the wall ms per call\n"
    );
    println!(
        "| problem | state | block | direction | scale | Taylor | ray | ray/T | best sampled phi | ms T | ms R | ms T / R at own best | ms GD step | GEMM units ray / GD | block-mm trust | ray at a_R: a g_T / a (slope_R - g_T) / a² Q_R | kinks / rad/|m| at a_R |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (pname, state, l, dname, scale, b, t_gd, trust, gu, gd) in &summary {
        let f = |x: (f64, f64)| format!("{:.3e} @ {:.2e}", x.1, x.0);
        let r = if b.taylor.1 < 0.0 {
            format!("{:.2}", b.ray.1 / b.taylor.1)
        } else if b.ray.1 < 0.0 {
            "inf".into()
        } else {
            "-".into()
        };
        let trust = if *dname == "block-mm" {
            trust.map_or("-".into(), |t| format!("{t:.3}"))
        } else {
            "-".into()
        };
        println!(
            "| {pname} | {state} | {l} | {dname} | {scale:.3e} | {} | {} | {r} | {} | {:.3} | {:.3} | {:.3} / {:.3} | {t_gd:.3} | {gu:.2} / {gd:.2} | {trust} | {:.2e} / {:.2e} / {:.2e} | {:.3} / {:.2e} |",
            f(b.taylor),
            f(b.ray),
            f(b.truth),
            median(&b.t_taylor),
            median(&b.t_ray),
            b.t_at_best[0],
            b.t_at_best[1],
            b.split[0],
            b.split[1],
            b.split[2],
            b.kinks,
            b.widen,
        );
    }
    let [wt, wr] = chk.worst;
    if chk.violations > 0 {
        println!(
            "\n!!! {} VIOLATIONS (worst relative margins Taylor {wt:.3e}, ray {wr:.3e}) !!!",
            chk.violations
        );
    } else {
        println!(
            "\nNo violation (threshold -1e-12): worst relative margin (bound - phi)/max(1, |phi|): Taylor {wt:.3e}, ray {wr:.3e}"
        );
    }
}
