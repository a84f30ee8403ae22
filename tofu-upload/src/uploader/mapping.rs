//! A finished tofu record as a TofuPilot `create_run` request, plus the files to attach.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tofu_core::measurement::ValueKind;
use tofu_core::outcome::{
    MeasurementOutcome as CoreMeasurementOutcome, Outcome, PhaseOutcome as CorePhaseOutcome,
};
use tofu_core::record::{MeasurementRecord, PhaseRecord};
use tofu_core::{TestRecord, Value};

use crate::types::{
    CreateRun, Log, LogLevel, Measurement, MeasurementOutcome, Phase, PhaseOutcome, SubUnit,
    UnitUnderTest, Units,
};

/// A file to attach to the run.
#[derive(Debug, Clone)]
pub struct FileToAttach {
    /// The name shown in TofuPilot.
    pub name: String,
    /// MIME type (`application/octet-stream` when unknown).
    pub mimetype: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Maps a record to the `create_run` request TofuPilot's OpenHTF integration would make of it.
///
/// Run outcome, unit, procedure, timing (`started_at` from the record's start, `duration`
/// from start to end), phases with their times and outcomes, measurements with value, units
/// (the suffix, or for multi-dimensional ones the dimensions' suffixes then the value's, with
/// the points as rows), limits read from the validators and the validator strings, logs and
/// sub-units.
pub fn create_run(record: &TestRecord) -> CreateRun {
    let meta = &record.metadata;
    let mut unit = UnitUnderTest::new(record.dut_id.clone());
    unit.part_number = meta.part_number.clone();
    unit.revision = meta.revision.clone();
    unit.batch_number = meta.batch_number.clone();
    let mut run = CreateRun::new(unit, record.outcome == Outcome::Pass)
        .procedure_id(meta.procedure_id.clone());
    run.procedure_version = meta.procedure_version.clone();
    run.started_at = DateTime::<Utc>::from_timestamp_millis(record.start_time_millis);
    run.duration = Some(Duration::from_millis(
        record.duration_millis().max(0).unsigned_abs(),
    ));
    run.phases = Some(record.phases.iter().map(phase).collect());
    if !record.log_records.is_empty() {
        run.logs = Some(
            record
                .log_records
                .iter()
                .map(|l| {
                    Log::new(
                        log_level(l.level),
                        DateTime::<Utc>::from_timestamp_millis(l.timestamp_millis)
                            .unwrap_or_default(),
                        l.message.clone(),
                        l.source.clone(),
                        l.lineno,
                    )
                })
                .collect(),
        );
    }
    if !meta.sub_units.is_empty() {
        run.sub_units = Some(meta.sub_units.iter().map(SubUnit::new).collect());
    }
    run
}

/// Every phase's attachments, in order, named uniquely across phases.
pub fn attachments(record: &TestRecord) -> Vec<FileToAttach> {
    let mut files: Vec<FileToAttach> = Vec::new();
    for phase in &record.phases {
        for a in &phase.attachments {
            let mut name = a.name.clone();
            if files.iter().any(|f| f.name == name) {
                name = format!("{}.{}", phase.name, a.name);
            }
            files.push(FileToAttach {
                name,
                mimetype: a.mimetype.clone(),
                data: a.data.to_vec(),
            });
        }
    }
    files
}

fn phase(p: &PhaseRecord) -> Phase {
    let outcome = match p.outcome {
        CorePhaseOutcome::Pass => PhaseOutcome::Pass,
        CorePhaseOutcome::Fail => PhaseOutcome::Fail,
        CorePhaseOutcome::Skip => PhaseOutcome::Skip,
        CorePhaseOutcome::Error => PhaseOutcome::Error,
    };
    let mut out = Phase::new(
        p.name.clone(),
        outcome,
        p.start_time_millis,
        p.end_time_millis,
    );
    out.measurements = Some(p.measurements.iter().map(measurement).collect());
    out.docstring = p.codeinfo.docstring.clone();
    out
}

fn measurement(m: &MeasurementRecord) -> Measurement {
    let outcome = match m.outcome {
        CoreMeasurementOutcome::Pass => MeasurementOutcome::Pass,
        CoreMeasurementOutcome::Fail => MeasurementOutcome::Fail,
        _ => MeasurementOutcome::Unset,
    };
    let suffix = |u: Option<&tofu_core::Unit>| u.and_then(|u| u.suffix()).unwrap_or("").to_owned();
    let mut out = Measurement::new(m.name(), outcome);
    out.measured_value = m.measured_value.as_ref().map(scalar);
    out.units = match &m.measured_value {
        Some(Value::Columns(_)) if m.decl.kind == ValueKind::MultiDim => {
            let mut units: Vec<String> = m
                .decl
                .dimensions
                .iter()
                .map(|d| suffix(Some(&d.unit)))
                .collect();
            units.push(suffix(m.units()));
            Some(Units::Columns(units))
        }
        _ => m
            .units()
            .and_then(|u| u.suffix())
            .filter(|s| !s.is_empty())
            .map(|s| Units::Single(s.to_owned())),
    };
    out.lower_limit = m.validators().iter().find_map(|v| v.lower_limit());
    out.upper_limit = m.validators().iter().find_map(|v| v.upper_limit());
    if !m.validators().is_empty() {
        out.validators = Some(m.validators().iter().map(ToString::to_string).collect());
    }
    out.docstring = m.decl.docstring.clone();
    out
}

/// JSON has no NaN or infinity: they are sent as `null` (the measurement has failed anyway).
fn finite(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn scalar(value: &Value) -> serde_json::Value {
    match value {
        Value::Number(v) => finite(*v),
        Value::Text(s) => serde_json::Value::String(s.clone()),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Json(j) => j.clone(),
        Value::Columns(c) => serde_json::Value::Array(
            c.rows()
                .map(|r| r.into_iter().map(finite).collect())
                .collect(),
        ),
        _ => serde_json::Value::Null,
    }
}

fn log_level(python_level: u8) -> LogLevel {
    match python_level {
        50.. => LogLevel::Critical,
        40..=49 => LogLevel::Error,
        30..=39 => LogLevel::Warning,
        20..=29 => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}
