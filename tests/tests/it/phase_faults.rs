//! Phase faults: user code that panics (a phase, a validator, a plug's setup or teardown, an output
//! callback) or never returns. Each run ends with the right outcome and its record written,
//! and the same `Test` then runs the next unit normally: the station is ready for it.
//!
//! Every fault here is armed by the serial number `BAD`; the next unit, `GOOD`, runs the same
//! `Test` value in the same process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tofu_core::prelude::*;
use tofu_core::{
    Execution, MeasurementOutcome, Outcome, OutputCallback, OutputError, PhaseOutcome, TestRecord,
};

const BAD: &str = "BAD";
const GOOD: &str = "GOOD";

/// A test bench: one `Test`, run unit after unit, its records in one folder.
struct Station {
    test: Test,
    dir: tempfile::TempDir,
}

impl Station {
    fn new(test: Test) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let test = test.json_output(JsonOutput::to_dir(dir.path())).quiet();
        Station { test, dir }
    }

    /// Runs one unit; returns the execution and the record file written for it.
    fn run(&mut self, serial: &str) -> (Execution, Json) {
        let execution = self.test.execute(|| serial);
        let files = record_files(self.dir.path(), serial);
        assert_eq!(files.len(), 1, "one record for {serial}: {files:?}");
        let written: Json = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(written["dut_id"], serial);
        assert_eq!(
            written["outcome"],
            serde_json::to_value(execution.record.outcome).unwrap(),
            "the file holds the run's outcome"
        );
        (execution, written)
    }

    /// The next unit after a fault: passes, with every output fine.
    fn next_unit_passes(&mut self) -> Execution {
        let (execution, written) = self.run(GOOD);
        assert!(
            execution.passed(),
            "the unit after the fault: {:?}",
            execution.record.outcome_details
        );
        assert!(execution.outputs_ok(), "{:?}", execution.outputs);
        assert_eq!(written["outcome"], "PASS");
        execution
    }
}

fn record_files(dir: &Path, serial: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{serial}.")) && n.ends_with(".json"))
        })
        .collect()
}

fn logged(record: &TestRecord) -> Vec<&str> {
    record
        .log_records
        .iter()
        .map(|l| l.message.as_str())
        .collect()
}

// --- a phase that panics ---------------------------------------------------------------------

#[phase]
#[measures(before: f64 = in_range(0, 10))]
fn panics_for_bad_units(test: &mut PhaseContext, m: &mut panics_for_bad_units::Measurements) {
    m.before.set(1.0);
    if test.serial_number() == BAD {
        let readings: Vec<f64> = Vec::new();
        m.before.set(readings[3]);
    }
}

#[test]
fn a_panicking_phase_is_an_error_keeps_its_values_and_the_next_unit_runs() {
    let mut station = Station::new(Test::new("FVT1").phases([panics_for_bad_units, after_read]));
    let (execution, written) = station.run(BAD);
    assert_eq!(execution.record.outcome, Outcome::Error);
    let phase = &written["phases"][0];
    assert_eq!(phase["outcome"], "ERROR");
    assert_eq!(phase["measurements"]["before"]["measured_value"], 1.0);
    let result = &phase["result"]["phase_result"];
    assert!(
        result["exc_val"]
            .as_str()
            .is_some_and(|s| s.contains("index out of bounds")),
        "{result}"
    );
    assert_eq!(written["phases"].as_array().map(Vec::len), Some(1));
    let good = station.next_unit_passes();
    assert_eq!(good.record.phases.len(), 2);
}

// --- a custom validator that panics -------------------------------------------------------

/// Panics on 13, a bug in the test code, not a fault of the unit.
fn superstitious(x: &f64) -> bool {
    assert!(*x != 13.0, "validator bug: unlucky value {x}");
    *x < 100.0
}

#[phase]
#[measures(reading: f64 = custom("below 100", superstitious), other: f64 = in_range(0, 10))]
fn read_value(test: &mut PhaseContext, m: &mut read_value::Measurements) {
    m.reading.set(if test.serial_number() == BAD {
        13.0
    } else {
        12.0
    });
    m.other.set(5.0);
}

#[phase]
fn after_read() {}

#[test]
fn a_panicking_validator_is_an_error_with_its_message_and_the_next_unit_runs() {
    let mut station = Station::new(Test::new("FVT1").phases([read_value, after_read]));
    let (execution, written) = station.run(BAD);
    let record = &execution.record;
    // A bug in the test code, not a failed unit: ERROR, as a panicking phase.
    assert_eq!(
        record.outcome,
        Outcome::Error,
        "{:?}",
        record.outcome_details
    );
    let detail = &record.outcome_details[0];
    assert!(
        detail
            .description
            .contains("validator bug: unlucky value 13")
            && detail.description.contains("reading"),
        "the detail names the measurement and the panic: {detail:?}"
    );
    let phase = &record.phases[0];
    assert_eq!(phase.outcome, PhaseOutcome::Error);
    // The value is kept, the measurement did not pass, the other one was still validated.
    let m = &written["phases"][0]["measurements"];
    assert_eq!(m["reading"]["measured_value"], 13.0);
    assert_eq!(m["reading"]["outcome"], "FAIL");
    assert_eq!(m["other"]["outcome"], "PASS");
    assert_eq!(phase.measurements[0].outcome, MeasurementOutcome::Fail);
    let result = &written["phases"][0]["result"]["phase_result"];
    assert_eq!(result["exc_type"], "Panic", "{result}");
    assert!(
        result["exc_val"]
            .as_str()
            .is_some_and(|s| s.contains("measurement `reading`") && s.contains("unlucky value 13")),
        "{result}"
    );
    assert!(
        result["exc_tb"]
            .as_str()
            .is_some_and(|s| s.contains("phase_faults.rs:")),
        "the panic's location: {result}"
    );
    assert!(
        logged(record)
            .iter()
            .any(|l| l.contains("panicked") && l.contains("unlucky value 13")),
        "{:?}",
        logged(record)
    );
    // An error stops the test, as any phase error does.
    assert_eq!(record.phases.len(), 1);

    let good = station.next_unit_passes();
    assert_eq!(good.record.phases.len(), 2);
}

// --- plugs whose setup or teardown panics -------------------------------------------------

/// A fixture whose setup panics for the unit `BAD` (told by the serial source), and whose
/// teardown panics the first time.
struct Fixture {
    journal: Arc<Mutex<Vec<String>>>,
    unit: Arc<Mutex<String>>,
    teardowns: Arc<AtomicUsize>,
    panic_teardown_once: bool,
}

impl Plug for Fixture {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.journal.lock().unwrap().push("fixture setup".into());
        if *self.unit.lock().unwrap() == BAD && !self.panic_teardown_once {
            panic!("clamp sensor read garbage");
        }
        Ok(())
    }
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.journal.lock().unwrap().push("fixture teardown".into());
        if self.panic_teardown_once && self.teardowns.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("clamp stuck closed");
        }
        Ok(())
    }
}

struct Supply {
    journal: Arc<Mutex<Vec<String>>>,
}

impl Plug for Supply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.journal.lock().unwrap().push("supply setup".into());
        Ok(())
    }
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.journal.lock().unwrap().push("supply teardown".into());
        Ok(())
    }
}

#[phase]
#[measures(clamped: bool = equals(true))]
fn clamp(m: &mut clamp::Measurements, fixture: &mut Fixture, supply: &mut Supply) {
    fixture.journal.lock().unwrap().push("clamp".into());
    let _ = supply;
    m.clamped.set(true);
}

struct Bench {
    station: Station,
    journal: Arc<Mutex<Vec<String>>>,
    unit: Arc<Mutex<String>>,
}

impl Bench {
    fn new(panic_teardown_once: bool) -> Self {
        let journal = Arc::new(Mutex::new(Vec::new()));
        let unit = Arc::new(Mutex::new(String::new()));
        let test = Test::new("FVT1")
            .plug(Supply {
                journal: Arc::clone(&journal),
            })
            .plug(Fixture {
                journal: Arc::clone(&journal),
                unit: Arc::clone(&unit),
                teardowns: Arc::new(AtomicUsize::new(0)),
                panic_teardown_once,
            })
            .phases([clamp]);
        Bench {
            station: Station::new(test),
            journal,
            unit,
        }
    }

    fn run(&mut self, serial: &str) -> (Execution, Json, Vec<String>) {
        *self.unit.lock().unwrap() = serial.to_owned();
        self.journal.lock().unwrap().clear();
        let (execution, written) = self.station.run(serial);
        let journal = self.journal.lock().unwrap().clone();
        (execution, written, journal)
    }
}

#[test]
fn a_plug_whose_setup_panics_is_an_error_the_others_are_torn_down_and_the_next_unit_runs() {
    let mut bench = Bench::new(false);
    let (execution, written, journal) = bench.run(BAD);
    assert_eq!(execution.record.outcome, Outcome::Error);
    assert_eq!(written["outcome_details"][0]["code"], "PlugSetupError");
    let text = written["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("plug `")
            && text.contains("Fixture")
            && text.contains("clamp sensor read garbage"),
        "{text}"
    );
    assert!(
        text.contains("phase_faults.rs:"),
        "with its location: {text}"
    );
    assert!(execution.record.phases.is_empty(), "no phase ran");
    assert_eq!(
        journal,
        ["supply setup", "fixture setup", "supply teardown"],
        "the supply, set up, is torn down; the fixture, never set up, is not"
    );

    let (execution, _, journal) = bench.run(GOOD);
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    assert_eq!(
        journal,
        [
            "supply setup",
            "fixture setup",
            "clamp",
            "fixture teardown",
            "supply teardown"
        ]
    );
}

#[test]
fn a_plug_whose_teardown_panics_does_not_stop_the_others_and_the_next_unit_runs() {
    let mut bench = Bench::new(true);
    let (execution, _, journal) = bench.run(BAD);
    // The unit passed its test: a teardown bug is logged, the outcome stays the unit's.
    assert_eq!(execution.record.outcome, Outcome::Pass);
    assert_eq!(
        journal,
        [
            "supply setup",
            "fixture setup",
            "clamp",
            "fixture teardown",
            "supply teardown"
        ],
        "the supply is still torn down after the fixture's teardown panicked"
    );
    assert!(
        logged(&execution.record)
            .iter()
            .any(|l| l.contains("Fixture") && l.contains("clamp stuck closed")),
        "{:?}",
        logged(&execution.record)
    );
    let (execution, _, journal) = bench.run(GOOD);
    assert!(execution.passed());
    assert_eq!(journal.len(), 5, "{journal:?}");
}

// --- an output callback that panics ---------------------------------------------------------

/// Panics on the unit `BAD`; counts the records it saw.
struct Flaky(Arc<Mutex<Vec<String>>>);

impl OutputCallback for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        if record.dut_id == BAD {
            panic!("MES connection reset");
        }
        self.0.lock().unwrap().push(record.dut_id.clone());
        Ok(Some("sent to the MES".into()))
    }
}

struct Counter(Arc<Mutex<Vec<String>>>);

impl OutputCallback for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        self.0.lock().unwrap().push(record.dut_id.clone());
        Ok(None)
    }
}

#[test]
fn a_panicking_output_keeps_the_json_record_and_the_later_outputs_and_the_next_unit_runs() {
    let flaky = Arc::new(Mutex::new(Vec::new()));
    let counted = Arc::new(Mutex::new(Vec::new()));
    let mut station = Station::new(
        Test::new("FVT1")
            .phases([after_read])
            .output(Flaky(Arc::clone(&flaky)))
            .output(Counter(Arc::clone(&counted))),
    );
    let (execution, written) = station.run(BAD);
    // The unit passed; the output's failure is the station's, reported and in the exit code.
    assert!(execution.passed());
    assert_eq!(written["outcome"], "PASS");
    assert!(!execution.outputs_ok());
    assert_eq!(
        execution.exit_code(),
        std::process::ExitCode::from(tofu_core::exit::OUTPUT_FAILED)
    );
    let names: Vec<&str> = execution.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["JSON record", "flaky", "counter"]);
    assert!(execution.outputs[0].result.is_ok());
    let error = execution.outputs[1].result.as_ref().unwrap_err();
    assert!(
        error.contains("MES connection reset") && error.contains("phase_faults.rs:"),
        "{error}"
    );
    assert!(execution.outputs[2].result.is_ok());
    assert_eq!(*counted.lock().unwrap(), [BAD]);

    let execution = station.next_unit_passes();
    assert_eq!(
        execution.outputs[1].result.as_ref().unwrap().as_deref(),
        Some("sent to the MES")
    );
    assert_eq!(*flaky.lock().unwrap(), [GOOD]);
    assert_eq!(*counted.lock().unwrap(), [BAD, GOOD]);
}

// --- a phase that never returns -------------------------------------------------------------

/// Blocks for the unit `BAD` as on an instrument that never answers: its thread never ends.
#[phase(timeout_s = 0.3)]
#[measures(before: f64 = in_range(0, 10))]
fn hangs_for_bad_units(test: &mut PhaseContext, m: &mut hangs_for_bad_units::Measurements) {
    m.before.set(1.0);
    if test.serial_number() == BAD {
        loop {
            std::thread::park();
        }
    }
}

#[phase(timeout_s = 5)]
#[measures(after: f64 = in_range(0, 10))]
fn runs_on_a_worker(m: &mut runs_on_a_worker::Measurements) {
    m.after.set(2.0);
}

#[phase]
fn cleanup_phase() {
    tracing::info!("cleanup ran");
}

#[test]
fn a_phase_that_never_returns_times_out_the_teardown_runs_and_the_next_unit_runs() {
    let group = PhaseGroup::new("unit")
        .main([hangs_for_bad_units, runs_on_a_worker])
        .teardown([cleanup_phase]);
    let mut station = Station::new(Test::new("FVT1").phases([group]));
    let started = Instant::now();
    let (execution, written) = station.run(BAD);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run did not wait for the blocked phase"
    );
    assert_eq!(execution.record.outcome, Outcome::Timeout);
    let phases: Vec<(&str, &str)> = written["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        phases,
        [("hangs_for_bad_units", "ERROR"), ("cleanup_phase", "PASS")],
        "the group's teardown ran after the timeout"
    );

    // The abandoned thread is still blocked: the next unit gets a new one and passes, with
    // both phases on a worker thread.
    let execution = station.next_unit_passes();
    assert_eq!(execution.record.phases.len(), 3);
    assert_eq!(
        execution.record.phases[1].measurements[0].measured_value,
        Some(tofu_core::Value::Number(2.0))
    );
}
