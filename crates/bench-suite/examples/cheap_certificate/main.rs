//! Measurement (session 15): is a chord/tangent certificate of the TOP hidden block tight
//! enough to replace the Taylor-model enclosure there? Nothing here is wired into a
//! solver; derivation and results in docs/PERFORMANCE.md, "A chord/tangent certificate
//! for the top block (session 15, measurement)".
//!
//! For `phi(a) = F(W + a D)` (`D` = weight `V`, bias `β` of the top hidden block, zero
//! elsewhere), with `Z(a) = Z0 + a P`, `P = V A_in + β`, `ΔA(a) = relu(Z(a)) - relu(Z0)`
//! and `C = W2ᵀ g` (`g` = gradient of the data term in the logits at `a = 0`, the loss's
//! `1/N` included), the bound on `[0, ā]` is
//! `phi(0) + a (ℓ + l2 <W, V>) + a² (Q + (l2/2) ||V||²)` with
//! - `ℓ = Σ_{C>0} C ΔA(ā)/ā + Σ_{C<0} C d` (chord above, tangent `d = relu'(Z0+; P) P` below;
//!   `ΔA` is convex in `a` and 0 at 0);
//! - `Q = w/4 Σ_s (||W2 u_s|| + ||W2||₂ ||e_s||)²` ("basic": Böhning's `H <= I/2`, `w` the
//!   sample weight; `u_s` the exact slope of the entries that do not cross the kink on
//!   `[0, ā]`, `e_s` the crossing ones, each in `[min(0,P), max(0,P)]`), or
//! - `Q = w/2 Σ_s min(λ_s (||Π W2 u_s|| + ||Π W2||₂ ||e_s||)², Σ_{j≠c} p̄_j (|m_j - m_c| +
//!   Σ_i |W2_ji - W2_ci| r_i)²)` ("sharp": `Π = I - 11ᵀ/K`, since `H 1 = 0`;
//!   `λ_s = min(1/2, max_k 2 sup p_k(1 - p_k))` (Gershgorin); the second term bounds
//!   `Var_p(δ) <= Σ_{j≠c} p_j (δ_j - δ_c)²`, `c` the largest logit at 0, with
//!   `W2 (u + e) ∈ m ± |W2| r`; `p̄`, `inf p` the softmax's range over the box of logits
//!   `z0 + a W2 (u + e)`, `a ∈ [0, ā]`, `e` in its box).
//!
//! Exact arithmetic is assumed for this bound (no rounding slack); the Taylor enclosure
//! (`enclose_from_layer`, as block MM calls it: kept input, output and direction product
//! given) carries its full floating-point slack. Every bound is checked against the true
//! `phi` at its minimiser (`Sequential::objective` after `apply_step`) and at `--points`
//! equally spaced points of `[0, ā]` (forward from the block); a violation is printed
//! loudly.
//!
//! Run: `nice -n 10 cargo run --release -p bench-suite --example cheap_certificate`
//! Options: `--problems digits-mlp,mnist-synth-small` `--sweeps 5,25` (block-mm sweeps of the
//! later states) `--reps 7` (timing samples per figure, each the mean over >= 20 ms of
//! calls; the median is printed) `--points 50` (soundness check points per region).

#[path = "../common/mod.rs"]
mod common;

mod bound;

use autodiff::Tape;
use bound::{Block, CheapWs, Dir};
use majorize::enclosure::{
    EnclosureRequest, EnclosureWorkspace, FromLayer, QuadraticEnclosure, apply_step,
    enclose_from_layer,
};
use nalgebra::DMatrix;
use nets::{Dataset, Loss, Sequential};
use solvers::mm::BlockMmConfig;
use solvers::{Budget, Driver, Solver};
use std::time::Instant;

const USAGE: &str = "usage: cheap_certificate [--problems digits-mlp,mnist-synth-small] \
[--sweeps 5,25] [--reps 7] [--points 50]";

/// Wall milliseconds per call of `f`: the median over `reps` samples, each the mean over
/// calls repeated for at least 20 ms (the thread's CPU clock ticks every 4 ms here, too
/// coarse for single calls).
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

/// `phi(a)` as the driver records it: `apply_step`, then `Sequential::objective`.
fn phi_exact(blk: &Block, net: &mut Sequential<f64>, dir: &Dir, a: f64, prob: &Prob) -> f64 {
    apply_step(net, &blk.base, std::slice::from_ref(&dir.flat), &[a]).expect("apply");
    net.objective(&prob.loss, prob.train.inputs(), prob.train.targets())
        .expect("objective")
}

/// A problem: data, loss, and its networks at the two states.
struct Prob {
    name: String,
    train: Dataset<f64>,
    loss: Loss,
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

/// Best certified decrease over the grid per bound: (Taylor, basic, sharp, true best).
#[derive(Default)]
struct Best {
    taylor: (f64, f64),
    basic: (f64, f64),
    sharp: (f64, f64),
    truth: (f64, f64),
    t_taylor: Vec<f64>,
    t_basic: Vec<f64>,
    t_sharp: Vec<f64>,
    /// Wall ms of the per-direction setup `J` ([`Block::jvp_into`], kept buffers).
    t_setup: f64,
    /// Wall ms per call of each bound at its own best `abar`.
    t_at_best: [f64; 3],
}

fn keep(best: &mut (f64, f64), a: f64, dec: f64) {
    if dec < best.1 {
        *best = (a, dec);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_dir(
    prob: &Prob,
    net: &Sequential<f64>,
    blk: &Block,
    dir: &Dir,
    state: &str,
    (reps, points): (usize, u32),
    violations: &mut usize,
    worst: &mut [f64; 3],
) -> Best {
    let w = prob.loss.sample_weight(prob.train.len());
    let mut ews = EnclosureWorkspace::new();
    let mut cws = CheapWs::default();
    let mut scratch = net.clone();
    let (mut masked, mut jbuf) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let mut best = Best {
        t_setup: median_ms(reps, || {
            blk.jvp_into(&dir.p, &mut masked, &mut jbuf);
            std::hint::black_box(&jbuf);
        }),
        ..Best::default()
    };
    for kexp in -8..=8 {
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
            output: Some(&blk.z0),
            output_dir: Some(&dir.p),
        };
        let enc = |ws: &mut EnclosureWorkspace| {
            enclose_from_layer(&req, Some(blk.f0), &from, ws).expect("enclosure")
        };
        let e = enc(&mut ews);
        let t_t = median_ms(reps, || {
            std::hint::black_box(enc(&mut ews));
        });
        let cb = blk.cheap(dir, abar, w, false, &mut cws);
        let cs = blk.cheap(dir, abar, w, true, &mut cws);
        let t_b = median_ms(reps, || {
            std::hint::black_box(blk.cheap(dir, abar, w, false, &mut cws));
        });
        let t_s = median_ms(reps, || {
            std::hint::black_box(blk.cheap(dir, abar, w, true, &mut cws));
        });
        let slope = cb.lin + dir.pen1;
        let (qb, qs) = (cb.quad + dir.pen2, cs.quad + dir.pen2);
        let (at, dt) = argmin_taylor(&e, abar);
        let (ab, db) = argmin_quad(slope, qb, abar);
        let (as_, ds) = argmin_quad(slope, qs, abar);
        // Soundness: each bound against phi at its minimiser (the driver's record) and at
        // `points` points of [0, abar] (forward from the block).
        let ub_t = |a: f64| e.upper_bound(&[a]).expect("in the box");
        let ub_b = |a: f64| blk.f0 + a * slope + a * a * qb;
        let ub_s = |a: f64| blk.f0 + a * slope + a * a * qs;
        let mut check = |which: usize, a: f64, bound: f64, phi: f64| {
            let what = ["taylor", "basic", "sharp"][which];
            let margin = (bound - phi) / phi.abs().max(1.0);
            worst[which] = worst[which].min(margin);
            if margin < -1e-12 {
                *violations += 1;
                println!(
                    "!!! VIOLATION: {} {state} {} abar {abar:.3e}: {what} bound {bound:.15e} < phi({a:.6e}) = {phi:.15e}",
                    prob.name, dir.name
                );
            }
        };
        let mut true_at = [0.0; 3];
        for (i, (a, ub)) in [
            (at, &ub_t as &dyn Fn(f64) -> f64),
            (ab, &ub_b),
            (as_, &ub_s),
        ]
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
            check(1, a, ub_b(a), phi);
            check(2, a, ub_s(a), phi);
            keep(&mut best.truth, a, phi - blk.f0);
        }
        for (i, (b, a, dec, t)) in [
            (&mut best.taylor, at, dt, t_t),
            (&mut best.basic, ab, db, t_b),
            (&mut best.sharp, as_, ds, t_s),
        ]
        .into_iter()
        .enumerate()
        {
            if dec < b.1 {
                *b = (a, dec);
                best.t_at_best[i] = t;
            }
        }
        best.t_taylor.push(t_t);
        best.t_basic.push(t_b);
        best.t_sharp.push(t_s);
        let ratio = |x: f64| {
            if dt < 0.0 {
                format!("{:.2}", x / dt)
            } else {
                "-".into()
            }
        };
        println!(
            "| {} | {state} | {} | 1e{:+.1} | {abar:.3e} | {dt:.3e} | {db:.3e} | {ds:.3e} | {} | {} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3} | {:.3} | {:.3} |",
            prob.name,
            dir.name,
            f64::from(kexp) / 2.0,
            ratio(db),
            ratio(ds),
            true_at[0],
            true_at[2],
            e.gradient[0],
            slope,
            e.quad_upper[(0, 0)],
            qb,
            qs,
            t_t,
            t_b,
            t_s
        );
    }
    best
}

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &["--problems", "--sweeps", "--reps", "--points"],
        &[],
        false,
    );
    let problems = opts
        .get("--problems")
        .unwrap_or("digits-mlp,mnist-synth-small".into());
    let sweeps: Vec<u64> = opts.list("--sweeps", "5,25");
    let reps: usize = opts.num("--reps", 7);
    let points: u32 = opts.num("--points", 50).max(1);
    println!("# chord/tangent certificate of the top hidden block vs the Taylor enclosure");
    println!(
        "\nColumns: certified decrease `min bound - phi(0)` of the Taylor enclosure, the basic \
         and the sharp chord/tangent bound; their ratios to Taylor's; the true decrease \
         phi(a) - phi(0) at Taylor's and at the sharp bound's minimiser; slopes (Taylor g, chord/tangent incl. penalty); curvatures \
         (Taylor Q_hi, basic, sharp); wall ms per call (median of {reps} samples).\n"
    );
    println!(
        "| problem | state | direction | abar/scale | abar | Taylor | basic | sharp | basic/T | sharp/T | true at a_T | true at a_S | g_T | slope_C | Q_T | Q_basic | Q_sharp | ms T | ms basic | ms sharp |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    let (mut violations, mut worst) = (0usize, [f64::INFINITY; 3]);
    for pname in problems.split(',') {
        let (train, net0, loss) = common::problem(&opts, pname);
        let prob = Prob {
            name: pname.to_string(),
            train,
            loss,
        };
        // The states: the initial weights, then after each number of sweeps of block-mm
        // (defaults, seed 0, one thread), with block-mm's trust region there.
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
        for (state, net, trust) in states {
            let blk = Block::new(&net, &prob.loss, &prob.train);
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
            for dir in [blk.grad_dir(&prob.loss), blk.bmm_dir(&prob.loss)] {
                let b = run_dir(
                    &prob,
                    &net,
                    &blk,
                    &dir,
                    &state,
                    (reps, points),
                    &mut violations,
                    &mut worst,
                );
                summary.push((
                    pname.to_string(),
                    state.clone(),
                    dir.name,
                    dir.scale,
                    b,
                    t_gd,
                    trust[blk.dense].as_f64(),
                ));
            }
        }
    }
    println!(
        "\n## Best over the abar grid (decrease, at a) and median over the grid of the wall ms per call\n"
    );
    println!(
        "| problem | state | direction | scale | Taylor | basic | sharp | basic/T | sharp/T | best sampled phi | ms T | ms basic | ms sharp | ms T / basic / sharp at own best | ms setup J | ms GD step | block-mm trust |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (pname, state, dname, scale, b, t_gd, trust) in &summary {
        let f = |x: (f64, f64)| format!("{:.3e} @ {:.2e}", x.1, x.0);
        let r = |x: f64| {
            if b.taylor.1 < 0.0 {
                format!("{:.2}", x / b.taylor.1)
            } else {
                "-".into()
            }
        };
        let trust = if *dname == "block-mm" {
            trust.map_or("-".into(), |t| format!("{t:.3}"))
        } else {
            "-".into()
        };
        println!(
            "| {pname} | {state} | {dname} | {scale:.3e} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} / {:.3} | {:.3} | {t_gd:.3} | {trust} |",
            f(b.taylor),
            f(b.basic),
            f(b.sharp),
            r(b.basic.1),
            r(b.sharp.1),
            f(b.truth),
            med(&b.t_taylor),
            med(&b.t_basic),
            med(&b.t_sharp),
            b.t_at_best[0],
            b.t_at_best[1],
            b.t_at_best[2],
            b.t_setup,
        );
    }
    let [wt, wb, ws] = worst;
    if violations > 0 {
        println!(
            "\n!!! {violations} VIOLATIONS (worst relative margins Taylor {wt:.3e}, basic {wb:.3e}, sharp {ws:.3e}) !!!"
        );
    } else {
        println!(
            "\nNo violation (threshold -1e-12): worst relative margin (bound - phi)/max(1, |phi|): Taylor {wt:.3e}, basic {wb:.3e}, sharp {ws:.3e}"
        );
    }
}
