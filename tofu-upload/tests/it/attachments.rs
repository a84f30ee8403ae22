//! Attachments: the initialize → PUT → sync flow, the client-side limits, and
//! failures after the run exists.

use tofu_upload::{CreateRun, Error, MAX_FILE_SIZE, UnitUnderTest};

use crate::support::capture::{self, Allow, example_data};
use crate::support::server::TestServer;

fn run() -> CreateRun {
    CreateRun::new(UnitUnderTest::new("PCB1A001").part_number("PCB1"), true).procedure_id("FVT1")
}

#[test]
fn attachments_by_path_match_the_capture() {
    let capture = capture::load("create_run_attachments");
    let files = [
        "temperature-map.png",
        "measurement-notes.txt",
        "raw_capture",
    ]
    .map(example_data);
    let server = TestServer::start();
    let mut run = run();
    for f in &files {
        run = run.attachment(f);
    }
    let created = server.client().create_run(&run).unwrap();

    let requests = server.requests();
    let allow = Allow {
        binary: files
            .iter()
            .enumerate()
            .map(|(i, f)| (2 + 3 * i, std::fs::read(f).unwrap()))
            .collect(),
        ..Allow::default()
    };
    capture::assert_requests_match(&capture, &requests, &allow);

    // Each upload is linked to the run that was created, with the id the server gave.
    assert_eq!(created.attachments.len(), 3);
    for (i, uploaded) in created.attachments.iter().enumerate() {
        let init = &requests[1 + 3 * i];
        let sync = requests[3 + 3 * i].json();
        assert_eq!(sync["run_id"], created.id.as_str());
        assert_eq!(sync["upload_id"], uploaded.upload_id.as_str());
        assert_eq!(init.json()["name"], uploaded.name.as_str());
        assert_eq!(uploaded.path.as_deref(), Some(files[i].as_path()));
        let (_, stored) = server.stored(&uploaded.upload_id).unwrap();
        assert_eq!(stored, std::fs::read(&files[i]).unwrap());
    }
}

#[test]
fn attachment_too_large_is_refused_before_anything_is_sent() {
    let capture = capture::load("create_run_attachment_too_large");
    assert!(capture.requests().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(10 * 1024 * 1024 + 1)
        .unwrap();
    let server = TestServer::start();
    let err = server
        .client()
        .create_run(&run().attachment(&big))
        .unwrap_err();
    let Error::FileTooLarge { path, size, max } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, &big);
    assert_eq!((*size, *max), (MAX_FILE_SIZE + 1, MAX_FILE_SIZE));
    // The official client's wording, with our path.
    let python = capture.value["exception"].as_str().unwrap();
    let python_message = python
        .strip_prefix("tofupilot.error_tracking.ApiV1Error: ")
        .unwrap()
        .replace("/home/tester/big.bin", &big.display().to_string());
    assert_eq!(err.to_string(), python_message);
    assert!(server.requests().is_empty(), "nothing may be sent");
}

#[test]
fn more_than_100_attachments_are_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let mut run = run();
    for _ in 0..101 {
        run = run.attachment(example_data("raw_capture"));
    }
    let err = server.client().create_run(&run).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyAttachments {
                count: 101,
                max: 100
            }
        ),
        "{err:?}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn missing_attachment_is_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let missing = example_data("no-such-file.bin");
    let err = server
        .client()
        .create_run(&run().attachment(&missing))
        .unwrap_err();
    let Error::FileNotFound { path } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, &missing);
    assert!(err.to_string().contains("no-such-file.bin"));
    assert!(server.requests().is_empty());
}

#[test]
fn failed_put_reports_the_file_and_keeps_the_run_and_the_other_files() {
    let server = TestServer::start();
    // The storage refuses the first PUT (an expired presigned URL, say).
    server.fail_raw(
        "PUT",
        "/_storage/",
        403,
        "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        "application/xml",
    );
    let png = example_data("temperature-map.png");
    let notes = example_data("measurement-notes.txt");
    let err = server
        .client()
        .create_run(&run().attachment(&png).attachment(&notes))
        .unwrap_err();
    let Error::Attachments {
        run_id,
        run_url,
        uploaded,
        failures,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(!run_id.is_empty());
    assert!(run_url.is_some());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].path.as_deref(), Some(png.as_path()));
    assert_eq!(failures[0].error.status(), Some(403));
    assert!(
        failures[0]
            .error
            .to_string()
            .contains("Request has expired")
    );
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].name, "measurement-notes.txt");
    assert_eq!(err.created_run_id(), Some(run_id.as_str()));
    let text = err.to_string();
    assert!(
        text.contains(run_id.as_str()) && text.contains("temperature-map.png"),
        "{text}"
    );

    // No sync for the failed upload: run, init, PUT (403), init, PUT, sync.
    let calls: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            let path = if r.path.starts_with("/_storage/") {
                "/_storage/<id>"
            } else {
                &r.path
            };
            format!("{} {path}", r.method)
        })
        .collect();
    assert_eq!(
        calls,
        [
            "POST /api/v1/runs",
            "POST /api/v1/uploads/initialize",
            "PUT /_storage/<id>",
            "POST /api/v1/uploads/initialize",
            "PUT /_storage/<id>",
            "POST /api/v1/uploads/sync",
        ]
    );

    // Retrying only the failed attachment links it to the same run.
    let retried = server.client().upload_attachment(run_id, &png).unwrap();
    assert_eq!(retried.name, "temperature-map.png");
    let last = server.requests().last().unwrap().json();
    assert_eq!(last["run_id"], run_id.as_str());
}

#[test]
fn attachment_bytes_with_an_unknown_type_are_octet_stream() {
    let server = TestServer::start();
    let client = server.client();
    let created = client.create_run(&run()).unwrap();
    let uploaded = client
        .upload_attachment_bytes(&created.id, "dump", None, b"\x00\x01".to_vec())
        .unwrap();
    let requests = server.requests();
    assert_eq!(
        requests[1].json(),
        serde_json::json!({"name": "dump", "mimeType": "application/octet-stream", "sizeBytes": 2})
    );
    assert_eq!(
        requests[2].header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        requests[2].header("authorization"),
        None,
        "no key to storage"
    );
    assert_eq!(server.stored(&uploaded.upload_id).unwrap().1, b"\x00\x01");
}
