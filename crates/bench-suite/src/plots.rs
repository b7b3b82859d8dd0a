//! SVG plots of a results document, one set per problem, drawn with `plotters` (SVG
//! backend only: text is written as SVG `<text>` elements, so no font files or system
//! libraries are needed; the viewer renders the text).
//!
//! Per problem: the training objective against epochs and against solver wall time
//! (log-scale y), and the test accuracy against wall time when any run records one.
//! One line per (solver, seed): every seed of a solver is drawn in the solver's style
//! (no averaging, so the spread over seeds stays visible); the legend has one entry per
//! solver. Non-finite objectives are left out; objectives <= 0 are drawn at the lower
//! edge of the log axis.
//!
//! Styles ([`solver_style`]): the 10 Tableau colours, and since they repeat from the 11th
//! solver on, every solver also gets a marker shape (4 shapes, about 8 markers per line)
//! and solvers 11-20 are dashed: (colour, marker, dash) is unique for the first 20
//! solvers of a plot.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::BenchError;
use crate::analysis::fmt_sig;
use crate::outdir::write_atomic;
use crate::results::{ResultsFile, RunResult, TraceRecord};

/// Width and height of every plot, pixels.
pub const PLOT_SIZE: (u32, u32) = (820, 520);

/// Colours of successive solvers (the Tableau 10 palette), cycled.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Marker drawn along a solver's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerShape {
    /// Filled circle.
    Circle,
    /// Triangle.
    Triangle,
    /// Cross.
    Cross,
    /// Hollow circle.
    Ring,
}

/// How one solver is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolverStyle {
    /// Line and marker colour.
    pub color: RGBColor,
    /// Marker shape.
    pub marker: MarkerShape,
    /// Dashed line.
    pub dashed: bool,
}

/// The style of the solver at `index` (order of first appearance in a plot): colour
/// `index mod 10`, marker `index mod 4`, dashed for indices 10-19 (and 30-39, ...).
pub fn solver_style(index: usize) -> SolverStyle {
    const SHAPES: [MarkerShape; 4] = [
        MarkerShape::Circle,
        MarkerShape::Triangle,
        MarkerShape::Cross,
        MarkerShape::Ring,
    ];
    SolverStyle {
        color: PALETTE[index % PALETTE.len()],
        marker: SHAPES[index % SHAPES.len()],
        dashed: (index / PALETTE.len()) % 2 == 1,
    }
}

/// A marker element at `at` (any coordinate type), dynamically typed so that every
/// shape fits one series.
pub(crate) fn marker_element<'a, DB: DrawingBackend, C: Clone + 'static>(
    shape: MarkerShape,
    at: C,
    color: RGBColor,
) -> DynElement<'a, DB, C> {
    match shape {
        MarkerShape::Circle => Circle::new(at, 3, color.filled()).into_dyn(),
        MarkerShape::Triangle => TriangleMarker::new(at, 4, color.filled()).into_dyn(),
        MarkerShape::Cross => Cross::new(at, 3, color.stroke_width(2)).into_dyn(),
        MarkerShape::Ring => Circle::new(at, 3, color.stroke_width(1)).into_dyn(),
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws one line in `style` (dashed or solid, with markers at about 8 evenly spaced
/// points), labelled in the legend when `label` is given.
pub(crate) fn draw_styled_line<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    points: &[(f64, f64)],
    style: SolverStyle,
    label: Option<&str>,
    file: &str,
) -> Result<(), BenchError> {
    let e = |err: DrawingAreaErrorKind<_>| plot_err(file, err);
    let line = style.color.stroke_width(2);
    let drawn = if style.dashed {
        chart
            .draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, line))
            .map_err(e)?
    } else {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), line))
            .map_err(e)?
    };
    if let Some(label) = label {
        let (color, marker, dashed) = (style.color, style.marker, style.dashed);
        drawn.label(label).legend(move |(x, y)| {
            let seg = vec![(0, 0), (24, 0)];
            let path = if dashed {
                DashedPathElement::new(seg, 5, 3, color.stroke_width(2)).into_dyn()
            } else {
                PathElement::new(seg, color.stroke_width(2)).into_dyn()
            };
            EmptyElement::at((x, y)) + path + marker_element(marker, (12, 0), color)
        });
    }
    let stride = (points.len() / 8).max(1);
    chart
        .draw_series(
            points
                .iter()
                .step_by(stride)
                .map(|&p| marker_element(style.marker, p, style.color)),
        )
        .map_err(e)?;
    Ok(())
}

/// What a plot shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    /// Training objective (log y) against epochs.
    ObjectiveVsEpochs,
    /// Training objective (log y) against solver wall time.
    ObjectiveVsTime,
    /// Test accuracy against solver wall time.
    TestAccuracyVsTime,
}

impl PlotKind {
    /// All kinds, in report order.
    pub const ALL: [PlotKind; 3] = [
        PlotKind::ObjectiveVsEpochs,
        PlotKind::ObjectiveVsTime,
        PlotKind::TestAccuracyVsTime,
    ];

    /// File-name suffix.
    pub fn slug(self) -> &'static str {
        match self {
            PlotKind::ObjectiveVsEpochs => "objective-epochs",
            PlotKind::ObjectiveVsTime => "objective-time",
            PlotKind::TestAccuracyVsTime => "test-accuracy-time",
        }
    }

    /// Human title fragment.
    pub fn title(self) -> &'static str {
        match self {
            PlotKind::ObjectiveVsEpochs => "training objective vs epochs",
            PlotKind::ObjectiveVsTime => "training objective vs wall time",
            PlotKind::TestAccuracyVsTime => "test accuracy vs wall time",
        }
    }

    fn x(self, r: &TraceRecord) -> f64 {
        match self {
            PlotKind::ObjectiveVsEpochs => r.epochs,
            _ => r.wall_time_s,
        }
    }

    fn y(self, r: &TraceRecord) -> Option<f64> {
        match self {
            PlotKind::TestAccuracyVsTime => r.test_accuracy,
            _ => Some(r.objective),
        }
        .filter(|v| v.is_finite())
    }

    fn x_label(self) -> &'static str {
        match self {
            PlotKind::ObjectiveVsEpochs => "epochs (data passes)",
            _ => "solver wall time (s)",
        }
    }

    fn y_label(self) -> &'static str {
        match self {
            PlotKind::TestAccuracyVsTime => "test accuracy",
            _ => "training objective (log scale)",
        }
    }
}

/// A plot written to disk.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotFile {
    /// Problem name.
    pub problem: String,
    /// What it shows.
    pub kind: PlotKind,
    /// Path relative to the run directory (e.g. `plots/digits-mlp-objective-epochs.svg`).
    pub relative_path: PathBuf,
}

/// The file name of a plot: `<problem>-<slug>.svg`, with characters other than ASCII
/// alphanumerics, `-`, `_` and `.` replaced by `_`.
pub fn plot_file_name(problem: &str, kind: PlotKind) -> String {
    let safe: String = problem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{}.svg", kind.slug())
}

struct Series {
    solver_index: usize,
    solver: String,
    first_of_solver: bool,
    points: Vec<(f64, f64)>,
}

fn series_for(runs: &[&RunResult], kind: PlotKind) -> Vec<Series> {
    let mut solvers: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for run in runs {
        let first = !solvers.contains(&run.solver.as_str());
        if first {
            solvers.push(&run.solver);
        }
        let idx = solvers.iter().position(|s| *s == run.solver).unwrap_or(0);
        let points: Vec<(f64, f64)> = run
            .trace
            .iter()
            .filter_map(|r| kind.y(r).map(|y| (kind.x(r), y)))
            .filter(|(x, _)| x.is_finite())
            .collect();
        if !points.is_empty() {
            out.push(Series {
                solver_index: idx,
                solver: run.solver.clone(),
                first_of_solver: first,
                points,
            });
        }
    }
    // The legend entry goes on the first series of each solver that has points.
    let mut seen = Vec::new();
    for s in &mut out {
        s.first_of_solver = !seen.contains(&s.solver_index);
        seen.push(s.solver_index);
    }
    out
}

fn plot_err(file: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Plot {
        file: file.to_string(),
        message: e.to_string(),
    }
}

fn x_range(series: &[Series]) -> Range<f64> {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0f64, f64::max);
    0.0..if max > 0.0 { max * 1.02 } else { 1.0 }
}

fn draw_chart(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    kind: PlotKind,
    series: &[Series],
    file: &str,
) -> Result<(), BenchError> {
    let e = |err: DrawingAreaErrorKind<_>| plot_err(file, err);
    root.fill(&WHITE).map_err(e)?;
    let xr = x_range(series);
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    macro_rules! lines {
        ($chart:expr, $map:expr) => {
            for s in series {
                let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x, $map(y))).collect();
                let label = s.first_of_solver.then_some(s.solver.as_str());
                draw_styled_line(&mut $chart, &pts, solver_style(s.solver_index), label, file)?;
            }
            $chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(e)?;
        };
    }
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80);
    if kind == PlotKind::TestAccuracyVsTime {
        let (lo, hi) = ys.fold((1.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
        let lo = (lo - 0.05).clamp(0.0, 1.0);
        let hi = (hi + 0.05).clamp(lo + 0.05, 1.0);
        let mut chart = builder.build_cartesian_2d(xr, lo..hi).map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(kind.x_label())
            .y_desc(kind.y_label())
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        lines!(chart, |y: f64| y);
    } else {
        let positive: Vec<f64> = ys.filter(|y| *y > 0.0).collect();
        let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = positive.iter().copied().fold(0.0f64, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo / 1.5, hi * 1.5)
        } else if lo.is_finite() {
            (lo / 2.0, lo * 2.0)
        } else {
            (1e-12, 1.0)
        };
        // Log scale drawn as a linear axis in log10(y) with labels 10^v: unlike a
        // plotters log axis, this labels ranges narrower than a decade too.
        let (llo, lhi) = (lo.log10(), hi.log10());
        let mut chart = builder.build_cartesian_2d(xr, llo..lhi).map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(kind.x_label())
            .y_desc(kind.y_label())
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .y_label_formatter(&|v| fmt_sig(Some(10f64.powf(*v)), 3))
            .draw()
            .map_err(e)?;
        lines!(chart, |y: f64| y.max(lo).log10());
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Renders one plot of one problem's runs to SVG text; `None` if no run has a point to
/// draw for this kind (e.g. no test accuracy).
pub fn render_plot(
    problem: &str,
    runs: &[&RunResult],
    kind: PlotKind,
) -> Result<Option<String>, BenchError> {
    let series = series_for(runs, kind);
    if series.is_empty() {
        return Ok(None);
    }
    let file = plot_file_name(problem, kind);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        draw_chart(
            &root,
            &format!("{problem}: {}", kind.title()),
            kind,
            &series,
            &file,
        )?;
    }
    Ok(Some(svg))
}

/// Writes every plot of every problem of `results` into `dir/plots/` (created if
/// needed), atomically, and returns what was written.
pub fn write_plots(dir: &Path, results: &ResultsFile) -> Result<Vec<PlotFile>, BenchError> {
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|e| BenchError::io(&plots_dir, e))?;
    let mut problems: Vec<&str> = Vec::new();
    for r in &results.runs {
        if !problems.contains(&r.problem.as_str()) {
            problems.push(&r.problem);
        }
    }
    let mut written = Vec::new();
    for p in problems {
        let runs: Vec<&RunResult> = results.runs.iter().filter(|r| r.problem == p).collect();
        for kind in PlotKind::ALL {
            if let Some(svg) = render_plot(p, &runs, kind)? {
                let name = plot_file_name(p, kind);
                write_atomic(&plots_dir.join(&name), svg.as_bytes())?;
                written.push(PlotFile {
                    problem: p.to_string(),
                    kind,
                    relative_path: PathBuf::from("plots").join(name),
                });
            }
        }
    }
    Ok(written)
}
