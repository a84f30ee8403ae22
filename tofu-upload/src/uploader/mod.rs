//! The uploader: an output callback that sends every finished run to TofuPilot, through a
//! durable outbox, in the background.
//!
//! ```no_run
//! use tofu_core::prelude::*;
//! use tofu_upload::Uploader;
//!
//! # #[phase] fn check() {}
//! fn main() -> std::process::ExitCode {
//!     Test::new("FVT1")
//!         .part_number("PCB01")
//!         .phases([check])
//!         .output(Uploader::from_env()) // the one line
//!         .execute(|| "SN-0001")
//!         .exit_code()
//! }
//! ```
//!
//! On each record the uploader writes the run, its attachments and its JSON report into the
//! outbox (synced to disk) before any network call, then wakes the process's background thread
//! for that outbox (started by the first run queued, shared by every uploader of the process
//! on that outbox, such as a station's slots) that uploads it. The next test doesn't wait.
//! When the last uploader using it is dropped (the end of the program), it gives the thread a
//! few seconds (`TOFU_UPLOAD_WAIT_S`, 20 by default, at most an hour) to finish; whatever is
//! left stays in the outbox for the next start, or for `tofu-outbox upload`. An uploader that
//! queued nothing writes nothing, sends nothing and doesn't wait. Transient failures are retried with backoff; a
//! run TofuPilot refuses is parked with TofuPilot's message until `tofu-outbox retry`; a
//! refused key or a wrong URL keeps the runs pending and says what to fix. A run without a unit
//! ([`tofu_core::UNKNOWN_DUT`]) is not uploaded unless
//! [`Uploader::upload_runs_without_unit`] says so.

mod drain;
mod mapping;
mod outbox;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tofu_core::{OutputCallback, OutputError, TestRecord};

pub use outbox::OUTBOX_DIR_ENV;

// What other programs use of the outbox: reading it (a station page lists the runs waiting:
// `Outbox::open(dir)?.entries()`, each entry's `id`, `state.serial_number`, `state.status`,
// `state.attempts` and `state.last_error`), queueing a request by hand (`Outbox::enqueue`), and
// sending an entry now (`send`, as `tofu-outbox upload` does). The record mapping and the
// drain's steps are this crate's own.
pub use drain::{Progress, send};
pub use mapping::FileToAttach;
pub(crate) use mapping::{attachments, create_run};
pub use outbox::{Entry, EntryLock, EntryState, FileState, Outbox, OutboxError, Status, Updated};

use crate::CreateRun;
use crate::blocking::TofuPilotClient;
use crate::{Config, MAX_ATTACHMENTS, MAX_FILE_SIZE};

/// How old a half-written or half-deleted hidden folder in the outbox must be before the
/// uploader (at start) or `tofu-outbox upload` removes it (younger ones may be another
/// process's, under way): an hour.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

/// The environment variable giving how long (seconds) the program waits at its end for
/// uploads to finish.
pub const WAIT_ENV: &str = "TOFU_UPLOAD_WAIT_S";

/// Sends every finished run to TofuPilot, through the outbox. See the [module docs](self).
#[derive(Debug)]
pub struct Uploader {
    outbox_dir: PathBuf,
    /// Where runs go when `outbox_dir` can't be written: `Some(None)` nowhere else, `None`
    /// the default (found when first needed).
    fallback_dir: Option<Option<PathBuf>>,
    client: Option<TofuPilotClient>,
    offline: Option<String>,
    /// No API key was set: the runs queued are marked so.
    without_key: bool,
    /// Runs without a unit (`UNKNOWN_DUT`) are uploaded too.
    upload_without_unit: bool,
    wait: Duration,
    /// The process's background uploader of each outbox this uploader queued runs into,
    /// started with the first run queued.
    workers: Vec<Arc<Worker>>,
}

/// The background uploader of one outbox, shared by every [`Uploader`] of the process that
/// queues runs into it (a station's slots).
#[derive(Debug)]
struct Worker {
    dir: PathBuf,
    wake: Mutex<mpsc::Sender<Message>>,
    exited: Mutex<mpsc::Receiver<()>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
enum Message {
    Wake,
    Finish(Instant),
}

/// The workers of this process, by outbox folder: one per outbox, whoever queues into it.
static WORKERS: Mutex<Vec<Weak<Worker>>> = Mutex::new(Vec::new());

fn workers() -> std::sync::MutexGuard<'static, Vec<Weak<Worker>>> {
    WORKERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Uploader {
    /// Configured from `TOFUPILOT_API_KEY` and `TOFUPILOT_URL`, with the outbox in
    /// [`Outbox::default_dir`]. Without a key, runs are kept in the outbox and the console says
    /// so; they go up later with `tofu-outbox upload`.
    pub fn from_env() -> Self {
        match Config::from_env() {
            Ok(config) => Uploader::new(config, Outbox::default_dir()),
            Err(e) => {
                let without_key = matches!(e, crate::Error::MissingApiKey);
                let mut uploader = Uploader::offline(Outbox::default_dir(), e.to_string());
                uploader.without_key = without_key;
                uploader
            }
        }
    }

    /// With explicit settings and outbox folder. Nothing is written or sent before the first
    /// run is queued.
    pub fn new(config: Config, outbox_dir: impl Into<PathBuf>) -> Self {
        match TofuPilotClient::from_config(config) {
            Ok(client) => Uploader::with(outbox_dir.into(), Some(client), None),
            Err(e) => Uploader::offline(outbox_dir, e.to_string()),
        }
    }

    /// Keeps every run in the outbox without uploading (`reason` is shown on the console).
    pub fn offline(outbox_dir: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Uploader::with(outbox_dir.into(), None, Some(reason.into()))
    }

    fn with(outbox_dir: PathBuf, client: Option<TofuPilotClient>, offline: Option<String>) -> Self {
        Uploader {
            outbox_dir,
            fallback_dir: None,
            client,
            offline,
            without_key: false,
            upload_without_unit: false,
            wait: wait_from_env(),
            workers: Vec::new(),
        }
    }

    /// How long dropping the uploader waits for the uploads under way (default 20 s,
    /// `TOFU_UPLOAD_WAIT_S`).
    pub fn wait_at_exit(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Where runs are queued when the outbox can't be written: by default `outbox` in the
    /// record fallback folder private to the user ([`tofu_core::fs::fallback_dir`]); `None`
    /// makes such a run an error of this output.
    pub fn fallback_outbox(mut self, dir: Option<PathBuf>) -> Self {
        self.fallback_dir = Some(dir);
        self
    }

    /// Uploads runs that have no unit ([`tofu_core::UNKNOWN_DUT`]: no serial number could be
    /// had, or the slot was empty) too. By default they are not uploaded (on an account they
    /// would make a fake unit and skew the yield): their JSON record keeps them, with the
    /// reason, and `tofu-outbox upload-report RECORD` uploads one by hand.
    pub fn upload_runs_without_unit(mut self, upload: bool) -> Self {
        self.upload_without_unit = upload;
        self
    }

    /// Waits until the outbox has nothing due, or `timeout` passes.
    ///
    /// The background uploader is shared by the uploaders of this process on the same outbox:
    /// only the last one to finish (or be dropped) waits, so a program waits once. An upload
    /// still under way at the deadline (a slow server) is left to the process's end: its entry
    /// stays in the outbox, consistent, for the next start.
    ///
    /// Called by hand on an uploader that queued nothing yet, it starts the background uploader
    /// to send what the outbox holds (dropping such an uploader sends nothing and doesn't wait).
    pub fn finish(&mut self, timeout: Duration) {
        if self.workers.is_empty()
            && let Some(client) = self.client.clone()
            && let Ok(outbox) = Outbox::open(&self.outbox_dir)
        {
            self.wake(client, &outbox);
        }
        self.finish_workers(timeout);
    }

    fn finish_workers(&mut self, timeout: Duration) {
        for worker in std::mem::take(&mut self.workers) {
            let last = {
                let mut all = workers();
                // Only ours is left (the registry's is weak): no other uploader uses it.
                let last = Arc::strong_count(&worker) == 1;
                if last {
                    let ours = Arc::downgrade(&worker);
                    all.retain(|w| w.strong_count() > 0 && !Weak::ptr_eq(w, &ours));
                }
                last
            };
            if last {
                worker.finish(timeout);
            }
        }
    }

    fn enqueue(&mut self, record: &TestRecord) -> Result<(Entry, Option<String>), String> {
        // The report first: it is the one file that must not fall over the file limit. It is
        // the run's own record, not one of its attachments: up to MAX_ATTACHMENTS of those go
        // with it (as TofuPilot's OpenHTF integration uploads the report, then 100 files).
        let mut files = vec![report(record)?];
        files.extend(attachments(record));
        let v2 = crate::v2::create_run(record);
        self.enqueue_request(&create_run(record), Some(&v2), files, false)
    }

    /// A run recovered from a dead process's journal, in its record's JSON form.
    fn enqueue_json(
        &mut self,
        record: &serde_json::Value,
    ) -> Result<(Entry, Option<String>), String> {
        let request = mapping::create_run_from_json(record)?;
        let mut report = record.clone();
        for phase in report["phases"].as_array_mut().into_iter().flatten() {
            for (_, a) in phase["attachments"].as_object_mut().into_iter().flatten() {
                if let Some(a) = a.as_object_mut() {
                    a.remove("data");
                }
            }
        }
        let name = format!(
            "{}.{}.{}.json",
            tofu_core::fs::safe_file_name(record["dut_id"].as_str().unwrap_or_default()),
            tofu_core::fs::safe_file_name(
                record["metadata"]["procedure_id"]
                    .as_str()
                    .unwrap_or_default()
            ),
            record["start_time_millis"]
        );
        let mut files = vec![FileToAttach {
            name,
            mimetype: Some("application/json".into()),
            data: serde_json::to_vec(&report).map_err(|e| e.to_string())?,
        }];
        files.extend(mapping::attachments_from_json(record));
        // Its dead process may have queued it, or uploaded it, already: looked for first.
        self.enqueue_request(&request, None, files, true)
    }

    /// Queues a run in the outbox (else in the fallback outbox) and wakes its uploader; the
    /// note says when the fallback was used.
    fn enqueue_request(
        &mut self,
        request: &CreateRun,
        request_v2: Option<&crate::v2::CreateRun>,
        files: Vec<FileToAttach>,
        recovered: bool,
    ) -> Result<(Entry, Option<String>), String> {
        let mut kept = Vec::with_capacity(files.len());
        let mut attachments_kept = 0;
        for (i, file) in files.into_iter().enumerate() {
            if file.data.len() as u64 > MAX_FILE_SIZE {
                eprintln!(
                    "TofuPilot: attachment {} ({} bytes) is over the 10 MiB limit and is not uploaded (it stays in the JSON record)",
                    file.name,
                    file.data.len()
                );
            } else if i > 0 && attachments_kept == MAX_ATTACHMENTS {
                eprintln!(
                    "TofuPilot: attachment {} is over the limit of {MAX_ATTACHMENTS} files and is not uploaded",
                    file.name
                );
            } else {
                attachments_kept += usize::from(i > 0);
                kept.push(file);
            }
        }
        let started = request.started_at.map(|t| t.timestamp_millis());
        let queue = |dir: &std::path::Path| {
            Outbox::open(dir).and_then(|outbox| {
                // A recovered run its dead process had queued already is not queued twice.
                let queued = recovered
                    .then(|| outbox.entries().ok())
                    .flatten()
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .find(|e| {
                        e.state.serial_number == request.unit_under_test.serial_number
                            && e.state.started_at_millis == started
                    });
                match queued {
                    Some(entry) => Ok((outbox, entry)),
                    None => outbox
                        .enqueue_marked(request, request_v2, &kept, self.without_key, recovered)
                        .map(|entry| (outbox, entry)),
                }
            })
        };
        let (outbox, entry, note) = match queue(&self.outbox_dir) {
            Ok((outbox, entry)) => (outbox, entry, None),
            Err(first) => {
                let fallback = match &self.fallback_dir {
                    Some(Some(dir)) => dir.clone(),
                    Some(None) => return Err(first.to_string()),
                    None => tofu_core::fs::fallback_dir().join("outbox"),
                };
                let (outbox, entry) =
                    queue(&fallback).map_err(|e| format!("{first}; and the fallback {e}"))?;
                let note = format!(
                    "queued in the fallback outbox {} (the outbox {} could not be written: {first})",
                    outbox.dir().display(),
                    self.outbox_dir.display()
                );
                tracing::error!("{note}");
                (outbox, entry, Some(note))
            }
        };
        if let Some(client) = self.client.clone() {
            self.wake(client, &outbox);
        }
        Ok((entry, note))
    }

    /// Wakes the process's worker of `outbox`, started if there is none.
    fn wake(&mut self, client: TofuPilotClient, outbox: &Outbox) {
        let dir = std::fs::canonicalize(outbox.dir()).unwrap_or_else(|_| outbox.dir().to_owned());
        if !self.workers.iter().any(|w| w.dir == dir) {
            let mut all = workers();
            all.retain(|w| w.strong_count() > 0);
            let worker = match all.iter().filter_map(Weak::upgrade).find(|w| w.dir == dir) {
                Some(worker) => worker,
                None => {
                    let worker = Arc::new(Worker::start(client, outbox.clone(), dir.clone()));
                    all.push(Arc::downgrade(&worker));
                    worker
                }
            };
            self.workers.push(worker);
        }
        for worker in self.workers.iter().filter(|w| w.dir == dir) {
            let _ = locked(&worker.wake).send(Message::Wake);
        }
    }
}

/// The record as an OpenHTF JSON report, attachments without their data (they are uploaded
/// as files of their own), as TofuPilot's OpenHTF integration attaches it.
fn report(record: &TestRecord) -> Result<FileToAttach, String> {
    let name = format!(
        "{}.{}.{}.json",
        tofu_core::fs::safe_file_name(&record.dut_id),
        tofu_core::fs::safe_file_name(&record.metadata.procedure_id),
        record.start_time_millis
    );
    let data = if record.phases.iter().any(|p| !p.attachments.is_empty()) {
        let mut json = serde_json::to_value(record).map_err(|e| e.to_string())?;
        if let Some(phases) = json
            .get_mut("phases")
            .and_then(serde_json::Value::as_array_mut)
        {
            for attachment in phases
                .iter_mut()
                .filter_map(|p| p.get_mut("attachments"))
                .filter_map(serde_json::Value::as_object_mut)
            {
                for (_, a) in attachment.iter_mut() {
                    if let Some(a) = a.as_object_mut() {
                        a.remove("data");
                    }
                }
            }
        }
        serde_json::to_vec(&json)
    } else {
        serde_json::to_vec(record)
    }
    .map_err(|e| e.to_string())?;
    Ok(FileToAttach {
        name,
        mimetype: Some("application/json".into()),
        data,
    })
}

impl OutputCallback for Uploader {
    fn name(&self) -> &str {
        "TofuPilot"
    }

    /// The outbox is written and synced before the JSON record, so a run on disk is always
    /// queued for upload.
    fn is_durable_queue(&self) -> bool {
        true
    }

    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        if record.dut_id == tofu_core::UNKNOWN_DUT && !self.upload_without_unit {
            let reason = record
                .outcome_details
                .first()
                .map_or("no serial number", |d| d.description.as_str());
            return Ok(Some(not_uploaded(reason)));
        }
        let (entry, note) = self.enqueue(record).map_err(|e| {
            OutputError::Other(format!("the run could not be kept for upload: {e}"))
        })?;
        Ok(Some(self.queued(&entry, note)))
    }

    /// A run recovered from the journal of a process that died mid-run is queued like any
    /// other, once (the journal notes that the outbox has it).
    fn on_recovered(&mut self, record: &serde_json::Value) -> Result<Option<String>, OutputError> {
        if record["dut_id"] == tofu_core::UNKNOWN_DUT && !self.upload_without_unit {
            let reason = record["outcome_details"][0]["description"]
                .as_str()
                .unwrap_or("no serial number");
            return Ok(Some(not_uploaded(reason)));
        }
        let (entry, note) = self.enqueue_json(record).map_err(|e| {
            OutputError::Other(format!(
                "the recovered run could not be kept for upload: {e}"
            ))
        })?;
        Ok(Some(self.queued(&entry, note)))
    }
}

/// What the uploader says of a run without a unit, which it doesn't upload.
fn not_uploaded(reason: &str) -> String {
    format!(
        "not uploaded: the run has no unit ({reason}); its JSON record keeps it, and `tofu-outbox upload-report <record>` uploads it if it should be on TofuPilot"
    )
}

impl Uploader {
    /// Where a queued run is, and when it goes up.
    fn queued(&self, entry: &Entry, note: Option<String>) -> String {
        let note = note.map(|n| format!("; {n}")).unwrap_or_default();
        if self.client.is_some() && self.workers.iter().any(|w| w.started()) {
            return format!("run queued for upload ({}){note}", entry.id);
        }
        let reason = self
            .offline
            .as_deref()
            .unwrap_or("the upload thread could not start");
        let advice = if self.without_key {
            format!(
                "it goes up with its original start time once TOFUPILOT_API_KEY is set (the next run with a key, or `tofu-outbox upload`); to drop it instead: `tofu-outbox rm {} --yes`",
                entry.id
            )
        } else {
            "it will be uploaded with its original start time by `tofu-outbox upload` or the next run with a key".to_owned()
        };
        format!(
            "kept offline in {} ({reason}); {advice}{note}",
            entry.dir.display()
        )
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        let wait = self.wait;
        self.finish_workers(wait);
    }
}

impl Worker {
    fn start(client: TofuPilotClient, outbox: Outbox, dir: PathBuf) -> Worker {
        let (wake, inbox) = mpsc::channel();
        let (exiting, exited) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("tofu-upload".into())
            .spawn(move || {
                let _exiting = exiting;
                run_worker(&client, &outbox, &inbox);
            })
            .map_err(|e| {
                eprintln!("TofuPilot: can't start the upload thread ({e}); runs stay in the outbox")
            })
            .ok();
        Worker {
            dir,
            wake: Mutex::new(wake),
            exited: Mutex::new(exited),
            handle: Mutex::new(handle),
        }
    }

    fn started(&self) -> bool {
        locked(&self.handle).is_some()
    }

    /// Tells the worker to stop once nothing is due or `timeout` passed, and waits for it.
    fn finish(&self, timeout: Duration) {
        let Some(handle) = locked(&self.handle).take() else {
            return;
        };
        let _ = locked(&self.wake).send(Message::Finish(Instant::now() + timeout));
        // The worker drops its end of `exited` when it returns.
        let exited = locked(&self.exited).recv_timeout(timeout + Duration::from_millis(500));
        match exited {
            Err(mpsc::RecvTimeoutError::Timeout) => eprintln!(
                "TofuPilot: an upload is still under way; it stays in the outbox {} and goes up on the next start or with `tofu-outbox upload`",
                self.dir.display()
            ),
            _ => {
                let _ = handle.join();
            }
        }
    }
}

/// The background loop: send what is due, sleep until the next entry is due (at most 5 s) or
/// a new run arrives; on `Finish`, stop once nothing is due or the deadline passes.
fn run_worker(client: &TofuPilotClient, outbox: &Outbox, inbox: &mpsc::Receiver<Message>) {
    outbox.remove_leftovers(LEFTOVER_AGE);
    list_queued_without_key(outbox);
    let mut deadline: Option<Instant> = None;
    // Unreadable entries and outbox errors already said, so that each is said once.
    let mut reported = HashSet::new();
    // The key or URL is wrong: nothing will go up until it is fixed, so the end doesn't wait.
    let mut settings_wrong = false;
    loop {
        let due_left = drain_due(client, outbox, deadline, &mut reported, &mut settings_wrong);
        if let Some(deadline) = deadline
            && (!due_left || settings_wrong || Instant::now() >= deadline)
        {
            report_left(outbox);
            return;
        }
        let sleep = if deadline.is_some() {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        match inbox.recv_timeout(sleep) {
            Ok(Message::Wake) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Message::Finish(at)) => deadline = Some(at),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                deadline = deadline.or(Some(Instant::now()))
            }
        }
    }
}

/// Sends every entry that is due; returns whether some entry is still pending and due before
/// the deadline (so finishing should wait for it).
///
/// An entry that can't be read (damaged, or written by another version) is left as it is, for
/// a person to look at, and said once (`reported`); the others go on.
fn drain_due(
    client: &TofuPilotClient,
    outbox: &Outbox,
    deadline: Option<Instant>,
    reported: &mut HashSet<String>,
    settings_wrong: &mut bool,
) -> bool {
    let mut say_once = |message: String| {
        if reported.insert(message.clone()) {
            eprintln!("TofuPilot: {message}");
        }
    };
    // The deadline as a wall-clock time, to compare with the entries' next attempts.
    let until = deadline.map(|deadline| {
        chrono::Utc::now().timestamp_millis()
            + i64::try_from(
                deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
            )
            .unwrap_or(i64::MAX / 2)
    });
    let entries = match outbox.entries() {
        Ok(entries) => entries,
        Err(e) => {
            say_once(format!("the outbox can't be read: {e}"));
            return false;
        }
    };
    let mut due_left = false;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                say_once(format!(
                    "{e}; this run is left in the outbox as it is, the others go on (`tofu-outbox list` lists it)"
                ));
                continue;
            }
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return true;
        }
        let verifying =
            entry.state.run_id.is_some() && entry.state.files.iter().all(|f| f.uploaded);
        let due_before = !verifying
            && until.is_some_and(|until| {
                entry.state.status == Status::Pending && entry.state.next_attempt_millis < until
            });
        let serial = entry.state.serial_number.clone();
        let due = match send(client, entry, false) {
            Ok(Progress::Done { run_url, run_id }) => {
                *settings_wrong = false;
                eprintln!(
                    "TofuPilot: run of {serial} uploaded: {}",
                    run_url.unwrap_or(run_id)
                );
                false
            }
            Ok(Progress::Verifying {
                run_url,
                run_id,
                until,
            }) => {
                eprintln!(
                    "TofuPilot: run of {serial} uploaded: {} (an earlier create of it may still be stored by the server: looked for until {})",
                    run_url.unwrap_or(run_id),
                    show_time(until)
                );
                // Uploaded: the end of the program doesn't wait for the last look.
                false
            }
            Ok(Progress::Settings { error, advice }) => {
                say_once(format!(
                    "runs can't be uploaded: {advice}. They stay in the outbox {} and go up once this is fixed (the next run, or `tofu-outbox upload`). The server said: {error}",
                    outbox.dir().display()
                ));
                // The same for every run: no use trying the others now.
                *settings_wrong = true;
                return false;
            }
            Ok(Progress::Retry { error, wait }) => {
                eprintln!(
                    "TofuPilot: upload of {serial} failed, retrying in {} s: {error}",
                    wait.as_secs()
                );
                // As `send` saved it: the next attempt is `wait` from now.
                until.is_some_and(|until| {
                    chrono::Utc::now()
                        .timestamp_millis()
                        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
                        < until
                })
            }
            Ok(Progress::Parked { error }) => {
                eprintln!(
                    "TofuPilot: run of {serial} refused and parked (fix, then `tofu-outbox retry`): {error}"
                );
                false
            }
            Ok(Progress::Busy | Progress::Skipped) => due_before,
            Err(e) => {
                say_once(format!("outbox error: {e}"));
                due_before
            }
        };
        due_left |= due;
    }
    due_left
}

fn report_left(outbox: &Outbox) {
    let Ok(entries) = outbox.entries() else {
        return;
    };
    let (checking, left): (Vec<_>, Vec<_>) = entries.iter().partition(|e| {
        e.as_ref()
            .is_ok_and(|e| e.state.run_id.is_some() && e.state.files.iter().all(|f| f.uploaded))
    });
    if !left.is_empty() {
        eprintln!(
            "TofuPilot: {} run(s) still in the outbox {}; they go up on the next start or with `tofu-outbox upload`",
            left.len(),
            outbox.dir().display()
        );
    }
    if !checking.is_empty() {
        eprintln!(
            "TofuPilot: {} run(s) uploaded and kept in the outbox {} a little longer, to delete a late second copy if the server stores one (the next start or `tofu-outbox upload` finishes them)",
            checking.len(),
            outbox.dir().display()
        );
    }
}

/// Lists, once, the runs queued while no API key was set, which this key now uploads (runs
/// tried before an account existed, which the user may rather drop).
fn list_queued_without_key(outbox: &Outbox) {
    let Ok(entries) = outbox.entries() else {
        return;
    };
    let keyless: Vec<Entry> = entries
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.state.queued_without_key)
        .collect();
    if keyless.is_empty() {
        return;
    }
    eprintln!(
        "TofuPilot: {} run(s) kept while no API key was set go up now with this key (`tofu-outbox rm --without-key --yes` drops them instead):",
        keyless.len()
    );
    for entry in &keyless {
        eprintln!(
            "TofuPilot:   {} {} ({})",
            entry.state.serial_number,
            entry.state.procedure_id.as_deref().unwrap_or("-"),
            entry.id
        );
    }
}

/// An epoch-ms time as the console shows it.
fn show_time(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis).map_or_else(
        || millis.to_string(),
        |t| t.format("%H:%M:%S UTC").to_string(),
    )
}

/// The longest wait at the end of a program: an hour (`TOFU_UPLOAD_WAIT_S` is clamped to it).
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

fn wait_from_env() -> Duration {
    seconds_from_env(WAIT_ENV, Duration::from_secs(20), MAX_WAIT)
}

/// A number of seconds from the environment variable `name`: `default` when it is unset or
/// empty, at most `max`. A value that is not a number of seconds (negative, NaN, text) is said
/// on the console (once per value) and `default` is used; a larger one is said and clamped.
fn seconds_from_env(name: &str, default: Duration, max: Duration) -> Duration {
    let Some(raw) = std::env::var_os(name) else {
        return default;
    };
    let text = raw.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return default;
    }
    match text.parse::<f64>() {
        Ok(s) if s >= 0.0 && s <= max.as_secs_f64() => Duration::from_secs_f64(s),
        Ok(s) if s > max.as_secs_f64() => {
            warn_env_once(format!(
                "{name}={text} is more than the most, {} s: {} s is used",
                max.as_secs(),
                max.as_secs()
            ));
            max
        }
        _ => {
            warn_env_once(format!(
                "{name}={text} is not a number of seconds (such as 20 or 0.5): the default, {} s, is used",
                default.as_secs_f64()
            ));
            default
        }
    }
}

fn warn_env_once(message: String) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = locked(&SAID);
    if !said.contains(&message) {
        tracing::warn!(target: "tofu_upload", "{message}");
        eprintln!("TofuPilot: warning: {message}");
        said.push(message);
    }
}
