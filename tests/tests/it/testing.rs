//! `tofu_core::testing::Harness`: phases run inside a `#[test]` with simulated plugs, a serial
//! number and parameters, and their record asserted on; nothing written, nothing printed.

use std::sync::{Arc, Mutex};

use tofu_core::prelude::*;
use tofu_core::testing::Harness;
use tofu_core::{JsonOutput, MeasurementOutcome, Outcome, PhaseOutcome};

pub(crate) trait Supply: Plug {
    fn set_volts(&mut self, volts: f64);
    fn read_volts(&mut self) -> f64;
}

/// The bench's supply: must never be set up in these tests.
struct BenchSupply;
impl Plug for BenchSupply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("no bench here: the real supply was set up".into())
    }
}
impl Supply for BenchSupply {
    fn set_volts(&mut self, _: f64) {}
    fn read_volts(&mut self) -> f64 {
        f64::NAN
    }
}

/// A simulation that reads back what was set, with an offset, and logs its calls.
struct SimSupply {
    set: f64,
    offset: f64,
    calls: Arc<Mutex<Vec<String>>>,
}
impl Plug for SimSupply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.calls.lock().unwrap().push("setup".into());
        Ok(())
    }
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.calls.lock().unwrap().push("teardown".into());
        Ok(())
    }
}
impl Supply for SimSupply {
    fn set_volts(&mut self, volts: f64) {
        self.calls.lock().unwrap().push(format!("set {volts}"));
        self.set = volts;
    }
    fn read_volts(&mut self) -> f64 {
        self.set + self.offset
    }
}

fn sim(offset: f64) -> (Box<dyn Supply>, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let plug = SimSupply {
        set: 0.0,
        offset,
        calls: Arc::clone(&calls),
    };
    (Box::new(plug) as Box<dyn Supply>, calls)
}

#[phase]
#[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
fn rail(
    test: &mut PhaseContext,
    psu: &mut dyn Supply,
    m: &mut rail::Measurements,
) -> Result<(), Box<dyn std::error::Error>> {
    let volts: f64 = test.parameter("rail_volts")?;
    psu.set_volts(volts);
    tracing::info!("rail set to {volts} V");
    m.rail.set(psu.read_volts());
    Ok(())
}

#[phase]
#[measures(serial: String = matches_regex(r"^SIM-\d{4}$"))]
fn serial(test: &mut PhaseContext, m: &mut serial::Measurements) {
    m.serial.set(test.serial_number());
}

#[phase]
fn power_off(psu: &mut dyn Supply) {
    psu.set_volts(0.0);
}

/// The test as the bench program builds it.
fn fvt1(records: &std::path::Path) -> Test {
    Test::new("FVT1")
        .phases([rail, serial])
        .plug_dyn(Box::new(BenchSupply) as Box<dyn Supply>)
        .json_output(JsonOutput::to_dir(records))
}

#[test]
fn one_phase_runs_with_a_simulated_plug_and_a_parameter() {
    let (plug, calls) = sim(0.0);
    let ran = Harness::phase(rail)
        .plug_dyn(plug)
        .parameter("rail_volts", 3.3)
        .run();
    assert_eq!(
        ran.outcome(),
        Outcome::Pass,
        "{:?}",
        ran.record.outcome_details
    );
    assert_eq!(ran.value("rail").and_then(|v| v.as_f64()), Some(3.3));
    assert_eq!(ran.phase("rail").outcome, PhaseOutcome::Pass);
    assert_eq!(*calls.lock().unwrap(), ["setup", "set 3.3", "teardown"]);
    // The phase's log is in the record.
    assert!(
        ran.record
            .log_records
            .iter()
            .any(|l| l.message == "rail set to 3.3 V"),
        "{:?}",
        ran.record.log_records
    );
}

#[test]
fn the_simulation_decides_the_outcome() {
    let (plug, _) = sim(-0.25);
    let ran = Harness::phase(rail)
        .plug_dyn(plug)
        .parameter("rail_volts", 3.3)
        .run();
    assert_eq!(ran.outcome(), Outcome::Fail);
    assert_eq!(ran.measurement("rail").outcome, MeasurementOutcome::Fail);
}

#[test]
fn a_missing_parameter_is_the_phase_error() {
    let (plug, _) = sim(0.0);
    let ran = Harness::phase(rail).plug_dyn(plug).run();
    assert_eq!(ran.outcome(), Outcome::Error);
    assert_eq!(ran.phase("rail").outcome, PhaseOutcome::Error);
}

#[test]
fn the_serial_number_is_the_one_given() {
    let ran = Harness::phase(serial).serial_number("SIM-0042").run();
    assert_eq!(ran.record.dut_id, "SIM-0042");
    assert_eq!(
        ran.value("serial").and_then(|v| v.as_str()),
        Some("SIM-0042")
    );
    let ran = Harness::phase(serial).serial_number("PCB01").run();
    assert_eq!(ran.outcome(), Outcome::Fail);
}

#[test]
fn a_group_runs_its_teardown_on_the_simulation() {
    let (plug, calls) = sim(0.0);
    let group = PhaseGroup::new("powered")
        .setup([rail])
        .teardown([power_off]);
    let ran = Harness::phase(group)
        .plug_dyn(plug)
        .parameter("rail_volts", 3.3)
        .run();
    assert_eq!(ran.outcome(), Outcome::Pass);
    assert_eq!(
        *calls.lock().unwrap(),
        ["setup", "set 3.3", "set 0", "teardown"]
    );
}

#[test]
fn a_whole_test_runs_with_its_plug_swapped_and_writes_nothing() {
    let records = tempfile::tempdir().unwrap();
    // Run on the bench's plug, the test would be ERROR at the plug's setup.
    let (plug, calls) = sim(0.01);
    let ran = Harness::test(fvt1(records.path()))
        .plug_dyn(plug)
        .parameter("rail_volts", 3.3)
        .serial_number("SIM-0007")
        .run();
    assert_eq!(
        ran.outcome(),
        Outcome::Pass,
        "{:?}",
        ran.record.outcome_details
    );
    assert_eq!(ran.record.metadata.procedure_id, "FVT1");
    assert_eq!(ran.record.phases.len(), 2);
    assert_eq!(
        calls.lock().unwrap().first().map(String::as_str),
        Some("setup")
    );
    // The test's JSON output was left out.
    assert_eq!(std::fs::read_dir(records.path()).unwrap().count(), 0);

    // The same test without the swap uses the bench's plug (the harness changes nothing else).
    let ran = Harness::test(fvt1(records.path()))
        .parameter("rail_volts", 3.3)
        .run();
    assert_eq!(ran.outcome(), Outcome::Error);
    assert_eq!(std::fs::read_dir(records.path()).unwrap().count(), 0);
}

#[test]
#[should_panic(expected = "no phase `nope` ran; the record has `serial`")]
fn a_lookup_of_a_phase_that_did_not_run_names_those_that_did() {
    let ran = Harness::phase(serial).run();
    let _ = ran.phase("nope");
}

#[phase]
#[measures(rail: Si<tofu_core::si::volt> = in_range(3.2, 3.4).units(VOLT))]
fn si_rail(m: &mut si_rail::Measurements) {
    m.rail.set(3.3);
}

/// `.units(…)` naming the kind's own unit compiles (another unit doesn't: tests/ui) and runs.
#[test]
fn an_si_measurement_may_repeat_its_own_unit() {
    let ran = Harness::phase(si_rail).run();
    assert_eq!(
        ran.outcome(),
        Outcome::Pass,
        "{:?}",
        ran.record.outcome_details
    );
}

/// The record says where each phase was written (its `codeinfo`'s `file` and `line`).
#[test]
fn the_record_says_where_the_phase_was_written() {
    let ran = Harness::phase(serial).run();
    let json = serde_json::to_value(&ran.record).unwrap();
    let codeinfo = &json["phases"][0]["codeinfo"];
    assert_eq!(codeinfo["name"], "serial");
    assert_eq!(codeinfo["file"], file!());
    let source = include_str!("testing.rs");
    let line = codeinfo["line"].as_u64().unwrap() as usize;
    // `#[phase]`, `#[measures(…)]` and `fn serial(` are the three lines of its declaration.
    let fn_line = 1 + source
        .lines()
        .position(|l| l.starts_with("fn serial("))
        .unwrap();
    assert!(
        (fn_line - 2..=fn_line).contains(&line),
        "line {line}, the function is at {fn_line}"
    );
}
