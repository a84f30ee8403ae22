//! Input edge cases through the uploader to the loopback server: hostile serial numbers,
//! measurement names with dots and unicode, NaN and infinities, limits that overflow, empty
//! and huge attachments (0 bytes, exactly 10 MiB, 10 MiB + 1), 100 and 101 attachments.
//!
//! Tests that check what the operator reads on the console run their test in a child process
//! (this test binary again, one `#[ignore]`d test selected by name), so its stderr can be read.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tofu_core::declare::{at_least, dimensions, in_range, within_percent};
use tofu_core::phase::MeasurementAccessError;
use tofu_core::prelude::*;
use tofu_core::unit::{SECOND, VOLT};
use tofu_core::{Execution, Phase};
use tofu_upload::{Config, MAX_ATTACHMENTS, MAX_FILE_SIZE, Uploader};

use crate::support::server::{TEST_KEY, TestServer};

const MIB: usize = 1024 * 1024;
/// Set in a child process: the loopback server's URL.
const CHILD_URL_ENV: &str = "TOFU_EDGE_CASES_SERVER";

fn config(url: &str) -> Config {
    tofu_upload::ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(url)
        .timeout(Duration::from_secs(10))
        .config()
        .unwrap()
}

/// A test of `phases` uploading to `url`, records and outbox in `dir`.
fn test(dir: &Path, url: &str, phases: Vec<Phase>) -> Test {
    Test::new("FVT1")
        .phases(phases)
        .json_output(JsonOutput::to_dir(dir))
        .output(
            Uploader::new(config(url), dir.join("outbox")).wait_at_exit(Duration::from_secs(30)),
        )
        .quiet()
}

/// Runs one unit and waits for its upload; the execution must have kept everything.
fn upload_one(server: &TestServer, phases: Vec<Phase>, serial: &str) -> (Execution, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test(dir.path(), &server.url(), phases);
    let execution = test.execute(|| serial);
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    drop(test); // waits for the upload
    assert_outbox_empty(&dir.path().join("outbox"));
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (id, body) = runs.into_iter().next().unwrap();
    (execution, id, body)
}

fn assert_outbox_empty(outbox: &Path) {
    let left = tofu_upload::Outbox::open(outbox)
        .unwrap()
        .entries()
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[phase]
#[measures(x: f64 = in_range(0, 1))]
fn simple(m: &mut simple::Measurements) {
    m.x.set(0.5);
}

#[test]
fn hostile_serial_numbers_reach_tofupilot_whole_with_safe_file_names() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let long = "L".repeat(1000);
    let serials = [
        "PCB/01",
        "../../../etc/passwd",
        "..",
        "with spaces  and\ttabs",
        "новая плата №7",
        "板子-001 🔥",
        long.as_str(),
    ];
    let mut test = test(dir.path(), &server.url(), vec![simple]);
    for serial in serials {
        let execution = test.execute(|| serial);
        assert!(
            execution.passed() && execution.outputs_ok(),
            "{serial:?}: {:?}",
            execution.outputs
        );
    }
    drop(test);
    assert_outbox_empty(&dir.path().join("outbox"));
    let runs = server.runs();
    assert_eq!(runs.len(), serials.len());
    for serial in serials {
        let (id, _) = runs
            .iter()
            .find(|(_, body)| body["unit_under_test"]["serial_number"] == serial)
            .unwrap_or_else(|| panic!("no run of {serial:?}"));
        let files = server.attachments_of(id);
        assert_eq!(files.len(), 1, "the report");
        let (name, mime, data) = &files[0];
        assert_eq!(mime, "application/json");
        assert!(
            name.starts_with(&format!("{}.FVT1.", tofu_core::fs::safe_file_name(serial)))
                && !name.contains('/')
                && !name.starts_with('.'),
            "{serial:?} -> {name:?}"
        );
        let report: Value = serde_json::from_slice(data).unwrap();
        assert_eq!(
            report["dut_id"], serial,
            "the report keeps the real serial number"
        );
    }
    // Nothing was written outside the records folder.
    assert!(!dir.path().parent().unwrap().join("etc").exists());
}

#[test]
fn measurement_names_with_dots_and_unicode_reach_tofupilot_as_they_are() {
    let server = TestServer::start();
    let names = ["rail.3v3", "température_°C", "電圧.入力", "with space"];
    let mut phase = Phase::dynamic("names.with.dots ünï");
    for name in names {
        phase = phase.measure::<f64, _>(name, in_range(0, 10).units(VOLT));
    }
    let phase = phase.run(move |_test, m| -> Result<(), MeasurementAccessError> {
        for (i, name) in names.iter().enumerate() {
            m.get::<f64>(name)?.set(i as f64);
        }
        Ok(())
    });
    let (_, _, body) = upload_one(&server, vec![phase], "SN-NAMES");
    let phase = &body["phases"][0];
    assert_eq!(phase["name"], "names.with.dots ünï");
    let sent: Vec<(&str, f64)> = phase["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["measured_value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("rail.3v3", 0.0),
            ("température_°C", 1.0),
            ("電圧.入力", 2.0),
            ("with space", 3.0)
        ]
    );
}

#[test]
fn non_finite_values_are_sent_as_null_and_failed_and_the_report_holds_them_as_strings() {
    let server = TestServer::start();
    let phase = Phase::dynamic("non_finite")
        .measure::<f64, _>("nan", in_range(0, 1).units(VOLT))
        .measure::<f64, _>("pos_inf", at_least(0))
        .measure::<f64, _>("neg_inf", in_range(-1, 1))
        .measure::<Sweep<1>, _>("sweep", dimensions([SECOND]).units(VOLT))
        .run(|_test, m| -> Result<(), MeasurementAccessError> {
            m.get::<f64>("nan")?.set(f64::NAN);
            m.get::<f64>("pos_inf")?.set(f64::INFINITY);
            m.get::<f64>("neg_inf")?.set(f64::NEG_INFINITY);
            let mut sweep = m.get::<Sweep<1>>("sweep")?;
            sweep.push([0.0], 1.0);
            sweep.push([f64::INFINITY], f64::NAN);
            Ok(())
        });
    let (_, id, body) = upload_one(&server, vec![phase], "SN-NAN");
    assert_eq!(body["run_passed"], false);
    let measurements = body["phases"][0]["measurements"].as_array().unwrap();
    let by_name = |name: &str| measurements.iter().find(|m| m["name"] == name).unwrap();
    for name in ["nan", "pos_inf", "neg_inf"] {
        let m = by_name(name);
        assert_eq!(m["measured_value"], Value::Null, "{name}: JSON has no NaN");
        assert_eq!(m["outcome"], "FAIL", "{name}");
    }
    assert_eq!(by_name("nan")["lower_limit"], 0.0);
    assert_eq!(by_name("nan")["upper_limit"], 1.0);
    assert_eq!(by_name("nan")["validators"], json!(["0 <= x <= 1"]));
    assert_eq!(
        by_name("sweep")["measured_value"],
        json!([[0.0, 1.0], [null, null]])
    );
    // The report attached to the run has them as OpenHTF writes them.
    let files = server.attachments_of(&id);
    let report: Value = serde_json::from_slice(&files[0].2).unwrap();
    let m = &report["phases"][0]["measurements"];
    assert_eq!(
        (
            &m["nan"]["measured_value"],
            &m["pos_inf"]["measured_value"],
            &m["neg_inf"]["measured_value"]
        ),
        (&json!("nan"), &json!("inf"), &json!("-inf"))
    );
}

#[test]
fn a_run_refused_for_a_limit_that_overflows_still_reaches_tofupilot() {
    let server = TestServer::start();
    // 1e308 ± 100 % is beyond f64: refused before any phase runs (it would pass every value,
    // and TofuPilot's limits can't be infinite); the ERROR run is still uploaded.
    let phase = Phase::dynamic("huge")
        .measure::<f64, _>("huge", within_percent(1e308, 100))
        .run(|_test, m| -> Result<(), MeasurementAccessError> {
            m.get::<f64>("huge")?.set(1.5e308);
            Ok(())
        });
    let (execution, id, body) = upload_one(&server, vec![phase], "SN-HUGE");
    assert_eq!(execution.record.outcome, tofu_core::Outcome::Error);
    assert_eq!(body["run_passed"], false);
    let report: Value = serde_json::from_slice(&server.attachments_of(&id)[0].2).unwrap();
    assert_eq!(report["outcome_details"][0]["code"], "InvalidDeclaration");
    assert!(
        report["outcome_details"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("100% of 1e+308 is not a finite number")),
        "{}",
        report["outcome_details"]
    );
}

// --- attachments at and over the limits: run in a child process to read its console ----------

/// Runs the ignored test `name` of this binary in a child process talking to `server`;
/// returns its stderr. The child must succeed.
fn child(name: &str, server: &TestServer) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL_ENV, server.url())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
    stderr
}

/// In a child: runs one unit whose phase attaches what `attach` does, and waits for its upload.
fn child_run(attach: fn(&mut PhaseContext) -> Result<(), tofu_core::AttachError>) {
    let Ok(url) = std::env::var(CHILD_URL_ENV) else {
        eprintln!("run by its parent test, with {CHILD_URL_ENV} set; nothing to do alone");
        return;
    };
    let phase = Phase::dynamic("attach").run(move |test, _m| attach(test));
    let dir = tempfile::tempdir().unwrap();
    let mut test = test(dir.path(), &url, vec![phase]);
    let execution = test.execute(|| "SN-FILES");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    drop(test);
    assert_outbox_empty(&dir.path().join("outbox"));
}

#[test]
#[ignore = "run by sizes_at_the_limit_upload_and_one_byte_over_is_refused_by_name_and_size"]
fn child_sizes() {
    child_run(|test| {
        test.attach("empty.bin", Vec::new())?;
        test.attach("exactly_10MiB.bin", vec![0x5Au8; 10 * MIB])?;
        test.attach("over_10MiB.bin", vec![0xA5u8; 10 * MIB + 1])?;
        test.attach("after.txt", "still sent")
    });
}

#[test]
fn sizes_at_the_limit_upload_and_one_byte_over_is_refused_by_name_and_size() {
    assert_eq!(MAX_FILE_SIZE, 10 * MIB as u64);
    let server = TestServer::start();
    let stderr = child("edge_cases::child_sizes", &server);
    assert!(
        stderr.contains(
            "TofuPilot: attachment over_10MiB.bin (10485761 bytes) is over the 10 MiB limit and is not uploaded (it stays in the JSON record)"
        ),
        "{stderr}"
    );
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let files = server.attachments_of(&runs[0].0);
    let sent: Vec<(&str, usize)> = files
        .iter()
        .map(|(n, _, d)| (n.as_str(), d.len()))
        .collect();
    assert_eq!(
        sent[1..],
        [
            ("empty.bin", 0),
            ("exactly_10MiB.bin", 10 * MIB),
            ("after.txt", 10)
        ],
        "the report, then every file within the limit"
    );
    assert!(
        files[2].2.iter().all(|b| *b == 0x5A),
        "exactly 10 MiB, intact"
    );
    // Nothing over the limit was even announced to the server.
    let initialized: Vec<u64> = server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/uploads/initialize")
        .filter_map(|r| r.json()["sizeBytes"].as_u64())
        .collect();
    assert!(
        initialized.iter().all(|s| *s <= MAX_FILE_SIZE),
        "{initialized:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn attach_many(test: &mut PhaseContext, count: usize) -> Result<(), tofu_core::AttachError> {
    for i in 0..count {
        test.attach(&format!("file_{i:03}.txt"), format!("attachment {i}"))?;
    }
    Ok(())
}

#[test]
#[ignore = "run by a_hundred_attachments_upload_and_the_hundred_and_first_is_reported"]
fn child_100() {
    child_run(|test| attach_many(test, 100));
}

#[test]
#[ignore = "run by a_hundred_attachments_upload_and_the_hundred_and_first_is_reported"]
fn child_101() {
    child_run(|test| attach_many(test, 101));
}

#[test]
fn a_hundred_attachments_upload_and_the_hundred_and_first_is_reported() {
    assert_eq!(MAX_ATTACHMENTS, 100);
    for (child_name, count) in [
        ("edge_cases::child_100", 100),
        ("edge_cases::child_101", 101),
    ] {
        let server = TestServer::start();
        let stderr = child(child_name, &server);
        let runs = server.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let files = server.attachments_of(&runs[0].0);
        let names: Vec<&str> = files.iter().map(|(n, _, _)| n.as_str()).collect();
        assert!(names[0].ends_with(".json"), "the report first: {names:?}");
        let expected: Vec<String> = (0..100).map(|i| format!("file_{i:03}.txt")).collect();
        assert_eq!(
            names[1..],
            expected,
            "{count}: the first 100 attachments, in order"
        );
        let refused =
            "TofuPilot: attachment file_100.txt is over the limit of 100 files and is not uploaded";
        assert_eq!(stderr.contains(refused), count == 101, "{count}: {stderr}");
        assert_eq!(
            stderr.matches("is not uploaded").count(),
            count - 100,
            "{stderr}"
        );
    }
}
