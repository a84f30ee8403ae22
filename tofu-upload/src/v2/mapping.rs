//! A finished tofu record as a v2 `POST /api/v2/runs` request, field by field.
//!
//! * Run: `outcome` (tofu's own: PASS FAIL ERROR TIMEOUT ABORTED), `started_at`/`ended_at`,
//!   the unit (`serial_number`, `part_number`, `revision_number`, `batch_number`, `sub_units`),
//!   `procedure_id` (the procedure as the test names it, resolved to its id when sent),
//!   `procedure_version`, `operated_by` (metadata `operator`/`operated_by`), `docstring`.
//! * Phases: every attempt, in execution order, with `retry_count` = attempt − 1; PASS FAIL SKIP
//!   ERROR (a timeout or an abort is ERROR, with the reason in the `docstring`); a phase in
//!   groups or subtests carries their `sequence_path` (`outer/inner`, by name), and the run lists
//!   each of them, parents first, in `sequences`.
//! * Measurements: the value; the unit's suffix; each limit a validator with its own outcome:
//!   a range is `>=` and `<=` (`==` when both are equal), a marginal band the non-decisive
//!   (`is_decisive: false`) `>` and `<` of its bounds, equality `==`, a regex `matches`,
//!   within-percent `>=`/`<=` with its text as the `expression`, a custom check its name as the
//!   `expression`. A one-dimensional sweep is `x_axis` (the swept coordinate, its unit and
//!   description) and `y_axis` (the values and their unit), with `min`/`max` aggregations
//!   carrying the limits that apply to every point; other sweeps (several swept coordinates, or
//!   a point that is not a finite number) are sent as rows with one unit per column.
//! * `logs`: every log record (level, time, message, file or `unknown`, line).
//! * `metadata`: the record's free metadata, the station, tofu's version, and each instrument
//!   the run used (`instrument.<name>`: its `*IDN?` answer or address; `.calibration_due`);
//!   keys made to fit v2's pattern and 40 characters, values to strings, numbers or booleans,
//!   at most 50.
//! * `config`: the limits file's `limits_file.path` and `limits_file.sha1`.
//! * A station's run: `execution_id` (the batch), `slot_key` (the slot's index) and
//!   `slot_name`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use tofu_core::measurement::ValueKind;
use tofu_core::outcome::{MeasurementOutcome as CoreMeasurementOutcome, Outcome as CoreOutcome};
use tofu_core::outcome::{PhaseExecution, PhaseOutcome as CorePhaseOutcome};
use tofu_core::record::{MeasurementRecord, PhaseRecord};
use tofu_core::{TestRecord, Validator as CoreValidator, Value};

use super::request::{
    Aggregation, Axis, ConfigValue, CreateRun, Log, Measurement, Outcome, Phase, PhaseOutcome,
    RunOutcome, Sequence, Validator,
};
use crate::types::{LogLevel, Units};

/// v2's limit on metadata keys.
const MAX_METADATA_KEYS: usize = 50;
/// v2's limit on a metadata key's length.
const MAX_KEY_LEN: usize = 40;
/// Metadata keys the request carries elsewhere.
const NOT_METADATA: [&str; 5] = [
    "limits_file",
    "operator",
    "operated_by",
    "instruments",
    "docstring",
];

fn time(millis: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default()
}

/// The v2 request for a record.
pub fn create_run(record: &TestRecord) -> CreateRun {
    let meta = &record.metadata;
    let outcome = match record.outcome {
        CoreOutcome::Pass => RunOutcome::Pass,
        CoreOutcome::Fail => RunOutcome::Fail,
        CoreOutcome::Error => RunOutcome::Error,
        CoreOutcome::Timeout => RunOutcome::Timeout,
        CoreOutcome::Aborted => RunOutcome::Aborted,
    };
    let mut run = CreateRun::new(
        outcome,
        meta.procedure_id.clone(),
        record.dut_id.clone(),
        time(record.start_time_millis),
        time(record.end_time_millis.max(record.start_time_millis)),
    );
    run.procedure_version = meta.procedure_version.clone();
    run.part_number = meta.part_number.clone();
    run.revision_number = meta.revision.clone();
    run.batch_number = meta.batch_number.clone();
    if !meta.sub_units.is_empty() {
        run.sub_units = Some(meta.sub_units.clone());
    }
    run.operated_by = ["operated_by", "operator"]
        .iter()
        .find_map(|k| meta.extra.get(*k).and_then(Json::as_str))
        .map(str::to_owned);
    run.docstring = meta
        .extra
        .get("docstring")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .or_else(|| record.code_info.docstring.clone());
    run.phases = Some(record.phases.iter().map(phase).collect());
    run.sequences = sequences(&record.phases);
    if !record.log_records.is_empty() {
        run.logs = Some(
            record
                .log_records
                .iter()
                .map(|l| log(l.level, l.timestamp_millis, &l.message, &l.source, l.lineno))
                .collect(),
        );
    }
    let mut metadata = Map::new();
    for (key, value) in &meta.extra {
        if !NOT_METADATA.contains(&key.as_str()) {
            add_metadata(&mut metadata, key, value);
        }
    }
    if let Some(instruments) = meta.extra.get("instruments").and_then(Json::as_array) {
        add_instruments(&mut metadata, instruments);
    }
    if !record.station_id.is_empty() {
        add_metadata(
            &mut metadata,
            "station_id",
            &Json::from(record.station_id.clone()),
        );
    }
    add_metadata(
        &mut metadata,
        "tofu_version",
        &Json::from(meta.tofu_version.clone()),
    );
    run.metadata = Some(metadata);
    run.config = config(meta.extra.get("limits_file"));
    if let Some(slot) = &record.slot {
        run.execution_id = Some(slot.execution_id.clone());
        run.slot_key = Some(slot.index.to_string());
        run.slot_name = Some(slot.name.clone());
    }
    run
}

fn log(level: u8, millis: i64, message: &str, source: &str, line: u32) -> Log {
    let level = match level {
        50.. => LogLevel::Critical,
        40..=49 => LogLevel::Error,
        30..=39 => LogLevel::Warning,
        20..=29 => LogLevel::Info,
        _ => LogLevel::Debug,
    };
    Log {
        level,
        timestamp: time(millis),
        message: message.to_owned(),
        source_file: if source.is_empty() {
            "unknown".to_owned()
        } else {
            source.to_owned()
        },
        line_number: line,
    }
}

/// The limits file as `config` entries: its path and SHA-1.
fn config(limits_file: Option<&Json>) -> Option<Vec<ConfigValue>> {
    let file = limits_file?;
    let entries: Vec<ConfigValue> = ["path", "sha1"]
        .iter()
        .filter_map(|k| {
            file.get(*k)
                .and_then(Json::as_str)
                .map(|v| ConfigValue::new(format!("limits_file.{k}"), v))
        })
        .collect();
    (!entries.is_empty()).then_some(entries)
}

/// A key as v2 takes it: `[a-zA-Z0-9_.:+-]`, 1 to 40 characters.
fn metadata_key(key: &str) -> String {
    let key: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.:+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_KEY_LEN)
        .collect();
    if key.is_empty() { "_".to_owned() } else { key }
}

/// Adds `value` under `key`: a scalar as is, an object's scalars as `key.field`, anything else
/// (a list, a nested object) as its JSON text. `null` is left out. At most 50 keys.
fn add_metadata(metadata: &mut Map<String, Json>, key: &str, value: &Json) {
    let mut put = |key: String, value: Json| {
        if metadata.len() < MAX_METADATA_KEYS || metadata.contains_key(&key) {
            metadata.insert(key, value);
        }
    };
    match value {
        Json::Null => {}
        Json::Bool(_) | Json::Number(_) | Json::String(_) => put(metadata_key(key), value.clone()),
        Json::Object(fields) if fields.values().all(|v| !v.is_object() && !v.is_array()) => {
            for (field, v) in fields {
                if !v.is_null() {
                    put(metadata_key(&format!("{key}.{field}")), v.clone());
                }
            }
        }
        other => put(metadata_key(key), Json::String(other.to_string())),
    }
}

/// Each instrument as `instrument.<name>` (its `*IDN?` answer, else its address) and
/// `instrument.<name>.calibration_due`.
fn add_instruments(metadata: &mut Map<String, Json>, instruments: &[Json]) {
    for (i, instrument) in instruments.iter().enumerate() {
        let name = instrument["name"]
            .as_str()
            .map_or_else(|| i.to_string(), str::to_owned);
        let key = format!("instrument.{name}");
        let identity = instrument["idn"]
            .as_str()
            .or_else(|| instrument["address"].as_str())
            .unwrap_or_default();
        add_metadata(metadata, &key, &Json::from(identity));
        if let Some(due) = instrument["calibration_due"].as_str() {
            add_metadata(
                metadata,
                &format!("{key}.calibration_due"),
                &Json::from(due),
            );
        }
    }
}

/// The groups and subtests a phase ran in, outermost first: its `sequence`, or its subtest
/// alone for a record read back from JSON (which has no groups).
fn sequence_names(p: &PhaseRecord) -> Vec<&str> {
    if p.sequence.is_empty() {
        p.subtest_name.iter().map(String::as_str).collect()
    } else {
        p.sequence
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect()
    }
}

/// A sequence's path: its names joined by `/` (a `/` in a name becomes `_`).
fn sequence_path(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| n.replace('/', "_"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Each group and subtest once (a parent before its children, as v2 wants), in the order its
/// first phase ran, with the worst outcome of its phases.
fn sequences(phases: &[PhaseRecord]) -> Option<Vec<Sequence>> {
    let mut out: Vec<Sequence> = Vec::new();
    let rank = |o: &str| {
        ["SKIP", "PASS", "FAIL", "ERROR"]
            .iter()
            .position(|x| *x == o)
    };
    for p in phases {
        let outcome = match p.outcome {
            CorePhaseOutcome::Error => "ERROR",
            CorePhaseOutcome::Fail => "FAIL",
            CorePhaseOutcome::Skip => "SKIP",
            CorePhaseOutcome::Pass => "PASS",
        };
        let names = sequence_names(p);
        for depth in 1..=names.len() {
            let path = sequence_path(&names[..depth]);
            match out.iter_mut().find(|s| s.path == path) {
                Some(s) => {
                    if rank(outcome) > rank(&s.outcome) {
                        s.outcome = outcome.to_owned();
                    }
                    s.ended_at = Some(time(p.end_time_millis));
                }
                None => out.push(Sequence {
                    path,
                    name: names[depth - 1].to_owned(),
                    outcome: outcome.to_owned(),
                    started_at: Some(time(p.start_time_millis)),
                    ended_at: Some(time(p.end_time_millis)),
                }),
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn phase(p: &PhaseRecord) -> Phase {
    let outcome = match p.outcome {
        CorePhaseOutcome::Pass => PhaseOutcome::Pass,
        CorePhaseOutcome::Fail => PhaseOutcome::Fail,
        CorePhaseOutcome::Skip => PhaseOutcome::Skip,
        CorePhaseOutcome::Error => PhaseOutcome::Error,
    };
    let reason = match &p.result {
        PhaseExecution::Error {
            exc_type, exc_val, ..
        } => Some(format!("{exc_type}: {exc_val}")),
        PhaseExecution::Timeout => Some("the phase timed out".to_owned()),
        PhaseExecution::Aborted => Some("the operator aborted the test".to_owned()),
        _ => None,
    };
    let docstring = match (&p.codeinfo.docstring, reason) {
        (Some(doc), Some(reason)) => Some(format!("{doc}\n\n{reason}")),
        (doc, reason) => reason.or_else(|| doc.clone()),
    };
    Phase {
        name: p.name.clone(),
        outcome,
        started_at: time(p.start_time_millis),
        ended_at: time(p.end_time_millis.max(p.start_time_millis)),
        docstring,
        measurements: Some(p.measurements.iter().map(measurement).collect()),
        retry_count: p.attempt.saturating_sub(1),
        sequence_path: Some(sequence_path(&sequence_names(p))).filter(|s| !s.is_empty()),
    }
}

fn suffix(unit: Option<&tofu_core::Unit>) -> Option<String> {
    unit.and_then(|u| u.suffix())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn finite(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

fn measurement(m: &MeasurementRecord) -> Measurement {
    let outcome = match m.outcome {
        CoreMeasurementOutcome::Pass => Outcome::Pass,
        CoreMeasurementOutcome::Fail => Outcome::Fail,
        _ => Outcome::Unset,
    };
    let mut out = Measurement {
        name: m.name().to_owned(),
        outcome,
        measured_value: None,
        units: None,
        validators: None,
        aggregations: None,
        x_axis: None,
        y_axis: None,
        docstring: m.decl.docstring.clone(),
    };
    match &m.measured_value {
        Some(Value::Columns(columns)) if m.decl.kind == ValueKind::MultiDim => {
            sweep(m, columns, &mut out);
        }
        value => {
            // NaN and infinities have no JSON form: left out (the measurement has failed anyway).
            out.measured_value = value.as_ref().map(scalar).filter(|j| !j.is_null());
            out.units = suffix(m.units()).map(Units::Single);
            let validators: Vec<Validator> = m
                .validators()
                .iter()
                .flat_map(|v| validators(v, value.as_ref()))
                .collect();
            out.validators = (!validators.is_empty()).then_some(validators);
        }
    }
    out
}

fn scalar(value: &Value) -> Json {
    match value {
        Value::Number(v) => finite(*v),
        Value::Text(s) => Json::String(s.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Json(j) => j.clone(),
        Value::Columns(c) => Json::Array(
            c.rows()
                .map(|r| r.into_iter().map(finite).collect())
                .collect(),
        ),
        _ => Json::Null,
    }
}

/// A sweep as axes (one swept coordinate, finite points), else as rows.
fn sweep(m: &MeasurementRecord, columns: &tofu_core::value::Columns, out: &mut Measurement) {
    let all_finite = columns.values().iter().all(|v| v.is_finite())
        && (0..columns.dimension_count()).all(|i| {
            columns
                .dimension(i)
                .is_some_and(|d| d.iter().all(|v| v.is_finite()))
        });
    let x = columns.dimension(0);
    if columns.dimension_count() == 1
        && all_finite
        && let Some(x) = x
    {
        let dimension = m.decl.dimensions.first();
        let y = columns.values().to_vec();
        let mut axis_validators = Vec::new();
        let mut aggregations = Vec::new();
        for v in m.validators() {
            let inner = match v {
                CoreValidator::AllValues(inner) => inner.as_ref(),
                other => other,
            };
            match inner {
                CoreValidator::InRange {
                    minimum, maximum, ..
                } if minimum != maximum => {
                    if let Some(min) = minimum {
                        aggregations.push(extreme("min", &y, ">=", min.value()));
                    }
                    if let Some(max) = maximum {
                        aggregations.push(extreme("max", &y, "<=", max.value()));
                    }
                }
                _ => axis_validators.push(Validator {
                    expression: Some(v.to_string()),
                    outcome: Some(checked(v, &Value::Columns(columns.clone()))),
                    ..Validator::default()
                }),
            }
        }
        out.x_axis = Some(Axis {
            data: x.to_vec(),
            units: dimension.and_then(|d| suffix(Some(&d.unit))),
            description: dimension
                .map(|d| d.description.clone())
                .filter(|d| !d.is_empty()),
            validators: None,
            aggregations: None,
        });
        out.y_axis = Some(vec![Axis {
            data: y,
            units: suffix(m.units()),
            description: m.decl.docstring.clone(),
            validators: (!axis_validators.is_empty()).then_some(axis_validators),
            aggregations: (!aggregations.is_empty()).then_some(aggregations),
        }]);
    } else {
        out.measured_value = Some(scalar(&Value::Columns(columns.clone())));
        let mut units: Vec<String> = m
            .decl
            .dimensions
            .iter()
            .map(|d| suffix(Some(&d.unit)).unwrap_or_default())
            .collect();
        units.push(suffix(m.units()).unwrap_or_default());
        out.units = Some(Units::Columns(units));
        let validators: Vec<Validator> = m
            .validators()
            .iter()
            .map(|v| Validator {
                expression: Some(v.to_string()),
                outcome: Some(checked(v, &Value::Columns(columns.clone()))),
                ..Validator::default()
            })
            .collect();
        out.validators = (!validators.is_empty()).then_some(validators);
    }
}

/// The `min` or `max` of a series, checked against a limit that applies to every point.
fn extreme(kind: &str, data: &[f64], operator: &str, limit: f64) -> Aggregation {
    let value = if kind == "min" {
        data.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        data.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    let value = (!data.is_empty()).then_some(value);
    let outcome = value.map_or(Outcome::Unset, |v| compare(v, operator, limit));
    Aggregation {
        kind: kind.to_owned(),
        outcome: Some(outcome),
        value: value.map(finite),
        unit: None,
        validators: Some(vec![Validator {
            operator: Some(operator.to_owned()),
            expected_value: Some(finite(limit)),
            outcome: Some(outcome),
            expression: None,
            is_decisive: None,
        }]),
    }
}

fn compare(v: f64, operator: &str, limit: f64) -> Outcome {
    Outcome::from_bool(match operator {
        ">=" => v >= limit,
        "<=" => v <= limit,
        ">" => v > limit,
        "<" => v < limit,
        _ => v == limit,
    })
}

/// A validator's verdict on a value (a custom check that panics is UNSET).
fn checked(v: &CoreValidator, value: &Value) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| v.check(value).pass))
        .map_or(Outcome::Unset, Outcome::from_bool)
}

fn numeric(operator: &str, limit: f64, value: Option<&Value>, decisive: bool) -> Validator {
    let outcome = match value {
        None => Outcome::Unset,
        Some(v) => v
            .as_f64()
            .map_or(Outcome::Fail, |v| compare(v, operator, limit)),
    };
    Validator {
        operator: Some(operator.to_owned()),
        expected_value: Some(finite(limit)),
        outcome: Some(outcome),
        expression: None,
        is_decisive: (!decisive).then_some(false),
    }
}

/// One tofu validator as v2's validators, each with its outcome on `value` (UNSET without one).
fn validators(v: &CoreValidator, value: Option<&Value>) -> Vec<Validator> {
    let verdict = |value: Option<&Value>| value.map_or(Outcome::Unset, |value| checked(v, value));
    match v {
        CoreValidator::InRange {
            minimum,
            maximum,
            marginal_minimum,
            marginal_maximum,
        } => {
            if let (Some(min), Some(max)) = (minimum, maximum)
                && min == max
            {
                return vec![numeric("==", min.value(), value, true)];
            }
            let mut out = Vec::new();
            if let Some(min) = minimum {
                out.push(numeric(">=", min.value(), value, true));
            }
            if let Some(max) = maximum {
                out.push(numeric("<=", max.value(), value, true));
            }
            if let Some(m) = marginal_minimum {
                out.push(numeric(">", m.value(), value, false));
            }
            if let Some(m) = marginal_maximum {
                out.push(numeric("<", m.value(), value, false));
            }
            out
        }
        CoreValidator::Equals(expected) => vec![Validator {
            operator: Some("==".into()),
            expected_value: Some(scalar(expected)),
            outcome: Some(verdict(value)),
            ..Validator::default()
        }],
        CoreValidator::EqualsText(expected) => vec![Validator {
            operator: Some("==".into()),
            expected_value: Some(Json::String(expected.clone())),
            outcome: Some(verdict(value)),
            ..Validator::default()
        }],
        CoreValidator::MatchesRegex(re) => vec![Validator {
            operator: Some("matches".into()),
            expected_value: Some(Json::String(re.as_str().to_owned())),
            outcome: Some(verdict(value)),
            ..Validator::default()
        }],
        CoreValidator::WithinPercent {
            marginal_percent, ..
        } => {
            let text = v.to_string();
            let mut out = Vec::new();
            if let (Some(low), Some(high)) = (v.lower_limit(), v.upper_limit()) {
                for (operator, limit) in [(">=", low), ("<=", high)] {
                    let mut validator = numeric(operator, limit, value, true);
                    validator.expression = Some(text.clone());
                    out.push(validator);
                }
            }
            if let (Some(m), CoreValidator::WithinPercent { expected, .. }) = (marginal_percent, v)
            {
                let e = expected.value();
                let band = (e * m.value() / 100.0).abs();
                out.push(numeric(">", e - band, value, false));
                out.push(numeric("<", e + band, value, false));
            }
            out
        }
        _ => vec![Validator {
            expression: Some(match v {
                CoreValidator::Custom(c) => c.name().to_owned(),
                other => other.to_string(),
            }),
            outcome: Some(verdict(value)),
            ..Validator::default()
        }],
    }
}

/// A v1 request as a v2 one: for runs queued before v2 was turned on (or recovered from a
/// journal), which hold only the v1 body. Limits come back as `>=`/`<=` validators, each
/// validator's text as an expression; the rest as v1 has it.
pub fn from_v1(run: &crate::CreateRun) -> CreateRun {
    use crate::types::{MeasurementOutcome as V1M, PhaseOutcome as V1P};
    let started = run.started_at.unwrap_or_default();
    let ended =
        started + chrono::Duration::from_std(run.duration.unwrap_or_default()).unwrap_or_default();
    let outcome = if run.run_passed {
        RunOutcome::Pass
    } else {
        RunOutcome::Fail
    };
    let unit = &run.unit_under_test;
    let mut out = CreateRun::new(
        outcome,
        run.procedure_id
            .clone()
            .or_else(|| run.procedure_name.clone())
            .unwrap_or_default(),
        unit.serial_number.clone(),
        started,
        ended,
    );
    out.procedure_version = run.procedure_version.clone();
    out.part_number = unit.part_number.clone();
    out.revision_number = unit.revision.clone();
    out.batch_number = unit.batch_number.clone();
    out.sub_units = run
        .sub_units
        .as_ref()
        .map(|s| s.iter().map(|u| u.serial_number.clone()).collect());
    out.phases = run.phases.as_ref().map(|phases| {
        let mut attempts: std::collections::HashMap<&str, u32> = Default::default();
        phases
            .iter()
            .map(|p| {
                let attempt = attempts.entry(p.name.as_str()).or_default();
                let retry_count = *attempt;
                *attempt += 1;
                Phase {
                    name: p.name.clone(),
                    outcome: match p.outcome {
                        V1P::Pass => PhaseOutcome::Pass,
                        V1P::Fail => PhaseOutcome::Fail,
                        V1P::Skip => PhaseOutcome::Skip,
                        _ => PhaseOutcome::Error,
                    },
                    started_at: time(p.start_time_millis),
                    ended_at: time(p.end_time_millis.max(p.start_time_millis)),
                    docstring: p.docstring.clone(),
                    measurements: p.measurements.as_ref().map(|ms| {
                        ms.iter()
                            .map(|m| {
                                let mut validators = Vec::new();
                                if let Some(low) = m.lower_limit {
                                    validators.push(v1_limit(">=", low, m));
                                }
                                if let Some(high) = m.upper_limit {
                                    validators.push(v1_limit("<=", high, m));
                                }
                                if validators.is_empty() {
                                    validators.extend(m.validators.iter().flatten().map(|text| {
                                        Validator {
                                            expression: Some(text.clone()),
                                            ..Validator::default()
                                        }
                                    }));
                                }
                                Measurement {
                                    name: m.name.clone(),
                                    outcome: match m.outcome {
                                        V1M::Pass => Outcome::Pass,
                                        V1M::Fail => Outcome::Fail,
                                        _ => Outcome::Unset,
                                    },
                                    measured_value: m.measured_value.clone(),
                                    units: m.units.clone(),
                                    validators: (!validators.is_empty()).then_some(validators),
                                    aggregations: None,
                                    x_axis: None,
                                    y_axis: None,
                                    docstring: m.docstring.clone(),
                                }
                            })
                            .collect()
                    }),
                    retry_count,
                    sequence_path: None,
                }
            })
            .collect()
    });
    out.logs = run.logs.as_ref().map(|logs| {
        logs.iter()
            .map(|l| Log {
                level: l.level,
                timestamp: l.timestamp,
                message: l.message.clone(),
                source_file: if l.source_file.is_empty() {
                    "unknown".to_owned()
                } else {
                    l.source_file.clone()
                },
                line_number: l.line_number,
            })
            .collect()
    });
    out
}

fn v1_limit(operator: &str, limit: f64, m: &crate::types::Measurement) -> Validator {
    let value = m.measured_value.as_ref().and_then(Json::as_f64);
    Validator {
        operator: Some(operator.to_owned()),
        expected_value: Some(finite(limit)),
        outcome: Some(value.map_or(Outcome::Unset, |v| compare(v, operator, limit))),
        expression: None,
        is_decisive: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::json;
    use tofu_core::declare::{
        Spec, at_most, custom, dimensions, equals, in_range, matches_regex, within_percent,
    };
    use tofu_core::measurement::Sweep;
    use tofu_core::phase::MeasurementAccessError;
    use tofu_core::unit::{SECOND, VOLT};
    use tofu_core::{Phase, PhaseResult, Test};

    use super::*;

    fn record(phases: Vec<Phase>) -> TestRecord {
        Test::new("FVT1")
            .phases(phases)
            .without_json_output()
            .quiet()
            .execute(|| "SN-MAP")
            .record
    }

    /// The v2 JSON of a phase measuring one number `value` declared with `spec`.
    fn number<C>(spec: Spec<C>, value: f64) -> Json
    where
        f64: tofu_core::measurement::Kind + tofu_core::declare::Accepts<C>,
    {
        let phase = Phase::dynamic("p").measure::<f64, _>("m", spec).run(
            move |_, m| -> Result<(), MeasurementAccessError> {
                m.get::<f64>("m")?.set(value);
                Ok(())
            },
        );
        let run = create_run(&record(vec![phase]));
        serde_json::to_value(&run.phases.unwrap()[0].measurements.as_ref().unwrap()[0]).unwrap()
    }

    #[test]
    fn each_limit_is_a_validator_with_its_own_outcome() {
        let cases: Vec<(Json, Json, &str)> = vec![
            // A value in the marginal band: the band's validator fails, but it doesn't decide.
            (
                number(in_range(3.0, 3.6).marginal(3.05, 3.55), 3.02),
                json!([
                    {"operator": ">=", "expected_value": 3.0, "outcome": "PASS"},
                    {"operator": "<=", "expected_value": 3.6, "outcome": "PASS"},
                    {"operator": ">", "expected_value": 3.05, "outcome": "FAIL", "is_decisive": false},
                    {"operator": "<", "expected_value": 3.55, "outcome": "PASS", "is_decisive": false},
                ]),
                "PASS",
            ),
            (
                number(in_range(3.0, 3.6), 3.7),
                json!([
                    {"operator": ">=", "expected_value": 3.0, "outcome": "PASS"},
                    {"operator": "<=", "expected_value": 3.6, "outcome": "FAIL"},
                ]),
                "FAIL",
            ),
            (
                number(at_most(5), 4.0),
                json!([{"operator": "<=", "expected_value": 5.0, "outcome": "PASS"}]),
                "PASS",
            ),
            (
                number(equals(3), 3.0),
                json!([{"operator": "==", "expected_value": 3.0, "outcome": "PASS"}]),
                "PASS",
            ),
            (
                number(within_percent(10, 5).marginal_percent(2), 10.3),
                json!([
                    {"operator": ">=", "expected_value": 9.5, "outcome": "PASS",
                     "expression": "'x' is within 5% of 10. Marginal: 2% of 10"},
                    {"operator": "<=", "expected_value": 10.5, "outcome": "PASS",
                     "expression": "'x' is within 5% of 10. Marginal: 2% of 10"},
                    {"operator": ">", "expected_value": 9.8, "outcome": "PASS", "is_decisive": false},
                    {"operator": "<", "expected_value": 10.2, "outcome": "FAIL", "is_decisive": false},
                ]),
                "PASS",
            ),
            (
                number(custom("is even", |x: &f64| x % 2.0 == 0.0), 3.0),
                json!([{"outcome": "FAIL", "expression": "is even"}]),
                "FAIL",
            ),
            (
                // NaN has no JSON form: the value is left out, every limit fails.
                number(in_range(0, 1), f64::NAN),
                json!([
                    {"operator": ">=", "expected_value": 0.0, "outcome": "FAIL"},
                    {"operator": "<=", "expected_value": 1.0, "outcome": "FAIL"},
                ]),
                "FAIL",
            ),
        ];
        for (i, (m, validators, outcome)) in cases.into_iter().enumerate() {
            assert_eq!(m["validators"], validators, "case {i}: {m}");
            assert_eq!(m["outcome"], outcome, "case {i}: {m}");
        }
    }

    #[test]
    fn text_limits_and_sweeps_map_as_v2_expresses_them() {
        let phase = Phase::dynamic("p")
            .measure::<String, _>("fw", equals("1.2.3"))
            .measure::<String, _>("sn", matches_regex("^PCB"))
            .measure::<Sweep<2>, _>("map", dimensions([SECOND, VOLT]).units(VOLT))
            .measure::<Sweep<1>, _>("nan_sweep", dimensions([SECOND]).each(in_range(0, 10)))
            .run(|_, m| -> Result<(), MeasurementAccessError> {
                m.get::<String>("fw")?.set("1.2.4");
                m.get::<String>("sn")?.set("PCB01");
                let mut map = m.get::<Sweep<2>>("map")?;
                map.push([0.0, 1.0], 2.0);
                let mut sweep = m.get::<Sweep<1>>("nan_sweep")?;
                sweep.push([0.0], 1.0);
                sweep.push([1.0], f64::INFINITY);
                Ok(())
            });
        let run = create_run(&record(vec![phase]));
        let m =
            serde_json::to_value(run.phases.unwrap()[0].measurements.as_ref().unwrap()).unwrap();
        assert_eq!(
            m[0]["validators"],
            json!([{"operator": "==", "expected_value": "1.2.3", "outcome": "FAIL"}])
        );
        assert_eq!(
            m[1]["validators"],
            json!([{"operator": "matches", "expected_value": "^PCB", "outcome": "PASS"}])
        );
        // Two swept coordinates: rows, one unit per column.
        assert_eq!(m[2]["measured_value"], json!([[0.0, 1.0, 2.0]]));
        assert_eq!(m[2]["units"], json!(["s", "V", "V"]));
        assert!(m[2].get("x_axis").is_none());
        // A point that is not a finite number: rows too (axes take numbers only).
        assert_eq!(m[3]["measured_value"], json!([[0.0, 1.0], [1.0, null]]));
        assert_eq!(m[3]["validators"][0]["outcome"], "FAIL");
    }

    #[test]
    fn every_attempt_is_a_phase_with_its_retry_count() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let flaky = Phase::dynamic("flaky").run(move |_, _| {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                PhaseResult::Repeat
            } else {
                PhaseResult::Continue
            }
        });
        let run = create_run(&record(vec![flaky]));
        let phases = run.phases.unwrap();
        let attempts: Vec<(&str, u32)> = phases
            .iter()
            .map(|p| (p.name.as_str(), p.retry_count))
            .collect();
        assert_eq!(attempts, [("flaky", 0), ("flaky", 1), ("flaky", 2)]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn metadata_instruments_and_the_limits_file_go_where_v2_takes_them() {
        let mut record = record(vec![Phase::dynamic("p").run(|_, _| PhaseResult::Continue)]);
        let extra = &mut record.metadata.extra;
        extra.insert(
            "instruments".into(),
            json!([
                {"name": "dmm", "address": "TCPIP::127.0.0.1::5025::SOCKET",
                 "idn": "TOFU SIM,DMM-6500,DMM000421,1.7.2", "calibration_due": "2027-03-31"},
                {"name": "psu", "address": "ASRL/dev/ttyUSB0::INSTR", "connected": false},
            ]),
        );
        extra.insert(
            "limits_file".into(),
            json!({"path": "limits.toml", "sha1": "0123abcd", "parameters": {"settle_ms": 5}}),
        );
        extra.insert("fixture id/slot".into(), json!("F-7"));
        extra.insert("cal".into(), json!({"by": "lab", "ok": true}));
        extra.insert("list".into(), json!([1, 2]));
        extra.insert("nothing".into(), Json::Null);
        extra.insert("operator".into(), json!("ann@example.invalid"));
        let run = create_run(&record);
        let metadata = Json::Object(run.metadata.clone().unwrap());
        assert_eq!(
            metadata,
            json!({
                "cal.by": "lab",
                "cal.ok": true,
                "fixture_id_slot": "F-7",
                "list": "[1,2]",
                "instrument.dmm": "TOFU SIM,DMM-6500,DMM000421,1.7.2",
                "instrument.dmm.calibration_due": "2027-03-31",
                "instrument.psu": "ASRL/dev/ttyUSB0::INSTR",
                "station_id": record.station_id,
                "tofu_version": record.metadata.tofu_version,
            })
        );
        assert_eq!(run.operated_by.as_deref(), Some("ann@example.invalid"));
        assert_eq!(
            serde_json::to_value(run.config).unwrap(),
            json!([{"key": "limits_file.path", "value": "limits.toml"},
                   {"key": "limits_file.sha1", "value": "0123abcd"}])
        );
        // At most 50 keys, each at most 40 characters.
        for i in 0..80 {
            record
                .metadata
                .extra
                .insert(format!("k{i:02}-{}", "x".repeat(50)), json!(i));
        }
        let metadata = create_run(&record).metadata.unwrap();
        assert_eq!(metadata.len(), 50);
        assert!(metadata.keys().all(|k| k.len() <= 40));
    }

    #[test]
    fn a_v1_request_becomes_a_v2_one_with_its_limits_as_validators() {
        let phase = Phase::dynamic("p")
            .measure::<f64, _>("v", in_range(1, 2))
            .run(|_, m| -> Result<(), MeasurementAccessError> {
                m.get::<f64>("v")?.set(2.5);
                Ok(())
            });
        let record = record(vec![phase]);
        let v1 = crate::uploader::create_run(&record);
        let v2 = from_v1(&v1);
        let direct = create_run(&record);
        assert_eq!(
            (v2.outcome, &v2.serial_number, v2.started_at, v2.ended_at),
            (
                direct.outcome,
                &direct.serial_number,
                direct.started_at,
                direct.ended_at
            )
        );
        let m = &v2.phases.unwrap()[0].measurements.clone().unwrap()[0];
        assert_eq!(
            serde_json::to_value(&m.validators).unwrap(),
            json!([{"operator": ">=", "expected_value": 1.0, "outcome": "PASS"},
                   {"operator": "<=", "expected_value": 2.0, "outcome": "FAIL"}])
        );
    }
}
