//! The operator's questions driven through a real pipe: the `prompt` example (built once with
//! the other examples) runs with its stdin piped, and its record is checked.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::example_binaries::executables;

/// A run should take well under a second; past this, it is taken to hang waiting for stdin.
const HANG: Duration = Duration::from_secs(30);

const SERIAL_QUESTION: &str = "Scan the board's serial number";

/// What is written into the example's stdin.
enum Stdin<'a> {
    /// These bytes, then the end of the input.
    Closed(&'a str),
    /// These bytes, and the pipe is kept open (nothing more comes) until the process ends.
    Open(&'a str),
}

/// A finished run of the `prompt` example.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    record: Value,
    elapsed: Duration,
}

impl Run {
    fn console(&self) -> String {
        format!(
            "--- status {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    fn outcome_details(&self) -> &Value {
        &self.record["outcome_details"]
    }

    /// The `gap` measurement of the `Gauge` phase.
    fn gap(&self) -> &Value {
        &self.record["phases"][0]["measurements"]["gap"]
    }
}

/// Runs the `prompt` example with `args` and `env` (answers from stdin when `switch`), writing
/// `stdin` into its stdin; fails the test if it runs longer than [`HANG`].
fn run(args: &[&str], env: &[(&str, &str)], switch: bool, stdin: Stdin<'_>) -> Run {
    let executable = executables()
        .get("prompt")
        .unwrap_or_else(|| panic!("cargo built no example named `prompt`"));
    let output_dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(executable);
    command
        .args(args)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", output_dir.path())
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFU_OUTBOX_DIR")
        .env_remove("TOFU_PROMPT_STDIN")
        .env_remove("GAUGE_TIMEOUT_S")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if switch {
        command.env("TOFU_PROMPT_STDIN", "1");
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("can't run {}: {e}", executable.display()));

    let mut pipe = child.stdin.take().unwrap();
    let (input, keep_open) = match stdin {
        Stdin::Closed(input) => (input, false),
        Stdin::Open(input) => (input, true),
    };
    // The answers are a few bytes: they fit in the pipe, whether the example reads them or not.
    pipe.write_all(input.as_bytes()).unwrap();
    let pipe = keep_open.then_some(pipe);

    let drain = |mut from: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the `prompt` example still ran after {HANG:?} (waiting for stdin?)\n--- stderr\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    drop(pipe);
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();

    let records: Vec<PathBuf> = std::fs::read_dir(output_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(
        records.len(),
        1,
        "one record expected, found {records:?}\n--- stderr\n{stderr}"
    );
    let record = serde_json::from_str(&std::fs::read_to_string(&records[0]).unwrap()).unwrap();
    Run {
        status,
        stdout,
        stderr,
        record,
        elapsed,
    }
}

#[test]
fn a_refused_serial_number_is_asked_again_and_the_good_one_recorded() {
    let run = run(&[], &[], true, Stdin::Closed("bad\nPCB01A0001\n\n3.3\n"));
    let console = run.console();
    assert!(run.status.success(), "{console}");
    assert_eq!(run.record["dut_id"], "PCB01A0001", "{console}");
    assert_eq!(run.record["outcome"], "PASS");
    // The operator was told why, then asked again.
    assert!(
        run.stderr.contains(&format!(
            "{SERIAL_QUESTION}\n> bad\n'bad' does not match the pattern ^PCB\\d{{2}}A\\d{{4}}$; \
             try again.\n{SERIAL_QUESTION}\n> PCB01A0001\n"
        )),
        "{console}"
    );
    assert!(
        run.stderr.contains(
            "Insert the board, press Enter\n> \nRead the gauge (mm) (within 60 s)\n> 3.3\n"
        ),
        "{console}"
    );
    // Questions go to stderr: stdout is the summary's.
    assert!(!run.stdout.contains(SERIAL_QUESTION), "{console}");

    let gap = run.gap();
    assert_eq!(gap["measured_value"], json!(3.3), "{gap:#}");
    assert_eq!(gap["outcome"], "PASS");
    assert_eq!(gap["validators"], json!(["3.2 <= x <= 3.4"]));
    assert_eq!(gap["units"]["suffix"], "mm");
    // The answers are in the record's logs.
    let logs: Vec<&str> = run.record["log_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert!(
        logs.contains(&"'Read the gauge (mm)': answered \"3.3\""),
        "{logs:#?}"
    );
}

#[test]
fn a_typed_value_is_asked_again_until_it_parses_and_is_checked_against_its_limits() {
    let run = run(&[], &[], true, Stdin::Closed("PCB01A0001\n\nthree\n3.9\n"));
    let console = run.console();
    assert_eq!(run.status.code(), Some(1), "{console}");
    assert!(
        run.stderr
            .contains("'three' is not a valid f64 (invalid float literal); try again."),
        "{console}"
    );
    assert_eq!(run.record["outcome"], "FAIL", "{console}");
    assert_eq!(run.gap()["measured_value"], json!(3.9));
    assert_eq!(run.gap()["outcome"], "FAIL");
}

#[test]
fn the_end_of_stdin_is_an_error_in_the_record_and_the_run_exits_2() {
    // Before the gauge is read: the phase errors, naming the question.
    let run = run(&[], &[], true, Stdin::Closed("PCB01A0001\n\n"));
    let console = run.console();
    assert_eq!(run.status.code(), Some(2), "{console}");
    assert_eq!(run.record["dut_id"], "PCB01A0001");
    assert_eq!(run.record["outcome"], "ERROR");
    let message = "no answer to 'Read the gauge (mm)': end of input (stdin is closed)";
    assert_eq!(
        run.outcome_details(),
        &json!([{"code": "PromptError", "description": message}]),
        "{console}"
    );
    let phase = &run.record["phases"][0];
    assert_eq!(phase["outcome"], "ERROR");
    assert_eq!(phase["result"]["phase_result"]["exc_val"], message);
    assert!(run.gap().get("measured_value").is_none(), "{:#}", run.gap());

    // Before the serial number: no phase runs, the record says why.
    let run = self::run(&[], &[], true, Stdin::Closed("bad\n"));
    let console = run.console();
    assert_eq!(run.status.code(), Some(2), "{console}");
    assert_eq!(run.record["dut_id"], "UNKNOWN_DUT");
    assert_eq!(run.record["phases"], json!([]));
    assert_eq!(
        run.outcome_details(),
        &json!([{
            "code": "SerialNumberUnavailable",
            "description": format!(
                "no serial number: no answer to '{SERIAL_QUESTION}': end of input \
                 (stdin is closed); no phase was run"
            ),
        }]),
        "{console}"
    );
}

#[test]
fn without_a_terminal_or_the_switch_a_question_fails_at_once_instead_of_hanging() {
    // The pipe stays open with nothing in it: a prompt reading it would wait forever.
    for env in [&[][..], &[("TOFU_PROMPT_STDIN", "0")]] {
        let run = run(&[], env, false, Stdin::Open(""));
        let console = run.console();
        assert_eq!(run.status.code(), Some(2), "{console}");
        assert!(run.elapsed < HANG / 3, "took {:?}\n{console}", run.elapsed);
        let message = format!(
            "no terminal to ask '{SERIAL_QUESTION}' (stdin is not a TTY); \
             pass --serial SN or set TOFU_PROMPT_STDIN=1"
        );
        assert_eq!(
            run.outcome_details(),
            &json!([{
                "code": "SerialNumberUnavailable",
                "description": format!("no serial number: {message}; no phase was run"),
            }]),
            "{console}"
        );
        assert_eq!(run.record["phases"], json!([]));
        assert!(run.stderr.contains(&message), "{console}");
    }

    // The serial number from the command line, the phase's questions still can't be asked.
    let run = run(&["--serial", "PCB01A0001"], &[], false, Stdin::Open(""));
    let console = run.console();
    assert_eq!(run.status.code(), Some(2), "{console}");
    assert_eq!(run.record["dut_id"], "PCB01A0001");
    assert_eq!(
        run.outcome_details(),
        &json!([{
            "code": "PromptError",
            "description": "no terminal to ask 'Insert the board, press Enter' (stdin is not a \
                            TTY); pass the answers in order with --answer VALUE, or set \
                            TOFU_PROMPT_STDIN=1 to read them from stdin",
        }]),
        "{console}"
    );
}

#[test]
fn a_serial_number_on_the_command_line_skips_the_question() {
    for args in [&["--serial", "PCB01A0002"][..], &["--serial=PCB01A0002"]] {
        let run = run(args, &[], true, Stdin::Closed("\n3.3\n"));
        let console = run.console();
        assert!(run.status.success(), "{console}");
        assert_eq!(run.record["dut_id"], "PCB01A0002");
        assert_eq!(run.gap()["measured_value"], json!(3.3));
        assert!(!run.stderr.contains(SERIAL_QUESTION), "{console}");
    }

    // It is checked against the pattern too, and not asked again: the operator didn't type it.
    let run = run(&["--serial", "PCB1"], &[], true, Stdin::Closed("\n3.3\n"));
    let console = run.console();
    assert_eq!(run.status.code(), Some(2), "{console}");
    assert_eq!(
        run.outcome_details(),
        &json!([{
            "code": "SerialNumberUnavailable",
            "description": "no serial number: the serial number given with --serial is refused: \
                            'PCB1' does not match the pattern ^PCB\\d{2}A\\d{4}$; no phase was run",
        }]),
        "{console}"
    );
}

#[test]
fn a_question_unanswered_in_time_fails_naming_it_and_the_delay() {
    let run = run(
        &[],
        &[("GAUGE_TIMEOUT_S", "0.2")],
        true,
        Stdin::Open("PCB01A0001\n\n"),
    );
    let console = run.console();
    assert_eq!(run.status.code(), Some(2), "{console}");
    assert!(run.elapsed >= Duration::from_millis(200), "{console}");
    assert!(run.elapsed < HANG / 3, "took {:?}\n{console}", run.elapsed);
    assert_eq!(
        run.outcome_details(),
        &json!([{
            "code": "PromptError",
            "description": "no answer to 'Read the gauge (mm)' within 0.2 s",
        }]),
        "{console}"
    );
}

#[test]
fn answers_on_the_command_line_need_no_terminal() {
    let run = run(
        &["--serial", "PCB01A0002", "--answer", "", "--answer", "3.31"],
        &[],
        false,
        Stdin::Open(""),
    );
    let console = run.console();
    assert!(run.status.success(), "{console}");
    assert_eq!(run.gap()["measured_value"], json!(3.31));
}
