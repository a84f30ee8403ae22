//! Disk trouble: the record folder full (a small tmpfs filled to the last byte) or read-only
//! (a read-only tmpfs). The run still ends with its outcome, the operator is told which folder
//! failed and why, and the record is kept in the temp folder; once the disk has room again the
//! same `Test` writes the next unit's record where it belongs.
//!
//! These tests mount file systems: they need root; without it they say so and do nothing
//! (`TOFU_REQUIRE_MOUNT=1` makes that a failure).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use tofu_core::prelude::*;
use tofu_core::{Execution, Outcome};

use crate::example_binaries::executables;
use crate::tmpfs::{Mode, Tmpfs};

#[phase]
#[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
fn rail(test: &mut PhaseContext, m: &mut rail::Measurements) -> Result<(), tofu_core::AttachError> {
    m.rail.set(3.3);
    test.attach("scope.csv", "t,v\n0,3.3\n".repeat(200))
}

#[phase]
#[measures(leak: f64 = at_most(1.0))]
fn leak(m: &mut leak::Measurements) {
    m.leak.set(7.5);
}

/// Where the record went, read from the JSON output's message: `record written to PATH…`.
fn written_to(execution: &Execution) -> PathBuf {
    let status = &execution.outputs[0];
    assert_eq!(status.name, "JSON record");
    let message = status
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("the record was not kept: {e}"))
        .as_deref()
        .unwrap();
    let path = message
        .strip_prefix("record written to ")
        .unwrap_or_else(|| panic!("{message}"));
    PathBuf::from(path.split(" (the folder").next().unwrap())
}

fn read(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A serial number no other test run uses (the fallback folder is shared).
fn serial(tag: &str) -> String {
    format!("DISK-{tag}-{}", std::process::id())
}

/// Runs a failing and a passing unit into `records`, an unwritable folder, and checks each
/// record went to the temp folder, whole, with its outcome, and the reason is given.
fn runs_fall_back(records: &Path, reason: &str, tag: &str) -> Test {
    let mut test = Test::new("FVT1")
        .phases([rail, leak])
        .json_output(JsonOutput::to_dir(records))
        .quiet();
    let failing = serial(tag);
    let execution = test.execute(|| failing.as_str());
    assert_eq!(
        execution.record.outcome,
        Outcome::Fail,
        "the unit's outcome stands"
    );
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    let message = execution.outputs[0]
        .result
        .as_ref()
        .unwrap()
        .as_deref()
        .unwrap();
    assert!(
        message.contains(&format!(
            "the folder {} could not be written",
            records.display()
        )) && message.contains(reason),
        "the message names the folder and the reason: {message}"
    );
    let kept = written_to(&execution);
    assert!(
        kept.starts_with(tofu_core::fs::fallback_dir()),
        "{}",
        kept.display()
    );
    let record = read(&kept);
    assert_eq!(record["dut_id"], failing.as_str());
    assert_eq!(record["outcome"], "FAIL");
    assert_eq!(
        record["phases"][0]["attachments"]["scope.csv"]["size"],
        "t,v\n0,3.3\n".len() * 200,
        "attachments are kept too"
    );
    std::fs::remove_file(&kept).unwrap();
    test
}

fn no_leftovers(fs: &Tmpfs) {
    assert_eq!(
        fs.files(),
        Vec::<PathBuf>::new(),
        "no half-written file is left"
    );
}

#[test]
fn a_full_record_folder_keeps_the_record_in_the_temp_folder_until_it_has_room_again() {
    let Some(fs) = Tmpfs::mount("disk::record_folder_full", 64, Mode::Writable) else {
        return;
    };
    let records = fs.folder("records");
    fs.fill();
    let mut test = runs_fall_back(&records, "No space left on device", "FULL");
    no_leftovers(&fs);

    // The disk has room again: the next unit's record is where it belongs.
    fs.free();
    let passing = serial("ROOM");
    let execution = test.execute(|| passing.as_str());
    let path = written_to(&execution);
    assert_eq!(path.parent(), Some(records.as_path()));
    assert_eq!(read(&path)["dut_id"], passing.as_str());
    assert_eq!(
        execution.outputs[0].result.as_ref().unwrap().as_deref(),
        Some(format!("record written to {}", path.display()).as_str()),
        "no mention of a fallback any more"
    );
}

#[test]
fn a_read_only_record_folder_keeps_the_record_in_the_temp_folder() {
    let Some(fs) = Tmpfs::mount("disk::record_folder_read_only", 64, Mode::ReadOnly) else {
        return;
    };
    runs_fall_back(fs.path(), "Read-only file system", "RO");
    no_leftovers(&fs);
}

#[test]
fn a_record_folder_that_is_a_file_keeps_the_record_in_the_temp_folder() {
    // No mount needed: a path under a regular file can't be a folder, even for root.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records");
    std::fs::write(&file, "not a folder").unwrap();
    runs_fall_back(&file.join("sub"), "Not a directory", "FILE");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}

/// Runs the `numeric` example (a passing unit, with the uploader kept offline: no key) with
/// its record folder, outbox and temp folder where told; returns (exit code, console).
fn run_numeric(output_dir: &Path, tmp_dir: &Path) -> (Option<i32>, String) {
    let executable = &executables()["numeric"];
    let cwd = tempfile::tempdir().unwrap();
    let output = Command::new(executable)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", output_dir)
        .env("TMPDIR", tmp_dir)
        .env("TOFU_UPLOAD_WAIT_S", "1")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFUPILOT_URL")
        .output()
        .unwrap();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), console)
}

#[test]
fn a_program_whose_record_folder_and_outbox_are_full_ends_with_its_outcome_and_clear_errors() {
    let Some(fs) = Tmpfs::mount("disk::program_record_folder_full", 64, Mode::Writable) else {
        return;
    };
    let records = fs.folder("records");
    std::fs::create_dir_all(records.join("outbox")).unwrap();
    fs.fill();
    let tmp = tempfile::tempdir().unwrap();
    let (code, console) = run_numeric(&records, tmp.path());
    // A passing unit, kept whole elsewhere: the record and its upload queue both fall back to
    // the folder private to the user in the temp folder (issue #13), and the program ends 0.
    assert_eq!(code, Some(0), "{console}");
    assert!(console.contains("Outcome: PASS"), "{console}");
    assert!(
        console.contains(&format!(
            "the folder {} could not be written: No space left on device",
            records.display()
        )),
        "{console}"
    );
    let private = tofu_core::fs::fallback_dir_in(tmp.path());
    assert!(
        console.contains("fallback outbox")
            && console.contains(&records.join("outbox").display().to_string())
            && console.contains("No space left on device"),
        "the outbox's fallback names both: {console}"
    );
    assert!(!console.contains("panicked"), "{console}");
    // The record is in the temp folder the program was given, the run in the outbox there.
    let kept: Vec<PathBuf> = std::fs::read_dir(&private)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_dir(private.join("outbox")).unwrap().count(),
        1,
        "the run is queued in the fallback outbox"
    );
    let record = read(&kept[0]);
    assert_eq!(
        (record["dut_id"].as_str(), record["outcome"].as_str()),
        (Some("PCB001"), Some("PASS"))
    );
    no_leftovers(&fs);
}

#[test]
fn a_program_with_nowhere_to_write_its_record_says_so_and_still_ends_with_its_outcome() {
    let Some(fs) = Tmpfs::mount("disk::program_nowhere_to_write", 64, Mode::Writable) else {
        return;
    };
    let Some(tmp) = Tmpfs::mount("disk::program_nowhere_to_write", 64, Mode::ReadOnly) else {
        return;
    };
    let records = fs.folder("records");
    fs.fill();
    let (code, console) = run_numeric(&records, tmp.path());
    assert_eq!(code, Some(3), "{console}");
    assert!(console.contains("Outcome: PASS"), "{console}");
    assert!(
        console.contains(&format!(
            "can't write the record into {}: No space left on device",
            records.display()
        )),
        "{console}"
    );
    assert!(!console.contains("panicked"), "{console}");
    no_leftovers(&fs);
}
