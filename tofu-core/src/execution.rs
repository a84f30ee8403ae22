//! A finished run: its record and what each output did with it; and the delivery of a record
//! to the outputs.

use std::process::ExitCode;

use crate::emitter::Emitter;
use crate::outcome::Outcome;
use crate::output::{JsonOutput, OutputCallback};
use crate::panic_capture::catch;
use crate::record::TestRecord;

/// A finished run: its record and what each output callback did with it.
#[derive(Debug)]
#[must_use = "the exit code says whether the unit passed"]
pub struct Execution {
    /// The record.
    pub record: TestRecord,
    /// Each output callback's result, in order: where the record went, or why it didn't.
    pub outputs: Vec<OutputStatus>,
}

/// What one output callback did with the record.
#[derive(Debug, Clone)]
pub struct OutputStatus {
    /// The callback's name.
    pub name: String,
    /// Where the record went, or the error.
    pub result: Result<Option<String>, String>,
    /// How long the callback took (`None` where it is not known: a summary made from events).
    pub elapsed: Option<std::time::Duration>,
}

impl Execution {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.record.outcome == Outcome::Pass
    }

    /// Whether every output callback succeeded.
    pub fn outputs_ok(&self) -> bool {
        self.outputs.iter().all(|o| o.result.is_ok())
    }

    /// Whether the run passed and every output callback succeeded.
    pub fn ok(&self) -> bool {
        self.passed() && self.outputs_ok()
    }

    /// The program's exit code ([`crate::exit`]): 0 passed with every output, 1 the unit
    /// failed, 2 ERROR, TIMEOUT or ABORTED (the station, not the board), 3 the unit passed but
    /// an output failed.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    /// [`Execution::exit_code`] as a number.
    pub fn exit_status(&self) -> u8 {
        crate::exit::code(self.record.outcome, self.outputs_ok())
    }
}

/// Hands the record to the outputs: the durable queues first (the uploader's outbox), then the
/// JSON record, then the others (see [`OutputCallback::is_durable_queue`]). Each result is an
/// event; the journal notes each output done.
pub(crate) fn deliver(
    outputs: &mut [Box<dyn OutputCallback>],
    json: Option<&mut JsonOutput>,
    record: &TestRecord,
    events: &Emitter,
) -> Vec<OutputStatus> {
    ordered(outputs, json)
        .into_iter()
        .map(|callback| {
            let name = callback.name().to_owned();
            let started = std::time::Instant::now();
            let result = match catch(|| callback.on_record(record)) {
                Ok(Ok(location)) => Ok(location),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(format!("panicked at {}: {}", panic.location, panic.message)),
            };
            if let Err(e) = &result {
                tracing::error!("output {name} failed: {e}");
            }
            let (location, error) = match &result {
                Ok(location) => (location.clone(), None),
                Err(e) => (None, Some(e.clone())),
            };
            events.output_done(&name, location, error);
            OutputStatus {
                name,
                result,
                elapsed: Some(started.elapsed()),
            }
        })
        .collect()
}

/// The outputs in the order they get a record: durable queues, the JSON record, the others.
pub(crate) fn ordered<'o>(
    outputs: &'o mut [Box<dyn OutputCallback>],
    json: Option<&'o mut JsonOutput>,
) -> Vec<&'o mut dyn OutputCallback> {
    let (queues, others): (Vec<_>, Vec<_>) = outputs
        .iter_mut()
        .map(|o| &mut **o as &mut dyn OutputCallback)
        // User code: a panic there counts as "not a queue".
        .partition(|o| catch(|| o.is_durable_queue()).unwrap_or(false));
    queues
        .into_iter()
        .chain(json.map(|j| j as &mut dyn OutputCallback))
        .chain(others)
        .collect()
}

/// What a recovery did with one run found in the journal of a process that died mid-run.
#[derive(Debug)]
#[non_exhaustive]
pub struct RecoveredReport {
    /// The journal it came from (removed once every output had the record).
    pub journal: std::path::PathBuf,
    /// The unit's serial number.
    pub serial_number: String,
    /// The procedure.
    pub procedure_id: String,
    /// The record's outcome (`ERROR` for a run cut short).
    pub outcome: String,
    /// What each output given the record did with it now (those that had it before the
    /// recovery was cut short are not called again).
    pub outputs: Vec<OutputStatus>,
    /// Every output has the record: the journal is gone.
    pub finished: bool,
}

/// Recovers the runs that dead processes left in the journal folder `dir`: each becomes a
/// record (ERROR, with every phase completed before) handed to the outputs that take it
/// ([`OutputCallback::on_recovered`]: the JSON record, the uploader's outbox) in the order of
/// a run's outputs, once; a journal goes once every output has the record. A journal a live
/// process holds (a run under way, or another recovery) is left alone. A test does this at
/// its first start; `tofu-outbox recover` does it by hand.
pub fn recover_runs(
    dir: &std::path::Path,
    outputs: &mut [Box<dyn OutputCallback>],
    mut json: Option<&mut JsonOutput>,
) -> Vec<Result<RecoveredReport, crate::journal::RecoverError>> {
    crate::journal::recover(dir)
        .into_iter()
        .map(|run| run.map(|run| deliver_one(run, outputs, json.as_deref_mut())))
        .collect()
}

/// Hands one recovered run to the outputs that don't have it yet.
fn deliver_one(
    mut run: crate::journal::RecoveredRun,
    outputs: &mut [Box<dyn OutputCallback>],
    json: Option<&mut JsonOutput>,
) -> RecoveredReport {
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    tracing::warn!(
        "a run of a process that ended mid-run was found in {}: {} {}; it is recorded as {}",
        run.journal.display(),
        run.record["dut_id"],
        run.record["metadata"]["procedure_id"],
        run.record["outcome"]
    );
    let mut statuses = Vec::new();
    for output in ordered(outputs, json) {
        let name = output.name().to_owned();
        if run.is_done(&name) {
            continue;
        }
        let result = match catch(|| output.on_recovered(&run.record)) {
            Ok(Ok(location)) => {
                if let Some(location) = &location {
                    tracing::info!("recovered run: {name}: {location}");
                }
                if let Err(e) = run.mark_done(&name) {
                    tracing::warn!(
                        "can't note in {} that {name} has the run: {e}",
                        run.journal.display()
                    );
                }
                Ok(location)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!("panicked at {}: {}", panic.location, panic.message)),
        };
        if let Err(e) = &result {
            tracing::error!(
                "recovered run: output {name} failed: {e}; it is tried again at the next start"
            );
        }
        statuses.push(OutputStatus {
            name,
            result,
            elapsed: None,
        });
    }
    let journal = run.journal.clone();
    let serial_number = text(&run.record["dut_id"]);
    let procedure_id = text(&run.record["metadata"]["procedure_id"]);
    let outcome = text(&run.record["outcome"]);
    let finished = statuses.iter().all(|s| s.result.is_ok())
        && run
            .finish()
            .inspect_err(|e| tracing::warn!("can't remove a recovered journal: {e}"))
            .is_ok();
    RecoveredReport {
        journal,
        serial_number,
        procedure_id,
        outcome,
        outputs: statuses,
        finished,
    }
}

/// [`recover_runs`] at a test's start: what it finds is logged.
pub(crate) fn deliver_recovered(
    dir: &std::path::Path,
    outputs: &mut [Box<dyn OutputCallback>],
    json: Option<&mut JsonOutput>,
) {
    for run in recover_runs(dir, outputs, json) {
        if let Err(e) = run {
            tracing::warn!("{e}");
        }
    }
}
