//! Disk trouble in the outbox: full (a small tmpfs filled to the last byte), read-only, or
//! not a folder. The operator gets an error naming the outbox and the reason, the JSON record
//! is still written, nothing half-written is left, and once the disk has room the next unit
//! uploads; a run whose progress can't be saved is neither lost nor uploaded twice.
//!
//! The tmpfs tests need root; without it they say so and do nothing (`TOFU_REQUIRE_MOUNT=1`
//! makes that a failure).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tofu_core::prelude::*;
use tofu_core::{Execution, Outcome};
use tofu_upload::uploader::{Outbox, Progress, Status, send};
use tofu_upload::{Config, Uploader};

use crate::support::server::{TEST_KEY, TestServer};
use crate::tmpfs::{Mode, Tmpfs};

#[phase]
#[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
fn rail(test: &mut PhaseContext, m: &mut rail::Measurements) -> Result<(), tofu_core::AttachError> {
    m.rail.set(3.3);
    test.attach("scope.csv", "t,v\n0,3.3\n".repeat(100))
}

fn config(server: &TestServer) -> Config {
    server
        .builder()
        .api_key(TEST_KEY)
        .timeout(Duration::from_secs(5))
        .config()
        .unwrap()
}

/// A test writing its records into `records` and uploading through `uploader`.
fn test(records: &Path, uploader: Uploader) -> Test {
    Test::new("FVT1")
        .phases([rail])
        .json_output(JsonOutput::to_dir(records))
        .output(uploader)
        .quiet()
}

/// The JSON record was written into `records`; the uploader failed with `reason`, naming the
/// outbox `outbox`.
fn record_kept_upload_refused(execution: &Execution, records: &Path, outbox: &Path, reason: &str) {
    assert_eq!(
        execution.record.outcome,
        Outcome::Pass,
        "the unit's outcome stands"
    );
    // The outbox (a durable queue) comes first, then the JSON record.
    assert_eq!(execution.outputs[0].name, "TofuPilot");
    let json = execution.outputs[1]
        .result
        .as_ref()
        .unwrap()
        .as_deref()
        .unwrap();
    let path = PathBuf::from(json.strip_prefix("record written to ").unwrap());
    assert_eq!(path.parent(), Some(records), "{json}");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(record["dut_id"], execution.record.dut_id.as_str());
    let error = execution.outputs[0].result.as_ref().unwrap_err();
    assert!(
        error.starts_with("the run could not be kept for upload: outbox ")
            && error.contains(&outbox.display().to_string())
            && error.contains(reason),
        "the error names the outbox and the reason: {error}"
    );
    assert_eq!(
        execution.exit_code(),
        std::process::ExitCode::from(tofu_core::exit::OUTPUT_FAILED),
        "not everything was kept: the program says so with its exit code"
    );
}

#[test]
fn a_full_outbox_is_a_clear_error_the_record_is_written_and_the_next_unit_uploads() {
    let Some(fs) = Tmpfs::mount("disk::outbox_full", 64, Mode::Writable) else {
        return;
    };
    let server = TestServer::start();
    let records = tempfile::tempdir().unwrap();
    let outbox = fs.folder("outbox");
    let uploader = Uploader::new(config(&server), &outbox)
        .wait_at_exit(Duration::from_secs(10))
        .fallback_outbox(None);
    let mut test = test(records.path(), uploader);
    fs.fill();
    let execution = test.execute(|| "FULL-1");
    record_kept_upload_refused(
        &execution,
        records.path(),
        &outbox,
        "No space left on device",
    );
    assert_eq!(
        fs.files(),
        Vec::<PathBuf>::new(),
        "no half-written entry is left"
    );

    fs.free();
    let execution = test.execute(|| "FULL-2");
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    drop(test); // waits for the upload
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1["unit_under_test"]["serial_number"], "FULL-2");
    assert_eq!(
        server.attachments_of(&runs[0].0).len(),
        2,
        "report and scope.csv"
    );
    assert_eq!(
        fs.files(),
        Vec::<PathBuf>::new(),
        "the outbox is empty again"
    );
}

#[test]
fn a_read_only_outbox_is_a_clear_error_and_the_record_is_written() {
    let Some(fs) = Tmpfs::mount("disk::outbox_read_only", 64, Mode::ReadOnly) else {
        return;
    };
    let server = TestServer::start();
    let records = tempfile::tempdir().unwrap();
    let uploader = Uploader::new(config(&server), fs.path())
        .wait_at_exit(Duration::from_secs(1))
        .fallback_outbox(None);
    let mut test = test(records.path(), uploader);
    let execution = test.execute(|| "RO-1");
    record_kept_upload_refused(
        &execution,
        records.path(),
        fs.path(),
        "Read-only file system",
    );
    drop(test);
    assert!(server.requests().is_empty());
}

#[test]
fn an_outbox_that_cannot_be_a_folder_is_a_clear_error_and_the_record_is_written() {
    // No mount needed: a path under a regular file can't be a folder, even for root.
    let server = TestServer::start();
    let records = tempfile::tempdir().unwrap();
    let file = records.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let outbox = file.join("outbox");
    let uploader = Uploader::new(config(&server), &outbox)
        .wait_at_exit(Duration::from_secs(1))
        .fallback_outbox(None);
    let mut test = test(records.path(), uploader);
    let execution = test.execute(|| "FILE-1");
    record_kept_upload_refused(&execution, records.path(), &outbox, "Not a directory");
    drop(test);
    assert!(server.requests().is_empty());
}

/// Issue #13: when the record folder (and so the outbox in it) can't be written, the record
/// goes to its fallback folder and the run must still be queued: into the fallback outbox,
/// private to the user, from which it goes up.
#[test]
fn an_outbox_that_cannot_be_written_falls_back_and_the_run_still_goes_up() {
    let server = TestServer::start();
    let records = tempfile::tempdir().unwrap();
    let file = records.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let outbox = file.join("outbox");
    let fallback = tempfile::tempdir().unwrap();
    let private = tofu_core::fs::fallback_dir_in(fallback.path());
    let uploader = Uploader::new(config(&server), &outbox)
        .wait_at_exit(Duration::from_secs(10))
        .fallback_outbox(Some(private.join("outbox")));
    let mut test = test(records.path(), uploader);
    let execution = test.execute(|| "FALLBACK-1");
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    let said = execution.outputs[0]
        .result
        .as_ref()
        .unwrap()
        .as_deref()
        .unwrap();
    assert!(
        said.contains("fallback outbox") && said.contains("Not a directory"),
        "{said}"
    );
    drop(test);
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1["unit_under_test"]["serial_number"], "FALLBACK-1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn an_outbox_that_fills_up_before_the_upload_loses_nothing_and_sends_nothing_twice() {
    let Some(fs) = Tmpfs::mount("disk::outbox_fills_up", 256, Mode::Writable) else {
        return;
    };
    let server = TestServer::start();
    let records = tempfile::tempdir().unwrap();
    let outbox_dir = fs.folder("outbox");
    // Kept, then the disk fills up before the uploader gets to it.
    let mut test = test(records.path(), Uploader::offline(&outbox_dir, "later"));
    assert!(test.execute(|| "FILLS-1").outputs_ok());
    drop(test);
    fs.fill();
    let outbox = Outbox::open(&outbox_dir).unwrap();
    let client = tofu_upload::blocking::TofuPilotClient::from_config(config(&server)).unwrap();
    let entry = outbox.entries().unwrap().remove(0).unwrap();
    // Its progress can't be saved, so nothing is sent (a create whose progress can't be
    // saved could be sent twice).
    let attempt = send(&client, entry, true);
    let error = match &attempt {
        Err(e) => e.to_string(),
        Ok(Progress::Parked { error } | Progress::Retry { error, .. }) => error.clone(),
        Ok(other) => panic!("{other:?}"),
    };
    assert!(
        error.contains(&outbox_dir.display().to_string())
            && error.contains("No space left on device"),
        "{error}"
    );
    assert!(
        server.runs().is_empty(),
        "nothing was created: {:?}",
        server.runs()
    );
    let entries = outbox.entries().unwrap();
    assert_eq!(entries.len(), 1, "the run is still in the outbox");
    let state = &entries[0].as_ref().unwrap().state;
    assert_eq!(
        (state.status, state.create_sent, state.run_id.as_deref()),
        (Status::Pending, false, None),
        "still pending, not parked: the uploader tries again by itself"
    );

    // Room again: it goes up once, with its files.
    fs.free();
    let entry = entries.into_iter().next().unwrap().unwrap();
    let progress = send(&client, entry, true).unwrap();
    assert!(matches!(progress, Progress::Done { .. }), "{progress:?}");
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(server.attachments_of(&runs[0].0).len(), 2);
    assert!(outbox.entries().unwrap().is_empty());
}
