//! The commands (`POST`) and the state (`GET /api/state`): JSON in, JSON out, and errors that
//! name the field and the value at fault.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tofu_core::{AnswerError, CommandError};

use crate::app::{App, error};

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /api/state`: every slot's state (the events' snapshot).
pub(crate) async fn state(State(app): State<Arc<App>>) -> Response {
    let (_, json) = app.hub.snapshot();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        json,
    )
        .into_response()
}

/// `POST /api/slots/{slot}/start` with `{"serial": "…"}`.
pub(crate) async fn start(
    State(app): State<Arc<App>>,
    Path(slot): Path<String>,
    body: Bytes,
) -> Response {
    let slot = match app.slot(&slot) {
        Ok(slot) => slot,
        Err(refused) => return refused,
    };
    let serial = match field(&body, "serial") {
        Ok(Value::String(serial)) if !serial.trim().is_empty() => serial,
        Ok(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "`serial` must be a serial number (a non-empty string)",
                "serial",
                other,
            );
        }
        Err(refused) => return refused,
    };
    match app.commands.start_slot(slot, serial.trim()) {
        Ok(()) => ok(json!({"slot": slot, "serial": serial.trim()})),
        Err(e) => command_error(&e, "slot", json!(slot), json!(serial)),
    }
}

/// `POST /api/prompts/{id}` with `{"value": …}` (a string, a number, or `true`/`false` for
/// pass/fail).
pub(crate) async fn answer(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "a prompt id is a number (`id` of its prompt_opened event)",
            "id",
            id.into(),
        );
    };
    let value = match field(&body, "value") {
        Ok(Value::String(s)) => s,
        Ok(Value::Number(n)) => n.to_string(),
        Ok(Value::Bool(pass)) => if pass { "pass" } else { "fail" }.to_owned(),
        Ok(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "`value` must be a string, a number or a boolean",
                "value",
                other,
            );
        }
        Err(refused) => return refused,
    };
    match app.commands.answer(id, value.clone()) {
        Ok(()) => ok(json!({"id": id, "value": value})),
        Err(e) => command_error(&e, "id", json!(id), json!(value)),
    }
}

/// `POST /api/slots/{slot}/abort`.
pub(crate) async fn abort_slot(State(app): State<Arc<App>>, Path(slot): Path<String>) -> Response {
    let slot = match app.slot(&slot) {
        Ok(slot) => slot,
        Err(refused) => return refused,
    };
    match app.commands.abort_slot(slot) {
        Ok(()) => ok(json!({"slot": slot, "aborted": true})),
        Err(e) => command_error(&e, "slot", json!(slot), Value::Null),
    }
}

/// `POST /api/abort`: every run under way.
pub(crate) async fn abort_all(State(app): State<Arc<App>>) -> Response {
    ok(json!({"aborted": app.commands.abort_all()}))
}

/// The field `name` of a JSON object body.
#[allow(clippy::result_large_err)]
fn field(body: &[u8], name: &str) -> Result<Value, Response> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("the body is not JSON ({e}); send {{\"{name}\": …}}"),
            name,
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .into_owned()
                .into(),
        )
    })?;
    match parsed {
        Value::Object(mut object) => object.remove(name).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("`{name}` is missing from the body"),
                name,
                Value::Null,
            )
        }),
        other => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("the body must be a JSON object: {{\"{name}\": …}}"),
            name,
            other,
        )),
    }
}

fn command_error(e: &CommandError, field: &str, value: Value, answer: Value) -> Response {
    let message = e.to_string();
    match e {
        CommandError::NotRunning { .. } | CommandError::NotWaiting { .. } => {
            error(StatusCode::CONFLICT, &message, field, value)
        }
        CommandError::Answer(AnswerError::NotOpen { .. }) => {
            error(StatusCode::CONFLICT, &message, field, value)
        }
        CommandError::Answer(AnswerError::TooLong { .. }) => {
            let name = if field == "slot" { "serial" } else { "value" };
            error(StatusCode::BAD_REQUEST, &message, name, answer)
        }
        _ => error(StatusCode::BAD_REQUEST, &message, field, value),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn refused(body: &str) -> bool {
        field(body.as_bytes(), "serial").is_err()
    }

    #[test]
    fn bodies_are_read_as_json_objects() {
        assert_eq!(
            field(br#"{"serial": "SN1"}"#, "serial").unwrap(),
            json!("SN1")
        );
        for body in ["", "SN1", "[1]", r#"{"value": 1}"#, "{"] {
            assert!(refused(body), "{body}");
        }
    }
}
