//! Self-contained HTML reports of run records: a run at a glance, with a chart of every sweep.
//!
//! A report is one HTML file that opens from disk and loads nothing from the network: the
//! unit, the procedure, the outcome shown large, every phase with its timing, every
//! measurement with its value, limits, units, outcome and marginal flag (failures first), a
//! chart of every multi-dimensional measurement with its limits, the logs (filterable by
//! level) and the attachments (images inline, every file downloadable from the page).
//!
//! It works on the JSON record, so it renders any saved record: tofu's, or one written by
//! OpenHTF's `OutputToJSON`.
//!
//! ```no_run
//! # fn main() -> Result<(), tofu_report::Error> {
//! // One record: writes `SN-0001.FVT1.1795621536578.html` next to it.
//! let html = tofu_report::render_file("tofu-records/SN-0001.FVT1.1795621536578.json")?;
//! // A folder: `index.html`, one row per run, rendering the reports that are missing.
//! let index = tofu_report::render_index("tofu-records")?;
//! # Ok(()) }
//! ```
//!
//! To write the report of every run next to its JSON record, add the output callback:
//!
//! ```no_run
//! use tofu_core::prelude::*;
//!
//! #[phase]
//! fn check() {}
//!
//! fn main() -> std::process::ExitCode {
//!     Test::new("FVT1")
//!         .phases([check])
//!         .output(tofu_report::HtmlReport::new())
//!         .execute(|| "SN-0001")
//!         .exit_code()
//! }
//! ```
//!
//! Sweeps are reduced for drawing before they are embedded: for each of about 2000 pixel
//! columns, the first, last, lowest and highest point, plus every point outside the limits,
//! so a sweep of a million points opens fast and draws the same shape. Charts are drawn by
//! [uPlot](https://github.com/leeoniya/uPlot) 1.6.32 (MIT), embedded in the page.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod chart;
mod html;
mod index;
mod instruments;
mod limits;
mod output;
mod page;
mod report;

use std::io;
use std::path::{Path, PathBuf};

pub use output::HtmlReport;
use serde_json::Value;

/// Rendering a report or an index failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("can't read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not JSON.
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The JSON is not a run record.
    #[error("{} is not a run record: {reason}", path.as_deref().map_or_else(|| "the value".into(), |p| p.display().to_string()))]
    NotARecord {
        /// The file, when the record came from one.
        path: Option<PathBuf>,
        /// Why.
        reason: String,
    },
    /// A folder could not be listed.
    #[error("can't list the folder {}: {source}", path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A report could not be written.
    #[error("can't write {}: {source}", path.display())]
    Write {
        /// The file (or folder, when the name was not chosen yet).
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The report of `record` (an OpenHTF-format JSON record), as a whole HTML page.
///
/// Fails only when `record` is not a record at all (not an object, or with neither `dut_id`
/// nor `phases`); missing or unexpected fields are shown as missing.
pub fn render(record: &Value) -> Result<String, Error> {
    report::render(record).map_err(|reason| Error::NotARecord { path: None, reason })
}

/// Reads the record `json_path` and writes its report next to it, with the same name ending
/// in `.html` (replacing an older report atomically). Returns the report's path.
pub fn render_file(json_path: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let json_path = json_path.as_ref();
    let record = read_record(json_path)?;
    write_report(json_path, &record)
}

/// Writes `index.html` into `dir`: one row per record of the folder (date, serial number,
/// procedure, outcome, duration), newest first, filterable by serial number and outcome,
/// linking to each run's report. Reports that are missing are rendered first. Files that are
/// not readable records are listed at the end of the page. Returns the index's path.
pub fn render_index(dir: impl AsRef<Path>) -> Result<PathBuf, Error> {
    index(dir.as_ref(), false, |_, _| {})
}

/// Writes the report of every record of `dir` (replacing older reports), then `index.html`
/// as [`render_index`] does, reading each record once. Returns the index's path.
///
/// `each` is called once per JSON file of the folder (see [`record_files`]), in name order,
/// with the file and its report's path, or why it has none: [`Error::NotARecord`] for JSON
/// files that are not run records, other errors when the file could not be read or the report
/// could not be written.
pub fn render_folder(
    dir: impl AsRef<Path>,
    each: impl FnMut(&Path, &Result<PathBuf, Error>),
) -> Result<PathBuf, Error> {
    index(dir.as_ref(), true, each)
}

/// Renders the reports of `dir` (all of them when `rerender`, else only the missing ones),
/// telling `each` about every file, then writes `index.html`.
fn index(
    dir: &Path,
    rerender: bool,
    mut each: impl FnMut(&Path, &Result<PathBuf, Error>),
) -> Result<PathBuf, Error> {
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    for json in record_files(dir)? {
        let record = match read_record(&json) {
            Ok(record) => record,
            Err(e) => {
                unreadable.push((file_name(&json), e.to_string()));
                each(&json, &Err(e));
                continue;
            }
        };
        let html = json.with_extension("html");
        let report = if !rerender && html.is_file() {
            Ok(html)
        } else {
            write_report(&json, &record)
        };
        each(&json, &report);
        rows.push(index::Row::new(
            &record,
            &json,
            report.map_err(|e| e.to_string()),
        ));
    }
    let page = index::render(&dir.display().to_string(), rows, &unreadable);
    let path = dir.join("index.html");
    write_html(&path, &page)?;
    Ok(path)
}

/// The JSON files of `dir` (not hidden, not in sub-folders), sorted by name: the candidates
/// for records.
pub fn record_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, Error> {
    let dir = dir.as_ref();
    let read_dir_error = |source| Error::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        let name = file_name(&path);
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_record(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let record: Value = serde_json::from_slice(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    report::check(&record).map_err(|reason| Error::NotARecord {
        path: Some(path.to_path_buf()),
        reason,
    })?;
    Ok(record)
}

fn write_report(json_path: &Path, record: &Value) -> Result<PathBuf, Error> {
    let page = report::render(record).map_err(|reason| Error::NotARecord {
        path: Some(json_path.to_path_buf()),
        reason,
    })?;
    let path = json_path.with_extension("html");
    write_html(&path, &page)?;
    Ok(path)
}

fn write_html(path: &Path, page: &str) -> Result<(), Error> {
    tofu_core::fs::replace_file(path, |w| w.write_all(page.as_bytes())).map_err(|source| {
        Error::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn record(serial: &str, start: i64, outcome: &str) -> Value {
        json!({
            "dut_id": serial,
            "start_time_millis": start,
            "end_time_millis": start + 1500,
            "outcome": outcome,
            "outcome_details": [],
            "marginal": null,
            "metadata": {"test_name": "FVT1", "part_number": "PCB01"},
            "phases": [{
                "name": "rails",
                "outcome": outcome,
                "start_time_millis": start,
                "end_time_millis": start + 1000,
                "result": {"phase_result": "CONTINUE"},
                "attachments": {},
                "measurements": {
                    "v": {"name": "v", "outcome": outcome, "validators": ["4.5 <= x <= 5.5"],
                          "units": {"name": "volt", "code": "VLT", "suffix": "V"},
                          "measured_value": 5.0, "marginal": false}
                }
            }],
            "log_records": [],
        })
    }

    #[test]
    fn renders_a_minimal_record() {
        let page = render(&record("SN-1", 1_795_621_536_578, "PASS")).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains(
            "id=\"outcome\" class=\"outcome-badge pass\" data-outcome=\"PASS\">PASS</div>"
        ));
        assert!(page.contains("2026-11-25 15:45:36.578 UTC"));
        assert!(page.contains("1.500 s"));
        assert!(page.contains("<code>4.5 &lt;= x &lt;= 5.5</code>"));
        // No chart: uPlot is not embedded.
        assert!(!page.contains("var uPlot=function"));
        assert!(page.contains(page::CSP));
    }

    #[test]
    fn records_that_are_barely_records_still_render() {
        let page = render(&json!({"dut_id": "x"})).unwrap();
        assert!(page.contains("UNKNOWN"));
        let err = render(&json!([1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the value is not a run record: expected a JSON object, found a list"
        );
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let err = render_file(&missing).unwrap_err();
        assert!(matches!(err, Error::Read { .. }));
        assert!(err.to_string().contains("missing.json"), "{err}");

        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{ not json").unwrap();
        let err = render_file(&broken).unwrap_err();
        assert!(matches!(err, Error::Json { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("{} is not valid JSON", broken.display()))
        );

        let other = dir.path().join("package.json");
        std::fs::write(&other, r#"{"name": "x"}"#).unwrap();
        let err = render_file(&other).unwrap_err();
        assert!(
            err.to_string().contains("package.json is not a run record"),
            "{err}"
        );

        let err = render_index(dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, Error::ReadDir { .. }));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn render_file_writes_next_to_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("SN-1.FVT1.17.json");
        std::fs::write(&json, record("SN-1", 17, "FAIL").to_string()).unwrap();
        let html = render_file(&json).unwrap();
        assert_eq!(html, dir.path().join("SN-1.FVT1.17.html"));
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("data-outcome=\"FAIL\""));
        // Rendering again replaces the report.
        assert_eq!(render_file(&json).unwrap(), html);
    }

    #[test]
    fn the_index_lists_runs_newest_first_and_renders_missing_reports() {
        let dir = tempfile::tempdir().unwrap();
        for (name, serial, start, outcome) in [
            ("a.json", "SN-OLD", 1_000_000, "PASS"),
            ("b.json", "SN-NEW", 3_000_000, "FAIL"),
            ("c.json", "SN-MID", 2_000_000, "ERROR"),
        ] {
            std::fs::write(
                dir.path().join(name),
                record(serial, start, outcome).to_string(),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("notes.json"), "[1, 2]").unwrap();
        std::fs::write(dir.path().join(".hidden.json"), "x").unwrap();
        std::fs::write(dir.path().join("c.html"), "old report, kept").unwrap();
        let index = render_index(dir.path()).unwrap();
        assert_eq!(index, dir.path().join("index.html"));
        let page = std::fs::read_to_string(&index).unwrap();
        let new = page.find("data-serial=\"SN-NEW\"").unwrap();
        let mid = page.find("data-serial=\"SN-MID\"").unwrap();
        let old = page.find("data-serial=\"SN-OLD\"").unwrap();
        assert!(new < mid && mid < old);
        assert!(page.contains("<a href=\"b.html\">report</a>"));
        assert!(dir.path().join("a.html").is_file() && dir.path().join("b.html").is_file());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.html")).unwrap(),
            "old report, kept"
        );
        assert!(page.contains("<b>notes.json</b>"), "non-records are listed");
        assert!(!page.contains("hidden.json"));
        assert!(page.contains("<option value=\"ERROR\">ERROR</option>"));
        assert!(page.contains("data-runs=\"3\""));
    }

    #[test]
    fn render_folder_renders_every_report_and_tells_about_every_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            record("SN-A", 1, "PASS").to_string(),
        )
        .unwrap();
        std::fs::write(dir.path().join("a.html"), "old report, replaced").unwrap();
        std::fs::write(dir.path().join("notes.json"), "[1, 2]").unwrap();
        let mut seen = Vec::new();
        let index = render_folder(dir.path(), |json, report| {
            seen.push((
                file_name(json),
                report.as_ref().map_err(|e| e.to_string()).cloned(),
            ));
        })
        .unwrap();
        assert_eq!(index, dir.path().join("index.html"));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], ("a.json".into(), Ok(dir.path().join("a.html"))));
        assert_eq!(seen[1].0, "notes.json");
        assert!(
            seen[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("is not a run record")
        );
        let report = std::fs::read_to_string(dir.path().join("a.html")).unwrap();
        assert!(report.contains("data-outcome=\"PASS\""));
        let page = std::fs::read_to_string(&index).unwrap();
        assert!(page.contains("<a href=\"a.html\">report</a>"));
        assert!(page.contains("<b>notes.json</b>"));
    }
}
