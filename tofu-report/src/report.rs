//! The report of one run: header, problems, phases, measurements, charts, logs, attachments,
//! metadata. Works on the JSON record, so it reads records written by tofu or by OpenHTF.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::chart::{self, Axes};
use crate::html::{escape, safe_mime, script_json};
use crate::limits::Limits;
use crate::page;

/// Attachments up to this size (decoded) of a text type are shown in the page, not only
/// offered for download.
const TEXT_PREVIEW_MAX: usize = 64 * 1024;
/// Longer texts (values, log messages are not cut) are shortened in the measurements table.
const VALUE_MAX_CHARS: usize = 2000;

/// Metadata keys shown in the header, not again in the metadata section.
const HEADER_METADATA: [&str; 10] = [
    "test_name",
    "procedure_id",
    "procedure_version",
    "test_version",
    "part_number",
    "revision",
    "batch_number",
    "sub_units",
    "config",
    "tofu_version",
];

/// Why a value is not a record.
pub(crate) fn check(record: &Value) -> Result<&Map<String, Value>, String> {
    let Some(object) = record.as_object() else {
        return Err(format!("expected a JSON object, found {}", kind(record)));
    };
    if !object.contains_key("phases") && !object.contains_key("dut_id") {
        return Err("it has neither `dut_id` nor `phases`".into());
    }
    if let Some(phases) = object.get("phases")
        && !phases.is_array()
    {
        return Err(format!("`phases` is {}, not a list", kind(phases)));
    }
    Ok(object)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A non-empty string field.
pub(crate) fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// An integer field (milliseconds), accepting floats as OpenHTF sometimes writes them.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn millis(value: &Value, key: &str) -> Option<i64> {
    let v = value.get(key)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// The serial number, procedure and version, as shown everywhere.
pub(crate) struct Identity<'a> {
    pub(crate) serial: &'a str,
    pub(crate) procedure: &'a str,
    pub(crate) version: Option<&'a str>,
    pub(crate) part: Option<&'a str>,
}

pub(crate) fn identity(record: &Value) -> Identity<'_> {
    let meta = &record["metadata"];
    Identity {
        serial: text(record, "dut_id").unwrap_or("(no serial number)"),
        procedure: text(meta, "procedure_id")
            .or_else(|| text(meta, "test_name"))
            .unwrap_or("(no procedure)"),
        version: text(meta, "procedure_version").or_else(|| text(meta, "test_version")),
        part: text(meta, "part_number"),
    }
}

/// The record's outcome, `"PASS (marginal)"` style where it applies.
pub(crate) fn outcome_label(record: &Value) -> (String, &'static str) {
    let outcome = text(record, "outcome").unwrap_or("UNKNOWN");
    let marginal = record["marginal"].as_bool() == Some(true);
    if outcome == "PASS" && marginal {
        ("PASS (marginal)".into(), "marginal")
    } else {
        (outcome.to_owned(), outcome_class(outcome))
    }
}

/// A CSS class for an outcome (outcomes come from the file: never used as class names as is).
pub(crate) fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "PASS" => "pass",
        "FAIL" => "fail",
        "ERROR" => "error",
        "TIMEOUT" => "timeout",
        "ABORTED" => "aborted",
        "SKIP" | "SKIPPED" => "skip",
        "UNSET" | "PARTIALLY_SET" => "unset",
        _ => "other",
    }
}

/// A UTC date and time, to the millisecond.
pub(crate) fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
    )
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    })
}

/// A duration, readable: `12 ms`, `3.215 s`, `2 min 5.2 s`, `1 h 02 min 05 s`.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn duration(ms: i64) -> String {
    match ms {
        ..0 => "—".into(),
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.3} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:.1} s", ms / 60_000, (ms % 60_000) as f64 / 1000.0),
        _ => format!(
            "{} h {:02} min {:02} s",
            ms / 3_600_000,
            ms % 3_600_000 / 60_000,
            ms % 60_000 / 1000
        ),
    }
}

/// An offset from the start of the run: `+1.234 s`.
#[allow(clippy::cast_precision_loss)]
fn offset(ms: i64, start: Option<i64>) -> String {
    match start {
        Some(start) => format!("{:+.3} s", (ms - start) as f64 / 1000.0),
        None => utc(ms),
    }
}

fn level_name(level: i64) -> (&'static str, &'static str) {
    match level {
        ..=5 => ("TRACE", "trace"),
        6..=10 => ("DEBUG", "debug"),
        11..=20 => ("INFO", "info"),
        21..=30 => ("WARNING", "warning"),
        31..=40 => ("ERROR", "error"),
        _ => ("CRITICAL", "critical"),
    }
}

/// One measurement of one phase attempt, as read from the record.
struct Measured<'a> {
    phase_index: usize,
    phase: &'a str,
    name: &'a str,
    m: &'a Value,
    outcome: &'a str,
    chart: Option<usize>,
}

/// The report of `record`, a whole HTML page.
pub(crate) fn render(record: &Value) -> Result<String, String> {
    check(record)?;
    let empty = Vec::new();
    let phases = record["phases"].as_array().unwrap_or(&empty);
    let start = millis(record, "start_time_millis");
    let end = millis(record, "end_time_millis");

    // Measurements, and the charts of those that are lists of points.
    let mut measured = Vec::new();
    let mut charts = Vec::new();
    for (phase_index, phase) in phases.iter().enumerate() {
        let phase_name = text(phase, "name").unwrap_or("(unnamed phase)");
        let Some(measurements) = phase["measurements"].as_object() else {
            continue;
        };
        for (key, m) in measurements {
            let name = text(m, "name").unwrap_or(key);
            let outcome = text(m, "outcome").unwrap_or("UNKNOWN");
            let mut chart_index = None;
            if let Some(rows) = m.get("measured_value").filter(|v| chart::is_points(v)) {
                let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
                chart_index = Some(charts.len());
                charts.push(chart::build(rows, axes(phase_name, name, m, rows)));
            }
            measured.push(Measured {
                phase_index,
                phase: phase_name,
                name,
                m,
                outcome,
                chart: chart_index,
            });
        }
    }

    let id = identity(record);
    let (outcome, outcome_css) = outcome_label(record);
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("{outcome} · {} · {}", id.serial, id.procedure);
    let body_attrs = format!(
        "class=\"report\" data-outcome=\"{}\" data-charts=\"{}\"",
        escape(&outcome),
        charts.len()
    );
    page::head(&mut out, &title, !charts.is_empty(), &body_attrs);

    header(&mut out, record, &id, &outcome, outcome_css, start, end);
    let failed: Vec<&Measured<'_>> = measured.iter().filter(|m| m.outcome == "FAIL").collect();
    let attachments = phases
        .iter()
        .filter_map(|p| p["attachments"].as_object())
        .map(Map::len)
        .sum::<usize>();
    let logs = record["log_records"].as_array().unwrap_or(&empty);
    nav(
        &mut out,
        &failed,
        phases.len(),
        measured.len(),
        charts.len(),
        logs.len(),
        attachments,
    );
    problems(&mut out, record, phases, &failed);
    phase_table(&mut out, phases, start);
    measurement_table(&mut out, &measured);
    chart_section(&mut out, &charts, &measured);
    log_section(&mut out, logs, start);
    attachment_section(&mut out, phases);
    crate::instruments::section(&mut out, record);
    metadata_section(&mut out, record);
    page::foot(&mut out, !charts.is_empty(), page::REPORT_JS);
    Ok(out)
}

/// Axis labels and limits of the chart of a multi-dimensional measurement.
fn axes(phase: &str, name: &str, m: &Value, rows: &[Value]) -> Axes {
    let dims = m["dimensions"].as_array();
    let x_label = dims
        .and_then(|d| d.first())
        .map_or_else(|| "first coordinate".to_owned(), dimension_label);
    let units = unit_suffix(&m["units"]);
    let y_label = match units {
        Some(u) => format!("{name} ({u})"),
        None => name.to_owned(),
    };
    let validators = m["validators"].as_array();
    let limits =
        Limits::from_validators(validators.into_iter().flatten().filter_map(Value::as_str));
    let width = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    let title = if width > 2 {
        format!(
            "{phase} › {name}: value against the first of {} coordinates",
            width - 1
        )
    } else {
        format!("{phase} › {name}")
    };
    let z_label = dims
        .and_then(|d| d.get(1))
        .map_or_else(|| "second coordinate".to_owned(), dimension_label);
    Axes {
        title,
        x_label,
        y_label,
        z_label,
        limits,
    }
}

/// `"time (s)"` from a dimension `{description, name, suffix}`.
fn dimension_label(dim: &Value) -> String {
    let name = text(dim, "description").map(str::to_owned).or_else(|| {
        // "second [unit of time]" → "second"
        text(dim, "name").map(|n| n.split(" [").next().unwrap_or(n).to_owned())
    });
    match (name, text(dim, "suffix")) {
        (Some(n), Some(s)) => format!("{n} ({s})"),
        (Some(n), None) => n,
        (None, Some(s)) => s.to_owned(),
        (None, None) => "first coordinate".to_owned(),
    }
}

fn unit_suffix(units: &Value) -> Option<&str> {
    text(units, "suffix").or_else(|| text(units, "name"))
}

fn header(
    out: &mut String,
    record: &Value,
    id: &Identity<'_>,
    outcome: &str,
    outcome_css: &str,
    start: Option<i64>,
    end: Option<i64>,
) {
    let meta = &record["metadata"];
    let _ = write!(
        out,
        "<header class=\"run {outcome_css}\">\n<div id=\"outcome\" class=\"outcome-badge {outcome_css}\" \
         data-outcome=\"{o}\">{o}</div>\n<div class=\"title\"><h1 id=\"serial\">{serial}</h1>\n\
         <p class=\"procedure\">{procedure}",
        o = escape(outcome),
        serial = escape(id.serial),
        procedure = escape(id.procedure),
    );
    if let Some(v) = id.version {
        let _ = write!(out, " <span class=\"version\">version {}</span>", escape(v));
    }
    out.push_str("</p></div>\n<dl class=\"facts\">\n");
    let mut fact = |label: &str, value: Option<&str>| {
        if let Some(value) = value {
            let _ = writeln!(out, "<div><dt>{label}</dt><dd>{}</dd></div>", escape(value));
        }
    };
    fact("Serial number", Some(id.serial));
    fact("Part number", id.part);
    fact("Revision", text(meta, "revision"));
    fact("Batch", text(meta, "batch_number"));
    let sub_units: Vec<&str> = meta["sub_units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().or_else(|| text(u, "serial_number")))
        .collect();
    if !sub_units.is_empty() {
        fact("Sub-units", Some(&sub_units.join(", ")));
    }
    fact("Procedure", Some(id.procedure));
    fact("Version", id.version);
    if text(meta, "test_name") != Some(id.procedure) {
        fact("Test", text(meta, "test_name"));
    }
    fact("Station", text(record, "station_id"));
    fact("Slot", text(&record["slot"], "name"));
    if let Some(start) = start {
        let _ = writeln!(
            out,
            "<div><dt>Started</dt><dd><time datetime=\"{}\">{}</time></dd></div>",
            iso(start),
            utc(start)
        );
    }
    if let (Some(start), Some(end)) = (start, end) {
        let _ = writeln!(
            out,
            "<div><dt>Duration</dt><dd id=\"duration\">{}</dd></div>",
            duration(end - start)
        );
    }
    out.push_str("</dl>\n</header>\n");
}

fn nav(
    out: &mut String,
    failed: &[&Measured<'_>],
    phases: usize,
    measurements: usize,
    charts: usize,
    logs: usize,
    attachments: usize,
) {
    out.push_str("<nav>");
    if !failed.is_empty() {
        let _ = write!(
            out,
            "<a href=\"#problems\" class=\"fail\">{} failed</a>",
            failed.len()
        );
    }
    for (id, label, n) in [
        ("phases", "Phases", phases),
        ("measurements", "Measurements", measurements),
        ("charts", "Charts", charts),
        ("logs", "Logs", logs),
        ("attachments", "Attachments", attachments),
    ] {
        let _ = write!(out, "<a href=\"#{id}\">{label} <small>{n}</small></a>");
    }
    out.push_str("<a href=\"#metadata\">Metadata</a></nav>\n<main>\n");
}

/// What went wrong, first: outcome details, failed measurements, phases that ended in error.
fn problems(out: &mut String, record: &Value, phases: &[Value], failed: &[&Measured<'_>]) {
    let details: Vec<&Value> = record["outcome_details"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let errors: Vec<&Value> = phases
        .iter()
        .filter(|p| matches!(text(p, "outcome"), Some("ERROR" | "TIMEOUT" | "ABORTED")))
        .collect();
    if details.is_empty() && failed.is_empty() && errors.is_empty() {
        return;
    }
    out.push_str("<section id=\"problems\" class=\"problems\">\n<h2>Problems</h2>\n<ul>\n");
    for d in details {
        let _ = writeln!(
            out,
            "<li class=\"detail\"><b>{}</b> {}</li>",
            escape(text(d, "code").unwrap_or("")),
            escape(text(d, "description").unwrap_or(""))
        );
    }
    for m in failed {
        let _ = write!(
            out,
            "<li class=\"failed-measurement\"><span class=\"badge fail\">FAIL</span> \
             <a href=\"#m-{}-{}\">{} › <b>{}</b></a> = ",
            m.phase_index,
            escape(m.name),
            escape(m.phase),
            escape(m.name)
        );
        value_cell(out, m);
        for v in m.m["validators"].as_array().into_iter().flatten() {
            let _ = write!(out, " <code>{}</code>", escape(v.as_str().unwrap_or("")));
        }
        out.push_str("</li>\n");
    }
    for p in errors {
        let outcome = text(p, "outcome").unwrap_or("");
        let _ = write!(
            out,
            "<li class=\"phase-error\"><span class=\"badge {}\">{}</span> phase <b>{}</b>",
            outcome_class(outcome),
            escape(outcome),
            escape(text(p, "name").unwrap_or(""))
        );
        let result = &p["result"]["phase_result"];
        if result.is_object() {
            let _ = write!(
                out,
                ": {} {}",
                escape(text(result, "exc_type").unwrap_or("")),
                escape(text(result, "exc_val").unwrap_or(""))
            );
            if let Some(tb) = text(result, "exc_tb") {
                let _ = write!(
                    out,
                    "<details><summary>traceback</summary><pre>{}</pre></details>",
                    escape(tb)
                );
            }
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n</section>\n");
}

fn phase_result(phase: &Value) -> String {
    let result = &phase["result"]["phase_result"];
    match result {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Object(_) => format!(
            "{}: {}",
            text(result, "exc_type").unwrap_or("exception"),
            text(result, "exc_val").unwrap_or("")
        ),
        Value::Null if phase.get("result").is_some() => "(timed out)".into(),
        _ => String::new(),
    }
}

fn phase_table(out: &mut String, phases: &[Value], start: Option<i64>) {
    out.push_str(
        "<section id=\"phases\">\n<h2>Phases</h2>\n<table class=\"phases\">\n<thead><tr>\
         <th>#</th><th>Phase</th><th>Attempt</th><th>Outcome</th><th>Result</th>\
         <th>Start</th><th>Duration</th><th>Plug wait</th><th>Measurements</th></tr></thead>\n<tbody>\n",
    );
    for (i, p) in phases.iter().enumerate() {
        let outcome = text(p, "outcome").unwrap_or("");
        let css = outcome_class(outcome);
        let name = text(p, "name").unwrap_or("(unnamed phase)");
        let doc = text(&p["codeinfo"], "docstring").unwrap_or("");
        let _ = write!(
            out,
            "<tr class=\"{css}\" data-outcome=\"{o}\" data-phase=\"{n}\"><td>{}</td>\
             <td title=\"{d}\"><b>{n}</b>",
            i + 1,
            o = escape(outcome),
            n = escape(name),
            d = escape(doc),
        );
        if let Some(sub) = text(p, "subtest_name") {
            let _ = write!(out, " <small>in {}</small>", escape(sub));
        }
        let attempt = p["attempt"]
            .as_u64()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            "</td><td>{attempt}</td><td><span class=\"badge {css}\">{}</span>",
            escape(outcome)
        );
        if p["marginal"].as_bool() == Some(true) {
            out.push_str(" <span class=\"badge marginal\">marginal</span>");
        }
        let _ = write!(out, "</td><td>{}</td>", escape(&phase_result(p)));
        let (phase_start, phase_end) =
            (millis(p, "start_time_millis"), millis(p, "end_time_millis"));
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td>",
            phase_start.map(|s| offset(s, start)).unwrap_or_default(),
            match (phase_start, phase_end) {
                (Some(s), Some(e)) => duration(e - s),
                _ => String::new(),
            }
        );
        // How long it waited for a station's shared plugs before it started (outside its time).
        let _ = write!(
            out,
            "<td class=\"plug-wait\">{}</td>",
            millis(p, "plug_wait_millis")
                .map(duration)
                .unwrap_or_default()
        );
        let measurements = p["measurements"].as_object();
        let total = measurements.map_or(0, Map::len);
        let failed = measurements.map_or(0, |ms| {
            ms.values()
                .filter(|m| text(m, "outcome") == Some("FAIL"))
                .count()
        });
        if failed > 0 {
            let _ = writeln!(
                out,
                "<td>{total} <span class=\"badge fail\">{failed} failed</span></td></tr>"
            );
        } else {
            let _ = writeln!(out, "<td>{total}</td></tr>");
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn truncated(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(VALUE_MAX_CHARS) {
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()).into(),
        None => text.into(),
    }
}

fn value_cell(out: &mut String, m: &Measured<'_>) {
    match m.m.get("measured_value") {
        None | Some(Value::Null) => out.push_str("<span class=\"muted\">not set</span>"),
        Some(Value::String(s)) => {
            let _ = write!(
                out,
                "<span class=\"text-value\">{}</span>",
                escape(&truncated(s))
            );
        }
        Some(Value::Number(n)) => {
            let _ = write!(out, "<span class=\"number\">{n}</span>");
        }
        Some(Value::Bool(b)) => {
            let _ = write!(out, "{b}");
        }
        Some(Value::Array(rows)) if m.chart.is_some() => {
            let _ = write!(
                out,
                "<a href=\"#chart-{}\">{} points (chart)</a>",
                m.chart.unwrap_or_default(),
                group(rows.len())
            );
        }
        Some(v) => {
            let _ = write!(out, "<code>{}</code>", escape(&truncated(&v.to_string())));
        }
    }
}

fn measurement_table(out: &mut String, measured: &[Measured<'_>]) {
    let failed = measured.iter().filter(|m| m.outcome == "FAIL").count();
    let _ = write!(
        out,
        "<section id=\"measurements\">\n<h2>Measurements</h2>\n<p class=\"controls\"><span>{} measurements, \
         <b class=\"{}\">{failed} failed</b>, failures first.</span> <label><input type=\"checkbox\" \
         id=\"only-failures\"> failures only</label></p>\n",
        measured.len(),
        if failed > 0 { "fail-text" } else { "" }
    );
    out.push_str(
        "<table class=\"measurements\">\n<thead><tr><th>Outcome</th><th>Phase</th>\
         <th>Measurement</th><th>Value</th><th>Units</th><th>Limits</th><th>Marginal</th>\
         </tr></thead>\n<tbody>\n",
    );
    let mut order: Vec<&Measured<'_>> = measured.iter().collect();
    order.sort_by_key(|m| u8::from(m.outcome != "FAIL"));
    for m in order {
        let css = outcome_class(m.outcome);
        let _ = write!(
            out,
            "<tr id=\"m-{}-{n}\" class=\"m {css}\" data-outcome=\"{o}\" data-measurement=\"{n}\">\
             <td><span class=\"badge {css}\">{o}</span></td><td>{p}</td><td><b>{n}</b>",
            m.phase_index,
            n = escape(m.name),
            o = escape(m.outcome),
            p = escape(m.phase),
        );
        if let Some(doc) = text(m.m, "docstring") {
            let _ = write!(out, "<br><small>{}</small>", escape(doc));
        }
        out.push_str("</td><td>");
        value_cell(out, m);
        let units = unit_suffix(&m.m["units"]).unwrap_or("");
        let _ = write!(out, "</td><td>{}</td><td>", escape(units));
        for v in m.m["validators"].as_array().into_iter().flatten() {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let _ = write!(out, "<code>{}</code><br>", escape(&v));
        }
        out.push_str("</td><td>");
        if m.m["marginal"].as_bool() == Some(true) {
            out.push_str("<span class=\"badge marginal\">marginal</span>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The charts, in the order of `measured` (whose `chart` indexes `charts`).
fn chart_section(out: &mut String, charts: &[chart::Chart], measured: &[Measured<'_>]) {
    out.push_str("<section id=\"charts\">\n<h2>Charts</h2>\n");
    if charts.is_empty() {
        out.push_str("<p class=\"muted\">No multi-dimensional measurement.</p>\n");
    }
    for m in measured {
        let Some(i) = m.chart else { continue };
        let chart = &charts[i];
        let css = outcome_class(m.outcome);
        let _ = write!(
            out,
            "<figure class=\"chart-card {css}\" id=\"chart-{i}-card\">\n<figcaption>\
             <span class=\"badge {css}\">{o}</span> {p} › <b>{n}</b> <small>{} points",
            group(chart.total),
            o = escape(m.outcome),
            p = escape(m.phase),
            n = escape(m.name),
        );
        if chart.drawn < chart.total {
            let _ = write!(
                out,
                ", {} drawn (first, last, lowest and highest per pixel column, and every point \
                 outside the limits)",
                group(chart.drawn)
            );
        }
        if chart.outside > 0 {
            let _ = write!(
                out,
                ", <b class=\"fail-text\">{} outside the limits</b>",
                group(chart.outside)
            );
        }
        if chart.skipped > 0 {
            let _ = write!(out, ", {} without a numeric value", group(chart.skipped));
        }
        if chart.data["sorted"] == Value::Bool(false) {
            out.push_str(", sorted by the first coordinate");
        }
        let _ = write!(
            out,
            "</small></figcaption>\n<div class=\"chart\" id=\"chart-{i}\" data-chart=\"chart-data-{i}\" \
             data-measurement=\"{n}\" data-points-total=\"{}\" data-points-drawn=\"{}\" \
             data-points-outside=\"{}\"></div>\n<noscript>The chart needs JavaScript.</noscript>\n\
             <script type=\"application/json\" id=\"chart-data-{i}\">{}</script>\n</figure>\n",
            chart.total,
            chart.drawn,
            chart.outside,
            script_json(&chart.data),
            n = escape(m.name),
        );
    }
    out.push_str("</section>\n");
}

/// `1234567` → `1,234,567`.
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn log_section(out: &mut String, logs: &[Value], start: Option<i64>) {
    out.push_str("<section id=\"logs\">\n<h2>Logs</h2>\n");
    if logs.is_empty() {
        out.push_str("<p class=\"muted\">No log record.</p>\n</section>\n");
        return;
    }
    let mut counts = std::collections::BTreeMap::new();
    for log in logs {
        let level = log["level"].as_i64().unwrap_or(20);
        *counts.entry(level_name(level)).or_insert(0usize) += 1;
    }
    out.push_str("<p class=\"controls\" id=\"log-filters\">Show: ");
    for ((name, css), n) in &counts {
        let _ = write!(
            out,
            "<label class=\"lvl {css}\"><input type=\"checkbox\" data-level-filter=\"{css}\" checked> \
             {name} <small>{n}</small></label> "
        );
    }
    out.push_str(
        "<input type=\"search\" id=\"log-search\" placeholder=\"filter messages\"> \
         <span id=\"log-count\"></span></p>\n<table class=\"logs\">\n<thead><tr><th>Time</th>\
         <th>Level</th><th>Phase</th><th>Source</th><th>Message</th></tr></thead>\n<tbody>\n",
    );
    for log in logs {
        let (name, css) = level_name(log["level"].as_i64().unwrap_or(20));
        let time = millis(log, "timestamp_millis");
        let source = match (text(log, "source"), log["lineno"].as_u64()) {
            (Some(s), Some(l)) => format!("{s}:{l}"),
            (Some(s), None) => s.to_owned(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"log {css}\" data-level=\"{css}\"><td title=\"{}\">{}</td>\
             <td><span class=\"lvl {css}\">{name}</span></td><td>{}</td>\
             <td title=\"{}\">{}</td><td class=\"message\">{}</td></tr>",
            time.map(utc).unwrap_or_default(),
            time.map(|t| offset(t, start)).unwrap_or_default(),
            escape(text(log, "phase").unwrap_or("")),
            escape(text(log, "logger_name").unwrap_or("")),
            escape(&source),
            escape(text(log, "message").unwrap_or("")),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn is_image(mime: &str) -> bool {
    matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp" | "image/svg+xml"
    )
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/json" | "application/xml" | "application/x-yaml"
        )
}

fn attachment_section(out: &mut String, phases: &[Value]) {
    out.push_str("<section id=\"attachments\">\n<h2>Attachments</h2>\n");
    let mut any = false;
    for p in phases {
        let Some(attachments) = p["attachments"].as_object().filter(|a| !a.is_empty()) else {
            continue;
        };
        any = true;
        let _ = writeln!(
            out,
            "<h3>{}</h3>\n<ul class=\"attachments\">",
            escape(text(p, "name").unwrap_or("(unnamed phase)"))
        );
        for (name, a) in attachments {
            attachment(out, name, a);
        }
        out.push_str("</ul>\n");
    }
    if !any {
        out.push_str("<p class=\"muted\">No attachment.</p>\n");
    }
    out.push_str("</section>\n");
}

fn attachment(out: &mut String, name: &str, a: &Value) {
    let mime = safe_mime(text(a, "mimetype"));
    let data = a["data"].as_str().unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD.decode(data);
    let _ = write!(
        out,
        "<li class=\"attachment\" data-attachment=\"{n}\"><b>{n}</b> <small>{}",
        escape(text(a, "mimetype").unwrap_or("unknown type")),
        n = escape(name),
    );
    let Ok(bytes) = decoded else {
        out.push_str(" · the recorded data is not valid base64</small></li>\n");
        return;
    };
    let size = a["size"]
        .as_u64()
        .map_or(bytes.len(), |s| usize::try_from(s).unwrap_or(bytes.len()));
    let _ = write!(out, " · {} bytes", group(size));
    if let Some(sha1) = text(a, "sha1") {
        let _ = write!(out, " · sha1 {}", escape(sha1));
    }
    // `data` decoded as standard base64, so it holds only `A-Z a-z 0-9 + / =`.
    let _ = write!(
        out,
        "</small> <a class=\"download\" download=\"{}\" href=\"data:{mime};base64,{data}\">download</a>",
        escape(name)
    );
    if is_image(mime) {
        let _ = write!(
            out,
            "<br><img class=\"attached-image\" alt=\"{}\" src=\"data:{mime};base64,{data}\">",
            escape(name)
        );
    } else if is_text(mime) && bytes.len() <= TEXT_PREVIEW_MAX {
        let _ = write!(
            out,
            "<details><summary>show</summary><pre>{}</pre></details>",
            escape(&String::from_utf8_lossy(&bytes))
        );
    }
    out.push_str("</li>\n");
}

fn metadata_section(out: &mut String, record: &Value) {
    out.push_str(
        "<section id=\"metadata\">\n<h2>Metadata</h2>\n<table class=\"metadata\">\n<tbody>\n",
    );
    let meta = &record["metadata"];
    let mut rows = 0;
    for (key, value) in meta.as_object().into_iter().flatten() {
        if HEADER_METADATA.contains(&key.as_str())
            || (key == crate::instruments::KEY && value.is_array())
        {
            continue;
        }
        rows += 1;
        let shown = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let _ = writeln!(
            out,
            "<tr data-key=\"{k}\"><th>{k}</th><td>{}</td></tr>",
            escape(&truncated(&shown)),
            k = escape(key)
        );
    }
    if let Some(v) = text(meta, "tofu_version") {
        rows += 1;
        let _ = writeln!(out, "<tr><th>tofu version</th><td>{}</td></tr>", escape(v));
    }
    for key in ["subtests", "diagnoses", "branches"] {
        if let Some(list) = record[key].as_array().filter(|l| !l.is_empty()) {
            rows += 1;
            let _ = writeln!(
                out,
                "<tr><th>{key}</th><td><code>{}</code></td></tr>",
                escape(&truncated(&Value::Array(list.clone()).to_string()))
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
    if rows == 0 {
        out.push_str("<p class=\"muted\">No other metadata.</p>\n");
    }
    if let Some(config) = meta
        .get("config")
        .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))
    {
        let pretty = serde_json::to_string_pretty(config).unwrap_or_else(|_| config.to_string());
        let _ = writeln!(
            out,
            "<details><summary>Configuration</summary><pre>{}</pre></details>",
            escape(&pretty)
        );
    }
    out.push_str("</section>\n</main>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12), "12 ms");
        assert_eq!(duration(3215), "3.215 s");
        assert_eq!(duration(125_200), "2 min 5.2 s");
        assert_eq!(duration(3_725_000), "1 h 02 min 05 s");
        assert_eq!(duration(-1), "—");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_000_000), "1,000,000");
    }

    #[test]
    fn dimension_labels() {
        let d = serde_json::json!({"code": "SEC", "description": "", "name": "second [unit of time]", "suffix": "s"});
        assert_eq!(dimension_label(&d), "second (s)");
        let d = serde_json::json!({"description": "load", "name": "ampere", "suffix": "A"});
        assert_eq!(dimension_label(&d), "load (A)");
    }

    #[test]
    fn a_station_slot_is_named_in_the_header() {
        let record = serde_json::json!({"dut_id": "SN-2", "phases": [],
            "slot": {"index": 1, "name": "A2", "execution_id": "x"}});
        let page = render(&record).unwrap();
        assert!(page.contains("<dt>Slot</dt><dd>A2</dd>"));
        let page = render(&serde_json::json!({"dut_id": "SN-1", "phases": []})).unwrap();
        assert!(!page.contains("<dt>Slot</dt>"));
    }

    #[test]
    fn not_records_are_refused() {
        assert!(check(&serde_json::json!([1, 2])).is_err());
        assert!(check(&serde_json::json!({"a": 1})).is_err());
        assert!(check(&serde_json::json!({"dut_id": "x", "phases": 3})).is_err());
        assert!(check(&serde_json::json!({"dut_id": "x"})).is_ok());
    }
}
