//! Plugs: injected by type, one instance per test, set up in order and torn down in reverse,
//! exactly once, whatever the phases did.

use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tofu_core::Outcome;
use tofu_core::prelude::*;

type Journal = Arc<Mutex<Vec<String>>>;

fn note(journal: &Journal, what: impl Into<String>) {
    journal.lock().unwrap().push(what.into());
}

fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().unwrap().clone()
}

/// A simulated power supply.
struct PowerSupply {
    journal: Journal,
    volts: f64,
    fail_setup: bool,
}

impl Plug for PowerSupply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        note(&self.journal, "psu setup");
        if self.fail_setup {
            return Err("no answer on /dev/ttyUSB0".into());
        }
        Ok(())
    }
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        note(&self.journal, format!("psu teardown at {} V", self.volts));
        self.volts = 0.0;
        Ok(())
    }
}

/// A simulated DMM.
struct Dmm {
    journal: Journal,
}

impl Plug for Dmm {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        note(&self.journal, "dmm setup");
        Ok(())
    }
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        note(&self.journal, "dmm teardown");
        Ok(())
    }
}

#[phase]
fn power_up(psu: &mut PowerSupply) {
    psu.volts = 5.0;
}

#[phase]
#[measures(rail: f64 = in_range(4.9, 5.1).units(VOLT))]
fn measure_rail(m: &mut measure_rail::Measurements, psu: &PowerSupply, dmm: &mut Dmm) {
    note(&dmm.journal, "measured");
    m.rail.set(psu.volts);
}

#[phase]
fn crashes(_psu: &mut PowerSupply) {
    panic!("relay welded");
}

fn journal() -> Journal {
    Arc::new(Mutex::new(Vec::new()))
}

fn test_with(journal: &Journal, fail_setup: bool) -> Test {
    let dir = tempfile::tempdir().unwrap();
    Test::new("FVT1")
        .plug(PowerSupply {
            journal: Arc::clone(journal),
            volts: 0.0,
            fail_setup,
        })
        .plug(Dmm {
            journal: Arc::clone(journal),
        })
        .json_output(JsonOutput::to_dir(dir.keep()))
        .quiet()
}

#[test]
fn phases_share_one_instance_and_teardown_runs_in_reverse_order() {
    let log = journal();
    let mut test = test_with(&log, false).phases([power_up, measure_rail]);
    let execution = test.execute(|| "SN-1");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    assert_eq!(
        execution.record.phases[1].measurements[0].measured_value,
        Some(tofu_core::Value::Number(5.0))
    );
    assert_eq!(
        entries(&log),
        [
            "psu setup",
            "dmm setup",
            "measured",
            "dmm teardown",
            "psu teardown at 5 V"
        ]
    );
    // The next run sets up and tears down again.
    log.lock().unwrap().clear();
    assert!(test.execute(|| "SN-2").passed());
    assert_eq!(
        entries(&log),
        [
            "psu setup",
            "dmm setup",
            "measured",
            "dmm teardown",
            "psu teardown at 5 V"
        ]
    );
}

#[phase]
fn returns_an_error(_psu: &mut PowerSupply) -> Result<(), String> {
    Err("overcurrent".into())
}

#[test]
fn teardown_runs_once_after_an_error() {
    let log = journal();
    let mut test = test_with(&log, false).phases([power_up, returns_an_error, measure_rail]);
    let execution = test.execute(|| "SN-1");
    assert_eq!(execution.record.outcome, Outcome::Error);
    assert_eq!(
        entries(&log),
        [
            "psu setup",
            "dmm setup",
            "dmm teardown",
            "psu teardown at 5 V"
        ]
    );
}

#[test]
fn teardown_runs_once_after_a_panic() {
    let log = journal();
    let mut test = test_with(&log, false).phases([power_up, crashes, measure_rail]);
    let execution = test.execute(|| "SN-1");
    assert_eq!(execution.record.outcome, Outcome::Error);
    assert_eq!(
        entries(&log),
        [
            "psu setup",
            "dmm setup",
            "dmm teardown",
            "psu teardown at 5 V"
        ]
    );
}

#[test]
fn a_failed_setup_is_an_error_naming_the_plug_and_only_set_up_plugs_are_torn_down() {
    let log = journal();
    let mut test = test_with(&log, true).phases([power_up, measure_rail]);
    let execution = test.execute(|| "SN-1");
    let record: Json = serde_json::to_value(&execution.record).unwrap();
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["outcome_details"][0]["code"], "PlugSetupError");
    let text = record["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("plug `PowerSupply` failed to set up: no answer on /dev/ttyUSB0"),
        "{text}"
    );
    assert!(execution.record.phases.is_empty());
    assert_eq!(
        entries(&log),
        ["psu setup"],
        "the DMM was never set up, so it is not torn down"
    );
}

#[test]
fn a_phase_needing_a_plug_the_test_lacks_is_an_error_before_anything_runs() {
    let log = journal();
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .plug(Dmm {
            journal: Arc::clone(&log),
        })
        .phases([measure_rail])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| "SN-1");
    assert_eq!(execution.record.outcome_details.len(), 1);
    let detail = &execution.record.outcome_details[0];
    assert_eq!(detail.code, "MissingPlug");
    assert_eq!(
        detail.description,
        "the plug `PowerSupply` is missing: phase `measure_rail` needs it (give it with \
         Test::plug, or Test::plug_dyn for a `dyn Trait`); no phase was run"
    );
    assert!(entries(&log).is_empty(), "nothing was set up");
    // Issue #13: the serial number given is kept (it was UNKNOWN_DUT).
    assert_eq!(execution.record.dut_id, "SN-1");

    // Three phases wanting it: still one error, naming the plug once and each phase.
    let mut test = Test::new("FVT1")
        .phases([power_up, measure_rail, crashes])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| "SN-2");
    let details = &execution.record.outcome_details;
    assert_eq!(details.len(), 1, "{details:?}");
    assert_eq!(
        details[0].description,
        "the plug `PowerSupply` is missing: phases `power_up`, `measure_rail`, `crashes` need it \
         (give it with Test::plug, or Test::plug_dyn for a `dyn Trait`); the plug `Dmm` is \
         missing: phase `measure_rail` needs it (give it with Test::plug, or Test::plug_dyn for \
         a `dyn Trait`); no phase was run"
    );
    assert!(!details[0].description.contains("declaration"));
}

/// What phases see of a supply: the real one or a simulation.
trait Supply: Plug {
    fn set_volts(&mut self, volts: f64);
    fn read_volts(&self) -> f64;
}

struct SimulatedSupply(f64);

impl Plug for SimulatedSupply {}

impl Supply for SimulatedSupply {
    fn set_volts(&mut self, volts: f64) {
        self.0 = volts;
    }
    fn read_volts(&self) -> f64 {
        self.0 * 0.99
    }
}

#[phase]
#[measures(output: f64 = in_range(3.2, 3.4))]
fn through_a_trait(m: &mut through_a_trait::Measurements, supply: &mut dyn Supply) {
    supply.set_volts(3.33);
    m.output.set(supply.read_volts());
}

#[test]
fn a_plug_behind_a_trait_can_be_swapped_for_a_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .plug_dyn(Box::new(SimulatedSupply(0.0)) as Box<dyn Supply>)
        .phases([through_a_trait])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| "SN-1");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
}

struct ExplodingTeardown;

impl Plug for ExplodingTeardown {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        panic!("teardown bug")
    }
}

#[phase]
fn uses_exploding(_p: &mut ExplodingTeardown) {}

#[test]
fn a_panicking_teardown_is_logged_and_the_run_still_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .plug(ExplodingTeardown)
        .phases([uses_exploding])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| "SN-1");
    assert!(execution.outputs_ok());
    let logs: Vec<&str> = execution
        .record
        .log_records
        .iter()
        .map(|l| l.message.as_str())
        .collect();
    assert!(
        logs.iter()
            .any(|m| m.contains("panicked tearing down") && m.contains("teardown bug")),
        "{logs:?}"
    );
}

/// A plug that adds entries to the record's metadata.
struct Labelled(Vec<(String, Json)>);

impl Plug for Labelled {
    fn record_metadata(&self) -> Vec<(String, Json)> {
        self.0.clone()
    }
}

/// A second one, of another type.
struct Fixture;

impl Plug for Fixture {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("fixture lid open".into())
    }

    fn record_metadata(&self) -> Vec<(String, Json)> {
        vec![(
            "instruments".to_owned(),
            serde_json::json!({"name": "fixture"}),
        )]
    }
}

#[phase]
fn nothing() {}

#[test]
fn plugs_add_to_lists_in_the_record_metadata_even_when_setup_fails() {
    let entries = vec![
        ("instruments".to_owned(), serde_json::json!({"name": "dmm"})),
        ("station_id".to_owned(), serde_json::json!("hijacked")),
        ("operator".to_owned(), serde_json::json!("plug")),
    ];
    let execution = Test::new("FVT1")
        .metadata("operator", "Alice")
        .plug(Labelled(entries))
        .plug(Fixture)
        .phases([nothing])
        .without_json_output()
        .quiet()
        .execute(|| "SN-1");
    assert_eq!(
        execution.record.outcome,
        Outcome::Error,
        "the fixture failed"
    );
    let extra = &execution.record.metadata.extra;
    assert_eq!(
        extra["instruments"],
        serde_json::json!([{"name": "dmm"}, {"name": "fixture"}]),
        "in the order of the plugs, the failed one too"
    );
    assert_eq!(
        extra["operator"], "Alice",
        "a value that is not a list is kept"
    );
    assert!(
        !extra.contains_key("station_id"),
        "reserved keys are left out"
    );
    assert_ne!(execution.record.station_id, "hijacked");
}
