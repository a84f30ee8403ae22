//! What the page shows besides the events: its own files (part of the binary), the recent
//! runs from the record folder with their HTML reports, and the upload queue.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::SystemTime;

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::{App, RunCache, error};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
// uPlot, vendored once in the workspace by the HTML report.
const UPLOT_JS: &str = include_str!("../../tofu-report/assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../tofu-report/assets/uPlot.min.css");

/// The page's policy: its own scripts and styles only, images from itself or `data:` URLs
/// (a prompt's image), connections to itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// How many recent runs the page lists.
const RECENT_RUNS: usize = 20;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(crate) async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub(crate) async fn uplot_js() -> Response {
    asset("text/javascript; charset=utf-8", UPLOT_JS)
}

pub(crate) async fn uplot_css() -> Response {
    asset("text/css; charset=utf-8", UPLOT_CSS)
}

/// A record's summary, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunSummary {
    file: String,
    serial_number: Option<String>,
    outcome: Option<String>,
    procedure_id: Option<String>,
    slot: Option<String>,
    start_time_millis: Option<i64>,
}

/// `GET /api/runs`: the most recent records in the record folder, newest first.
pub(crate) async fn runs(State(app): State<Arc<App>>) -> Response {
    let app2 = Arc::clone(&app);
    let listed = tokio::task::spawn_blocking(move || recent_runs(&app2.records, &app2.runs)).await;
    let runs = listed.unwrap_or_default();
    json_response(json!({"dir": app.records.display().to_string(), "runs": runs}))
}

fn json_response(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn recent_runs(dir: &Path, cache: &RunCache) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut records: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let meta = e.metadata().ok()?;
            (meta.is_file() && path.extension().is_some_and(|x| x == "json"))
                .then(|| Some((meta.modified().ok()?, path)))?
        })
        .collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.0));
    records.truncate(RECENT_RUNS);
    let mut cache = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
    records
        .into_iter()
        .filter_map(|(modified, path)| {
            let mut summary = match cache.get(&path) {
                Some((seen, summary)) if *seen == modified => summary.clone(),
                _ => {
                    let summary = serde_json::to_value(summarize(&path)?).ok()?;
                    cache.insert(path.clone(), (modified, summary.clone()));
                    summary
                }
            };
            // Looked for each time: the report is written after the record.
            summary["report"] = report_of(&path).map_or(Value::Null, Value::from);
            Some(summary)
        })
        .collect()
}

fn summarize(path: &Path) -> Option<RunSummary> {
    let text = std::fs::read(path).ok()?;
    let record: Value = serde_json::from_slice(&text).ok()?;
    let text_of = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_owned);
    let file = path.file_name()?.to_str()?.to_owned();
    Some(RunSummary {
        file,
        serial_number: text_of("dut_id"),
        outcome: text_of("outcome"),
        procedure_id: record
            .pointer("/metadata/test_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        slot: record
            .pointer("/slot/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        start_time_millis: record.get("start_time_millis").and_then(Value::as_i64),
    })
}

/// The address of a record's HTML report on this server, if it has one.
fn report_of(record: &Path) -> Option<String> {
    let html = record.with_extension("html");
    let name = html.file_name()?.to_str()?;
    html.is_file().then(|| format!("/reports/{name}"))
}

/// `GET /reports/{name}`: an HTML report from the record folder (a plain file in it, no
/// other folder, no symbolic link).
pub(crate) async fn report(
    State(app): State<Arc<App>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let safe = !name.is_empty()
        && name.ends_with(".html")
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.contains("..");
    if !safe {
        return error(
            StatusCode::BAD_REQUEST,
            "a report is named `<file>.html`, a file of the record folder",
            "name",
            name.into(),
        );
    }
    let path = app.records.join(&name);
    let plain = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
    match plain.then(|| std::fs::read(&path)) {
        Some(Ok(bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such report in the record folder",
            "name",
            name.into(),
        ),
    }
}

/// `GET /api/uploads`: the runs waiting in the upload queue (pending, parked).
pub(crate) async fn uploads(State(app): State<Arc<App>>) -> Response {
    let dir = app.outbox.clone();
    let listed = tokio::task::spawn_blocking(move || upload_queue(&dir)).await;
    json_response(listed.unwrap_or_else(|e| json!({"error": e.to_string(), "entries": []})))
}

fn upload_queue(dir: &Path) -> Value {
    // Opening an outbox creates its folder: a station without uploads gets none.
    if !dir.is_dir() {
        return json!({"dir": dir.display().to_string(), "entries": []});
    }
    let entries = tofu_upload::Outbox::open(dir).and_then(|outbox| outbox.entries());
    match entries {
        Ok(entries) => {
            let listed: Vec<Value> = entries
                .into_iter()
                .flatten()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "serial_number": e.state.serial_number,
                        "status": format!("{:?}", e.state.status).to_uppercase(),
                        "attempts": e.state.attempts,
                        "last_error": e.state.last_error,
                    })
                })
                .collect();
            json!({"dir": dir.display().to_string(), "entries": listed})
        }
        Err(e) => json!({"dir": dir.display().to_string(), "error": e.to_string(), "entries": []}),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_upload_queue_lists_its_entries_and_creates_no_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("outbox");
        assert_eq!(upload_queue(&missing)["entries"], json!([]));
        assert!(!missing.exists(), "looking at the queue created its folder");
        let outbox = tofu_upload::Outbox::open(&missing).unwrap();
        let run = tofu_upload::CreateRun {
            unit_under_test: tofu_upload::UnitUnderTest {
                serial_number: "PCB01A0001".to_owned(),
                ..Default::default()
            },
            ..Default::default()
        };
        outbox.enqueue(&run, &[]).unwrap();
        let listed = upload_queue(&missing);
        let entries = listed["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["serial_number"], "PCB01A0001");
        assert_eq!(entries[0]["status"], "PENDING");
        assert_eq!(entries[0]["attempts"], 0);
    }

    #[test]
    fn recent_runs_are_summarised_with_their_report() {
        let dir = tempfile::tempdir().unwrap();
        let record = json!({"dut_id": "SN1", "outcome": "FAIL", "start_time_millis": 5,
                            "metadata": {"test_name": "FVT"}, "slot": {"name": "slot 2"}});
        std::fs::write(dir.path().join("SN1.FVT.5.json"), record.to_string()).unwrap();
        std::fs::write(dir.path().join("SN1.FVT.5.html"), "<html>").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::remove_file(dir.path().join("SN1.FVT.5.html")).unwrap();
        let cache = RunCache::default();
        assert_eq!(recent_runs(dir.path(), &cache)[0]["report"], Value::Null);
        // The report, written after the record, is listed once it is there.
        std::fs::write(dir.path().join("SN1.FVT.5.html"), "<html>").unwrap();
        let runs = recent_runs(dir.path(), &cache);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["serial_number"], "SN1");
        assert_eq!(runs[0]["outcome"], "FAIL");
        assert_eq!(runs[0]["slot"], "slot 2");
        assert_eq!(runs[0]["report"], "/reports/SN1.FVT.5.html");
    }
}
