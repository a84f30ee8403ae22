//! Input edge cases end to end, from the phase to the record file: hostile serial numbers,
//! measurement names with dots and unicode, NaN and infinities, empty and huge attachments,
//! many attachments. (What TofuPilot receives of them: tofu-upload's `edge_cases`.)

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use tofu_core::declare::{at_least, custom, dimensions, in_range, within_percent};
use tofu_core::phase::MeasurementAccessError;
use tofu_core::prelude::*;
use tofu_core::unit::{SECOND, VOLT};
use tofu_core::{Execution, Phase};

const MIB: usize = 1024 * 1024;

/// Runs `test` for `serial` into a fresh folder; returns the execution, the record file and
/// its JSON (parsed: the file is valid JSON).
fn run(test: Test, serial: &str) -> (Execution, PathBuf, Json, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test.json_output(JsonOutput::to_dir(dir.path())).quiet();
    let execution = test.execute(|| serial);
    let files = json_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let json: Json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the record is not valid JSON: {e}"));
    (execution, files[0].clone(), json, dir)
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[phase]
#[measures(x: f64 = in_range(0, 1))]
fn simple(m: &mut simple::Measurements) {
    m.x.set(0.5);
}

/// A file name anything can handle: letters, digits, `-`, `_`, `.`, not hidden (so not `.`
/// or `..` either).
fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[test]
fn hostile_serial_numbers_name_safe_files_in_the_folder_and_are_kept_whole_in_the_record() {
    let long = "SN".repeat(500);
    let unicode_long = "é".repeat(1000);
    for serial in [
        "PCB/01",
        "../../../etc/cron.d/x",
        "..",
        ".",
        "...hidden",
        "with spaces  and\ttabs",
        "C:\\Windows\\system32",
        "новая плата №7",
        "板子-001",
        "emoji 🔥 unit",
        "nul\0byte",
        "line\nbreak",
        long.as_str(),
        unicode_long.as_str(),
    ] {
        let (execution, path, record, dir) = run(Test::new("FVT/1").phases([simple]), serial);
        assert!(
            execution.passed(),
            "{serial:?}: {:?}",
            execution.record.outcome_details
        );
        assert_eq!(
            path.parent(),
            Some(dir.path()),
            "{serial:?} stays in the folder"
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(is_safe_file_name(name), "{serial:?} -> {name:?}");
        let expected = format!(
            "{}.{}.{}.json",
            tofu_core::fs::safe_file_name(serial),
            tofu_core::fs::safe_file_name("FVT/1"),
            record["start_time_millis"]
        );
        assert_eq!(name, expected, "{serial:?}");
        assert!(
            name.len() <= 100 + 1 + 5 + 1 + 13 + 5,
            "{serial:?}: {} bytes",
            name.len()
        );
        assert_eq!(
            record["dut_id"], serial,
            "the record keeps the real serial number"
        );
        assert_eq!(record["metadata"]["procedure_id"], "FVT/1");
    }
}

#[test]
fn measurement_names_with_dots_and_unicode_are_kept_as_they_are() {
    let names = [
        "rail.3v3",
        "température_°C",
        "電圧.入力",
        "a.b.c",
        "with space",
    ];
    let mut phase = Phase::dynamic("names.with.dots ünï");
    for name in names {
        phase = phase.measure::<f64, _>(name, in_range(0, 10).units(VOLT));
    }
    let phase = phase.run(move |_test, m| -> Result<(), MeasurementAccessError> {
        for (i, name) in names.iter().enumerate() {
            m.get::<f64>(name)?.set(i as f64);
        }
        Ok(())
    });
    let (execution, _, record, _dir) = run(Test::new("FVT1").phases([phase]), "SN-1");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    let phase = &record["phases"][0];
    assert_eq!(phase["name"], "names.with.dots ünï");
    let measurements = phase["measurements"].as_object().unwrap();
    assert_eq!(measurements.len(), names.len());
    for (i, name) in names.iter().enumerate() {
        let m = &measurements[*name];
        assert_eq!(m["name"], *name);
        assert_eq!(m["measured_value"], i as f64, "{name}");
        assert_eq!(m["outcome"], "PASS", "{name}");
    }
}

#[test]
fn non_finite_values_fail_without_reaching_a_validator_and_the_record_stays_valid_json() {
    let custom_calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls = std::sync::Arc::clone(&custom_calls);
    let phase = Phase::dynamic("non_finite")
        .measure::<f64, _>("nan", in_range(0, 1))
        .measure::<f64, _>("pos_inf", at_least(0))
        .measure::<f64, _>("neg_inf", in_range(-1, 1).allow_fail())
        .measure::<f64, _>("no_validator", tofu_core::declare::units(VOLT))
        .measure::<f64, _>(
            "custom_nan",
            custom("anything", move |_: &f64| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                true
            }),
        )
        .measure::<f64, _>("percent_nan", within_percent(5, 10))
        .measure::<Sweep<1>, _>(
            "sweep",
            dimensions([SECOND]).units(VOLT).each(in_range(0, 10)),
        )
        .measure::<f64, _>("fine", in_range(0, 1))
        .run(|_test, m| -> Result<(), MeasurementAccessError> {
            m.get::<f64>("nan")?.set(f64::NAN);
            m.get::<f64>("pos_inf")?.set(f64::INFINITY);
            m.get::<f64>("neg_inf")?.set(f64::NEG_INFINITY);
            m.get::<f64>("no_validator")?.set(f64::NAN);
            m.get::<f64>("custom_nan")?.set(-f64::NAN);
            m.get::<f64>("percent_nan")?.set(f64::NAN);
            let mut sweep = m.get::<Sweep<1>>("sweep")?;
            sweep.push([0.0], 1.0);
            sweep.push([f64::INFINITY], f64::NAN);
            sweep.push([2.0], f64::NEG_INFINITY);
            m.get::<f64>("fine")?.set(0.5);
            Ok(())
        });
    let (execution, _, record, _dir) = run(Test::new("FVT1").phases([phase]), "SN-NAN");
    assert_eq!(custom_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let m = &record["phases"][0]["measurements"];
    for (name, value) in [
        ("nan", "nan"),
        ("pos_inf", "inf"),
        ("neg_inf", "-inf"),
        ("no_validator", "nan"),
        ("custom_nan", "nan"),
        ("percent_nan", "nan"),
    ] {
        assert_eq!(
            m[name]["measured_value"], value,
            "{name}: as Python's json writes it"
        );
        assert_eq!(m[name]["outcome"], "FAIL", "{name}");
    }
    assert_eq!(m["fine"]["outcome"], "PASS");
    assert_eq!(m["sweep"]["outcome"], "FAIL");
    assert_eq!(
        m["sweep"]["measured_value"],
        serde_json::json!([[0.0, 1.0], ["inf", "nan"], [2.0, "-inf"]])
    );
    // The validators are written as declared, whatever the value.
    assert_eq!(m["nan"]["validators"], serde_json::json!(["0 <= x <= 1"]));
    // The failures fail the run, the allowed one included in the record.
    assert_eq!(record["outcome"], "FAIL");
    assert_eq!(record["phases"][0]["outcome"], "FAIL");
    assert!(!execution.passed());
    // Read back by a strict parser: the file holds no bare NaN or Infinity token.
    let text = serde_json::to_string(&record).unwrap();
    assert!(!text.contains("NaN") && !text.contains("Infinity"));
}

#[test]
fn a_within_percent_band_that_overflows_is_an_invalid_declaration() {
    // Finite numbers, but 1e308 ± 100 % is beyond f64: every value would have passed.
    let phase = Phase::dynamic("huge")
        .measure::<f64, _>("huge", within_percent(1e308, 100))
        .measure::<f64, _>("negative", within_percent(-1e308, 1e308))
        .measure::<f64, _>("fine", within_percent(1e300, 100))
        .run(|_test, m| -> Result<(), MeasurementAccessError> {
            m.get::<f64>("huge")?.set(-1e308);
            Ok(())
        });
    let (execution, _, record, _dir) = run(Test::new("FVT1").phases([phase]), "SN-HUGE");
    assert!(!execution.passed());
    assert_eq!(record["outcome_details"][0]["code"], "InvalidDeclaration");
    let text = record["outcome_details"][0]["description"]
        .as_str()
        .unwrap();
    for part in [
        "phase `huge`, measurement `huge`: 100% of 1e+308 is not a finite number",
        "phase `huge`, measurement `negative`: 1e+308% of -1e+308 is not a finite number",
    ] {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }
    assert!(!text.contains("`fine`"), "{text}");
    assert_eq!(record["phases"].as_array().map(Vec::len), Some(0));
}

#[test]
fn empty_and_huge_attachments_are_kept_whole_in_the_record() {
    let phase = Phase::dynamic("attach").run(|test, _m| -> Result<(), tofu_core::AttachError> {
        test.attach("empty.bin", Vec::new())?;
        test.attach("exactly_10MiB.bin", vec![0x5Au8; 10 * MIB])?;
        test.attach("over_10MiB.bin", vec![0xA5u8; 10 * MIB + 1])?;
        test.attach("../../escape.txt", "a name is only a name")
    });
    let (execution, path, record, dir) = run(Test::new("FVT1").phases([phase]), "SN-ATT");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    let attachments = &record["phases"][0]["attachments"];
    for (name, size, byte) in [
        ("empty.bin", 0, 0),
        ("exactly_10MiB.bin", 10 * MIB, 0x5A),
        ("over_10MiB.bin", 10 * MIB + 1, 0xA5),
    ] {
        let a = &attachments[name];
        assert_eq!(a["size"], size, "{name}");
        assert!(
            a["data"].as_str() == Some(base64(&vec![byte; size]).as_str()),
            "{name}: the data, whole"
        );
    }
    assert_eq!(attachments["../../escape.txt"]["size"], 21);
    // Attachments live inside the record: no other file was written, nothing escaped.
    assert_eq!(json_files(dir.path()), [path]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(!dir.path().parent().unwrap().join("escape.txt").exists());
}

/// Standard base64 with padding, as OpenHTF writes attachments.
fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(TABLE[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn a_hundred_and_one_attachments_are_all_kept_in_the_record() {
    let phase = Phase::dynamic("many").run(|test, _m| -> Result<(), tofu_core::AttachError> {
        for i in 0..101 {
            test.attach(&format!("file_{i:03}.txt"), format!("attachment {i}"))?;
        }
        Ok(())
    });
    let (execution, _, record, _dir) = run(Test::new("FVT1").phases([phase]), "SN-MANY");
    assert!(execution.passed());
    let attachments = record["phases"][0]["attachments"].as_object().unwrap();
    assert_eq!(attachments.len(), 101);
    assert_eq!(attachments["file_100.txt"]["size"], "attachment 100".len());
}
