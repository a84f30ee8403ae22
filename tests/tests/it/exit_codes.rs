//! The exit code of a test program, from real processes (the examples): 0 PASS, 1 a failed
//! unit, 2 ERROR/TIMEOUT/ABORTED, 3 an output failed though the unit passed (`tofu_core::exit`).

use std::process::Command;

use crate::example_binaries::executables;

/// Runs an example offline (no API key, the outbox in the record folder) with `args`, its
/// records in `records` and extra environment, from a fresh current directory.
pub(crate) fn run_offline(
    name: &str,
    args: &[&str],
    records: &std::path::Path,
    env: &[(&str, &std::path::Path)],
) -> std::process::Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(&executables()[name]);
    command
        .args(args)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", records)
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// Runs an example with `args` and extra environment; its exit code and console.
fn exit_code(name: &str, args: &[&str], env: &[(&str, &std::path::Path)]) -> (i32, String) {
    let records = tempfile::tempdir().unwrap();
    let output = run_offline(name, args, records.path(), env);
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), console)
}

#[test]
fn a_passing_unit_exits_0() {
    let (code, console) = exit_code("quickstart", &[], &[]);
    assert_eq!(code, tofu_core::exit::PASS as i32, "{console}");
}

#[test]
fn a_failed_unit_exits_1() {
    // The report example's run fails a limit on purpose.
    let (code, console) = exit_code("report", &[], &[]);
    assert!(console.contains("FAIL"), "{console}");
    assert_eq!(code, tofu_core::exit::FAIL as i32, "{console}");
}

#[test]
fn an_error_exits_2() {
    let (code, console) = exit_code("teardown", &["--crash"], &[]);
    assert!(console.contains("ERROR"), "{console}");
    assert_eq!(code, tofu_core::exit::ERROR as i32, "{console}");
}

#[test]
fn a_timeout_exits_2() {
    let (code, console) = exit_code("timeout", &["--hang"], &[]);
    assert!(console.contains("TIMEOUT"), "{console}");
    assert_eq!(code, tofu_core::exit::ERROR as i32, "{console}");
}

#[test]
fn a_passing_unit_whose_upload_queue_failed_exits_3() {
    // The outbox's folder is a file, and so is the temp folder its private fallback would be
    // made in: the uploader can't queue the run anywhere.
    let dir = tempfile::tempdir().unwrap();
    let not_a_folder = dir.path().join("outbox");
    std::fs::write(&not_a_folder, "a file").unwrap();
    let (code, console) = exit_code(
        "quickstart",
        &[],
        &[
            ("TOFU_OUTBOX_DIR", &not_a_folder),
            ("TMPDIR", &not_a_folder),
        ],
    );
    assert!(console.contains("PASS"), "{console}");
    assert_eq!(code, tofu_core::exit::OUTPUT_FAILED as i32, "{console}");
}
