//! `get_runs` and attachment downloads.

use std::time::Duration;

use tofu_upload::{CreateRun, Error, Run, RunOutcome, UnitUnderTest};

use crate::create_run::t0;
use crate::support::capture::{self, Allow, example_data};
use crate::support::server::TestServer;

#[test]
fn get_runs_matches_the_capture_and_reads_its_answer() {
    let capture = capture::load("get_runs");
    let server = TestServer::start();
    let client = server.client();
    let created = client
        .create_run(
            &CreateRun::new(UnitUnderTest::new("00102-GET").part_number("PCB01"), true)
                .procedure_id("FVT1")
                .started_at(t0())
                .duration(Duration::from_secs(23)),
        )
        .unwrap();
    let runs = client.get_runs("00102-GET").unwrap();
    capture::assert_requests_match(&capture, &server.requests(), &Allow::default());

    // The capture server's answer reads into the same typed runs.
    let theirs: Vec<Run> =
        serde_json::from_value(capture.requests()[1]["response_json"].clone()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(theirs.len(), 1);
    let (ours, theirs) = (&runs[0], &theirs[0]);
    assert_eq!(ours.id, created.id);
    for run in [ours, theirs] {
        assert_eq!(run.outcome, Some(RunOutcome::Pass));
        assert_eq!(run.serial_number(), Some("00102-GET"));
        assert_eq!(run.duration(), Some(Duration::from_secs(23)));
        assert_eq!(
            run.started_at.unwrap().timestamp_millis(),
            t0().timestamp_millis()
        );
        assert_eq!(
            (run.ended_at.unwrap() - run.started_at.unwrap()).num_seconds(),
            23
        );
        assert_eq!(run.procedure.as_ref().unwrap().id.as_deref(), Some("FVT1"));
        let revision = run.unit.as_ref().unwrap().revision.as_ref().unwrap();
        assert_eq!(revision.identifier.as_deref(), Some("A"));
        assert_eq!(
            revision.component.as_ref().unwrap().part_number.as_deref(),
            Some("PCB01")
        );
        assert!(run.attachments.is_empty() && run.phases.is_empty() && run.logs.is_empty());
    }
}

#[test]
fn empty_serial_number_is_refused_without_a_request() {
    let server = TestServer::start();
    let err = server.client().get_runs("").unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid input: A 'serial_number' is required to fetch runs."
    );
    assert!(server.requests().is_empty());
}

#[test]
fn runs_list_attachments_with_download_urls_and_they_download() {
    let server = TestServer::start();
    let client = server.client();
    let png = example_data("temperature-map.png");
    let notes = example_data("measurement-notes.txt");
    client
        .create_run(
            &CreateRun::new(UnitUnderTest::new("DL-1").part_number("PCB01"), true)
                .procedure_id("FVT1")
                .attachment(&png)
                .attachment(&notes),
        )
        .unwrap();
    let runs = client.get_runs("DL-1").unwrap();
    let attachments = &runs[0].attachments;
    assert_eq!(attachments.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    for (attachment, source) in attachments.iter().zip([&png, &notes]) {
        let url = attachment.download_url().unwrap();
        assert!(url.starts_with(&server.url()), "{url}");
        let name = attachment.filename.as_deref().unwrap();
        let dest = dir.path().join(name);
        let written = client.download_attachment(attachment, &dest).unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        assert_eq!(bytes, std::fs::read(source).unwrap());
        assert_eq!(written, bytes.len() as u64);
        assert_eq!(attachment.size, Some(written));
        assert!(!dir.path().join(format!("{name}.part")).exists());
    }
    // Downloads from the instance itself carry the key; the test server is the
    // instance here.
    let last = server.requests().last().unwrap().clone();
    assert_eq!(last.method, "GET");
    assert!(last.header("authorization").is_some());
}

#[test]
fn download_failure_says_the_status_and_leaves_no_file() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    let err = server
        .client()
        .download(&format!("{}/_storage/unknown", server.url()), &dest)
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert!(!dest.exists());
    assert!(!dir.path().join("x.bin.part").exists());
}

#[test]
fn download_to_another_host_does_not_send_the_key() {
    let instance = TestServer::start();
    let storage = TestServer::start();
    // Put something in the "storage" server through its own upload flow.
    let client = storage.client();
    let created = client
        .create_run(
            &CreateRun::new(UnitUnderTest::new("S-1"), true)
                .procedure_id("FVT1")
                .attachment(example_data("raw_capture")),
        )
        .unwrap();
    let url = format!(
        "{}/_storage/{}",
        storage.url(),
        created.attachments[0].upload_id
    );
    let dir = tempfile::tempdir().unwrap();
    instance
        .client()
        .download(&url, dir.path().join("raw"))
        .unwrap();
    let get = storage.requests().last().unwrap().clone();
    assert_eq!(get.method, "GET");
    assert_eq!(get.header("authorization"), None);
    assert!(instance.requests().is_empty());
}
