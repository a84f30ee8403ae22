//! The TofuPilot examples of `examples/examples/`, run as real processes against the loopback
//! server: each must exit 0 and send the requests it says it sends.
//!
//! The examples are built once (`cargo build --examples -p examples`); each test runs one
//! example's binary with `TOFUPILOT_API_KEY`/`TOFUPILOT_URL` pointing at a fresh server,
//! `TOFU_OUTPUT_DIR` set to a fresh folder, and another fresh folder as the current directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::example_binaries::{executables, workspace_root};
use tempfile::TempDir;
use tofu_upload::Outbox;

use crate::support::capture::fixtures_dir;
use crate::support::server::{Recorded, TEST_KEY, TestServer};

fn example_data(name: &str) -> Vec<u8> {
    let path = workspace_root().join("examples/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("can't read {}: {e}", path.display()))
}

/// One finished run of an example.
struct Ran {
    output_dir: TempDir,
    stdout: String,
    console: String,
}

impl Ran {
    fn dir(&self) -> &Path {
        self.output_dir.path()
    }

    /// The one JSON record at the top of the output folder.
    fn record(&self) -> Value {
        let records: Vec<PathBuf> = std::fs::read_dir(self.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
            .collect();
        assert_eq!(records.len(), 1, "{records:?}\n{}", self.console);
        serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap()
    }

    /// The runs left in the outbox (`outbox/` of the output folder).
    fn outbox_len(&self) -> usize {
        let dir = self.dir().join("outbox");
        if !dir.exists() {
            return 0;
        }
        Outbox::open(dir).unwrap().entries().unwrap().len()
    }
}

/// Runs the example `name` with `args`, talking to `server` (or with no API key when `None`),
/// and checks it exits 0.
fn run(name: &str, server: Option<&TestServer>, args: &[&str]) -> Ran {
    let executable = executables()
        .get(name)
        .unwrap_or_else(|| panic!("cargo built no example named `{name}`"));
    let output_dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(executable);
    command
        .args(args)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", output_dir.path())
        .env("TOFU_UPLOAD_WAIT_S", "30")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFUPILOT_URL");
    if let Some(server) = server {
        command
            .env("TOFUPILOT_API_KEY", TEST_KEY)
            .env("TOFUPILOT_URL", server.url());
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("can't run {}: {e}", executable.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let console = format!(
        "--- stdout\n{stdout}--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "example `{name}` exited with {}\n{console}",
        output.status
    );
    assert!(
        !console.contains(TEST_KEY),
        "example `{name}` printed the API key\n{console}"
    );
    Ran {
        output_dir,
        stdout,
        console,
    }
}

fn calls<'r>(requests: &'r [Recorded], method: &str, path: &str) -> Vec<&'r Recorded> {
    requests
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

/// One attachment upload as the server saw it: initialize, then PUT, then (for attachments,
/// not for an imported report) sync.
#[derive(Debug)]
struct Upload {
    name: String,
    mime: String,
    data: Vec<u8>,
    run_id: Option<String>,
}

/// The uploads, in order. Each example uploads one file at a time, so an initialize's PUT is
/// the next PUT; the sync names the upload id of the PUT's URL.
fn uploads(requests: &[Recorded]) -> Vec<Upload> {
    let mut out = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        if !(r.method == "POST" && r.path == "/api/v1/uploads/initialize") {
            continue;
        }
        let body = r.json();
        let put = requests[i..]
            .iter()
            .find(|p| p.method == "PUT" && p.path.starts_with("/_storage/"))
            .unwrap_or_else(|| panic!("no PUT after initialize {body}"));
        let upload_id = &put.path["/_storage/".len()..];
        let run_id = requests
            .iter()
            .filter(|s| s.method == "POST" && s.path == "/api/v1/uploads/sync")
            .map(Recorded::json)
            .find(|s| s["upload_id"] == upload_id)
            .map(|s| s["run_id"].as_str().unwrap().to_owned());
        assert_eq!(body["sizeBytes"], put.body.len(), "{body}");
        out.push(Upload {
            name: body["name"].as_str().unwrap().to_owned(),
            mime: body["mimeType"].as_str().unwrap().to_owned(),
            data: put.body.clone(),
            run_id,
        });
    }
    out
}

fn serial(run: &Recorded) -> String {
    run.json()["unit_under_test"]["serial_number"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn millis(iso: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[test]
fn client_examples_without_a_key_say_what_to_set() {
    for name in [
        "client_create_run",
        "client_attachments",
        "get_runs",
        "get_attachments",
        "upload_report",
    ] {
        let ran = run(name, None, &[]);
        assert_eq!(ran.stdout.lines().count(), 1, "{name}: {}", ran.console);
        assert!(
            ran.stdout.contains("set TOFUPILOT_API_KEY"),
            "{}",
            ran.console
        );
        assert!(
            std::fs::read_dir(ran.dir()).unwrap().next().is_none(),
            "{name} wrote files without a key"
        );
    }
}

#[test]
fn client_create_run_sends_every_case_of_the_guide() {
    let server = TestServer::start();
    let ran = run("client_create_run", Some(&server), &[]);
    let requests = server.requests();
    assert_eq!(requests.len(), 9, "{requests:#?}");
    let runs = calls(&requests, "POST", "/api/v1/runs");
    let serials: Vec<String> = runs.iter().map(|r| serial(r)).collect();
    assert_eq!(
        serials,
        [
            "00102", "PCB1A002", "PCB1A001", "PCB1A003", "PCB1A004", "PCB1A005", "PCB1A001",
            "PCB1A006", "00007035"
        ]
    );
    let bodies: Vec<Value> = runs.iter().map(|r| r.json()).collect();
    for body in &bodies {
        assert_eq!(body["procedure_id"], "FVT1");
        assert_eq!(body["client"], "tofu");
    }

    assert_eq!(
        bodies[0]["unit_under_test"],
        json!({"serial_number": "00102", "part_number": "PCB01"})
    );
    assert!(bodies[0].get("phases").is_none());

    let optional = &bodies[1];
    assert_eq!(
        optional["unit_under_test"],
        json!({"serial_number": "PCB1A002", "part_number": "PCB1", "revision": "A", "batch_number": "12-24"})
    );
    assert_eq!(optional["procedure_version"], "1.2.3");
    assert_eq!(optional["duration"], "PT2M34S");

    let phase = &bodies[2]["phases"][0];
    assert_eq!(phase["name"], "phase_connect");
    assert_eq!(phase["outcome"], "PASS");
    assert_eq!(
        phase["end_time_millis"].as_i64().unwrap() - phase["start_time_millis"].as_i64().unwrap(),
        5012
    );

    assert_eq!(
        bodies[3]["phases"][0]["measurements"],
        json!([{"name": "input_voltage", "measured_value": 3.31, "units": "V",
                "lower_limit": 3.1, "upper_limit": 3.5, "outcome": "PASS"}])
    );
    assert_eq!(
        bodies[4]["phases"][0]["measurements"],
        json!([{"name": "firmware_version", "measured_value": "1.2.7", "outcome": "PASS"}])
    );
    let boolean = &bodies[5];
    assert_eq!(boolean["run_passed"], false);
    assert_eq!(boolean["phases"][0]["outcome"], "FAIL");
    assert_eq!(
        boolean["phases"][0]["measurements"],
        json!([{"name": "is_connected", "measured_value": false, "outcome": "FAIL"}])
    );

    let multi = &bodies[6]["phases"][0];
    assert_eq!(multi["name"], "loop_approach");
    let m = &multi["measurements"][0];
    assert_eq!(m["name"], "current_voltage_resistance_over_time");
    assert_eq!(m["units"], json!(["s", "V", "A", "Ohm"]));
    let rows = m["measured_value"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0], json!([0.0, 3.3, 0.3, 11.0]));
    assert_eq!(rows[1], json!([0.01, 3.35, 0.4, 8.375]));
    assert_eq!(
        rows[4].as_array().unwrap()[..3],
        [json!(0.04), json!(3.5), json!(0.7)]
    );

    let multiple = &bodies[7];
    assert_eq!(multiple["run_passed"], true);
    assert_eq!(
        multiple["phases"][0]["measurements"],
        json!([
            {"name": "is_connected", "measured_value": true, "outcome": "PASS"},
            {"name": "firmware_version", "measured_value": "1.2.7", "outcome": "PASS"},
            {"name": "input_voltage", "measured_value": 3.35, "units": "V",
             "lower_limit": 3.2, "upper_limit": 3.4, "outcome": "PASS"},
            {"name": "input_current", "measured_value": 1.234, "units": "A",
             "upper_limit": 1.5, "outcome": "PASS"},
        ])
    );

    let logs = &bodies[8];
    assert_eq!(
        logs["unit_under_test"],
        json!({"serial_number": "00007035", "part_number": "LOGS01"})
    );
    let entries: Vec<(&str, &str)> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|l| {
            assert_eq!(l["source_file"], "client_create_run.rs");
            assert!(l["line_number"].as_u64().unwrap() > 0);
            assert!(l["timestamp"].as_str().unwrap().ends_with('Z'));
        })
        .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            (
                "DEBUG",
                "Debug message: Detailed information for troubleshooting"
            ),
            ("INFO", "Info message: Normal operation information"),
            ("WARNING", "Warning: Something unexpected but not critical"),
            ("ERROR", "Error: A significant problem that needs attention"),
            (
                "CRITICAL",
                "Critical: System unstable, immediate action required"
            ),
        ]
    );

    // Each run's id and page are printed.
    let created = ran.stdout.lines().filter(|l| l.contains("/runs/")).count();
    assert_eq!(created, 9, "{}", ran.console);
}

#[test]
fn client_attachments_uploads_the_three_files() {
    let server = TestServer::start();
    let ran = run("client_attachments", Some(&server), &[]);
    let requests = server.requests();
    let runs = calls(&requests, "POST", "/api/v1/runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].json()["unit_under_test"],
        json!({"serial_number": "PCB1A001", "part_number": "PCB1"})
    );
    assert_eq!(
        calls(&requests, "POST", "/api/v1/uploads/initialize").len(),
        3
    );
    assert_eq!(calls(&requests, "POST", "/api/v1/uploads/sync").len(), 3);
    let run_id = server.client().get_runs("PCB1A001").unwrap()[0].id.clone();
    let uploads = uploads(&requests);
    let expected = [
        ("temperature-map.png", "image/png"),
        ("measurement-notes.txt", "text/plain"),
        ("raw_capture", "application/octet-stream"),
    ];
    assert_eq!(uploads.len(), 3);
    for (upload, (name, mime)) in uploads.iter().zip(expected) {
        assert_eq!(upload.name, name);
        assert_eq!(upload.mime, mime);
        assert!(upload.data == example_data(name), "{name}: bytes differ");
        assert_eq!(upload.run_id.as_deref(), Some(run_id.as_str()));
        assert!(
            ran.stdout.contains(&format!("attached {name}")),
            "{}",
            ran.console
        );
    }
}

#[test]
fn get_runs_saves_the_runs_of_the_unit() {
    let server = TestServer::start();
    let ran = run("get_runs", Some(&server), &[]);
    let path = ran.dir().join("get_runs-PCB1A001.json");
    assert!(
        ran.stdout.contains(&path.display().to_string()),
        "{}",
        ran.console
    );
    let requests = server.requests();
    let get = calls(&requests, "GET", "/api/v1/runs");
    assert_eq!(get.len(), 1);
    assert_eq!(
        get[0].query,
        [("serial_number".to_owned(), "PCB1A001".to_owned())]
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let runs = server.client().get_runs("PCB1A001").unwrap();
    assert_eq!(runs.len(), 1);
    let saved = saved.as_array().unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["id"], runs[0].id.as_str());
    assert_eq!(saved[0]["unit"]["serial_number"], "PCB1A001");
    assert_eq!(saved[0]["duration"], "PT23S");

    // Another unit, named on the command line.
    let ran = run("get_runs", Some(&server), &["SN/42"]);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(ran.dir().join("get_runs-SN_42.json")).unwrap())
            .unwrap();
    assert_eq!(saved[0]["unit"]["serial_number"], "SN/42");
}

#[test]
fn get_attachments_downloads_the_files_of_the_runs() {
    let server = TestServer::start();
    let ran = run("get_attachments", Some(&server), &[]);
    let runs = server.client().get_runs("PCB1A008").unwrap();
    assert_eq!(runs.len(), 1);
    let path = ran
        .dir()
        .join("attachments")
        .join(&runs[0].id)
        .join("measurement-notes.txt");
    assert!(
        ran.stdout.contains(&path.display().to_string()),
        "{}",
        ran.console
    );
    assert!(std::fs::read(&path).unwrap() == example_data("measurement-notes.txt"));
    let requests = server.requests();
    let downloads: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/_storage/"))
        .collect();
    assert_eq!(downloads.len(), 1);
}

#[test]
fn offline_upload_keeps_the_run_then_uploads_it_with_its_start_time() {
    let server = TestServer::start();
    let ran = run("offline_upload", Some(&server), &[]);
    let record = ran.record();
    let started = record["start_time_millis"].as_i64().unwrap();
    let requests = server.requests();
    let runs = calls(&requests, "POST", "/api/v1/runs");
    assert_eq!(runs.len(), 1, "{}", ran.console);
    let body = runs[0].json();
    assert_eq!(body["unit_under_test"]["serial_number"], "PCB1A007");
    assert_eq!(millis(&body["started_at"]), started);
    assert_eq!(
        body["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["phase_voltage_measure", "phase_firmware_version_check"]
    );
    // Sent at least two seconds after the run: the start time is the record's, not the upload's.
    let on_server = server.client().get_runs("PCB1A007").unwrap();
    assert_eq!(on_server.len(), 1);
    let run = &on_server[0];
    assert_eq!(run.started_at.unwrap().timestamp_millis(), started);
    assert!(run.created_at.unwrap().timestamp_millis() >= started + 2000);
    let uploads = uploads(&requests);
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].name, format!("PCB1A007.FVT1.{started}.json"));
    assert_eq!(uploads[0].run_id.as_deref(), Some(run.id.as_str()));
    assert_eq!(ran.outbox_len(), 0);
    assert!(
        ran.stdout.contains("uploaded with its original start time"),
        "{}",
        ran.console
    );
}

#[test]
fn offline_upload_without_a_key_keeps_the_run_in_the_outbox() {
    let ran = run("offline_upload", None, &[]);
    assert_eq!(ran.outbox_len(), 1, "{}", ran.console);
    let entries = Outbox::open(ran.dir().join("outbox"))
        .unwrap()
        .entries()
        .unwrap();
    let entry = entries[0].as_ref().unwrap();
    assert_eq!(entry.state.serial_number, "PCB1A007");
    assert_eq!(
        entry.state.started_at_millis,
        ran.record()["start_time_millis"].as_i64()
    );
    assert!(ran.stdout.contains("tofu-outbox"), "{}", ran.console);
}

#[test]
fn upload_report_imports_the_record_of_a_tofu_test() {
    let server = TestServer::start();
    let ran = run("upload_report", Some(&server), &[]);
    let record = ran.record();
    let started = record["start_time_millis"].as_i64().unwrap();
    let report_name = format!("PCB1A009.FVT1.{started}.json");
    let requests = server.requests();
    let imports = calls(&requests, "POST", "/api/v1/import");
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].json()["importer"], "OPENHTF");
    assert!(calls(&requests, "POST", "/api/v1/runs").is_empty());
    let uploads = uploads(&requests);
    assert_eq!(uploads.len(), 2, "{uploads:#?}");
    assert_eq!(uploads[0].name, report_name);
    assert!(uploads[0].data == std::fs::read(ran.dir().join(&report_name)).unwrap());
    assert_eq!(
        imports[0].json()["upload_id"].as_str().map(str::len),
        Some(36)
    );
    assert_eq!(uploads[1].name, "notes.txt");
    assert_eq!(uploads[1].data, b"probe calibration: OK\n");
    assert!(uploads[1].run_id.is_some());
    assert!(ran.stdout.contains("attached notes.txt"), "{}", ran.console);
}

#[test]
fn upload_report_imports_a_report_written_by_openhtf() {
    let server = TestServer::start();
    let sample = fixtures_dir().join("openhtf/sample_record.json");
    let ran = run("upload_report", Some(&server), &[sample.to_str().unwrap()]);
    let requests = server.requests();
    assert_eq!(calls(&requests, "POST", "/api/v1/import").len(), 1);
    let uploads = uploads(&requests);
    assert_eq!(uploads[0].name, "sample_record.json");
    assert!(uploads[0].data == std::fs::read(&sample).unwrap());
    // No tofu test ran: nothing was written.
    assert!(std::fs::read_dir(ran.dir()).unwrap().next().is_none());
}

#[test]
fn quickstart_uploads_its_run_and_report() {
    let server = TestServer::start();
    let ran = run("quickstart", Some(&server), &[]);
    let record = ran.record();
    let started = record["start_time_millis"].as_i64().unwrap();
    let requests = server.requests();
    let runs = calls(&requests, "POST", "/api/v1/runs");
    assert_eq!(runs.len(), 1, "{}", ran.console);
    let body = runs[0].json();
    assert_eq!(
        body["unit_under_test"],
        json!({"serial_number": "PCB01A0001", "part_number": "PCB01", "revision": "A"})
    );
    assert_eq!(body["procedure_id"], "FVT1");
    assert_eq!(body["procedure_version"], "1.0.0");
    assert_eq!(body["run_passed"], true);
    assert_eq!(millis(&body["started_at"]), started);
    let phases: Vec<&str> = body["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["Connect", "Power rails", "IV sweep", "calibration"]
    );
    let rails = &body["phases"][1]["measurements"];
    assert_eq!(rails[0]["name"], "input_voltage");
    assert_eq!(rails[0]["units"], "V");
    assert_eq!(rails[0]["lower_limit"], 4.75);

    let run_id = server.client().get_runs("PCB01A0001").unwrap()[0]
        .id
        .clone();
    let uploads = uploads(&requests);
    let names: Vec<&str> = uploads.iter().map(|u| u.name.as_str()).collect();
    let report_name = format!("PCB01A0001.FVT1.{started}.json");
    assert_eq!(names, [report_name.as_str(), "iv_sweep.csv"]);
    for upload in &uploads {
        assert_eq!(upload.run_id.as_deref(), Some(run_id.as_str()));
    }
    let report: Value = serde_json::from_slice(&uploads[0].data).unwrap();
    assert_eq!(uploads[0].mime, "application/json");
    assert_eq!(report["dut_id"], "PCB01A0001");
    assert_eq!(report["start_time_millis"], started);
    assert_eq!(report["phases"].as_array().map(Vec::len), Some(4));
    assert_eq!(ran.outbox_len(), 0, "{}", ran.console);
}

#[test]
fn attachments_example_uploads_every_file_and_the_report() {
    let server = TestServer::start();
    let ran = run("attachments", Some(&server), &[]);
    let started = ran.record()["start_time_millis"].as_i64().unwrap();
    let requests = server.requests();
    assert_eq!(calls(&requests, "POST", "/api/v1/runs").len(), 1);
    let run_id = server.client().get_runs("PCB1A001").unwrap()[0].id.clone();
    let uploads = uploads(&requests);
    let names: Vec<&str> = uploads.iter().map(|u| u.name.as_str()).collect();
    let report_name = format!("PCB1A001.FVT1.{started}.json");
    assert_eq!(
        names,
        [
            report_name.as_str(),
            "temperature-map.png",
            "measurement-notes.txt",
            "raw_capture",
            "readings.csv",
        ]
    );
    for upload in &uploads[1..4] {
        assert!(
            upload.data == example_data(&upload.name),
            "{}: bytes differ",
            upload.name
        );
    }
    assert_eq!(uploads[4].data, b"channel,volts\nVCC,3.30\nVDD,1.20\n");
    assert!(
        uploads
            .iter()
            .all(|u| u.run_id.as_deref() == Some(run_id.as_str()))
    );
    // The report attached to the run carries no attachment data: the files are uploaded apart.
    let report: Value = serde_json::from_slice(&uploads[0].data).unwrap();
    let attached = &report["phases"][0]["attachments"]["temperature-map.png"];
    assert!(
        attached.is_object() && attached.get("data").is_none(),
        "{attached}"
    );
    assert_eq!(ran.outbox_len(), 0, "{}", ran.console);
}
