//! The console summary in real processes: coloured on a terminal (a pseudo-terminal made by
//! util-linux's `script`), plain in a pipe; a station says where each slot's record went.

use std::process::Command;

use crate::example_binaries::executables;
use crate::exit_codes::run_offline;

/// The quickstart's stdout, run in a pseudo-terminal (`script -qec CMD /dev/null`); `None`
/// when `script` can't run here (said on the console).
fn quickstart_on_a_terminal(records: &std::path::Path) -> Option<String> {
    let quickstart = executables()["quickstart"].display().to_string();
    let output = Command::new("script")
        .args(["-qec", &format!("'{quickstart}'"), "/dev/null"])
        .env("TOFU_OUTPUT_DIR", records)
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("NO_COLOR")
        .output();
    match output {
        Ok(output) => Some(String::from_utf8_lossy(&output.stdout).into_owned()),
        Err(e) => {
            eprintln!("SKIPPED: util-linux's `script` can't run here ({e})");
            None
        }
    }
}

#[test]
fn the_outcome_is_green_on_a_terminal_and_plain_in_a_pipe() {
    let records = tempfile::tempdir().unwrap();
    if let Some(console) = quickstart_on_a_terminal(records.path()) {
        assert!(
            console.contains("Outcome: \x1b[1;32mPASS\x1b[0m"),
            "{console:?}"
        );
    }
    let output = run_offline("quickstart", &[], records.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Outcome: PASS"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
}

#[test]
fn a_station_says_where_each_slots_record_went() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_offline("multi_slot", &[], dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for slot in 1..=4 {
        let line = format!(
            "  slot {slot}: JSON record: record written to {}/PCB01B01S{slot}.",
            dir.path().display()
        );
        assert!(stdout.contains(&line), "no `{line}` in\n{stdout}");
    }
}

#[test]
fn an_error_is_shown_by_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_offline("teardown", &["--crash"], dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("         error: "), "{stdout}");
    for label in [
        "String: ",
        "Box<dyn Error>: ",
        "Box<dyn std::error::Error>: ",
    ] {
        assert!(!stdout.contains(label), "`{label}` in\n{stdout}");
    }
}
