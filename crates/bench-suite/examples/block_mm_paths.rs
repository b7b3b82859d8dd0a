//! Block MM's certified and safeguarded hidden-block paths compared per data pass
//! (issue #11, item 4): runs block MM configurations through the `Driver` (seed 0, one
//! thread, f64, full batch) and prints the training objective after given numbers of
//! sweeps, the data passes they took, and the objective each reached within given
//! numbers of data passes (the table in `solvers::mm`'s module doc and docs/MAJORIZE.md).
//!
//! ```sh
//! cargo run --release -p bench-suite --example block_mm_paths -- --sweeps 50
//! ```
//!
//! Options: `--problems digits-mlp,digits-mlp-deep,spirals` `--sweeps 50`
//! `--configs 'safeguarded={"certified":false};certified={"certified":true}'` (name =
//! a `BlockMmConfig` as JSON, unspecified fields at their defaults; `;`-separated)
//! `--dump` (print every sweep's extras).

mod common;

use solvers::mm::BlockMmConfig;
use solvers::{Budget, Driver, Record};

const USAGE: &str = "usage: block_mm_paths [--problems digits-mlp,digits-mlp-deep,spirals] \
[--sweeps 50] [--configs 'name={json};name={json}'] [--dump]";

fn extra(r: &Record, name: &str) -> Option<f64> {
    r.extras.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &["--problems", "--sweeps", "--configs"],
        &["--dump"],
        false,
    );
    let problems = opts
        .get("--problems")
        .unwrap_or("digits-mlp,digits-mlp-deep,spirals".into());
    let sweeps: u64 = opts.num("--sweeps", 50);
    let configs = opts
        .get("--configs")
        .unwrap_or(r#"safeguarded={"certified":false};certified={"certified":true}"#.into());
    let configs: Vec<(String, BlockMmConfig)> = configs
        .split(';')
        .map(|c| {
            let Some((name, json)) = c.split_once('=') else {
                opts.fail(&format!("--configs: `{c}` is not name=json"));
            };
            let cfg: BlockMmConfig = serde_json::from_str(json)
                .unwrap_or_else(|e| opts.fail(&format!("--configs: {name}: {e}")));
            if let Err(e) = cfg.clone().build::<f64>() {
                opts.fail(&format!("--configs: {name}: {e}"));
            }
            (name.to_string(), cfg)
        })
        .collect();
    let marks: Vec<u64> = [1, 2, 5, 10, 20, 50, 100, 200]
        .into_iter()
        .filter(|m| *m <= sweeps)
        .collect();
    for pname in problems.split(',') {
        let (train, net, loss) = common::problem(&opts, pname);
        println!("\n## {pname}: {sweeps} sweeps");
        let mut runs = Vec::new();
        for (name, cfg) in &configs {
            let mut solver = cfg.clone().build::<f64>().expect("config");
            let mut p = common::make(&train, &net, loss, 1);
            let t0 = std::time::Instant::now();
            let out = Driver::new(Budget::iterations(sweeps))
                .seed(0)
                .run(&mut p, &mut solver)
                .expect("run");
            let secs = t0.elapsed().as_secs_f64();
            let rec = out.trace.records;
            let layers = (0..).take_while(|i| extra(&rec[1], &format!("path_{i}")).is_some());
            let hidden: Vec<usize> = layers.collect();
            let (mut cert, mut total) = (0usize, 0usize);
            for r in &rec[1..] {
                for i in &hidden[..hidden.len().saturating_sub(1)] {
                    total += 1;
                    if extra(r, &format!("path_{i}")) == Some(1.0) {
                        cert += 1;
                    }
                }
            }
            println!(
                "{name}: status {:?}, {secs:.2} s wall, hidden blocks certified {cert}/{total}",
                out.status
            );
            if opts.flag("--dump") {
                for r in &rec[1..] {
                    let ex: Vec<String> = r
                        .extras
                        .iter()
                        .filter(|(k, _)| !k.starts_with("structural"))
                        .map(|(k, v)| format!("{k}={v:.3e}"))
                        .collect();
                    println!("  {} f={:.6} {}", r.iteration, r.objective, ex.join(" "));
                }
            }
            runs.push((name.clone(), rec));
        }
        print!("| sweeps |");
        for (name, _) in &runs {
            print!(" {name} objective | passes |");
        }
        println!();
        for m in &marks {
            print!("| {m} |");
            for (_, rec) in &runs {
                let r = &rec[(*m as usize).min(rec.len() - 1)];
                print!(" {:.6} | {:.0} |", r.objective, r.epochs);
            }
            println!();
        }
        let max_pass = runs
            .iter()
            .map(|(_, r)| r.last().map_or(0.0, |x| x.epochs))
            .fold(f64::INFINITY, f64::min);
        print!("| data passes |");
        for (name, _) in &runs {
            print!(" {name} best objective within |");
        }
        println!();
        for p in [10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0] {
            if p > max_pass {
                continue;
            }
            print!("| {p} |");
            for (_, rec) in &runs {
                let best = rec
                    .iter()
                    .filter(|r| r.epochs <= p)
                    .map(|r| r.objective)
                    .fold(f64::INFINITY, f64::min);
                print!(" {best:.6} |");
            }
            println!();
        }
    }
}
