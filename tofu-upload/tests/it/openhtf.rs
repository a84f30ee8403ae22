//! Creating runs from saved OpenHTF JSON reports (`POST /import`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use tofu_upload::{ClientBuilder, Error};

use crate::support::capture::{self, Allow, fixtures_dir};
use crate::support::server::TestServer;

/// Copies a reference report under the name the capture uploaded it as.
fn report_as(source: &Path, name: &str, dir: &Path) -> PathBuf {
    let dest = dir.join(name);
    std::fs::copy(source, &dest).unwrap();
    dest
}

fn captured_report(name: &str) -> PathBuf {
    capture::captured_path(name)
}

fn upload_name(capture: &capture::Capture) -> String {
    capture.requests()[0]["json"]["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn report_import_matches_the_capture() {
    let capture = capture::load("create_run_from_openhtf_report");
    let dir = tempfile::tempdir().unwrap();
    // The very report the official client uploaded (17 313 bytes), under its name.
    let path = report_as(
        &captured_report("openhtf_report_sample"),
        &upload_name(&capture),
        dir.path(),
    );
    let report = std::fs::read(&path).unwrap();
    let server = TestServer::start();
    let imported = server
        .client()
        .create_run_from_openhtf_report(&path)
        .unwrap();

    let requests = server.requests();
    let notes = b"probe calibration: OK\n".to_vec();
    let allow = Allow {
        binary: vec![(1, report), (4, notes)],
        ..Allow::default()
    };
    capture::assert_requests_match(&capture, &requests, &allow);

    assert!(!imported.id.is_empty());
    assert!(
        imported
            .message
            .as_deref()
            .unwrap()
            .starts_with("Run imported")
    );
    assert_eq!(imported.report_upload_id, requests[2].json()["upload_id"]);
    assert_eq!(requests[5].json()["run_id"], imported.id.as_str());
    assert_eq!(imported.attachments.len(), 1);
    assert_eq!(imported.attachments[0].name, "notes.txt");
}

#[test]
fn openhtf_reference_sample_record_is_accepted() {
    let source = fixtures_dir().join("openhtf/sample_record.json");
    let report = std::fs::read(&source).unwrap();
    let server = TestServer::start();
    let imported = server
        .client()
        .create_run_from_openhtf_report(&source)
        .unwrap();
    let requests = server.requests();
    let calls: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.split("/_storage/").next().unwrap()
            )
        })
        .collect();
    let mut want = vec![
        "POST /api/v1/uploads/initialize",
        "PUT ",
        "POST /api/v1/import",
    ];
    for _ in 0..3 {
        want.extend([
            "POST /api/v1/uploads/initialize",
            "PUT ",
            "POST /api/v1/uploads/sync",
        ]);
    }
    assert_eq!(calls, want);
    assert_eq!(
        requests[0].json(),
        serde_json::json!({"name": "sample_record.json", "mimeType": "application/json",
                           "sizeBytes": report.len()})
    );
    assert_eq!(requests[1].body, report);
    let import = requests[2].json();
    assert_eq!(import["importer"], "OPENHTF");
    assert_eq!(import["client"], "tofu");
    assert_eq!(import["client_version"], tofu_upload::CLIENT_VERSION);

    // The attachments of phase power_on, in file order, decoded from base64.
    let record: serde_json::Value = serde_json::from_slice(&report).unwrap();
    let power_on = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "power_on")
        .unwrap();
    let expected = [
        ("rails.txt", "text/plain"),
        ("blob.bin", "application/octet-stream"),
        ("trace.csv", "text/csv"),
    ];
    for (i, (name, mime)) in expected.iter().enumerate() {
        let init = requests[3 + 3 * i].json();
        let data = base64::engine::general_purpose::STANDARD
            .decode(power_on["attachments"][name]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            init,
            serde_json::json!({"name": name, "mimeType": mime, "sizeBytes": data.len()})
        );
        let put = &requests[4 + 3 * i];
        assert_eq!(put.header("content-type"), Some(*mime));
        assert_eq!(put.body, data);
        assert_eq!(put.header("authorization"), None);
        assert_eq!(requests[5 + 3 * i].json()["run_id"], imported.id.as_str());
    }
    let names: Vec<&str> = imported
        .attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["rails.txt", "blob.bin", "trace.csv"]);
}

#[test]
fn import_error_says_the_server_message_and_uploads_no_attachment() {
    let capture = capture::load("openhtf_upload_import_error");
    let dir = tempfile::tempdir().unwrap();
    // The callback's report of another run (the captured one is not stored), under the
    // captured name: only its size differs.
    let path = report_as(
        &captured_report("openhtf_report_as_uploaded_by_callback"),
        &upload_name(&capture),
        dir.path(),
    );
    let server = TestServer::start();
    server.fail(
        "POST",
        "/api/v1/import",
        400,
        serde_json::json!({"success": false, "error": {"message": "Procedure FVT1 not found"}}),
    );
    let err = server
        .client()
        .create_run_from_openhtf_report(&path)
        .unwrap_err();
    let allow = Allow {
        vary: vec!["sizeBytes"],
        any_binary_size: true,
        ..Allow::default()
    };
    capture::assert_requests_match(&capture, &server.requests(), &allow);
    let Error::Api {
        status,
        method,
        message,
        endpoint,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*status, *method), (400, "POST"));
    assert_eq!(message, "Procedure FVT1 not found");
    assert_eq!(endpoint, &format!("{}/api/v1/import", server.url()));
    assert_eq!(err.created_run_id(), None);
}

#[test]
fn report_without_inline_attachment_data_imports_and_names_the_attachment() {
    // The OpenHTF callback's report (attachments written without data): the official
    // callback took the bytes from the in-memory record; from a file they are not
    // there. The import requests match the capture; the attachment is reported.
    let capture = capture::load("openhtf_tofupilot_context_manager");
    let dir = tempfile::tempdir().unwrap();
    let path = report_as(
        &captured_report("openhtf_report_as_uploaded_by_callback"),
        &upload_name(&capture),
        dir.path(),
    );
    let server = TestServer::start();
    let err = server
        .client()
        .create_run_from_openhtf_report(&path)
        .unwrap_err();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let allow = Allow {
        binary: vec![(1, std::fs::read(&path).unwrap())],
        ..Allow::default()
    };
    for (i, want) in capture.requests().iter().take(3).enumerate() {
        capture::assert_request_matches(&capture, i, &requests[i], want, &allow);
    }
    let Error::Attachments {
        run_id, failures, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(!run_id.is_empty());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].name, "notes.txt");
    assert_eq!(failures[0].phase.as_deref(), Some("phase_attachment"));
    assert!(
        err.to_string()
            .contains("notes.txt (phase phase_attachment)"),
        "{err}"
    );
}

#[test]
fn invalid_reports_and_short_keys_are_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"[1, 2, 3]").unwrap();
    let err = server
        .client()
        .create_run_from_openhtf_report(&bad)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidReport { .. }), "{err:?}");

    let err = server
        .client()
        .create_run_from_openhtf_report(dir.path().join("missing.json"))
        .unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }), "{err:?}");

    let short = ClientBuilder::new()
        .api_key("short")
        .base_url(server.url())
        .build_blocking()
        .unwrap();
    let err = short
        .create_run_from_openhtf_report(fixtures_dir().join("openhtf/sample_record.json"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidApiKey), "{err:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn report_from_memory_goes_the_same_way() {
    let server = TestServer::start();
    let report = std::fs::read(captured_report("openhtf_report_sample")).unwrap();
    let imported = server
        .client()
        .create_run_from_openhtf_json("SN1.test.json", report.clone())
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].json()["name"], "SN1.test.json");
    assert_eq!(requests[1].body, report);
    assert_eq!(imported.attachments.len(), 1);
}
