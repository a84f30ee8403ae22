//! Sending one outbox entry to TofuPilot, step by step, each step saved before the next.

use std::time::Duration;

use super::outbox::{Entry, OutboxError, Status};
use crate::blocking::TofuPilotClient;
use crate::{ApiVersion, Error, Run, RunAttachment};

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

/// The longest wait between attempts, also the most a server's `Retry-After` is followed.
pub(crate) const MAX_BACKOFF: Duration = BACKOFF[BACKOFF.len() - 1];

/// The environment variable giving how long (seconds) after a create sent again the uploader
/// keeps looking for a second copy of the run (the first create stored late by the server).
pub(crate) const VERIFY_ENV: &str = "TOFU_UPLOAD_VERIFY_S";

/// How long after a create sent again its run's copies are looked for (`TOFU_UPLOAD_VERIFY_S`,
/// 60 s by default, at most a day; a value that is not a number of seconds is said and ignored).
pub(crate) fn verify_window() -> Duration {
    super::seconds_from_env(
        VERIFY_ENV,
        Duration::from_secs(60),
        Duration::from_secs(86_400),
    )
}

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
    /// The run is on TofuPilot with all its files, but an earlier create of it may still be
    /// stored late by the server: the entry stays until `until` (epoch ms), and any second copy
    /// found is deleted.
    Verifying {
        /// The run's id.
        run_id: String,
        /// Its page.
        run_url: Option<String>,
        /// The last look for a copy (epoch ms).
        until: i64,
    },
    /// A transient failure; the entry waits `wait` before the next attempt.
    Retry {
        /// What failed.
        error: String,
        /// How long before the next attempt.
        wait: Duration,
    },
    /// The station's settings are wrong (the API key refused, the URL not TofuPilot's): the
    /// run is not to blame and stays pending until they are fixed.
    Settings {
        /// What failed.
        error: String,
        /// What to fix.
        advice: String,
    },
    /// A failure a retry won't fix; the entry is parked until retried by hand.
    Parked {
        /// What TofuPilot said.
        error: String,
    },
    /// Another process is uploading this entry.
    Busy,
    /// Parked, not due yet, or finished by another process meanwhile: nothing was done.
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
    let lock = match entry.try_lock() {
        Ok(Some(lock)) => lock,
        Ok(None) => return Ok(Progress::Busy),
        // Finished and deleted by another process since it was listed.
        Err(OutboxError::NotFound(_)) => return Ok(Progress::Skipped),
        Err(e) => return Err(e),
    };
    // Re-read under the lock: another process may have moved it on meanwhile.
    match entry.reload() {
        Ok(()) => {}
        Err(OutboxError::NotFound(_)) => return Ok(Progress::Skipped),
        Err(e) => return Err(e),
    }
    // Saturating: `attempts` comes from a file (a hand-edited or damaged one may hold u32::MAX).
    entry.state.attempts = entry.state.attempts.saturating_add(1);
    let advanced = match entry.state.api_version_with(client.config().api_version()) {
        ApiVersion::V2 => advance_v2(client, &mut entry),
        _ => advance(client, &mut entry),
    };
    match advanced {
        Ok(Advanced::Done) => {
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
        Ok(Advanced::Verifying { until }) => {
            entry.state.status = Status::Pending;
            entry.state.next_attempt_millis = until;
            entry.state.last_error = None;
            entry.save()?;
            Ok(Progress::Verifying {
                run_id: entry.state.run_id.clone().unwrap_or_default(),
                run_url: entry.state.run_url.clone(),
                until,
            })
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
        Err(Step::Settings(message, advice)) => {
            // Not the run's fault: pending, tried again soon (not backed off to an hour, so it
            // goes up soon after the settings are fixed).
            entry.state.last_error = Some(format!("{message} ({advice})"));
            entry.state.status = Status::Pending;
            entry.state.next_attempt_millis = now_plus(BACKOFF[0]);
            entry.save()?;
            Ok(Progress::Settings {
                error: message,
                advice,
            })
        }
        Err(Step::Api(error)) => {
            let message = error.to_string();
            entry.state.last_error = Some(message.clone());
            if error.is_retryable() {
                let index = (entry.state.attempts as usize)
                    .saturating_sub(1)
                    .min(BACKOFF.len() - 1);
                // The server's Retry-After, but never longer than the backoff's longest wait.
                let wait = error
                    .retry_after()
                    .map_or(BACKOFF[index], |w| w.min(MAX_BACKOFF));
                entry.state.status = Status::Pending;
                entry.state.next_attempt_millis = now_plus(wait);
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

fn now_plus(wait: Duration) -> i64 {
    chrono::Utc::now()
        .timestamp_millis()
        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

enum Advanced {
    Done,
    Verifying { until: i64 },
}

enum Step {
    Api(Error),
    /// The station's settings are wrong: what failed, and what to fix.
    Settings(String, String),
    Outbox(OutboxError),
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        match e.settings_problem() {
            Some(advice) => Step::Settings(e.to_string(), advice),
            None => Step::Api(e),
        }
    }
}

impl From<OutboxError> for Step {
    fn from(e: OutboxError) -> Self {
        Step::Outbox(e)
    }
}

fn advance(client: &TofuPilotClient, entry: &mut Entry) -> Result<Advanced, Step> {
    // The files already on the run: a file whose sync answer was lost (or whose process was
    // killed before it saved the file as uploaded) is linked to the run, and must not be sent
    // again. Looked up only when an earlier attempt got as far as the run.
    let mut on_run: Option<Vec<RunAttachment>> = None;
    if entry.state.run_id.is_none() && entry.state.create_sent {
        match find_created(client, entry)? {
            Some(found) => {
                entry.state.run_id = Some(found.id);
                entry.save()?;
                on_run = Some(found.attachments);
            }
            None => {
                // Not there (yet): it is created again below, and the server may still store
                // the first create late. Its copies are looked for until the window closes.
                let until = now_plus(verify_window());
                entry.state.verify_until_millis = Some(
                    entry
                        .state
                        .verify_until_millis
                        .map_or(until, |u| u.max(until)),
                );
            }
        }
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
        entry.state.api_version = Some(ApiVersion::V1);
        entry.save()?;
        match client.create_run(&request) {
            Ok(created) => {
                entry.state.run_id = Some(created.id);
                entry.state.run_url = created.url;
                entry.save()?;
            }
            Err(e) => {
                // Only a refusal (a 4xx other than 408 and 429, which may come after the work)
                // or a connection never made says no run exists.
                let nothing_created = match &e {
                    Error::Api { .. } => !e.is_retryable(),
                    Error::Network { source, .. } => source.is_connect(),
                    _ => false,
                };
                if nothing_created {
                    entry.state.create_sent = false;
                    entry.state.api_version = None;
                    entry.save()?;
                }
                if let Error::MalformedResponse { endpoint, .. } = &e {
                    // A page that is not TofuPilot's API answered the create.
                    let advice = format!(
                        "{endpoint} does not answer as TofuPilot's API: check TOFUPILOT_URL (the \
                         instance's address, such as https://www.tofupilot.app)"
                    );
                    return Err(Step::Settings(e.to_string(), advice));
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
        let data = entry.read_file(&file)?;
        client.upload_attachment_bytes(&run_id, &file.name, file.mimetype.as_deref(), data)?;
        entry.state.files[i].uploaded = true;
        entry.save()?;
    }
    if let Some(until) = entry.state.verify_until_millis {
        delete_copies(client, entry)?;
        if chrono::Utc::now().timestamp_millis() < until {
            return Ok(Advanced::Verifying { until });
        }
    }
    Ok(Advanced::Done)
}

/// [`advance`] through v2: the run is created with the entry's `client_run_ref` (saved before
/// the first send, the same on every retry, so a create whose answer was lost, or that the
/// server stored late, gives back the same run rather than a second one), its procedure
/// resolved to its id first; then each file is stored (initialize, `PUT`, finalize, its upload
/// id saved) and linked to the run, each step saved, so a retry never sends a linked file
/// again and links a stored one without sending it again.
fn advance_v2(client: &TofuPilotClient, entry: &mut Entry) -> Result<Advanced, Step> {
    if entry.state.run_id.is_none() {
        let mut request = entry.request_v2()?;
        let procedure = request.procedure_id.clone();
        request.procedure_id = client.resolve_procedure_v2(&procedure)?;
        if entry.state.client_run_ref.is_none() {
            entry.state.client_run_ref = Some(super::outbox::new_client_run_ref(&entry.id));
        }
        request.client_run_ref = entry.state.client_run_ref.clone();
        // Saved before sending: every retry sends the same ref, and the run is never created
        // through v1 as well.
        entry.state.create_sent = true;
        entry.state.api_version = Some(ApiVersion::V2);
        entry.save()?;
        let created = match client.create_run_v2(&request) {
            Err(e) if request.sequences.is_some() && refuses_sequences(&e) => {
                tracing::warn!(target: "tofu_upload", "TofuPilot refused the run's sequences ({e}); sent with its groups flattened into the phase names");
                client.create_run_v2(&request.clone().without_sequences())
            }
            other => other,
        };
        match created {
            Ok(id) => {
                entry.state.run_id = Some(id);
                entry.save()?;
            }
            Err(Error::Api {
                status: 404,
                message,
                ..
            }) if message.to_ascii_lowercase().contains("procedure") => {
                return Err(Step::Api(Error::UnknownProcedure {
                    name: procedure,
                    advice: format!("{message}; {}", crate::v2::unknown_procedure_advice()),
                }));
            }
            Err(e @ Error::MalformedResponse { .. }) => {
                let advice = "TofuPilot's v2 API does not answer as expected: check TOFUPILOT_URL \
                              (the instance's address) and that the instance serves /api/v2 \
                              (else TOFUPILOT_API_VERSION=v1)"
                    .to_owned();
                return Err(Step::Settings(e.to_string(), advice));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let run_id = entry.state.run_id.clone().unwrap_or_default();
    for i in 0..entry.state.files.len() {
        if entry.state.files[i].uploaded {
            continue;
        }
        let file = entry.state.files[i].clone();
        let upload_id = match file.upload_id {
            Some(id) => id,
            None => {
                let data = entry.read_file(&file)?;
                let id = client.store_attachment_v2(&file.name, file.mimetype.as_deref(), data)?;
                client.finalize_attachment_v2(&id)?;
                entry.state.files[i].upload_id = Some(id.clone());
                entry.save()?;
                id
            }
        };
        client.link_attachments_v2(&run_id, &[&upload_id])?;
        entry.state.files[i].uploaded = true;
        entry.save()?;
    }
    Ok(Advanced::Done)
}

/// Whether a refused create says the server doesn't take `sequences` (an older server).
fn refuses_sequences(e: &Error) -> bool {
    matches!(e, Error::Api { status: 400 | 422, message, .. }
        if message.to_ascii_lowercase().contains("sequence"))
}

/// Deletes the other runs of this entry's unit with its start time to the millisecond: copies
/// this client created (a create stored late by the server, after it was looked for and sent
/// again). The run the entry's files went to is kept.
fn delete_copies(client: &TofuPilotClient, entry: &Entry) -> Result<(), Error> {
    let (Some(ours), Some(started)) = (&entry.state.run_id, entry.state.started_at_millis) else {
        return Ok(());
    };
    let runs = match client.get_runs(&entry.state.serial_number) {
        Ok(runs) => runs,
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            eprintln!(
                "TofuPilot: the runs of {} can't be listed to look for a second copy of {ours}: {e}",
                entry.state.serial_number
            );
            return Ok(());
        }
    };
    for run in runs {
        if &run.id != ours
            && run
                .started_at
                .is_some_and(|t| t.timestamp_millis() == started)
        {
            match client.delete_run(&run.id) {
                Ok(()) => eprintln!(
                    "TofuPilot: run {} of {} was a second copy (a create the server stored late) and was deleted; {ours} is kept",
                    run.id, entry.state.serial_number
                ),
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => eprintln!(
                    "TofuPilot: run {} of {} is a second copy of {ours} (a create the server stored late) and could not be deleted: {e}; delete it by hand",
                    run.id, entry.state.serial_number
                ),
            }
        }
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
    // Two copies (a create stored late): the one files already went to; the other is deleted
    // once the files are up.
    Ok(runs
        .into_iter()
        .filter(|run| {
            run.started_at
                .is_some_and(|t| t.timestamp_millis() == started)
        })
        .max_by_key(|run| run.attachments.len()))
}

/// Marks as uploaded the files not marked yet that the run already has (same name and size),
/// counting files of the same name and size already marked, so a run's two equal files are
/// both sent.
fn mark_linked(entry: &mut Entry, on_run: &[RunAttachment]) -> Result<(), OutboxError> {
    let sizes: Vec<Option<u64>> = entry
        .state
        .files
        .iter()
        .map(|f| {
            std::fs::symlink_metadata(entry.file_path(f))
                .ok()
                .map(|m| m.len())
        })
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
