//! The crash loop of issue #6, grown by issue #13: a real station
//! (`examples/examples/crash_station.rs`) tests unit after unit and uploads every run through
//! the outbox to the loopback server, which fails at random (500/502/503, 429 with
//! `Retry-After`, connections dropped before or after the work is done, slow answers, failed
//! storage `PUT`s; and since issue #13: 408 or 429 answered after the work is stored, creates
//! stored late — after the client looked for them —, a `Retry-After` of thousands of years,
//! 20 MiB answers), while the station is killed with SIGKILL at random moments and started
//! again; now and then outbox commands run beside it at the same time — `tofu-outbox upload`
//! (one or two at once), `tofu-outbox retry --all` — and are killed too. At the end the faults
//! stop, the late stores land, `tofu-outbox upload` sends what is left (and deletes the second
//! copies of late stores), and every run recorded must be on the server exactly once, with all
//! its files byte for byte, and the outbox must be empty.
//!
//! The campaign runs through v1 and, since issue #15, through v2 (`TOFUPILOT_API_VERSION=v2`:
//! runs made once by their `client_run_ref` rather than by look-ups, files stored, finalized and
//! linked). `cargo test` runs a short campaign (36 runs) of each; the full one:
//!
//! ```sh
//! TOFU_CRASH_LOOP_RUNS=200 cargo test -p tofu-upload --test it crash_loop -- --nocapture
//! ```
//!
//! The seed is printed; `TOFU_CRASH_LOOP_SEED=N` replays its draws (the faults and the kill
//! plans; the timing of two processes and a server is not replayed exactly).
//!
//! A `Test` hands each run to the uploader's outbox before it writes the JSON record (the
//! outbox is a durable queue), so a record on disk means the run is in the outbox; a run killed
//! between the two goes up without a record, and is checked against its JSON report instead.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tofu_core::prelude::*;
use tofu_upload::uploader::{Progress, send};
use tofu_upload::{ApiVersion, Outbox};

use crate::example_binaries::executables;
use crate::support::server::{Chaos, ChaosFault, TEST_KEY, TestServer};

const RUNS_ENV: &str = "TOFU_CRASH_LOOP_RUNS";
const SEED_ENV: &str = "TOFU_CRASH_LOOP_SEED";
const DEFAULT_RUNS: u64 = 36;
/// The station's client gives up on an answer after this; slow answers go up to 3 s.
const CLIENT_TIMEOUT_MS: u64 = 1500;
/// How long after a create sent again its run's copies are looked for (`TOFU_UPLOAD_VERIFY_S`):
/// longer than the latest late store (the server's slow answers, at most 3 s).
const VERIFY_S: u64 = 4;

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// When a started process is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after its start.
    After(Duration),
    /// As soon as the server has seen this many more requests (likely in the middle of an
    /// upload: between a create and its answer, a file and its sync).
    AtRequest(usize),
    /// Not killed: it ends on its own.
    Never,
}

#[derive(Debug, Default)]
struct Figures {
    starts: u64,
    kills_timed: u64,
    kills_at_request: u64,
    clean_exits: u64,
    outbox_commands: u64,
    outbox_commands_killed: u64,
}

#[test]
fn crash_loop_every_recorded_run_is_on_the_server_once_with_all_its_files() {
    campaign(ApiVersion::V1);
}

/// The same campaign through TofuPilot's v2 API (issue #15): the idempotency key
/// (`client_run_ref`) instead of look-ups, v2's files (initialize, PUT, finalize, link), the
/// procedure resolved by name, under the same faults and kills.
#[test]
fn crash_loop_through_v2_every_recorded_run_is_on_the_server_once_with_all_its_files() {
    campaign(ApiVersion::V2);
}

fn campaign(version: ApiVersion) {
    let runs: u64 = std::env::var(RUNS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash loop ({version}): {runs} runs, seed {seed} (replay with {SEED_ENV}={seed})");
    let started = Instant::now();
    let station = executables()
        .get("crash_station")
        .expect("cargo built no example named `crash_station`")
        .clone();
    let outbox_cli = PathBuf::from(env!("CARGO_BIN_EXE_tofu-outbox"));

    let server = TestServer::start();
    server.add_procedure("CRASH");
    server.chaos(Some(Chaos {
        seed,
        percent: 12,
        slow_max: Duration::from_millis(3000),
    }));
    let work = tempfile::tempdir().unwrap();
    let records = work.path().join("records");
    let outbox = work.path().join("outbox");
    let log_path = work.path().join("console.log");
    let log = File::create(&log_path).unwrap();
    let mut rng = Rng(seed ^ 0x00c0_ffee);
    let mut figures = Figures::default();
    let loop_started = Instant::now();
    // Far more than the campaign needs: it fails rather than hangs.
    let give_up = loop_started + Duration::from_secs(120 + runs * 3);

    let mut recorded = 0;
    while recorded < runs {
        assert!(
            Instant::now() < give_up,
            "the campaign made no progress: {recorded} of {runs} runs recorded\n{}",
            tail(&log_path)
        );
        let first = last_unit(&records) + 1;
        let count = rng.range(1, 8).min(runs - recorded);
        let mut child = Command::new(&station)
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--timeout-ms", &CLIENT_TIMEOUT_MS.to_string()])
            .env("TOFUPILOT_API_KEY", TEST_KEY)
            .env("TOFUPILOT_URL", server.url())
            .env("TOFUPILOT_API_VERSION", version.as_str())
            .env("TOFU_OUTPUT_DIR", &records)
            .env("TOFU_OUTBOX_DIR", &outbox)
            .env("TOFU_UPLOAD_WAIT_S", "2")
            .env("TOFU_UPLOAD_VERIFY_S", VERIFY_S.to_string())
            .current_dir(work.path())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap();
        figures.starts += 1;
        // Now and then outbox commands beside the station, on the same outbox, at once: one
        // `upload`, two `upload`s, `retry --all` with an `upload`, or `retry --all` alone.
        let commands: &[&[&str]] = match rng.range(1, 100) {
            1..=20 => &[&["upload"]],
            21..=30 => &[&["upload"], &["upload"]],
            31..=40 => &[&["retry", "--all"], &["upload"]],
            41..=48 => &[&["retry", "--all"]],
            _ => &[],
        };
        let mut beside: Vec<Child> = commands
            .iter()
            .map(|args| {
                figures.outbox_commands += 1;
                Command::new(&outbox_cli)
                    .args(["--outbox", outbox.to_str().unwrap()])
                    .args(*args)
                    .env("TOFUPILOT_API_KEY", TEST_KEY)
                    .env("TOFUPILOT_URL", server.url())
                    .env("TOFUPILOT_API_VERSION", version.as_str())
                    .env("TOFU_UPLOAD_VERIFY_S", VERIFY_S.to_string())
                    .stdout(Stdio::from(log.try_clone().unwrap()))
                    .stderr(Stdio::from(log.try_clone().unwrap()))
                    .spawn()
                    .unwrap()
            })
            .collect();
        let plan = match rng.range(1, 100) {
            1..=45 => Kill::After(Duration::from_millis(rng.range(0, 400 + count * 120))),
            46..=85 => Kill::AtRequest(rng.range(1, 14) as usize),
            _ => Kill::Never,
        };
        let killed = run_until(&mut child, plan, &server);
        match (plan, killed) {
            (Kill::After(_), true) => figures.kills_timed += 1,
            (Kill::AtRequest(_), true) => figures.kills_at_request += 1,
            (_, false) => {
                let status = child.wait().unwrap();
                assert!(status.success(), "the station exited with {status}");
                figures.clean_exits += 1;
            }
            (Kill::Never, true) => unreachable!(),
        }
        for mut beside in beside.drain(..) {
            if beside.try_wait().unwrap().is_none() {
                figures.outbox_commands_killed += 1;
            }
            // SIGKILL; harmless when it has already exited.
            let _ = beside.kill();
            let _ = beside.wait();
        }
        recorded = count_records(&records);
    }
    let loop_time = loop_started.elapsed();

    // The faults stop; the creates the server stores late land; what is left goes up. An
    // entry whose create was sent again is kept VERIFY_S longer (its late copy is looked for
    // and deleted), so the drain runs again until the outbox is empty (three times at most).
    server.chaos(None);
    let settle = Instant::now();
    while server.late_stores_pending() > 0 {
        assert!(
            settle.elapsed() < Duration::from_secs(30),
            "late stores never landed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left_before_drain = Outbox::open(&outbox).unwrap().entries().unwrap().len();
    let mut drain_console = String::new();
    let mut drains_ok = true;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(VERIFY_S + 1));
        let drain = Command::new(&outbox_cli)
            .args(["--outbox", outbox.to_str().unwrap(), "upload"])
            .env("TOFUPILOT_API_KEY", TEST_KEY)
            .env("TOFUPILOT_URL", server.url())
            .env("TOFUPILOT_API_VERSION", version.as_str())
            .env("TOFU_UPLOAD_VERIFY_S", VERIFY_S.to_string())
            .output()
            .unwrap();
        drain_console += &(String::from_utf8_lossy(&drain.stdout).into_owned()
            + &String::from_utf8_lossy(&drain.stderr));
        drains_ok &= drain.status.success();
        if Outbox::open(&outbox).unwrap().ids().unwrap().is_empty() {
            break;
        }
    }

    let check = check_server(&server, &records);
    let entries_left = Outbox::open(&outbox).unwrap().entries().unwrap().len();
    let leftovers = hidden_leftovers(&outbox);

    let mut faults: BTreeMap<ChaosFault, u64> = BTreeMap::new();
    let injected = server.injected();
    for i in &injected {
        *faults.entry(i.fault).or_default() += 1;
    }
    let lost_create_answers = injected
        .iter()
        .filter(|i| i.method == "POST" && (i.path == "/api/v1/runs" || i.path == "/api/v2/runs"))
        .filter(|i| {
            matches!(
                i.fault,
                ChaosFault::DropAfter
                    | ChaosFault::Status408After
                    | ChaosFault::TooManyAfter
                    | ChaosFault::HugeBody
                    | ChaosFault::LateStore
            ) || (i.fault == ChaosFault::Slow
                && i.slow
                    .is_some_and(|d| d >= Duration::from_millis(CLIENT_TIMEOUT_MS)))
        })
        .count();
    let late_stores = injected
        .iter()
        .filter(|i| i.fault == ChaosFault::LateStore)
        .count();
    let copies_deleted = server.deleted_runs().len();
    let uploaded_in_loop =
        (recorded as usize + check.without_record.len()).saturating_sub(left_before_drain);
    let report = format!(
        "crash loop figures ({version}, seed {seed})\n\
         runs recorded:             {recorded}\n\
         station starts:            {}\n\
         kills (SIGKILL):           {} ({} at a random time, {} right after a request reached the server)\n\
         clean exits:               {}\n\
         outbox commands beside:    {} ({} killed; upload, two uploads, retry --all)\n\
         requests to the server:    {}\n\
         faults injected:           {} ({})\n\
         create answers lost:       {lost_create_answers} (run created, answer dropped, wrong or later than the client's timeout)\n\
         creates stored late:       {late_stores} (after the client could look for them); second copies deleted: {copies_deleted}\n\
         uploaded during the loop:  {uploaded_in_loop} (the rest by the final drain: {left_before_drain})\n\
         runs on the server:        {}\n\
         runs lost:                 {}\n\
         runs duplicated:           {}\n\
         runs without a record:     {} (killed between the outbox and the JSON record; checked against their report)\n\
         files missing or wrong:    {}\n\
         files duplicated:          {}\n\
         records in two files:      {} (the same run's JSON record written twice; checked once)\n\
         outbox entries left:       {entries_left}\n\
         hidden leftovers:          {} (entries killed while being written or deleted)\n\
         loop time:                 {:.1} s\n\
         wall time:                 {:.1} s",
        figures.starts,
        figures.kills_timed + figures.kills_at_request + figures.outbox_commands_killed,
        figures.kills_timed,
        figures.kills_at_request,
        figures.clean_exits,
        figures.outbox_commands,
        figures.outbox_commands_killed,
        server.request_count(),
        injected.len(),
        faults
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        check.server_runs,
        check.lost.len(),
        check.duplicated.len(),
        check.without_record.len(),
        check.bad_files.len(),
        check.duplicated_files.len(),
        check.records_twice.len(),
        leftovers.len(),
        loop_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    println!("{report}");
    let problems = check.problems();
    assert!(
        drains_ok && problems.is_empty() && entries_left == 0,
        "{report}\n\nproblems:\n{}\n\nfinal drain:\n{drain_console}\n\nconsole (last lines):\n{}",
        problems.join("\n"),
        tail(&log_path)
    );
    assert!(recorded >= runs);
}

/// Waits for the child to end, or kills it (SIGKILL) as `plan` says; whether it was killed.
fn run_until(child: &mut Child, plan: Kill, server: &TestServer) -> bool {
    let start = Instant::now();
    let requests_at_start = server.request_count();
    // A station that hangs is killed (and the campaign's checks will tell what it left).
    let hard_limit = Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = start.elapsed();
        let due = match plan {
            Kill::After(after) => now >= after,
            Kill::AtRequest(n) => server.request_count() >= requests_at_start + n,
            Kill::Never => false,
        };
        if due || now >= hard_limit {
            assert!(
                now < hard_limit || !matches!(plan, Kill::Never),
                "the station did not end within {hard_limit:?}"
            );
            // `Child::kill` is SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The records written, as JSON values.
fn read_records(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap())
        .collect()
}

fn count_records(dir: &Path) -> u64 {
    read_records(dir).len() as u64
}

/// The number of the last unit recorded (0 when none).
fn last_unit(dir: &Path) -> u64 {
    read_records(dir)
        .iter()
        .filter_map(|r| r["dut_id"].as_str()?.strip_prefix("CRASH-")?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[derive(Debug, Default)]
struct Check {
    server_runs: usize,
    lost: Vec<String>,
    duplicated: Vec<String>,
    without_record: Vec<String>,
    bad_files: Vec<String>,
    duplicated_files: Vec<String>,
    /// Runs whose JSON record is in two files (a record written again, e.g. by a recovery):
    /// said, checked once; not a run lost or uploaded twice.
    records_twice: Vec<String>,
}

impl Check {
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, list) in [
            ("lost", &self.lost),
            ("duplicated", &self.duplicated),
            ("file missing or wrong", &self.bad_files),
            ("file duplicated", &self.duplicated_files),
        ] {
            out.extend(list.iter().map(|item| format!("{what}: {item}")));
        }
        out
    }
}

/// Compares the records with what the server holds.
fn check_server(server: &TestServer, records_dir: &Path) -> Check {
    let records = read_records(records_dir);
    let mut check = Check::default();
    let runs = server.runs();
    check.server_runs = runs.len();
    // (serial, start in ms) -> run ids.
    let mut on_server: HashMap<(String, i64), Vec<String>> = HashMap::new();
    for (id, body) in &runs {
        let serial = body["serial_number"]
            .as_str()
            .or_else(|| body["unit_under_test"]["serial_number"].as_str())
            .unwrap_or_default()
            .to_owned();
        let started = body["started_at"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map_or(0, |t| t.timestamp_millis());
        on_server
            .entry((serial, started))
            .or_default()
            .push(id.clone());
    }
    let mut seen_records: HashMap<(String, i64), usize> = HashMap::new();
    for record in &records {
        let serial = record["dut_id"].as_str().unwrap().to_owned();
        let started = record["start_time_millis"].as_i64().unwrap();
        let name = format!("{serial} started at {started}");
        let copies = seen_records.entry((serial.clone(), started)).or_default();
        *copies += 1;
        if *copies > 1 {
            check.records_twice.push(name);
            continue;
        }
        let ids = on_server
            .remove(&(serial.clone(), started))
            .unwrap_or_default();
        match ids.len() {
            0 if killed_while_queued(records_dir, &serial) => check
                .lost
                .push(format!("{name} (killed while the outbox was writing it)")),
            0 => check.lost.push(name),
            1 => check_files(server, &ids[0], record, &name, &mut check),
            n => check.duplicated.push(format!("{name}: {n} runs")),
        }
    }
    // Runs whose process was killed after the outbox took them and before the JSON record
    // was written: each must be there once, with its files.
    for ((serial, started), ids) in on_server {
        let name = format!("{serial} started at {started} (no record)");
        check.without_record.push(name.clone());
        if ids.len() > 1 {
            check.duplicated.push(format!("{name}: {} runs", ids.len()));
        }
        let files = server.attachments_of(&ids[0]);
        let report = files
            .iter()
            .find(|f| f.0.starts_with(&format!("{serial}.")) && f.0.ends_with(".json"))
            .and_then(|f| serde_json::from_slice::<Value>(&f.2).ok());
        let Some(report) = report else {
            check.bad_files.push(format!("{name}: no report"));
            continue;
        };
        for phase in report["phases"].as_array().unwrap() {
            for (file, attachment) in phase["attachments"].as_object().unwrap() {
                let sent: Vec<_> = files.iter().filter(|f| &f.0 == file).collect();
                if sent.len() != 1 || attachment["size"].as_u64() != Some(sent[0].2.len() as u64) {
                    check
                        .bad_files
                        .push(format!("{name}: {file} sent {} times or wrong", sent.len()));
                }
            }
        }
    }
    check
}

/// The run's files on the server: the JSON report and each attachment of the record, once
/// each, with the record's bytes.
fn check_files(server: &TestServer, run_id: &str, record: &Value, name: &str, check: &mut Check) {
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    let mut report = record.clone();
    for phase in report["phases"].as_array_mut().unwrap() {
        for (file, attachment) in phase["attachments"].as_object_mut().unwrap() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(attachment["data"].as_str().unwrap())
                .unwrap();
            expected.push((file.clone(), data));
            attachment.as_object_mut().unwrap().remove("data");
        }
    }
    let report_name = format!(
        "{}.{}.{}.json",
        record["dut_id"].as_str().unwrap(),
        record["metadata"]["procedure_id"]
            .as_str()
            .unwrap_or("CRASH"),
        record["start_time_millis"]
    );
    let files = server.attachments_of(run_id);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (file, _, _) in &files {
        *seen.entry(file.as_str()).or_default() += 1;
    }
    for (file, n) in &seen {
        if *n > 1 {
            check
                .duplicated_files
                .push(format!("{name}: {file} attached {n} times"));
        }
    }
    let find = |file: &str| files.iter().find(|f| f.0 == file).map(|f| &f.2);
    match find(&report_name).map(|data| serde_json::from_slice::<Value>(data)) {
        Some(Ok(sent)) if sent == report => {}
        Some(_) => check
            .bad_files
            .push(format!("{name}: the report differs from the record")),
        None => check
            .bad_files
            .push(format!("{name}: no report {report_name}")),
    }
    for (file, data) in &expected {
        match find(file) {
            Some(sent) if sent == data => {}
            Some(_) => check.bad_files.push(format!("{name}: {file} differs")),
            None => check.bad_files.push(format!("{name}: no {file}")),
        }
    }
    if seen.len() != expected.len() + 1 {
        check.bad_files.push(format!(
            "{name}: files {:?}",
            seen.keys().collect::<Vec<_>>()
        ));
    }
}

/// Hidden folders left in the outbox (an entry being written, or being deleted, when its
/// process was killed).
fn hidden_leftovers(outbox: &Path) -> Vec<String> {
    std::fs::read_dir(outbox)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the outbox holds a half-written entry of `serial` (its writer killed).
fn killed_while_queued(records_dir: &Path, serial: &str) -> bool {
    let outbox = records_dir.with_file_name("outbox");
    hidden_leftovers(&outbox)
        .iter()
        .any(|n| n.ends_with(".tmp") && n.contains(&format!("-{serial}-")))
}

/// The last lines of the processes' console.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

#[phase]
fn attach_two(test: &mut PhaseContext) -> Result<(), tofu_core::AttachError> {
    test.attach("capture.bin", vec![7u8; 2048])?;
    test.attach("notes.txt", "rails OK\n")
}

/// One run of `attach_two` for `serial`, kept in the outbox of `dir`.
fn queued_run(dir: &Path, serial: &str) -> Outbox {
    let outbox = dir.join("outbox");
    let mut test = Test::new("FVT1")
        .part_number("PCB1")
        .phases([attach_two])
        .json_output(JsonOutput::to_dir(dir))
        .output(tofu_upload::Uploader::offline(&outbox, "test"))
        .quiet();
    let _ = test.execute(|| serial);
    Outbox::open(outbox).unwrap()
}

/// Sends the outbox's one entry (forced) with a client that waits `timeout` for answers.
fn send_once(server: &TestServer, outbox: &Outbox, timeout: Duration) -> Progress {
    let client = server.builder().timeout(timeout).build_blocking().unwrap();
    let entry = outbox.entries().unwrap().remove(0).unwrap();
    send(&client, entry, true).unwrap()
}

/// The names of the files of the server's one run, sorted.
fn file_names(server: &TestServer) -> Vec<String> {
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let mut names: Vec<String> = server
        .attachments_of(&runs[0].0)
        .into_iter()
        .map(|f| f.0)
        .collect();
    names.sort();
    names
}

/// Found by the crash loop: a file whose sync was done on the server but whose answer was lost
/// (or whose process was killed before saving it as uploaded) was sent again, and the run had
/// it twice. The next attempt now looks at the run's files first.
#[test]
fn a_file_whose_sync_answer_was_lost_is_not_attached_twice() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = queued_run(dir.path(), "SN-SYNC");
    // The first file (the JSON report) is linked to the run, then the answer comes too late.
    server.delay("POST", "/api/v1/uploads/sync", Duration::from_secs(3), 1);
    let progress = send_once(&server, &outbox, Duration::from_millis(500));
    assert!(matches!(progress, Progress::Retry { .. }), "{progress:?}");
    let progress = send_once(&server, &outbox, Duration::from_secs(5));
    assert!(matches!(progress, Progress::Done { .. }), "{progress:?}");
    let names = file_names(&server);
    assert_eq!(names.len(), 3, "each file once: {names:?}");
    assert!(names[0].starts_with("SN-SYNC.FVT1."), "{names:?}");
    assert_eq!(names[1..], ["capture.bin", "notes.txt"]);
    assert!(outbox.entries().unwrap().is_empty());
}

/// The look-up is for safety, not a condition: a server that refuses to list runs (a key
/// without that right) gets the remaining files sent, not the run parked.
#[test]
fn files_are_still_sent_when_the_server_refuses_to_list_runs() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = queued_run(dir.path(), "SN-NOLIST");
    server.fail("PUT", "/_storage/", 500, json!({}));
    let progress = send_once(&server, &outbox, Duration::from_secs(5));
    assert!(matches!(progress, Progress::Retry { .. }), "{progress:?}");
    server.fail(
        "GET",
        "/api/v1/runs",
        403,
        json!({"success": false, "error": {"message": "Forbidden"}}),
    );
    let progress = send_once(&server, &outbox, Duration::from_secs(5));
    assert!(matches!(progress, Progress::Done { .. }), "{progress:?}");
    assert_eq!(file_names(&server).len(), 3);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/runs"),
        "the run's files were looked up"
    );
}
