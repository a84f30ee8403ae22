//! What the test server checks of a `POST /api/v2/runs` body: the official Python client's
//! requests (`fixtures/tofupilot/captured/v2_*.json`) and the documented v2 fields — which keys
//! exist at each level, their types, required fields, optional fields absent rather than
//! `null` (the official client never sends `null` for them), times as the client writes them
//! (`2025-01-20T15:32:06.058000Z`), upper-case outcomes, metadata keys and values as v2 takes
//! them, and the links between fields (`slot_key` needs `execution_id`, a phase's
//! `sequence_path` names one of `sequences`).

use serde_json::{Map, Value};

/// The time format of the captures: UTC, six decimals, `Z`.
pub fn is_capture_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    NonEmptyText,
    Time,
    Int,
    Number,
    Bool,
    Texts,
    Scalar,
    Json,
    Units,
    Numbers,
    Enum(&'static [&'static str]),
    List(fn(&Value, &str, &mut Vec<String>)),
    Object(fn(&Value, &str, &mut Vec<String>)),
    Metadata,
}

const RUN_OUTCOMES: &[&str] = &["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"];
const PHASE_OUTCOMES: &[&str] = &["PASS", "FAIL", "SKIP", "ERROR"];
const OUTCOMES: &[&str] = &["PASS", "FAIL", "UNSET"];
const SEQUENCE_OUTCOMES: &[&str] = &["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED", "SKIP"];
const LEVELS: &[&str] = &["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const OPERATORS: &[&str] = &[
    ">", ">=", "<", "<=", "==", "!=", "matches", "in", "not in", "range",
];

type Fields = &'static [(&'static str, Kind, bool)];

const RUN: Fields = &[
    ("outcome", Kind::Enum(RUN_OUTCOMES), true),
    ("procedure_id", Kind::NonEmptyText, true),
    ("started_at", Kind::Time, true),
    ("ended_at", Kind::Time, true),
    ("serial_number", Kind::NonEmptyText, true),
    ("procedure_version", Kind::Text, false),
    ("operated_by", Kind::Text, false),
    ("part_number", Kind::Text, false),
    ("revision_number", Kind::Text, false),
    ("batch_number", Kind::Text, false),
    ("sub_units", Kind::Texts, false),
    ("docstring", Kind::Text, false),
    ("phases", Kind::List(phase), false),
    ("logs", Kind::List(log), false),
    ("metadata", Kind::Metadata, false),
    ("unit_metadata", Kind::Metadata, false),
    ("client_run_ref", Kind::NonEmptyText, false),
    ("execution_id", Kind::NonEmptyText, false),
    ("slot_key", Kind::NonEmptyText, false),
    ("slot_name", Kind::Text, false),
    ("sequences", Kind::List(sequence), false),
    ("config", Kind::List(config), false),
];

const PHASE: Fields = &[
    ("name", Kind::NonEmptyText, true),
    ("outcome", Kind::Enum(PHASE_OUTCOMES), true),
    ("started_at", Kind::Time, true),
    ("ended_at", Kind::Time, true),
    ("docstring", Kind::Text, false),
    ("measurements", Kind::List(measurement), false),
    ("retry_count", Kind::Int, false),
    ("sequence_path", Kind::NonEmptyText, false),
];

const MEASUREMENT: Fields = &[
    ("name", Kind::NonEmptyText, true),
    ("outcome", Kind::Enum(OUTCOMES), true),
    ("measured_value", Kind::Json, false),
    ("units", Kind::Units, false),
    ("validators", Kind::List(validator), false),
    ("aggregations", Kind::List(aggregation), false),
    ("x_axis", Kind::Object(axis), false),
    ("y_axis", Kind::List(axis), false),
    ("lower_limit", Kind::Number, false),
    ("upper_limit", Kind::Number, false),
    ("docstring", Kind::Text, false),
];

const VALIDATOR: Fields = &[
    ("operator", Kind::Enum(OPERATORS), false),
    ("expected_value", Kind::Json, false),
    ("outcome", Kind::Enum(OUTCOMES), false),
    ("expression", Kind::Text, false),
    ("is_decisive", Kind::Bool, false),
];

const AGGREGATION: Fields = &[
    ("type", Kind::NonEmptyText, true),
    ("value", Kind::Scalar, false),
    ("unit", Kind::Text, false),
    ("outcome", Kind::Enum(OUTCOMES), false),
    ("validators", Kind::List(validator), false),
];

const AXIS: Fields = &[
    ("data", Kind::Numbers, true),
    ("units", Kind::Text, false),
    ("name", Kind::Text, false),
    ("description", Kind::Text, false),
    ("validators", Kind::List(validator), false),
    ("aggregations", Kind::List(aggregation), false),
];

const LOG: Fields = &[
    ("level", Kind::Enum(LEVELS), true),
    ("timestamp", Kind::Time, true),
    ("message", Kind::Text, true),
    ("source_file", Kind::Text, true),
    ("line_number", Kind::Int, true),
];

const SEQUENCE: Fields = &[
    ("path", Kind::NonEmptyText, true),
    ("name", Kind::NonEmptyText, true),
    ("outcome", Kind::Enum(SEQUENCE_OUTCOMES), true),
    ("source", Kind::Text, false),
    ("started_at", Kind::Time, false),
    ("ended_at", Kind::Time, false),
];

const CONFIG: Fields = &[
    ("key", Kind::NonEmptyText, true),
    ("value", Kind::Scalar, true),
    ("variable_id", Kind::Text, false),
    ("version", Kind::Text, false),
    ("source", Kind::Text, false),
];

fn fields(value: &Value, at: &str, fields: Fields, problems: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        problems.push(format!("{at}: not an object"));
        return;
    };
    for key in object.keys() {
        if !fields.iter().any(|(name, _, _)| name == key) {
            problems.push(format!("{at}.{key}: not a v2 field"));
        }
    }
    for (name, kind, required) in fields {
        match object.get(*name) {
            None if *required => problems.push(format!("{at}.{name}: required, absent")),
            None => {}
            Some(Value::Null) => problems.push(format!(
                "{at}.{name}: null (the official client leaves an unset field out)"
            )),
            Some(v) => check(v, &format!("{at}.{name}"), *kind, problems),
        }
    }
}

fn check(v: &Value, at: &str, kind: Kind, problems: &mut Vec<String>) {
    let ok = match kind {
        Kind::Text => v.is_string(),
        Kind::NonEmptyText => v.as_str().is_some_and(|s| !s.is_empty()),
        Kind::Time => v.as_str().is_some_and(is_capture_time),
        Kind::Int => v.is_u64(),
        Kind::Number => v.is_number(),
        Kind::Bool => v.is_boolean(),
        Kind::Texts => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::Scalar => v.is_string() || v.is_number() || v.is_boolean(),
        Kind::Json => true,
        Kind::Units => {
            v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }
        Kind::Numbers => v.as_array().is_some_and(|a| a.iter().all(Value::is_number)),
        Kind::Enum(values) => v.as_str().is_some_and(|s| values.contains(&s)),
        Kind::List(item) => match v.as_array() {
            Some(items) => {
                for (i, x) in items.iter().enumerate() {
                    item(x, &format!("{at}[{i}]"), problems);
                }
                true
            }
            None => false,
        },
        Kind::Object(item) => {
            item(v, at, problems);
            true
        }
        Kind::Metadata => match v.as_object() {
            Some(map) => {
                metadata(map, at, problems);
                true
            }
            None => false,
        },
    };
    if !ok {
        problems.push(format!("{at}: {v} is not what v2 takes here"));
    }
}

fn metadata(map: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    if map.len() > 50 {
        problems.push(format!("{at}: {} keys (at most 50)", map.len()));
    }
    for (key, value) in map {
        let key_ok = (1..=40).contains(&key.len())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:+-".contains(c));
        if !key_ok {
            problems.push(format!(
                "{at}: key {key:?} doesn't fit ^[a-zA-Z0-9_.:+-]{{1,40}}$"
            ));
        }
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            problems.push(format!(
                "{at}.{key}: {value} is not a string, number or boolean"
            ));
        }
    }
}

fn phase(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, PHASE, p);
}
fn measurement(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, MEASUREMENT, p);
}
fn validator(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, VALIDATOR, p);
}
fn aggregation(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, AGGREGATION, p);
}
fn axis(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, AXIS, p);
}
fn log(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, LOG, p);
}
fn sequence(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, SEQUENCE, p);
}
fn config(v: &Value, at: &str, p: &mut Vec<String>) {
    fields(v, at, CONFIG, p);
}

/// What is wrong with a `POST /api/v2/runs` body (empty when nothing is).
pub fn run_create_problems(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    fields(body, "run", RUN, &mut problems);
    if body.get("slot_key").is_some() && body.get("execution_id").is_none() {
        problems.push("run.slot_key: needs execution_id".into());
    }
    if body.get("slot_name").is_some() && body.get("slot_key").is_none() {
        problems.push("run.slot_name: needs slot_key".into());
    }
    let paths: Vec<&str> = body["sequences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["path"].as_str())
        .collect();
    for (i, phase) in body["phases"].as_array().into_iter().flatten().enumerate() {
        if let Some(path) = phase["sequence_path"].as_str()
            && !paths.contains(&path)
        {
            problems.push(format!(
                "run.phases[{i}].sequence_path: {path:?} is not one of the sequences"
            ));
        }
    }
    problems
}
