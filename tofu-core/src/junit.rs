//! JUnit XML: a run as CI dashboards read test results (Jenkins, GitLab, GitHub and Azure
//! reporters).
//!
//! One `<testsuite>` per run (named after the procedure and the unit), one `<testcase>` per
//! phase record: a phase that failed has a `<failure>` whose message names each failing
//! measurement, its value and its limits; an ERROR phase an `<error>` with its message; a
//! skipped one `<skipped/>`. The measurements are the suite's `<properties>`
//! (`phase.measurement` = value, limits and outcome) and each test case's `<system-out>`. A run
//! that did not pass without any phase saying why (no serial number, an invalid declaration, an
//! abort between phases) gets a test case `run` with an `<error>`, so a dashboard never shows
//! it green. The file validates against `fixtures/junit/junit.xsd`, the shape Jenkins' JUnit
//! schema (junit-10) describes.
//!
//! [`JunitOutput`] is an output callback; setting `TOFU_JUNIT_DIR` adds one to every test,
//! without a code change: one file per run, `<serial>.<procedure>.<start_ms>.xml`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::outcome::{MeasurementOutcome, Outcome, PhaseExecution, PhaseOutcome};
use crate::output::{OutputCallback, OutputError};
use crate::record::{PhaseRecord, TestRecord};

/// The environment variable that adds a [`JunitOutput`] into that folder to every test.
pub const JUNIT_DIR_ENV: &str = "TOFU_JUNIT_DIR";

/// Writes each run as a JUnit XML file into a folder (atomically, never replacing a file).
#[derive(Debug, Clone)]
pub struct JunitOutput {
    dir: PathBuf,
}

impl JunitOutput {
    /// Into `dir`.
    pub fn to_dir(dir: impl Into<PathBuf>) -> Self {
        JunitOutput { dir: dir.into() }
    }

    /// Into `$TOFU_JUNIT_DIR`, when it is set (and not empty).
    pub fn from_env() -> Option<Self> {
        std::env::var_os(JUNIT_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(JunitOutput::to_dir)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl OutputCallback for JunitOutput {
    fn name(&self) -> &str {
        "JUnit XML"
    }

    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        let stem = format!(
            "{}.{}.{}",
            atomic::safe_file_name(&record.dut_id),
            atomic::safe_file_name(&record.metadata.procedure_id),
            record.start_time_millis
        );
        let xml = render(record);
        let path =
            atomic::write_new_file(&self.dir, &stem, "xml", |out| out.write_all(xml.as_bytes()))
                .map_err(|source: io::Error| OutputError::Write {
                    dir: self.dir.clone(),
                    source,
                })?;
        Ok(Some(format!("written to {}", path.display())))
    }
}

/// What one phase record becomes.
enum Verdict {
    Passed,
    Failed(String),
    Error { kind: String, message: String },
    Skipped,
}

fn verdict(phase: &PhaseRecord) -> Verdict {
    match (&phase.result, phase.outcome) {
        (_, PhaseOutcome::Pass) => Verdict::Passed,
        (_, PhaseOutcome::Skip) => Verdict::Skipped,
        (
            PhaseExecution::Error {
                exc_type, exc_val, ..
            },
            _,
        ) => Verdict::Error {
            kind: exc_type.clone(),
            message: exc_val.clone(),
        },
        (PhaseExecution::Timeout, _) => Verdict::Error {
            kind: "TIMEOUT".to_owned(),
            message: "the phase timed out".to_owned(),
        },
        (PhaseExecution::Aborted, _) => Verdict::Error {
            kind: "ABORTED".to_owned(),
            message: "the operator aborted the test".to_owned(),
        },
        (PhaseExecution::Returned(result), PhaseOutcome::Error) => Verdict::Error {
            kind: "STOP".to_owned(),
            message: format!("the phase returned {result:?}"),
        },
        (PhaseExecution::Returned(_), PhaseOutcome::Fail) => {
            let failed: Vec<String> = phase
                .measurements
                .iter()
                .filter(|m| {
                    matches!(
                        m.outcome,
                        MeasurementOutcome::Fail | MeasurementOutcome::Unset
                    )
                })
                .filter(|m| !m.decl.allow_fail)
                .map(crate::summary::measurement_line)
                .collect();
            Verdict::Failed(if failed.is_empty() {
                "the phase asked to fail".to_owned()
            } else {
                failed.join("; ")
            })
        }
    }
}

fn seconds(millis: i64) -> String {
    format!("{:.3}", millis.max(0) as f64 / 1000.0)
}

/// The record as JUnit XML.
pub fn render(record: &TestRecord) -> String {
    let procedure = &record.metadata.procedure_id;
    let cases: Vec<(&PhaseRecord, Verdict)> =
        record.phases.iter().map(|p| (p, verdict(p))).collect();
    let count = |f: fn(&Verdict) -> bool| cases.iter().filter(|(_, v)| f(v)).count();
    let mut failures = count(|v| matches!(v, Verdict::Failed(_)));
    let mut errors = count(|v| matches!(v, Verdict::Error { .. }));
    let skipped = count(|v| matches!(v, Verdict::Skipped));
    // A run that didn't pass must not look green: its reason as a test case of its own.
    let run_case = (record.outcome != Outcome::Pass && failures + errors == 0).then(|| {
        let reasons: Vec<String> = record
            .outcome_details
            .iter()
            .map(|d| format!("{}: {}", d.code, d.description))
            .collect();
        let kind = serde_json::to_value(record.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        (kind, reasons.join("; "))
    });
    if run_case.is_some() {
        if record.outcome == Outcome::Fail {
            failures += 1;
        } else {
            errors += 1;
        }
    }
    let tests = cases.len() + usize::from(run_case.is_some());
    let time = seconds(record.duration_millis());
    let timestamp = chrono::DateTime::from_timestamp_millis(record.start_time_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let suite = format!("{procedure} {}", record.dut_id);

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">",
        attr(procedure)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time}\" timestamp=\"{timestamp}\" hostname=\"{}\">",
        attr(&suite),
        attr(&record.station_id)
    );
    properties(&mut out, record);
    for (phase, verdict) in &cases {
        test_case(&mut out, procedure, phase, verdict);
    }
    if let Some((kind, message)) = run_case {
        let element = if record.outcome == Outcome::Fail {
            "failure"
        } else {
            "error"
        };
        let _ = writeln!(
            out,
            "    <testcase name=\"run\" classname=\"{}\" time=\"{time}\">\n      <{element} type=\"{}\" message=\"{}\">{}</{element}>\n    </testcase>",
            attr(procedure),
            attr(&kind),
            attr(&message),
            text(&message)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The record's metadata and every measurement, as properties of the suite.
fn properties(out: &mut String, record: &TestRecord) {
    out.push_str("    <properties>\n");
    let outcome = serde_json::to_value(record.outcome).unwrap_or_default();
    let meta = &record.metadata;
    let fields = [
        ("dut_id", Some(record.dut_id.as_str())),
        ("outcome", outcome.as_str()),
        ("procedure_id", Some(meta.procedure_id.as_str())),
        ("part_number", meta.part_number.as_deref()),
        ("revision", meta.revision.as_deref()),
        ("batch_number", meta.batch_number.as_deref()),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            property(out, name, value);
        }
    }
    for phase in &record.phases {
        for m in &phase.measurements {
            let outcome = serde_json::to_value(m.outcome).unwrap_or_default();
            let value = format!(
                "{} [{}]",
                crate::summary::measurement_line(m),
                outcome.as_str().unwrap_or_default()
            );
            property(out, &format!("{}.{}", phase.name, m.name()), &value);
        }
    }
    out.push_str("    </properties>\n");
}

/// One phase record as a test case.
fn test_case(out: &mut String, procedure: &str, phase: &PhaseRecord, verdict: &Verdict) {
    let name = if phase.attempt > 1 {
        format!("{} (attempt {})", phase.name, phase.attempt)
    } else {
        phase.name.clone()
    };
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        attr(&name),
        attr(procedure),
        seconds(phase.end_time_millis - phase.start_time_millis)
    );
    match verdict {
        Verdict::Passed => {}
        Verdict::Skipped => out.push_str("      <skipped/>\n"),
        Verdict::Failed(message) => {
            let _ = writeln!(
                out,
                "      <failure type=\"FAIL\" message=\"{}\">{}</failure>",
                attr(message),
                text(message)
            );
        }
        Verdict::Error { kind, message } => {
            let _ = writeln!(
                out,
                "      <error type=\"{}\" message=\"{}\">{}</error>",
                attr(kind),
                attr(message),
                text(message)
            );
        }
    }
    if !phase.measurements.is_empty() {
        out.push_str("      <system-out>");
        for m in &phase.measurements {
            let outcome = serde_json::to_value(m.outcome).unwrap_or_default();
            let line = format!(
                "{} [{}]\n",
                crate::summary::measurement_line(m),
                outcome.as_str().unwrap_or_default()
            );
            out.push_str(&text(&line));
        }
        out.push_str("</system-out>\n");
    }
    out.push_str("    </testcase>\n");
}

fn property(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "      <property name=\"{}\" value=\"{}\"/>",
        attr(name),
        attr(value)
    );
}

/// A character XML 1.0 can carry; the others (most control characters) become U+FFFD.
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        c if c < ' ' => '\u{FFFD}',
        '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
        c => c,
    }
}

/// Text content: `&`, `<` and `>` escaped.
fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value in double quotes: also `"` and line breaks (kept as character
/// references, which attribute normalisation would otherwise turn into spaces).
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(xml_char) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_and_control_characters_replaced() {
        let table = [
            ("plain", "plain", "plain"),
            ("a<b>&c", "a&lt;b&gt;&amp;c", "a&lt;b&gt;&amp;c"),
            ("say \"hi\"", "say \"hi\"", "say &quot;hi&quot;"),
            ("two\nlines\t", "two\nlines\t", "two&#10;lines&#9;"),
            (
                "bell\u{7}nul\u{0}",
                "bell\u{FFFD}nul\u{FFFD}",
                "bell\u{FFFD}nul\u{FFFD}",
            ),
            ("]]>", "]]&gt;", "]]&gt;"),
        ];
        for (input, as_text, as_attr) in table {
            assert_eq!(text(input), as_text, "{input:?}");
            assert_eq!(attr(input), as_attr, "{input:?}");
        }
    }
}
