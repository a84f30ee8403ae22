//! The `tofu-report` command, run as a process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const RECORD: &str = r#"{"dut_id": "SN-7", "start_time_millis": 1000, "end_time_millis": 2000,
  "outcome": "PASS", "metadata": {"procedure_id": "FVT1"}, "phases": [], "log_records": []}"#;

fn tofu_report(args: &[&std::path::Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tofu-report"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn renders_one_record_and_prints_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("SN-7.FVT1.1000.json");
    std::fs::write(&json, RECORD).unwrap();
    let out = tofu_report(&[&json]);
    assert!(out.status.success(), "{out:?}");
    let html = dir.path().join("SN-7.FVT1.1000.html");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        html.display().to_string()
    );
    assert!(
        std::fs::read_to_string(html)
            .unwrap()
            .contains(">SN-7</h1>")
    );
}

#[test]
fn renders_a_folder_and_its_index() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.json"), RECORD).unwrap();
    std::fs::write(dir.path().join("two.json"), RECORD.replace("SN-7", "SN-8")).unwrap();
    std::fs::write(dir.path().join("settings.json"), "{}").unwrap();
    let out = tofu_report(&[dir.path()]);
    assert!(out.status.success(), "{out:?}");
    let printed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = ["one.html", "two.html", "index.html"]
        .iter()
        .map(|n| dir.path().join(n).display().to_string())
        .collect();
    assert_eq!(printed, expected);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("skipped") && stderr.contains("settings.json"),
        "{stderr}"
    );
}

#[test]
fn a_bad_record_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("broken.json");
    std::fs::write(&json, "{").unwrap();
    let out = tofu_report(&[&json]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&json.display().to_string()), "{stderr}");
    let usage = Command::new(env!("CARGO_BIN_EXE_tofu-report"))
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
