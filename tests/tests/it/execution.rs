//! Real executions, checked through the records they write.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tofu_core::prelude::*;
use tofu_core::unit::{SECOND, VOLT};
use tofu_core::{Execution, Outcome, OutputError, TestRecord};

/// Runs `test` for `serial` with its JSON record in a fresh folder; returns the execution and
/// the record as written.
fn run(test: Test, serial: &str) -> (Execution, Json, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test.json_output(JsonOutput::to_dir(dir.path())).quiet();
    let execution = test.execute(|| serial);
    let json = read_only_record(dir.path());
    (execution, json, dir)
}

fn record_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

fn read_only_record(dir: &Path) -> Json {
    let files = record_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

fn phase<'a>(record: &'a Json, name: &str) -> &'a Json {
    record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
}

#[phase]
#[measures(voltage: f64 = in_range(3.1, 3.5).units(VOLT), note: String)]
fn sets_then_panics(m: &mut sets_then_panics::Measurements) {
    m.voltage.set(3.3);
    let probes: Vec<u32> = Vec::new();
    let _ = probes[2];
}

#[phase]
fn never_reached(test: &mut PhaseContext) {
    test.attach("x.txt", "should not run").unwrap();
}

#[test]
fn a_panicking_phase_is_an_error_and_keeps_what_it_measured() {
    let (execution, record, _dir) = run(
        Test::new("FVT1").phases([sets_then_panics, never_reached]),
        "SN-1",
    );
    assert_eq!(
        execution.exit_code(),
        ExitCode::from(tofu_core::exit::ERROR)
    );
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["outcome_details"][0]["code"], "Panic");
    assert!(
        record["outcome_details"][0]["description"]
            .as_str()
            .unwrap()
            .contains("index out of bounds")
    );
    let p = phase(&record, "sets_then_panics");
    assert_eq!(p["outcome"], "ERROR");
    assert_eq!(p["result"]["phase_result"]["exc_type"], "Panic");
    let location = p["result"]["phase_result"]["exc_tb"].as_str().unwrap();
    assert!(location.contains("execution.rs:"), "{location}");
    assert_eq!(p["measurements"]["voltage"]["measured_value"], 3.3);
    assert_eq!(p["measurements"]["voltage"]["outcome"], "PASS");
    assert_eq!(p["measurements"]["note"]["outcome"], "UNSET");
    assert_eq!(
        record["phases"].as_array().unwrap().len(),
        1,
        "the run stops at the error"
    );
}

#[derive(Debug)]
struct InstrumentError;

impl std::fmt::Display for InstrumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("instrument did not respond")
    }
}

#[phase]
fn returns_an_error() -> Result<(), InstrumentError> {
    Err(InstrumentError)
}

#[test]
fn a_returned_error_is_recorded_with_its_type_and_message() {
    let (execution, record, _dir) = run(Test::new("FVT1").phases([returns_an_error]), "SN-1");
    assert!(!execution.passed());
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(
        record["outcome_details"],
        serde_json::json!([{"code": "InstrumentError", "description": "instrument did not respond"}])
    );
    let result = &phase(&record, "returns_an_error")["result"]["phase_result"];
    assert_eq!(
        (result["exc_type"].as_str(), result["exc_val"].as_str()),
        (Some("InstrumentError"), Some("instrument did not respond"))
    );
}

#[phase]
fn stops() -> PhaseResult {
    PhaseResult::Stop
}

#[test]
fn stop_fails_the_test_and_skips_the_rest() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([stops, never_reached]), "SN-1");
    assert_eq!(record["outcome"], "FAIL");
    assert_eq!(
        record["outcome_details"],
        serde_json::json!([{"code": "STOP", "description": "Phase stops stopped the test run."}])
    );
    assert_eq!(phase(&record, "stops")["outcome"], "ERROR");
    assert_eq!(record["phases"].as_array().unwrap().len(), 1);
}

#[phase(repeat_limit = 2)]
#[measures(attempt: f64 = at_least(1))]
fn always_repeats(test: &mut PhaseContext, m: &mut always_repeats::Measurements) -> PhaseResult {
    m.attempt.set(test.attempt());
    PhaseResult::Repeat
}

#[phase]
#[measures(attempt: f64 = equals(2))]
fn passes_second_time(
    test: &mut PhaseContext,
    m: &mut passes_second_time::Measurements,
) -> PhaseResult {
    m.attempt.set(test.attempt());
    if test.attempt() < 2 {
        PhaseResult::Repeat
    } else {
        PhaseResult::Continue
    }
}

#[test]
fn repeats_are_each_recorded_and_earlier_attempts_are_skip() {
    let (execution, record, _dir) = run(Test::new("FVT1").phases([passes_second_time]), "SN-1");
    assert!(execution.passed());
    let phases = record["phases"].as_array().unwrap();
    let seen: Vec<(&str, i64, &str)> = phases
        .iter()
        .map(|p| {
            (
                p["outcome"].as_str().unwrap(),
                p["attempt"].as_i64().unwrap(),
                p["result"]["phase_result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("SKIP", 1, "REPEAT"), ("PASS", 2, "CONTINUE")]);
    assert_eq!(phases[0]["descriptor_id"], phases[1]["descriptor_id"]);
    // The first attempt's value failed `equals(2)`, but a repeated attempt is SKIP, not a stale FAIL.
    assert_eq!(phases[0]["measurements"]["attempt"]["measured_value"], 1.0);
}

#[test]
fn hitting_the_repeat_limit_is_an_error_and_stops_the_test() {
    let (_, record, _dir) = run(
        Test::new("FVT1").phases([always_repeats, never_reached]),
        "SN-1",
    );
    let phases = record["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "repeat_limit = 2 attempts");
    assert_eq!(phases[0]["outcome"], "SKIP");
    assert_eq!(phases[1]["outcome"], "ERROR");
    // As OpenHTF 1.6.3 writes it: the result is what the phase returned.
    assert_eq!(phases[1]["result"]["phase_result"], "REPEAT");
    assert_eq!(record["outcome"], "FAIL");
    assert_eq!(record["outcome_details"][0]["code"], "STOP");
}

#[phase]
#[measures(forgotten: f64 = in_range(0, 1), nan: f64 = in_range(0, 1), inf: f64)]
fn bad_values(m: &mut bad_values::Measurements) {
    m.nan.set(f64::NAN);
    m.inf.set(f64::INFINITY);
}

#[test]
fn unset_and_non_finite_values_fail() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([bad_values]), "SN-1");
    let m = &phase(&record, "bad_values")["measurements"];
    assert_eq!(m["forgotten"]["outcome"], "UNSET");
    assert!(m["forgotten"].get("measured_value").is_none());
    assert_eq!(
        (
            m["nan"]["outcome"].as_str(),
            m["nan"]["measured_value"].as_str()
        ),
        (Some("FAIL"), Some("nan"))
    );
    assert_eq!(
        (
            m["inf"]["outcome"].as_str(),
            m["inf"]["measured_value"].as_str()
        ),
        (Some("FAIL"), Some("inf"))
    );
    assert_eq!(record["outcome"], "FAIL");
}

#[phase]
#[measures(
    reversed: f64 = in_range(5.5, 4.5),
    regex: String = matches_regex("(unclosed"),
)]
fn bad_limits(m: &mut bad_limits::Measurements) {
    m.reversed.set(5.0);
}

#[phase]
#[measures(margins: f64 = in_range(0, 1).marginal(0.9, 0.1))]
fn bad_margins(m: &mut bad_margins::Measurements) {
    m.margins.set(0.5);
}

#[test]
fn invalid_declarations_are_reported_with_phase_measurement_and_values_and_nothing_runs() {
    let (execution, record, _dir) =
        run(Test::new("FVT1").phases([bad_limits, bad_margins]), "SN-1");
    assert!(!execution.passed());
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["outcome_details"][0]["code"], "InvalidDeclaration");
    let text = record["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    for part in [
        "phase `bad_limits`, measurement `reversed`: minimum 5.5 is greater than maximum 4.5",
        "phase `bad_limits`, measurement `regex`: regex /(unclosed/ does not compile",
        "phase `bad_margins`, measurement `margins`: marginal minimum 0.9 is greater than marginal maximum 0.1",
    ] {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }
    assert_eq!(record["phases"].as_array().unwrap().len(), 0);
    // Issue #13: the serial number given is kept (it was UNKNOWN_DUT), though nothing ran.
    assert_eq!(record["dut_id"], "SN-1");
}

/// A test that can't run never asks the operator for a board (a prompt fails at once), and
/// its record has no unit.
#[test]
fn a_test_that_cannot_run_asks_for_no_serial_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .phases([bad_limits])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let asked = std::sync::atomic::AtomicBool::new(false);
    let execution = test.execute(|| {
        asked.store(true, std::sync::atomic::Ordering::SeqCst);
        tofu_core::prompt::serial_number().ask()
    });
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(execution.record.dut_id, "UNKNOWN_DUT");
    assert_eq!(
        execution.record.outcome_details[0].code,
        "InvalidDeclaration"
    );
}

#[phase]
#[measures(x: f64 = in_range(0, 1))]
fn simple(m: &mut simple::Measurements) {
    m.x.set(0.5);
}

#[test]
fn an_empty_serial_number_is_an_error_and_the_run_is_still_saved() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([simple]), "  ");
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["dut_id"], "UNKNOWN_DUT");
    assert_eq!(record["outcome_details"][0]["code"], "InvalidSerialNumber");
    assert_eq!(record["phases"].as_array().unwrap().len(), 0);
}

#[test]
fn a_serial_number_source_that_panics_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .phases([simple])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| -> String { panic!("scanner unplugged") });
    assert_eq!(execution.record.outcome, Outcome::Error);
    assert!(
        execution.record.outcome_details[0]
            .description
            .contains("scanner unplugged")
    );
    assert_eq!(read_only_record(dir.path())["dut_id"], "UNKNOWN_DUT");
}

#[test]
fn hostile_serial_numbers_stay_in_the_folder_and_no_run_replaces_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .phases([simple])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    for serial in [
        "../../escape",
        "a/b",
        "..",
        "a/b",
        "ünï côdé 1",
        &"L".repeat(1000),
    ] {
        let execution = test.execute(|| serial);
        assert!(execution.passed());
    }
    let files = record_files(dir.path());
    assert_eq!(files.len(), 6, "{files:?}");
    let mut serials: Vec<String> = files
        .iter()
        .map(|f| {
            serde_json::from_str::<Json>(&std::fs::read_to_string(f).unwrap()).unwrap()["dut_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    serials.sort();
    assert!(
        serials.contains(&"../../escape".to_owned())
            && serials.iter().filter(|s| *s == "a/b").count() == 2
    );
    assert!(!dir.path().parent().unwrap().join("escape.FVT1").exists());
}

#[phase]
fn skipped() -> PhaseResult {
    PhaseResult::Skip
}

#[test]
fn all_phases_skipped_is_an_error() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([skipped, skipped]), "SN-1");
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["outcome_details"][0]["code"], "ALL_SKIPPED");
}

#[test]
fn a_test_with_no_phases_passes() {
    let (execution, record, _dir) = run(Test::new("FVT1").part_number("PCB01"), "SN-0001");
    assert!(execution.passed());
    assert_eq!(execution.exit_code(), ExitCode::SUCCESS);
    assert_eq!(record["outcome"], "PASS");
    // As OpenHTF 1.6.3: with no phase record the marginal flag is never set.
    assert_eq!(record["marginal"], serde_json::Value::Null);
}

#[phase]
#[measures(
    sweep: Sweep<2> = dimensions([SECOND, VOLT]).units(OHM).each(in_range(90, 110)),
    partial: Sweep<1> = dimensions(["channel"]),
)]
fn sweeps(m: &mut sweeps::Measurements) -> Result<(), tofu_core::ColumnLengthError> {
    m.sweep.push([0.0, 1.0], 100.0);
    m.sweep
        .extend([&[0.1, 0.2], &[1.1, 1.2]], &[101.0, 150.0])?;
    m.partial.extend([&[1.0, 2.0]], &[1.0])
}

#[test]
fn sweeps_are_validated_at_the_end_and_bad_columns_are_errors() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([sweeps]), "SN-1");
    let p = phase(&record, "sweeps");
    let sweep = &p["measurements"]["sweep"];
    assert_eq!(sweep["outcome"], "FAIL");
    assert_eq!(
        sweep["measured_value"],
        serde_json::json!([[0.0, 1.0, 100.0], [0.1, 1.1, 101.0], [0.2, 1.2, 150.0]])
    );
    assert_eq!(
        sweep["validators"],
        serde_json::json!(["All values pass: 90 <= x <= 110"])
    );
    assert_eq!(p["measurements"]["partial"]["dimensions"][0]["code"], "NDL");
    assert_eq!(
        p["measurements"]["partial"]["dimensions"][0]["description"],
        "channel"
    );
    assert_eq!(p["outcome"], "ERROR");
    let error = p["result"]["phase_result"]["exc_val"].as_str().unwrap();
    assert_eq!(
        error,
        "measurement `partial`: dimension 0 has 2 coordinates but there are 1 values"
    );
}

#[phase]
#[measures(sweep: Sweep<1> = dimensions([SECOND]).each(at_most(1)))]
fn failing_sweep(m: &mut failing_sweep::Measurements) {
    m.sweep.push([0.0], 2.0);
}

#[test]
fn a_failed_sweep_is_named_in_the_outcome_details() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([failing_sweep]), "SN-1");
    assert_eq!(record["outcome"], "FAIL");
    assert_eq!(
        record["outcome_details"][0]["code"],
        "Multidim Measurement Failure"
    );
    // OpenHTF 1.6.3's text: the measurement's name and outcome, its points, its validators.
    assert_eq!(
        record["outcome_details"][0]["description"],
        " failed_item: sweep (Outcome.FAIL)\n  measured_value: [(0.0, 2.0)]\n  validators:\n   validator: All values pass: x <= 1"
    );
}

#[phase]
fn logs(test: &mut PhaseContext) {
    tracing::info!(volts = 5.0, "supply on");
    tracing::warn!(serial = test.serial_number(), "leakage above spec");
    tracing::trace!("too detailed");
}

#[test]
fn tracing_events_are_recorded_with_level_source_and_line() {
    let (_, record, _dir) = run(Test::new("FVT1").phases([logs]), "SN-9");
    let captured: Vec<&Json> = record["log_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["logger_name"] == "it::execution")
        .collect();
    assert_eq!(captured.len(), 2, "{captured:?}");
    assert_eq!(
        (
            captured[0]["level"].as_i64(),
            captured[0]["message"].as_str()
        ),
        (Some(20), Some("supply on volts=5.0"))
    );
    assert_eq!(
        (
            captured[1]["level"].as_i64(),
            captured[1]["message"].as_str()
        ),
        (Some(30), Some("leakage above spec serial=SN-9"))
    );
    assert_eq!(captured[0]["source"], "execution.rs");
    assert!(captured[0]["lineno"].as_i64().unwrap() > 0);
    assert_eq!(captured[0]["phase"], "logs");
    let t = captured[0]["timestamp_millis"].as_i64().unwrap();
    assert!(
        t >= record["start_time_millis"].as_i64().unwrap()
            && t <= record["end_time_millis"].as_i64().unwrap()
    );
}

struct Recorder(Arc<Mutex<Vec<String>>>);

impl OutputCallback for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        self.0.lock().unwrap().push(record.dut_id.clone());
        Ok(None)
    }
}

struct Exploding;

impl OutputCallback for Exploding {
    fn name(&self) -> &str {
        "exploding"
    }
    fn on_record(&mut self, _: &TestRecord) -> Result<Option<String>, OutputError> {
        panic!("callback bug")
    }
}

#[test]
fn a_panicking_output_callback_does_not_stop_the_others_and_fails_the_exit_code() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let test = Test::new("FVT1")
        .phases([simple])
        .output(Exploding)
        .output(Recorder(Arc::clone(&seen)));
    let (execution, record, _dir) = run(test, "SN-7");
    assert_eq!(record["outcome"], "PASS");
    assert!(execution.passed());
    assert_eq!(*seen.lock().unwrap(), ["SN-7"]);
    let exploded = execution
        .outputs
        .iter()
        .find(|o| o.name == "exploding")
        .unwrap();
    assert!(
        exploded
            .result
            .as_ref()
            .unwrap_err()
            .contains("callback bug")
    );
    assert_eq!(
        execution.exit_code(),
        ExitCode::from(tofu_core::exit::OUTPUT_FAILED)
    );
}

#[test]
fn an_unwritable_record_folder_falls_back_to_the_temp_folder() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "a file where the folder should be").unwrap();
    let mut test = Test::new("FVT1")
        .phases([simple])
        .json_output(JsonOutput::to_dir(&blocker))
        .quiet();
    let serial = format!("FALLBACK-{}", std::process::id());
    let execution = test.execute(|| serial.clone());
    let status = &execution.outputs[0];
    let message = status.result.as_ref().unwrap().as_deref().unwrap();
    assert!(message.contains("could not be written"), "{message}");
    let path = message
        .strip_prefix("record written to ")
        .unwrap()
        .split(" (")
        .next()
        .unwrap();
    let written: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(written["dut_id"], serial.as_str());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn metadata_reaches_the_record() {
    let test = Test::new("FVT1")
        .procedure_version("1.2.3")
        .part_number("PCB1")
        .revision("A")
        .batch_number("12-24")
        .sub_unit("PSU-1")
        .metadata("operator", "alice")
        .metadata("config", "ignored: reserved")
        .station_id("bench-3");
    let (_, record, _dir) = run(test, "PCB1A002");
    let m = &record["metadata"];
    assert_eq!(m["procedure_id"], "FVT1");
    assert_eq!(m["test_name"], "FVT1");
    assert_eq!(m["procedure_version"], "1.2.3");
    assert_eq!(
        (
            m["part_number"].as_str(),
            m["revision"].as_str(),
            m["batch_number"].as_str()
        ),
        (Some("PCB1"), Some("A"), Some("12-24"))
    );
    assert_eq!(
        m["sub_units"],
        serde_json::json!([{"serial_number": "PSU-1"}])
    );
    assert_eq!(m["operator"], "alice");
    assert_eq!(m["config"]["station_id"], "bench-3");
    assert_eq!(record["station_id"], "bench-3");
}

#[phase]
#[measures(current: f64 = in_range(0.1, 0.5).marginal(0.15, 0.45).units(AMPERE))]
fn marginal_current(m: &mut marginal_current::Measurements) {
    m.current.set(0.47);
}

#[test]
fn marginal_values_pass_and_mark_measurement_phase_and_run() {
    let (execution, record, _dir) =
        run(Test::new("FVT1").phases([marginal_current, simple]), "SN-1");
    assert!(execution.passed());
    assert_eq!(record["marginal"], true);
    let p = phase(&record, "marginal_current");
    assert_eq!(p["marginal"], true);
    assert_eq!(p["measurements"]["current"]["marginal"], true);
    assert_eq!(phase(&record, "simple")["marginal"], false);
}

#[test]
fn registered_phases_come_in_source_order() {
    let test = Test::new("FVT1").registered_phases();
    let phases = test.phase_list();
    let names: Vec<&str> = phases.iter().map(|p| p.function()).collect();
    let position = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{name} not in {names:?}"))
    };
    // Source order within a file, and module order between files (`execution` < `openhtf_compat`).
    assert!(position("sets_then_panics") < position("never_reached"));
    assert!(position("never_reached") < position("marginal_current"));
    assert!(position("marginal_current") < position("power_on"));
    assert!(position("power_on") < position("crashing_phase"));
}

#[test]
fn dynamic_phases_are_built_at_run_time_and_reach_measurements_by_name() {
    use tofu_core::declare::{dimensions, in_range};
    use tofu_core::phase::MeasurementAccessError;
    let channels: Vec<Phase> = (0..3)
        .map(|ch| {
            Phase::dynamic(format!("channel_{ch}"))
                .measure::<f64, _>("offset", in_range(-1, 1).units(VOLT))
                .measure::<Sweep<1>, _>("trace", dimensions([SECOND]))
                .run(move |_test, m| -> Result<(), MeasurementAccessError> {
                    m.get::<f64>("offset")?.set(0.1 * f64::from(ch));
                    m.get::<Sweep<1>>("trace")?.push([0.0], 1.0);
                    if ch == 2 {
                        m.get::<String>("offset")?.set("wrong kind");
                    }
                    Ok(())
                })
        })
        .collect();
    let (_, record, _dir) = run(Test::new("FVT1").phases(channels), "SN-1");
    let names: Vec<&str> = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["channel_0", "channel_1", "channel_2"]);
    assert_eq!(
        phase(&record, "channel_1")["measurements"]["offset"]["measured_value"],
        0.1
    );
    assert_eq!(phase(&record, "channel_1")["outcome"], "PASS");
    let failed = phase(&record, "channel_2");
    assert_eq!(failed["outcome"], "ERROR");
    assert_eq!(
        failed["result"]["phase_result"]["exc_type"],
        "MeasurementAccessError"
    );
    assert_eq!(
        failed["result"]["phase_result"]["exc_val"],
        "measurement `offset` is declared as Number, not Text"
    );
}

use tofu_core::Phase;

/// Sees whether the JSON record is already in `dir` when it gets the record.
struct SeesRecord {
    dir: PathBuf,
    durable_queue: bool,
    saw_record: Arc<Mutex<Vec<(bool, bool)>>>,
}

impl OutputCallback for SeesRecord {
    fn name(&self) -> &str {
        "sees record"
    }
    fn on_record(&mut self, _: &TestRecord) -> Result<Option<String>, OutputError> {
        let written = std::fs::read_dir(&self.dir)
            .unwrap()
            .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "json"));
        self.saw_record
            .lock()
            .unwrap()
            .push((self.durable_queue, written));
        Ok(None)
    }
    fn is_durable_queue(&self) -> bool {
        self.durable_queue
    }
}

/// A durable queue (the uploader's outbox) gets the record before the JSON record is written,
/// so a process killed between the two never leaves a record on disk that isn't queued; the
/// other outputs get it after.
#[test]
fn durable_queues_get_the_record_before_the_json_record_is_written_and_others_after() {
    let dir = tempfile::tempdir().unwrap();
    let saw = Arc::new(Mutex::new(Vec::new()));
    let output = |durable_queue| SeesRecord {
        dir: dir.path().to_owned(),
        durable_queue,
        saw_record: Arc::clone(&saw),
    };
    let mut test = Test::new("FVT1")
        .phases([simple])
        .json_output(JsonOutput::to_dir(dir.path()))
        .output(output(false))
        .output(output(true))
        .quiet();
    let execution = test.execute(|| "SN-Q");
    assert!(execution.outputs_ok());
    assert_eq!(*saw.lock().unwrap(), [(true, false), (false, true)]);
    let order: Vec<&str> = execution.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(order, ["sees record", "JSON record", "sees record"]);
}
