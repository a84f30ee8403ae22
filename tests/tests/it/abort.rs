//! Ctrl-C delivered to a real process running a test: the run is ABORTED, teardowns run, the
//! record is written; a second Ctrl-C skips the teardown and the record is still written.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::example_binaries::executables;

/// Starts the `teardown` example with `args`, its records in a fresh folder.
fn start(args: &[&str]) -> (Child, mpsc::Receiver<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&executables()["teardown"])
        .args(args)
        .env("TOFU_OUTPUT_DIR", dir.path())
        .env_remove("TOFUPILOT_API_KEY")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    (child, rx, dir)
}

fn wait_for(lines: &mpsc::Receiver<String>, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100))
            && line.contains(text)
        {
            return;
        }
    }
    panic!("the example never printed {text:?}");
}

fn ctrl_c(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(mut child: Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not end after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn record(dir: &tempfile::TempDir) -> Value {
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a record was written");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn phase_outcomes(record: &Value) -> Vec<(String, String)> {
    record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn ctrl_c_aborts_the_run_runs_the_teardown_and_writes_the_record() {
    let (child, lines, dir) = start(&["--hang"]);
    wait_for(&lines, "board powered");
    std::thread::sleep(Duration::from_millis(100));
    ctrl_c(&child);
    assert_eq!(wait_exit(child), 2, "ABORTED exits 2");
    let record = record(&dir);
    assert_eq!(record["outcome"], "ABORTED");
    assert_eq!(record["outcome_details"][0]["code"], "ABORTED");
    let phases = phase_outcomes(&record);
    let expected = [
        ("power_on", "PASS"),
        ("measure_rail", "ERROR"),
        ("power_off", "PASS"),
    ];
    assert_eq!(phases, expected.map(|(n, o)| (n.to_owned(), o.to_owned())));
    assert_eq!(
        record["phases"][1]["result"]["phase_result"], "",
        "OpenHTF writes an aborted phase's result as \"\""
    );
}

#[test]
fn a_second_ctrl_c_skips_the_teardown_and_the_record_is_still_written() {
    let (child, lines, dir) = start(&["--hang", "--hang-teardown"]);
    wait_for(&lines, "board powered");
    std::thread::sleep(Duration::from_millis(100));
    ctrl_c(&child);
    wait_for(&lines, "Ctrl-C: aborting the run");
    std::thread::sleep(Duration::from_millis(300));
    ctrl_c(&child);
    assert_eq!(wait_exit(child), 2, "ABORTED exits 2");
    let record = record(&dir);
    assert_eq!(record["outcome"], "ABORTED");
    let phases = phase_outcomes(&record);
    let expected = [
        ("power_on", "PASS"),
        ("measure_rail", "ERROR"),
        ("power_off", "ERROR"),
    ];
    assert_eq!(phases, expected.map(|(n, o)| (n.to_owned(), o.to_owned())));
}
