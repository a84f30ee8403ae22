//! What TofuPilot's v2 API answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::RunAttachment;

/// A run as `GET /api/v2/runs` and `GET /api/v2/runs/{id}` give it. Fields TofuPilot adds
/// later are kept in [`extra`](Self::extra).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Run {
    /// Its id.
    pub id: String,
    /// When the server stored it.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Its duration (ISO 8601).
    #[serde(default)]
    pub duration: Option<String>,
    /// `PASS`, `FAIL`, `ERROR`, `TIMEOUT` or `ABORTED`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The station batch it belongs to.
    #[serde(default)]
    pub execution_id: Option<String>,
    /// Its slot's key.
    #[serde(default)]
    pub slot_key: Option<String>,
    /// Its slot's name.
    #[serde(default)]
    pub slot_name: Option<String>,
    /// Its idempotency key, where the server gives it back.
    #[serde(default)]
    pub client_run_ref: Option<String>,
    /// Its procedure (`{id, name, version}`).
    #[serde(default)]
    pub procedure: Option<Value>,
    /// Its unit (`{id, serial_number, part…}`).
    #[serde(default)]
    pub unit: Option<Value>,
    /// Its phases (in `GET /api/v2/runs/{id}`).
    #[serde(default)]
    pub phases: Option<Vec<Value>>,
    /// Its files.
    #[serde(default)]
    pub attachments: Vec<RunAttachment>,
    /// Everything else the server said.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl Run {
    /// The unit's serial number.
    pub fn serial_number(&self) -> Option<&str> {
        self.unit.as_ref()?.get("serial_number")?.as_str()
    }
}

/// One page of `GET /api/v2/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunPage {
    /// The runs of this page.
    pub data: Vec<Run>,
    /// Whether there are more, and where they start.
    #[serde(default)]
    pub meta: PageMeta,
}

/// Paging of a list answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PageMeta {
    /// More results follow.
    #[serde(default)]
    pub has_more: bool,
    /// The `cursor` of the next page.
    #[serde(default)]
    pub next_cursor: Option<Value>,
}

/// A procedure as `GET /api/v2/procedures` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Procedure {
    /// Its id (a UUID).
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// The answer of a create (`{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Created {
    pub(crate) id: String,
}

/// The answer of `POST /api/v2/attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadGrant {
    pub(crate) id: String,
    pub(crate) upload_url: String,
}

/// A page of procedures.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProcedurePage {
    pub(crate) data: Vec<Procedure>,
    #[serde(default)]
    pub(crate) meta: PageMeta,
}
