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
pub(crate) fn create_run(record: &TestRecord) -> CreateRun {
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
pub(crate) fn attachments(record: &TestRecord) -> Vec<FileToAttach> {
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

/// [`create_run`] for a record in its JSON form (OpenHTF's), as a run recovered from a dead
/// process's journal is: the same request `create_run` makes of the record (limits are read
/// back from the validators' text). The error names the field that is missing or wrong.
pub(crate) fn create_run_from_json(record: &serde_json::Value) -> Result<CreateRun, String> {
    use serde_json::Value as J;
    let text = |v: &J| v.as_str().map(str::to_owned);
    let meta = &record["metadata"];
    let serial = text(&record["dut_id"]).ok_or("the record has no dut_id")?;
    let start = record["start_time_millis"]
        .as_i64()
        .ok_or("the record has no start_time_millis")?;
    let end = record["end_time_millis"].as_i64().unwrap_or(start);
    let procedure = text(&meta["procedure_id"]).ok_or("the record has no metadata.procedure_id")?;
    let mut unit = UnitUnderTest::new(serial);
    unit.part_number = text(&meta["part_number"]);
    unit.revision = text(&meta["revision"]);
    unit.batch_number = text(&meta["batch_number"]);
    let mut run = CreateRun::new(unit, record["outcome"] == "PASS").procedure_id(procedure);
    run.procedure_version = text(&meta["procedure_version"]);
    run.started_at = DateTime::<Utc>::from_timestamp_millis(start);
    run.duration = Some(Duration::from_millis((end - start).max(0).unsigned_abs()));
    let phases = record["phases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    run.phases = Some(phases.iter().map(phase_from_json).collect());
    let logs = record["log_records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !logs.is_empty() {
        run.logs = Some(
            logs.iter()
                .map(|l| {
                    Log::new(
                        log_level(
                            l["level"]
                                .as_u64()
                                .map_or(20, |v| u8::try_from(v).unwrap_or(50)),
                        ),
                        l["timestamp_millis"]
                            .as_i64()
                            .and_then(DateTime::<Utc>::from_timestamp_millis)
                            .unwrap_or_default(),
                        text(&l["message"]).unwrap_or_default(),
                        text(&l["source"]).unwrap_or_default(),
                        l["lineno"]
                            .as_u64()
                            .map_or(0, |v| u32::try_from(v).unwrap_or(0)),
                    )
                })
                .collect(),
        );
    }
    let sub_units = meta["sub_units"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !sub_units.is_empty() {
        run.sub_units = Some(
            sub_units
                .iter()
                .filter_map(|u| u.as_str().or_else(|| u["serial_number"].as_str()))
                .map(SubUnit::new)
                .collect(),
        );
    }
    Ok(run)
}

/// [`attachments`] for a record in its JSON form (attachment data in base64).
pub(crate) fn attachments_from_json(record: &serde_json::Value) -> Vec<FileToAttach> {
    use base64::Engine as _;
    let mut files: Vec<FileToAttach> = Vec::new();
    for phase in record["phases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(attachments) = phase["attachments"].as_object() else {
            continue;
        };
        for (name, a) in attachments {
            let Some(data) = a["data"]
                .as_str()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            else {
                continue;
            };
            let mut name = name.clone();
            if files.iter().any(|f| f.name == name) {
                name = format!("{}.{name}", phase["name"].as_str().unwrap_or_default());
            }
            files.push(FileToAttach {
                name,
                mimetype: a["mimetype"].as_str().map(str::to_owned),
                data,
            });
        }
    }
    files
}

fn phase_from_json(p: &serde_json::Value) -> Phase {
    let outcome = match p["outcome"].as_str() {
        Some("PASS") => PhaseOutcome::Pass,
        Some("FAIL") => PhaseOutcome::Fail,
        Some("SKIP") => PhaseOutcome::Skip,
        _ => PhaseOutcome::Error,
    };
    let mut out = Phase::new(
        p["name"].as_str().unwrap_or_default().to_owned(),
        outcome,
        p["start_time_millis"].as_i64().unwrap_or_default(),
        p["end_time_millis"].as_i64().unwrap_or_default(),
    );
    let measurements = p["measurements"].as_object();
    out.measurements = Some(
        measurements
            .map(|m| m.values().map(measurement_from_json).collect())
            .unwrap_or_default(),
    );
    out.docstring = p["codeinfo"]["docstring"].as_str().map(str::to_owned);
    out
}

fn measurement_from_json(m: &serde_json::Value) -> Measurement {
    let outcome = match m["outcome"].as_str() {
        Some("PASS") => MeasurementOutcome::Pass,
        Some("FAIL") => MeasurementOutcome::Fail,
        _ => MeasurementOutcome::Unset,
    };
    let suffix = |u: &serde_json::Value| u["suffix"].as_str().unwrap_or_default().to_owned();
    let mut out = Measurement::new(m["name"].as_str().unwrap_or_default(), outcome);
    // The record writes NaN and infinities as strings; the request sends null. (A text
    // measurement whose value is the word "nan" or "inf" is sent as null too: the JSON form
    // can't tell them apart.)
    fn finite_json(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) if ["nan", "inf", "-inf"].contains(&s.as_str()) => {
                serde_json::Value::Null
            }
            serde_json::Value::Array(rows) if rows.iter().all(serde_json::Value::is_array) => {
                serde_json::Value::Array(rows.iter().map(finite_json).collect())
            }
            serde_json::Value::Array(row) => serde_json::Value::Array(
                row.iter()
                    .map(|x| {
                        if x.is_string() {
                            finite_json(x)
                        } else {
                            x.clone()
                        }
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    out.measured_value = m.get("measured_value").map(|v| {
        if m["dimensions"].is_array() || !v.is_array() {
            finite_json(v)
        } else {
            v.clone()
        }
    });
    out.units = match m["dimensions"].as_array() {
        Some(dimensions) if m["measured_value"].is_array() => {
            let mut units: Vec<String> = dimensions.iter().map(suffix).collect();
            units.push(suffix(&m["units"]));
            Some(Units::Columns(units))
        }
        _ => Some(suffix(&m["units"]))
            .filter(|s| !s.is_empty())
            .map(Units::Single),
    };
    let validators: Vec<String> = m["validators"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|v| v.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let limits: Vec<_> = validators
        .iter()
        .map(|v| tofu_core::Validator::limits_from_text(v))
        .collect();
    out.lower_limit = limits.iter().find_map(|l| l.0);
    out.upper_limit = limits.iter().find_map(|l| l.1);
    if !validators.is_empty() {
        out.validators = Some(validators);
    }
    out.docstring = m["docstring"].as_str().map(str::to_owned);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tofu_core::declare::{at_least, dimensions, equals, in_range, within_percent};
    use tofu_core::measurement::Sweep;
    use tofu_core::phase::MeasurementAccessError;
    use tofu_core::unit::{SECOND, VOLT};
    use tofu_core::{Phase, PhaseResult, Test};

    use super::*;

    /// A recovered run (its record's JSON) makes the same request as the record itself.
    #[test]
    fn the_json_form_of_a_record_makes_the_same_request() {
        let rails = Phase::dynamic("rails")
            .measure::<f64, _>("vin", in_range(4.5, 5.5).units(VOLT).doc("at J1"))
            .measure::<f64, _>("vout", in_range(3.2, 3.4).marginal(3.22, 3.38))
            .measure::<f64, _>("nan", at_least(0))
            .measure::<f64, _>("ratio", within_percent(5, 10))
            .measure::<String, _>("fw", equals("1.2.3"))
            .measure::<Sweep<1>, _>("iv", dimensions([SECOND]).units(VOLT).each(in_range(0, 10)))
            .run(|test, m| -> Result<(), MeasurementAccessError> {
                m.get::<f64>("vin")?.set(5.01);
                m.get::<f64>("vout")?.set(3.39);
                m.get::<f64>("nan")?.set(f64::NAN);
                m.get::<f64>("ratio")?.set(5.2);
                m.get::<String>("fw")?.set("1.2.4");
                let mut iv = m.get::<Sweep<1>>("iv")?;
                iv.push([0.0], 1.0);
                iv.push([1.0], f64::INFINITY);
                test.attach("a.txt", "x").unwrap();
                tracing::warn!("rails measured");
                Ok(())
            });
        let skipped = Phase::dynamic("skipped").run(|_, _| PhaseResult::Skip);
        let record = Test::new("FVT1")
            .part_number("PCB01")
            .revision("B")
            .sub_unit("SUB-1")
            .phases([rails, skipped])
            .without_json_output()
            .quiet()
            .execute(|| "SN-JSON")
            .record;
        let json = serde_json::to_value(&record).unwrap();
        let typed = serde_json::to_value(create_run(&record)).unwrap();
        let from_json = serde_json::to_value(create_run_from_json(&json).unwrap()).unwrap();
        assert_eq!(from_json, typed);
        assert!(typed["logs"].as_array().is_some_and(|l| !l.is_empty()));
        let files = |f: Vec<FileToAttach>| -> Vec<(String, Vec<u8>)> {
            f.into_iter().map(|f| (f.name, f.data)).collect()
        };
        assert_eq!(
            files(attachments_from_json(&json)),
            files(attachments(&record))
        );
    }

    #[test]
    fn a_json_record_without_its_unit_or_start_is_refused_naming_the_field() {
        let e = create_run_from_json(&serde_json::json!({"start_time_millis": 1})).unwrap_err();
        assert!(e.contains("dut_id"), "{e}");
        let e = create_run_from_json(&serde_json::json!({"dut_id": "x"})).unwrap_err();
        assert!(e.contains("start_time_millis"), "{e}");
    }
}
