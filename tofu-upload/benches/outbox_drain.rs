//! Uploader throughput: runs drained from the outbox to a local TofuPilot-like server per
//! second, with and without attachments.
//!
//! ```sh
//! cargo bench -p tofu-upload --bench outbox_drain              # 1000 runs
//! cargo bench -p tofu-upload --bench outbox_drain -- --runs 200
//! cargo bench -p tofu-upload --bench outbox_drain -- --api v2     # TofuPilot's API v2 only
//! TMPDIR=/dev/shm cargo bench -p tofu-upload --bench outbox_drain   # outbox on tmpfs
//! ```
//!
//! For each case (0 files per run; 2 attachments of ~1 KB plus a ~4 KB JSON report per run)
//! N small runs (distinct serial numbers, one phase of 3 measurements) are enqueued into a
//! fresh outbox in a temporary folder (`Outbox::enqueue`: written and fsync'd), then drained
//! to a fresh loopback server in one of two ways:
//!
//! - `sequential`: `uploader::send(&client, entry, true)` for every entry, one after the
//!   other, with a blocking client;
//! - `background`: `Uploader::new(config, outbox_dir)` (its worker thread starts draining at
//!   once) then `.finish(120 s)`; timed from `Uploader::new` until `finish` returns.
//!
//! The server must then hold exactly N runs with the expected serial numbers (and 3 files
//! linked to each run when with attachments), and the outbox must be empty; otherwise the
//! program exits with status 1. Options: `--runs N` (1000), `--mode sequential|background`,
//! `--files 0|3` and `--api v1|v2` to run one case only (for profiling). Through v2 (issue
//! #15) each entry also holds its v2 request and a `client_run_ref`, the procedure `FVT1` is
//! resolved by name once (the server has it), and each file is initialized, PUT, finalized and
//! linked (4 requests, against v1's 3). The background worker prints a
//! line per uploaded run on stderr; results are on stdout.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[allow(dead_code)]
#[path = "../tests/it/support/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../tests/it/support/v2_schema.rs"]
mod v2_schema;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use server::{TEST_KEY, TestServer};
use tofu_upload::uploader::{FileToAttach, Outbox, Progress, send};
use tofu_upload::{
    ApiVersion, ClientBuilder, CreateMeasurement as Measurement,
    CreateMeasurementOutcome as MeasurementOutcome, CreatePhase as Phase,
    CreatePhaseOutcome as PhaseOutcome, CreateRun, UnitUnderTest, Units, Uploader,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sequential,
    Background,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Background => "background",
        }
    }
}

#[derive(Debug)]
struct Options {
    runs: usize,
    modes: Vec<Mode>,
    files: Vec<usize>,
    apis: Vec<ApiVersion>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        runs: 1000,
        modes: vec![Mode::Sequential, Mode::Background],
        files: vec![0, 3],
        apis: vec![ApiVersion::V1, ApiVersion::V2],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                options.runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--runs needs a positive number")?;
            }
            "--mode" => {
                options.modes = match args.next().as_deref() {
                    Some("sequential") => vec![Mode::Sequential],
                    Some("background") => vec![Mode::Background],
                    _ => return Err("--mode is sequential or background".into()),
                };
            }
            "--files" => {
                options.files = match args.next().as_deref() {
                    Some("0") => vec![0],
                    Some("3") => vec![3],
                    _ => return Err("--files is 0 or 3".into()),
                };
            }
            "--api" => {
                options.apis = match args.next().as_deref() {
                    Some("v1") => vec![ApiVersion::V1],
                    Some("v2") => vec![ApiVersion::V2],
                    _ => return Err("--api is v1 or v2".into()),
                };
            }
            // `cargo bench` passes `--bench`; other harness flags are ignored too.
            _ => {}
        }
    }
    Ok(options)
}

/// A small run: distinct serial number, one phase of 3 measurements.
fn request(i: usize, base_millis: i64) -> CreateRun {
    let start = base_millis + i as i64 * 1000;
    let mut run = CreateRun::new(UnitUnderTest::new(serial(i)).part_number("PCB01"), true)
        .procedure_id("FVT1");
    run.started_at = chrono::DateTime::from_timestamp_millis(start);
    run.duration = Some(Duration::from_millis(250));
    let mut voltage = Measurement::new("input_voltage", MeasurementOutcome::Pass);
    voltage.measured_value = Some(serde_json::json!(3.31));
    voltage.units = Some(Units::Single("V".into()));
    voltage.lower_limit = Some(3.1);
    voltage.upper_limit = Some(3.5);
    let mut current = Measurement::new("input_current", MeasurementOutcome::Pass);
    current.measured_value = Some(serde_json::json!(0.12));
    current.units = Some(Units::Single("A".into()));
    current.upper_limit = Some(0.5);
    let mut firmware = Measurement::new("firmware_version", MeasurementOutcome::Pass);
    firmware.measured_value = Some(serde_json::json!("1.2.7"));
    firmware.validators = Some(vec!["x == '1.2.7'".into()]);
    let phase = Phase::new("power_on", PhaseOutcome::Pass, start, start + 250)
        .measurement(voltage)
        .measurement(current)
        .measurement(firmware);
    run.phases = Some(vec![phase]);
    run
}

fn serial(i: usize) -> String {
    format!("BENCH-{i:06}")
}

/// Two attachments of ~1 KB and a ~4 KB JSON report, as the uploader makes of a record.
fn files(i: usize) -> Vec<FileToAttach> {
    let mut report = format!(
        "{{\"dut_id\":\"{}\",\"metadata\":{{\"procedure_id\":\"FVT1\"}},\"phases\":[",
        serial(i)
    );
    let mut n = 0;
    while report.len() < 4000 {
        if n > 0 {
            report.push(',');
        }
        report.push_str(&format!(
            "{{\"name\":\"m{n}\",\"measured_value\":{}.{n:03},\"outcome\":\"PASS\",\"units\":\"V\"}}",
            n % 10
        ));
        n += 1;
    }
    report.push_str("]}");
    vec![
        FileToAttach {
            name: "notes.txt".into(),
            mimetype: Some("text/plain".into()),
            data: "rails OK, ripple 12 mV\n".repeat(45).into_bytes(),
        },
        FileToAttach {
            name: "scope.bin".into(),
            mimetype: Some("application/octet-stream".into()),
            data: (0..1024u32)
                .map(|b| (b.wrapping_mul(31) ^ i as u32) as u8)
                .collect(),
        },
        FileToAttach {
            name: format!("{}.FVT1.{i}.json", serial(i)),
            mimetype: Some("application/json".into()),
            data: report.into_bytes(),
        },
    ]
}

/// Fills a fresh outbox; returns the seconds it took.
fn enqueue(outbox: &Outbox, runs: usize, with_files: bool) -> f64 {
    let base = chrono::Utc::now().timestamp_millis() - runs as i64 * 1000;
    let requests: Vec<(CreateRun, Vec<FileToAttach>)> = (0..runs)
        .map(|i| {
            (
                request(i, base),
                if with_files { files(i) } else { Vec::new() },
            )
        })
        .collect();
    let started = Instant::now();
    for (request, files) in &requests {
        // As the uploader queues a record: the v1 request and the v2 one.
        let v2 = tofu_upload::v2::from_v1(request);
        outbox
            .enqueue_marked(request, Some(&v2), files, false, false)
            .expect("enqueue");
    }
    started.elapsed().as_secs_f64()
}

/// Drains the outbox; returns the seconds it took and the seconds spent making the client
/// (included in the drain time for `background`, where `Uploader::new` makes it; not for
/// `sequential`), or what went wrong.
fn drain(
    mode: Mode,
    api: ApiVersion,
    server: &TestServer,
    dir: &Path,
    outbox: &Outbox,
) -> Result<(f64, f64), String> {
    match mode {
        Mode::Sequential => {
            let started = Instant::now();
            let client = ClientBuilder::new()
                .api_key(TEST_KEY)
                .base_url(server.url())
                .api_version(api)
                .build_blocking()
                .map_err(|e| e.to_string())?;
            let setup = started.elapsed().as_secs_f64();
            let started = Instant::now();
            for entry in outbox.entries().map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                match send(&client, entry, true).map_err(|e| e.to_string())? {
                    Progress::Done { .. } => {}
                    other => return Err(format!("send: {other:?}")),
                }
            }
            Ok((started.elapsed().as_secs_f64(), setup))
        }
        Mode::Background => {
            let config = ClientBuilder::new()
                .api_key(TEST_KEY)
                .base_url(server.url())
                .api_version(api)
                .config()
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let mut uploader = Uploader::new(config, dir);
            let setup = started.elapsed().as_secs_f64();
            uploader.finish(Duration::from_secs(120));
            let seconds = started.elapsed().as_secs_f64();
            drop(uploader);
            Ok((seconds, setup))
        }
    }
}

/// What the server and the outbox hold after a drain; `Err` describes every mismatch.
fn verify(server: &TestServer, outbox: &Outbox, runs: usize, files: usize) -> Result<(), String> {
    let mut problems = Vec::new();
    let created = server.runs();
    if created.len() != runs {
        problems.push(format!("{} runs on the server, not {runs}", created.len()));
    }
    let serials: BTreeSet<String> = created
        .iter()
        .filter_map(|(_, body)| {
            body["serial_number"]
                .as_str()
                .or_else(|| body["unit_under_test"]["serial_number"].as_str())
        })
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = (0..runs).map(serial).collect();
    if serials != expected {
        problems.push(format!(
            "{} distinct serial numbers on the server, {} of them expected",
            serials.len(),
            serials.intersection(&expected).count()
        ));
    }
    let uploads: usize = created
        .iter()
        .map(|(id, _)| server.attachments_of(id).len())
        .sum();
    if uploads != runs * files {
        problems.push(format!(
            "{uploads} files linked to runs on the server, not {}",
            runs * files
        ));
    }
    let left = outbox.entries().map(|e| e.len()).unwrap_or(usize::MAX);
    if left != 0 {
        problems.push(format!("{left} entries left in the outbox"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("outbox_drain: {e}");
            return ExitCode::from(2);
        }
    };
    let tmp = std::env::temp_dir();
    println!(
        "outbox_drain: {} runs per case, outboxes under {}",
        options.runs,
        tmp.display()
    );
    let mut failed = false;
    for &api in &options.apis {
        for &files in &options.files {
            for &mode in &options.modes {
                let server = TestServer::start();
                server.add_procedure("FVT1");
                let folder = tempfile::tempdir().expect("temporary folder");
                let dir = folder.path().join("outbox");
                let outbox = Outbox::open(&dir).expect("outbox");
                let enqueue_s = enqueue(&outbox, options.runs, files > 0);
                println!(
                    "ENQUEUE api={api} runs={} files_per_run={files} mode={} seconds={enqueue_s:.3} ms_per_run={:.3}",
                    options.runs,
                    mode.name(),
                    enqueue_s * 1000.0 / options.runs as f64
                );
                let result = drain(mode, api, &server, &dir, &outbox)
                    .and_then(|s| verify(&server, &outbox, options.runs, files).map(|()| s));
                match result {
                    Ok((seconds, setup)) => println!(
                        "DRAIN api={api} runs={} attachments_per_run={files} mode={} seconds={seconds:.3} runs_per_s={:.1} ms_per_run={:.3} requests={} client_setup_s={setup:.3}",
                        options.runs,
                        mode.name(),
                        options.runs as f64 / seconds,
                        seconds * 1000.0 / options.runs as f64,
                        server.requests().len()
                    ),
                    Err(e) => {
                        println!(
                            "FAILED api={api} runs={} attachments_per_run={files} mode={}: {e}",
                            options.runs,
                            mode.name()
                        );
                        failed = true;
                    }
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
