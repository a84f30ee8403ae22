//! What the server answers.
//!
//! Answer types are lenient: every field the client does not strictly need is
//! optional, unknown keys are kept in `extra`, and a date-time the client cannot read
//! becomes `None` rather than failing the whole answer.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::iso::{self, serde_iso};

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The answer to `POST /api/v1/runs`: `{id, url?, message?, warnings?}`, plus the
/// attachments this client uploaded for the run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunCreated {
    /// The new run's id.
    pub id: String,
    /// The run's page on TofuPilot.
    #[serde(default)]
    pub url: Option<String>,
    /// The server's message (for example `"Run created: <url>"`).
    #[serde(default)]
    pub message: Option<String>,
    /// Warnings from the server (for example an ignored field).
    #[serde(default, deserialize_with = "null_as_default")]
    pub warnings: Vec<String>,
    /// Attachments uploaded and linked to the run, in order.
    #[serde(skip)]
    pub attachments: Vec<UploadedAttachment>,
}

/// The result of [`create_run_from_openhtf_report`](crate::TofuPilotClient::create_run_from_openhtf_report).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportedRun {
    /// The id of the run the server created from the report.
    pub id: String,
    /// The run's page on TofuPilot.
    pub url: Option<String>,
    /// The server's message.
    pub message: Option<String>,
    /// Warnings from the server.
    pub warnings: Vec<String>,
    /// The upload id of the report file itself (what the Python OpenHTF callback
    /// returns).
    pub report_upload_id: String,
    /// The report's phase attachments uploaded and linked to the run, in order.
    pub attachments: Vec<UploadedAttachment>,
}

/// An attachment uploaded and linked to a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadedAttachment {
    /// The file name sent to the server.
    pub name: String,
    /// The upload id the server gave it.
    pub upload_id: String,
    /// The local file it came from, if any.
    pub path: Option<PathBuf>,
}

/// A run's outcome in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum RunOutcome {
    /// `"PASS"`
    Pass,
    /// `"FAIL"`
    Fail,
    /// `"ERROR"`
    Error,
    /// `"TIMEOUT"`
    Timeout,
    /// `"ABORTED"`
    Aborted,
    /// `"RUNNING"`
    Running,
    /// Any other value.
    #[serde(other)]
    Unknown,
}

/// A run as `GET /api/v1/runs?serial_number=...` returns it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Run {
    /// Run id.
    pub id: String,
    /// When the server stored it.
    #[serde(default, deserialize_with = "serde_iso::lenient_datetime::deserialize")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the run started.
    #[serde(default, deserialize_with = "serde_iso::lenient_datetime::deserialize")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the run ended.
    #[serde(default, deserialize_with = "serde_iso::lenient_datetime::deserialize")]
    pub ended_at: Option<DateTime<Utc>>,
    /// ISO 8601 duration as sent (see [`Run::duration`]).
    #[serde(default, rename = "duration")]
    pub duration_iso: Option<String>,
    /// Outcome.
    #[serde(default)]
    pub outcome: Option<RunOutcome>,
    /// The procedure.
    #[serde(default)]
    pub procedure: Option<RunProcedure>,
    /// The procedure version.
    #[serde(default)]
    pub procedure_version: Option<RunProcedureVersion>,
    /// The unit.
    #[serde(default)]
    pub unit: Option<RunUnit>,
    /// Phases.
    #[serde(default, deserialize_with = "null_as_default")]
    pub phases: Vec<RunPhase>,
    /// Attachments, with their download URLs when the server gives them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachments: Vec<RunAttachment>,
    /// Logs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub logs: Vec<RunLog>,
    /// The import the run came from, if any.
    #[serde(default)]
    pub file_import: Option<Value>,
    /// The user who created it, if any.
    #[serde(default)]
    pub created_by_user: Option<Value>,
    /// The station that created it, if any.
    #[serde(default)]
    pub created_by_station: Option<Value>,
    /// Keys this client does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Run {
    /// The run's duration, if the server sent a readable one.
    pub fn duration(&self) -> Option<Duration> {
        self.duration_iso.as_deref().and_then(iso::parse_duration)
    }

    /// The unit's serial number.
    pub fn serial_number(&self) -> Option<&str> {
        self.unit.as_ref().and_then(|u| u.serial_number.as_deref())
    }
}

/// `{id, name}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunProcedure {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `{id, value}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunProcedureVersion {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// The version string.
    #[serde(default)]
    pub value: Option<String>,
}

/// `{id, serial_number, batch?, revision?}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunUnit {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Batch.
    #[serde(default)]
    pub batch: Option<RunBatch>,
    /// Revision and part.
    #[serde(default)]
    pub revision: Option<RunRevision>,
}

/// `{id, number}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunBatch {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Batch number.
    #[serde(default)]
    pub number: Option<String>,
}

/// `{id, identifier, component?}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunRevision {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Revision identifier.
    #[serde(default)]
    pub identifier: Option<String>,
    /// The part.
    #[serde(default)]
    pub component: Option<RunComponent>,
}

/// `{id, part_number, name}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunComponent {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Part number.
    #[serde(default)]
    pub part_number: Option<String>,
    /// Part name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A phase in an answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunPhase {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Start.
    #[serde(default, deserialize_with = "serde_iso::lenient_datetime::deserialize")]
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    #[serde(default, deserialize_with = "serde_iso::lenient_datetime::deserialize")]
    pub ended_at: Option<DateTime<Utc>>,
    /// ISO 8601 duration as sent.
    #[serde(default)]
    pub duration: Option<String>,
    /// Outcome as sent (`PASS`, `FAIL`, `SKIP`, `ERROR`).
    #[serde(default)]
    pub outcome: Option<String>,
    /// Docstring.
    #[serde(default)]
    pub docstring: Option<String>,
    /// Measurements.
    #[serde(default, deserialize_with = "null_as_default")]
    pub measurements: Vec<RunMeasurement>,
    /// Keys this client does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A measurement in an answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunMeasurement {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Outcome as sent (`PASS`, `FAIL`, `UNSET`).
    #[serde(default)]
    pub outcome: Option<String>,
    /// The value.
    #[serde(default)]
    pub measured_value: Option<Value>,
    /// Units (a string, or a list for multi-dimensional measurements).
    #[serde(default)]
    pub units: Option<Value>,
    /// Lower limit.
    #[serde(default)]
    pub lower_limit: Option<f64>,
    /// Upper limit.
    #[serde(default)]
    pub upper_limit: Option<f64>,
    /// Docstring.
    #[serde(default)]
    pub docstring: Option<String>,
    /// Keys this client does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An attachment of a run: `{id, filename, content_type, size}` and, when the server
/// gives one, its download URL (`download_url` or `url`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunAttachment {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// File name (`filename`, or `name` on newer servers).
    #[serde(default, alias = "name")]
    pub filename: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Download URL as `download_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Download URL as `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl RunAttachment {
    /// Where to download the file from, if the server said.
    pub fn download_url(&self) -> Option<&str> {
        self.download_url.as_deref().or(self.url.as_deref())
    }
}

/// A log entry in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunLog {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Timestamp as sent.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Level as sent.
    #[serde(default)]
    pub level: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Source file.
    #[serde(default)]
    pub source_file: Option<String>,
    /// Line number.
    #[serde(default)]
    pub line_number: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_download_url_from_either_key() {
        let a: RunAttachment =
            serde_json::from_str(r#"{"id":"1","filename":"a.txt","url":"https://x/a"}"#).unwrap();
        assert_eq!(a.download_url(), Some("https://x/a"));
        let b: RunAttachment = serde_json::from_str(
            r#"{"id":"1","name":"a.txt","download_url":"https://x/b","url":"https://x/a"}"#,
        )
        .unwrap();
        assert_eq!(b.download_url(), Some("https://x/b"));
        assert_eq!(b.filename.as_deref(), Some("a.txt"));
    }

    #[test]
    fn unknown_outcome_and_bad_dates_do_not_fail() {
        let r: Run = serde_json::from_str(
            r#"{"id":"r","outcome":"WEIRD","started_at":"yesterday","phases":null,"duration":"PT23S"}"#,
        )
        .unwrap();
        assert_eq!(r.outcome, Some(RunOutcome::Unknown));
        assert_eq!(r.started_at, None);
        assert_eq!(r.duration(), Some(Duration::from_secs(23)));
    }
}
