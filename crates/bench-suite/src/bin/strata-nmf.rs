//! `cargo xtask nmf`: beta-NMF of a nonnegative matrix read from a CSV file.
//!
//! Factorises `V (F x N) ~ W (F x K) H (K x N)` with the multiplicative updates of
//! `majorize::nmf` run by the `solvers` driver (`solvers::nmf::BetaNmf`), and writes
//! `W.csv`, `H.csv` and `objective.csv` (one row per iteration, iteration 0 = the
//! initialisation) into a NEW output directory: an existing directory is refused, and
//! every file is written to a temporary name and renamed into place.
//!
//! CSV format: one matrix row per line, comma-separated numbers, no header; blank lines
//! are skipped. Without `--init-w`/`--init-h` the factors start at scikit-learn's
//! 'random' scheme, `|N(0, 1)| * sqrt(mean(V) / K)`, drawn from
//! `ChaCha8Rng::seed_from_u64(seed)` (H first, then W); `mean(V)` is computed scaled by
//! `max(V)` so that entries near `f64::MAX` do not overflow it.
//!
//! Exit codes: 0 the run converged or used its iterations (W, H, objective written);
//! 1 bad arguments or input, or an I/O error (nothing written); 3 the run diverged or
//! failed: NO `W.csv`/`H.csv` (they would look like a result), but `objective.csv` (the
//! trace so far) and `status.txt` (the status and its reason) are written.
//!
//! Limits: `--rank` must be at most `max(F, N)` (a rank beyond cannot fit better than an
//! exact factorisation) and the factors at most [`MAX_FACTOR_ENTRIES`] entries, checked
//! before anything is allocated; `--iterations` must be at least 1. Options whose
//! negative values are valid or must be diagnosed (`--beta`, the penalties, `--tol`)
//! accept `--opt -1` as well as `--opt=-1`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use majorize::nmf::{Penalties, Rule};
use nalgebra::DMatrix;
use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use solvers::nmf::{BetaNmf, BetaNmfConfig, NmfProblem};
use solvers::{Budget, Driver, Status};

/// The update rule on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RuleArg {
    /// Majorization-minimization (exponent gamma(beta)); monotone.
    Mm,
    /// Exponent-1 heuristic updates.
    Heuristic,
    /// Majorization-equalization; monotone.
    Me,
}

/// Most entries of W and H together (10^9, 8 GB in f64): the library's cap.
const MAX_FACTOR_ENTRIES: usize = bench_suite::runner::limits::MAX_FACTOR_ENTRIES;

/// Exit status of a diverged or failed run.
const EXIT_RUN_FAILED: u8 = 3;

/// Why the command did not produce a result.
#[derive(Debug)]
enum Failure {
    /// Bad arguments, bad input or I/O: nothing written (exit 1).
    Input(String),
    /// The run diverged or failed: trace and status written, no factors (exit 3).
    Run(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Input(m) | Failure::Run(m) => f.write_str(m),
        }
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Input(s)
    }
}

/// beta-NMF of a nonnegative CSV matrix.
#[derive(Parser, Debug)]
#[command(
    name = "strata-nmf",
    about = "beta-NMF of a nonnegative CSV matrix (V ~ W H)"
)]
struct Args {
    /// CSV file holding V (F rows x N columns, nonnegative; positive for beta <= 0).
    #[arg(long)]
    input: PathBuf,
    /// Rank K of the factorisation.
    #[arg(long)]
    rank: usize,
    /// beta of the divergence (2 Euclidean, 1 Kullback-Leibler, 0 Itakura-Saito).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    beta: f64,
    /// Update rule.
    #[arg(long, value_enum, default_value_t = RuleArg::Mm)]
    rule: RuleArg,
    /// Relaxation theta in [0, 1] of the ME rule for beta >= 1: h = h_MM + theta (h_ME - h_MM)
    /// (0.95 as in Fevotte & Idier's reference implementation; 1 = exact equalization).
    #[arg(long, default_value_t = majorize::nmf::DEFAULT_ME_THETA)]
    me_theta: f64,
    /// Number of iterations (each updates W then H).
    #[arg(long, default_value_t = 200)]
    iterations: u64,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CSV file with the initial W (F x K, strictly positive).
    #[arg(long)]
    init_w: Option<PathBuf>,
    /// CSV file with the initial H (K x N, strictly positive).
    #[arg(long)]
    init_h: Option<PathBuf>,
    /// Follow scikit-learn's NMF(solver='mu') exactly (MM rule only).
    #[arg(long)]
    sklearn: bool,
    /// scikit-learn's stopping tolerance (every 10 iterations); 0 runs all iterations.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    tol: f64,
    /// L1 penalty on W (objective term l1_w * sum W).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    l1_w: f64,
    /// L2 penalty on W (objective term l2_w/2 * ||W||^2).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    l2_w: f64,
    /// L1 penalty on H.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    l1_h: f64,
    /// L2 penalty on H.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    l2_h: f64,
    /// Output directory (must not exist).
    #[arg(long)]
    out: PathBuf,
}

fn read_csv(path: &Path) -> Result<DMatrix<f64>, String> {
    // A device or FIFO (`/dev/zero`) would be read without end: refused.
    let text = nets::persist::read_regular_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_csv(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_csv(text: &str) -> Result<DMatrix<f64>, String> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row = line
            .split(',')
            .enumerate()
            .map(|(c, f)| {
                f.trim()
                    .parse::<f64>()
                    .map_err(|e| format!("line {}, field {}: {:?}: {e}", ln + 1, c + 1, f.trim()))
            })
            .collect::<Result<Vec<f64>, String>>()?;
        if let Some(first) = rows.first()
            && first.len() != row.len()
        {
            return Err(format!(
                "line {} has {} fields, the first row has {}",
                ln + 1,
                row.len(),
                first.len()
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("no data".into());
    }
    let (r, c) = (rows.len(), rows[0].len());
    Ok(DMatrix::from_fn(r, c, |i, j| rows[i][j]))
}

fn to_csv(m: &DMatrix<f64>) -> String {
    let mut s = String::with_capacity(m.len() * 24);
    for i in 0..m.nrows() {
        let row: Vec<String> = (0..m.ncols()).map(|j| format!("{}", m[(i, j)])).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

/// Writes `content` to `dir/name` through a temporary file and a rename.
/// `dir/name` through `nets::persist::write_atomic`; never replaces a file (the
/// directory was just created for this run).
fn write_atomic(dir: &Path, name: &str, content: &str) -> Result<(), String> {
    nets::persist::write_atomic(&dir.join(name), content, false).map_err(|e| e.to_string())
}

fn random_factor(rng: &mut ChaCha8Rng, rows: usize, cols: usize, scale: f64) -> DMatrix<f64> {
    // Column-major fill order of nalgebra's from_fn is documented as unspecified, so draw
    // row by row explicitly.
    let mut m = DMatrix::zeros(rows, cols);
    for i in 0..rows {
        for j in 0..cols {
            let z: f64 = rng.sample(StandardNormal);
            m[(i, j)] = z.abs() * scale;
        }
    }
    m
}

/// `mean(V)` without overflow: `max|V| * mean(V / max|V|)` (entries near `f64::MAX`
/// would make the plain sum infinite and the random initialisation non-finite).
fn scaled_mean(v: &DMatrix<f64>) -> f64 {
    let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if m == 0.0 || !m.is_finite() {
        return if m == 0.0 { 0.0 } else { f64::NAN };
    }
    m * (v.iter().map(|x| x / m).sum::<f64>() / v.len() as f64)
}

/// Checks `--rank` against the data before anything of that size is allocated.
fn check_rank(k: usize, f: usize, n: usize) -> Result<(), String> {
    if k == 0 {
        return Err("--rank must be at least 1".into());
    }
    if k > f.max(n) {
        return Err(format!(
            "--rank {k} exceeds max(F, N) = {} for a {f}x{n} matrix",
            f.max(n)
        ));
    }
    let entries = f
        .checked_add(n)
        .and_then(|s| s.checked_mul(k))
        .filter(|&e| e <= MAX_FACTOR_ENTRIES);
    if entries.is_none() {
        return Err(format!(
            "--rank {k} on a {f}x{n} matrix needs more than {MAX_FACTOR_ENTRIES} factor entries"
        ));
    }
    Ok(())
}

fn run(args: &Args) -> Result<String, Failure> {
    if args.out.exists() {
        return Err(Failure::Input(format!(
            "output directory {} already exists; refusing to overwrite",
            args.out.display()
        )));
    }
    if args.rank == 0 {
        return Err("--rank must be at least 1".to_string().into());
    }
    if args.iterations == 0 {
        return Err("--iterations must be at least 1".to_string().into());
    }
    let v = read_csv(&args.input)?;
    let (f, n, k) = (v.nrows(), v.ncols(), args.rank);
    check_rank(k, f, n)?;
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(format!(
            "{}: V has a non-finite entry {x} (row {}, column {})",
            args.input.display(),
            i % f + 1,
            i / f + 1
        )
        .into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mean = scaled_mean(&v);
    let scale = if mean > 0.0 {
        (mean / k as f64).sqrt()
    } else {
        1.0
    };
    let h0 = match &args.init_h {
        Some(p) => read_csv(p)?,
        None => random_factor(&mut rng, k, n, scale),
    };
    let w0 = match &args.init_w {
        Some(p) => read_csv(p)?,
        None => random_factor(&mut rng, f, k, scale),
    };
    if w0.shape() != (f, k) || h0.shape() != (k, n) {
        return Err(Failure::Input(format!(
            "initial W is {:?} and H is {:?}; expected W {f}x{k} and H {k}x{n}",
            w0.shape(),
            h0.shape()
        )));
    }
    let rule = match args.rule {
        RuleArg::Mm => Rule::Mm,
        RuleArg::Heuristic => Rule::Heuristic,
        RuleArg::Me => Rule::Me,
    };
    let config = BetaNmfConfig {
        beta: args.beta,
        rule,
        me_theta: args.me_theta,
        sklearn_compatible: args.sklearn,
        penalties: Penalties {
            l1_w: args.l1_w,
            l2_w: args.l2_w,
            l1_h: args.l1_h,
            l2_h: args.l2_h,
        },
        tol: args.tol,
    };
    let mut problem = NmfProblem::new(v, w0, h0, &config).map_err(|e| e.to_string())?;
    let mut solver = BetaNmf::new(config).map_err(|e| e.to_string())?;
    let out = Driver::new(Budget::iterations(args.iterations))
        .seed(args.seed)
        .run(&mut problem, &mut solver)
        .map_err(|e| e.to_string())?;
    let failed = match &out.status {
        Status::Failed { error } => Some(format!("failed: {error}")),
        Status::Diverged { reason } => Some(format!("diverged: {reason}")),
        _ => None,
    };
    let mut obj = String::from("iteration,objective,wall_time_s\n");
    for r in &out.trace.records {
        obj.push_str(&format!(
            "{},{},{}\n",
            r.iteration, r.objective, r.wall_time_s
        ));
    }
    // create_dir fails if the directory appeared meanwhile: never overwrite.
    fs::create_dir(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    if let Some(why) = failed {
        // Keep the trace and say why; write no factors that could pass for a result.
        write_atomic(&args.out, "objective.csv", &obj)?;
        write_atomic(&args.out, "status.txt", &format!("{why}\n"))?;
        return Err(Failure::Run(format!(
            "the run {why}; wrote objective.csv and status.txt (no W/H) to {}",
            args.out.display()
        )));
    }
    write_atomic(&args.out, "W.csv", &to_csv(problem.w()))?;
    write_atomic(&args.out, "H.csv", &to_csv(problem.h()))?;
    write_atomic(&args.out, "objective.csv", &obj)?;
    let last = out.trace.records.last().map_or(f64::NAN, |r| r.objective);
    let first = out.trace.records.first().map_or(f64::NAN, |r| r.objective);
    Ok(format!(
        "{}: {} iterations, objective {first:.6e} -> {last:.6e} ({:?}); wrote W.csv, H.csv, objective.csv to {}",
        out.trace.solver,
        out.trace.records.len() - 1,
        out.status,
        args.out.display()
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(Failure::Input(e)) => {
            eprintln!("strata-nmf: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Run(e)) => {
            eprintln!("strata-nmf: {e}");
            ExitCode::from(EXIT_RUN_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review 3: a device (`/dev/zero`, read without end) is refused before reading.
    #[cfg(unix)]
    #[test]
    fn a_device_as_input_is_an_error_not_an_endless_read() {
        assert_eq!(
            read_csv(Path::new("/dev/zero")).unwrap_err(),
            "cannot read /dev/zero: not a regular file"
        );
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("strata-nmf-test-{}-{name}", std::process::id()))
    }

    #[test]
    fn csv_parse_errors_name_the_line() {
        assert_eq!(
            parse_csv("1,2\n\n3,4\n").unwrap(),
            DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 3.0, 4.0])
        );
        assert!(parse_csv("1,2\n3\n").unwrap_err().contains("line 2"));
        assert!(parse_csv("1,x\n").unwrap_err().contains("line 1, field 2"));
        assert!(parse_csv("\n").is_err());
        let m = DMatrix::from_row_slice(2, 3, &[0.1, 2.0, 1e-300, 3.5, 4.0, 5.25]);
        assert_eq!(parse_csv(&to_csv(&m)).unwrap(), m);
    }

    #[test]
    fn full_run_writes_three_files_and_refuses_to_overwrite() {
        let input = tmp("v.csv");
        let v = DMatrix::from_fn(8, 6, |i, j| 0.2 + ((i * 5 + j * 3) % 7) as f64);
        fs::write(&input, to_csv(&v)).unwrap();
        let out = tmp("out");
        let _ = fs::remove_dir_all(&out);
        let args = Args::parse_from([
            "strata-nmf",
            "--input",
            input.to_str().unwrap(),
            "--rank",
            "2",
            "--beta",
            "1",
            "--rule",
            "me",
            "--iterations",
            "40",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        let msg = run(&args).unwrap();
        assert!(msg.contains("40 iterations"), "{msg}");
        let w = read_csv(&out.join("W.csv")).unwrap();
        let h = read_csv(&out.join("H.csv")).unwrap();
        assert_eq!((w.shape(), h.shape()), ((8, 2), (2, 6)));
        let obj = fs::read_to_string(out.join("objective.csv")).unwrap();
        let vals: Vec<f64> = obj
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(vals.len(), 41);
        assert!(vals.windows(2).all(|p| p[1] <= p[0] * (1.0 + 1e-12)));
        assert!(vals[40] < vals[0], "{} -> {}", vals[0], vals[40]);
        // Same seed -> same result; an existing directory is refused.
        let err = run(&args).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let out2 = tmp("out2");
        let _ = fs::remove_dir_all(&out2);
        let args2 = Args::parse_from([
            "strata-nmf",
            "--input",
            input.to_str().unwrap(),
            "--rank",
            "2",
            "--beta",
            "1",
            "--rule",
            "me",
            "--iterations",
            "40",
            "--seed",
            "3",
            "--out",
            out2.to_str().unwrap(),
        ]);
        run(&args2).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("W.csv")).unwrap(),
            fs::read_to_string(out2.join("W.csv")).unwrap()
        );
        // Explicit init of the wrong shape, and an ME rule in scikit-learn mode, are errors.
        let bad_w = tmp("w.csv");
        fs::write(&bad_w, "1,1,1\n").unwrap();
        let out3 = tmp("out3");
        let _ = fs::remove_dir_all(&out3);
        let a3 = Args::parse_from([
            "strata-nmf",
            "--input",
            input.to_str().unwrap(),
            "--rank",
            "2",
            "--init-w",
            bad_w.to_str().unwrap(),
            "--out",
            out3.to_str().unwrap(),
        ]);
        assert!(run(&a3).unwrap_err().to_string().contains("expected W 8x2"));
        let a4 = Args::parse_from([
            "strata-nmf",
            "--input",
            input.to_str().unwrap(),
            "--rank",
            "2",
            "--rule",
            "me",
            "--sklearn",
            "--out",
            out3.to_str().unwrap(),
        ]);
        assert!(run(&a4).unwrap_err().to_string().contains("rule"));
        assert!(!out3.exists());
        for p in [&out, &out2] {
            fs::remove_dir_all(p).unwrap();
        }
        fs::remove_file(&input).unwrap();
        fs::remove_file(&bad_w).unwrap();
    }

    fn args_for(input: &Path, out: &Path, extra: &[&str]) -> Args {
        let mut v = vec![
            "strata-nmf".to_string(),
            "--input".into(),
            input.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        Args::parse_from(v)
    }

    /// #13 defect 5: a diverged or failed run exits 3 with the trace and a status file,
    /// and writes no W/H; the three reproductions.
    #[test]
    fn diverged_runs_write_no_factors_and_a_status() {
        let input = tmp("div.csv");
        fs::write(&input, "1e308,1\n1,1\n").unwrap();
        let cases: [&[&str]; 3] = [
            &["--rank", "2"],
            &["--rank", "2", "--l1-w", "1e308"],
            &["--rank", "2", "--beta", "1e300"],
        ];
        for (i, extra) in cases.iter().enumerate() {
            let out = tmp(&format!("div-out-{i}"));
            let _ = fs::remove_dir_all(&out);
            let input = if i == 0 { input.clone() } else { tmp("ok.csv") };
            if i > 0 {
                fs::write(&input, "1,2\n3,4\n").unwrap();
            }
            match run(&args_for(&input, &out, extra)) {
                Err(Failure::Run(m)) => {
                    assert!(m.contains("status.txt"), "{m}");
                    assert!(!out.join("W.csv").exists() && !out.join("H.csv").exists());
                    let st = fs::read_to_string(out.join("status.txt")).unwrap();
                    assert!(
                        st.starts_with("diverged") || st.starts_with("failed"),
                        "{st}"
                    );
                    assert!(out.join("objective.csv").is_file());
                }
                Err(Failure::Input(m)) => assert!(!out.exists(), "case {i}: {m}"),
                Ok(m) => panic!("case {i} {extra:?} succeeded: {m}"),
            }
            let _ = fs::remove_dir_all(&out);
        }
        let _ = fs::remove_file(&input);
    }

    /// #13 defects 7 and 11: huge ranks, zero iterations, an all-1e308 matrix and
    /// negative option values in the `--opt -1` form.
    #[test]
    fn counts_and_extreme_values_are_validated_before_any_allocation() {
        let input = tmp("small.csv");
        fs::write(&input, "1,2,3\n4,5,6\n").unwrap();
        let out = tmp("never");
        let _ = fs::remove_dir_all(&out);
        for extra in [
            &["--rank", "18446744073709551615"][..],
            &["--rank", "4"],
            &["--rank", "1", "--iterations", "0"],
            &["--rank", "1", "--l1-w", "-1"],
        ] {
            let e = run(&args_for(&input, &out, extra)).unwrap_err();
            assert!(matches!(e, Failure::Input(_)), "{extra:?}: {e}");
            assert!(!out.exists());
        }
        assert!(check_rank(usize::MAX, usize::MAX, 2).is_err());
        assert!(check_rank(2, 3, 2).is_ok());
        let e = run(&args_for(&input, &out, &["--rank", "1", "--l1-w", "-1"])).unwrap_err();
        assert!(e.to_string().contains("l1"), "{e}");
        let big = tmp("big.csv");
        fs::write(&big, "1e308,1e308\n1e308,1e308\n").unwrap();
        let m = DMatrix::from_element(2, 2, 1e308);
        assert_eq!(scaled_mean(&m), 1e308);
        let r = run(&args_for(&big, &out, &["--rank", "1"]));
        if let Err(e) = &r {
            assert!(!e.to_string().contains("in W"), "{e}");
        }
        let _ = fs::remove_dir_all(&out);
        for p in [&input, &big] {
            fs::remove_file(p).unwrap();
        }
    }
}
