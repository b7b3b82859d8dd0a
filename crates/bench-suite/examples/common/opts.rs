//! The command line of an example: `--name value` options, `--switch` flags and `--help`.
//! A bad command line (an unknown option, a missing value, a value that does not parse)
//! prints what is wrong and the example's usage and exits with status 2; `--help` / `-h`
//! prints the usage and exits with 0. No example panics on its arguments.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Parsed options of one example (see the module doc).
pub struct Opts {
    values: BTreeMap<String, String>,
    switches: BTreeSet<String>,
    /// Positional arguments, in order (only where the example declares it takes them).
    pub positional: Vec<String>,
    usage: String,
}

impl Opts {
    /// Parses the process arguments. `valued` lists the options that take a value,
    /// `switches` those that do not; `positional` says whether bare arguments are allowed.
    pub fn parse(usage: &str, valued: &[&str], switches: &[&str], positional: bool) -> Opts {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match Self::from_args(&args, usage, valued, switches, positional) {
            Ok(Some(o)) => o,
            Ok(None) => {
                println!("{usage}");
                std::process::exit(0);
            }
            Err(msg) => {
                eprintln!("{msg}\n{usage}");
                std::process::exit(2);
            }
        }
    }

    /// The parse of [`Opts::parse`] on given arguments: `Ok(None)` for `--help`, `Err`
    /// with the message for a bad command line.
    pub fn from_args(
        args: &[String],
        usage: &str,
        valued: &[&str],
        switches: &[&str],
        positional: bool,
    ) -> Result<Option<Opts>, String> {
        let mut out = Opts {
            values: BTreeMap::new(),
            switches: BTreeSet::new(),
            positional: Vec::new(),
            usage: usage.to_string(),
        };
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            if a == "--help" || a == "-h" {
                return Ok(None);
            }
            if valued.contains(&a) {
                let Some(v) = args.get(i + 1) else {
                    return Err(format!("option `{a}` needs a value"));
                };
                out.values.insert(a.to_string(), v.clone());
                i += 2;
                continue;
            }
            if switches.contains(&a) {
                out.switches.insert(a.to_string());
            } else if positional && !a.starts_with("--") {
                out.positional.push(a.to_string());
            } else {
                return Err(format!("unknown option `{a}`"));
            }
            i += 1;
        }
        Ok(Some(out))
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned()
    }

    /// The value of `key` parsed as `T`, or `default` when not given; a value that does
    /// not parse ends the example with status 2.
    pub fn num<T: FromStr>(&self, key: &str, default: T) -> T {
        match self.values.get(key) {
            None => default,
            Some(v) => self.parse_value(key, v),
        }
    }

    /// A comma-separated list of `T` under `key`, or `default` (also comma-separated).
    pub fn list<T: FromStr>(&self, key: &str, default: &str) -> Vec<T> {
        let raw = self.values.get(key).map_or(default, String::as_str);
        raw.split(',').map(|v| self.parse_value(key, v)).collect()
    }

    /// `v` parsed as `T` for option `key` (status 2 with the usage if it does not parse).
    pub fn parse_value<T: FromStr>(&self, key: &str, v: &str) -> T {
        v.trim().parse().unwrap_or_else(|_| {
            self.fail(&format!("option `{key}`: cannot read `{v}`"));
        })
    }

    /// Whether the switch `key` was given.
    pub fn flag(&self, key: &str) -> bool {
        self.switches.contains(key)
    }

    /// Prints `msg` and the usage, and exits with status 2.
    pub fn fail(&self, msg: &str) -> ! {
        eprintln!("{msg}\n{}", self.usage);
        std::process::exit(2);
    }
}
