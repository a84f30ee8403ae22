//! Rebuilding a record from a run's journal (see `journal.rs`): a pure function of its lines.

use serde_json::{Map, Value, json};

use crate::error_code::ErrorCode;

/// The record (OpenHTF's JSON form) a journal's lines make, and the outputs already done.
///
/// A run that ended has its own outcome; one whose process died is ERROR, with a detail saying
/// during (or after) which phase, and every phase that ended before it.
pub(crate) fn rebuild(lines: &[Value]) -> Result<(Value, Vec<String>), String> {
    let header = lines
        .first()
        .and_then(|l| l.get("start"))
        .ok_or("its first line is not a journal header")?;
    let start = header
        .get("start_time_millis")
        .and_then(Value::as_i64)
        .ok_or("its header has no start_time_millis")?;
    let mut run = Replay {
        dut_id: header.get("dut_id").cloned().unwrap_or(Value::Null),
        start,
        last_time: start,
        phases: Vec::new(),
        subtests: Vec::new(),
        logs: Vec::new(),
        done: Vec::new(),
        end: None,
        running: None,
        last_ended: None,
    };
    for line in &lines[1..] {
        run.line(line);
    }
    let (outcome, details, marginal, end_time) = run.outcome();
    let mut record = Map::new();
    record.insert("dut_id".into(), run.dut_id);
    record.insert("start_time_millis".into(), json!(run.start));
    record.insert("end_time_millis".into(), json!(end_time));
    record.insert("outcome".into(), outcome);
    record.insert("outcome_details".into(), details);
    record.insert("marginal".into(), marginal);
    record.insert(
        "metadata".into(),
        header.get("metadata").cloned().unwrap_or(json!({})),
    );
    record.insert("phases".into(), Value::Array(run.phases));
    record.insert("subtests".into(), Value::Array(run.subtests));
    for empty in ["branches", "diagnosers", "diagnoses"] {
        record.insert(empty.into(), json!([]));
    }
    record.insert("log_records".into(), Value::Array(run.logs));
    record.insert(
        "station_id".into(),
        header.get("station_id").cloned().unwrap_or(Value::Null),
    );
    record.insert(
        "code_info".into(),
        json!({"name": "", "docstring": null, "sourcecode": ""}),
    );
    if let Some(slot) = header.get("slot").filter(|s| !s.is_null()) {
        record.insert("slot".into(), slot.clone());
    }
    Ok((Value::Object(record), run.done))
}

/// What a journal's lines say of the run, read one after the other.
struct Replay {
    dut_id: Value,
    start: i64,
    /// The latest time a line gives.
    last_time: i64,
    phases: Vec<Value>,
    subtests: Vec<Value>,
    logs: Vec<Value>,
    /// The outputs that had the record.
    done: Vec<String>,
    /// The run's end, if it was written.
    end: Option<Value>,
    /// The phase attempt started and not yet ended: (name, attempt).
    running: Option<(String, u64)>,
    last_ended: Option<String>,
}

impl Replay {
    fn line(&mut self, line: &Value) {
        let time = |v: &Value, key: &str| v.get(key).and_then(Value::as_i64).unwrap_or(0);
        if let Some(event) = line.get("event") {
            self.last_time = self.last_time.max(time(event, "time_millis"));
            match event.get("type").and_then(Value::as_str) {
                Some("unit_identified") => {
                    if let Some(serial) = event.get("serial_number") {
                        self.dut_id = serial.clone();
                    }
                }
                Some("phase_started") => {
                    let name = event.get("name").and_then(Value::as_str).unwrap_or("?");
                    let attempt = event.get("attempt").and_then(Value::as_u64).unwrap_or(1);
                    self.running = Some((name.to_owned(), attempt));
                }
                Some("log") => self.logs.push(log_record(event)),
                _ => {}
            }
        } else if let Some(phase) = line.get("phase") {
            self.last_time = self.last_time.max(time(phase, "end_time_millis"));
            self.running = None;
            self.last_ended = phase.get("name").and_then(Value::as_str).map(str::to_owned);
            self.phases.push(phase.clone());
        } else if let Some(subtest) = line.get("subtest") {
            self.subtests.push(subtest.clone());
        } else if let Some(e) = line.get("end") {
            self.end = Some(e.clone());
        } else if let Some(name) = line.get("output").and_then(Value::as_str) {
            self.done.push(name.to_owned());
        }
    }

    /// The outcome, its details, marginal and the end time: the run's own when it ended, else
    /// ERROR saying where the process ended.
    fn outcome(&mut self) -> (Value, Value, Value, i64) {
        let Some(e) = &self.end else {
            let description = match (&self.running, &self.last_ended) {
                (Some((name, 1)), _) => {
                    format!("the process ended during phase {name}; the run was recovered from its journal")
                }
                (Some((name, attempt)), _) => format!(
                    "the process ended during phase {name} (attempt {attempt}); the run was recovered from its journal"
                ),
                (None, Some(name)) => format!(
                    "the process ended after phase {name}; the run was recovered from its journal"
                ),
                (None, None) => "the process ended before the first phase ended; the run was recovered from its journal".to_owned(),
            };
            return (
                json!("ERROR"),
                json!([{"code": ErrorCode::ProcessEnded.as_str(), "description": description}]),
                Value::Null,
                self.last_time,
            );
        };
        if let Some(serial) = e.get("dut_id") {
            self.dut_id = serial.clone();
        }
        // The run's start as its record says it (set once its unit was known).
        if let Some(started) = e.get("start_time_millis").and_then(Value::as_i64) {
            self.start = started;
        }
        (
            e.get("outcome").cloned().unwrap_or(Value::Null),
            e.get("outcome_details").cloned().unwrap_or(json!([])),
            e.get("marginal").cloned().unwrap_or(Value::Null),
            e.get("end_time_millis")
                .and_then(Value::as_i64)
                .unwrap_or(self.last_time),
        )
    }
}

/// A `log` event's record, as the record's `log_records` hold it.
fn log_record(event: &Value) -> Value {
    let mut record = Map::new();
    for key in [
        "level",
        "logger_name",
        "source",
        "lineno",
        "timestamp_millis",
        "message",
        "phase",
    ] {
        if let Some(v) = event.get(key) {
            record.insert(key.into(), v.clone());
        }
    }
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn header() -> Value {
        json!({"start": {"journal": 1, "pid": 1, "dut_id": "UNKNOWN_DUT", "start_time_millis": 1000,
            "station_id": "st", "metadata": {"procedure_id": "FVT1"}, "slot": null}})
    }

    fn event(kind: &str, time: i64, more: Value) -> Value {
        let mut e = json!({"v": 1, "seq": 1, "slot": null, "time_millis": time, "type": kind});
        e.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        json!({"event": e})
    }

    fn phase(name: &str, end: i64) -> Value {
        json!({"phase": {"name": name, "outcome": "PASS", "end_time_millis": end}})
    }

    #[test]
    fn a_dead_run_is_error_naming_where_it_died_with_the_phases_before() {
        // (lines after the header, the description's start, phases kept, serial)
        let serial = event("unit_identified", 1001, json!({"serial_number": "SN7"}));
        let started = |name: &str, attempt: u64| {
            event(
                "phase_started",
                1002,
                json!({"name": name, "attempt": attempt}),
            )
        };
        let cases: Vec<(Vec<Value>, &str, usize, &str)> = vec![
            (
                vec![],
                "the process ended before the first phase",
                0,
                "UNKNOWN_DUT",
            ),
            (
                vec![serial.clone(), started("a", 1)],
                "the process ended during phase a;",
                0,
                "SN7",
            ),
            (
                vec![
                    serial.clone(),
                    started("a", 1),
                    phase("a", 1010),
                    started("b", 2),
                ],
                "the process ended during phase b (attempt 2)",
                1,
                "SN7",
            ),
            (
                vec![serial.clone(), started("a", 1), phase("a", 1010)],
                "the process ended after phase a",
                1,
                "SN7",
            ),
        ];
        for (lines, description, phases, dut) in cases {
            let mut all = vec![header()];
            all.extend(lines);
            let (record, done) = rebuild(&all).unwrap();
            assert_eq!(record["outcome"], "ERROR");
            assert_eq!(record["outcome_details"][0]["code"], "ProcessEnded");
            let got = record["outcome_details"][0]["description"]
                .as_str()
                .unwrap();
            assert!(got.starts_with(description), "{got}");
            assert_eq!(record["phases"].as_array().unwrap().len(), phases);
            assert_eq!(record["dut_id"], dut);
            assert!(done.is_empty());
        }
    }

    #[test]
    fn an_ended_run_keeps_its_outcome_logs_and_outputs_done() {
        let lines = vec![
            header(),
            event(
                "log",
                1003,
                json!({"level": 20, "message": "hi", "logger_name": "t",
                "source": "a.rs", "lineno": 3, "timestamp_millis": 1003}),
            ),
            phase("a", 1010),
            json!({"end": {"dut_id": "SN1", "start_time_millis": 1005, "end_time_millis": 1020, "outcome": "FAIL",
                "outcome_details": [], "marginal": null}}),
            json!({"output": "uploader"}),
        ];
        let (record, done) = rebuild(&lines).unwrap();
        assert_eq!(record["outcome"], "FAIL");
        assert_eq!(record["dut_id"], "SN1");
        assert_eq!(record["end_time_millis"], 1020);
        assert_eq!(record["start_time_millis"], 1005, "the record's own start");
        assert_eq!(record["log_records"][0]["message"], "hi");
        assert!(record["log_records"][0].get("type").is_none());
        assert_eq!(done, ["uploader"]);
    }

    #[test]
    fn a_journal_without_a_header_is_refused() {
        assert!(rebuild(&[]).is_err());
        assert!(rebuild(&[phase("a", 1)]).is_err());
    }
}
