//! TofuPilot's API v2 (issue #15) against the loopback server: the requests as the official
//! client's captures have them, the uploader's runs created once (`client_run_ref`), procedures
//! resolved by name, files stored, finalized and linked once each, an outbox written by one
//! version drained by the other, and the client's v2 calls.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tofu_core::prelude::*;
use tofu_upload::uploader::{Outbox, Progress, send};
use tofu_upload::{ApiVersion, Uploader};

use crate::support::capture::captured_path;
use crate::support::server::{TEST_KEY, TestServer};
use crate::support::v2_schema::run_create_problems;

#[phase]
#[measures(
    output_voltage: f64 = in_range(3.0, 3.6).marginal(3.05, 3.55).units(VOLT).doc("at J2"),
    firmware: String = matches_regex(r"^1\.2\.\d+$"),
    ratio: f64 = within_percent(10, 5),
    iv_curve: Sweep<1> = dimensions([VOLT]).units(AMPERE).each(in_range(0, 0.5)),
)]
fn voltage_test(
    test: &mut PhaseContext,
    m: &mut voltage_test::Measurements,
) -> Result<(), tofu_core::AttachError> {
    m.output_voltage.set(3.3);
    m.firmware.set("1.2.7");
    m.ratio.set(10.2);
    for (v, a) in [(0.0, 0.0), (1.0, 0.1), (2.0, 0.2)] {
        m.iv_curve.push([v], a);
    }
    tracing::info!("hello");
    test.attach("notes.txt", "rails OK\n")?;
    test.attach("scope.bin", vec![3u8; 700])
}

/// Runs the test once into the outbox in `dir` (kept offline: the tests send it by hand).
fn queue_run(dir: &Path, serial: &str) -> tofu_core::TestRecord {
    let mut test = Test::new("FVT1")
        .part_number("PCB-V1")
        .revision("A")
        .batch_number("12-24")
        .procedure_version("1.2.3")
        .sub_unit("SUB-001")
        .metadata("operator", "operator@example.invalid")
        .metadata("fixture", "F-7")
        .metadata("temperature_c", 23.5)
        .metadata("golden", false)
        .metadata("docstring", "run docstring")
        .phases([voltage_test])
        .json_output(JsonOutput::to_dir(dir))
        .output(Uploader::offline(dir.join("outbox"), "test"))
        .quiet();
    test.execute(|| serial).record
}

fn outbox(dir: &Path) -> Outbox {
    Outbox::open(dir.join("outbox")).unwrap()
}

/// Sends every entry of the outbox once (forced) with `client`.
fn send_all(client: &tofu_upload::blocking::TofuPilotClient, dir: &Path) -> Vec<Progress> {
    outbox(dir)
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| send(client, e.unwrap(), true).unwrap())
        .collect()
}

fn v2_client(server: &TestServer) -> tofu_upload::blocking::TofuPilotClient {
    server
        .builder_v2()
        .timeout(Duration::from_secs(2))
        .build_blocking()
        .unwrap()
}

fn creates(server: &TestServer) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/runs")
        .map(|r| r.json())
        .collect()
}

fn capture_body() -> Value {
    let capture: Value =
        serde_json::from_slice(&std::fs::read(captured_path("v2_runs_create")).unwrap()).unwrap();
    capture["requests"][0]["json"].clone()
}

/// `{key: type}` of an object, recursively (a list by its first item): what the comparison with
/// the capture looks at.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(n) if n.is_u64() || n.is_i64() => json!("number"),
        Value::Number(_) => json!("number"),
        Value::String(s) if crate::support::v2_schema::is_capture_time(s) => json!("time"),
        Value::String(_) => json!("string"),
        Value::Array(items) => json!([items.first().map(shape).unwrap_or(Value::Null)]),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// Every key the capture has at a level, that ours has too, has the same type; returns the
/// capture's keys ours lacks.
fn same_types(ours: &Value, capture: &Value, at: &str, missing: &mut Vec<String>) {
    match (ours, capture) {
        (Value::Object(o), Value::Object(c)) => {
            for (key, cv) in c {
                match o.get(key) {
                    Some(ov) => same_types(ov, cv, &format!("{at}.{key}"), missing),
                    None => missing.push(format!("{at}.{key}")),
                }
            }
        }
        (Value::Array(o), Value::Array(c)) => {
            if let (Some(o), Some(c)) = (o.first(), c.first()) {
                same_types(o, c, &format!("{at}[]"), missing);
            }
        }
        (o, c) => assert_eq!(shape(o), shape(c), "{at}: {o} against the capture's {c}"),
    }
}

#[test]
fn the_servers_check_takes_the_capture_and_refuses_what_differs_from_it() {
    let body = capture_body();
    assert_eq!(run_create_problems(&body), Vec::<String>::new());
    for (change, expected) in [
        (json!({"docstring": null}), "run.docstring: null"),
        (
            json!({"started_at": "2025-01-20T15:32:06.058Z"}),
            "run.started_at",
        ),
        (
            json!({"started_at": 1_737_387_126_058u64}),
            "run.started_at",
        ),
        (json!({"outcome": "pass"}), "run.outcome"),
        (
            json!({"run_passed": true}),
            "run.run_passed: not a v2 field",
        ),
        (json!({"metadata": {"a b": 1}}), "key \"a b\""),
        (
            json!({"metadata": {"nested": {"x": 1}}}),
            "run.metadata.nested",
        ),
        (json!({"slot_key": "0"}), "needs execution_id"),
        (json!({"serial_number": ""}), "run.serial_number"),
    ] {
        let mut body = body.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let problems = run_create_problems(&body);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{change}: {problems:?}"
        );
    }
    let mut body = capture_body();
    body["phases"][0]["measurements"][0]["validators"][0]["outcome"] = json!("MARGINAL");
    body["logs"][0]
        .as_object_mut()
        .unwrap()
        .remove("line_number");
    let problems = run_create_problems(&body);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

/// The request the uploader makes of a record, against the official client's: the same keys
/// with the same types and encodings wherever both have them, and tofu's values.
#[test]
fn the_uploaders_request_matches_the_official_clients_capture() {
    let server = TestServer::start();
    server.add_procedure("FVT1");
    let dir = tempfile::tempdir().unwrap();
    let record = queue_run(dir.path(), "SN-001");
    let progress = send_all(&v2_client(&server), dir.path());
    assert!(
        matches!(progress[..], [Progress::Done { .. }]),
        "{progress:?}"
    );
    assert_eq!(server.v2_problems(), Vec::<String>::new());
    let ours = creates(&server).remove(0);
    let capture = capture_body();
    let mut missing = Vec::new();
    same_types(&ours, &capture, "run", &mut missing);
    // What the capture's example has that this record has no use for: legacy limits and rows.
    missing.retain(|m| !m.contains("lower_limit") && !m.contains("upper_limit"));
    assert_eq!(missing, Vec::<String>::new(), "{ours:#}");
    assert_eq!(ours["serial_number"], "SN-001");
    assert_eq!(ours["procedure_id"], server.procedures()[0].0);
    assert_eq!(
        ours["started_at"],
        tofu_upload::v2::format_time(
            &chrono::DateTime::from_timestamp_millis(record.start_time_millis).unwrap()
        )
    );
    for (key, value) in [
        ("part_number", "PCB-V1"),
        ("revision_number", "A"),
        ("batch_number", "12-24"),
        ("procedure_version", "1.2.3"),
        ("operated_by", "operator@example.invalid"),
        ("outcome", "PASS"),
    ] {
        assert_eq!(ours[key], value, "{key}");
    }
    assert_eq!(ours["sub_units"], json!(["SUB-001"]));
    assert_eq!(ours["metadata"]["fixture"], "F-7");
    assert!(
        ours["client_run_ref"]
            .as_str()
            .is_some_and(|r| r.starts_with("tofu-"))
    );
    let phase = &ours["phases"][0];
    assert_eq!(
        (&phase["name"], &phase["retry_count"]),
        (&json!("voltage_test"), &json!(0))
    );
    let m = &phase["measurements"];
    assert_eq!(
        m[0]["validators"],
        json!([
            {"operator": ">=", "expected_value": 3.0, "outcome": "PASS"},
            {"operator": "<=", "expected_value": 3.6, "outcome": "PASS"},
            {"operator": ">", "expected_value": 3.05, "outcome": "PASS", "is_decisive": false},
            {"operator": "<", "expected_value": 3.55, "outcome": "PASS", "is_decisive": false},
        ])
    );
    assert_eq!(
        (&m[0]["units"], &m[0]["docstring"]),
        (&json!("V"), &json!("at J2"))
    );
    assert_eq!(
        m[1]["validators"],
        json!([{"operator": "matches", "expected_value": "^1\\.2\\.\\d+$", "outcome": "PASS"}])
    );
    let within = m[2]["validators"].as_array().unwrap();
    assert_eq!(
        (
            &within[0]["operator"],
            &within[0]["expected_value"],
            &within[1]["expected_value"]
        ),
        (&json!(">="), &json!(9.5), &json!(10.5))
    );
    assert!(
        within[0]["expression"]
            .as_str()
            .unwrap()
            .contains("within 5%")
    );
    let iv = &m[3];
    assert_eq!(iv["x_axis"], json!({"data": [0.0, 1.0, 2.0], "units": "V"}));
    assert_eq!(iv["y_axis"][0]["data"], json!([0.0, 0.1, 0.2]));
    assert_eq!(iv["y_axis"][0]["units"], "A");
    assert_eq!(
        iv["y_axis"][0]["aggregations"],
        json!([
            {"type": "min", "outcome": "PASS", "value": 0.0,
             "validators": [{"operator": ">=", "expected_value": 0.0, "outcome": "PASS"}]},
            {"type": "max", "outcome": "PASS", "value": 0.2,
             "validators": [{"operator": "<=", "expected_value": 0.5, "outcome": "PASS"}]},
        ])
    );
    assert!(iv.get("measured_value").is_none());
    let log = &ours["logs"][0];
    assert_eq!(
        (&log["level"], &log["message"]),
        (&json!("INFO"), &json!("hello"))
    );
}

#[test]
fn a_lost_create_answer_is_sent_again_with_the_same_ref_and_makes_one_run() {
    let server = TestServer::start();
    server.add_procedure("FVT1");
    // The run is stored, then the answer says 500; then a create is stored late.
    server.fail_after_work("POST", "/api/v2/runs", 500);
    let dir = tempfile::tempdir().unwrap();
    queue_run(dir.path(), "SN-ONCE");
    let ref_before = crate::support::outbox::first_entry(dir.path().join("outbox"))
        .state
        .client_run_ref
        .expect("the ref is saved when the run is queued");
    let client = v2_client(&server);
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Retry { .. }]
    ));
    assert_eq!(server.runs().len(), 1, "the server did create it");
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let creates = creates(&server);
    assert_eq!(creates.len(), 2);
    assert!(
        creates
            .iter()
            .all(|c| c["client_run_ref"] == ref_before.as_str())
    );
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        server.attachments_of(&runs[0].0).len(),
        3,
        "report and two files"
    );
    // No look-up and no second copy to delete: the ref is the proof.
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| (r.method == "GET" && r.path.contains("/runs")) || r.method == "DELETE")
    );

    // A create stored late, after the client gave up on it: the ref sent again returns it.
    server.store_late("POST", "/api/v2/runs", Duration::from_millis(300));
    queue_run(dir.path(), "SN-LATE");
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Retry { .. }]
    ));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(server.late_stores_pending(), 0);
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let late: Vec<_> = server
        .runs()
        .into_iter()
        .filter(|r| r.1["serial_number"] == "SN-LATE")
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(server.attachments_of(&late[0].0).len(), 3);
}

#[test]
fn procedures_are_resolved_by_name_created_when_allowed_and_kept_when_unknown() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queue_run(dir.path(), "SN-PROC");
    let client = v2_client(&server);
    let progress = send_all(&client, dir.path());
    let [Progress::Retry { error, .. }] = &progress[..] else {
        panic!("{progress:?}")
    };
    assert!(
        error.contains("\"FVT1\"") && error.contains("TOFUPILOT_PROCEDURE_ID"),
        "{error}"
    );
    assert!(server.runs().is_empty());
    let entry = crate::support::outbox::first_entry(dir.path().join("outbox"));
    assert_eq!(entry.state.status, tofu_upload::uploader::Status::Pending);
    assert_eq!(
        entry.state.api_version, None,
        "nothing was sent: no version fixed yet"
    );

    // Allowed to create it: created once, then found in the client's cache.
    let creating = server
        .builder_v2()
        .create_procedures(true)
        .build_blocking()
        .unwrap();
    assert!(matches!(
        send_all(&creating, dir.path())[..],
        [Progress::Done { .. }]
    ));
    queue_run(dir.path(), "SN-PROC2");
    assert!(matches!(
        send_all(&creating, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let requests = server.requests();
    let count = |method: &str, path: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    };
    assert_eq!(count("POST", "/api/v2/procedures"), 1);
    assert_eq!(
        count("GET", "/api/v2/procedures"),
        2,
        "once unknown, once before creating"
    );
    let procedures = server.procedures();
    assert_eq!(procedures.len(), 1);
    assert!(
        creates(&server)
            .iter()
            .all(|c| c["procedure_id"] == procedures[0].0.as_str())
    );

    // An id (TOFUPILOT_PROCEDURE_ID's way) is used as is; one TofuPilot doesn't know says so.
    let unknown = "0f6c1c43-3d57-4a8e-9e4b-7a6f0d1e2c3b";
    let by_id = server
        .builder_v2()
        .procedure_id(unknown)
        .build_blocking()
        .unwrap();
    queue_run(dir.path(), "SN-PROC3");
    let progress = send_all(&by_id, dir.path());
    let [Progress::Retry { error, .. }] = &progress[..] else {
        panic!("{progress:?}")
    };
    assert!(error.contains("Procedure not found"), "{error}");
    let known = server
        .builder_v2()
        .procedure_id(&procedures[0].0)
        .build_blocking()
        .unwrap();
    assert!(matches!(
        send_all(&known, dir.path())[..],
        [Progress::Done { .. }]
    ));
}

#[test]
fn each_file_is_stored_finalized_and_linked_once_whatever_fails_on_the_way() {
    let server = TestServer::start();
    server.add_procedure("FVT1");
    let dir = tempfile::tempdir().unwrap();
    queue_run(dir.path(), "SN-FILES");
    let client = v2_client(&server);
    // The first PUT fails; then a finalize's answer is lost after the work; then a link's.
    server.fail("PUT", "/_storage/", 500, json!({}));
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Retry { .. }]
    ));
    server.fail_after_work("POST", "/api/v2/attachments/", 500);
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Retry { .. }]
    ));
    server.fail_after_work("PATCH", "/api/v2/runs/", 502);
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Retry { .. }]
    ));
    let entry = crate::support::outbox::first_entry(dir.path().join("outbox"));
    assert!(
        entry
            .state
            .files
            .iter()
            .any(|f| f.upload_id.is_some() && !f.uploaded)
    );
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let runs = server.runs();
    assert_eq!(runs.len(), 1);
    let mut names: Vec<String> = server
        .attachments_of(&runs[0].0)
        .into_iter()
        .map(|f| {
            assert!(!f.1.is_empty(), "{}: the Content-Type of the PUT", f.0);
            f.0
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[1..], ["notes.txt", "scope.bin"]);
    assert!(names[0].starts_with("SN-FILES.FVT1."), "{names:?}");
    assert!(outbox(dir.path()).entries().unwrap().is_empty());
}

#[test]
fn an_outbox_written_by_one_version_drains_with_the_other() {
    let server = TestServer::start();
    server.add_procedure("FVT1");
    let dir = tempfile::tempdir().unwrap();
    // Queued by this version, sent through v1.
    queue_run(dir.path(), "SN-V1");
    let v1 = server.builder().build_blocking().unwrap();
    assert!(matches!(
        send_all(&v1, dir.path())[..],
        [Progress::Done { .. }]
    ));
    // An entry as an older tofu wrote it: no v2 request, no ref, no version; sent through v2.
    queue_run(dir.path(), "SN-OLD");
    let entry = crate::support::outbox::first_entry(dir.path().join("outbox"));
    std::fs::remove_file(entry.dir.join("request_v2.json")).unwrap();
    let state_path = entry.dir.join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    for key in ["api_version", "client_run_ref"] {
        state.as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&state_path, state.to_string()).unwrap();
    let v2 = v2_client(&server);
    assert!(matches!(
        send_all(&v2, dir.path())[..],
        [Progress::Done { .. }]
    ));
    assert_eq!(server.v2_problems(), Vec::<String>::new());
    let old = creates(&server).remove(0);
    assert_eq!(old["serial_number"], "SN-OLD");
    assert!(old["client_run_ref"].as_str().is_some());
    assert_eq!(
        old["phases"][0]["measurements"][0]["validators"][0],
        json!({"operator": ">=", "expected_value": 3.0, "outcome": "PASS"})
    );
    // A run whose create went through v2 stays on v2, whatever the station says now.
    server.fail_after_work("POST", "/api/v2/runs", 503);
    queue_run(dir.path(), "SN-STAYS");
    assert!(matches!(
        send_all(&v2, dir.path())[..],
        [Progress::Retry { .. }]
    ));
    assert_eq!(
        crate::support::outbox::first_entry(dir.path().join("outbox"))
            .state
            .api_version,
        Some(ApiVersion::V2)
    );
    assert!(matches!(
        send_all(&v1, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let stays: Vec<_> = server
        .runs()
        .into_iter()
        .filter(|r| r.1["serial_number"] == "SN-STAYS")
        .collect();
    assert_eq!(stays.len(), 1, "{stays:?}");
    assert!(!server.requests().iter().any(|r| r.path == "/api/v1/runs"
        && r.method == "POST"
        && r.json()["unit_under_test"]["serial_number"] == "SN-STAYS"));
}

#[test]
fn groups_go_as_sequences_and_flat_where_the_server_refuses_them() {
    let server = TestServer::start();
    server.add_procedure("FVT1");
    let dir = tempfile::tempdir().unwrap();
    let power = Subtest::new("power", [voltage_test]);
    let mut test = Test::new("FVT1")
        .phases([power])
        .json_output(JsonOutput::to_dir(dir.path()))
        .output(Uploader::offline(dir.path().join("outbox"), "test"))
        .quiet();
    let _ = test.execute(|| "SN-SEQ");
    server.refuse_sequences();
    let client = v2_client(&server);
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let creates = creates(&server);
    assert_eq!(creates.len(), 2);
    assert_eq!(creates[0]["sequences"][0]["path"], "power");
    assert_eq!(creates[0]["phases"][0]["sequence_path"], "power");
    assert!(creates[1].get("sequences").is_none());
    assert_eq!(creates[1]["phases"][0]["name"], "power/voltage_test");
    assert_eq!(server.runs().len(), 1);
}

#[phase]
fn power_on() {}

#[test]
fn nested_groups_and_subtests_go_as_sequences_parents_first() {
    let server = TestServer::start();
    server.add_procedure("FVT1");
    let dir = tempfile::tempdir().unwrap();
    let powered = PhaseGroup::new("powered")
        .setup([power_on])
        .main([Subtest::new("rails/3v3", [voltage_test])]);
    let mut test = Test::new("FVT1")
        .phases([PhaseNode::from(powered), PhaseNode::from(voltage_test)])
        .json_output(JsonOutput::to_dir(dir.path()))
        .output(Uploader::offline(dir.path().join("outbox"), "test"))
        .quiet();
    let _ = test.execute(|| "SN-NEST");
    let client = v2_client(&server);
    assert!(matches!(
        send_all(&client, dir.path())[..],
        [Progress::Done { .. }]
    ));
    let creates = creates(&server);
    assert_eq!(creates.len(), 1);
    let sequences: Vec<(&str, &str)> = creates[0]["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sequences,
        [("powered", "powered"), ("powered/rails_3v3", "rails/3v3")]
    );
    let paths: Vec<&Value> = creates[0]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["sequence_path"])
        .collect();
    // power_on in the group, voltage_test in its subtest, then outside both.
    assert_eq!(
        paths,
        [&json!("powered"), &json!("powered/rails_3v3"), &Value::Null]
    );
}

#[test]
fn the_clients_v2_calls_list_page_get_and_download() {
    let server = TestServer::start();
    let procedure = server.add_procedure("FVT1");
    let client = v2_client(&server);
    let t0 = chrono::DateTime::from_timestamp_millis(1_737_387_126_058).unwrap();
    let mut ids = Vec::new();
    for (i, outcome) in [
        tofu_upload::v2::RunOutcome::Pass,
        tofu_upload::v2::RunOutcome::Fail,
        tofu_upload::v2::RunOutcome::Pass,
    ]
    .into_iter()
    .enumerate()
    {
        let run = tofu_upload::v2::CreateRun::new(
            outcome,
            &procedure,
            "SN-LIST",
            t0 + chrono::Duration::seconds(i as i64),
            t0 + chrono::Duration::seconds(i as i64 + 1),
        );
        ids.push(client.create_run_v2(&run).unwrap());
    }
    let data = b"hello v2".to_vec();
    client
        .upload_attachment_v2(&ids[0], "hello.txt", Some("text/plain"), data.clone())
        .unwrap();
    let query = tofu_upload::v2::RunQuery::serial_number("SN-LIST").limit(2);
    let page = client.get_runs_v2(&query).unwrap();
    assert_eq!(page.data.len(), 2);
    assert!(page.meta.has_more);
    assert_eq!(client.all_runs_v2(&query, 100).unwrap().len(), 3);
    let failed = client
        .all_runs_v2(
            &tofu_upload::v2::RunQuery::serial_number("SN-LIST").outcome("FAIL"),
            100,
        )
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, ids[1]);
    let run = client.get_run_v2(&ids[0]).unwrap();
    assert_eq!(run.serial_number(), Some("SN-LIST"));
    assert_eq!(run.attachments.len(), 1);
    let out = tempfile::tempdir().unwrap();
    let paths = client.download_attachments_v2(&ids[0], out.path()).unwrap();
    assert_eq!(paths.len(), 1);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), data);
    let list = server
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path == "/api/v2/runs")
        .unwrap();
    assert_eq!(
        list.query,
        [
            ("serial_numbers".to_owned(), "SN-LIST".to_owned()),
            ("limit".to_owned(), "2".to_owned())
        ]
    );
    client.delete_runs_v2(&[&ids[2]]).unwrap();
    assert_eq!(client.all_runs_v2(&query, 100).unwrap().len(), 2);
    let e = client.get_run_v2("../x").unwrap_err().to_string();
    assert!(e.contains("not a TofuPilot id"), "{e}");
}

#[test]
fn tofu_outbox_says_which_api_each_run_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    queue_run(dir.path(), "SN-CLI");
    let list = |version: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"))
            .args([
                "--outbox",
                dir.path().join("outbox").to_str().unwrap(),
                "list",
            ])
            .env("TOFUPILOT_API_VERSION", version)
            .env_remove("TOFUPILOT_API_KEY")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        list("v2").contains("SN-CLI  pending  api v2  "),
        "{}",
        list("v2")
    );
    assert!(list("").contains("api v1  "), "{}", list(""));
    let mut entry = crate::support::outbox::first_entry(dir.path().join("outbox"));
    entry.state.api_version = Some(ApiVersion::V2);
    entry.save().unwrap();
    assert!(list("v1").contains("api v2 (sent)"), "{}", list("v1"));
    let _ = TEST_KEY;
}

#[test]
fn tofu_outbox_get_runs_lists_through_v2_when_it_is_on() {
    let server = TestServer::start();
    let procedure = server.add_procedure("FVT1");
    let client = v2_client(&server);
    let t0 = chrono::DateTime::from_timestamp_millis(1_737_387_126_058).unwrap();
    for _ in 0..2 {
        let mut run = tofu_upload::v2::CreateRun::new(
            tofu_upload::v2::RunOutcome::Fail,
            &procedure,
            "SN-CLI2",
            t0,
            t0,
        );
        run.execution_id = Some("batch-1".into());
        run.slot_key = Some("2".into());
        run.slot_name = Some("slot 3".into());
        client.create_run_v2(&run).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"))
        .args(["get-runs", "SN-CLI2"])
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .env("TOFUPILOT_API_VERSION", "v2")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SLOT"), "{stdout}");
    assert!(
        stdout.contains("2025-01-20 15:32:06.058   FAIL      slot 3"),
        "{stdout}"
    );
    assert!(stdout.contains("2 run(s) of SN-CLI2"), "{stdout}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v2/runs")
    );
}
