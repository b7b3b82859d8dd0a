//! Per-class results of classification runs: the confusion matrix of the weights each
//! solver hands back on the test set (the training set if there is none), per-class
//! accuracy (recall), and their rendering: a markdown section of `report.md` and one
//! SVG heatmap per (problem, solver, seed).
//!
//! Convention: `confusion[t][p]` counts samples of true class `t` predicted as `p`
//! (prediction = argmax of the network's outputs, first maximum on ties, as
//! `nets::accuracy`). Per-class accuracy of class `t` is `confusion[t][t] / sum_p
//! confusion[t][p]` (undefined, `null`, for a class with no sample).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use autodiff::Real;
use nalgebra::DMatrix;
use nets::Targets;
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::outdir::write_atomic;
use crate::results::ResultsFile;

/// Confusion matrix and per-class accuracy of one run's final weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// `"test"` or `"train"`: which set the matrix was computed on.
    pub set: String,
    /// `confusion[t][p]`: samples of true class `t` predicted as class `p`.
    pub confusion: Vec<Vec<u64>>,
    /// Per-class accuracy (recall) in [0, 1]; `None` for a class with no sample.
    pub per_class_accuracy: Vec<Option<f64>>,
}

impl ClassificationMetrics {
    /// From network `outputs` (classes x N) and integer labels. `None` for dense targets,
    /// a shape mismatch or a label out of range (no panic on user data).
    pub fn from_outputs<T: Real>(
        outputs: &DMatrix<T>,
        targets: &Targets<T>,
        set: &str,
    ) -> Option<Self> {
        let Targets::Labels { labels, classes } = targets else {
            return None;
        };
        let k = *classes;
        if outputs.nrows() != k || outputs.ncols() != labels.len() || k == 0 {
            return None;
        }
        let mut confusion = vec![vec![0u64; k]; k];
        for (j, &t) in labels.iter().enumerate() {
            if t >= k {
                return None;
            }
            let col = outputs.column(j);
            let mut best = 0;
            for i in 1..k {
                if col[i].to_f64() > col[best].to_f64() {
                    best = i;
                }
            }
            confusion[t][best] += 1;
        }
        let per_class_accuracy = confusion
            .iter()
            .enumerate()
            .map(|(t, row)| {
                let n: u64 = row.iter().sum();
                (n > 0).then(|| row[t] as f64 / n as f64)
            })
            .collect();
        Some(Self {
            set: set.to_string(),
            confusion,
            per_class_accuracy,
        })
    }

    /// Overall accuracy: trace over total (`None` if empty).
    pub fn accuracy(&self) -> Option<f64> {
        // Saturating, and a short row has no diagonal entry: a matrix built by hand (the
        // fields are public) must not panic here.
        let sum = |it: &mut dyn Iterator<Item = u64>| it.fold(0u64, u64::saturating_add);
        let total = sum(&mut self.confusion.iter().flatten().copied());
        let right =
            sum(&mut (0..self.confusion.len()).filter_map(|i| self.confusion[i].get(i).copied()));
        (total > 0).then(|| right as f64 / total as f64)
    }
}

/// The metrics of a trained network problem: on the test set if any, else on the
/// training set. `None` for regression targets or if the forward pass fails.
pub fn metrics_of<T: Real>(problem: &solvers::NetProblem<T>) -> Option<ClassificationMetrics> {
    let (data, set) = match &problem.test {
        Some(t) => (t, "test"),
        None => (&problem.train, "train"),
    };
    let out = problem.net.predict(data.inputs()).ok()?;
    ClassificationMetrics::from_outputs(&out, data.targets(), set)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |a| format!("{:.1}", 100.0 * a))
}

/// The `## Per-class results` section of `report.md`: per classification run, the
/// per-class accuracy table (one row per solver) and a link to its heatmap. Empty if
/// no run has metrics.
pub fn render_classification_section(results: &ResultsFile, heatmaps: &[PathBuf]) -> String {
    let runs: Vec<_> = results
        .runs
        .iter()
        .filter_map(|r| r.classification.as_ref().map(|m| (r, m)))
        .collect();
    if runs.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## Per-class results (final weights)\n\n");
    let _ = writeln!(
        s,
        "Per-class accuracy (%) = recall of each true class on the test set (train set if \
         none); confusion matrices as heatmaps (rows: true class, columns: predicted).\n"
    );
    let mut problems: Vec<&str> = runs.iter().map(|(r, _)| r.problem.as_str()).collect();
    problems.dedup();
    for p in problems {
        let rows: Vec<_> = runs.iter().filter(|(r, _)| r.problem == p).collect();
        let k = rows
            .iter()
            .map(|(_, m)| m.confusion.len())
            .max()
            .unwrap_or(0);
        let _ = writeln!(s, "### {p}\n");
        let head: Vec<String> = (0..k).map(|c| c.to_string()).collect();
        let _ = writeln!(
            s,
            "| solver | seed | overall | {} | heatmap |",
            head.join(" | ")
        );
        let _ = writeln!(s, "|---|---|---|{}---|", "---|".repeat(k));
        for (r, m) in rows {
            let cells: Vec<String> = (0..k)
                .map(|c| pct(m.per_class_accuracy.get(c).copied().flatten()))
                .collect();
            let file = heatmap_name(&r.problem, &r.solver, r.seed);
            let link = heatmaps
                .iter()
                .find(|h| h.to_string_lossy() == file)
                .map_or("-".to_string(), |h| format!("[svg]({})", h.display()));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {link} |",
                r.solver,
                r.seed,
                pct(m.accuracy()),
                cells.join(" | ")
            );
        }
        s.push('\n');
    }
    s
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Relative path of the heatmap of one run.
pub fn heatmap_name(problem: &str, solver: &str, seed: u64) -> String {
    format!(
        "confusion/{}__{}__seed{seed}.svg",
        sanitize(problem),
        sanitize(solver)
    )
}

/// The confusion matrix as an SVG heatmap: cell shade = fraction of the true class's
/// samples (row-normalised, white 0 to dark blue 1), raw count printed in each cell.
pub fn confusion_svg(title: &str, m: &ClassificationMetrics) -> String {
    let k = m.confusion.len();
    let cell = 36usize;
    let (left, top) = (60usize, 50usize);
    let (w, h) = (left + k * cell + 20, top + k * cell + 40);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="10">"#
    );
    let esc = title.replace('&', "&amp;").replace('<', "&lt;");
    let _ = writeln!(s, r#"<text x="{left}" y="18" font-size="12">{esc}</text>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="36">predicted class (columns), true class (rows), set: {}</text>"#,
        m.set.replace('&', "&amp;").replace('<', "&lt;")
    );
    for (t, row) in m.confusion.iter().enumerate() {
        let n = row.iter().fold(0u64, |a, &c| a.saturating_add(c)).max(1);
        let y = top + t * cell;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{t}</text>"#,
            left - 6,
            y + cell / 2 + 4
        );
        for (p, &c) in row.iter().enumerate() {
            let f = c as f64 / n as f64;
            let shade = |lo: f64, hi: f64| (lo + (hi - lo) * f).round() as u8;
            let (r, g, b) = (shade(255.0, 8.0), shade(255.0, 48.0), shade(255.0, 107.0));
            let x = left + p * cell;
            let fg = if f > 0.5 { "white" } else { "black" };
            let _ = writeln!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#{r:02x}{g:02x}{b:02x}" stroke="#ccc"/><text x="{}" y="{}" text-anchor="middle" fill="{fg}">{c}</text>"##,
                x + cell / 2,
                y + cell / 2 + 4
            );
        }
    }
    for p in 0..k {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{p}</text>"#,
            left + p * cell + cell / 2,
            top + k * cell + 14
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Writes one heatmap per run with metrics under `dir/confusion/`; returns the paths
/// relative to `dir`.
pub fn write_confusion_heatmaps(
    dir: &Path,
    results: &ResultsFile,
) -> Result<Vec<PathBuf>, BenchError> {
    let mut out = Vec::new();
    for r in &results.runs {
        let Some(m) = &r.classification else { continue };
        let rel = heatmap_name(&r.problem, &r.solver, r.seed);
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BenchError::io(parent, e))?;
        }
        let title = format!("{} / {} / seed {}", r.problem, r.solver, r.seed);
        write_atomic(&path, confusion_svg(&title, m).as_bytes())?;
        out.push(PathBuf::from(rel));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_argmax_per_true_class() {
        // 3 classes, 4 samples: true 0,0,1,2; predicted 0,1,1,1.
        let out = DMatrix::from_column_slice(
            3,
            4,
            &[
                0.9, 0.1, 0.0, //
                0.2, 0.7, 0.1, //
                0.0, 1.0, 0.5, //
                0.1, 0.3, 0.2,
            ],
        );
        let t = Targets::<f64>::Labels {
            labels: vec![0, 0, 1, 2],
            classes: 3,
        };
        let m = ClassificationMetrics::from_outputs(&out, &t, "test").unwrap();
        assert_eq!(
            m.confusion,
            vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 1, 0]]
        );
        assert_eq!(m.per_class_accuracy, vec![Some(0.5), Some(1.0), Some(0.0)]);
        assert_eq!(m.accuracy(), Some(0.5));
        let svg = confusion_svg("p / s", &m);
        assert_eq!(svg.matches("<rect").count(), 9);
        // Label out of range or shape mismatch: None, no panic.
        let bad = Targets::<f64>::Labels {
            labels: vec![0, 0, 1, 3],
            classes: 3,
        };
        assert!(ClassificationMetrics::from_outputs(&out, &bad, "test").is_none());
        let short = Targets::<f64>::Labels {
            labels: vec![0],
            classes: 3,
        };
        assert!(ClassificationMetrics::from_outputs(&out, &short, "test").is_none());
    }

    #[test]
    fn empty_class_has_no_accuracy() {
        let out = DMatrix::from_column_slice(2, 1, &[1.0f32, 0.0]);
        let t = Targets::<f32>::Labels {
            labels: vec![0],
            classes: 2,
        };
        let m = ClassificationMetrics::from_outputs(&out, &t, "train").unwrap();
        assert_eq!(m.per_class_accuracy, vec![Some(1.0), None]);
    }
}
