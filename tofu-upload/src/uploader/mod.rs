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
//! outbox (synced to disk) before any network call, then wakes a background thread that
//! uploads it. The next test doesn't wait. When the uploader is dropped (the end of the
//! program), it gives the background thread a few seconds (`TOFU_UPLOAD_WAIT_S`, 20 by
//! default) to finish; whatever is left stays in the outbox for the next start, or for
//! `tofu-outbox upload`. Transient failures are retried with backoff; a run TofuPilot
//! refuses is parked with TofuPilot's message until `tofu-outbox retry`.

mod drain;
mod mapping;
mod outbox;

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tofu_core::{OutputCallback, OutputError, TestRecord};

pub use outbox::OUTBOX_DIR_ENV;

// The outbox's internals: shared with the `tofu-outbox` command (same package) and the tests,
// not a public API (hidden from the docs; they may change without notice). What a program
// uses is `Uploader`; what a person uses is `tofu-outbox`.
#[doc(hidden)]
pub use drain::{Progress, send};
#[doc(hidden)]
pub use mapping::{
    FileToAttach, attachments, attachments_from_json, create_run, create_run_from_json,
};
#[doc(hidden)]
pub use outbox::{Entry, EntryLock, EntryState, FileState, Outbox, OutboxError, Status};

use crate::CreateRun;
use crate::blocking::TofuPilotClient;
use crate::{Config, MAX_ATTACHMENTS, MAX_FILE_SIZE};

#[doc(hidden)]
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
    outbox: Result<Outbox, String>,
    worker: Option<Worker>,
    offline: Option<String>,
    wait: Duration,
}

#[derive(Debug)]
struct Worker {
    wake: mpsc::Sender<Message>,
    exited: mpsc::Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Message {
    Wake,
    Finish(Instant),
}

impl Uploader {
    /// Configured from `TOFUPILOT_API_KEY` and `TOFUPILOT_URL`, with the outbox in
    /// [`Outbox::default_dir`]. Without a key, runs are kept in the outbox and the console says
    /// so; they go up later with `tofu-outbox upload`.
    pub fn from_env() -> Self {
        match Config::from_env() {
            Ok(config) => Uploader::new(config, Outbox::default_dir()),
            Err(e) => Uploader::offline(Outbox::default_dir(), e.to_string()),
        }
    }

    /// With explicit settings and outbox folder.
    pub fn new(config: Config, outbox_dir: impl Into<std::path::PathBuf>) -> Self {
        let outbox = Outbox::open(outbox_dir).map_err(|e| e.to_string());
        let (worker, offline) = match (&outbox, TofuPilotClient::from_config(config)) {
            (Ok(outbox), Ok(client)) => (Some(Worker::start(client, outbox.clone())), None),
            (_, Err(e)) => (None, Some(e.to_string())),
            (Err(_), Ok(_)) => (None, None),
        };
        Uploader {
            outbox,
            worker,
            offline,
            wait: wait_from_env(),
        }
    }

    /// Keeps every run in the outbox without uploading (`reason` is shown on the console).
    pub fn offline(outbox_dir: impl Into<std::path::PathBuf>, reason: impl Into<String>) -> Self {
        Uploader {
            outbox: Outbox::open(outbox_dir).map_err(|e| e.to_string()),
            worker: None,
            offline: Some(reason.into()),
            wait: wait_from_env(),
        }
    }

    /// How long dropping the uploader waits for the uploads under way (default 20 s).
    pub fn wait_at_exit(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Waits until the outbox has nothing due, or `timeout` passes.
    ///
    /// An upload still under way at the deadline (a slow server) is left to the process's end:
    /// its entry stays in the outbox, consistent, for the next start.
    pub fn finish(&mut self, timeout: Duration) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        let _ = worker.wake.send(Message::Finish(Instant::now() + timeout));
        // The worker drops its end of `exited` when it returns.
        match worker
            .exited
            .recv_timeout(timeout + Duration::from_millis(500))
        {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(outbox) = self.outbox.as_ref() {
                    eprintln!(
                        "TofuPilot: an upload is still under way; it stays in the outbox {} and goes up on the next start or with `tofu-outbox upload`",
                        outbox.dir().display()
                    );
                }
            }
            _ => {
                if let Some(handle) = worker.handle {
                    let _ = handle.join();
                }
            }
        }
    }

    fn enqueue(&self, record: &TestRecord) -> Result<Entry, String> {
        // The report first: it is the one file that must not fall over the file limit. It is
        // the run's own record, not one of its attachments: up to MAX_ATTACHMENTS of those go
        // with it (as TofuPilot's OpenHTF integration uploads the report, then 100 files).
        let mut files = vec![report(record)?];
        files.extend(attachments(record));
        self.enqueue_request(&create_run(record), files)
    }

    /// A run recovered from a dead process's journal, in its record's JSON form.
    fn enqueue_json(&self, record: &serde_json::Value) -> Result<Entry, String> {
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
        self.enqueue_request(&request, files)
    }

    fn enqueue_request(
        &self,
        request: &CreateRun,
        files: Vec<FileToAttach>,
    ) -> Result<Entry, String> {
        let outbox = self.outbox.as_ref().map_err(Clone::clone)?;
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
        outbox.enqueue(request, &kept).map_err(|e| e.to_string())
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
        let entry = self.enqueue(record).map_err(|e| {
            OutputError::Other(format!("the run could not be kept for upload: {e}"))
        })?;
        Ok(self.queued(&entry))
    }

    /// A run recovered from the journal of a process that died mid-run is queued like any
    /// other, once (the journal notes that the outbox has it).
    fn on_recovered(&mut self, record: &serde_json::Value) -> Result<Option<String>, OutputError> {
        let entry = self.enqueue_json(record).map_err(|e| {
            OutputError::Other(format!(
                "the recovered run could not be kept for upload: {e}"
            ))
        })?;
        Ok(self.queued(&entry))
    }
}

impl Uploader {
    /// Wakes the worker for a queued entry; says where the run is.
    fn queued(&self, entry: &Entry) -> Option<String> {
        match (&self.worker, &self.offline) {
            (Some(worker), _) if worker.handle.is_some() => {
                let _ = worker.wake.send(Message::Wake);
                Some(format!("run queued for upload ({})", entry.id))
            }
            (_, reason) => Some(format!(
                "kept offline in {} ({}); it will be uploaded with its original start time by `tofu-outbox upload` or the next run with a key",
                entry.dir.display(),
                reason.as_deref().unwrap_or("no client")
            )),
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        let wait = self.wait;
        self.finish(wait);
    }
}

impl Worker {
    fn start(client: TofuPilotClient, outbox: Outbox) -> Worker {
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
            wake,
            exited,
            handle,
        }
    }
}

/// The background loop: send what is due, sleep until the next entry is due (at most 5 s) or
/// a new run arrives; on `Finish`, stop once nothing is due or the deadline passes.
fn run_worker(client: &TofuPilotClient, outbox: &Outbox, inbox: &mpsc::Receiver<Message>) {
    outbox.remove_leftovers(LEFTOVER_AGE);
    let mut deadline: Option<Instant> = None;
    // Unreadable entries and outbox errors already said, so that each is said once.
    let mut reported = HashSet::new();
    loop {
        let due_left = drain_due(client, outbox, deadline, &mut reported);
        if let Some(deadline) = deadline
            && (!due_left || Instant::now() >= deadline)
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
        let due_before = until.is_some_and(|until| {
            entry.state.status == Status::Pending && entry.state.next_attempt_millis < until
        });
        let serial = entry.state.serial_number.clone();
        let due = match send(client, entry, false) {
            Ok(Progress::Done { run_url, run_id }) => {
                eprintln!(
                    "TofuPilot: run of {serial} uploaded: {}",
                    run_url.unwrap_or(run_id)
                );
                false
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
    let left = outbox.ids().map_or(0, |ids| ids.len());
    if left > 0 {
        eprintln!(
            "TofuPilot: {left} run(s) still in the outbox {}; they go up on the next start or with `tofu-outbox upload`",
            outbox.dir().display()
        );
    }
}

fn wait_from_env() -> Duration {
    std::env::var(WAIT_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(20), Duration::from_secs_f64)
}
