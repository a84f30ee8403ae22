//! The record is a superset of OpenHTF's: `sample_test.py` rewritten with tofu gives the record
//! of `sample_record.json`, field by field, for every feature both have.

use serde_json::Value as Json;
use tofu_core::prelude::*;

fn sample_record() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/openhtf/sample_record.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[phase]
#[measures(
    input_voltage: f64 = in_range(4.5, 5.5).units(VOLT).doc("Supply voltage at connector J1"),
    input_current: f64 = in_range(0.1, 0.5).marginal(0.15, 0.45).units(AMPERE),
    firmware_version: String = equals("1.2.3"),
    self_test_ok: bool = equals(true),
    serial_number: String = matches_regex(r"^SN\d{6}$"),
    temperature: f64 = within_percent(25.0, 10).units(DEGREE_CELSIUS).precision(2),
)]
fn power_on(
    test: &mut PhaseContext,
    m: &mut power_on::Measurements,
) -> Result<(), Box<dyn std::error::Error>> {
    tracing::info!("Powering DUT, measuring rails");
    m.input_voltage.set(5.02);
    m.input_current.set(0.47);
    m.firmware_version.set("1.2.3");
    m.self_test_ok.set(true);
    m.serial_number.set("SN123456");
    m.temperature.set(25.123456);
    test.attach("rails.txt", "VCC=5.02\nVDD=3.30\n")?;
    test.attach_with_mimetype(
        "blob.bin",
        (0u8..16).collect::<Vec<u8>>(),
        "application/octet-stream",
    )?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("upload.csv");
    std::fs::write(&file, "t,v\n0,1\n1,2\n")?;
    test.attach_file_as(&file, "trace.csv")?;
    Ok(())
}

#[phase]
#[measures(
    iv_sweep: Sweep<3> = dimensions([SECOND, VOLT, AMPERE]).units(OHM).each(in_range(90, 110))
        .doc("R = V / I at time t"),
    sweep_points: f64,
)]
fn iv_sweep(m: &mut iv_sweep::Measurements) {
    for i in 0..100 {
        let t = f64::from(i) * 0.01;
        let v = 0.05 * f64::from(i + 1);
        let a = v / 100.0;
        m.iv_sweep.push([t, v, a], ((v / a) * 1e6).round() / 1e6);
    }
    m.sweep_points.set(100);
}

#[phase]
#[measures(leakage_current: f64 = at_most(1e-6).units(AMPERE), optional_check: f64 = in_range(0, 5))]
fn leakage(m: &mut leakage::Measurements) {
    m.leakage_current.set(3.2e-6);
    m.optional_check.set(3);
    tracing::warn!("Leakage above spec");
}

#[phase]
#[measures(informational_ratio: f64 = in_range(0.9, 1.1).allow_fail())]
fn operator_visual_check(m: &mut operator_visual_check::Measurements) -> PhaseResult {
    m.informational_ratio.set(1.5);
    tracing::error!("Scratch on enclosure; failing phase explicitly");
    PhaseResult::FailAndContinue
}

#[phase]
#[measures(never_set: f64 = in_range(0, 1))]
fn skipped_phase(_m: &mut skipped_phase::Measurements) -> PhaseResult {
    PhaseResult::Skip
}

#[phase(repeat_limit = 3)]
#[measures(attempt_value: f64 = at_least(1))]
fn flaky(test: &mut PhaseContext, m: &mut flaky::Measurements) -> PhaseResult {
    m.attempt_value.set(test.attempt());
    if test.attempt() < 2 {
        PhaseResult::Repeat
    } else {
        PhaseResult::Continue
    }
}

#[phase]
#[measures(sub_value: f64 = equals(1))]
fn sub_phase_a(m: &mut sub_phase_a::Measurements) {
    m.sub_value.set(1);
}

#[phase(name = "SubPhaseB_7")]
fn sub_phase_b() {
    tracing::info!("sub phase b idx=7");
}

#[phase]
fn group_setup() {
    tracing::info!("group setup");
}

#[derive(Debug)]
struct RuntimeError(&'static str);

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[phase]
#[measures(before_crash: f64 = in_range(0, 10))]
fn crashing_phase(m: &mut crashing_phase::Measurements) -> Result<(), RuntimeError> {
    m.before_crash.set(5);
    Err(RuntimeError("instrument did not respond"))
}

#[phase]
fn group_teardown() {
    tracing::info!("group teardown still runs after exception");
}

#[phase]
fn never_reached() {
    tracing::info!("not reached");
}

fn as_number(v: &Json) -> Option<f64> {
    v.as_f64()
}

/// Compares a measured value: numbers by value (OpenHTF writes `3`, we write `3.0`).
fn same_value(ours: &Json, theirs: &Json) -> bool {
    match (ours, theirs) {
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
        }
        _ => match (as_number(ours), as_number(theirs)) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            _ => ours == theirs,
        },
    }
}

#[test]
fn the_sample_test_gives_openhtfs_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("sample_test")
        .name("sample_test")
        .part_number("PN-42")
        .metadata(
            "test_description",
            "Reference record for a Rust re-implementation",
        )
        .metadata("test_version", "0.1.0")
        .metadata(
            "custom_meta",
            serde_json::json!({"operator": "alice", "lot": 17}),
        )
        .station_id("station-01")
        .phases([
            power_on,
            iv_sweep,
            leakage,
            operator_visual_check,
            skipped_phase,
            flaky,
        ])
        .phases([Subtest::new("sub1", [sub_phase_a, sub_phase_b])])
        .phases([PhaseGroup::new("crash_group")
            .setup([group_setup])
            .main([crashing_phase, never_reached])
            .teardown([group_teardown])])
        .json_output(JsonOutput::to_dir(dir.path()).indent(2))
        .quiet();
    let execution = test.execute(|| "DUT-0001");
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let ours: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let theirs = sample_record();
    assert!(!execution.passed());

    // Top level: every key OpenHTF writes, in OpenHTF's order, with the same outcome.
    let ours_keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
    let theirs_keys: Vec<&String> = theirs.as_object().unwrap().keys().collect();
    assert_eq!(ours_keys, theirs_keys);
    for key in [
        "dut_id",
        "outcome",
        "outcome_details",
        "marginal",
        "station_id",
    ] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    for key in [
        "test_name",
        "part_number",
        "test_description",
        "test_version",
        "custom_meta",
    ] {
        assert_eq!(
            ours["metadata"][key], theirs["metadata"][key],
            "metadata.{key}"
        );
    }

    // Phases: OpenHTF records its trigger as a phase; every other phase record matches, the
    // subtest's and the group's (whose teardown runs after the crash) included.
    let theirs_phases: Vec<&Json> = theirs["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "trigger_phase")
        .collect();
    let ours_phases = ours["phases"].as_array().unwrap();
    assert_eq!(ours_phases.len(), theirs_phases.len());
    for (o, t) in ours_phases.iter().zip(theirs_phases) {
        let name = t["name"].as_str().unwrap();
        for key in t.as_object().unwrap().keys() {
            assert!(o.get(key).is_some(), "phase {name} lacks {key}");
        }
        for key in ["name", "outcome", "marginal", "subtest_name"] {
            assert_eq!(o[key], t[key], "phase {name}: {key}");
        }
        if t["result"]["phase_result"].is_object() {
            assert_eq!(
                o["result"]["phase_result"]["exc_val"], t["result"]["phase_result"]["exc_val"],
                "{name}"
            );
            assert_eq!(o["result"]["phase_result"]["exc_type"], "RuntimeError");
        } else {
            assert_eq!(o["result"], t["result"], "phase {name}: result");
        }
        let om = o["measurements"].as_object().unwrap();
        let tm = t["measurements"].as_object().unwrap();
        assert_eq!(
            om.keys().collect::<Vec<_>>(),
            tm.keys().collect::<Vec<_>>(),
            "phase {name}: measurement names"
        );
        for (mname, tmeas) in tm {
            let omeas = &om[mname];
            for key in ["name", "validators", "units", "dimensions", "docstring"] {
                assert_eq!(omeas.get(key), tmeas.get(key), "{name}.{mname}.{key}");
            }
            let want_outcome = if tmeas["outcome"] == "UNSET" && t["outcome"] == "SKIP" {
                "SKIPPED"
            } else {
                tmeas["outcome"].as_str().unwrap()
            };
            assert_eq!(omeas["outcome"], want_outcome, "{name}.{mname}.outcome");
            match tmeas.get("measured_value") {
                Some(v) => assert!(
                    same_value(&omeas["measured_value"], v),
                    "{name}.{mname}: {} vs {v}",
                    omeas["measured_value"]
                ),
                None => assert!(omeas.get("measured_value").is_none(), "{name}.{mname}"),
            }
        }
        let oa = o["attachments"].as_object().unwrap();
        let ta = t["attachments"].as_object().unwrap();
        assert_eq!(
            oa.keys().collect::<Vec<_>>(),
            ta.keys().collect::<Vec<_>>(),
            "phase {name}: attachments"
        );
        for (aname, tatt) in ta {
            for key in ["mimetype", "sha1", "data"] {
                assert_eq!(oa[aname][key], tatt[key], "{name}.{aname}.{key}");
            }
        }
    }

    // The logs the phases wrote are there, with OpenHTF's level numbers.
    let messages: Vec<(i64, &str)> = ours["log_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["level"].as_i64().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    for want in [
        (20, "Powering DUT, measuring rails"),
        (30, "Leakage above spec"),
        (40, "Scratch on enclosure; failing phase explicitly"),
    ] {
        assert!(messages.contains(&want), "{want:?} not in {messages:?}");
    }
}

#[test]
fn the_sample_tests_subtest_is_recorded_as_openhtf_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("sample_test")
        .phases([Subtest::new("sub1", [sub_phase_a, sub_phase_b])])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let ours = serde_json::to_value(&test.execute(|| "DUT-0001").record).unwrap();
    let theirs = sample_record();
    let keys = |v: &Json| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours["subtests"][0]), keys(&theirs["subtests"][0]));
    assert_eq!(ours["subtests"][0]["name"], theirs["subtests"][0]["name"]);
    assert_eq!(
        ours["subtests"][0]["outcome"],
        theirs["subtests"][0]["outcome"]
    );
}
