//! Sending one outbox entry to TofuPilot, step by step, each step saved before the next.

use std::time::Duration;

use super::outbox::{Entry, OutboxError, Status};
use crate::blocking::TofuPilotClient;
use crate::{Error, Run, RunAttachment};

/// Waits between attempts: 15 s, 15 s, 30 s, 5 min, 15 min, then every hour (as TofuPilot's
/// own CLI).
const BACKOFF: [Duration; 6] = [
    Duration::from_secs(15),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(3600),
];

/// What an attempt at an entry came to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress {
    /// The run is on TofuPilot with all its files; the entry is gone.
    Done {
        /// The run's id.
        run_id: String,
        /// Its page.
        run_url: Option<String>,
    },
    /// A transient failure; the entry waits `wait` before the next attempt.
    Retry {
        /// What failed.
        error: String,
        /// How long before the next attempt.
        wait: Duration,
    },
    /// A failure a retry won't fix; the entry is parked until retried by hand.
    Parked {
        /// What TofuPilot said.
        error: String,
    },
    /// Another process is uploading this entry.
    Busy,
    /// Parked, or not due yet: nothing was done.
    Skipped,
}

/// Sends what is left of `entry`: creates the run (once: a create whose answer was lost is
/// looked up on the server first), then uploads each file not yet uploaded.
///
/// With `force`, a parked entry, or one not due yet, is tried now.
pub fn send(
    client: &TofuPilotClient,
    mut entry: Entry,
    force: bool,
) -> Result<Progress, OutboxError> {
    let now = chrono::Utc::now().timestamp_millis();
    if !force && (entry.state.status == Status::Parked || entry.state.next_attempt_millis > now) {
        return Ok(Progress::Skipped);
    }
    let Some(lock) = entry.try_lock()? else {
        return Ok(Progress::Busy);
    };
    // Re-read under the lock: another process may have moved it on meanwhile.
    match entry.reload() {
        Ok(()) => {}
        Err(OutboxError::NotFound(_)) => return Ok(Progress::Skipped),
        Err(e) => return Err(e),
    }
    // Saturating: `attempts` comes from a file (a hand-edited or damaged one may hold u32::MAX).
    entry.state.attempts = entry.state.attempts.saturating_add(1);
    match advance(client, &mut entry) {
        Ok(()) => {
            let run_id = entry.state.run_id.clone().unwrap_or_default();
            let run_url = entry.state.run_url.clone();
            // Unlocked first: a folder with an open file in it can't be renamed everywhere.
            drop(lock);
            match entry.remove() {
                Ok(()) | Err(OutboxError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            Ok(Progress::Done { run_id, run_url })
        }
        Err(Step::Outbox(e)) => {
            // The entry itself is damaged (a file missing or unreadable): no retry will mend
            // it, so it is parked with the reason, for a person to look at.
            let error = format!("the outbox entry is damaged: {e}");
            entry.state.status = Status::Parked;
            entry.state.last_error = Some(error.clone());
            entry.save()?;
            Ok(Progress::Parked { error })
        }
        Err(Step::Api(error)) => {
            let message = error.to_string();
            entry.state.last_error = Some(message.clone());
            if error.is_retryable() {
                let index = (entry.state.attempts as usize)
                    .saturating_sub(1)
                    .min(BACKOFF.len() - 1);
                let wait = error.retry_after().unwrap_or(BACKOFF[index]);
                entry.state.status = Status::Pending;
                // Saturating: the wait comes from the server's Retry-After, which may be huge.
                entry.state.next_attempt_millis = chrono::Utc::now()
                    .timestamp_millis()
                    .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                entry.save()?;
                Ok(Progress::Retry {
                    error: message,
                    wait,
                })
            } else {
                entry.state.status = Status::Parked;
                entry.save()?;
                Ok(Progress::Parked { error: message })
            }
        }
    }
}

enum Step {
    Api(Error),
    Outbox(OutboxError),
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Step::Api(e)
    }
}

impl From<OutboxError> for Step {
    fn from(e: OutboxError) -> Self {
        Step::Outbox(e)
    }
}

fn advance(client: &TofuPilotClient, entry: &mut Entry) -> Result<(), Step> {
    // The files already on the run: a file whose sync answer was lost (or whose process was
    // killed before it saved the file as uploaded) is linked to the run, and must not be sent
    // again. Looked up only when an earlier attempt got as far as the run.
    let mut on_run: Option<Vec<RunAttachment>> = None;
    if entry.state.run_id.is_none()
        && entry.state.create_sent
        && let Some(found) = find_created(client, entry)?
    {
        entry.state.run_id = Some(found.id);
        entry.save()?;
        on_run = Some(found.attachments);
    } else if let Some(run_id) = entry.state.run_id.clone()
        && entry.state.files.iter().any(|f| !f.uploaded)
    {
        match client.get_runs(&entry.state.serial_number) {
            Ok(runs) => {
                on_run = runs
                    .into_iter()
                    .find(|run| run.id == run_id)
                    .map(|run| run.attachments);
            }
            Err(e) if e.is_retryable() => return Err(e.into()),
            // A key that may not list runs: the files are sent as before, at the risk of one
            // twice, rather than the run parked.
            Err(_) => {}
        }
    }
    if let Some(on_run) = on_run {
        mark_linked(entry, &on_run)?;
    }
    if entry.state.run_id.is_none() {
        let request = entry.request()?;
        // Saved before sending: if the answer is lost, the next attempt looks for the run.
        entry.state.create_sent = true;
        entry.save()?;
        match client.create_run(&request) {
            Ok(created) => {
                entry.state.run_id = Some(created.id);
                entry.state.run_url = created.url;
                entry.save()?;
            }
            Err(e) => {
                let refused = match &e {
                    Error::Api { status, .. } => *status < 500,
                    Error::Network { source, .. } => source.is_connect(),
                    _ => false,
                };
                if refused {
                    // The request never reached the server, or it said no: no run exists.
                    entry.state.create_sent = false;
                    entry.save()?;
                }
                return Err(e.into());
            }
        }
    }
    let run_id = entry.state.run_id.clone().unwrap_or_default();
    for i in 0..entry.state.files.len() {
        if entry.state.files[i].uploaded {
            continue;
        }
        let file = entry.state.files[i].clone();
        let path = entry.file_path(&file);
        let data = std::fs::read(&path).map_err(|source| OutboxError::Io {
            path: path.clone(),
            source,
        })?;
        client.upload_attachment_bytes(&run_id, &file.name, file.mimetype.as_deref(), data)?;
        entry.state.files[i].uploaded = true;
        entry.save()?;
    }
    Ok(())
}

/// Looks for a run this entry created before its answer was lost: same serial number and
/// same start time, to the millisecond.
fn find_created(client: &TofuPilotClient, entry: &Entry) -> Result<Option<Run>, Error> {
    let Some(started) = entry.state.started_at_millis else {
        return Ok(None);
    };
    let runs = client.get_runs(&entry.state.serial_number)?;
    Ok(runs.into_iter().find(|run| {
        run.started_at
            .is_some_and(|t| t.timestamp_millis() == started)
    }))
}

/// Marks as uploaded the files not marked yet that the run already has (same name and size),
/// counting files of the same name and size already marked, so a run's two equal files are
/// both sent.
fn mark_linked(entry: &mut Entry, on_run: &[RunAttachment]) -> Result<(), OutboxError> {
    let sizes: Vec<Option<u64>> = entry
        .state
        .files
        .iter()
        .map(|f| std::fs::metadata(entry.file_path(f)).ok().map(|m| m.len()))
        .collect();
    let mut changed = false;
    for i in 0..entry.state.files.len() {
        if entry.state.files[i].uploaded {
            continue;
        }
        let (name, size) = (&entry.state.files[i].name, sizes[i]);
        let linked = on_run
            .iter()
            .filter(|a| a.filename.as_deref() == Some(name.as_str()) && a.size == size)
            .count();
        let marked = entry
            .state
            .files
            .iter()
            .zip(&sizes)
            .filter(|&(f, &s)| f.uploaded && f.name == *name && s == size)
            .count();
        if linked > marked {
            entry.state.files[i].uploaded = true;
            changed = true;
        }
    }
    if changed {
        entry.save()?;
    }
    Ok(())
}
