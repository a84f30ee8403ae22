//! `tofu-outbox` as a command for people (issue #17): `--help` everywhere, runs named by id or
//! serial number, `rm` that asks, `get-runs` as a table that survives a closed pipe, advice
//! that speaks of the environment (not of Rust builders), runs queued without a key listed.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tofu_core::prelude::*;
use tofu_upload::Uploader;
use tofu_upload::uploader::Outbox;

use crate::support::server::{TEST_KEY, TestServer};

fn command(server: Option<&TestServer>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"));
    command
        .args(args)
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFUPILOT_URL")
        .env_remove("TOFU_OUTBOX_DIR");
    if let Some(server) = server {
        command
            .env("TOFUPILOT_API_KEY", TEST_KEY)
            .env("TOFUPILOT_URL", server.url());
    }
    command
}

fn text(out: &Output) -> String {
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "{text}");
    text
}

fn run(server: Option<&TestServer>, args: &[&str]) -> (Option<i32>, String) {
    let out = command(server, args).output().unwrap();
    (out.status.code(), text(&out))
}

#[phase]
fn pass() {}

/// Queues one run of `serial` (kept offline) in the outbox `dir` (its record next to it).
fn queue(dir: &Path, serial: &str) {
    let mut test = Test::new("FVT1")
        .phases([pass])
        .json_output(JsonOutput::to_dir(dir.with_file_name("records")))
        .output(Uploader::offline(dir, "test"))
        .quiet();
    let _ = test.execute(|| serial);
}

fn ids(dir: &Path) -> Vec<String> {
    Outbox::open(dir).unwrap().ids().unwrap()
}

#[test]
fn every_subcommand_has_help() {
    let (code, top) = run(None, &["--help"]);
    assert_eq!(code, Some(0), "{top}");
    for sub in [
        "list",
        "show",
        "retry",
        "rm",
        "upload",
        "upload-report",
        "get-runs",
    ] {
        assert!(top.contains(sub), "{sub} not in {top}");
        let (code, help) = run(None, &[sub, "--help"]);
        assert_eq!(code, Some(0), "{sub}: {help}");
        assert!(help.contains("Usage: tofu-outbox"), "{sub}: {help}");
        let (code, help) = run(None, &["help", sub]);
        assert_eq!(code, Some(0), "{sub}: {help}");
    }
    let (code, text) = run(None, &["uplaod"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("upload"), "a suggestion: {text}");
}

#[test]
fn show_and_retry_take_a_serial_number_or_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("outbox");
    let dir = &dir;
    let outbox = dir.as_path().to_str().unwrap();
    queue(dir.as_path(), "SN-SHOW");
    queue(dir.as_path(), "SN-OTHER");
    let id = Outbox::open(dir.as_path())
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.state.serial_number == "SN-SHOW")
        .unwrap()
        .id;
    for which in ["SN-SHOW", id.as_str()] {
        let (code, text) = run(None, &["--outbox", outbox, "show", which]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains(&id) && !text.contains("SN-OTHER"), "{text}");
        let (code, text) = run(None, &["--outbox", outbox, "retry", which]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("1 run(s) back in line"), "{text}");
    }
    let (code, text) = run(None, &["--outbox", outbox, "show", "SN-NONE"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("neither an entry id nor a serial number"),
        "{text}"
    );
}

#[test]
fn rm_asks_unless_yes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("outbox");
    let dir = &dir;
    let outbox = dir.as_path().to_str().unwrap();
    queue(dir.as_path(), "SN-RM");
    queue(dir.as_path(), "SN-KEEP");
    // No answer (stdin closed): nothing removed, and it says how.
    let out = command(None, &["--outbox", outbox, "rm", "SN-RM"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(ids(dir.as_path()).len(), 2);
    // "n": nothing removed.
    for (answer, left) in [("n\n", 2), ("y\n", 1)] {
        let mut child = command(None, &["--outbox", outbox, "rm", "SN-RM"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("[y/N]"), "{}", text(&out));
        assert_eq!(ids(dir.as_path()).len(), left, "{answer:?}: {}", text(&out));
    }
    let (code, said) = run(None, &["--outbox", outbox, "rm", "SN-KEEP", "--yes"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("1 run(s) removed"), "{said}");
    assert!(ids(dir.as_path()).is_empty());
}

#[test]
fn get_runs_prints_a_table_or_json_and_survives_a_closed_pipe() {
    let server = TestServer::start();
    let client = server.client();
    for _ in 0..300 {
        let run = tofu_upload::CreateRun::new(tofu_upload::UnitUnderTest::new("SN-TABLE"), true)
            .procedure_id("FVT1")
            .started_at(chrono::Utc::now());
        client.create_run(&run).unwrap();
    }
    let (code, table) = run(Some(&server), &["get-runs", "SN-TABLE"]);
    assert_eq!(code, Some(0), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("STARTED (UTC)") && lines[0].contains("OUTCOME"),
        "{table}"
    );
    assert!(
        lines[1].contains("PASS") && lines[1].contains("FVT1"),
        "{table}"
    );
    assert!(table.contains("300 run(s) of SN-TABLE"), "{table}");
    let (code, json) = run(Some(&server), &["get-runs", "SN-TABLE", "--json"]);
    assert_eq!(code, Some(0), "{json}");
    let runs: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 300);
    // `| head -1`: the reader goes away after one line.
    for args in [
        &["get-runs", "SN-TABLE"][..],
        &["get-runs", "SN-TABLE", "--json"],
    ] {
        let mut child = command(Some(&server), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(0) && !stderr.contains("panicked"),
            "{:?}: {stderr}",
            out.status
        );
    }
}

#[test]
fn without_a_key_the_advice_is_the_environment_variable() {
    let (code, text) = run(None, &["get-runs", "SN-1"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("TOFUPILOT_API_KEY"), "{text}");
    assert!(!text.contains("ClientBuilder"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(None, &["--outbox", dir.path().to_str().unwrap(), "upload"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("TOFUPILOT_API_KEY") && !text.contains("ClientBuilder"),
        "{text}"
    );
}

/// Runs kept while no key was set (an example tried before the account existed) are marked,
/// listed as such, listed again when a key first uploads them, and can be dropped.
#[test]
fn runs_queued_without_a_key_are_listed_and_can_be_dropped() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    for serial in ["SN-NOKEY-1", "SN-NOKEY-2"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "outbox_command::child_queues_with_the_environment",
                "--ignored",
                "--nocapture",
            ])
            .env("TOFU_CHILD_DIR", dir.path())
            .env("TOFU_CHILD_SERIAL", serial)
            .env("TOFU_OUTBOX_DIR", &outbox)
            .env_remove("TOFUPILOT_API_KEY")
            .env_remove("TOFUPILOT_URL")
            .output()
            .unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("tofu-outbox rm"), "{said}");
    }
    let (_, list) = run(None, &["--outbox", outbox.to_str().unwrap(), "list"]);
    assert_eq!(
        list.matches("queued without an API key").count(),
        2,
        "{list}"
    );
    // One dropped by hand; the other goes up with the first keyed run, listed first.
    let (code, removed) = run(
        None,
        &[
            "--outbox",
            outbox.to_str().unwrap(),
            "rm",
            "SN-NOKEY-1",
            "--yes",
        ],
    );
    assert_eq!(code, Some(0), "{removed}");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "outbox_command::child_queues_with_the_environment",
            "--ignored",
            "--nocapture",
        ])
        .env("TOFU_CHILD_DIR", dir.path())
        .env("TOFU_CHILD_SERIAL", "SN-KEYED")
        .env("TOFU_OUTBOX_DIR", &outbox)
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .env("TOFU_UPLOAD_WAIT_S", "20")
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let listed = said
        .find("kept while no API key was set")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(said[listed..].contains("SN-NOKEY-2"), "{said}");
    assert!(!said.contains("SN-NOKEY-1"), "{said}");
    let serials: Vec<String> = server
        .runs()
        .iter()
        .map(|(_, b)| {
            b["unit_under_test"]["serial_number"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(serials.contains(&"SN-NOKEY-2".to_owned()), "{serials:?}");
    assert!(!serials.contains(&"SN-NOKEY-1".to_owned()), "{serials:?}");
}

/// Run by other tests in a child process: one run with `Uploader::from_env()`.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_queues_with_the_environment() {
    let dir = std::env::var("TOFU_CHILD_DIR").unwrap();
    let serial = std::env::var("TOFU_CHILD_SERIAL").unwrap();
    let mut test = Test::new("FVT1")
        .phases([pass])
        .json_output(JsonOutput::to_dir(Path::new(&dir).join("records")))
        .output(Uploader::from_env());
    let execution = test.execute(|| serial.as_str());
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
}

/// Runs queued in the private fallback outbox (the outbox couldn't be written) are listed and
/// sent by the plain `list` and `upload`.
#[test]
fn list_and_upload_include_the_fallback_outbox() {
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let fallback = tofu_core::fs::fallback_dir_in(tmp.path()).join("outbox");
    queue(&fallback, "SN-FELL-BACK");
    let outbox = tempfile::tempdir().unwrap();
    let args = |sub: &'static str| {
        let mut c = command(Some(&server), &[sub]);
        c.env("TMPDIR", tmp.path())
            .env("TOFU_OUTBOX_DIR", outbox.path());
        c
    };
    let out = args("list").output().unwrap();
    let said = text(&out);
    assert!(
        said.contains("fallback outbox") && said.contains("SN-FELL-BACK"),
        "{said}"
    );
    let out = args("upload").output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_eq!(server.runs().len(), 1, "{said}");
    assert!(ids(&fallback).is_empty());
}
