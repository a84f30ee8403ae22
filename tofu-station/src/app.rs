//! What the request handlers share: the station's events and commands, the folders the page
//! lists, and how a refusal is answered.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tofu_core::Commands;

use crate::hub::Hub;

/// A JSON error: `{"error": why, "field": which, "value": what was given}`.
pub(crate) fn error(status: StatusCode, message: &str, field: &str, value: Value) -> Response {
    let body = json!({"error": message, "field": field, "value": value});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) hub: Arc<Hub>,
    pub(crate) commands: Commands,
    pub(crate) records: PathBuf,
    pub(crate) outbox: PathBuf,
    pub(crate) runs: RunCache,
}

impl App {
    /// A slot number from a URL, checked against the station's slots.
    #[allow(clippy::result_large_err)]
    pub(crate) fn slot(&self, given: &str) -> Result<usize, Response> {
        let count = self.hub.slot_count().max(1);
        match given.parse::<usize>() {
            Ok(slot) if slot < count => Ok(slot),
            Ok(slot) => Err(error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no slot {slot}: the station has {count} (0 to {})",
                    count - 1
                ),
                "slot",
                slot.into(),
            )),
            Err(_) => Err(error(
                StatusCode::BAD_REQUEST,
                "a slot is its number, from 0",
                "slot",
                given.into(),
            )),
        }
    }
}

/// The recent runs' summaries read so far, by record file and modification time (a record is
/// read once).
#[derive(Debug, Default)]
pub(crate) struct RunCache(pub(crate) Mutex<HashMap<PathBuf, (SystemTime, Value)>>);
