//! The JSON record's phases written by hand: the same bytes as `serde_json::to_writer`, several
//! times faster.
//!
//! A run writes each phase's record twice (the journal's line at the phase's end, the JSON
//! record at the run's end), and through serde most of that time goes to the machinery around
//! each key and short string rather than to the bytes. Here the keys are constant bytes, the
//! common values (numbers, short names, validators, units) are written directly, and anything
//! rarer (attachments, structured values, exceptions, options) goes through serde as before.
//! `tests::the_bytes_are_serdes` checks the two agree on every kind of record.

use std::io::{self, Write};

use serde::Serialize;

use crate::measurement::MeasurementDecl;
use crate::outcome::{MeasurementOutcome, PhaseOutcome};
use crate::record::{CodeInfo, MeasurementRecord, PhaseOptionsRecord, PhaseRecord, TestRecord};
use crate::value::{Columns, Value};

/// Phases' JSON as a run's journal wrote them, one after the other in one buffer (a buffer
/// per phase would cost an allocation of the size malloc consolidates its free lists for).
#[derive(Clone, Default)]
pub(crate) struct PhasesJson {
    /// The JSON of every phase kept.
    pub(crate) bytes: Vec<u8>,
    /// Per phase of the record, in order: where its JSON is in `bytes`, if kept.
    pub(crate) phases: Vec<Option<std::ops::Range<usize>>>,
}

impl std::fmt::Debug for PhasesJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PhasesJson({} phases, {} bytes)",
            self.phases.len(),
            self.bytes.len()
        )
    }
}

impl PhasesJson {
    /// Phase `i`'s JSON, if kept.
    fn phase(&self, i: usize) -> Option<&[u8]> {
        self.phases
            .get(i)
            .cloned()
            .flatten()
            .and_then(|range| self.bytes.get(range))
    }
}

/// Writes `record` as `serde_json::to_writer` does (compact), its phases by hand, or as
/// `written` has them: phase `i`'s JSON as the run's journal wrote it, when `written` has one
/// entry per phase (the caller vouches that the phases are the ones written).
pub(crate) fn write_record(
    out: &mut impl Write,
    record: &TestRecord,
    written: &PhasesJson,
) -> io::Result<()> {
    let written = (written.phases.len() == record.phases.len()).then_some(written);
    out.write_all(b"{\"dut_id\":")?;
    string(out, &record.dut_id)?;
    out.write_all(b",\"start_time_millis\":")?;
    integer(out, record.start_time_millis)?;
    out.write_all(b",\"end_time_millis\":")?;
    integer(out, record.end_time_millis)?;
    out.write_all(b",\"outcome\":")?;
    serde(out, &record.outcome)?;
    out.write_all(b",\"outcome_details\":")?;
    serde(out, &record.outcome_details)?;
    out.write_all(b",\"marginal\":")?;
    serde(out, &record.marginal)?;
    out.write_all(b",\"metadata\":")?;
    serde(out, &record.metadata)?;
    out.write_all(b",\"phases\":[")?;
    for (i, phase) in record.phases.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        match written.and_then(|w| w.phase(i)) {
            Some(json) => out.write_all(json)?,
            None => write_phase(out, phase)?,
        }
    }
    out.write_all(b"],\"subtests\":")?;
    serde(out, &record.subtests)?;
    out.write_all(b",\"branches\":")?;
    serde(out, &record.branches)?;
    out.write_all(b",\"diagnosers\":")?;
    serde(out, &record.diagnosers)?;
    out.write_all(b",\"diagnoses\":")?;
    serde(out, &record.diagnoses)?;
    out.write_all(b",\"log_records\":")?;
    serde(out, &record.log_records)?;
    out.write_all(b",\"station_id\":")?;
    string(out, &record.station_id)?;
    out.write_all(b",\"code_info\":")?;
    code_info(out, &record.code_info)?;
    if let Some(slot) = &record.slot {
        out.write_all(b",\"slot\":")?;
        serde(out, slot)?;
    }
    out.write_all(b"}")
}

/// Writes one phase's record as `serde_json::to_writer` does.
pub(crate) fn write_phase(out: &mut impl Write, phase: &PhaseRecord) -> io::Result<()> {
    out.write_all(b"{\"measurements\":{")?;
    for (i, m) in phase.measurements.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        string(out, m.name())?;
        out.write_all(b":")?;
        measurement(out, m)?;
    }
    out.write_all(b"},\"options\":")?;
    options(out, &phase.options)?;
    out.write_all(b",\"diagnosers\":")?;
    serde(out, &phase.diagnosers)?;
    out.write_all(b",\"subtest_name\":")?;
    optional_string(out, phase.subtest_name.as_deref())?;
    out.write_all(b",\"start_time_millis\":")?;
    integer(out, phase.start_time_millis)?;
    out.write_all(b",\"end_time_millis\":")?;
    integer(out, phase.end_time_millis)?;
    out.write_all(b",\"attachments\":")?;
    if phase.attachments.is_empty() {
        out.write_all(b"{}")?;
    } else {
        serde(out, &crate::record::AttachmentsJson(&phase.attachments))?;
    }
    out.write_all(b",\"diagnosis_results\":")?;
    serde(out, &phase.diagnosis_results)?;
    out.write_all(b",\"failure_diagnosis_results\":")?;
    serde(out, &phase.failure_diagnosis_results)?;
    out.write_all(b",\"result\":")?;
    serde(out, &crate::record::ResultJson(&phase.result))?;
    out.write_all(b",\"outcome\":")?;
    out.write_all(phase_outcome(phase.outcome))?;
    out.write_all(b",\"marginal\":")?;
    out.write_all(match phase.marginal {
        None => b"null",
        Some(true) => b"true",
        Some(false) => b"false",
    })?;
    out.write_all(b",\"descriptor_id\":")?;
    integer(out, phase.descriptor_id)?;
    out.write_all(b",\"name\":")?;
    string(out, &phase.name)?;
    out.write_all(b",\"codeinfo\":")?;
    code_info(out, &phase.codeinfo)?;
    out.write_all(b",\"attempt\":")?;
    integer(out, phase.attempt)?;
    if let Some(wait) = phase.plug_wait_millis {
        out.write_all(b",\"plug_wait_millis\":")?;
        integer(out, wait)?;
    }
    out.write_all(b"}")
}

fn measurement(out: &mut impl Write, m: &MeasurementRecord) -> io::Result<()> {
    let decl: &MeasurementDecl = &m.decl;
    out.write_all(b"{\"name\":")?;
    string(out, &decl.name)?;
    out.write_all(b",\"outcome\":")?;
    out.write_all(measurement_outcome(m.outcome))?;
    if !decl.validators.is_empty() {
        out.write_all(b",\"validators\":[")?;
        for (i, v) in decl.validators.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            let mut text = crate::limit::StackText::default();
            match v.write_text(&mut text).map(|()| text.as_str()) {
                Ok(Ok(text)) => string(out, text)?,
                _ => serde(out, v)?,
            }
        }
        out.write_all(b"]")?;
    }
    if !decl.dimensions.is_empty() {
        out.write_all(b",\"dimensions\":")?;
        serde(out, &crate::record::DimensionsJson(&decl.dimensions))?;
    }
    if let Some(units) = &decl.units {
        out.write_all(b",\"units\":{\"name\":")?;
        string(out, units.name())?;
        out.write_all(b",\"code\":")?;
        optional_string(out, units.code())?;
        out.write_all(b",\"suffix\":")?;
        optional_string(out, units.suffix())?;
        out.write_all(b"}")?;
    }
    if let Some(doc) = &decl.docstring {
        out.write_all(b",\"docstring\":")?;
        string(out, doc)?;
    }
    if let Some(value) = &m.measured_value {
        out.write_all(b",\"measured_value\":")?;
        match value {
            Value::Number(v) => number(out, *v)?,
            Value::Text(s) => string(out, s)?,
            Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" })?,
            Value::Columns(c) => columns(out, c)?,
            Value::Json(_) => serde(out, value)?,
        }
    }
    out.write_all(if m.marginal {
        b",\"marginal\":true"
    } else {
        b",\"marginal\":false"
    })?;
    if decl.allow_fail {
        out.write_all(b",\"allow_fail\":true")?;
    }
    out.write_all(b"}")
}

/// A sweep's points as rows (`[[x, y, value], …]`), as `Columns::serialize_rows` writes them.
fn columns(out: &mut impl Write, c: &Columns) -> io::Result<()> {
    let dimensions = c.dimension_count();
    out.write_all(b"[")?;
    for i in 0..c.len() {
        out.write_all(if i > 0 { b",[" } else { b"[" })?;
        for d in 0..dimensions {
            let column = c.dimension(d).unwrap_or_default();
            number(out, column.get(i).copied().unwrap_or(f64::NAN))?;
            out.write_all(b",")?;
        }
        number(out, c.values().get(i).copied().unwrap_or(f64::NAN))?;
        out.write_all(b"]")?;
    }
    out.write_all(b"]")
}

fn options(out: &mut impl Write, o: &PhaseOptionsRecord) -> io::Result<()> {
    out.write_all(b"{\"name\":")?;
    optional_string(out, o.name.as_deref())?;
    out.write_all(b",\"timeout_s\":")?;
    match o.timeout_s {
        Some(t) => serde(out, &t)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b",\"run_if\":")?;
    optional_string(out, o.run_if.as_deref())?;
    out.write_all(b",\"requires_state\":")?;
    boolean(out, o.requires_state)?;
    out.write_all(b",\"force_repeat\":")?;
    boolean(out, o.force_repeat)?;
    out.write_all(b",\"repeat_on_measurement_fail\":")?;
    boolean(out, o.repeat_on_measurement_fail)?;
    out.write_all(b",\"repeat_on_timeout\":")?;
    boolean(out, o.repeat_on_timeout)?;
    out.write_all(b",\"repeat_limit\":")?;
    match o.repeat_limit {
        Some(n) => integer(out, n)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b",\"run_under_pdb\":")?;
    boolean(out, o.run_under_pdb)?;
    out.write_all(b",\"phase_name_case\":")?;
    string(out, o.phase_name_case)?;
    out.write_all(b",\"stop_on_measurement_fail\":")?;
    boolean(out, o.stop_on_measurement_fail)?;
    out.write_all(b"}")
}

fn code_info(out: &mut impl Write, c: &CodeInfo) -> io::Result<()> {
    out.write_all(b"{\"name\":")?;
    string(out, &c.name)?;
    out.write_all(b",\"docstring\":")?;
    optional_string(out, c.docstring.as_deref())?;
    out.write_all(b",\"sourcecode\":")?;
    string(out, &c.sourcecode)?;
    if let Some(file) = &c.file {
        out.write_all(b",\"file\":")?;
        string(out, file)?;
    }
    if let Some(line) = c.line {
        out.write_all(b",\"line\":")?;
        integer(out, line)?;
    }
    out.write_all(b"}")
}

fn measurement_outcome(o: MeasurementOutcome) -> &'static [u8] {
    match o {
        MeasurementOutcome::Pass => b"\"PASS\"",
        MeasurementOutcome::Fail => b"\"FAIL\"",
        MeasurementOutcome::Unset => b"\"UNSET\"",
        MeasurementOutcome::Skipped => b"\"SKIPPED\"",
    }
}

fn phase_outcome(o: PhaseOutcome) -> &'static [u8] {
    match o {
        PhaseOutcome::Pass => b"\"PASS\"",
        PhaseOutcome::Fail => b"\"FAIL\"",
        PhaseOutcome::Skip => b"\"SKIP\"",
        PhaseOutcome::Error => b"\"ERROR\"",
    }
}

fn boolean(out: &mut impl Write, b: bool) -> io::Result<()> {
    out.write_all(if b { b"true" } else { b"false" })
}

fn integer(out: &mut impl Write, n: impl itoa::Integer) -> io::Result<()> {
    out.write_all(itoa::Buffer::new().format(n).as_bytes())
}

/// A number as [`crate::value::JsonNumber`] writes it (`"nan"`, `"inf"`, `"-inf"` as strings).
fn number(out: &mut impl Write, v: f64) -> io::Result<()> {
    if v.is_finite() {
        out.write_all(zmij::Buffer::new().format_finite(v).as_bytes())
    } else if v.is_nan() {
        out.write_all(b"\"nan\"")
    } else if v > 0.0 {
        out.write_all(b"\"inf\"")
    } else {
        out.write_all(b"\"-inf\"")
    }
}

fn optional_string(out: &mut impl Write, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => string(out, s),
        None => out.write_all(b"null"),
    }
}

/// A string: copied between quotes when nothing in it needs escaping, else through serde.
fn string(out: &mut impl Write, s: &str) -> io::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        out.write_all(b"\"")
    } else {
        serde(out, s)
    }
}

fn serde(out: &mut impl Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    serde_json::to_writer(out, value).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A record with every kind of value, text that needs escaping, and every optional part.
    fn records() -> Vec<TestRecord> {
        use crate::declare::{
            dimensions, equals, equals_json, in_range, matches_regex, within_percent,
        };
        use crate::measurement::{Json, Sweep};
        use crate::phase::{MeasurementAccessError, Phase};
        use crate::unit::{AMPERE, OHM, SECOND, VOLT};
        use crate::{PhaseResult, Test};
        let odd = "q\"uote\\ tab\t nl\n \u{1} del\u{7f} é 日本 </script>";
        let values = Phase::dynamic(format!("values {odd}"))
            .measure::<f64, _>("v", in_range(0.0, 10.0).units(VOLT).doc(odd))
            .measure::<f64, _>("m", in_range(0, 10).marginal(1, 9))
            .measure::<f64, _>("pct", within_percent(5.0, 2.5).marginal_percent(1))
            .measure::<f64, _>("nan", in_range(-1e-7, 1.5e300))
            .measure::<f64, _>("inf", in_range(0, 1).allow_fail())
            .measure::<f64, _>("neg_inf", in_range(-1, 1))
            .measure::<f64, _>("unset", in_range(0.25, 0.75))
            .measure::<String, _>(odd, matches_regex(r"^SN-\d+\.\w$"))
            .measure::<String, _>("eq", equals("ab\"c"))
            .measure::<bool, _>("b", equals(true))
            .measure::<Json, _>("j", equals_json(serde_json::json!({"a": [1]})))
            .measure::<Sweep<2>, _>("s", dimensions([SECOND, AMPERE]).units(OHM))
            .timeout(std::time::Duration::from_millis(2500))
            .repeat_limit(3)
            .run(
                move |test, m| -> Result<PhaseResult, MeasurementAccessError> {
                    m.get::<f64>("v")?.set(1.5);
                    m.get::<f64>("m")?.set(0.5);
                    m.get::<f64>("pct")?.set(5.1);
                    m.get::<f64>("nan")?.set(f64::NAN);
                    m.get::<f64>("inf")?.set(f64::INFINITY);
                    m.get::<f64>("neg_inf")?.set(f64::NEG_INFINITY);
                    m.get::<String>(odd)?.set(odd.to_owned());
                    m.get::<String>("eq")?.set("ab\"c".to_owned());
                    m.get::<bool>("b")?.set(false);
                    m.get::<Json>("j")?
                        .set(serde_json::json!({"a": [1, 2.5, "x\n"], "b": null}));
                    let mut s = m.get::<Sweep<2>>("s")?;
                    for i in 0..50 {
                        s.push([f64::from(i) * 1e-4, f64::NAN], 1e21 + f64::from(i));
                    }
                    test.attach("notes \"1\".txt", odd.as_bytes().to_vec())
                        .unwrap();
                    test.attach("raw", vec![0u8, 255, 10]).unwrap();
                    tracing::info!("log {odd}");
                    Ok(PhaseResult::Continue)
                },
            );
        let failing = Phase::dynamic("fails")
            .run(|_test, _m| -> Result<(), String> { Err(format!("broke: {}", "\"x\"\n")) });
        let mut records = vec![
            Test::new("FVT1")
                .station_id("st \"1\"")
                .metadata("note", odd)
                .phases([values, failing])
                .without_json_output()
                .quiet()
                .execute(|| odd.to_owned())
                .record,
            Test::new("FVT2")
                .phases([Phase::dynamic("empty").run(|_t, _m| {})])
                .without_json_output()
                .quiet()
                .execute(|| "SN-2")
                .record,
        ];
        // What only a station's run has.
        let mut with_slot = records[1].clone();
        with_slot.slot = Some(crate::record::SlotRecord {
            index: 2,
            name: "slot \"3\"".into(),
            execution_id: "e-1".into(),
        });
        with_slot.phases[0].plug_wait_millis = Some(12);
        with_slot.phases[0].subtest_name = Some("sub".into());
        with_slot.phases[0].marginal = None;
        records.push(with_slot);
        records
    }

    #[test]
    fn the_bytes_are_serdes() {
        let records = records();
        assert!(records.len() > 1);
        for record in &records {
            let mut ours = Vec::new();
            write_record(&mut ours, record, &PhasesJson::default()).unwrap();
            let theirs = serde_json::to_vec(record).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            for phase in &record.phases {
                let mut ours = Vec::new();
                write_phase(&mut ours, phase).unwrap();
                assert_eq!(ours, serde_json::to_vec(phase).unwrap());
            }
        }
    }
}
