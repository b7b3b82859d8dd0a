//! Dolan–Moré performance profiles (Dolan & Moré, "Benchmarking optimization software
//! with performance profiles", Math. Programming 91, 2002, section 2) over
//! (problem, seed) instances, drawn as SVG.
//!
//! For instance `i` and solver `m`, `t_{i,m}` is the solver wall time to the instance's
//! target ([`crate::analysis`]: 99% of the best decrease any solver made on that
//! instance), +infinity when never reached (or the run was skipped, failed, diverged
//! first). The ratio is `r_{i,m} = t_{i,m} / min_m t_{i,m}` and the profile of `m` is
//! `rho_m(tau) = |{i : r_{i,m} <= tau}| / #instances`: `rho_m(1)` is the fraction of
//! instances on which `m` was fastest, `rho_m(tau)` for large tau the fraction it
//! solved at all.
//!
//! Problems are grouped by the set of solvers that ran on them (in practice: network
//! problems and NMF problems), one profile per group, so every solver of a profile is
//! measured on every instance. Solvers that train another objective on some problem of
//! the group (Taylor ADMM's hinge on cross-entropy) are left out of its profile.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::BenchError;
use crate::analysis::{first_reaching, instance_targets, ranked};
use crate::outdir::write_atomic;
use crate::plots::{PLOT_SIZE, draw_styled_line, solver_style};
use crate::problems::{ProblemKind, find_problem};
use crate::results::{ResultsFile, RunResult, RunStatus};

/// The performance profile of one group of problems.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// `network`, `nmf`, or `group-k` for problems outside the registry.
    pub label: String,
    /// Problems of the group.
    pub problems: Vec<String>,
    /// (problem, seed) instances.
    pub instances: Vec<(String, u64)>,
    /// Solvers in the profile, order of first appearance.
    pub solvers: Vec<String>,
    /// `ratios[m][i]`: performance ratio of solver m on instance i (+infinity: not
    /// solved).
    pub ratios: Vec<Vec<f64>>,
    /// Solvers left out (they train another objective on some problem of the group).
    pub excluded: Vec<String>,
}

impl Profile {
    /// `rho_m(tau)`: the fraction of instances solver `m` solved within `tau` times the
    /// best time.
    pub fn rho(&self, m: usize, tau: f64) -> f64 {
        let r = &self.ratios[m];
        if r.is_empty() {
            return 0.0;
        }
        r.iter().filter(|x| **x <= tau).count() as f64 / r.len() as f64
    }

    /// The largest finite ratio (1 if none).
    pub fn max_ratio(&self) -> f64 {
        self.ratios
            .iter()
            .flatten()
            .copied()
            .filter(|x| x.is_finite())
            .fold(1.0, f64::max)
    }
}

fn group_label(problem: &str, k: usize) -> String {
    match find_problem(problem).map(|p| p.kind) {
        Ok(ProblemKind::Network { .. }) => "network".into(),
        Ok(ProblemKind::Nmf { .. }) => "nmf".into(),
        Err(_) => format!("group-{k}"),
    }
}

/// Time to the instance's target, +infinity if the run does not reach it.
fn time_to_target(run: Option<&RunResult>, target: f64) -> f64 {
    match run {
        Some(r)
            if !matches!(
                r.status,
                RunStatus::Skipped { .. } | RunStatus::Failed { .. }
            ) =>
        {
            first_reaching(r, target).map_or(f64::INFINITY, |x| x.0)
        }
        _ => f64::INFINITY,
    }
}

/// The profiles of a results document with the target rule of `tau`.
pub fn profiles(results: &ResultsFile, tau: f64) -> Vec<Profile> {
    let mut problems: Vec<&str> = Vec::new();
    for r in &results.runs {
        if !problems.contains(&r.problem.as_str()) {
            problems.push(&r.problem);
        }
    }
    // Group problems by their solver set.
    let mut groups: Vec<(Vec<String>, Vec<&str>)> = Vec::new();
    for p in problems {
        let mut set: Vec<String> = Vec::new();
        for r in results.runs.iter().filter(|r| r.problem == p) {
            if !set.contains(&r.solver) {
                set.push(r.solver.clone());
            }
        }
        let mut key = set.clone();
        key.sort();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ps)) => ps.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    let mut out: Vec<Profile> = Vec::new();
    for (k, (_, probs)) in groups.into_iter().enumerate() {
        let runs: Vec<&RunResult> = results
            .runs
            .iter()
            .filter(|r| probs.contains(&r.problem.as_str()))
            .collect();
        let mut solvers: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        for r in &runs {
            if r.trained_objective.is_some() {
                if !excluded.contains(&r.solver) {
                    excluded.push(r.solver.clone());
                }
            } else if !solvers.contains(&r.solver) {
                solvers.push(r.solver.clone());
            }
        }
        solvers.retain(|s| !excluded.contains(s));
        let mut instances = Vec::new();
        let mut ratios = vec![Vec::new(); solvers.len()];
        for p in &probs {
            let mine: Vec<&RunResult> = runs.iter().copied().filter(|r| r.problem == *p).collect();
            for (seed, target) in instance_targets(&mine, tau) {
                let times: Vec<f64> = solvers
                    .iter()
                    .map(|s| {
                        let run = mine
                            .iter()
                            .copied()
                            .find(|r| r.seed == seed && &r.solver == s && ranked(r));
                        time_to_target(run, target)
                    })
                    .collect();
                let best = times.iter().copied().fold(f64::INFINITY, f64::min);
                if !best.is_finite() {
                    continue;
                }
                instances.push((p.to_string(), seed));
                for (m, t) in times.iter().enumerate() {
                    // 0 / 0 (target met at the start) counts as the best.
                    let r = if *t <= best { 1.0 } else { t / best };
                    ratios[m].push(r);
                }
            }
        }
        let mut label = group_label(probs[0], k + 1);
        if out.iter().any(|p| p.label == label) {
            label = format!("{label}-{}", k + 1);
        }
        out.push(Profile {
            label,
            problems: probs.iter().map(|s| s.to_string()).collect(),
            instances,
            solvers,
            ratios,
            excluded,
        });
    }
    out
}

/// The step curve of solver `m` in (log2 tau, rho) coordinates, from tau = 1 to
/// `2^x_max`.
fn step_points(p: &Profile, m: usize, x_max: f64) -> Vec<(f64, f64)> {
    let mut finite: Vec<f64> = p.ratios[m]
        .iter()
        .copied()
        .filter(|r| r.is_finite())
        .collect();
    finite.sort_by(f64::total_cmp);
    finite.dedup();
    let mut pts = vec![(0.0, p.rho(m, 1.0))];
    for r in finite.into_iter().filter(|r| *r > 1.0) {
        let x = r.log2();
        let prev = pts.last().map_or(0.0, |q| q.1);
        pts.push((x, prev));
        pts.push((x, p.rho(m, r)));
    }
    let last = pts.last().map_or(0.0, |q| q.1);
    pts.push((x_max, last));
    pts
}

/// Renders a profile as SVG text.
pub fn render_profile(p: &Profile) -> Result<String, BenchError> {
    let file = format!("profile-{}.svg", p.label);
    let e = |err: DrawingAreaErrorKind<_>| BenchError::Plot {
        file: file.clone(),
        message: err.to_string(),
    };
    let x_max = (p.max_ratio().log2() * 1.1).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let title = format!(
            "performance profile ({}): {} instances (problem x seed)",
            p.label,
            p.instances.len()
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..1.02)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("tau: time to target within tau x the best (log2 scale)")
            .y_desc("fraction of instances")
            .x_label_formatter(&|v| crate::analysis::fmt_sig(Some(2f64.powf(*v)), 3))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        for (m, s) in p.solvers.iter().enumerate() {
            let pts = step_points(p, m, x_max);
            draw_styled_line(&mut chart, &pts, solver_style(m), Some(s), &file)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

/// A profile written to disk.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileFile {
    /// The profile.
    pub profile: Profile,
    /// Path relative to the run directory (`plots/profile-<label>.svg`).
    pub relative_path: PathBuf,
}

/// Writes every profile with at least one instance into `dir/plots/`.
pub fn write_profiles(
    dir: &Path,
    results: &ResultsFile,
    tau: f64,
) -> Result<Vec<ProfileFile>, BenchError> {
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|e| BenchError::io(&plots_dir, e))?;
    let mut out = Vec::new();
    for p in profiles(results, tau) {
        if p.instances.is_empty() || p.solvers.is_empty() {
            continue;
        }
        let name = format!("profile-{}.svg", p.label);
        write_atomic(&plots_dir.join(&name), render_profile(&p)?.as_bytes())?;
        out.push(ProfileFile {
            profile: p,
            relative_path: PathBuf::from("plots").join(name),
        });
    }
    Ok(out)
}
