//! The body of `POST /api/v2/runs`, as the official Python client 2.26.1 sends it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::types::LogLevel;

/// A run to create with `POST /api/v2/runs`.
///
/// Serialises like the official client: every optional field is absent when `None` (never
/// `null`), times are UTC with six decimals and a `Z` (`2025-01-20T15:32:06.058000Z`),
/// outcomes upper case. `procedure_id` must be an existing procedure's id (a UUID) when sent:
/// the uploader resolves a procedure's name to its id just before sending.
///
/// ```
/// use tofu_upload::v2::{CreateRun, RunOutcome};
///
/// let t0 = chrono::DateTime::from_timestamp_millis(1_737_387_126_058).unwrap();
/// let run = CreateRun::new(RunOutcome::Pass, "b5a7f3a4-0000-4000-8000-000000000001", "SN-001", t0, t0);
/// let body = serde_json::to_value(&run).unwrap();
/// assert_eq!(body["started_at"], "2025-01-20T15:32:06.058000Z");
/// assert!(body.get("docstring").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreateRun {
    /// The run's outcome.
    pub outcome: RunOutcome,
    /// The procedure's id (a UUID), or, in the outbox, its name until it is resolved.
    pub procedure_id: String,
    /// When the run started.
    #[serde(with = "v2_time")]
    pub started_at: DateTime<Utc>,
    /// When it ended.
    #[serde(with = "v2_time")]
    pub ended_at: DateTime<Utc>,
    /// The unit's serial number.
    pub serial_number: String,
    /// The procedure's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_version: Option<String>,
    /// Who ran it (an email of the organisation, or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operated_by: Option<String>,
    /// The unit's part number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_number: Option<String>,
    /// The unit's revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_number: Option<String>,
    /// The unit's batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_number: Option<String>,
    /// Serial numbers of sub-units (they must exist on TofuPilot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_units: Option<Vec<String>>,
    /// Run notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docstring: Option<String>,
    /// Every attempt of every phase, in execution order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Vec<Phase>>,
    /// The run's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<Log>>,
    /// Free metadata: keys `^[a-zA-Z0-9_.:+-]+$` (1–40 characters), scalar values, at most 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The idempotency key: a second create with the same ref returns the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_run_ref: Option<String>,
    /// Shared by the runs of one station batch (one run per slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// The slot's key (needs `execution_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_key: Option<String>,
    /// The slot's name (needs `slot_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_name: Option<String>,
    /// Groups of phases (subtests); phases join one with `sequence_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<Vec<Sequence>>,
    /// Configuration values the run used (the limits file's path and SHA-1…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Vec<ConfigValue>>,
}

impl CreateRun {
    /// A run with its required fields.
    pub fn new(
        outcome: RunOutcome,
        procedure_id: impl Into<String>,
        serial_number: impl Into<String>,
        started_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
    ) -> Self {
        CreateRun {
            outcome,
            procedure_id: procedure_id.into(),
            started_at,
            ended_at,
            serial_number: serial_number.into(),
            procedure_version: None,
            operated_by: None,
            part_number: None,
            revision_number: None,
            batch_number: None,
            sub_units: None,
            docstring: None,
            phases: None,
            logs: None,
            metadata: None,
            client_run_ref: None,
            execution_id: None,
            slot_key: None,
            slot_name: None,
            sequences: None,
            config: None,
        }
    }

    /// The same run with its groups flattened: no `sequences`, and each phase of a group named
    /// `group/phase` (for a server that refuses sequences).
    pub fn without_sequences(mut self) -> Self {
        self.sequences = None;
        for phase in self.phases.iter_mut().flatten() {
            if let Some(path) = phase.sequence_path.take() {
                phase.name = format!("{path}/{}", phase.name);
            }
        }
        self
    }
}

/// A run's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum RunOutcome {
    /// Every phase passed.
    Pass,
    /// The test failed, and completed.
    Fail,
    /// The test itself failed.
    Error,
    /// A phase timed out.
    Timeout,
    /// Stopped by the operator.
    Aborted,
}

/// A phase attempt's outcome (v2 has no TIMEOUT or ABORTED for phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum PhaseOutcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Skipped.
    Skip,
    /// Raised an error (or timed out: the reason is in the docstring).
    Error,
}

/// A measurement's, validator's or aggregation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Not decided (no value, or the check could not run).
    Unset,
}

impl Outcome {
    /// `Pass` when `pass`, else `Fail`.
    pub fn from_bool(pass: bool) -> Self {
        if pass { Outcome::Pass } else { Outcome::Fail }
    }
}

/// One attempt of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Phase {
    /// The phase's name (all attempts share it).
    pub name: String,
    /// The attempt's outcome.
    pub outcome: PhaseOutcome,
    /// When the attempt started.
    #[serde(with = "v2_time")]
    pub started_at: DateTime<Utc>,
    /// When it ended.
    #[serde(with = "v2_time")]
    pub ended_at: DateTime<Utc>,
    /// The phase's documentation, and why it ended as it did when it didn't pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docstring: Option<String>,
    /// Its measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Vec<Measurement>>,
    /// Zero-based attempt index (always sent, as the official client does).
    #[serde(default)]
    pub retry_count: u32,
    /// The group (subtest) the phase belongs to: one of the run's `sequences[].path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_path: Option<String>,
}

/// One measurement of a phase attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Measurement {
    /// Its name.
    pub name: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// A scalar value, or for a multi-dimensional one that has no structured axes, its points
    /// as rows (`[[x, y], …]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_value: Option<Value>,
    /// The unit (`"V"`), or one per column for points as rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<crate::types::Units>,
    /// Its limits, each with its own outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validators: Option<Vec<Validator>>,
    /// Aggregations (min, max…) of the value, with their own limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregations: Option<Vec<Aggregation>>,
    /// The sweep's swept coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_axis: Option<Axis>,
    /// The sweep's measured series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_axis: Option<Vec<Axis>>,
    /// Its documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docstring: Option<String>,
}

/// A limit and what it said of the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Validator {
    /// `>=`, `<=`, `>`, `<`, `==`, `matches`… (absent for an expression-only validator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_value: Option<Value>,
    /// What the limit said of the value, as tofu computed it (the server stores it as is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Display text (the whole check, for one TofuPilot can't express).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// `false` for a marginal band: it warns and doesn't fail the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_decisive: Option<bool>,
}

/// An aggregation of a value or an axis (`min`, `max`…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Aggregation {
    /// Its type (`"min"`, `"max"`…).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Its unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Its limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validators: Option<Vec<Validator>>,
}

/// One axis of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Axis {
    /// The points (finite numbers only).
    pub data: Vec<f64>,
    /// The unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    /// What the axis is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Limits on the whole series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validators: Option<Vec<Validator>>,
    /// Aggregations of the series, with their limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregations: Option<Vec<Aggregation>>,
}

/// One log entry (all five fields are required by v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Log {
    /// Its level.
    pub level: LogLevel,
    /// When.
    #[serde(with = "v2_time")]
    pub timestamp: DateTime<Utc>,
    /// The message.
    pub message: String,
    /// The source file (`"unknown"` when there is none).
    pub source_file: String,
    /// The line (0 when unknown).
    pub line_number: u32,
}

/// A group of phases (a subtest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sequence {
    /// Its path (`"a/b"`; parents must be listed too).
    pub path: String,
    /// Its name.
    pub name: String,
    /// Its outcome (PASS FAIL ERROR TIMEOUT ABORTED SKIP).
    pub outcome: String,
    /// When its first phase started.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "v2_time_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// When its last phase ended.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "v2_time_opt")]
    pub ended_at: Option<DateTime<Utc>>,
}

/// A configuration value the run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConfigValue {
    /// Its key.
    pub key: String,
    /// Its value (string, number or boolean).
    pub value: Value,
}

impl ConfigValue {
    /// A key and its value.
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        ConfigValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A time as v2 writes it: UTC, six decimals, `Z`.
pub fn format_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

mod v2_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(at))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_time(&text).map_err(serde::de::Error::custom)
    }
}

mod v2_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&super::format_time(at)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| super::parse_time(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
