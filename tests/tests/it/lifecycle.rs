//! The run's life cycle, tried as an operator would: a real process (the `lifecycle`
//! example) waiting where a run can wait — a prompt, a blocked phase, a plug that hangs — is
//! signalled or left to its deadlines; it must always end with its record, its teardowns run
//! (`supply off`), and the right outcome.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::example_binaries::executables;

struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    dir: tempfile::TempDir,
}

/// Starts `lifecycle SCENARIO`, its stdin a pipe that stays open, answers allowed from it.
fn start(scenario: &str) -> Run {
    start_in(scenario, tempfile::tempdir().unwrap())
}

/// [`start`] with its records in `dir`.
fn start_in(scenario: &str, dir: tempfile::TempDir) -> Run {
    let mut child = Command::new(&executables()["lifecycle"])
        .arg(scenario)
        .env("TOFU_OUTPUT_DIR", dir.path())
        .env("TOFU_PROMPT_STDIN", "1")
        .env_remove("TOFUPILOT_API_KEY")
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdin = child.stdin.take();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    Run {
        child,
        stdin,
        lines,
        seen: Vec::new(),
        dir,
    }
}

impl Run {
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let found = line.contains(text);
                self.seen.push(line);
                if found {
                    return;
                }
            }
        }
        panic!("never printed {text:?}; printed:\n{}", self.seen.join("\n"));
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end (30 s at most); its exit code and everything it printed.
    fn exit(self) -> (i32, String, Value) {
        let (code, printed, dir) = self.exit_keeping_dir();
        let record = record(dir.path());
        (code, printed, record)
    }

    fn exit_keeping_dir(mut self) -> (i32, String, tempfile::TempDir) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process hung; printed:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.stdin.take());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        (code, self.seen.join("\n"), self.dir)
    }
}

fn record(dir: &std::path::Path) -> Value {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| panic!("no record in {}", dir.display()));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn outcomes(record: &Value) -> Vec<(String, String)> {
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

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(n, o)| ((*n).to_owned(), (*o).to_owned()))
        .collect()
}

#[test]
fn ctrl_c_while_the_serial_number_is_asked_aborts_at_once() {
    let mut run = start("serial-prompt");
    run.wait_for("Scan the serial number");
    run.signal("INT");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "ABORTED", "{printed}");
    assert!(record["phases"].as_array().unwrap().is_empty());
}

#[test]
fn ctrl_c_while_a_phase_asks_aborts_at_once_and_tears_down() {
    let mut run = start("phase-prompt");
    run.wait_for("Close the fixture lid");
    run.signal("INT");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "ABORTED", "{printed}");
    assert_eq!(
        outcomes(&record),
        pairs(&[("power_on", "PASS"), ("confirm", "ERROR")])
    );
    assert!(printed.contains("supply off"), "{printed}");
}

#[test]
fn a_phase_timeout_ends_a_phase_waiting_in_a_prompt() {
    let mut run = start("prompt-timeout");
    run.wait_for("Close the fixture lid");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "TIMEOUT", "{printed}");
    assert_eq!(
        outcomes(&record),
        pairs(&[("power_on", "PASS"), ("confirm_in_time", "ERROR")])
    );
    assert!(printed.contains("supply off"), "{printed}");
}

/// Ctrl-C, SIGTERM (systemd, docker stop) and SIGHUP (a closed terminal) during the last
/// phase, which has no timeout: ABORTED, the supply switched off, the record written.
#[test]
fn any_stop_signal_during_the_last_phase_aborts_the_run() {
    for signal in ["INT", "TERM", "HUP"] {
        let mut run = start("last-phase");
        run.wait_for("last phase blocks");
        run.signal(signal);
        let (code, printed, record) = run.exit();
        assert_eq!(code, 2, "SIG{signal}: {printed}");
        assert_eq!(record["outcome"], "ABORTED", "SIG{signal}: {printed}");
        assert_eq!(
            outcomes(&record),
            pairs(&[("power_on", "PASS"), ("blocks", "ERROR")]),
            "SIG{signal}"
        );
        assert!(printed.contains("supply off"), "SIG{signal}: {printed}");
    }
}

/// A phase blocked forever holding the supply times out; the group's teardown phase that
/// needs the supply gives up after a short wait: the run reaches its record.
#[test]
fn a_plug_held_by_an_abandoned_phase_never_hangs_the_run() {
    let mut run = start("hold-plug");
    run.wait_for("holding the supply");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "TIMEOUT", "{printed}");
    let phases = outcomes(&record);
    assert_eq!(
        phases,
        pairs(&[
            ("power_on", "PASS"),
            ("blocks_holding_the_supply", "ERROR"),
            ("supply_off", "ERROR"),
        ])
    );
    assert_eq!(
        record["phases"][2]["result"]["phase_result"]["exc_type"],
        "PlugUnavailable"
    );
}

#[test]
fn a_plug_setup_that_hangs_ends_at_its_timeout_with_a_record() {
    let run = start("hang-setup");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "ERROR", "{printed}");
    assert_eq!(record["outcome_details"][0]["code"], "PlugSetupError");
    let description = record["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    assert!(description.contains("timeout"), "{description}");
}

/// A teardown that hangs: a second Ctrl-C abandons it, and the record is written.
#[test]
fn a_second_ctrl_c_abandons_a_hanging_plug_teardown() {
    let mut run = start("hang-teardown");
    run.wait_for("supply teardown hangs");
    run.signal("INT");
    std::thread::sleep(Duration::from_millis(100));
    run.signal("INT");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "ABORTED", "{printed}");
    assert!(!printed.contains("supply off"), "{printed}");
}

/// What a phase measured and attached before its timeout is kept, as OpenHTF keeps it.
#[test]
fn a_timed_out_phase_keeps_what_it_measured_and_attached() {
    let run = start("keep-values");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2, "{printed}");
    assert_eq!(record["outcome"], "TIMEOUT");
    let phase = &record["phases"][1];
    assert_eq!(phase["name"], "measures_then_blocks");
    assert_eq!(phase["measurements"]["rail"]["measured_value"], 3.31);
    assert_eq!(phase["measurements"]["rail"]["outcome"], "PASS");
    assert_eq!(phase["attachments"]["trace.txt"]["size"], 15);
}

/// Deep recursion that overflows a main thread's 8 MB stack runs on the phases' thread.
#[test]
fn a_phase_with_deep_recursion_has_the_stack_it_needs() {
    let run = start("deep");
    let (code, printed, record) = run.exit();
    assert_eq!(code, 0, "{printed}");
    assert_eq!(record["outcome"], "PASS");
}

/// A stdin that never sends a newline can't grow the process's memory: the answer is refused
/// as too long, and the end of the input ends the question.
#[test]
fn an_endless_answer_is_refused_and_memory_stays_bounded() {
    let mut run = start("serial-prompt");
    run.wait_for("Scan the serial number");
    let mut stdin = run.stdin.take().unwrap();
    let chunk = vec![b'7'; 1 << 20];
    for _ in 0..64 {
        stdin.write_all(&chunk).unwrap();
    }
    drop(stdin);
    let pid = run.child.id();
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
    let (code, printed, record) = run.exit();
    assert_eq!(code, 2);
    assert!(printed.contains("bytes long; 1024 at most"), "{printed}");
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(
        record["outcome_details"][0]["code"],
        "SerialNumberUnavailable"
    );
    if let Some(kb) = rss {
        assert!(
            kb < 48 * 1024,
            "the process held {kb} kB after 64 MiB of input"
        );
    }
}

fn records(dir: &std::path::Path) -> Vec<Value> {
    let mut records: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    records.sort_by_key(|r| r["start_time_millis"].as_i64());
    records
}

/// A process killed (SIGKILL) mid-phase: its next start finds the run's journal and records it
/// as ERROR, with the phase it died in and every phase completed before; once.
#[test]
fn a_run_killed_mid_phase_is_recovered_at_the_next_start() {
    let mut run = start("die");
    run.wait_for("about to be killed");
    run.signal("KILL");
    let (code, _, dir) = run.exit_keeping_dir();
    assert_eq!(code, -1, "killed by a signal");
    assert!(
        records(dir.path()).is_empty(),
        "the dead run wrote no record"
    );
    let (code, printed, dir) = start_in("quick", dir).exit_keeping_dir();
    assert_eq!(code, 0, "{printed}");
    let records = records(dir.path());
    assert_eq!(records.len(), 2, "{printed}");
    let recovered = &records[0];
    assert_eq!(recovered["outcome"], "ERROR");
    assert_eq!(recovered["dut_id"], "LC-0001");
    assert_eq!(recovered["outcome_details"][0]["code"], "ProcessEnded");
    let description = recovered["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    assert!(
        description.contains("during phase dies_here"),
        "{description}"
    );
    assert_eq!(outcomes(recovered), pairs(&[("power_on", "PASS")]));
    assert_eq!(
        recovered["phases"][0]["measurements"]["vin"]["measured_value"],
        5.0
    );
    assert_eq!(records[1]["outcome"], "PASS");
    // Once: a third start finds nothing more to recover.
    let (_, _, dir) = start_in("quick", dir).exit_keeping_dir();
    assert_eq!(self::records(dir.path()).len(), 3);
    assert!(!dir.path().join(".tofu-journal").exists());
}
