//! The uploader and its outbox against the loopback server: every run reaches the server
//! exactly once, with all its files, whatever fails on the way.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tofu_core::prelude::*;
use tofu_core::{Execution, TestRecord};
use tofu_upload::uploader::{Outbox, Progress, Status, send};
use tofu_upload::{Config, Uploader};

use crate::support::server::{SilentServer, TEST_KEY, TestServer, closed_port};

#[phase]
#[measures(
    input_voltage: f64 = in_range(3.1, 3.5).units(VOLT),
    firmware_version: String = equals("1.2.7"),
    iv: Sweep<2> = dimensions([SECOND, VOLT]).units(OHM),
)]
fn measure(
    test: &mut PhaseContext,
    m: &mut measure::Measurements,
) -> Result<(), tofu_core::AttachError> {
    m.input_voltage.set(3.31);
    m.firmware_version.set("1.2.7");
    m.iv.push([0.0, 3.3], 100.0);
    m.iv.push([0.01, 3.35], 101.0);
    tracing::info!("measured");
    test.attach("notes.txt", "rails OK\n")
}

fn config(server_url: &str) -> Config {
    tofu_upload::ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(server_url)
        .timeout(Duration::from_secs(2))
        .config()
        .unwrap()
}

/// Runs the test once with `uploader` as output; records go to `dir`.
fn run_test(dir: &Path, uploader: Uploader, serial: &str) -> Execution {
    let mut test = Test::new("FVT1")
        .part_number("PCB1")
        .phases([measure])
        .json_output(JsonOutput::to_dir(dir))
        .output(uploader)
        .quiet();
    test.execute(|| serial)
}

fn outbox_ids(dir: &Path) -> Vec<String> {
    Outbox::open(dir)
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.unwrap().id)
        .collect()
}

/// Sends every entry of the outbox once (forced), returning what each came to.
fn send_all(server_url: &str, dir: &Path) -> Vec<Progress> {
    let client = tofu_upload::blocking::TofuPilotClient::from_config(config(server_url)).unwrap();
    let outbox = Outbox::open(dir).unwrap();
    outbox
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| send(&client, e.unwrap(), true).unwrap())
        .collect()
}

fn single_run(server: &TestServer) -> (String, Value) {
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn record_started_at(record: &TestRecord) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(record.start_time_millis)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[test]
fn a_finished_run_goes_up_with_its_measurements_logs_attachments_and_report() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let execution = run_test(
        dir.path(),
        Uploader::new(config(&server.url()), &outbox).wait_at_exit(Duration::from_secs(15)),
        "PCB1A003",
    );
    let (run_id, body) = single_run(&server);
    let record = &execution.record;
    assert_eq!(
        body["unit_under_test"],
        serde_json::json!({"serial_number": "PCB1A003", "part_number": "PCB1"})
    );
    assert_eq!(body["procedure_id"], "FVT1");
    assert_eq!(body["run_passed"], true);
    assert_eq!(body["client"], "tofu");
    assert_eq!(
        body["started_at"]
            .as_str()
            .unwrap()
            .trim_end_matches('Z')
            .get(..23),
        record_started_at(record).get(..23)
    );
    let phase = &body["phases"][0];
    assert_eq!(phase["name"], "measure");
    assert_eq!(phase["outcome"], "PASS");
    assert_eq!(
        phase["start_time_millis"],
        record.phases[0].start_time_millis
    );
    let m = &phase["measurements"];
    assert_eq!(m[0]["name"], "input_voltage");
    assert_eq!(m[0]["measured_value"], 3.31);
    assert_eq!(m[0]["units"], "V");
    assert_eq!(
        (m[0]["lower_limit"].as_f64(), m[0]["upper_limit"].as_f64()),
        (Some(3.1), Some(3.5))
    );
    assert_eq!(m[0]["validators"], serde_json::json!(["3.1 <= x <= 3.5"]));
    assert_eq!(m[1]["measured_value"], "1.2.7");
    assert_eq!(m[2]["units"], serde_json::json!(["s", "V", "\u{2126}"]));
    assert_eq!(
        m[2]["measured_value"],
        serde_json::json!([[0.0, 3.3, 100.0], [0.01, 3.35, 101.0]])
    );
    let logs = body["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["message"] == "measured" && l["level"] == "INFO"),
        "{logs:?}"
    );
    let files = server.attachments_of(&run_id);
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // The JSON report first (it must not fall over the file limit), then the phases' files.
    assert!(names[0].starts_with("PCB1A003.FVT1.") && names[0].ends_with(".json"));
    assert_eq!(
        files[1],
        (
            "notes.txt".to_owned(),
            "text/plain".to_owned(),
            b"rails OK\n".to_vec()
        )
    );
    let report: Value = serde_json::from_slice(&files[0].2).unwrap();
    assert_eq!(report["dut_id"], "PCB1A003");
    let keys: Vec<&String> = report.as_object().unwrap().keys().take(3).collect();
    assert_eq!(
        keys,
        ["dut_id", "start_time_millis", "end_time_millis"],
        "OpenHTF's key order"
    );
    assert!(
        report["phases"][0]["attachments"]["notes.txt"]
            .get("data")
            .is_none(),
        "report attachments carry no data"
    );
    assert!(
        outbox_ids(&outbox).is_empty(),
        "the outbox is empty once the run is up"
    );
}

#[test]
fn without_a_key_the_run_is_kept_and_later_goes_up_with_its_original_start_time() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let execution = run_test(
        dir.path(),
        Uploader::offline(&outbox, "no TOFUPILOT_API_KEY"),
        "SN-OFF-1",
    );
    let status = execution
        .outputs
        .iter()
        .find(|o| o.name == "TofuPilot")
        .unwrap();
    let message = status.result.as_ref().unwrap().as_deref().unwrap();
    assert!(
        message.starts_with("kept offline in") && message.contains("no TOFUPILOT_API_KEY"),
        "{message}"
    );
    assert_eq!(outbox_ids(&outbox).len(), 1);
    assert!(server.requests().is_empty());
    std::thread::sleep(Duration::from_millis(50));
    let progress = send_all(&server.url(), &outbox);
    assert!(
        matches!(progress[..], [Progress::Done { .. }]),
        "{progress:?}"
    );
    let (_, body) = single_run(&server);
    let sent = chrono::DateTime::parse_from_rfc3339(body["started_at"].as_str().unwrap()).unwrap();
    assert_eq!(sent.timestamp_millis(), execution.record.start_time_millis);
    assert!(outbox_ids(&outbox).is_empty());
}

#[test]
fn a_server_error_is_retried_after_retry_after_and_the_run_is_created_once() {
    let server = TestServer::start();
    server.fail_with_retry_after("POST", "/api/v1/runs", 429, 1);
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let started = Instant::now();
    let _ = run_test(
        dir.path(),
        Uploader::new(config(&server.url()), &outbox).wait_at_exit(Duration::from_secs(15)),
        "SN-429",
    );
    let (run_id, _) = single_run(&server);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(server.attachments_of(&run_id).len(), 2);
    let creates = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/runs")
        .count();
    assert_eq!(creates, 2, "one refused, one accepted");
    // A 429 may come after the work: the run is kept a little longer, to delete a late copy.
    let left = Outbox::open(&outbox).unwrap().entries().unwrap();
    assert!(
        left.iter().all(|e| {
            let s = &e.as_ref().unwrap().state;
            s.verify_until_millis.is_some() && s.files.iter().all(|f| f.uploaded)
        }),
        "{left:?}"
    );
}

#[test]
fn five_hundreds_and_503s_back_off_and_keep_the_entry() {
    let server = TestServer::start();
    server.fail_create(500, "boom");
    server.fail_create(503, "maintenance");
    let dir = tempfile::tempdir().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-5XX");
    for want in ["boom", "maintenance"] {
        let progress = send_all(&server.url(), dir.path());
        let [Progress::Retry { error, wait }] = &progress[..] else {
            panic!("{progress:?}")
        };
        assert!(error.contains(want), "{error}");
        assert!(*wait >= Duration::from_secs(15));
        let entry = crate::support::outbox::first_entry(dir.path());
        assert_eq!(entry.state.status, Status::Pending);
        assert!(entry.state.next_attempt_millis > chrono::Utc::now().timestamp_millis());
    }
    // A 5xx may come after the work: the run is looked for, created, and its copies looked for
    // a while longer.
    assert!(matches!(
        send_all(&server.url(), dir.path())[..],
        [Progress::Verifying { .. }]
    ));
    assert_eq!(server.runs().len(), 1);
}

#[test]
fn refusals_are_parked_with_the_servers_message_until_retried_by_hand() {
    let server = TestServer::start();
    server.fail_create(422, "Invalid input: phases.0.outcome");
    server.fail_create(400, "Procedure 'FVT1' not found");
    let dir = tempfile::tempdir().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-PARK");
    for want in [
        "Invalid input: phases.0.outcome",
        "Procedure 'FVT1' not found",
    ] {
        let progress = send_all(&server.url(), dir.path());
        let [Progress::Parked { error }] = &progress[..] else {
            panic!("{progress:?}")
        };
        assert!(error.contains(want), "{error}");
        let entry = crate::support::outbox::first_entry(dir.path());
        assert_eq!(entry.state.status, Status::Parked);
        assert!(!entry.state.create_sent, "a refused create created nothing");
        assert!(entry.state.last_error.as_deref().unwrap().contains(want));
        // A parked run is not sent again on its own.
        let client =
            tofu_upload::blocking::TofuPilotClient::from_config(config(&server.url())).unwrap();
        assert!(matches!(
            send(&client, entry, false).unwrap(),
            Progress::Skipped
        ));
    }
    // Retried by hand (what `tofu-outbox retry` does), it goes up.
    assert!(matches!(
        send_all(&server.url(), dir.path())[..],
        [Progress::Done { .. }]
    ));
    assert_eq!(server.runs().len(), 1);
}

#[test]
fn connection_refused_a_silent_server_and_a_malformed_answer_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-NET");
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let [Progress::Retry { error, .. }] = &send_all(&refused, dir.path())[..] else {
        panic!()
    };
    assert!(error.contains("network error"), "{error}");
    let silent = SilentServer::start();
    let [Progress::Retry { error, .. }] =
        &send_all(&format!("http://{}", silent.addr), dir.path())[..]
    else {
        panic!()
    };
    assert!(error.contains("no answer"), "{error}");

    let server = TestServer::start();
    server.fail_raw(
        "POST",
        "/api/v1/runs",
        200,
        "<html>gateway</html>",
        "text/html",
    );
    // A page that is not TofuPilot's answered: the station's URL is wrong, not the run.
    let [Progress::Settings { error, advice }] = &send_all(&server.url(), dir.path())[..] else {
        panic!()
    };
    assert!(error.contains("malformed"), "{error}");
    assert!(advice.contains("TOFUPILOT_URL"), "{advice}");
    // Every attempt so far may have created the run; nothing did, so the retry creates it once
    // (and looks for a late copy a while longer).
    assert!(matches!(
        send_all(&server.url(), dir.path())[..],
        [Progress::Verifying { .. }]
    ));
    assert_eq!(server.runs().len(), 1);
}

#[test]
fn a_lost_answer_to_the_create_is_looked_up_instead_of_creating_the_run_twice() {
    let server = TestServer::start();
    server.delay("POST", "/api/v1/runs", Duration::from_secs(4), 1);
    let dir = tempfile::tempdir().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-LOST");
    let [Progress::Retry { error, .. }] = &send_all(&server.url(), dir.path())[..] else {
        panic!()
    };
    assert!(error.contains("no answer"), "{error}");
    assert_eq!(server.runs().len(), 1, "the server did create it");
    assert!(matches!(
        send_all(&server.url(), dir.path())[..],
        [Progress::Done { .. }]
    ));
    let (run_id, _) = single_run(&server);
    assert_eq!(server.attachments_of(&run_id).len(), 2);
    let lookups = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/runs")
        .count();
    assert_eq!(lookups, 1);
}

#[test]
fn a_failed_put_only_redoes_the_files() {
    let server = TestServer::start();
    server.fail("PUT", "/_storage/", 500, serde_json::json!({}));
    let dir = tempfile::tempdir().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-PUT");
    let [Progress::Retry { .. }] = &send_all(&server.url(), dir.path())[..] else {
        panic!()
    };
    let entry = crate::support::outbox::first_entry(dir.path());
    assert!(entry.state.run_id.is_some(), "the run id is kept");
    assert!(matches!(
        send_all(&server.url(), dir.path())[..],
        [Progress::Done { .. }]
    ));
    let (run_id, _) = single_run(&server);
    assert_eq!(server.attachments_of(&run_id).len(), 2);
}

#[test]
fn a_process_killed_between_the_create_and_the_files_is_finished_by_the_next_one() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-KILL");
    // The first file's upload hangs: the process is killed while it waits.
    server.delay(
        "POST",
        "/api/v1/uploads/initialize",
        Duration::from_secs(60),
        1,
    );
    let cli = env!("CARGO_BIN_EXE_tofu-outbox");
    let mut child = Command::new(cli)
        .args(["--outbox", dir.path().to_str().unwrap(), "upload"])
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .requests()
        .iter()
        .any(|r| r.path == "/api/v1/uploads/initialize")
    {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the files"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(server.runs().len(), 1);
    server.clear_delays();
    let status = Command::new(cli)
        .args(["--outbox", dir.path().to_str().unwrap(), "upload"])
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .status()
        .unwrap();
    assert!(status.success());
    let (run_id, _) = single_run(&server);
    let files = server.attachments_of(&run_id);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(outbox_ids(dir.path()).is_empty());
}

#[test]
fn the_api_key_is_nowhere_in_the_outbox_records_or_messages() {
    let server = TestServer::start();
    server.fail_create(401, "nope");
    let dir = tempfile::tempdir().unwrap();
    let execution = run_test(
        dir.path(),
        Uploader::offline(dir.path().join("outbox"), "test"),
        "SN-KEY",
    );
    let _ = send_all(&server.url(), &dir.path().join("outbox"));
    let mut seen = format!("{execution:?}");
    for entry in walk(dir.path()) {
        seen.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    assert!(seen.contains("nope"), "the parked error is kept");
    assert!(!seen.contains(TEST_KEY));
    assert!(!seen.contains("SECRET"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn cli(server: &TestServer, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"))
        .args(args)
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_command_line_lists_shows_retries_uploads_and_gets_runs() {
    let server = TestServer::start();
    server.fail_create(400, "Unknown part PCB1");
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().to_str().unwrap();
    let _ = run_test(dir.path(), Uploader::offline(dir.path(), "test"), "SN-CLI");
    let id = outbox_ids(dir.path()).remove(0);

    let (ok, text) = cli(&server, &["--outbox", outbox, "list"]);
    assert!(
        ok && text.contains(&id) && text.contains("SN-CLI") && text.contains("pending"),
        "{text}"
    );
    let (ok, text) = cli(&server, &["--outbox", outbox, "upload"]);
    assert!(
        !ok && text.contains("refused and parked") && text.contains("Unknown part PCB1"),
        "{text}"
    );
    let (_, text) = cli(&server, &["--outbox", outbox, "list"]);
    assert!(
        text.contains("parked") && text.contains("Unknown part PCB1"),
        "{text}"
    );
    let (ok, text) = cli(&server, &["--outbox", outbox, "show", &id]);
    assert!(ok && text.contains("\"status\": \"parked\""), "{text}");
    let (ok, text) = cli(&server, &["--outbox", outbox, "upload"]);
    assert!(
        ok && text.contains("retry"),
        "a parked run waits for retry: {text}"
    );
    assert!(server.runs().is_empty());
    let (ok, _) = cli(&server, &["--outbox", outbox, "retry", &id]);
    assert!(ok);
    let (ok, text) = cli(&server, &["--outbox", outbox, "upload"]);
    assert!(ok && text.contains("1 uploaded, 0 failed"), "{text}");
    assert_eq!(server.runs().len(), 1);
    let (ok, text) = cli(&server, &["--outbox", outbox, "list"]);
    assert!(ok && text.contains("is empty"), "{text}");

    let saved = dir.path().join("runs.json");
    let (ok, text) = cli(
        &server,
        &["get-runs", "SN-CLI", "--out", saved.to_str().unwrap()],
    );
    assert!(ok, "{text}");
    let runs: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(runs[0]["unit"]["serial_number"], "SN-CLI");

    let record = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json") && p != &saved)
        .unwrap();
    // The outbox uploaded this record's run already: not imported twice, unless forced.
    let (ok, text) = cli(&server, &["upload-report", record.to_str().unwrap()]);
    assert!(ok && text.contains("already on TofuPilot"), "{text}");
    let (ok, text) = cli(
        &server,
        &["upload-report", record.to_str().unwrap(), "--force"],
    );
    assert!(ok && text.contains("created from"), "{text}");
    assert!(server.requests().iter().any(|r| r.path == "/api/v1/import"));

    let (ok, text) = cli(&server, &["frobnicate"]);
    assert!(!ok && text.contains("Usage:"), "{text}");
}

/// Folders left by processes killed while writing or deleting an entry are removed once old
/// enough; a young one (another process writing now) and the entries stay.
#[test]
fn leftovers_of_killed_processes_are_removed_once_old() {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let execution = run_test(
        dir.path(),
        Uploader::offline(&outbox_dir, "no key"),
        "SN-LEFT",
    );
    assert!(execution.outputs_ok());
    let outbox = Outbox::open(&outbox_dir).unwrap();
    for name in [".1-A-1-0.tmp", ".2-B-1-0.done", ".3-C-1-0.tmp"] {
        std::fs::create_dir_all(outbox_dir.join(name).join("files")).unwrap();
    }
    for old in [".1-A-1-0.tmp", ".2-B-1-0.done"] {
        let status = Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(outbox_dir.join(old))
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_eq!(outbox.remove_leftovers(Duration::from_secs(3600)), 2);
    let mut left: Vec<String> = std::fs::read_dir(&outbox_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    left.sort();
    assert_eq!(left, [".3-C-1-0.tmp"]);
    assert_eq!(outbox_ids(&outbox_dir).len(), 1);
}
