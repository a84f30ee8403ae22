//! JUnit XML output (`tofu_core::junit`): one test case per phase, failures naming the
//! measurement, its value and its limits, errors and skips as such, and every file valid
//! against `fixtures/junit/junit.xsd` (checked with `xmllint --schema`, Debian's
//! libxml2-utils; without it these checks say loudly that they were skipped, and fail when
//! `TOFU_REQUIRE_XMLLINT=1`, as CI sets it).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tofu_core::prelude::*;
use tofu_core::{JunitOutput, TestRecord};

const REQUIRE_XMLLINT_ENV: &str = "TOFU_REQUIRE_XMLLINT";

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/junit/junit.xsd")
}

/// `Some(Ok(()))` when `xmllint --schema` accepts the file, `Some(Err(why))` when it refuses
/// it, `None` (after a loud message) when xmllint is not installed.
fn validate(file: &Path) -> Option<Result<(), String>> {
    let output = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg(file)
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            let thread = std::thread::current();
            let message = format!(
                "{}: SKIPPED the schema check, xmllint can't run ({e}; `apt-get install -y libxml2-utils`)",
                thread.name().unwrap_or("junit")
            );
            if std::env::var(REQUIRE_XMLLINT_ENV).is_ok_and(|v| v == "1") {
                panic!("{message} ({REQUIRE_XMLLINT_ENV}=1: a skip is a failure)");
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! {message}\n!!!!! set {REQUIRE_XMLLINT_ENV}=1 to make this a failure\n"
            );
            return None;
        }
    };
    if output.status.success() {
        Some(Ok(()))
    } else {
        Some(Err(String::from_utf8_lossy(&output.stderr).into_owned()))
    }
}

fn assert_valid(file: &Path) {
    if let Some(Err(why)) = validate(file) {
        panic!(
            "{} is not valid JUnit XML:\n{why}\n{}",
            file.display(),
            std::fs::read_to_string(file).unwrap_or_default()
        );
    }
}

/// Runs `test` with a JUnit output into a fresh folder; the record and the one XML file.
fn run(test: Test, serial: &str) -> (TestRecord, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test
        .json_output(JsonOutput::to_dir(dir.path().join("records")))
        .output(JunitOutput::to_dir(dir.path().join("junit")))
        .quiet();
    let execution = test.execute(|| serial);
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("junit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "xml"));
    assert_valid(&files[0]);
    let xml = std::fs::read_to_string(&files[0]).unwrap();
    (execution.record, xml, dir)
}

#[phase(name = "Power rails")]
#[measures(
    rail_3v3: f64 = in_range(3.2, 3.4).units(VOLT),
    firmware: String = equals("1.2.7"),
)]
fn power_rails(m: &mut power_rails::Measurements) {
    m.rail_3v3.set(3.45);
    m.firmware.set("1.2.7");
}

#[phase]
#[measures(current: f64 = at_most(0.5).units(AMPERE))]
fn current(m: &mut current::Measurements) {
    m.current.set(0.2);
}

#[phase]
fn instrument_gone() -> Result<(), String> {
    Err("no answer from <PSU> & \"DMM\"\u{7}".into())
}

#[phase]
fn asks_to_fail_subtest() -> PhaseResult {
    PhaseResult::FailSubtest
}

#[phase]
fn skipped_in_subtest() {}

#[test]
fn each_phase_is_a_test_case_and_a_failure_names_measurement_value_and_limits() {
    let test = Test::new("FVT1")
        .part_number("PCB01")
        .phases([power_rails, current])
        .phases([Subtest::new(
            "rf",
            [asks_to_fail_subtest, skipped_in_subtest],
        )])
        .phases([instrument_gone]);
    let (record, xml, _dir) = run(test, "PCB01A0001");
    assert_eq!(record.phases.len(), 5);
    assert!(
        xml.contains(
            "<testsuite name=\"FVT1 PCB01A0001\" tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"1\""
        ),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<failure type=\"FAIL\" message=\"rail_3v3 = 3.45 V  (limits: 3.2 &lt;= x &lt;= 3.4)\">"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"current\" classname=\"FVT1\""),
        "{xml}"
    );
    assert!(xml.contains("<skipped/>"), "{xml}");
    assert!(
        xml.contains(
            "<error type=\"String\" message=\"no answer from &lt;PSU&gt; &amp; &quot;DMM&quot;\u{FFFD}\">"
        ),
        "{xml}"
    );
    // Measurements are properties: name, value, limits and outcome.
    let firmware = xml
        .lines()
        .find(|l| l.contains("<property name=\"Power rails.firmware\""))
        .unwrap_or_else(|| panic!("no firmware property: {xml}"));
    assert!(
        firmware.contains("value=\"firmware = &quot;1.2.7&quot;  (limits: ")
            && firmware.ends_with("[PASS]\"/>"),
        "{firmware}"
    );
    assert!(
        xml.contains("<property name=\"current.current\" value=\"current = 0.2 A  (limits: x &lt;= 0.5) [PASS]\"/>"),
        "{xml}"
    );
}

#[test]
fn a_run_that_failed_before_any_phase_is_not_green() {
    // An empty serial number: ERROR, no phase ran.
    let (record, xml, _dir) = run(Test::new("FVT1").phases([current]), "");
    assert!(record.phases.is_empty());
    assert!(
        xml.contains("tests=\"1\" failures=\"0\" errors=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"run\""), "{xml}");
    assert!(xml.contains("<error type=\"ERROR\""), "{xml}");
}

#[test]
fn a_passing_run_has_no_failure() {
    let (record, xml, _dir) = run(Test::new("FVT1").phases([current]), "SN-1");
    assert_eq!(record.outcome, tofu_core::Outcome::Pass);
    assert!(
        xml.contains("tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\""),
        "{xml}"
    );
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
}

#[test]
fn the_schema_check_is_real() {
    // The same shape with a test case holding a failure and an error, and a count that is not
    // a number: the schema must refuse it (else the checks above prove nothing).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"x\" tests=\"many\" failures=\"0\" errors=\"0\">\
         <testcase name=\"a\"><failure/><error/></testcase></testsuite></testsuites>\n",
    )
    .unwrap();
    if let Some(result) = validate(&bad) {
        assert!(result.is_err(), "the schema accepted an invalid file");
    }
}

#[test]
fn tofu_junit_dir_turns_it_on_for_the_quickstart_without_a_code_change() {
    let records = tempfile::tempdir().unwrap();
    let junit = tempfile::tempdir().unwrap();
    let output = Command::new(&crate::example_binaries::executables()["quickstart"])
        .current_dir(records.path())
        .env("TOFU_OUTPUT_DIR", records.path())
        .env("TOFU_JUNIT_DIR", junit.path())
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFU_OUTBOX_DIR")
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{console}");
    let files: Vec<PathBuf> = std::fs::read_dir(junit.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one XML per run: {files:?}");
    assert!(console.contains("JUnit XML: written to"), "{console}");
    assert_valid(&files[0]);
    let xml = std::fs::read_to_string(&files[0]).unwrap();
    let record: serde_json::Value = std::fs::read_dir(records.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .unwrap();
    let phases = record["phases"].as_array().unwrap();
    assert_eq!(xml.matches("<testcase ").count(), phases.len(), "{xml}");
}
