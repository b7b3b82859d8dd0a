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
//! `ChaCha8Rng::seed_from_u64(seed)` (H first, then W).

use std::fs;
use std::io::Write;
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
    #[arg(long, default_value_t = 0.0)]
    tol: f64,
    /// L1 penalty on W (objective term l1_w * sum W).
    #[arg(long, default_value_t = 0.0)]
    l1_w: f64,
    /// L2 penalty on W (objective term l2_w/2 * ||W||^2).
    #[arg(long, default_value_t = 0.0)]
    l2_w: f64,
    /// L1 penalty on H.
    #[arg(long, default_value_t = 0.0)]
    l1_h: f64,
    /// L2 penalty on H.
    #[arg(long, default_value_t = 0.0)]
    l2_h: f64,
    /// Output directory (must not exist).
    #[arg(long)]
    out: PathBuf,
}

fn read_csv(path: &Path) -> Result<DMatrix<f64>, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
fn write_atomic(dir: &Path, name: &str, content: &str) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let fin = dir.join(name);
    let mut f =
        fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(content.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &fin)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), fin.display()))
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

fn run(args: &Args) -> Result<String, String> {
    if args.out.exists() {
        return Err(format!(
            "output directory {} already exists; refusing to overwrite",
            args.out.display()
        ));
    }
    if args.rank == 0 {
        return Err("--rank must be at least 1".into());
    }
    let v = read_csv(&args.input)?;
    let (f, n, k) = (v.nrows(), v.ncols(), args.rank);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mean = v.mean();
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
        return Err(format!(
            "initial W is {:?} and H is {:?}; expected W {f}x{k} and H {k}x{n}",
            w0.shape(),
            h0.shape()
        ));
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
    let out = Driver::new(Budget::iterations(args.iterations.max(1)))
        .seed(args.seed)
        .run(&mut problem, &mut solver)
        .map_err(|e| e.to_string())?;
    if let Status::Failed { error } = &out.status {
        return Err(format!("the run failed: {error}"));
    }
    let mut obj = String::from("iteration,objective,wall_time_s\n");
    for r in &out.trace.records {
        obj.push_str(&format!(
            "{},{},{}\n",
            r.iteration, r.objective, r.wall_time_s
        ));
    }
    // create_dir fails if the directory appeared meanwhile: never overwrite.
    fs::create_dir(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
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
        Err(e) => {
            eprintln!("strata-nmf: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = run(&args).unwrap_err();
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
        assert!(run(&a3).unwrap_err().contains("expected W 8x2"));
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
        assert!(run(&a4).unwrap_err().contains("rule"));
        assert!(!out3.exists());
        for p in [&out, &out2] {
            fs::remove_dir_all(p).unwrap();
        }
        fs::remove_file(&input).unwrap();
        fs::remove_file(&bad_w).unwrap();
    }
}
