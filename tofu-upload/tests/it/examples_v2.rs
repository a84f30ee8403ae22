//! Every framework example (a `Test` or a `Station` with the uploader) run as a real process with
//! `TOFUPILOT_API_VERSION=v2` against the loopback server: each run it records goes up through
//! v2 only, once, with its JSON report, and every create is as the official client's requests
//! (the server refuses one that is not); `multi_slot`'s four runs share one `execution_id` with
//! four distinct slots.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::example_binaries::executables;
use crate::support::server::{TEST_KEY, TestServer};

/// The examples whose tests upload through `Uploader`, with what they read on stdin.
const FRAMEWORK_EXAMPLES: &[(&str, &str)] = &[
    ("quickstart", ""),
    ("attachments", ""),
    ("boolean", ""),
    ("limits_file", ""),
    ("logging", ""),
    ("multi_dimensional", ""),
    ("multi_slot", ""),
    ("multiple_measurements", ""),
    ("numeric", ""),
    ("optional_metadata", ""),
    ("phases", ""),
    ("plugs", ""),
    ("prompt", "bad\nPCB01A0001\n\n3.3\n"),
    ("repeat", ""),
    ("required_metadata", ""),
    ("scpi_bench", ""),
    ("string", ""),
    ("teardown", ""),
    ("timeout", ""),
];

/// The JSON records an example wrote (outside its outbox).
fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "outbox") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "json")
                && let Ok(record) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap())
                && record.get("dut_id").is_some()
            {
                out.push(record);
            }
        }
    }
    out
}

/// Runs `name` with v2 against `server`; returns its records and console.
fn run_v2(name: &str, stdin: &str, server: &TestServer) -> (Vec<Value>, String, tempfile::TempDir) {
    let executable = executables()
        .get(name)
        .unwrap_or_else(|| panic!("cargo built no example named `{name}`"));
    let output_dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(executable)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", output_dir.path())
        .env("TOFU_UPLOAD_WAIT_S", "30")
        .env("TOFU_PROMPT_STDIN", "1")
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .env("TOFUPILOT_API_VERSION", "v2")
        .env("TOFUPILOT_CREATE_PROCEDURES", "1")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("TOFUPILOT_PROCEDURE_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("can't run {}: {e}", executable.display()));
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().unwrap();
    let console = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Some examples end FAIL on purpose (multi_slot's slot 3): they exit 1, never by a signal.
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "example `{name}` exited with {}\n{console}",
        output.status
    );
    assert!(
        !console.contains(TEST_KEY),
        "`{name}` printed the key\n{console}"
    );
    (records(output_dir.path()), console, output_dir)
}

#[test]
fn every_framework_example_uploads_its_runs_through_v2_once_as_the_official_client_would() {
    let mut summary = Vec::new();
    for (name, stdin) in FRAMEWORK_EXAMPLES {
        let server = TestServer::start();
        let began = std::time::Instant::now();
        let (records, console, dir) = run_v2(name, stdin, &server);
        let took = began.elapsed();
        assert!(!records.is_empty(), "`{name}` wrote no record\n{console}");
        assert_eq!(
            server.v2_problems(),
            Vec::<String>::new(),
            "`{name}`'s request differs from the official client's\n{console}"
        );
        let requests = server.requests();
        assert!(
            !requests.iter().any(|r| r.path.starts_with("/api/v1/")),
            "`{name}` used v1"
        );
        let runs = server.runs();
        assert_eq!(
            runs.len(),
            records.len(),
            "`{name}`: one run per record\n{console}"
        );
        for record in &records {
            let serial = record["dut_id"].as_str().unwrap();
            let started = record["start_time_millis"].as_i64().unwrap();
            let matching: Vec<&(String, Value)> = runs
                .iter()
                .filter(|(_, body)| {
                    body["serial_number"] == serial
                        && body["started_at"].as_str().and_then(|t| {
                            chrono::DateTime::parse_from_rfc3339(t)
                                .ok()
                                .map(|t| t.timestamp_millis())
                        }) == Some(started)
                })
                .collect();
            assert_eq!(matching.len(), 1, "`{name}`: {serial} once\n{console}");
            let (id, body) = matching[0];
            assert_eq!(body["outcome"], record["outcome"], "`{name}`");
            let phases = record["phases"].as_array().unwrap();
            assert_eq!(
                body["phases"].as_array().map(Vec::len),
                Some(phases.len()),
                "`{name}`: every attempt of every phase"
            );
            let files = server.attachments_of(id);
            let report = format!("{serial}.");
            assert!(
                files
                    .iter()
                    .any(|f| f.0.starts_with(&report) && f.0.ends_with(".json")),
                "`{name}`: the report is attached: {:?}",
                files.iter().map(|f| &f.0).collect::<Vec<_>>()
            );
            let attached: usize = phases
                .iter()
                .map(|p| p["attachments"].as_object().map_or(0, |a| a.len()))
                .sum();
            assert_eq!(files.len(), attached + 1, "`{name}`: each file once");
            // The instruments the run used, and the limits file, reach TofuPilot.
            for instrument in record["metadata"]["instruments"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let key = format!("instrument.{}", instrument["name"].as_str().unwrap());
                assert!(
                    body["metadata"][&key] == instrument["idn"]
                        || body["metadata"][&key] == instrument["address"],
                    "`{name}`: {key} in {}",
                    body["metadata"]
                );
            }
            if let Some(sha1) = record["metadata"]["limits_file"]["sha1"].as_str() {
                assert!(
                    body["config"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|c| c["key"] == "limits_file.sha1" && c["value"] == sha1),
                    "`{name}`: {}",
                    body["config"]
                );
            }
        }
        if *name == "scpi_bench" {
            assert!(
                runs[0].1["metadata"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| k.starts_with("instrument."))
                    .count()
                    >= 3,
                "{}",
                runs[0].1["metadata"]
            );
        }
        if *name == "limits_file" {
            assert!(runs[0].1["config"].is_array(), "{}", runs[0].1);
        }
        let outbox = dir.path().join("outbox");
        if outbox.exists() {
            let left = tofu_upload::Outbox::open(&outbox)
                .unwrap()
                .entries()
                .unwrap()
                .len();
            assert_eq!(left, 0, "`{name}` left runs in the outbox\n{console}");
        }
        summary.push(format!(
            "{name}: {} run(s), {:.1} s",
            records.len(),
            took.as_secs_f64()
        ));
    }
    println!("{}", summary.join("\n"));
}

#[test]
fn multi_slot_uploads_four_runs_of_one_execution_in_four_slots() {
    let server = TestServer::start();
    let (records, console, _dir) = run_v2("multi_slot", "", &server);
    assert_eq!(records.len(), 4, "{console}");
    let runs = server.runs();
    assert_eq!(runs.len(), 4, "{console}");
    let executions: BTreeSet<&str> = runs
        .iter()
        .map(|(_, b)| b["execution_id"].as_str().unwrap())
        .collect();
    assert_eq!(executions.len(), 1, "one execution_id: {executions:?}");
    let slots: BTreeSet<(&str, &str)> = runs
        .iter()
        .map(|(_, b)| {
            (
                b["slot_key"].as_str().unwrap(),
                b["slot_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(slots.len(), 4, "four distinct slots: {slots:?}");
    // The record says which slot each run is; TofuPilot is told the same.
    for record in &records {
        let run = runs
            .iter()
            .find(|(_, b)| b["serial_number"] == record["dut_id"])
            .unwrap();
        assert_eq!(run.1["slot_name"], record["slot"]["name"]);
        assert_eq!(run.1["execution_id"], record["slot"]["execution_id"]);
    }
    // One procedure, created once by name for the four runs.
    assert_eq!(server.procedures().len(), 1);
}
