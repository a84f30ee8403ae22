//! Instruments as plugs in real runs: identity and calibration in the record, errors as
//! phase ERRORs, reconnection between phases, the transcript in the log, safe teardown.

use chrono::{Days, Local};
use serde_json::Value as Json;
use tofu_core::prelude::*;
use tofu_core::si::{ElectricCurrent, ElectricPotential, ampere, volt};
use tofu_core::{Outcome, PhaseOutcome, TestRecord, outcome::PhaseExecution};
use tofu_instruments::{Dmm, ElectronicLoad, InstrumentError, PowerSupply};
use tofu_sim::{Simulator, TcpServer};

struct Bench {
    sim: Simulator,
    dmm: TcpServer,
    psu: TcpServer,
    load: TcpServer,
}

fn bench() -> Bench {
    let sim = Simulator::bench();
    Bench {
        dmm: sim.serve_tcp("dmm", "127.0.0.1:0").unwrap(),
        psu: sim.serve_tcp("psu", "127.0.0.1:0").unwrap(),
        load: sim.serve_tcp("load", "127.0.0.1:0").unwrap(),
        sim,
    }
}

/// A test that writes no file and prints nothing.
fn quiet_test() -> Test {
    Test::new("FVT1").without_json_output().quiet()
}

/// A test with the three instruments of the bench.
fn test(b: &Bench) -> Test {
    quiet_test()
        .plug(PowerSupply::new(&b.psu.resource()).unwrap())
        .plug(ElectronicLoad::new(&b.load.resource()).unwrap())
        .plug(Dmm::new(&b.dmm.resource()).unwrap())
}

fn instruments(record: &TestRecord) -> Vec<Json> {
    match record.metadata.extra.get("instruments") {
        Some(Json::Array(list)) => list.clone(),
        other => panic!("no instruments list: {other:?}"),
    }
}

fn error_message(record: &TestRecord, phase: &str) -> String {
    let p = record.phases.iter().find(|p| p.name == phase).unwrap();
    assert_eq!(p.outcome, PhaseOutcome::Error);
    match &p.result {
        PhaseExecution::Error { exc_val, .. } => exc_val.clone(),
        other => panic!("{other:?}"),
    }
}

#[phase]
#[measures(
    vout: Si<volt> = in_range(3.2, 3.4),
    iin: Si<ampere> = in_range(0.5, 0.9),
)]
fn loaded_output(
    m: &mut loaded_output::Measurements,
    psu: &mut PowerSupply,
    load: &mut ElectronicLoad,
    dmm: &mut Dmm,
) -> Result<(), InstrumentError> {
    psu.set_current_limit(ElectricCurrent::new::<ampere>(2.0))?;
    psu.set_voltage(ElectricPotential::new::<volt>(5.0))?;
    psu.output(true)?;
    load.set_current(ElectricCurrent::new::<ampere>(1.0))?;
    load.input(true)?;
    m.vout.set(dmm.measure_dc_voltage()?);
    m.iin.set(psu.measure_current()?);
    Ok(())
}

#[test]
fn the_record_lists_each_instrument_and_readings_follow_the_load() {
    let b = bench();
    let execution = test(&b).phases([loaded_output]).execute(|| "SN-1");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    let m = &execution.record.phases[0].measurements;
    assert_eq!(m[0].measured_value, Some(tofu_core::Value::Number(3.28)));
    let list = instruments(&execution.record);
    let names: Vec<&str> = list.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["psu", "load", "dmm"],
        "in the order the plugs were given"
    );
    let dmm = &list[2];
    assert_eq!(dmm["manufacturer"], "TOFU SIM");
    assert_eq!(dmm["model"], "DMM-6500");
    assert_eq!(dmm["serial_number"], "DMM000421");
    assert_eq!(dmm["firmware"], "1.7.2");
    assert_eq!(dmm["idn"], "TOFU SIM,DMM-6500,DMM000421,1.7.2");
    assert_eq!(dmm["address"], b.dmm.resource());
    assert!(dmm.get("calibration_due").is_none());
    // And in the JSON record.
    let json: Json = serde_json::to_value(&execution.record).unwrap();
    assert_eq!(json["metadata"]["instruments"][0]["model"], "PSU-3005");
    // The supply's output and the load's input were switched off at teardown.
    assert_eq!(
        b.sim.property("psu", "output").unwrap().as_deref(),
        Some("0")
    );
    assert_eq!(
        b.sim.property("load", "input").unwrap().as_deref(),
        Some("0")
    );
}

#[phase]
fn bad_range(dmm: &mut Dmm) -> Result<(), InstrumentError> {
    dmm.write("VOLT:DC:RANG 3")
}

#[test]
fn an_instrument_error_is_a_phase_error_with_its_message() {
    let b = bench();
    let execution = test(&b).phases([bad_range]).execute(|| "SN-1");
    assert_eq!(execution.record.outcome, Outcome::Error);
    let msg = error_message(&execution.record, "bad_range");
    assert!(
        msg.contains("VOLT:DC:RANG 3") && msg.contains("-222") && msg.contains("Data out of range"),
        "{msg}"
    );
}

#[phase]
#[measures(first: Si<volt> = in_range(3.2, 3.4))]
fn first_reading(
    m: &mut first_reading::Measurements,
    psu: &mut PowerSupply,
    dmm: &mut Dmm,
) -> Result<(), InstrumentError> {
    psu.set_voltage(ElectricPotential::new::<volt>(5.0))?;
    psu.output(true)?;
    m.first.set(dmm.measure_dc_voltage()?);
    Ok(())
}

/// The bench's cabling: pulling it closes the DMM's socket between phases (a reboot, a
/// switch).
struct Cable(Simulator);

impl Plug for Cable {}

#[phase]
fn cable_pulled(cable: &mut Cable) {
    assert_eq!(cable.0.drop_connections("dmm").unwrap(), 1);
    std::thread::sleep(std::time::Duration::from_millis(50));
}

#[phase]
#[measures(second: Si<volt> = in_range(3.2, 3.4))]
fn second_reading(
    m: &mut second_reading::Measurements,
    dmm: &mut Dmm,
) -> Result<(), InstrumentError> {
    m.second.set(dmm.measure_dc_voltage()?);
    Ok(())
}

#[test]
fn a_connection_dropped_between_phases_is_reopened() {
    let b = bench();
    let execution = test(&b)
        .plug(Cable(b.sim.clone()))
        .phases([first_reading, cable_pulled, second_reading])
        .execute(|| "SN-1");
    assert!(
        execution.passed(),
        "{:?}",
        execution
            .record
            .phases
            .iter()
            .map(|p| (&p.name, &p.result))
            .collect::<Vec<_>>()
    );
    let logs = &execution.record.log_records;
    assert!(
        logs.iter().any(|l| l.level == 30
            && l.message
                .contains("dmm: the connection dropped; reconnecting")),
        "{:?}",
        logs.iter().map(|l| &l.message).collect::<Vec<_>>()
    );
}

#[test]
fn the_transcript_is_in_the_record_log_at_debug() {
    let b = bench();
    let execution = test(&b).phases([first_reading]).execute(|| "SN-1");
    assert!(execution.passed());
    let lines: Vec<(&str, u8)> = execution
        .record
        .log_records
        .iter()
        .filter(|l| l.logger_name.contains("transcript"))
        .map(|l| (l.message.as_str(), l.level))
        .collect();
    for want in [
        "psu > VOLT 5",
        "psu > OUTP 1",
        "dmm > MEAS:VOLT:DC?",
        "dmm < +3.300000000E+00",
        "dmm > *IDN?",
    ] {
        assert!(
            lines.iter().any(|(m, level)| *m == want && *level == 10),
            "{want} not in {lines:?}"
        );
    }
}

#[phase]
fn transcript_attached(
    test: &mut PhaseContext,
    dmm: &mut Dmm,
) -> Result<(), Box<dyn std::error::Error>> {
    dmm.measure_dc_voltage()?;
    dmm.attach_transcript(test)?;
    Ok(())
}

#[test]
fn the_transcript_can_be_attached() {
    let b = bench();
    let execution = quiet_test()
        .plug(
            Dmm::new(&b.dmm.resource())
                .unwrap()
                .with(|i| i.keep_transcript(true)),
        )
        .phases([transcript_attached])
        .execute(|| "SN-1");
    assert!(execution.passed());
    let a = &execution.record.phases[0].attachments[0];
    assert_eq!(a.name, "dmm-transcript.txt");
    let text = String::from_utf8(a.data.to_vec()).unwrap();
    assert!(
        text.starts_with("> *CLS\n> *IDN?\n< TOFU SIM,DMM-6500"),
        "{text}"
    );
    assert!(
        text.contains("> MEAS:VOLT:DC?\n< +0.000000000E+00\n"),
        "{text}"
    );
}

#[phase]
fn never_runs() {
    panic!("a phase ran with an instrument out of calibration");
}

#[test]
fn an_expired_calibration_fails_the_run_at_its_start() {
    let b = bench();
    let yesterday = Local::now().date_naive() - Days::new(1);
    let execution = quiet_test()
        .plug(
            Dmm::new(&b.dmm.resource())
                .unwrap()
                .with(|i| i.calibration_due(yesterday)),
        )
        .phases([never_runs])
        .execute(|| "SN-1");
    assert_eq!(execution.record.outcome, Outcome::Error);
    assert!(execution.record.phases.is_empty());
    let details = format!("{:?}", execution.record.outcome_details);
    assert!(
        details.contains("calibration expired on")
            && details.contains(&yesterday.to_string())
            && details.contains("DMM000421"),
        "{details}"
    );
    let dmm = &instruments(&execution.record)[0];
    assert_eq!(dmm["calibration_due"], yesterday.to_string());
    assert_eq!(dmm["calibration_expired"], true);
    assert_eq!(
        dmm["serial_number"], "DMM000421",
        "the instrument is named even though it failed"
    );
}

#[phase]
fn runs() {}

#[test]
fn an_expired_calibration_can_be_a_warning_and_a_valid_one_is_recorded() {
    let b = bench();
    let today = Local::now().date_naive();
    let expired = today - Days::new(30);
    let execution = quiet_test()
        .plug(
            Dmm::new(&b.dmm.resource())
                .unwrap()
                .with(|i| i.calibration_due(expired).warn_when_calibration_expired()),
        )
        .plug(
            PowerSupply::new(&b.psu.resource())
                .unwrap()
                .with(|i| i.calibration_due(today)),
        )
        .phases([runs])
        .execute(|| "SN-1");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    let list = instruments(&execution.record);
    assert_eq!(
        (
            list[0]["calibration_expired"].clone(),
            list[1]["calibration_expired"].clone()
        ),
        (Json::Bool(true), Json::Bool(false))
    );
    assert_eq!(list[1]["calibration_due"], today.to_string());
    assert!(
        execution
            .record
            .log_records
            .iter()
            .any(|l| l.level == 30 && l.message.contains("calibration expired"))
    );
}

#[test]
fn an_unreachable_instrument_fails_setup_and_is_still_listed() {
    let b = bench();
    let port = b.load.addr().port();
    drop(b.load);
    let execution = quiet_test()
        .plug(ElectronicLoad::new(&format!("tcp://127.0.0.1:{port}")).unwrap())
        .phases([runs])
        .execute(|| "SN-1");
    assert_eq!(execution.record.outcome, Outcome::Error);
    let details = format!("{:?}", execution.record.outcome_details);
    assert!(
        details.contains("can't connect") && details.contains(&port.to_string()),
        "{details}"
    );
    let list = instruments(&execution.record);
    assert_eq!(list[0]["connected"], false);
    assert_eq!(list[0]["name"], "load");
}

#[phase]
#[measures(range: f64 = equals(10))]
fn range_after_setup(
    m: &mut range_after_setup::Measurements,
    dmm: &mut Dmm,
) -> Result<(), InstrumentError> {
    m.range.set(dmm.query_f64("VOLT:DC:RANG?")?);
    Ok(())
}

#[test]
fn reset_at_setup_puts_the_instrument_in_its_default_state() {
    let b = bench();
    // Someone left the range at 100 V.
    let address = tofu_instruments::Address::parse(&b.dmm.resource()).unwrap();
    tofu_instruments::Scpi::connect("setup", &address, Default::default())
        .unwrap()
        .write("VOLT:DC:RANG 100")
        .unwrap();
    let run = |reset: bool| {
        quiet_test()
            .plug(
                Dmm::new(&b.dmm.resource())
                    .unwrap()
                    .with(|i| i.reset_at_setup(reset)),
            )
            .phases([range_after_setup])
            .execute(|| "SN-1")
    };
    assert!(
        !run(false).passed(),
        "without a reset the range is still 100 V"
    );
    assert!(run(true).passed());
}
