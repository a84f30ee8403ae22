//! The console summary printed at the end of a run.

use std::fmt::Write as _;

use crate::execution::OutputStatus;
use crate::outcome::{MeasurementOutcome, PhaseExecution, PhaseOutcome};
use crate::record::{MeasurementRecord, PhaseRecord, TestRecord};
use crate::value::Value;

/// Renders the summary: each phase and its outcome, each failed or marginal measurement with its
/// value and limits, the run's outcome (in colour when `color`) and where the record went.
pub(crate) fn render(record: &TestRecord, outputs: &[OutputStatus], color: bool) -> String {
    let mut out = String::new();
    let part = record
        .metadata
        .part_number
        .as_deref()
        .map(|p| format!(" · part {p}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "── {} · unit {}{part} ──",
        record.metadata.procedure_id, record.dut_id
    );
    let labels: Vec<String> = record
        .phases
        .iter()
        .map(|p| format!("{}{}", p.name, attempt_suffix(p.attempt)))
        .collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    for (phase, label) in record.phases.iter().zip(&labels) {
        let _ = writeln!(
            out,
            "  {:<5}  {label:<width$}  {:>6} ms",
            outcome_word(phase.outcome),
            phase.end_time_millis - phase.start_time_millis
        );
        if let Some(error) = error_line(&phase.result) {
            let _ = writeln!(out, "         {error}");
        }
        for m in phase
            .measurements
            .iter()
            .filter(|m| shows(m, phase.outcome))
        {
            let _ = writeln!(out, "         ✗ {}", measurement_line(m));
        }
        for m in phase.measurements.iter().filter(|m| m.marginal) {
            let _ = writeln!(out, "         ~ {} (marginal)", measurement_line(m));
        }
    }
    let marginal: Vec<String> = record
        .phases
        .iter()
        .flat_map(|p| {
            p.measurements
                .iter()
                .filter(|m| m.marginal)
                .map(move |m| format!("{}.{}", p.name, m.name()))
        })
        .collect();
    let marginal = if record.marginal == Some(true) && !marginal.is_empty() {
        format!(" (marginal: {})", marginal.join(", "))
    } else if record.marginal == Some(true) {
        " (marginal)".to_owned()
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Outcome: {}{marginal} · {} phase records · {:.3} s",
        painted(outcome_name(record.outcome), record.outcome, color),
        record.phases.len(),
        record.duration_millis() as f64 / 1000.0
    );
    for detail in &record.outcome_details {
        let _ = writeln!(out, "  {}", detail_line(detail));
    }
    for status in outputs {
        match &status.result {
            Ok(Some(location)) => {
                let _ = writeln!(out, "{}: {location}", status.name);
            }
            Ok(None) => {}
            Err(e) => {
                let _ = writeln!(out, "{} FAILED: {e}", status.name);
            }
        }
    }
    out
}

/// ` (attempt 2)` after a repeated phase's name; nothing for a first attempt.
fn attempt_suffix(attempt: u32) -> String {
    if attempt > 1 {
        format!(" (attempt {attempt})")
    } else {
        String::new()
    }
}

/// A line for a phase that a station's slot finished:
/// `slot 2  SN-0002  measure_current  PASS  12 ms`.
pub(crate) fn progress_line(slot: &str, serial: &str, phase: &PhaseRecord) -> String {
    let attempt = attempt_suffix(phase.attempt);
    let waited = match phase.plug_wait_millis {
        Some(ms) if ms > 0 => format!(", waited {ms} ms for a shared plug"),
        _ => String::new(),
    };
    format!(
        "{slot}  {serial}  {}{attempt}  {}  {} ms{waited}",
        phase.name,
        outcome_word(phase.outcome),
        phase.end_time_millis - phase.start_time_millis
    )
}

/// One slot's run, for [`render_batch`].
pub(crate) struct Ran<'a> {
    pub(crate) record: &'a TestRecord,
    pub(crate) outputs: &'a [OutputStatus],
}

/// The end of a station's batch: a line per slot with its unit, outcome, time, and the first
/// reason it did not pass or an output that failed.
pub(crate) fn render_batch(executions: &[Ran<'_>], synchronized: bool, millis: i64) -> String {
    let mut out = String::new();
    let procedure = executions
        .first()
        .map(|e| e.record.metadata.procedure_id.as_str())
        .unwrap_or_default();
    let mode = if synchronized {
        "synchronized"
    } else {
        "independent"
    };
    let _ = writeln!(
        out,
        "── {procedure} · {} slots, {mode} · {:.3} s ──",
        executions.len(),
        millis as f64 / 1000.0
    );
    let name = |e: &Ran<'_>| {
        e.record
            .slot
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    let slot_width = executions
        .iter()
        .map(|e| name(e).chars().count())
        .max()
        .unwrap_or(0);
    let unit_width = executions
        .iter()
        .map(|e| e.record.dut_id.chars().count())
        .max()
        .unwrap_or(0);
    let mut locations = String::new();
    for e in executions {
        let record = &e.record;
        for status in e.outputs {
            if let Ok(Some(location)) = &status.result {
                let _ = writeln!(locations, "  {}: {}: {location}", name(e), status.name);
            }
        }
        let mut line = format!(
            "  {:<slot_width$}  {:<unit_width$}  {:<7}  {:>7.3} s",
            name(e),
            record.dut_id,
            outcome_name(record.outcome),
            record.duration_millis() as f64 / 1000.0
        );
        if let Some(why) = first_reason(record) {
            let _ = write!(line, "  {why}");
        }
        for status in e.outputs {
            if let Err(error) = &status.result {
                let _ = write!(line, "  [{} FAILED: {error}]", status.name);
            }
        }
        let _ = writeln!(out, "{line}");
    }
    // Where each slot's record (and its other outputs) went.
    out.push_str(&locations);
    out
}

/// A phase's error in words: the message (and where a panic happened), without the Rust type
/// of the error (`String`, `Box<dyn Error>` say nothing to an operator).
fn error_line(result: &PhaseExecution) -> Option<String> {
    let PhaseExecution::Error {
        exc_type,
        exc_val,
        exc_tb,
    } = result
    else {
        return None;
    };
    let at = if exc_tb.is_empty() {
        String::new()
    } else {
        format!(" at {exc_tb}")
    };
    Some(if exc_type == "Panic" {
        format!("panicked: {exc_val}{at}")
    } else {
        format!("error: {exc_val}{at}")
    })
}

/// An outcome detail in words: OpenHTF's codes (`STOP`, `TIMEOUT`, `ABORTED`…) are kept; an
/// error's type name is not shown, only its message.
fn detail_line(detail: &crate::outcome::OutcomeDetail) -> String {
    let is_code = !detail.code.is_empty()
        && detail
            .code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_');
    if is_code {
        format!("{}: {}", detail.code, detail.description)
    } else {
        detail.description.clone()
    }
}

/// `word` in the outcome's colour (green PASS, red FAIL, yellow otherwise) when `color`.
fn painted(word: &str, outcome: crate::Outcome, color: bool) -> String {
    if !color {
        return word.to_owned();
    }
    let code = match outcome {
        crate::Outcome::Pass => "1;32",
        crate::Outcome::Fail => "1;31",
        _ => "1;33",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

/// Whether the summary goes to a terminal that takes colours (stdout is one, `NO_COLOR` unset).
pub(crate) fn stdout_has_color() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none()
}

/// Why a run did not pass, in a few words: its first failed measurement, or what stopped it.
fn first_reason(record: &TestRecord) -> Option<String> {
    if record.outcome == crate::Outcome::Pass {
        return None;
    }
    let failed = record.phases.iter().find_map(|p| {
        p.measurements
            .iter()
            .find(|m| m.outcome == MeasurementOutcome::Fail)
            .map(|m| format!("{}: {}", p.name, measurement_line(m)))
    });
    failed.or_else(|| record.outcome_details.first().map(detail_line))
}

fn shows(m: &MeasurementRecord, phase: PhaseOutcome) -> bool {
    match m.outcome {
        MeasurementOutcome::Fail => true,
        MeasurementOutcome::Unset => phase != PhaseOutcome::Skip,
        _ => false,
    }
}

fn outcome_name(outcome: crate::Outcome) -> &'static str {
    match outcome {
        crate::Outcome::Pass => "PASS",
        crate::Outcome::Fail => "FAIL",
        crate::Outcome::Error => "ERROR",
        crate::Outcome::Timeout => "TIMEOUT",
        crate::Outcome::Aborted => "ABORTED",
    }
}

fn outcome_word(outcome: PhaseOutcome) -> &'static str {
    match outcome {
        PhaseOutcome::Pass => "PASS",
        PhaseOutcome::Fail => "FAIL",
        PhaseOutcome::Skip => "SKIP",
        PhaseOutcome::Error => "ERROR",
    }
}

/// One measurement: `rail = 3.45 V  (limits: 3.2 <= x <= 3.4)` (also JUnit's failure messages).
pub(crate) fn measurement_line(m: &MeasurementRecord) -> String {
    let units = m
        .units()
        .and_then(|u| u.suffix())
        .filter(|s| !s.is_empty())
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let value = match &m.measured_value {
        None => "not set".to_owned(),
        Some(Value::Number(v)) => format!("{}{units}", crate::limit::python_float(*v)),
        Some(Value::Text(s)) => format!("{s:?}"),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Json(j)) => j.to_string(),
        Some(Value::Columns(c)) => {
            let failing = c
                .values()
                .iter()
                .filter(|v| {
                    m.validators().iter().any(|validator| match validator {
                        // A panicking custom validator counts the point as outside.
                        crate::Validator::AllValues(inner) => {
                            !crate::panic_capture::catch(|| inner.check(&Value::Number(**v)))
                                .is_ok_and(|verdict| verdict.pass)
                        }
                        _ => false,
                    })
                })
                .count();
            format!("{} points{units}, {failing} outside the limits", c.len())
        }
    };
    let limits: Vec<String> = m.validators().iter().map(ToString::to_string).collect();
    let allowed = if m.decl.allow_fail {
        ", failure allowed"
    } else {
        ""
    };
    if limits.is_empty() {
        format!("{} = {value}{allowed}", m.name())
    } else {
        format!(
            "{} = {value}  (limits: {}){allowed}",
            m.name(),
            limits.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::declare::{__declare, dimensions, in_range};
    use crate::measurement::Sweep;
    use crate::outcome::MeasurementOutcome;
    use crate::unit::{OHM, SECOND};
    use crate::value::Columns;

    #[test]
    fn a_failed_sweep_counts_the_points_outside_its_limits() {
        let decl = __declare::<Sweep<1>, _>(
            "iv",
            dimensions([SECOND]).units(OHM).each(in_range(90, 110)),
        )
        .decl;
        let columns = Columns::from_columns(
            vec![vec![0.0, 1.0, 2.0, 3.0]],
            vec![100.0, 120.0, 80.0, 95.0],
        )
        .unwrap();
        let m = MeasurementRecord {
            decl: Arc::new(decl),
            outcome: MeasurementOutcome::Fail,
            marginal: false,
            measured_value: Some(Value::Columns(columns)),
        };
        assert_eq!(
            measurement_line(&m),
            "iv = 4 points \u{2126}, 2 outside the limits  (limits: All values pass: 90 <= x <= 110)"
        );
    }

    /// The summary of one run of `phases`, quiet, writing nothing.
    fn summary_of(phases: Vec<crate::Phase>, color: bool) -> String {
        let ran = crate::testing::Harness::phases(phases).run();
        render(&ran.record, &[], color)
    }

    #[test]
    fn errors_are_shown_by_message_not_by_rust_type() {
        let boxed =
            crate::Phase::dynamic("boxed").run(|_, _| -> Result<(), Box<dyn std::error::Error>> {
                Err("supply did not answer".into())
            });
        let text = crate::Phase::dynamic("text")
            .run(|_, _| -> Result<(), String> { Err("relay stuck".into()) });
        let out = summary_of(vec![boxed], false);
        assert!(
            out.contains("         error: supply did not answer\n"),
            "{out}"
        );
        assert!(!out.contains("Box<dyn"), "{out}");
        assert!(
            out.contains("\n  supply did not answer\n"),
            "the detail without its type: {out}"
        );
        let out = summary_of(vec![text], false);
        assert!(out.contains("error: relay stuck"), "{out}");
        assert!(!out.contains("String"), "{out}");
        let panics = crate::Phase::dynamic("panics").run(|_, _| -> () { panic!("probe shorted") });
        let out = summary_of(vec![panics], false);
        assert!(out.contains("panicked: probe shorted at "), "{out}");
    }

    #[test]
    fn a_marginal_pass_names_its_measurements() {
        let phase = crate::Phase::dynamic("rails")
            .measure::<f64, _>("rail_3v3", in_range(3.2, 3.4).marginal(3.22, 3.38))
            .measure::<f64, _>("rail_5v", in_range(4.5, 5.5))
            .run(|_, m| -> Result<(), crate::phase::MeasurementAccessError> {
                m.get::<f64>("rail_3v3")?.set(3.39);
                m.get::<f64>("rail_5v")?.set(5.0);
                Ok(())
            });
        let out = summary_of(vec![phase], false);
        assert!(
            out.contains("Outcome: PASS (marginal: rails.rail_3v3) · "),
            "{out}"
        );
        assert!(
            out.contains("         ~ rail_3v3 = 3.39  (limits: "),
            "{out}"
        );
        assert!(!out.contains("rail_5v"), "{out}");
    }

    #[test]
    fn the_outcome_is_coloured_only_when_asked() {
        let pass = crate::Phase::dynamic("ok").run(|_, _| ());
        assert!(summary_of(vec![pass], true).contains("Outcome: \x1b[1;32mPASS\x1b[0m"));
        let pass = crate::Phase::dynamic("ok").run(|_, _| ());
        assert!(!summary_of(vec![pass], false).contains('\x1b'));
        let fail = crate::Phase::dynamic("bad").run(|_, _| crate::PhaseResult::FailAndContinue);
        assert!(summary_of(vec![fail], true).contains("Outcome: \x1b[1;31mFAIL\x1b[0m"));
    }
}
