//! A benchmark of the executor and the JSON record, the same test as OpenHTF's
//! `bench_openhtf.py` (see `bench/compare.sh`, which runs both and compares them).
//!
//! ```text
//! cargo run --release --example bench -- --phases N --measurements M --points K --out FILE
//! ```
//!
//! Builds `N` phases of `M` numeric measurements each (`p{i}_m{j}`, `in_range(0, 10)` in
//! volts), with [`Phase::dynamic`], plus, when `K > 0`, one phase with a `Sweep<3>` of `K`
//! points (s, V, A → Ω). Runs it on `BENCH-DUT-0001` with the test's own JSON record output
//! (compact JSON through an atomic, synced file, as any test writes its record), into a
//! folder beside `FILE`, then moves the record to `FILE`. Prints the same two lines as the
//! OpenHTF script:
//!
//! ```text
//! RESULT phases=.. measurements_per_phase=.. points=.. passed=True outcome=PASS phase_records=.. measurements_total=.. log_records=.. json_bytes=..
//! TIMING import_s=0.000 build_s=.. execute_s=.. json_s=..
//! ```
//!
//! `build_s` is the time to construct the `Test`, `execute_s` that of `Test::execute` but its
//! JSON record output, `json_s` that of the JSON record output (as the execution reports it;
//! including its `fsync`, which OpenHTF's `OutputToJSON` doesn't do).
//! `--timing-decimals D` prints them with `D` decimals instead of 3 (for timings under a
//! millisecond). With `--first-phase-stamp`, a third line gives the time from the start of
//! `main` to the start of the first phase, and the wall-clock time then (Unix ns), so that a
//! caller can measure the start-up of the process to its first phase.
//!
//! `--observe` adds an observer that turns every event into JSON and drops it; `--journal DIR`
//! keeps the run's journal in `DIR` (as a test with a JSON record does beside it; without it,
//! the run keeps none): what watching a run live and making it recoverable cost
//! (BENCHMARKS.md). With the journal, the JSON record takes each phase's JSON as the journal
//! wrote it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tofu::declare::{dimensions, in_range};
use tofu::output::JsonOutput;
use tofu::phase::MeasurementAccessError;
use tofu::prelude::*;
use tofu::unit::{AMPERE, OHM, SECOND, VOLT};
use tofu::{Execution, Phase};

const USAGE: &str = "usage: bench [--phases N] [--measurements M] [--points K] [--out FILE] \
                     [--indent I] [--timing-decimals D] [--first-phase-stamp] [--observe] \
                     [--journal DIR]";

/// The command line.
#[derive(Debug)]
struct Args {
    phases: usize,
    measurements: usize,
    points: usize,
    out: PathBuf,
    indent: Option<usize>,
    timing_decimals: usize,
    first_phase_stamp: bool,
    observe: bool,
    journal: Option<PathBuf>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut parsed = Args {
            phases: 100,
            measurements: 10,
            points: 0,
            out: PathBuf::from("tofu_bench.json"),
            indent: None,
            timing_decimals: 3,
            first_phase_stamp: false,
            observe: false,
            journal: None,
        };
        while let Some(arg) = args.next() {
            // `--flag value` or `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--phases" => parsed.phases = count(&flag, &value()?)?,
                "--measurements" => parsed.measurements = count(&flag, &value()?)?,
                "--points" => parsed.points = count(&flag, &value()?)?,
                "--indent" => parsed.indent = Some(count(&flag, &value()?)?),
                "--timing-decimals" => {
                    parsed.timing_decimals = count(&flag, &value()?)?;
                    if parsed.timing_decimals > 9 {
                        return Err(format!(
                            "--timing-decimals: at most 9, not {}",
                            parsed.timing_decimals
                        ));
                    }
                }
                "--out" => {
                    let out = value()?;
                    if out.is_empty() {
                        return Err(format!("--out needs a file name\n{USAGE}"));
                    }
                    parsed.out = PathBuf::from(out);
                    // The file is replaced by renaming a new one over it: never do that to a
                    // device (`/dev/null`) or a folder.
                    if std::fs::metadata(&parsed.out).is_ok_and(|m| !m.is_file()) {
                        return Err(format!(
                            "--out: `{}` exists and is not a regular file",
                            parsed.out.display()
                        ));
                    }
                }
                "--first-phase-stamp" if inline.is_none() => parsed.first_phase_stamp = true,
                "--observe" if inline.is_none() => parsed.observe = true,
                "--journal" => parsed.journal = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Ok(None),
                _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
            }
        }
        Ok(Some(parsed))
    }
}

fn count(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|e| format!("{flag}: `{value}` is not a whole number ≥ 0 ({e})"))
}

/// When the first phase started (with `--first-phase-stamp`).
static FIRST_PHASE: OnceLock<(Instant, SystemTime)> = OnceLock::new();

/// Phase `index`: `measurements` numbers in volts, each set once.
fn numeric_phase(index: usize, measurements: usize, stamp: bool) -> Phase {
    let names: Vec<String> = (0..measurements)
        .map(|j| format!("p{index}_m{j}"))
        .collect();
    let mut builder = Phase::dynamic(format!("phase_{index}"));
    for name in &names {
        builder = builder.measure::<f64, _>(name, in_range(0.0, 10.0).units(VOLT));
    }
    builder.run(move |_test, m| {
        if stamp {
            FIRST_PHASE.get_or_init(|| (Instant::now(), SystemTime::now()));
        }
        for (j, name) in names.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            m.get::<f64>(name)?.set(1.0 + (j % 7) as f64 * 0.5);
        }
        Ok::<(), MeasurementAccessError>(())
    })
}

/// The sweep phase: `points` points of (s, V, A) → Ω.
fn sweep_phase(points: usize, stamp: bool) -> Phase {
    Phase::dynamic("multidim_phase")
        .measure::<Sweep<3>, _>("sweep", dimensions([SECOND, VOLT, AMPERE]).units(OHM))
        .run(move |_test, m| {
            if stamp {
                FIRST_PHASE.get_or_init(|| (Instant::now(), SystemTime::now()));
            }
            let mut sweep = m.get::<Sweep<3>>("sweep")?;
            sweep.reserve(points);
            for i in 0..points {
                #[allow(clippy::cast_precision_loss)]
                let (t, v) = (i as f64 * 1e-4, 0.001 * (i + 1) as f64);
                sweep.push([t, v, v / 100.0], 100.0);
            }
            Ok::<(), MeasurementAccessError>(())
        })
}

fn build(args: &Args, records: &std::path::Path) -> Test {
    let mut phases: Vec<Phase> = (0..args.phases)
        .map(|i| numeric_phase(i, args.measurements, args.first_phase_stamp))
        .collect();
    if args.points > 0 {
        phases.push(sweep_phase(args.points, args.first_phase_stamp));
    }
    let mut test = Test::new("bench")
        .name("bench")
        .station_id("bench-station")
        .phases(phases)
        .json_output(match args.indent {
            Some(n) => JsonOutput::to_dir(records).indent(n),
            None => JsonOutput::to_dir(records),
        })
        .quiet();
    test = match &args.journal {
        Some(dir) => test.journal_dir(dir),
        None => test.without_journal(),
    };
    if args.observe {
        test = test.observe(|received| {
            if let tofu::Received::Event(event) = received {
                // Streamed into a sink: the JSON is made and dropped as it goes, as an observer
                // that writes events out would (a `String` would hold a 1M-point sweep whole).
                std::hint::black_box(serde_json::to_writer(std::io::sink(), &*event).is_ok());
            }
        });
    }
    test
}

/// The time the JSON record output took, and the record it wrote moved to `--out` (the
/// only file in `records`, a folder of this run's own); returns the record's size.
fn take_record(execution: &Execution, records: &Path, out: &Path) -> Result<(f64, u64), String> {
    let json = execution
        .outputs
        .iter()
        .find(|o| o.name == "JSON record")
        .ok_or("the run has no JSON record output")?;
    if let Err(e) = &json.result {
        return Err(format!("the JSON record output failed: {e}"));
    }
    let json_s = json.elapsed.unwrap_or_default().as_secs_f64();
    let fail = |e: std::io::Error| format!("can't move the record from {}: {e}", records.display());
    let written: Vec<PathBuf> = std::fs::read_dir(records)
        .map_err(fail)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    let [record] = &written[..] else {
        return Err(format!(
            "{} records in {}",
            written.len(),
            records.display()
        ));
    };
    std::fs::rename(record, out).map_err(fail)?;
    std::fs::remove_dir_all(records).map_err(fail)?;
    Ok((json_s, std::fs::metadata(out).map_err(fail)?.len()))
}

fn run(args: &Args, started: Instant) -> Result<(), String> {
    // The record is written into a folder of this run's own beside `--out`, then moved there.
    let records = args
        .out
        .with_file_name(format!(".bench-records-{}", std::process::id()));
    let t_build = Instant::now();
    let mut test = build(args, &records);
    let build_s = t_build.elapsed().as_secs_f64();

    let t_execute = Instant::now();
    let execution = test.execute(|| "BENCH-DUT-0001");
    let total_s = t_execute.elapsed().as_secs_f64();
    let (json_s, json_bytes) = take_record(&execution, &records, &args.out)?;
    let execute_s = total_s - json_s;

    let record = &execution.record;

    let outcome = serde_json::to_value(record.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", record.outcome));
    let measurements_total: usize = record.phases.iter().map(|p| p.measurements.len()).sum();
    println!(
        "RESULT phases={} measurements_per_phase={} points={} passed={} outcome={outcome} \
         phase_records={} measurements_total={measurements_total} log_records={} json_bytes={json_bytes}",
        args.phases,
        args.measurements,
        args.points,
        if execution.passed() { "True" } else { "False" },
        record.phases.len(),
        record.log_records.len(),
    );
    let d = args.timing_decimals;
    println!(
        "TIMING import_s={:.d$} build_s={build_s:.d$} execute_s={execute_s:.d$} json_s={json_s:.d$}",
        0.0
    );
    if args.first_phase_stamp {
        match FIRST_PHASE.get() {
            Some((at, wall)) => {
                let unix_ns = wall
                    .duration_since(UNIX_EPOCH)
                    .map_err(|e| format!("the clock is before 1970: {e}"))?
                    .as_nanos();
                println!(
                    "STARTUP main_to_first_phase_s={:.6} first_phase_unix_ns={unix_ns}",
                    at.duration_since(started).as_secs_f64()
                );
            }
            None => println!("STARTUP no phase ran"),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let started = Instant::now();
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_take_values_both_ways() {
        let args = parse(&[
            "--phases",
            "3",
            "--measurements=2",
            "--points",
            "5",
            "--out",
            "x.json",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((args.phases, args.measurements, args.points), (3, 2, 5));
        assert_eq!(args.out, PathBuf::from("x.json"));
        let args = parse(&["--observe", "--journal", "j"]).unwrap().unwrap();
        assert!(args.observe);
        assert_eq!(args.journal, Some(PathBuf::from("j")));
    }

    #[test]
    fn bad_flags_and_values_are_named() {
        assert!(
            parse(&["--phases", "-1"])
                .unwrap_err()
                .contains("--phases: `-1`")
        );
        assert!(
            parse(&["--points"])
                .unwrap_err()
                .contains("--points needs a value")
        );
        assert!(
            parse(&["--phase", "3"])
                .unwrap_err()
                .contains("unknown argument `--phase`")
        );
        assert!(
            parse(&["--out", "/dev/null"])
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            parse(&["--timing-decimals", "12"])
                .unwrap_err()
                .contains("at most 9")
        );
        assert_eq!(
            parse(&["--timing-decimals=6"])
                .unwrap()
                .unwrap()
                .timing_decimals,
            6
        );
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
