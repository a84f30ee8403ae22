//! What the client says when the server or the network misbehaves.

use std::time::{Duration, Instant};

use serde_json::json;
use tofu_upload::{
    ClientBuilder, CreateMeasurement as Measurement,
    CreateMeasurementOutcome as MeasurementOutcome, CreatePhase as Phase, CreateRun, Error,
};
use tofu_upload::{CreatePhaseOutcome as PhaseOutcome, UnitUnderTest};

use crate::support::capture::{self, Allow};
use crate::support::server::{SilentServer, TEST_KEY, TestServer, closed_port};

fn run(serial: &str, procedure: &str) -> CreateRun {
    CreateRun::new(UnitUnderTest::new(serial).part_number("PCB01"), true).procedure_id(procedure)
}

#[test]
fn bad_request_with_message_and_warnings_matches_the_capture() {
    let capture = capture::load("create_run_server_error");
    let server = TestServer::start();
    // The reference's SERVER.fail(...) body.
    let body = capture.requests()[0]["response_json"].clone();
    server.fail("POST", "/api/v1/runs", 400, body);
    let err = server
        .client()
        .create_run(&run("ERR001", "NOPE"))
        .unwrap_err();
    capture::assert_requests_match(&capture, &server.requests(), &Allow::default());

    let Error::Api {
        status,
        message,
        warnings,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    // The official client's result: status_code, error.message, warnings.
    let python = &capture.value["result"];
    assert_eq!(u64::from(*status), python["status_code"].as_u64().unwrap());
    assert_eq!(message, python["error"]["message"].as_str().unwrap());
    assert_eq!(
        warnings,
        &python["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "TofuPilot answered HTTP 400 Bad Request to POST {}/api/v1/runs: Procedure 'NOPE' not found",
            server.url()
        )
    );
    assert!(!err.is_retryable());
}

#[test]
fn server_error_500_is_reported_and_retryable() {
    let server = TestServer::start();
    server.fail(
        "POST",
        "/api/v1/runs",
        500,
        json!({"success": false, "error": {"message": "Internal server error"}}),
    );
    let err = server
        .client()
        .create_run(&run("E500", "FVT1"))
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("HTTP 500 Internal Server Error"),
        "{err}"
    );
    assert!(err.to_string().ends_with("Internal server error"), "{err}");
}

#[test]
fn server_error_without_json_quotes_the_body() {
    let server = TestServer::start();
    server.fail_raw(
        "POST",
        "/api/v1/runs",
        503,
        "upstream unavailable",
        "text/plain",
    );
    let err = server
        .client()
        .create_run(&run("E503", "FVT1"))
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.to_string().ends_with(": upstream unavailable"), "{err}");
}

#[test]
fn unauthorized_is_reported_without_the_key() {
    let server = TestServer::start();
    server.fail(
        "POST",
        "/api/v1/runs",
        401,
        json!({"success": false, "error": {"message": "Invalid API key, please verify your key and try again"}}),
    );
    let err = server
        .client()
        .create_run(&run("E401", "FVT1"))
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("Invalid API key, please verify"), "{text}");
    assert!(!text.contains(TEST_KEY), "{text}");
}

#[test]
fn malformed_json_answer_is_reported() {
    let server = TestServer::start();
    server.fail_raw(
        "POST",
        "/api/v1/runs",
        200,
        "<html>surprise</html>",
        "text/html",
    );
    let err = server
        .client()
        .create_run(&run("EJSON", "FVT1"))
        .unwrap_err();
    let Error::MalformedResponse {
        status,
        reason,
        endpoint,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 200);
    assert!(reason.contains("<html>surprise</html>"), "{reason}");
    assert!(endpoint.ends_with("/api/v1/runs"));
}

#[test]
fn answer_without_a_run_id_is_malformed() {
    let server = TestServer::start();
    server.fail("POST", "/api/v1/runs", 200, json!({"message": "ok"}));
    let err = server.client().create_run(&run("EID", "FVT1")).unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
}

#[test]
fn connection_refused_is_a_network_error() {
    let capture = capture::load("create_run_network_error");
    assert!(capture.requests().is_empty());
    let client = ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(format!("http://127.0.0.1:{}", closed_port()))
        .build_blocking()
        .unwrap();
    let err = client.create_run(&run("ERR004", "FVT1")).unwrap_err();
    let Error::Network {
        method,
        endpoint,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*method, "POST");
    assert!(endpoint.ends_with("/api/v1/runs"));
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    assert!(err.is_retryable());
    assert_eq!(err.status(), None);
}

#[test]
fn server_that_never_answers_times_out() {
    let silent = SilentServer::start();
    let timeout = Duration::from_millis(400);
    let client = ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(format!("http://{}", silent.addr))
        .timeout(timeout)
        .build_blocking()
        .unwrap();
    let started = Instant::now();
    let err = client.create_run(&run("ETIME", "FVT1")).unwrap_err();
    let elapsed = started.elapsed();
    let Error::Timeout {
        timeout: reported, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*reported, timeout);
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("400ms"), "{err}");
}

#[test]
fn non_finite_limit_is_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let bad = run("ENAN", "FVT1").phase(
        Phase::new("p", PhaseOutcome::Pass, 0, 1).measurement(
            Measurement::new("m", MeasurementOutcome::Pass)
                .value(1.0)
                .upper_limit(f64::INFINITY),
        ),
    );
    let err = server.client().create_run(&bad).unwrap_err();
    assert!(matches!(err, Error::Encode(_)), "{err:?}");
    assert!(err.to_string().contains("upper_limit"), "{err}");
    assert!(server.requests().is_empty());
}

#[test]
fn sync_failure_is_reported_per_file() {
    let server = TestServer::start();
    server.fail(
        "POST",
        "/api/v1/uploads/sync",
        409,
        json!({"success": false, "error": {"message": "Failed to sync upload with run"}}),
    );
    let err = server
        .client()
        .create_run(
            &run("ESYNC", "FVT1").attachment(crate::support::capture::example_data("raw_capture")),
        )
        .unwrap_err();
    let Error::Attachments { failures, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures[0].error.status(), Some(409));
    assert!(
        err.to_string().contains("Failed to sync upload with run"),
        "{err}"
    );
}
