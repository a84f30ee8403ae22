//! `index.html` of a folder of records: one row per run, newest first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::file_name;
use crate::html::{escape, url_path_segment};
use crate::page;
use crate::report::{duration, identity, millis, outcome_label, utc};

/// One run of the index.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) start: Option<i64>,
    pub(crate) serial: String,
    pub(crate) procedure: String,
    pub(crate) part: Option<String>,
    pub(crate) outcome: String,
    pub(crate) outcome_css: &'static str,
    pub(crate) duration: Option<i64>,
    /// The report's file name, in the same folder, or why there is no report.
    pub(crate) report: Result<String, String>,
    /// The record's file name.
    pub(crate) record: String,
    /// The station's slot that ran it (`"slot": {"name"}`), if any.
    pub(crate) slot: Option<String>,
    /// How long its phases waited for shared plugs, in all (`plug_wait_millis`), if any did.
    pub(crate) plug_wait: Option<i64>,
}

impl Row {
    pub(crate) fn new(record: &Value, json: &Path, report: Result<PathBuf, String>) -> Row {
        let id = identity(record);
        let (outcome, outcome_css) = outcome_label(record);
        let start = millis(record, "start_time_millis");
        let end = millis(record, "end_time_millis");
        Row {
            start,
            serial: id.serial.to_owned(),
            procedure: match id.version {
                Some(v) => format!("{} {v}", id.procedure),
                None => id.procedure.to_owned(),
            },
            part: id.part.map(str::to_owned),
            outcome,
            outcome_css,
            duration: start.zip(end).map(|(s, e)| e - s),
            report: report.map(|path| file_name(&path)),
            record: file_name(json),
            slot: record["slot"]["name"].as_str().map(str::to_owned),
            plug_wait: plug_wait(record),
        }
    }
}

/// The time a run's phases waited for shared plugs, in all; `None` when none used one.
fn plug_wait(record: &Value) -> Option<i64> {
    let waits: Vec<i64> = record["phases"]
        .as_array()?
        .iter()
        .filter_map(|p| p["plug_wait_millis"].as_i64())
        .collect();
    (!waits.is_empty()).then(|| waits.iter().sum())
}

/// The page: `rows` newest first, and the files that could not be read.
pub(crate) fn render(folder: &str, mut rows: Vec<Row>, unreadable: &[(String, String)]) -> String {
    rows.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.record.cmp(&b.record)));
    let mut out = String::with_capacity(4096 + rows.len() * 400);
    page::head(
        &mut out,
        &format!("Runs in {folder}"),
        false,
        &format!("class=\"index\" data-runs=\"{}\"", rows.len()),
    );
    let _ = write!(
        out,
        "<header class=\"run index-header\"><div class=\"title\"><h1>Runs</h1>\
         <p class=\"procedure\">{} runs in {}</p></div></header>\n<main>\n",
        rows.len(),
        escape(folder)
    );
    let mut outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    outcomes.sort_unstable();
    outcomes.dedup();
    out.push_str(
        "<p class=\"controls\"><label>Serial number <input type=\"search\" id=\"serial-filter\" \
         placeholder=\"contains…\"></label> <label>Outcome <select id=\"outcome-filter\">\
         <option value=\"\">all</option>",
    );
    for o in outcomes {
        let _ = write!(out, "<option value=\"{o}\">{o}</option>", o = escape(o));
    }
    out.push_str(
        "</select></label> <span id=\"run-count\"></span></p>\n<table class=\"runs\">\n<thead><tr>\
         <th>Date</th><th>Serial number</th><th>Slot</th><th>Procedure</th><th>Part</th>\
         <th>Outcome</th><th>Duration</th><th>Plug wait</th><th>Report</th></tr></thead>\n<tbody>\n",
    );
    for r in &rows {
        let _ = write!(
            out,
            "<tr class=\"run-row {css}\" data-serial=\"{s}\" data-outcome=\"{o}\"><td>{}</td>\
             <td><b>{s}</b></td><td>{}</td><td>{}</td><td>{}</td>\
             <td><span class=\"badge {css}\">{o}</span></td><td>{}</td><td class=\"plug-wait\">{}</td><td>",
            r.start.map(utc).unwrap_or_default(),
            escape(r.slot.as_deref().unwrap_or("")),
            escape(&r.procedure),
            escape(r.part.as_deref().unwrap_or("")),
            r.duration.map(duration).unwrap_or_default(),
            r.plug_wait.map(duration).unwrap_or_default(),
            css = r.outcome_css,
            s = escape(&r.serial),
            o = escape(&r.outcome),
        );
        match &r.report {
            Ok(report) => {
                let _ = write!(
                    out,
                    "<a href=\"{}\">report</a>",
                    escape(&url_path_segment(report))
                );
            }
            Err(e) => {
                let _ = write!(out, "<span class=\"fail-text\">{}</span>", escape(e));
            }
        }
        let _ = writeln!(
            out,
            " <small><a href=\"{}\">json</a></small></td></tr>",
            escape(&url_path_segment(&r.record))
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if !unreadable.is_empty() {
        out.push_str("<h2>Files that are not readable records</h2>\n<ul>\n");
        for (file, why) in unreadable {
            let _ = writeln!(out, "<li><b>{}</b>: {}</li>", escape(file), escape(why));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</main>\n");
    page::foot(&mut out, false, page::INDEX_JS);
    out
}
