//! Events: each step of a run as it happens, for observers (the console, the journal, the
//! station page, your own code). Their JSON form is documented in `docs/events.md`, versioned by
//! [`EVENTS_VERSION`].
//!
//! An event carries a sequence number (strictly increasing per [`Test`](crate::Test) or
//! [`Station`](crate::Station)), the slot it is about (for a station's slots), the time, and
//! what happened ([`EventKind`]). Events hold the run's data by reference where it is large: a
//! phase's full record, a finished run's record; their JSON form writes a summary of it.

use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::outcome::{MeasurementOutcome, Outcome, OutcomeDetail, PhaseOutcome};
use crate::record::{LogRecord, PhaseRecord, TestRecord};
use crate::value::Value;

/// The version of the events' JSON form (the `"v"` of every event).
pub const EVENTS_VERSION: u32 = 1;

/// One step of a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// Strictly increasing per test or station, from 1.
    pub seq: u64,
    /// The slot the event is about (a station's), `None` for a lone test.
    pub slot: Option<usize>,
    /// When (epoch ms).
    pub time_millis: i64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A run started: its plan and its unit.
    RunStarted {
        /// The unit's serial number (`UNKNOWN_DUT` until known).
        serial_number: String,
        /// The procedure.
        procedure_id: String,
        /// The test's name.
        test_name: String,
        /// The slot's name, for a station's slot.
        slot_name: Option<String>,
        /// The phases in the order they would run, with their measurements.
        plan: Arc<Vec<PlannedPhase>>,
    },
    /// The unit's serial number is known.
    UnitIdentified {
        /// The serial number.
        serial_number: String,
    },
    /// A phase attempt started.
    PhaseStarted {
        /// The phase's place in the plan.
        index: usize,
        /// Its name.
        name: String,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// A measurement was given a value (`outcome` is `None` while its phase runs), or was
    /// validated at the phase's end.
    MeasurementSet {
        /// The phase.
        phase: Arc<str>,
        /// The measurement.
        name: Arc<str>,
        /// The value; for a multi-dimensional measurement, only in [`EventKind::SweepPoints`].
        value: Option<Value>,
        /// How many points a multi-dimensional measurement has.
        points: Option<usize>,
        /// The outcome, once validated.
        outcome: Option<MeasurementOutcome>,
        /// Passed in a marginal band.
        marginal: bool,
        /// The validators as OpenHTF writes them (`"4.5 <= x <= 5.5"`), shared by every
        /// event of the measurement.
        validators: Arc<[String]>,
        /// The unit's name, if any.
        units: Option<Arc<str>>,
    },
    /// New points of a multi-dimensional measurement, batched (never one event per point).
    SweepPoints {
        /// The phase.
        phase: String,
        /// The measurement.
        name: String,
        /// The index of the first point in this batch.
        first: usize,
        /// The points: coordinates then the value.
        points: Vec<Vec<f64>>,
    },
    /// A phase attempt ended.
    PhaseEnded {
        /// The phase's place in the plan.
        index: usize,
        /// The attempt's record (its JSON form: a summary).
        #[serde(serialize_with = "phase_summary")]
        record: Arc<PhaseRecord>,
    },
    /// A log event of the run.
    Log {
        /// The log record.
        #[serde(flatten)]
        record: LogRecord,
    },
    /// A file or data was attached.
    Attachment {
        /// The phase.
        phase: String,
        /// The attachment's name.
        name: String,
        /// Its size in bytes.
        size: usize,
        /// Its MIME type.
        mimetype: Option<String>,
    },
    /// A question to the operator, answerable by any front end.
    PromptOpened {
        /// The prompt's id, to answer it.
        id: u64,
        /// The question.
        message: String,
        /// What kind of answer it wants.
        kind: PromptKind,
        /// An image to show with the question (a `data:` URL), if the program gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
    /// A prompt got its answer (the first front end to answer wins).
    PromptAnswered {
        /// The prompt.
        id: u64,
        /// The answer.
        value: String,
        /// Who answered (`console`, `args`, `command`…).
        by: String,
    },
    /// A prompt closed without an answer (abort, timeout, end of input).
    PromptClosed {
        /// The prompt.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A phase waits for a station's shared plug that another slot holds.
    WaitingForPlug {
        /// The waiting phase.
        phase: String,
        /// The plug.
        plug: String,
    },
    /// A plug was set up (or failed to).
    PlugSetUp {
        /// The plug.
        plug: String,
        /// The error, if it failed.
        error: Option<String>,
    },
    /// A plug was torn down (or failed to).
    PlugTornDown {
        /// The plug.
        plug: String,
        /// The error, if it failed.
        error: Option<String>,
    },
    /// The run was told to abort (by a signal or a command).
    AbortRequested {
        /// How many presses so far (2: teardowns are skipped).
        presses: u32,
    },
    /// The run ended: its outcome (the record follows to the outputs).
    RunEnded {
        /// The run's record (its JSON form: the outcome and its details).
        #[serde(serialize_with = "run_summary")]
        record: Arc<TestRecord>,
    },
    /// Every output has had the run's record: the slot is free for the next unit.
    RunClosed,
    /// A station's batch ended: every slot's run is closed.
    BatchEnded {
        /// The slots moved through the phases together.
        synchronized: bool,
        /// How long the batch took.
        millis: i64,
    },
    /// An output callback handled the record.
    OutputDone {
        /// The output's name.
        name: String,
        /// Where the record went, if it says.
        location: Option<String>,
        /// The error, if it failed.
        error: Option<String>,
    },
}

/// What kind of answer a prompt wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PromptKind {
    /// Any text.
    Text,
    /// A serial number (matching `pattern`, if given).
    SerialNumber {
        /// The regular expression it must match.
        pattern: Option<String>,
    },
    /// A value of a type (a number…).
    Value,
    /// Enter to go on.
    Confirm,
    /// A number, within `min..=max` where given.
    Number {
        /// The lowest answer taken.
        min: Option<f64>,
        /// The highest answer taken.
        max: Option<f64>,
    },
    /// One of `options` (its text, or its number from 1).
    Choice {
        /// The answers taken.
        options: Vec<String>,
    },
    /// The operator's judgement: `pass` or `fail`.
    PassFail,
}

/// A phase as planned: its place, its name and its measurements.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PlannedPhase {
    /// Its place in the depth-first phase list.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its measurements.
    pub measurements: Vec<PlannedMeasurement>,
}

/// A measurement as declared (limits from the code or the limits file).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PlannedMeasurement {
    /// Its name.
    pub name: Arc<str>,
    /// The validators as OpenHTF writes them (shared with the measurement's events).
    pub validators: Arc<[String]>,
    /// The unit's name, if any.
    pub units: Option<Arc<str>>,
    /// The dimensions of a multi-dimensional measurement.
    pub dimensions: Vec<String>,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat<'a> {
            v: u32,
            seq: u64,
            slot: Option<usize>,
            time_millis: i64,
            #[serde(flatten)]
            kind: &'a EventKind,
        }
        Flat {
            v: EVENTS_VERSION,
            seq: self.seq,
            slot: self.slot,
            time_millis: self.time_millis,
            kind: &self.kind,
        }
        .serialize(serializer)
    }
}

fn phase_summary<S: serde::Serializer>(p: &Arc<PhaseRecord>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Measured<'a> {
        name: &'a str,
        outcome: MeasurementOutcome,
    }
    let mut st = s.serialize_struct("PhaseEnded", 8)?;
    st.serialize_field("name", &p.name)?;
    st.serialize_field("attempt", &p.attempt)?;
    st.serialize_field("outcome", &p.outcome)?;
    st.serialize_field("result", &crate::record::ResultJson(&p.result))?;
    st.serialize_field("start_time_millis", &p.start_time_millis)?;
    st.serialize_field("end_time_millis", &p.end_time_millis)?;
    st.serialize_field("plug_wait_millis", &p.plug_wait_millis)?;
    let measured: Vec<Measured<'_>> = p
        .measurements
        .iter()
        .map(|m| Measured {
            name: m.name(),
            outcome: m.outcome,
        })
        .collect();
    st.serialize_field("measurements", &measured)?;
    st.end()
}

fn run_summary<S: serde::Serializer>(r: &Arc<TestRecord>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Summary<'a> {
        serial_number: &'a str,
        outcome: Outcome,
        outcome_details: &'a [OutcomeDetail],
        marginal: Option<bool>,
        start_time_millis: i64,
        end_time_millis: i64,
        phases: usize,
        failed_phases: Vec<&'a str>,
    }
    Summary {
        serial_number: &r.dut_id,
        outcome: r.outcome,
        outcome_details: &r.outcome_details,
        marginal: r.marginal,
        start_time_millis: r.start_time_millis,
        end_time_millis: r.end_time_millis,
        phases: r.phases.len(),
        failed_phases: r
            .phases
            .iter()
            .filter(|p| p.outcome == PhaseOutcome::Fail || p.outcome == PhaseOutcome::Error)
            .map(|p| p.name.as_str())
            .collect(),
    }
    .serialize(s)
}
