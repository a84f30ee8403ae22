//! Issue #13's second pass on the upload: whatever the server answers and whenever it stores,
//! one executed run is one run on TofuPilot; nothing waits forever or reads without bound; the
//! key never comes back; a bad key or URL keeps runs pending; the outbox commands never write
//! an entry another process holds.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tofu_core::prelude::*;
use tofu_upload::uploader::{Outbox, Progress, Status, send};
use tofu_upload::{Config, Uploader};

use crate::support::outbox::first_entry;
use crate::support::server::{SilentServer, TEST_KEY, TestServer, closed_port};

#[phase]
fn attach_one(test: &mut PhaseContext) -> Result<(), tofu_core::AttachError> {
    test.attach("notes.txt", "rails OK\n")
}

fn config(url: &str) -> Config {
    tofu_upload::ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(url)
        .timeout(Duration::from_secs(2))
        .config()
        .unwrap()
}

fn test_with(dir: &Path, uploader: Uploader) -> Test {
    Test::new("FVT1")
        .part_number("PCB1")
        .phases([attach_one])
        .json_output(JsonOutput::to_dir(dir))
        .output(uploader)
        .quiet()
}

/// One run of `serial` kept (offline) in the outbox `dir`.
fn queued(dir: &Path, serial: &str) {
    let _ = test_with(dir, Uploader::offline(dir, "test")).execute(|| serial);
}

fn send_first(server: &TestServer, dir: &Path) -> Progress {
    send(&server.client(), first_entry(dir), true).unwrap()
}

fn cli(server_url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tofu-outbox"))
        .args(args)
        .env("TOFUPILOT_API_KEY", TEST_KEY)
        .env("TOFUPILOT_URL", server_url)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

/// `retry` read an entry, then wrote it back without its lock: an upload finishing meanwhile
/// had its run id erased, and the run was created again. Now an entry someone holds is left
/// alone (and said so), and the state written is the one read under the lock.
#[test]
fn retry_never_writes_an_entry_another_process_holds() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-RETRY");
    let mut entry = first_entry(dir.path());
    entry.state.status = Status::Parked;
    entry.state.run_id = Some("run-made-meanwhile".into());
    entry.save().unwrap();
    let lock = entry.try_lock().unwrap().unwrap();
    let outbox = dir.path().to_str().unwrap();
    for args in [
        &["--outbox", outbox, "retry", "--all"][..],
        &["--outbox", outbox, "retry", &entry.id],
    ] {
        let (_, text) = cli(&server.url(), args);
        assert!(text.contains("being uploaded"), "{text}");
        let state = first_entry(dir.path()).state;
        assert_eq!(state.status, Status::Parked, "{text}");
        assert_eq!(state.run_id.as_deref(), Some("run-made-meanwhile"));
    }
    drop(lock);
    let (ok, text) = cli(&server.url(), &["--outbox", outbox, "retry", "--all"]);
    assert!(ok, "{text}");
    let state = first_entry(dir.path()).state;
    assert_eq!(state.status, Status::Pending);
    assert_eq!(state.run_id.as_deref(), Some("run-made-meanwhile"));
}

/// A 408 or 429 answered after the server stored the run: the run exists, so the next attempt
/// looks for it instead of creating it again.
#[test]
fn a_408_or_429_after_the_run_was_stored_does_not_create_it_twice() {
    for status in [408, 429] {
        let server = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        queued(dir.path(), "SN-AFTER");
        server.fail_after_work("POST", "/api/v1/runs", status);
        let progress = send_first(&server, dir.path());
        assert!(matches!(progress, Progress::Retry { .. }), "{progress:?}");
        assert!(first_entry(dir.path()).state.create_sent, "{status}");
        let progress = send_first(&server, dir.path());
        assert!(matches!(progress, Progress::Done { .. }), "{progress:?}");
        assert_eq!(server.runs().len(), 1, "HTTP {status}");
    }
}

/// A create the server stores after the client looked for it: the client created the run
/// again (two runs). The second run is found and the extra one deleted before the entry is done.
#[test]
fn a_create_stored_after_the_look_up_is_repaired_to_one_run() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-LATE");
    server.store_late("POST", "/api/v1/runs", Duration::from_millis(800));
    let progress = send_first(&server, dir.path());
    assert!(matches!(progress, Progress::Retry { .. }), "{progress:?}");
    // Looked up at once: not there yet, so it is created again.
    let progress = send_first(&server, dir.path());
    assert!(
        matches!(progress, Progress::Verifying { .. }),
        "an entry whose first create may still be stored is checked again later: {progress:?}"
    );
    let entry = first_entry(dir.path());
    let ours = entry.state.run_id.clone().unwrap();
    while server.late_stores_pending() > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.runs().len(), 2, "the late create was stored");
    // Time passes (the check is due).
    let mut entry = first_entry(dir.path());
    entry.state.next_attempt_millis = 0;
    entry.state.verify_until_millis = Some(0);
    entry.save().unwrap();
    let progress = send(&server.client(), entry, false).unwrap();
    assert!(matches!(progress, Progress::Done { .. }), "{progress:?}");
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, ours, "the run with the files is kept");
    assert_eq!(server.deleted_runs().len(), 1);
    assert_eq!(server.attachments_of(&ours).len(), 2);
    assert!(Outbox::open(dir.path()).unwrap().ids().unwrap().is_empty());
}

/// `Retry-After: 100000000000` stalled a run for thousands of years: it is capped at the
/// backoff's longest wait (an hour).
#[test]
fn a_huge_retry_after_is_capped_at_the_longest_backoff() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-WAIT");
    server.fail_with_retry_after("POST", "/api/v1/runs", 503, 100_000_000_000);
    let before = chrono::Utc::now().timestamp_millis();
    let Progress::Retry { wait, .. } = send_first(&server, dir.path()) else {
        panic!()
    };
    assert_eq!(wait, Duration::from_secs(3600));
    let next = first_entry(dir.path()).state.next_attempt_millis;
    assert!(
        next >= before + 3_600_000 && next <= before + 3_700_000,
        "{next}"
    );
}

/// An answer of 20 MiB is not read whole: more than the cap is a server error (retried).
#[test]
fn an_answer_over_the_size_cap_is_a_server_error() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-BIG");
    let huge = "x".repeat(20 << 20);
    server.fail_raw("POST", "/api/v1/runs", 200, &huge, "application/json");
    server.fail_raw("GET", "/api/v1/runs", 500, &huge, "text/plain");
    let Progress::Retry { error, .. } = send_first(&server, dir.path()) else {
        panic!()
    };
    assert!(error.contains("larger than"), "{error}");
    // The create may have been stored: it is looked up (a huge error body this time).
    let Progress::Retry { error, .. } = send_first(&server, dir.path()) else {
        panic!()
    };
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(error.len() < 2000, "{}", error.len());
    // Not found: created again, and looked for a late copy of the first create a while.
    let progress = send_first(&server, dir.path());
    assert!(
        matches!(progress, Progress::Verifying { .. }),
        "{progress:?}"
    );
    assert_eq!(server.runs().len(), 1);
}

/// A server (or proxy) quoting the key: it is scrubbed from what is stored and shown.
#[test]
fn a_key_quoted_by_the_server_is_scrubbed() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-QUOTE");
    server.fail_create(
        400,
        &format!("bad request from Bearer {TEST_KEY} (key {TEST_KEY})"),
    );
    let Progress::Parked { error } = send_first(&server, dir.path()) else {
        panic!()
    };
    assert!(!error.contains(TEST_KEY), "{error}");
    assert!(
        error.contains("bad request from Bearer <API key>"),
        "{error}"
    );
    let state = std::fs::read_to_string(first_entry(dir.path()).dir.join("state.json")).unwrap();
    assert!(!state.contains(TEST_KEY), "{state}");
    let (_, text) = cli(
        &server.url(),
        &["--outbox", dir.path().to_str().unwrap(), "list"],
    );
    assert!(
        !text.contains(TEST_KEY) && text.contains("<API key>"),
        "{text}"
    );
    let client = server.client();
    server.fail_raw("GET", "/api/v1/runs", 502, TEST_KEY, "text/plain");
    let e = client.get_runs("SN-QUOTE").unwrap_err().to_string();
    assert!(!e.contains(TEST_KEY), "{e}");
}

/// Another process finished the entry between our listing and our lock: that is success, not
/// `lock: No such file or directory`.
#[test]
fn an_entry_finished_by_another_process_meanwhile_is_no_error() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-RACE");
    let entry = first_entry(dir.path());
    let stale = entry.clone();
    entry.remove().unwrap();
    let progress = send(&server.client(), stale, true).unwrap();
    assert!(matches!(progress, Progress::Skipped), "{progress:?}");
    assert!(server.requests().is_empty());
}

/// A wrong key (401) or a wrong URL is the station's problem: the runs stay pending (not
/// parked), the console says what is wrong and what to do, `tofu-outbox upload` fails, and
/// once it is fixed they go up.
#[test]
fn a_wrong_key_or_url_keeps_the_runs_pending_with_advice() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().to_str().unwrap();
    queued(dir.path(), "SN-KEY");
    for (fail, url, want) in [
        (Some(401), server.url(), "TOFUPILOT_API_KEY"),
        (Some(403), server.url(), "TOFUPILOT_API_KEY"),
        (
            None,
            format!("{}/not-tofupilot", server.url()),
            "TOFUPILOT_URL",
        ),
    ] {
        if let Some(status) = fail {
            server.fail_create(status, "Invalid API key");
        }
        let (ok, text) = cli(&url, &["--outbox", outbox, "upload"]);
        assert!(!ok, "{text}");
        assert!(text.contains(want) && !text.contains("parked"), "{text}");
        let state = first_entry(dir.path()).state;
        assert_eq!(state.status, Status::Pending, "{text}");
        assert!(!state.create_sent);
    }
    let (ok, text) = cli(&server.url(), &["--outbox", outbox, "upload"]);
    assert!(ok && text.contains("1 uploaded"), "{text}");
    assert_eq!(server.runs().len(), 1);
}

/// Nothing touches the network before a run is queued, and an uploader that queued nothing
/// doesn't wait at its end (a `Test` built only to check its limits).
#[test]
fn an_uploader_that_queued_nothing_never_connects_nor_waits() {
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-OLD");
    let started = Instant::now();
    let uploader = Uploader::new(config(&format!("http://{}", silent.addr)), dir.path())
        .wait_at_exit(Duration::from_secs(10));
    let test = test_with(dir.path(), uploader);
    std::thread::sleep(Duration::from_millis(300));
    drop(test);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(silent.connections(), 0);
}

/// Uploaders of one process on one outbox (a station's slots) share one background uploader:
/// one wait at the end, not one per slot, and one "still in the outbox".
#[test]
fn uploaders_on_one_outbox_share_one_worker_and_one_wait() {
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", silent.addr);
    let mut tests: Vec<Test> = (0..4)
        .map(|_| {
            test_with(
                dir.path(),
                Uploader::new(config(&url), dir.path()).wait_at_exit(Duration::from_secs(2)),
            )
        })
        .collect();
    for (i, test) in tests.iter_mut().enumerate() {
        let execution = test.execute(|| format!("SN-SLOT{i}"));
        assert!(execution.outputs_ok());
    }
    let started = Instant::now();
    drop(tests);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "four uploaders waited {waited:?} (one wait is 2 s)"
    );
    assert_eq!(Outbox::open(dir.path()).unwrap().ids().unwrap().len(), 4);

    // A real station of four slots, the network down: one line at the end, not four.
    let dir = tempfile::tempdir().unwrap();
    let text = child_run_named(
        "second_pass::child_runs_a_station",
        dir.path(),
        &[
            ("TOFU_UPLOAD_WAIT_S", "1"),
            ("TOFUPILOT_API_KEY", TEST_KEY),
            (
                "TOFUPILOT_URL",
                &format!("http://127.0.0.1:{}", closed_port()),
            ),
        ],
    );
    assert_eq!(text.matches("still in the outbox").count(), 1, "{text}");
    assert!(text.contains("4 run(s) still in the outbox"), "{text}");

    // The same station with the server up: four runs, and no "outbox error" (slots losing the
    // race for an entry another one just finished said `lock: No such file or directory`).
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let text = child_run_named(
        "second_pass::child_runs_a_station",
        dir.path(),
        &[
            ("TOFU_UPLOAD_WAIT_S", "20"),
            ("TOFUPILOT_API_KEY", TEST_KEY),
            ("TOFUPILOT_URL", &server.url()),
        ],
    );
    assert!(
        !text.contains("outbox error") && !text.contains("lock:"),
        "{text}"
    );
    assert_eq!(server.runs().len(), 4, "{text}");
}

/// Run by `uploaders_on_one_outbox_share_one_worker_and_one_wait` in a child process.
#[test]
#[ignore = "run as a child process by another test"]
fn child_runs_a_station() {
    let dir = std::env::var("TOFU_CHILD_DIR").unwrap();
    let dir = Path::new(&dir).to_owned();
    let mut station = Station::new(4, |_| {
        Test::new("FVT1")
            .phases([attach_one])
            .json_output(JsonOutput::to_dir(&dir))
            .output(Uploader::from_env())
    })
    .quiet();
    let batch = station.run(|slot| format!("SN-S{}", slot.index()));
    assert!(batch.executions.iter().all(|e| e.outputs_ok()));
}

/// `tofu-outbox upload-report` twice on one record: the second finds the run and creates none.
#[test]
fn upload_report_twice_creates_one_run() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-REPORT");
    let record = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let record = record.to_str().unwrap();
    let (ok, text) = cli(&server.url(), &["upload-report", record]);
    assert!(ok, "{text}");
    let (ok, text) = cli(&server.url(), &["upload-report", record]);
    assert!(ok && text.contains("already on TofuPilot"), "{text}");
    assert_eq!(server.runs().len(), 1);
}

/// A symlink in an entry's `files/` would upload whatever the station can read: refused.
#[cfg(unix)]
#[test]
fn a_symlink_in_an_entrys_files_is_refused() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-LINK");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the station's secret").unwrap();
    let entry = first_entry(dir.path());
    let planted = entry.file_path(&entry.state.files[1]);
    std::fs::remove_file(&planted).unwrap();
    std::os::unix::fs::symlink(&secret, &planted).unwrap();
    let Progress::Parked { error } = send_first(&server, dir.path()) else {
        panic!()
    };
    assert!(error.contains("symbolic link"), "{error}");
    let stored: Vec<Vec<u8>> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.body)
        .collect();
    assert!(!stored.iter().any(|b| b == b"the station's secret"));
}

/// `TOFU_UPLOAD_WAIT_S=1e20` panicked before the run, `1e19` at exit: every value is now
/// clamped or refused with a warning naming the variable.
#[test]
fn the_wait_variable_never_panics() {
    let server = TestServer::start();
    for value in ["1e20", "1e19", "-1", "NaN", "inf", "soon", ""] {
        let dir = tempfile::tempdir().unwrap();
        let text = child_run(
            dir.path(),
            &[
                ("TOFU_UPLOAD_WAIT_S", value),
                ("TOFUPILOT_API_KEY", TEST_KEY),
                ("TOFUPILOT_URL", &server.url()),
            ],
        );
        if !matches!(value, "1e20" | "1e19" | "") {
            assert!(text.contains("TOFU_UPLOAD_WAIT_S"), "{value}: {text}");
        }
    }
}

/// Every environment variable tofu reads, given values no one should give: the run still
/// happens, nothing panics, and the program ends on its own.
#[test]
fn hostile_values_of_every_variable_never_panic() {
    let server = TestServer::start();
    let long = "x".repeat(100_000);
    let cases: Vec<(&str, &str)> = vec![
        ("TOFU_UPLOAD_VERIFY_S", "1e300"),
        ("TOFU_UPLOAD_VERIFY_S", "-5"),
        ("TOFUPILOT_URL", "ftp://nowhere"),
        ("TOFUPILOT_URL", "http://"),
        ("TOFUPILOT_URL", "http://[::1"),
        ("TOFUPILOT_URL", "https://t.example/api/v2"),
        ("TOFUPILOT_API_KEY", "key\twith\ttabs and \u{7f}"),
        ("TOFUPILOT_API_KEY", "   "),
        ("TOFU_OUTBOX_DIR", "/dev/null/outbox"),
        ("TOFU_OUTBOX_DIR", ""),
        ("TOFU_OUTPUT_DIR", "/dev/null/records"),
        ("TOFU_STATION_ID", &long),
        ("TOFU_PROMPT_STDIN", "maybe"),
        ("RUST_LOG", "=====,tofu=bogus[{"),
    ];
    for (name, value) in cases {
        let value = value.to_owned();
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let outbox = dir.path().join("outbox");
        let _ = child_run(
            dir.path(),
            &[
                ("TOFU_CHILD_ANY_OUTPUT", "1"),
                ("TOFU_UPLOAD_WAIT_S", "2"),
                ("TOFUPILOT_API_KEY", TEST_KEY),
                ("TOFUPILOT_URL", &server.url()),
                ("TOFU_OUTBOX_DIR", outbox.to_str().unwrap()),
                (name, &value),
            ],
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{name}");
    }
}

/// Runs `child_runs_one_test` in a child process with `env`; checks it succeeded without a
/// panic and returns its console.
fn child_run(dir: &Path, env: &[(&str, &str)]) -> String {
    child_run_named("second_pass::child_runs_one_test", dir, env)
}

/// Runs the ignored test `name` in a child process with `env`; checks it succeeded without a
/// panic and returns its console.
fn child_run_named(name: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture"])
        .env("TOFU_CHILD_DIR", dir)
        // Never the default folders (the package's own): `env` may name others.
        .env("TOFU_OUTPUT_DIR", dir)
        .env("TOFU_OUTBOX_DIR", dir.join("outbox"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("panicked"),
        "{env:?}: {text}"
    );
    text
}

/// Run by the tests above in a child process.
#[test]
#[ignore = "run as a child process by another test"]
fn child_runs_one_test() {
    let dir = std::env::var("TOFU_CHILD_DIR").unwrap();
    let mut test = test_with(Path::new(&dir), Uploader::from_env());
    let execution = test.execute(|| "SN-CHILD");
    // A bad setting may fail an output (said in its status), never the run.
    assert!(
        execution.outputs_ok() || std::env::var_os("TOFU_CHILD_ANY_OUTPUT").is_some(),
        "{:?}",
        execution.outputs
    );
    assert_eq!(execution.record.dut_id, "SN-CHILD");
}

/// The base URL with `/api/v1` (or `/api`) pasted in works.
#[test]
fn a_url_ending_in_api_v1_works() {
    let server = TestServer::start();
    for suffix in ["/api/v1", "/api/v1/", "/api", "/api/"] {
        let client = tofu_upload::ClientBuilder::new()
            .api_key(TEST_KEY)
            .base_url(format!("{}{suffix}", server.url()))
            .build_blocking()
            .unwrap();
        client.get_runs("SN-URL").unwrap();
    }
    for r in server.requests() {
        assert_eq!(r.path, "/api/v1/runs");
    }
}

/// `https://` to a server that speaks plain HTTP says so in words.
#[test]
fn https_to_a_plain_http_server_says_so() {
    let server = TestServer::start();
    let url = server.url().replace("http://", "https://");
    let client = tofu_upload::ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(&url)
        .build_blocking()
        .unwrap();
    let e = client.get_runs("SN-TLS").unwrap_err().to_string();
    assert!(e.contains("plain HTTP"), "{e}");
}

/// A refused connection is not a wrong URL: it stays an ordinary retry.
#[test]
fn a_refused_connection_is_retried_quietly() {
    let dir = tempfile::tempdir().unwrap();
    queued(dir.path(), "SN-DOWN");
    let client = tofu_upload::blocking::TofuPilotClient::from_config(config(&format!(
        "http://127.0.0.1:{}",
        closed_port()
    )))
    .unwrap();
    let progress = send(&client, first_entry(dir.path()), true).unwrap();
    assert!(matches!(progress, Progress::Retry { .. }), "{progress:?}");
}

/// A run without a unit (no serial number could be had) was uploaded as `UNKNOWN_DUT`, a fake
/// unit skewing the yield: it is kept locally (its record, with the reason) and not queued,
/// unless the uploader is told to.
#[test]
fn a_run_without_a_unit_is_not_uploaded_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test_with(
        dir.path(),
        Uploader::offline(dir.path().join("outbox"), "test"),
    );
    let execution = test.execute(|| Err::<String, _>("the scanner gave nothing"));
    assert_eq!(execution.record.dut_id, tofu_core::UNKNOWN_DUT);
    let said = execution.outputs[0]
        .result
        .as_ref()
        .unwrap()
        .as_deref()
        .unwrap();
    assert!(
        said.contains("not uploaded") && said.contains("the scanner gave nothing"),
        "{said}"
    );
    assert!(
        !dir.path().join("outbox").exists()
            || Outbox::open(dir.path().join("outbox"))
                .unwrap()
                .ids()
                .unwrap()
                .is_empty()
    );
    let records = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(records, 1, "the record is kept locally");
    let mut test = test_with(
        dir.path(),
        Uploader::offline(dir.path().join("outbox"), "test").upload_runs_without_unit(true),
    );
    let _ = test.execute(|| Err::<String, _>("the scanner gave nothing"));
    assert_eq!(
        Outbox::open(dir.path().join("outbox"))
            .unwrap()
            .ids()
            .unwrap()
            .len(),
        1
    );
}

/// A run recovered from a dead process's journal may be one that process had queued, or even
/// uploaded, already: it is not queued twice, and when queued again it is looked for on
/// TofuPilot before it is created (found by the crash loop after the journal came in: a run
/// created twice).
#[test]
fn a_recovered_run_already_queued_or_uploaded_is_not_uploaded_twice() {
    use tofu_core::OutputCallback as _;
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut test = test_with(dir.path(), Uploader::offline(dir.path(), "test"));
    let execution = test.execute(|| "SN-RECOVERED");
    let record = serde_json::to_value(&execution.record).unwrap();
    let mut uploader = Uploader::offline(dir.path(), "test");
    uploader.on_recovered(&record).unwrap();
    assert_eq!(Outbox::open(dir.path()).unwrap().ids().unwrap().len(), 1);
    let progress = send_first(&server, dir.path());
    assert!(matches!(progress, Progress::Done { .. }), "{progress:?}");
    // Recovered once more, after the upload: looked for, found, not created again.
    uploader.on_recovered(&record).unwrap();
    assert!(first_entry(dir.path()).state.create_sent);
    let _ = send_first(&server, dir.path());
    assert_eq!(server.runs().len(), 1, "{:?}", server.runs());
}
