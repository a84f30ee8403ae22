//! `tofu-outbox recover` (issue 12, section 3): a run whose process was killed (SIGKILL)
//! mid-phase is found in its journal by the command, written as an ERROR record with the
//! phases completed before, and queued in the outbox, once: run twice, or three at once with
//! a test starting beside them, it is recovered once.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tofu_upload::uploader::Outbox;

use crate::example_binaries::executables;

/// Runs the `lifecycle` example's `die` scenario with its records in `records` and kills it
/// (SIGKILL) in its second phase; its journal stays in `records/.tofu-journal`.
fn kill_mid_phase(records: &Path) {
    let mut child = Command::new(&executables()["lifecycle"])
        .arg("die")
        .env("TOFU_OUTPUT_DIR", records)
        .env_remove("TOFU_JOURNAL_DIR")
        .env_remove("TOFUPILOT_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    for line in stderr.lines().map_while(Result::ok) {
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("about to be killed") {
            break;
        }
    }
    assert!(printed.contains("about to be killed"), "{printed}");
    child.kill().unwrap(); // SIGKILL
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
    assert!(records.join(".tofu-journal").is_dir(), "its journal stays");
}

/// `tofu-outbox recover` with the record folder from the environment, as a station sets it.
fn recover_command(records: &Path, outbox: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"));
    command
        .args(["recover", "--outbox"])
        .arg(outbox)
        .env("TOFU_OUTPUT_DIR", records)
        .env_remove("TOFU_JOURNAL_DIR")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFUPILOT_URL");
    command
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The JSON records in `records`.
fn records(records: &Path) -> Vec<Value> {
    let mut found: Vec<Value> = std::fs::read_dir(records)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    found.sort_by_key(|r| r["start_time_millis"].as_i64());
    found
}

/// The ERROR records of the killed run (`ProcessEnded`).
fn recovered(dir: &Path) -> Vec<Value> {
    records(dir)
        .into_iter()
        .filter(|r| r["outcome_details"][0]["code"] == "ProcessEnded")
        .collect()
}

/// The serial numbers of the runs queued in `outbox`.
fn queued(outbox: &Path) -> Vec<String> {
    match Outbox::open(outbox) {
        Ok(outbox) => outbox
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap().state.serial_number)
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn recover_records_and_queues_a_killed_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let (records_dir, outbox) = (dir.path().join("records"), dir.path().join("outbox"));
    kill_mid_phase(&records_dir);
    assert!(
        records(&records_dir).is_empty(),
        "the dead run wrote no record"
    );

    let out = recover_command(&records_dir, &outbox).output().unwrap();
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("recovered LC-0001 LIFECYCLE (ERROR)"),
        "{text}"
    );
    assert!(text.contains("TofuPilot: "), "{text}");
    assert!(text.contains("JSON record: record written to"), "{text}");

    let found = recovered(&records_dir);
    assert_eq!(found.len(), 1, "{text}");
    let record = &found[0];
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["dut_id"], "LC-0001");
    let description = record["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    assert!(
        description.contains("during phase dies_here"),
        "{description}"
    );
    let phases: Vec<(&str, &str)> = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(phases, [("power_on", "PASS")]);
    assert_eq!(queued(&outbox), ["LC-0001"]);
    assert!(!records_dir.join(".tofu-journal").exists(), "{text}");

    // Again: nothing left to recover.
    let out = recover_command(&records_dir, &outbox).output().unwrap();
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no run to recover"), "{text}");
    assert_eq!(recovered(&records_dir).len(), 1);
    assert_eq!(queued(&outbox), ["LC-0001"]);
}

fn wait(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Two `recover` commands and a test starting (which recovers too) at the same moment: the run
/// is recorded once and queued at most once (only the commands queue; the test's outputs are
/// its JSON record), in several rounds.
#[test]
fn recoveries_at_the_same_time_recover_a_run_once() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let records_dir: PathBuf = dir.path().join("records");
        let outbox = dir.path().join("outbox");
        kill_mid_phase(&records_dir);
        let piped = |mut c: Command| {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        };
        let mut test = Command::new(&executables()["lifecycle"]);
        test.arg("quick")
            .env("TOFU_OUTPUT_DIR", &records_dir)
            .env_remove("TOFU_JOURNAL_DIR")
            .env_remove("TOFUPILOT_API_KEY")
            .stdin(Stdio::null());
        let children = [
            piped(recover_command(&records_dir, &outbox)),
            piped(test),
            piped(recover_command(&records_dir, &outbox)),
        ];
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| wait(c, "a recovery"))
            .collect();
        let text: String = outputs.iter().map(said).collect();
        for out in &outputs {
            assert_eq!(out.status.code(), Some(0), "round {round}: {text}");
        }
        assert_eq!(
            recovered(&records_dir).len(),
            1,
            "round {round}: recorded once: {text}"
        );
        let queued = queued(&outbox);
        assert!(
            queued.len() <= 1,
            "round {round}: queued {queued:?}: {text}"
        );
        assert!(!records_dir.join(".tofu-journal").exists(), "round {round}");
        // The test's own run is recorded too.
        assert_eq!(records(&records_dir).len(), 2, "round {round}: {text}");
    }
}
