//! Hostile input to tofu-upload's readers: saved OpenHTF reports given to the import, the
//! outbox's own files (truncated, corrupted, from another version, pointing outside the
//! entry), and the server's answers (mutated captures, deep nesting, huge values, wrong types).
//!
//! Inputs are made from valid ones by `tests/tests/it/mutate.rs` with fixed seeds; each case
//! runs on a thread with a deadline, so a panic or a hang fails the test with the case named.
//! Every error about a file names the file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tofu_core::Phase;
use tofu_core::prelude::*;
use tofu_core::unit::VOLT;
use tofu_upload::uploader::{Outbox, OutboxError, Progress, Status, send};
use tofu_upload::{CreateRun, Error, UnitUnderTest, Uploader};

use crate::mutate::{self, Case, Rng};
use crate::support::capture::{captured_path, fixtures_dir};
use crate::support::server::{TEST_KEY, TestServer};

/// Per case: reading takes milliseconds and a send a few requests on loopback; this only
/// catches hangs.
const DEADLINE: Duration = Duration::from_secs(30);

/// Tokens that mean something to JSON, and values that stress a reader.
const JSON_TOKENS: [&str; 32] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\u{0}",
    "\u{feff}",
    "null",
    "true",
    "-0",
    "1e999",
    "-1e999",
    "1e-999",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "NaN",
    "Infinity",
    "\"\"",
    "[]",
    "{}",
    "[[[[[[[[",
    "}}}}",
    "\"../../x\"",
    "é🦀",
    "\n",
    "/*",
];

// ---------------------------------------------------------------------------------------------
// OpenHTF reports
// ---------------------------------------------------------------------------------------------

/// The reference reports: OpenHTF's sample record (three attachments in `power_on`) and the
/// report the official client uploaded (one attachment).
fn reports() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "sample_record",
            std::fs::read(fixtures_dir().join("openhtf/sample_record.json")).unwrap(),
        ),
        (
            "openhtf_report_sample",
            std::fs::read(captured_path("openhtf_report_sample")).unwrap(),
        ),
    ]
}

fn report_cases() -> Vec<Case> {
    let mut rng = Rng::new(0x0BE7_F00D);
    let mut cases = Vec::new();
    for (name, valid) in reports() {
        let label = |mut c: Case| {
            c.what = format!("{name}: {}", c.what);
            c
        };
        cases.extend(mutate::truncations(&valid, 150).into_iter().map(label));
        cases.extend(
            mutate::byte_flips(&valid, 150, &mut rng)
                .into_iter()
                .map(label),
        );
        cases.extend(
            mutate::token_splices(&valid, &JSON_TOKENS, 150, &mut rng)
                .into_iter()
                .map(label),
        );
    }
    cases.extend(mutate::random_bytes(50, 4096, &mut rng));
    for depth in [100, 10_000, 1_000_000] {
        cases.push(Case {
            what: format!("phases nested {depth} deep"),
            bytes: mutate::nested(r#"{"phases": "#, "[", "", "]", depth),
        });
        cases.push(Case {
            what: format!("an attachment's data nested {depth} deep"),
            bytes: [
                mutate::nested(
                    r#"{"phases": [{"attachments": {"a.txt": {"data": "#,
                    "{\"a\": ",
                    "1",
                    "}",
                    depth,
                ),
                b"}}}]}".to_vec(),
            ]
            .concat(),
        });
    }
    for (what, json) in [
        ("an empty object", "{}"),
        ("phases null", r#"{"phases": null}"#),
        ("phases a number", r#"{"phases": 1e999}"#),
        ("a phase a string", r#"{"phases": ["x"]}"#),
        (
            "a huge start time",
            r#"{"start_time_millis": 1e99999, "phases": []}"#,
        ),
        (
            "an integer past u64",
            r#"{"start_time_millis": 99999999999999999999999999, "phases": []}"#,
        ),
        (
            "attachments a list",
            r#"{"phases": [{"attachments": [1]}]}"#,
        ),
        (
            "data a number",
            r#"{"phases": [{"name": "p", "attachments": {"a": {"data": 5}}}]}"#,
        ),
        (
            "data not base64",
            r#"{"phases": [{"name": "p", "attachments": {"a": {"data": "@@@"}}}]}"#,
        ),
        (
            "no data",
            r#"{"phases": [{"name": "p", "attachments": {"a": {"mimetype": null}}}]}"#,
        ),
        (
            "a name with every kind of character",
            r#"{"phases": [{"name": "p", "attachments": {"../../\u0000\n\u202e.txt": {"data": "eg=="}}}]}"#,
        ),
        ("a lone surrogate", r#"{"phases": [{"name": "\ud800"}]}"#),
        ("a BOM", "\u{feff}{\"phases\": []}"),
        ("duplicate keys", r#"{"phases": [], "phases": 5}"#),
        ("trailing garbage", r#"{"phases": []} {"#),
    ] {
        cases.push(Case {
            what: what.into(),
            bytes: json.as_bytes().to_vec(),
        });
    }
    cases
}

#[test]
fn openhtf_reports_never_panic_and_errors_name_the_file() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cases = report_cases();
    let client = server.client();
    let (mut imported, mut refused, mut other) = (0, 0, 0);
    let mut wrong = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let path = dir.path().join(format!("report-case-{i:05}.json"));
        std::fs::write(&path, &case.bytes).unwrap();
        let client = client.clone();
        let file = path.clone();
        let outcome = mutate::bounded(DEADLINE, move || {
            client.create_run_from_openhtf_report(&file)
        });
        match outcome {
            Ok((Ok(_), _)) => imported += 1,
            Ok((Err(e @ Error::InvalidReport { .. }), _)) => {
                refused += 1;
                let message = e.to_string();
                if !message.contains(&path.display().to_string()) {
                    wrong.push(format!(
                        "{}: the error does not name the file: {message}",
                        case.what
                    ));
                }
            }
            // Imported, but an attachment could not be (no data, not base64): said per file.
            Ok((Err(Error::Attachments { failures, .. }), _)) => {
                other += 1;
                if failures.iter().any(|f| f.phase.is_none()) {
                    wrong.push(format!("{}: a failure without its phase", case.what));
                }
            }
            Ok((Err(e), _)) => wrong.push(format!("{}: unexpected error {e}", case.what)),
            Err(why) => wrong.push(format!("{}: {why}", case.what)),
        }
    }
    eprintln!(
        "{} reports: {imported} imported, {refused} refused, {other} imported with attachment failures",
        cases.len()
    );
    crate::mutate::assert_none_wrong(&format!("{} cases", cases.len()), &wrong);
    // Truncations and random bytes are refused before anything is sent.
    assert!(refused >= 300, "{refused} refused");
    assert!(imported >= 100, "{imported} imported");
}

#[test]
fn truncated_reports_are_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, valid) = &reports()[1];
    let client = server.client();
    let whole = String::from_utf8_lossy(valid).trim().to_owned();
    for case in mutate::truncations(valid, 200) {
        // A cut in the trailing newline leaves the whole report.
        if String::from_utf8_lossy(&case.bytes).trim() == whole {
            continue;
        }
        let path = dir.path().join("cut.json");
        std::fs::write(&path, &case.bytes).unwrap();
        let e = client.create_run_from_openhtf_report(&path).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidReport { path: p, .. } if *p == path),
            "{}: {e}",
            case.what
        );
    }
    assert!(server.requests().is_empty(), "nothing is sent");
}

// ---------------------------------------------------------------------------------------------
// The outbox
// ---------------------------------------------------------------------------------------------

/// A phase with an attachment, so that an entry has files besides its report.
fn attaching_phase() -> Phase {
    Phase::dynamic("measure")
        .measure::<f64, _>("v", tofu_core::declare::in_range(0, 10).units(VOLT))
        .run(|ctx, m| -> Result<(), String> {
            m.get::<f64>("v").map_err(|e| e.to_string())?.set(5.0);
            ctx.attach("notes.txt", "rails OK\n")
                .map_err(|e| e.to_string())
        })
}

/// Runs one test into the outbox `dir` (offline) and returns the entry's folder.
fn enqueue(dir: &Path, serial: &str) -> PathBuf {
    let records = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .part_number("PCB1")
        .phases([attaching_phase()])
        .json_output(JsonOutput::to_dir(records.path()))
        .output(Uploader::offline(dir, "test"))
        .quiet();
    let _ = test.execute(|| serial);
    let entries = Outbox::open(dir).unwrap().entries().unwrap();
    let entry = entries
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.state.serial_number == serial)
        .unwrap();
    entry.dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let dest = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &dest);
        } else {
            std::fs::copy(item.path(), dest).unwrap();
        }
    }
}

/// Every file of a folder and its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if item.file_type().unwrap().is_dir() {
            out.extend(snapshot(&item.path()));
        } else {
            out.push((item.path(), std::fs::read(item.path()).unwrap()));
        }
    }
    out.sort();
    out
}

/// `state.json` as the uploader wrote it, changed by `f`.
fn state_with(valid: &[u8], f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut state: Value = serde_json::from_slice(valid).unwrap();
    f(state.as_object_mut().unwrap());
    serde_json::to_vec_pretty(&state).unwrap()
}

/// Damaged, other-version and hostile `state.json` files.
fn state_cases(valid: &[u8]) -> Vec<Case> {
    let mut rng = Rng::new(0x0005_747E);
    // Each case writes and syncs files: 200 of each kind keep the test to seconds.
    let mut cases = mutate::truncations(valid, 200);
    cases.extend(mutate::byte_flips(valid, 200, &mut rng));
    cases.extend(mutate::token_splices(valid, &JSON_TOKENS, 200, &mut rng));
    cases.extend(mutate::random_bytes(30, 1024, &mut rng));
    let fields: Vec<String> = serde_json::from_slice::<Value>(valid)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for field in &fields {
        cases.push(Case {
            what: format!("an older version without `{field}`"),
            bytes: state_with(valid, |s| {
                s.remove(field);
            }),
        });
        for bad in [
            json!(null),
            json!("x"),
            json!(-1),
            json!(1e300),
            json!([]),
            json!({}),
        ] {
            cases.push(Case {
                what: format!("`{field}` = {bad}"),
                bytes: state_with(valid, |s| {
                    s.insert(field.clone(), bad.clone());
                }),
            });
        }
    }
    for version in [0, 2, u32::MAX] {
        cases.push(Case {
            what: format!("format version {version}"),
            bytes: state_with(valid, |s| {
                s.insert("version".into(), json!(version));
            }),
        });
    }
    for (field, value) in [
        ("attempts", json!(u32::MAX)),
        ("next_attempt_millis", json!(i64::MAX)),
        ("next_attempt_millis", json!(i64::MIN)),
        ("started_at_millis", json!(i64::MAX)),
        ("started_at_millis", json!(i64::MIN)),
        ("run_id", json!("")),
        ("run_id", json!("../../x")),
        ("serial_number", json!("")),
        ("status", json!("parked")),
        ("status", json!("done")),
        ("last_error", json!("x".repeat(1 << 20))),
    ] {
        cases.push(Case {
            what: format!(
                "`{field}` = {}",
                value.to_string().chars().take(40).collect::<String>()
            ),
            bytes: state_with(valid, |s| {
                s.insert(field.into(), value);
            }),
        });
    }
    cases
}

/// Reads `state` as an entry's `state.json` in a fresh outbox and sends it, on a thread with a
/// deadline. Returns what happened, or why it went wrong.
fn read_and_send(
    client: &tofu_upload::blocking::TofuPilotClient,
    pristine: &Path,
    work: &Path,
    state: &[u8],
) -> Result<String, String> {
    let outbox_dir = work.join("outbox");
    let _ = std::fs::remove_dir_all(&outbox_dir);
    let entry_dir = outbox_dir.join(pristine.file_name().unwrap());
    copy_dir(pristine, &entry_dir);
    let state_path = entry_dir.join("state.json");
    std::fs::write(&state_path, state).unwrap();
    let others: Vec<_> = snapshot(&entry_dir)
        .into_iter()
        .filter(|(p, _)| *p != state_path && !p.ends_with("lock"))
        .collect();
    let client = client.clone();
    let dir = outbox_dir.clone();
    let (result, _) = mutate::bounded(DEADLINE, move || {
        let mut entries = Outbox::open(&dir)
            .map_err(|e| e.to_string())?
            .entries()
            .map_err(|e| e.to_string())?;
        if entries.len() != 1 {
            return Err(format!("{} entries", entries.len()));
        }
        match entries.remove(0) {
            Err(e) => Ok(Err(e)),
            Ok(entry) => Ok(Ok(send(&client, entry, true))),
        }
    })?;
    match result? {
        // Unreadable: said with the file's path, and the entry is left exactly as it was.
        Err(e) => {
            let message = e.to_string();
            if !message.contains(&state_path.display().to_string()) {
                return Err(format!("the error does not name state.json: {message}"));
            }
            if std::fs::read(&state_path).ok().as_deref() != Some(state) {
                return Err("state.json was changed".into());
            }
            let now: Vec<_> = snapshot(&entry_dir)
                .into_iter()
                .filter(|(p, _)| *p != state_path && !p.ends_with("lock"))
                .collect();
            if now != others {
                return Err("the entry's other files were changed".into());
            }
            Ok("unreadable".into())
        }
        Ok(Ok(Progress::Done { .. })) => {
            if entry_dir.exists() {
                return Err("done, but the entry is still there".into());
            }
            Ok("uploaded".into())
        }
        Ok(Ok(progress)) => {
            if !entry_dir.join("request.json").exists() {
                return Err(format!("{progress:?}, and the entry is gone"));
            }
            Ok(format!("{progress:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or("")
                .to_owned())
        }
        Ok(Err(e)) => {
            let message = e.to_string();
            if !message.contains(&entry_dir.display().to_string()) {
                return Err(format!("an outbox error not naming the entry: {message}"));
            }
            Ok("outbox error".into())
        }
    }
}

fn tally(results: &[(String, Result<String, String>)]) -> Vec<(String, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for (_, r) in results {
        if let Ok(what) = r {
            *counts.entry(what.clone()).or_insert(0) += 1;
        }
    }
    counts.into_iter().collect()
}

fn assert_all_right(results: &[(String, Result<String, String>)]) {
    let wrong: Vec<String> = results
        .iter()
        .filter_map(|(what, r)| r.as_ref().err().map(|why| format!("{what}: {why}")))
        .collect();
    crate::mutate::assert_none_wrong(&format!("{} cases", results.len()), &wrong);
}

#[test]
fn outbox_state_files_damaged_or_from_another_version_never_panic_and_are_kept() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let made = tempfile::tempdir().unwrap();
    let pristine = enqueue(made.path(), "SN-STATE");
    let valid = std::fs::read(pristine.join("state.json")).unwrap();
    let cases = state_cases(&valid);
    let client = server.client();
    let results: Vec<(String, Result<String, String>)> = cases
        .iter()
        .map(|c| {
            (
                c.what.clone(),
                read_and_send(&client, &pristine, work.path(), &c.bytes),
            )
        })
        .collect();
    eprintln!("{} state.json cases: {:?}", cases.len(), tally(&results));
    assert_all_right(&results);
    let outcome = |what: &str| {
        results
            .iter()
            .find(|(w, _)| w == what)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    assert_eq!(outcome("format version 2"), Ok("unreadable".into()));
    assert_eq!(
        outcome("an older version without `create_sent`"),
        Ok("unreadable".into())
    );
    assert_eq!(outcome("`attempts` = 4294967295"), Ok("uploaded".into()));
}

#[test]
fn outbox_request_files_damaged_are_parked_with_the_reason_and_kept() {
    let server = TestServer::start();
    let made = tempfile::tempdir().unwrap();
    let pristine = enqueue(made.path(), "SN-REQUEST");
    let valid = std::fs::read(pristine.join("request.json")).unwrap();
    let mut rng = Rng::new(0x02E0_0E57);
    let mut cases = mutate::truncations(&valid, 100);
    cases.extend(mutate::byte_flips(&valid, 100, &mut rng));
    cases.extend(mutate::token_splices(&valid, &JSON_TOKENS, 100, &mut rng));
    let work = tempfile::tempdir().unwrap();
    let (mut parked, mut uploaded) = (0, 0);
    let client = server.client();
    let mut wrong = Vec::new();
    for case in &cases {
        let entry_dir = work
            .path()
            .join("outbox")
            .join(pristine.file_name().unwrap());
        let _ = std::fs::remove_dir_all(work.path().join("outbox"));
        copy_dir(&pristine, &entry_dir);
        let request_path = entry_dir.join("request.json");
        std::fs::write(&request_path, &case.bytes).unwrap();
        let client = client.clone();
        let dir = work.path().join("outbox");
        let sent = mutate::bounded(DEADLINE, move || {
            let entry = crate::support::outbox::first_entry(&dir);
            send(&client, entry, true).map_err(|e| e.to_string())
        });
        match sent {
            Ok((Ok(Progress::Done { .. }), _)) => uploaded += 1,
            Ok((Ok(Progress::Parked { error }), _)) => {
                parked += 1;
                let state = crate::support::outbox::first_entry(work.path().join("outbox")).state;
                let kept = std::fs::read(&request_path).ok().as_deref() == Some(&case.bytes[..]);
                // Unreadable: parked naming the file; readable but refused by the server:
                // parked with the server's message. Either way the bytes are kept.
                let named = error.contains(&request_path.display().to_string())
                    || error.starts_with("TofuPilot answered");
                if !(kept
                    && named
                    && state.status == Status::Parked
                    && state.last_error == Some(error.clone()))
                {
                    wrong.push(format!("{}: parked with {error:?}, kept {kept}", case.what));
                }
            }
            Ok((other, _)) => wrong.push(format!("{}: {other:?}", case.what)),
            Err(why) => wrong.push(format!("{}: {why}", case.what)),
        }
    }
    eprintln!(
        "{} request.json cases: {parked} parked, {uploaded} uploaded",
        cases.len()
    );
    crate::mutate::assert_none_wrong(&format!("{} cases", cases.len()), &wrong);
    assert!(parked >= 100, "{parked} parked");
}

#[test]
fn a_damaged_entry_is_kept_and_reported_and_the_others_go_up() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let first = enqueue(dir.path(), "SN-GOOD-1");
    let damaged_state = enqueue(dir.path(), "SN-BAD-STATE");
    let damaged_request = enqueue(dir.path(), "SN-BAD-REQUEST");
    let last = enqueue(dir.path(), "SN-GOOD-2");
    let state_path = damaged_state.join("state.json");
    let state = std::fs::read(&state_path).unwrap();
    std::fs::write(&state_path, &state[..state.len() / 2]).unwrap();
    let request_path = damaged_request.join("request.json");
    std::fs::write(&request_path, b"{\"unit_under_test\": ").unwrap();
    let kept = snapshot(&damaged_state);

    let out = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"))
        .args(["--outbox", dir.path().to_str().unwrap(), "upload"])
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server.url())
        .output()
        .unwrap();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{console}");
    // Both good runs went up; the damaged ones are said, with their files.
    let serials: Vec<String> = server
        .runs()
        .iter()
        .map(|(_, body)| {
            body["unit_under_test"]["serial_number"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(serials, ["SN-GOOD-1", "SN-GOOD-2"], "{console}");
    assert!(!first.exists() && !last.exists());
    assert!(
        console.contains(&format!(
            "skipped: outbox {}: unreadable",
            state_path.display()
        )),
        "{console}"
    );
    assert!(
        console.contains(&format!(
            "refused and parked: the outbox entry is damaged: outbox {}: unreadable",
            request_path.display()
        )),
        "{console}"
    );
    assert!(console.contains("2 uploaded, 2 failed"), "{console}");
    // Nothing of the damaged entries was deleted or changed (but the parked one's state).
    assert_eq!(snapshot(&damaged_state), kept);
    assert_eq!(
        std::fs::read(&request_path).unwrap(),
        b"{\"unit_under_test\": "
    );

    // The background uploader goes past them too.
    let next = enqueue(dir.path(), "SN-GOOD-3");
    let config = server.builder().config().unwrap();
    let mut uploader = Uploader::new(config, dir.path());
    uploader.finish(Duration::from_secs(20));
    assert!(!next.exists(), "the good run is uploaded");
    assert_eq!(server.runs().len(), 3);
    assert_eq!(snapshot(&damaged_state), kept);
    assert!(request_path.exists());
}

#[test]
fn a_file_name_leading_out_of_the_entry_is_refused() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let entry = enqueue(dir.path(), "SN-ESCAPE");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "not the run's").unwrap();
    let valid = std::fs::read(entry.join("state.json")).unwrap();
    for name in [
        "../../secret.txt".to_owned(),
        secret.display().to_string(),
        "..".into(),
        ".".into(),
        String::new(),
        "a/../../../secret.txt".into(),
        "..\\..\\secret.txt".into(),
        "x\0y".into(),
    ] {
        let state = state_with(&valid, |s| {
            s["files"][0]["file"] = json!(name);
        });
        std::fs::write(entry.join("state.json"), &state).unwrap();
        let error = crate::support::outbox::try_first_entry(dir.path()).unwrap_err();
        assert!(
            matches!(error, OutboxError::Corrupt { .. }),
            "{name:?}: {error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "outbox {}: unreadable (files[0].file {name:?} is not the name of a file in files/)",
                entry.join("state.json").display()
            )
        );
    }
    assert!(server.requests().is_empty());
}

#[test]
fn a_huge_retry_after_or_attempt_count_does_not_overflow() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let entry_dir = enqueue(dir.path(), "SN-HUGE");
    let valid = std::fs::read(entry_dir.join("state.json")).unwrap();
    let state = state_with(&valid, |s| {
        s.insert("attempts".into(), json!(u32::MAX));
    });
    std::fs::write(entry_dir.join("state.json"), state).unwrap();
    // A Retry-After of i64::MAX milliseconds, in seconds.
    server.fail_with_retry_after("POST", "/api/v1/runs", 429, 9_223_372_036_854_775);
    let entry = crate::support::outbox::first_entry(dir.path());
    let progress = send(&server.client(), entry, true).unwrap();
    assert!(matches!(progress, Progress::Retry { .. }), "{progress:?}");
    let state = crate::support::outbox::first_entry(dir.path()).state;
    assert_eq!(state.attempts, u32::MAX);
    // Capped at the longest backoff (issue #13: it stalled the run for thousands of years).
    let hour_from_now = chrono::Utc::now().timestamp_millis() + 3_600_000;
    assert!(
        (hour_from_now - 60_000..=hour_from_now).contains(&state.next_attempt_millis),
        "{}",
        state.next_attempt_millis
    );
}

// ---------------------------------------------------------------------------------------------
// The server's answers
// ---------------------------------------------------------------------------------------------

/// A capture's answer to `method path` with `status`.
fn captured_answer(capture: &str, method: &str, path: &str, status: u16) -> String {
    let text = std::fs::read_to_string(captured_path(capture)).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == method && r["path"] == path && r["response_status"] == status)
        .map(|r| r["response_json"].to_string())
        .unwrap()
}

/// Answers made from `valid`: mutated, and a few hostile ones.
fn answer_cases(valid: &str, rng: &mut Rng, count: usize) -> Vec<(String, String)> {
    let mut cases: Vec<Case> = mutate::truncations(valid.as_bytes(), count);
    cases.extend(mutate::byte_flips(valid.as_bytes(), count, rng));
    cases.extend(mutate::token_splices(
        valid.as_bytes(),
        &JSON_TOKENS,
        count,
        rng,
    ));
    cases.extend(mutate::random_bytes(count / 4, 512, rng));
    for depth in [100, 100_000] {
        cases.push(Case {
            what: format!("arrays nested {depth} deep"),
            bytes: mutate::nested("", "[", "", "]", depth),
        });
        cases.push(Case {
            what: format!("objects nested {depth} deep"),
            bytes: mutate::nested("", "{\"data\": ", "[]", "}", depth),
        });
    }
    for (what, body) in [
        ("empty", String::new()),
        ("null", "null".into()),
        ("html", "<html><body>502 Bad Gateway</body></html>".into()),
        (
            "a mebibyte string",
            format!("{{\"id\": \"{}\"}}", "x".repeat(1 << 20)),
        ),
        ("a huge number", "{\"id\": 1e99999}".into()),
        (
            "wrong types",
            "{\"id\": 5, \"url\": [], \"warnings\": {}}".into(),
        ),
    ] {
        cases.push(Case {
            what: what.into(),
            bytes: body.into_bytes(),
        });
    }
    cases
        .into_iter()
        .map(|c| (c.what, String::from_utf8_lossy(&c.bytes).into_owned()))
        .collect()
}

/// Sends `call` once per answer, each answered with `status` and the answer; checks no panic,
/// no hang, and an error naming the endpoint. Returns (ok, errors).
fn fuzz_endpoint<T: Send + 'static>(
    server: &TestServer,
    method: &'static str,
    path: &str,
    status: u16,
    answers: &[(String, String)],
    call: impl Fn(&tofu_upload::blocking::TofuPilotClient) -> Result<T, Error>
    + Send
    + Sync
    + Clone
    + 'static,
) -> (usize, usize) {
    let (mut ok, mut errors) = (0, 0);
    let mut wrong = Vec::new();
    let client = server.client();
    for (what, body) in answers {
        server.fail_raw(method, path, status, body, "application/json");
        let client = client.clone();
        let call = call.clone();
        match mutate::bounded(DEADLINE, move || call(&client)) {
            Ok((Ok(_), _)) => ok += 1,
            Ok((Err(e), _)) => {
                errors += 1;
                let message = e.to_string();
                // The request that failed is named (the API's, or the PUT to the URL it
                // gave); a body quoted is quoted short.
                if !message.contains(path) && !message.contains(" PUT ") {
                    wrong.push(format!("{what}: the error does not name {path}: {message}"));
                }
                if message.len() > 2_000 {
                    wrong.push(format!("{what}: an error of {} bytes", message.len()));
                }
            }
            Err(why) => wrong.push(format!("{what}: {why}")),
        }
    }
    crate::mutate::assert_none_wrong(&format!("{method} {path}"), &wrong);
    (ok, errors)
}

#[test]
fn server_answers_never_panic_and_errors_name_the_endpoint() {
    let server = TestServer::start();
    let mut rng = Rng::new(0x000A_5E2E);
    let run = || CreateRun::new(UnitUnderTest::new("SN-ANSWER"), true);

    let created = captured_answer("create_run_attachments", "POST", "/api/v1/runs", 200);
    let answers = answer_cases(&created, &mut rng, 60);
    let (ok, errors) = fuzz_endpoint(&server, "POST", "/api/v1/runs", 200, &answers, move |c| {
        c.create_run(&run())
    });
    eprintln!(
        "POST /runs 200: {} answers, {ok} read, {errors} refused",
        answers.len()
    );
    assert!(errors > answers.len() / 2);

    let refused = captured_answer("create_run_server_error", "POST", "/api/v1/runs", 400);
    for status in [400, 429, 500] {
        let answers = answer_cases(&refused, &mut rng, 30);
        let (ok, _) = fuzz_endpoint(
            &server,
            "POST",
            "/api/v1/runs",
            status,
            &answers,
            move |c| c.create_run(&run()),
        );
        assert_eq!(ok, 0, "an error status is an error");
    }

    let runs = captured_answer("get_runs", "GET", "/api/v1/runs", 200);
    let answers = answer_cases(&runs, &mut rng, 60);
    let (ok, errors) = fuzz_endpoint(&server, "GET", "/api/v1/runs", 200, &answers, |c| {
        c.get_runs("SN-ANSWER")
    });
    eprintln!(
        "GET /runs 200: {} answers, {ok} read, {errors} refused",
        answers.len()
    );

    // The upload grant names a URL the client then PUTs to: only answers whose URL, if the
    // client can read one, leads to this loopback server are used (a changed host could be
    // looked up on the network).
    let grant =
        json!({"id": "up-1", "uploadUrl": format!("{}/_storage/up-1", server.url())}).to_string();
    let answers: Vec<(String, String)> = answer_cases(&grant, &mut rng, 60)
        .into_iter()
        .filter(|(_, body)| stays_on_loopback(body))
        .collect();
    let (ok, errors) = fuzz_endpoint(
        &server,
        "POST",
        "/api/v1/uploads/initialize",
        200,
        &answers,
        |c| c.upload_attachment_bytes("run-1", "a.txt", None, b"x".to_vec()),
    );
    eprintln!(
        "POST /uploads/initialize 200: {} answers, {ok} read, {errors} refused",
        answers.len()
    );
}

#[test]
fn an_upload_url_that_is_not_a_url_is_a_malformed_answer() {
    let server = TestServer::start();
    server.fail_raw(
        "POST",
        "/api/v1/uploads/initialize",
        200,
        r#"{"id": "up-1", "uploadUrl": "not a url?X-Amz-Signature=secret"}"#,
        "application/json",
    );
    let e = server
        .client()
        .upload_attachment_bytes("run-1", "a.txt", None, b"x".to_vec())
        .unwrap_err();
    assert!(matches!(e, Error::MalformedResponse { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "malformed answer to POST {}/api/v1/uploads/initialize (HTTP 200): 'uploadUrl' \"not a url\" is not a URL",
            server.url()
        )),
        "{message}"
    );
}

/// Whether the upload URL of a grant, if it can be read as one, is on 127.0.0.1.
fn stays_on_loopback(body: &str) -> bool {
    let Ok(grant) = serde_json::from_str::<Value>(body) else {
        return true;
    };
    match grant.get("uploadUrl").and_then(Value::as_str) {
        None => true,
        Some(url) => reqwest::Url::parse(url).map_or(true, |u| u.host_str() == Some("127.0.0.1")),
    }
}

#[test]
fn a_huge_error_message_is_cut() {
    let server = TestServer::start();
    // 512 KiB: under the most read of an error answer (1 MiB), far over the message's cut.
    let huge = "é".repeat(1 << 18);
    server.fail(
        "POST",
        "/api/v1/runs",
        400,
        json!({"error": {"message": huge}, "issues": [{"message": "x"}]}),
    );
    let e = server
        .client()
        .create_run(&CreateRun::new(UnitUnderTest::new("SN-HUGE-ERROR"), true))
        .unwrap_err();
    let Error::Api { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        message.chars().count(),
        1001,
        "1000 characters and an ellipsis"
    );
    assert!(
        message.ends_with("éé…"),
        "{}",
        &message[message.len() - 10..]
    );
}

#[test]
fn an_empty_run_id_is_a_malformed_answer() {
    let server = TestServer::start();
    for body in [r#"{"id": ""}"#, r#"{"id": "  "}"#] {
        server.fail_raw("POST", "/api/v1/runs", 200, body, "application/json");
        let e = server
            .client()
            .create_run(&CreateRun::new(UnitUnderTest::new("SN-EMPTY-ID"), true))
            .unwrap_err();
        assert!(matches!(e, Error::MalformedResponse { .. }), "{e:?}");
        assert!(e.to_string().contains("/api/v1/runs"), "{e}");
        assert!(e.to_string().contains("the run id is empty"), "{e}");
    }
}
