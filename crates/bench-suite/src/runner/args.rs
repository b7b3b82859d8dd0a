//! The options of `cargo xtask compare` (clap derive), shared by the binary and tests.

use std::path::PathBuf;

use clap::Parser;

use crate::BenchError;
use crate::problems::Dtype;

/// Run solvers x problems x seeds under equal budgets and write results.json, report.md
/// and SVG plots into a new directory.
///
/// Without arguments: the quick suite (quick problems x quick solvers, seeds 0, 1, 2,
/// the problems' quick budgets). Every solver runs with its documented defaults unless
/// `--tune` is given.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "strata-compare",
    about = "Compare strata's solvers on its problems under equal budgets",
    long_about = None
)]
pub struct CompareArgs {
    /// Solvers to run (comma-separated display names; see --list). Default: the quick
    /// solvers, or all with --full.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub solvers: Option<Vec<String>>,
    /// Problems to run (comma-separated registry names; see --list). Default: the quick
    /// problems, or all with --full.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub problems: Option<Vec<String>>,
    /// Seeds: a count N (seeds 0..N-1), a list `0,4,7` or a range `3..6`. Default 3
    /// seeds (0, 1, 2).
    #[arg(long, value_name = "N | A,B,C | A..B")]
    pub seeds: Option<String>,
    /// Data passes per run (overrides every problem's default).
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Solver wall time per run in seconds (overrides every problem's default cap;
    /// 0 removes the wall-time cap, for reproducible traces).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub time_budget: Option<f64>,
    /// Evaluate the true training objective (a forward pass over every training and
    /// test sample) only after steps that cross a multiple of this many data passes,
    /// plus the initial point, convergence and the end of each run (exact final
    /// objective); the same grid for every solver. Default: after every step. Solver
    /// time and passes are unchanged (evaluation is never charged); curves get fewer
    /// points.
    #[arg(long, value_name = "PASSES", allow_negative_numbers = true)]
    pub eval_every: Option<f64>,
    /// Threads given to each run (driver and matrix products). 1 keeps timings
    /// reproducible. At most 4 x the available cores unless --force-threads.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// Accept a --threads value above the cap of 4 x the available cores.
    #[arg(long)]
    pub force_threads: bool,
    /// Floating-point type of every run.
    #[arg(long, default_value = "f64", value_parser = parse_dtype, value_name = "f32|f64")]
    pub dtype: Dtype,
    /// Root directory of the results; each run writes a new `compare-<UTC time>-<n>`
    /// directory under it.
    #[arg(long, default_value = crate::outdir::DEFAULT_OUT_ROOT, value_name = "DIR")]
    pub out: PathBuf,
    /// All problems (user data if present), all solvers, 3 seeds, larger budgets.
    #[arg(long)]
    pub full: bool,
    /// Print the problems and solvers with their families and descriptions, then exit.
    #[arg(long)]
    pub list: bool,
    /// Tune every solver's declared hyperparameter(s) on the same-size grid around its
    /// defaults (runner::tune): selection on a validation split of the training set,
    /// then the chosen values run on the full training set; the search's cost is
    /// reported. `--lr-grid` is an alias kept from earlier versions (it now tunes every
    /// solver, not only the learning rates).
    #[arg(long, visible_alias = "lr-grid")]
    pub tune: bool,
    /// Grid points per solver with --tune (odd keeps the default on the grid); given
    /// without --tune it is an error, not silently ignored.
    #[arg(
        long,
        default_value_t = super::tune::DEFAULT_TUNE_POINTS,
        value_name = "P",
        requires = "tune"
    )]
    pub tune_points: usize,
    /// Directory of the MNIST IDX files (else $STRATA_MNIST_DIR).
    #[arg(long, value_name = "DIR")]
    pub mnist_dir: Option<PathBuf>,
    /// Directory of the Fashion-MNIST IDX files (else $STRATA_FASHION_MNIST_DIR).
    #[arg(long, value_name = "DIR")]
    pub fashion_mnist_dir: Option<PathBuf>,
    /// A named suite instead of --problems/--full: `papers` runs each structured method
    /// in its paper's setup on Fashion-MNIST next to gradient baselines (see
    /// `bench_suite::papers` and docs/PAPERS.md).
    #[arg(long, value_name = "papers")]
    pub suite: Option<String>,
    /// Refuse (before allocating) any papers-suite run whose estimated peak memory exceeds
    /// this many GiB. Default 24. Only with --suite (without it, an error rather than
    /// silently ignored).
    #[arg(
        long,
        value_name = "GIB",
        allow_negative_numbers = true,
        requires = "suite"
    )]
    pub memory_limit_gib: Option<f64>,
    /// Use only the first N training images of the (Fashion-)MNIST problems (papers
    /// suite: instead of its 10,000 / 60,000 with --full).
    #[arg(long, value_name = "N")]
    pub max_train: Option<usize>,
    /// Papers suite: use only the first N of the 10,000 test images. Only with --suite
    /// (without it, an error rather than silently ignored).
    #[arg(long, value_name = "N", requires = "suite")]
    pub max_test: Option<usize>,
    /// Shard the training samples over the ranks of an MPI job (launch under
    /// `mpirun -np N`; needs a build with `--features mpi`; docs/DISTRIBUTED.md).
    #[arg(long)]
    pub distributed: bool,
    /// Hide the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl Default for CompareArgs {
    /// The quick suite: what `cargo xtask compare` runs without arguments.
    fn default() -> Self {
        CompareArgs::parse_from(["strata-compare"])
    }
}

fn parse_dtype(s: &str) -> Result<Dtype, String> {
    match s {
        "f32" => Ok(Dtype::F32),
        "f64" => Ok(Dtype::F64),
        _ => Err(format!("`{s}` is not a dtype (f32 or f64)")),
    }
}

/// The seeds of a `--seeds` value: `N` gives `0..N`, `a,b,c` a list (a trailing comma
/// makes one seed a list: `7,`), `a..b` the half-open range.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, BenchError> {
    let bad = |m: String| BenchError::arg("seeds", m);
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| bad(format!("`{t}` is not a nonnegative integer (in `{s}`)")))
    };
    // Every count is checked against the cap BEFORE the list is allocated.
    let seeds = if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (num(a)?, num(b)?);
        super::limits::check_seed_count(b.saturating_sub(a), s)?;
        (a..b).collect()
    } else if s.contains(',') {
        super::limits::check_seed_count(s.split(',').count() as u64, s)?;
        s.split(',')
            .filter(|t| !t.trim().is_empty())
            .map(num)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let n = num(s)?;
        super::limits::check_seed_count(n, s)?;
        (0..n).collect()
    };
    if seeds.is_empty() {
        return Err(bad(format!("`{s}` gives no seed")));
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        return Err(bad(format!("`{s}` repeats a seed")));
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_count_list_and_range() {
        assert_eq!(parse_seeds("3").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_seeds("0,4,7").unwrap(), vec![0, 4, 7]);
        assert_eq!(parse_seeds("7,").unwrap(), vec![7]);
        assert_eq!(parse_seeds("3..6").unwrap(), vec![3, 4, 5]);
        // #13 defect 7: huge counts are refused before any allocation.
        for bad in [
            "0",
            "x",
            "1,1",
            "5..5",
            "-1",
            "18446744073709551615",
            "0..18446744073709551615",
            "1000000000",
        ] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_parse() {
        let a = CompareArgs::parse_from([
            "x",
            "--solvers",
            "adam,lbfgs",
            "--seeds",
            "2",
            "--dtype",
            "f32",
            "--lr-grid",
            "--tune-points",
            "3",
            "--epochs",
            "2",
        ]);
        assert_eq!(a.solvers.unwrap(), vec!["adam", "lbfgs"]);
        assert_eq!(a.dtype, Dtype::F32);
        assert!(a.tune);
        assert_eq!(a.tune_points, 3);
        assert_eq!(a.epochs, Some(2.0));
        let d = CompareArgs::default();
        assert_eq!((d.threads, d.dtype, d.full), (1, Dtype::F64, false));
        assert_eq!(d.out, PathBuf::from("results"));
        assert!(!d.tune && d.tune_points == 5 && d.seeds.is_none());
        assert!(CompareArgs::try_parse_from(["x", "--dtype", "f16"]).is_err());
        // --tune-points without --tune would be ignored: it is refused instead.
        let e = CompareArgs::try_parse_from(["x", "--tune-points", "7"]).unwrap_err();
        assert!(e.to_string().contains("--tune"), "{e}");
        assert!(CompareArgs::try_parse_from(["x", "--lr-grid", "--tune-points", "7"]).is_ok());
        // `--opt -1` reaches validation (a clear message) instead of a clap parse error.
        let neg = CompareArgs::parse_from(["x", "--epochs", "-1", "--time-budget", "-2"]);
        assert_eq!((neg.epochs, neg.time_budget), (Some(-1.0), Some(-2.0)));
    }
}
