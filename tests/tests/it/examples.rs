//! Runs every example of `examples/examples/` as a real process and checks the record it
//! writes.
//!
//! The examples are built once (`cargo build --examples -p examples`), then each test runs one
//! example's binary with `TOFU_OUTPUT_DIR` set to a fresh folder, from another fresh folder as
//! the current directory (so an example that depends on the current directory fails here).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::example_binaries::{executables, workspace_root};

/// The keys of an OpenHTF record, all of which every record must have.
const TOP_LEVEL_KEYS: [&str; 15] = [
    "dut_id",
    "start_time_millis",
    "end_time_millis",
    "outcome",
    "outcome_details",
    "marginal",
    "metadata",
    "phases",
    "subtests",
    "branches",
    "diagnosers",
    "diagnoses",
    "log_records",
    "station_id",
    "code_info",
];

/// Runs the example `name`, checks it exits 0 and writes exactly one JSON record; returns the
/// record after the checks every record must pass (top-level keys, outcome PASS).
pub(crate) fn run_example(name: &str) -> Value {
    let executable = executables()
        .get(name)
        .unwrap_or_else(|| panic!("cargo built no example named `{name}`"));
    let output_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("can't make a temp dir: {e}"));
    let cwd = tempfile::tempdir().unwrap_or_else(|e| panic!("can't make a temp dir: {e}"));
    let output = Command::new(executable)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", output_dir.path())
        // Offline: a key in the caller's environment must not upload test runs to TofuPilot
        // (without one, the uploader keeps the run in `outbox/` of the output folder).
        .env_remove("TOFUPILOT_API_KEY")
        .env_remove("TOFU_OUTBOX_DIR")
        .output()
        .unwrap_or_else(|e| panic!("can't run {}: {e}", executable.display()));
    let console = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "example `{name}` exited with {}\n{console}",
        output.status
    );

    let files: Vec<PathBuf> = std::fs::read_dir(output_dir.path())
        .unwrap_or_else(|e| panic!("can't list {}: {e}", output_dir.path().display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("can't list {}: {e}", output_dir.path().display()));
    let records: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(
        records.len(),
        1,
        "example `{name}` should write one JSON record, found {files:?}\n{console}"
    );
    let text = std::fs::read_to_string(records[0])
        .unwrap_or_else(|e| panic!("can't read {}: {e}", records[0].display()));
    let record: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the record of `{name}` is not JSON: {e}\n{text}"));

    check_common_shape(name, &record);
    record
}

fn check_common_shape(name: &str, record: &Value) {
    let object = record
        .as_object()
        .unwrap_or_else(|| panic!("the record of `{name}` is not an object"));
    for key in TOP_LEVEL_KEYS {
        assert!(
            object.contains_key(key),
            "the record of `{name}` lacks `{key}`: {record:#}"
        );
    }
    assert_eq!(record["outcome"], "PASS", "example `{name}`: {record:#}");
    assert_eq!(record["outcome_details"], json!([]), "example `{name}`");
    // As OpenHTF: no marginal flag at all when no phase ran (`required_metadata` has none).
    let no_phase = record["phases"].as_array().is_some_and(Vec::is_empty);
    let marginal = if no_phase { Value::Null } else { json!(false) };
    assert_eq!(record["marginal"], marginal, "example `{name}`");
    let start = record["start_time_millis"]
        .as_i64()
        .unwrap_or_else(|| panic!("`{name}`: start_time_millis"));
    let end = record["end_time_millis"]
        .as_i64()
        .unwrap_or_else(|| panic!("`{name}`: end_time_millis"));
    assert!(
        start > 0 && start <= end,
        "example `{name}`: start {start}, end {end}"
    );
    for key in [
        "subtests",
        "branches",
        "diagnosers",
        "diagnoses",
        "log_records",
        "phases",
    ] {
        assert!(
            record[key].is_array(),
            "example `{name}`: `{key}` is not a list"
        );
    }
    assert!(
        record["station_id"].as_str().is_some_and(|s| !s.is_empty()),
        "example `{name}`: station_id"
    );
    assert!(
        record["code_info"].is_object(),
        "example `{name}`: code_info"
    );
    // Every phase passes in the end; attempts that were repeated are SKIP and are checked by
    // the example's own test.
    let all = phases(record);
    for (i, phase) in all.iter().enumerate() {
        let repeated_later = all[i + 1..].iter().any(|p| p["name"] == phase["name"]);
        if repeated_later {
            assert_eq!(
                phase["outcome"], "SKIP",
                "example `{name}`, repeated phase {}",
                phase["name"]
            );
            continue;
        }
        assert_eq!(
            phase["outcome"], "PASS",
            "example `{name}`, phase {}",
            phase["name"]
        );
        assert_eq!(
            phase["result"],
            json!({"phase_result": "CONTINUE"}),
            "example `{name}`"
        );
        let measurements = phase["measurements"]
            .as_object()
            .unwrap_or_else(|| panic!("`{name}`: measurements"));
        for (measurement, m) in measurements {
            assert_eq!(
                m["outcome"], "PASS",
                "example `{name}`, measurement {measurement}: {m:#}"
            );
        }
    }
}

fn phases(record: &Value) -> &[Value] {
    record["phases"].as_array().map_or(&[], Vec::as_slice)
}

fn phase_names(record: &Value) -> Vec<&str> {
    phases(record)
        .iter()
        .map(|p| p["name"].as_str().unwrap_or("<no name>"))
        .collect()
}

fn check_unit(record: &Value, dut_id: &str, part_number: &str) {
    assert_eq!(record["dut_id"], dut_id);
    assert_eq!(record["metadata"]["procedure_id"], "FVT1");
    assert_eq!(record["metadata"]["part_number"], part_number);
}

/// The phase named `name` (its first attempt).
fn phase<'r>(record: &'r Value, name: &str) -> &'r Value {
    phases(record)
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase `{name}` in {:?}", phase_names(record)))
}

/// Checks the measurements of a phase are exactly `expected` (names, in any order).
fn check_measurement_names(phase: &Value, expected: &[&str]) {
    let names: BTreeSet<&str> = phase["measurements"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        expected.iter().copied().collect(),
        "measurements of phase {}",
        phase["name"]
    );
}

/// Checks one measurement's value, validators (as written in the record) and units.
fn check_measurement(
    phase: &Value,
    name: &str,
    value: Value,
    validators: &[&str],
    units: Option<Value>,
) {
    let m = &phase["measurements"][name];
    assert!(
        m.is_object(),
        "phase {} has no measurement `{name}`",
        phase["name"]
    );
    assert_eq!(m["name"], name);
    assert_eq!(m["outcome"], "PASS", "{m:#}");
    assert_eq!(m["measured_value"], value, "{name}: {m:#}");
    assert_eq!(m["validators"], json!(validators), "{name}: {m:#}");
    assert_eq!(m.get("units").cloned(), units, "{name}: {m:#}");
}

fn unit(name: &str, code: &str, suffix: &str) -> Option<Value> {
    Some(json!({"name": name, "code": code, "suffix": suffix}))
}

/// Standard base64 with padding, as the record writes attachment data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_the_rfc_4648_vectors() {
    let vectors = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
    ];
    for (plain, encoded) in vectors {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn quickstart() {
    let record = run_example("quickstart");
    check_unit(&record, "PCB01A0001", "PCB01");
    assert_eq!(record["metadata"]["revision"], "A");
    assert_eq!(record["metadata"]["procedure_version"], "1.0.0");
    assert_eq!(
        phase_names(&record),
        ["Connect", "Power rails", "IV sweep", "calibration"]
    );

    let connect = phase(&record, "Connect");
    check_measurement(
        connect,
        "firmware_version",
        json!("1.2.7"),
        &[r"'x' matches /^1\.2\.7$/"],
        None,
    );
    check_measurement(connect, "self_test_ok", json!(true), &["x == True"], None);
    check_measurement(
        connect,
        "board_serial",
        json!("PCB01A0001"),
        &[r"'x' matches /^PCB\d{2}A\d{4}$/"],
        None,
    );

    let rails = phase(&record, "Power rails");
    check_measurement_names(
        rails,
        &[
            "input_voltage",
            "rail_3v3",
            "input_current",
            "board_temperature",
        ],
    );
    check_measurement(
        rails,
        "input_voltage",
        json!(5.0),
        &["4.75 <= x <= 5.25"],
        unit("volt", "VLT", "V"),
    );
    let rail = &rails["measurements"]["rail_3v3"];
    assert_eq!(
        rail["validators"],
        json!(["3.2 <= Marginal:3.22 <= x <= Marginal:3.38 <= 3.4"])
    );
    assert!(
        rail["measured_value"]
            .as_f64()
            .is_some_and(|v| (3.2..=3.4).contains(&v)),
        "{rail:#}"
    );

    let sweep = phase(&record, "IV sweep");
    let iv = &sweep["measurements"]["iv_sweep"];
    assert_eq!(iv["validators"], json!(["All values pass: 95 <= x <= 105"]));
    assert_eq!(
        iv["units"],
        json!({"name": "ohm", "code": "OHM", "suffix": "\u{2126}"})
    );
    assert_eq!(iv["measured_value"].as_array().map(Vec::len), Some(100));
    check_measurement(sweep, "sweep_points", json!(100.0), &["x == 100"], None);
    assert_eq!(sweep["attachments"]["iv_sweep.csv"]["mimetype"], "text/csv");

    let calibration = phase(&record, "calibration");
    assert_eq!(
        calibration["measurements"]["calibration"]["measured_value"],
        json!({"gain": 1.002, "offset_mv": -1.5, "points": [0, 1650, 3300]})
    );
}

#[test]
fn required_metadata() {
    let record = run_example("required_metadata");
    check_unit(&record, "SN-0001", "PCB01");
    assert_eq!(record["phases"], json!([]));
    let metadata = &record["metadata"];
    for key in ["procedure_version", "revision", "batch_number", "sub_units"] {
        assert!(
            metadata.get(key).is_none(),
            "`{key}` was not given: {metadata:#}"
        );
    }
}

#[test]
fn optional_metadata() {
    let record = run_example("optional_metadata");
    check_unit(&record, "PCB1A002", "PCB1");
    let metadata = &record["metadata"];
    assert_eq!(metadata["procedure_version"], "1.2.3");
    assert_eq!(metadata["revision"], "A");
    assert_eq!(metadata["batch_number"], "12-24");
    assert_eq!(
        metadata["sub_units"],
        json!([{"serial_number": "PSU01A0001"}])
    );
    assert_eq!(phase_names(&record), ["phase_one"]);
}

#[test]
fn phases_in_order() {
    let record = run_example("phases");
    check_unit(&record, "PCB1A002", "PCB1");
    assert_eq!(
        phase_names(&record),
        [
            "phase_connect",
            "phase_firmware_version_check",
            "Voltage measurements"
        ]
    );

    let connect = phase(&record, "phase_connect");
    check_measurement_names(connect, &[]);
    let firmware = phase(&record, "phase_firmware_version_check");
    check_measurement_names(firmware, &["firmware_version"]);
    check_measurement(
        firmware,
        "firmware_version",
        json!("v2.5.1"),
        &[r"'x' matches /^v2\.5\.1$/"],
        None,
    );

    let voltages = phase(&record, "Voltage measurements");
    assert_eq!(voltages["options"]["name"], "Voltage measurements");
    assert_eq!(voltages["codeinfo"]["name"], "phase_voltage_measurements");
    check_measurement_names(voltages, &["input_voltage", "output_voltage"]);
    check_measurement(
        voltages,
        "input_voltage",
        json!(3.3),
        &["3.1 <= x <= 3.5"],
        unit("volt", "VLT", "V"),
    );
    check_measurement(
        voltages,
        "output_voltage",
        json!(1.2),
        &["1.1 <= x <= 1.3"],
        unit("volt", "VLT", "V"),
    );
}

#[test]
fn numeric() {
    let record = run_example("numeric");
    check_unit(&record, "PCB001", "PCB1");
    assert_eq!(
        phase_names(&record),
        ["phase_temperature", "phase_voltage_measure"]
    );
    let celsius = unit("degree Celsius", "CEL", "\u{b0}C");
    check_measurement(
        phase(&record, "phase_temperature"),
        "temperature",
        json!(25.3),
        &["0 <= x <= 100"],
        celsius,
    );
    // Set as 3300 mV, recorded in the declared unit.
    let volts = unit("volt", "VLT", "V");
    check_measurement(
        phase(&record, "phase_voltage_measure"),
        "voltage",
        json!(3.3),
        &["3.1 <= x <= 3.5"],
        volts,
    );
}

#[test]
fn string() {
    let record = run_example("string");
    check_unit(&record, "PCB001", "PCB1");
    assert_eq!(phase_names(&record), ["phase_firmware"]);
    let firmware = phase(&record, "phase_firmware");
    check_measurement_names(firmware, &["firmware_version", "bootloader_version"]);
    check_measurement(
        firmware,
        "firmware_version",
        json!("1.2.4"),
        &[r"'x' matches /^1\.2\.4$/"],
        None,
    );
    let regex = [r"'x' matches /^\d+\.\d+\.\d+$/"];
    check_measurement(
        firmware,
        "bootloader_version",
        json!("0.9.12"),
        &regex,
        None,
    );
}

#[test]
fn boolean() {
    let record = run_example("boolean");
    check_unit(&record, "PCB001", "PCB1");
    assert_eq!(phase_names(&record), ["phase_led"]);
    check_measurement(
        phase(&record, "phase_led"),
        "is_led_switch_on",
        json!(true),
        &["x == True"],
        None,
    );
}

#[test]
fn multi_dimensional() {
    let record = run_example("multi_dimensional");
    check_unit(&record, "PCB1A003", "PCB01");
    assert_eq!(phase_names(&record), ["power_phase"]);
    let power = phase(&record, "power_phase");
    check_measurement_names(power, &["current_voltage_resistance_over_time"]);
    let m = &power["measurements"]["current_voltage_resistance_over_time"];
    assert_eq!(m["outcome"], "PASS");
    assert_eq!(
        m["units"],
        json!({"name": "ohm", "code": "OHM", "suffix": "\u{2126}"})
    );
    let suffixes: Vec<&Value> = m["dimensions"]
        .as_array()
        .map(|d| d.iter().map(|d| &d["suffix"]).collect())
        .unwrap_or_default();
    assert_eq!(
        suffixes,
        [&json!("s"), &json!("V"), &json!("A")],
        "{:#}",
        m["dimensions"]
    );
    assert_eq!(m["validators"], json!(["All values pass: 4 <= x <= 12"]));

    let rows = m["measured_value"]
        .as_array()
        .unwrap_or_else(|| panic!("measured_value: {m:#}"));
    assert_eq!(rows.len(), 100);
    let is_rounded = |x: f64, digits: i32| {
        let scale = 10f64.powi(digits);
        ((x * scale).round() / scale - x).abs() < 1e-12
    };
    for (i, row) in rows.iter().enumerate() {
        let row: Vec<f64> = row
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let [t, voltage, current, resistance] = row[..] else {
            panic!("row {i} is not 4 numbers: {row:?}")
        };
        assert!((t - i as f64 / 100.0).abs() < 1e-12, "row {i}: t = {t}");
        assert!(
            (3.3..=3.5).contains(&voltage) && is_rounded(voltage, 2),
            "row {i}: voltage {voltage}"
        );
        assert!(
            (0.3..=0.8).contains(&current) && is_rounded(current, 3),
            "row {i}: current {current}"
        );
        assert!(
            (resistance - voltage / current).abs() < 1e-9,
            "row {i}: {resistance} != {voltage} / {current}"
        );
    }
}

#[test]
fn multiple_measurements() {
    let record = run_example("multiple_measurements");
    check_unit(&record, "PCB1A004", "PCB01");
    assert_eq!(phase_names(&record), ["phase_multi_measurements"]);
    let p = phase(&record, "phase_multi_measurements");
    check_measurement_names(
        p,
        &[
            "is_connected",
            "firmware_version",
            "input_voltage",
            "input_current",
        ],
    );
    check_measurement(p, "is_connected", json!(true), &["x == True"], None);
    check_measurement(
        p,
        "firmware_version",
        json!("1.2.7"),
        &[r"'x' matches /^1\.2\.7$/"],
        None,
    );
    check_measurement(
        p,
        "input_voltage",
        json!(3.35),
        &["3.2 <= x <= 3.4"],
        unit("volt", "VLT", "V"),
    );
    check_measurement(
        p,
        "input_current",
        json!(1.234),
        &["x <= 1.5"],
        unit("ampere", "AMP", "A"),
    );
}

#[test]
fn attachments() {
    let record = run_example("attachments");
    check_unit(&record, "PCB1A001", "PCB1");
    assert_eq!(phase_names(&record), ["phase_file_attachment"]);
    let attachments = &phase(&record, "phase_file_attachment")["attachments"];
    let names: BTreeSet<&str> = attachments
        .as_object()
        .map(|a| a.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let expected = [
        "measurement-notes.txt",
        "raw_capture",
        "readings.csv",
        "temperature-map.png",
    ];
    assert_eq!(names, expected.into_iter().collect());

    for a in attachments.as_object().into_iter().flat_map(|a| a.values()) {
        let sha1 = a["sha1"].as_str().unwrap_or_default();
        assert!(
            sha1.len() == 40 && sha1.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{a:#}"
        );
    }

    // The files, as on disk; their SHA-1s are those `sha1sum` gives.
    let data_dir = workspace_root().join("examples").join("data");
    let files = [
        (
            "temperature-map.png",
            Value::from("image/png"),
            "f84b647f7bdfad8809bb275587c5525604a82738",
        ),
        (
            "measurement-notes.txt",
            Value::from("text/plain"),
            "52d57e906ccfdf2057cc8ec74c8176e938b844db",
        ),
        (
            "raw_capture",
            Value::Null,
            "ce7de7bd4e5297238e3c84b2aef3d1f4288e70e3",
        ),
    ];
    for (name, mimetype, sha1) in files {
        let path = data_dir.join(name);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("can't read {}: {e}", path.display()));
        let a = &attachments[name];
        assert_eq!(a["mimetype"], mimetype, "{name}");
        assert_eq!(a["sha1"], sha1, "{name}");
        assert_eq!(a["size"], bytes.len(), "{name}");
        assert_eq!(a["data"], base64(&bytes), "{name}");
    }

    let readings = b"channel,volts\nVCC,3.30\nVDD,1.20\n";
    let a = &attachments["readings.csv"];
    assert_eq!(a["mimetype"], "text/csv");
    assert_eq!(a["size"], readings.len());
    assert_eq!(a["data"], base64(readings));
}

#[test]
fn logging() {
    let record = run_example("logging");
    check_unit(&record, "PCB1A001", "PCB01");
    assert_eq!(phase_names(&record), ["phase_with_info_logger"]);
    check_measurement(
        phase(&record, "phase_with_info_logger"),
        "boolean_measure",
        json!(true),
        &["x == True"],
        None,
    );

    let logs: Vec<(u64, &str)> = record["log_records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["phase"] == "phase_with_info_logger")
        .inspect(|r| assert_eq!(r["source"], "logging.rs", "{r:#}"))
        .map(|r| {
            (
                r["level"].as_u64().unwrap_or(0),
                r["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        logs,
        [
            (
                10,
                "Debug message: Detailed information for troubleshooting"
            ),
            (20, "Info message: Normal operation information"),
            (30, "Warning: Something unexpected but not critical"),
            (40, "Error: A significant problem that needs attention"),
            (40, "Critical: System unstable, immediate action required"),
        ]
    );
}

/// The `*IDN?` answers of the instruments a record lists (`metadata.instruments`), each
/// checked to be on a simulator's loopback port.
pub(crate) fn instrument_idns(record: &Value) -> Vec<&str> {
    let instruments = record["metadata"]["instruments"]
        .as_array()
        .unwrap_or_else(|| panic!("no instruments: {:#}", record["metadata"]));
    for i in instruments {
        assert!(
            i["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("TCPIP::127.0.0.1::")),
            "{i}"
        );
    }
    instruments
        .iter()
        .map(|i| i["idn"].as_str().unwrap_or_default())
        .collect()
}

/// The messages of a record's log, in order.
fn log_messages(record: &Value) -> Vec<&str> {
    record["log_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect()
}

const SIM_PSU: &str = "TOFU SIM,PSU-3005,PSU000117,2.1.0";
const SIM_DMM: &str = "TOFU SIM,DMM-6500,DMM000421,1.7.2";

#[test]
fn plugs() {
    let record = run_example("plugs");
    check_unit(&record, "PCB01A0002", "PCB01");
    assert_eq!(phase_names(&record), ["check_fixture", "power_on"]);
    // The simulated converter's quiescent current at 5 V, read from the supply over SCPI.
    check_measurement(
        phase(&record, "power_on"),
        "supply_current",
        json!(0.012),
        &["0.005 <= x <= 0.02"],
        unit("ampere", "AMP", "A"),
    );
    assert_eq!(instrument_idns(&record), [SIM_PSU]);
    let messages = log_messages(&record);
    let released = messages
        .iter()
        .position(|m| *m == "fixture released")
        .unwrap();
    // The supply's teardown switches its output off (the transcript, at DEBUG).
    let off = messages.iter().position(|m| *m == "psu > OUTP 0").unwrap();
    assert!(
        released < off,
        "teardown in reverse order of setup: {messages:?}"
    );
}

/// A supply at an address where none answers: its setup fails naming the plug and the
/// address; the run is ERROR, and the record still names the instrument.
#[test]
fn plugs_with_no_supply_at_the_address_is_an_error_naming_it() {
    let records = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let address = format!("tcp://127.0.0.1:{port}");
    let output = crate::exit_codes::run_offline("plugs", &["--psu", &address], records.path(), &[]);
    assert_eq!(output.status.code(), Some(tofu_core::exit::ERROR as i32));
    let record = only_record(records.path());
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(record["phases"], json!([]));
    let details = record["outcome_details"].to_string();
    assert!(
        details.contains("PowerSupply") && details.contains(&format!("127.0.0.1::{port}")),
        "{details}"
    );
    assert_eq!(
        record["metadata"]["instruments"],
        json!([{"name": "psu", "address": format!("TCPIP::127.0.0.1::{port}::SOCKET"), "connected": false}])
    );
}

/// The one JSON record written in `dir`.
fn only_record(dir: &std::path::Path) -> Value {
    let records: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap()
}

#[test]
fn timeout() {
    let record = run_example("timeout");
    assert_eq!(phase_names(&record), ["read_meter"]);
    assert_eq!(
        phase(&record, "read_meter")["options"]["timeout_s"],
        json!(0.3)
    );
    assert_eq!(
        phase(&record, "read_meter")["measurements"]["reading"]["measured_value"],
        json!(3.3)
    );
    assert_eq!(instrument_idns(&record), [SIM_PSU, SIM_DMM]);
}

/// `--hang`: the simulated DMM never answers; the phase is TIMEOUT at its 300 ms deadline, the
/// supply is still turned off, and the record lists both instruments (the DMM's own 1 s
/// timeout gives it back to its teardown).
#[test]
fn timeout_hang_times_out_and_still_turns_the_supply_off() {
    let records = tempfile::tempdir().unwrap();
    let output = crate::exit_codes::run_offline("timeout", &["--hang"], records.path(), &[]);
    assert_eq!(output.status.code(), Some(tofu_core::exit::ERROR as i32));
    let record = only_record(records.path());
    assert_eq!(record["outcome"], "TIMEOUT");
    let read = phase(&record, "read_meter");
    let ran =
        read["end_time_millis"].as_i64().unwrap() - read["start_time_millis"].as_i64().unwrap();
    assert!((300..1000).contains(&ran), "the phase ran {ran} ms");
    let messages = log_messages(&record);
    let timed_out = messages
        .iter()
        .position(|m| m.starts_with("phase read_meter timed out"))
        .unwrap_or_else(|| panic!("{messages:?}"));
    let off = messages.iter().position(|m| *m == "psu > OUTP 0");
    assert!(off.is_some_and(|off| off > timed_out), "{messages:?}");
    assert_eq!(instrument_idns(&record), [SIM_PSU, SIM_DMM]);
}

#[test]
fn repeat() {
    let record = run_example("repeat");
    assert_eq!(
        phase_names(&record),
        ["connect", "connect", "oven", "oven", "oven"]
    );
    let outcomes: Vec<&str> = phases(&record)
        .iter()
        .map(|p| p["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["SKIP", "PASS", "SKIP", "SKIP", "PASS"]);
}

#[test]
fn teardown() {
    let record = run_example("teardown");
    assert_eq!(
        phase_names(&record),
        ["power_on", "measure_rail", "power_off"]
    );
}

#[test]
fn scpi_bench_lists_its_instruments_and_measures_a_plausible_efficiency_curve() {
    let record = run_example("scpi_bench");
    assert_eq!(
        (&record["dut_id"], &record["metadata"]["procedure_id"]),
        (&json!("DCDC0001"), &json!("DCDC-FVT"))
    );
    assert_eq!(
        instrument_idns(&record),
        [SIM_PSU, "TOFU SIM,ELOAD-8500,LD0000093,3.0.4", SIM_DMM]
    );
    assert_eq!(
        record["metadata"]["instruments"][2]["calibration_expired"],
        false
    );
    let sweep = phase(&record, "Efficiency sweep");
    let points = sweep["measurements"]["efficiency"]["measured_value"]
        .as_array()
        .unwrap_or_else(|| panic!("{sweep:#}"));
    assert_eq!(points.len(), 25);
    let efficiency: Vec<f64> = points.iter().filter_map(|p| p[1].as_f64()).collect();
    let peak = efficiency.iter().copied().fold(0.0, f64::max);
    assert!((90.0..97.0).contains(&peak), "{efficiency:?}");
    assert!(
        efficiency[0] < peak && efficiency[24] < peak,
        "rises then falls: {efficiency:?}"
    );
    // The transcript of every exchange is in the log.
    let logs = record["log_records"].as_array().map_or(0, |l| {
        l.iter()
            .filter(|r| {
                r["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("dmm > MEAS:VOLT:DC?"))
            })
            .count()
    });
    assert_eq!(logs, 1 + 2 + 25, "one per DMM reading");
}
