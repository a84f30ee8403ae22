//! Limits from a file: checked at load (each error naming the file and the line), checked again
//! when the test runs, replacing the code's validators in the record, and parameters for phases.

use serde_json::{Value as JsonValue, json};
use tofu_core::prelude::*;
use tofu_core::{LimitsFileError, ParameterError, Phase};

#[phase(name = "LF rails")]
#[measures(
    input_voltage: f64 = in_range(4.5, 5.5).units(VOLT),
    firmware: String = equals("1.2.7"),
    self_test_ok: bool = equals(true),
    iv: Sweep<1> = dimensions([SECOND]).units(OHM).each(in_range(90, 110)),
    spare: f64,
)]
fn lf_rails(m: &mut lf_rails::Measurements) {
    m.input_voltage.set(5.01);
    m.firmware.set("1.2.7");
    m.self_test_ok.set(true);
    m.iv.push([0.0], 100.0);
    m.iv.push([1.0], 101.0);
    m.spare.set(12);
}

/// A phase of this program that the tests below don't always add.
#[phase]
#[measures(temperature: f64 = in_range(0, 100).units(DEGREE_CELSIUS))]
fn lf_other(m: &mut lf_other::Measurements) {
    m.temperature.set(25);
}

/// Reads the parameters into measurements, and checks the errors of missing or mistyped ones.
#[phase]
#[measures(settle_ms: f64, fixture: String, channels: Json)]
fn lf_params(
    test: &mut PhaseContext,
    m: &mut lf_params::Measurements,
) -> Result<(), ParameterError> {
    m.settle_ms.set(test.parameter::<f64>("settle_ms")?);
    m.fixture.set(test.parameter::<String>("fixture")?);
    m.channels.set(test.parameter::<JsonValue>("channels")?);
    assert_eq!(test.parameter::<u64>("settle_ms"), Ok(50));
    assert_eq!(
        test.parameter::<u32>("nope"),
        Err(ParameterError::Missing {
            name: "nope".into()
        })
    );
    let wrong = test.parameter::<u32>("fixture").unwrap_err();
    assert!(
        wrong
            .to_string()
            .starts_with("parameter `fixture` = \"J1\" is not a `u32`"),
        "{wrong}"
    );
    Ok(())
}

fn load(text: &str) -> Result<Test, LimitsFileError> {
    Test::new("FVT1")
        .phases([lf_rails])
        .limits_toml(text, "limits.toml")
}

fn load_error(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("loaded without an error:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Runs `test` without writing a record; returns the record as JSON.
fn run(test: Test) -> JsonValue {
    let execution = test.without_json_output().quiet().execute(|| "SN-LF-1");
    serde_json::to_value(&execution.record).unwrap()
}

fn measurement<'r>(record: &'r JsonValue, phase: &str, name: &str) -> &'r JsonValue {
    let phase = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == phase)
        .unwrap_or_else(|| panic!("no phase `{phase}` in {record:#}"));
    &phase["measurements"][name]
}

#[test]
fn each_error_names_the_file_and_the_line() {
    let cases = [
        (
            "unknown phase",
            "[lf_railz.input_voltage]\nin_range = [4.75, 5.25]\n",
            "limits.toml:1: there is no phase `lf_railz`: not in the test (its phases: `LF rails`), \
             nor a #[phase] of the program (add phases made with Phase::dynamic before loading \
             the limits file)",
        ),
        (
            "unknown measurement",
            "# Rails\n\n[lf_rails.rail_5v]\nat_least = 4.7\n",
            "limits.toml:3: phase `lf_rails` has no measurement `rail_5v` (it has `firmware`, \
             `input_voltage`, `iv`, `self_test_ok`, `spare`)",
        ),
        (
            "min > max",
            "[lf_rails.input_voltage]\nin_range = [5.25, 4.75]\n",
            "limits.toml:2: [lf_rails.input_voltage] minimum 5.25 is greater than maximum 4.75",
        ),
        (
            "marginal outside the range",
            "[lf_rails.input_voltage]\nin_range = [4.75, 5.25]\nmarginal = [4.7, 5.2]\n",
            "limits.toml:3: [lf_rails.input_voltage] minimum 4.75 is greater than marginal \
             minimum 4.7",
        ),
        (
            "a limit of the wrong type",
            "[lf_rails.input_voltage]\nin_range = [\"4.75\", 5.25]\n",
            "limits.toml:2: [lf_rails.input_voltage] `in_range` should be [minimum, maximum], two \
             numbers: its first value is the string \"4.75\"",
        ),
        (
            "a string for a number",
            "[lf_rails.input_voltage]\nat_least = \"4.7\"\n",
            "limits.toml:2: [lf_rails.input_voltage] `at_least` should be a number, not the \
             string \"4.7\"",
        ),
        (
            "a parameter outside [parameters]",
            "settle_ms = 50\n",
            "limits.toml:1: `settle_ms` = the integer 50: limits go in a table per measurement, \
             [settle_ms.MEASUREMENT], and parameters in [parameters]",
        ),
        (
            "a numeric limit on a string",
            "[lf_rails.firmware]\n\nat_least = 1\n",
            "limits.toml:3: `at_least` is a numeric limit, but measurement `firmware` of phase \
             `lf_rails` holds a string",
        ),
        (
            "a string on a number",
            "[\"LF rails\".input_voltage]\nequals = \"5\"\n",
            "limits.toml:2: `equals = \"5\"` is a string, but measurement `input_voltage` of \
             phase `LF rails` holds a number",
        ),
        (
            "a regex on a boolean",
            "[lf_rails.self_test_ok]\nmatches_regex = 'true'\n",
            "limits.toml:2: `matches_regex` is a limit of strings, but measurement \
             `self_test_ok` of phase `lf_rails` holds a boolean",
        ),
        (
            "bad TOML",
            "[lf_rails.input_voltage]\nin_range = [4.75, 5.25\n",
            "limits.toml:2: invalid TOML: unclosed array, expected `]`",
        ),
        (
            "a key given twice",
            "[lf_rails.input_voltage]\nat_least = 4.7\nat_least = 4.8\n",
            "limits.toml:3: invalid TOML: ",
        ),
        (
            "unknown key",
            "[lf_rails.input_voltage]\nin_rnage = [4.75, 5.25]\n",
            "limits.toml:2: [lf_rails.input_voltage] unknown key `in_rnage` (a measurement's \
             limits are in_range, at_least, at_most, marginal, within_percent, equals, \
             matches_regex, units)",
        ),
        (
            "unknown key in within_percent",
            "[lf_rails.input_voltage]\nwithin_percent = { expected = 5, pct = 5 }\n",
            "limits.toml:2: [lf_rails.input_voltage] unknown key `pct` in `within_percent`: \
             { expected = 25.0, percent = 10 } (and optionally marginal_percent = 5)",
        ),
        (
            "limits directly under a phase",
            "[lf_rails]\nin_range = [1, 2]\n",
            "limits.toml:2: [lf_rails] `in_range` = an array of 2 values: limits go in a table per \
             measurement, [lf_rails.MEASUREMENT] (`in_range` is not a measurement's table)",
        ),
        (
            "marginal without a range",
            "[lf_rails.input_voltage]\nmarginal = [4.8, 5.2]\n",
            "limits.toml:2: [lf_rails.input_voltage] `marginal` needs `in_range`, `at_least` or \
             `at_most`",
        ),
        (
            "in_range and at_least",
            "[lf_rails.input_voltage]\nin_range = [4.75, 5.25]\nat_least = 4.7\n",
            "limits.toml:3: [lf_rails.input_voltage] `at_least` and `in_range` both set limits: \
             keep one of them",
        ),
        (
            "a regex that does not compile",
            "[lf_rails.firmware]\nmatches_regex = '(1.2'\n",
            "limits.toml:2: [lf_rails.firmware] regex /(1.2/ does not compile: ",
        ),
        (
            "an unknown unit",
            "[lf_rails.spare]\nat_most = 20\nunits = \"Vx\"\n",
            "limits.toml:3: unknown unit `Vx`: give a UNECE unit's name, suffix or code \
             (\"volt\", \"V\", \"VLT\")",
        ),
        (
            "another unit than the code's",
            "[lf_rails.input_voltage]\nin_range = [4750, 5250]\nunits = \"mV\"\n",
            "limits.toml:3: `units = \"mV\"`: the code records measurement `input_voltage` of \
             phase `lf_rails` in volt (V); a limits file can check a unit, not change it",
        ),
        (
            "one measurement under two names of its phase",
            "[lf_rails.input_voltage]\nat_least = 4.7\n\n[\"LF rails\".input_voltage]\nat_least = 4.8\n",
            "limits.toml:4: the limits of measurement `input_voltage` of phase `LF rails` are \
             given twice (line 1 gives them too)",
        ),
        (
            "an empty section",
            "[lf_rails.input_voltage]\n",
            "limits.toml:1: [lf_rails.input_voltage] gives no limits (keys: in_range, at_least, \
             at_most, marginal, within_percent, equals, matches_regex, units)",
        ),
        (
            "parameters that are not a table",
            "parameters = 3\n",
            "limits.toml:1: `parameters` should be a table ([parameters]), not an integer",
        ),
    ];
    for (what, text, want) in cases {
        let got = load_error(text);
        assert!(got.starts_with(want), "{what}:\n got: {got}\nwant: {want}…");
    }
}

#[test]
fn every_error_of_a_file_is_reported_in_line_order() {
    let text = "\
[lf_rails.input_voltage]
in_range = [5.5, 4.5]

[lf_rails.firmware]
equals = 1.0

[lf_rails.nope]
at_least = 0
";
    let err = load(text).unwrap_err();
    let lines: Vec<usize> = err.problems().iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 5, 7], "{err}");
    assert_eq!(err.to_string().lines().count(), 3, "{err}");
    assert!(
        err.to_string()
            .lines()
            .all(|l| l.starts_with("limits.toml:")),
        "{err}"
    );
}

#[test]
fn a_file_on_disk_is_named_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(&path, "[lf_rails.input_voltage]\nin_range = [5.25, 4.75]\n").unwrap();
    let err = Test::new("FVT1")
        .phases([lf_rails])
        .limits_file(&path)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: [lf_rails.input_voltage] minimum 5.25 is greater than maximum 4.75",
            path.display()
        )
    );

    let missing = dir.path().join("missing.toml");
    let err = Test::new("FVT1").limits_file(&missing).unwrap_err();
    assert!(matches!(err, LimitsFileError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("can't read limits file {}: ", missing.display())),
        "{err}"
    );
}

const PASSING: &str = r#"
[lf_rails.input_voltage]
in_range = [4.75, 5.25]
units = "V"

["LF rails".firmware]
matches_regex = '^1\.2\.\d+$'

[lf_rails.iv]
in_range = [99, 102]

[lf_rails.spare]
within_percent = { expected = 12, percent = 5, marginal_percent = 4 }
units = "ohm"
"#;

#[test]
fn the_files_limits_replace_the_codes_in_the_record_and_decide_the_outcome() {
    let record = run(load(PASSING).unwrap());
    assert_eq!(record["outcome"], "PASS", "{record:#}");
    let m = |name| measurement(&record, "LF rails", name);
    assert_eq!(
        m("input_voltage")["validators"],
        json!(["4.75 <= x <= 5.25"])
    );
    assert_eq!(m("input_voltage")["units"]["code"], "VLT");
    assert_eq!(
        m("firmware")["validators"],
        json!([r"'x' matches /^1\.2\.\d+$/"])
    );
    assert_eq!(
        m("iv")["validators"],
        json!(["All values pass: 99 <= x <= 102"])
    );
    // A unit set where the code has none; a measurement without a section keeps its limits.
    assert_eq!(
        m("spare")["validators"],
        json!(["'x' is within 5% of 12. Marginal: 4% of 12"])
    );
    assert_eq!(m("spare")["units"]["code"], "OHM");
    assert_eq!(m("self_test_ok")["validators"], json!(["x == True"]));
    let file = &record["metadata"]["limits_file"];
    assert_eq!(file["path"], "limits.toml");
    let sha1 = file["sha1"].as_str().unwrap();
    assert!(
        sha1.len() == 40 && sha1.bytes().all(|b| b.is_ascii_hexdigit()),
        "{file:#}"
    );

    // The same values, against limits of the file they fail (the code's would pass them).
    let failing = "\
[lf_rails.input_voltage]
in_range = [5.1, 5.3]

[lf_rails.self_test_ok]
equals = false

[lf_rails.iv]
at_most = 100.5

[lf_rails.firmware]
equals = \"1.2.8\"
";
    let record = run(load(failing).unwrap());
    assert_eq!(record["outcome"], "FAIL", "{record:#}");
    let m = |name| measurement(&record, "LF rails", name);
    assert_eq!(m("input_voltage")["validators"], json!(["5.1 <= x <= 5.3"]));
    assert_eq!(m("input_voltage")["outcome"], "FAIL");
    assert_eq!(m("self_test_ok")["validators"], json!(["x == False"]));
    assert_eq!(m("self_test_ok")["outcome"], "FAIL");
    assert_eq!(
        m("iv")["validators"],
        json!(["All values pass: x <= 100.5"])
    );
    assert_eq!(m("iv")["outcome"], "FAIL");
    assert_eq!(
        m("firmware")["validators"],
        json!([r"'x' matches /^1\.2\.8$/"])
    );
    assert_eq!(m("firmware")["outcome"], "FAIL");
}

#[test]
fn parameters_are_readable_in_a_phase_and_recorded() {
    let text = "\
[parameters]
settle_ms = 50
fixture = \"J1\"
channels = [1, 2, 3]
";
    let test = Test::new("FVT1")
        .phases([lf_params])
        .limits_toml(text, "bench.toml")
        .unwrap();
    let record = run(test);
    assert_eq!(record["outcome"], "PASS", "{record:#}");
    let m = |name| &measurement(&record, "lf_params", name)["measured_value"];
    assert_eq!(m("settle_ms"), &json!(50.0));
    assert_eq!(m("fixture"), &json!("J1"));
    assert_eq!(m("channels"), &json!([1, 2, 3]));
    assert_eq!(
        record["metadata"]["limits_file"]["parameters"],
        json!({"settle_ms": 50, "fixture": "J1", "channels": [1, 2, 3]})
    );

    // Without a limits file, a parameter is missing: the phase says so.
    let record = run(Test::new("FVT1").phases([lf_params]));
    assert_eq!(record["outcome"], "ERROR");
    assert_eq!(
        record["phases"][0]["result"]["phase_result"]["exc_val"],
        "no parameter `settle_ms` (parameters are given in the [parameters] table of the test's \
         limits file)"
    );
}

#[test]
fn phases_may_be_added_after_the_file_and_are_checked_when_the_test_runs() {
    let text = "\
[lf_rails.input_voltage]
in_range = [4.75, 5.25]

[lf_other.temperature]
in_range = [10, 40]
";
    // Loaded before the phases: `lf_other` is a #[phase] of the program, so the file is fine.
    let test = Test::new("FVT1").limits_toml(text, "limits.toml").unwrap();
    let record = run(test.phases([lf_rails, lf_other]));
    assert_eq!(record["outcome"], "PASS", "{record:#}");
    assert_eq!(
        measurement(&record, "lf_other", "temperature")["validators"],
        json!(["10 <= x <= 40"])
    );

    // A test without `lf_other`: its section names no phase of the test, and no phase runs.
    let record = run(load(text).unwrap());
    assert_eq!(record["outcome"], "ERROR", "{record:#}");
    assert_eq!(record["phases"], json!([]));
    let detail = &record["outcome_details"][0];
    assert_eq!(detail["code"], "InvalidDeclaration");
    let description = detail["description"].as_str().unwrap();
    assert!(
        description.contains(
            "limits.toml:4: there is no phase `lf_other` in the test (its phases: `LF rails`)"
        ),
        "{description}"
    );
}

#[test]
fn dynamic_phases_take_limits_from_the_file_when_added_before_it() {
    let channel = || {
        Phase::dynamic("channel_1")
            .measure::<f64, _>("offset", tofu_core::declare::in_range(-1, 1))
            .run(
                |_test, m| -> Result<(), tofu_core::phase::MeasurementAccessError> {
                    m.get::<f64>("offset")?.set(0.2);
                    Ok(())
                },
            )
    };
    let text = "[channel_1.offset]\nin_range = [-0.1, 0.1]\n";
    let test = Test::new("FVT1")
        .phases([channel()])
        .limits_toml(text, "limits.toml")
        .unwrap();
    let record = run(test);
    assert_eq!(record["outcome"], "FAIL", "{record:#}");
    assert_eq!(
        measurement(&record, "channel_1", "offset")["validators"],
        json!(["-0.1 <= x <= 0.1"])
    );

    let err = Test::new("FVT1")
        .limits_toml(text, "limits.toml")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("add phases made with Phase::dynamic before loading the limits file"),
        "{err}"
    );
}

#[test]
fn the_example_runs_and_passes_with_the_files_limits() {
    let record = crate::examples::run_example("limits_file");
    let m = |name| measurement(&record, "Power rails", name);
    assert_eq!(
        m("input_voltage")["validators"],
        json!(["4.75 <= Marginal:4.8 <= x <= Marginal:5.2 <= 5.25"])
    );
    assert_eq!(
        m("input_current")["validators"],
        json!(["'x' is within 10% of 0.25."])
    );
    assert_eq!(
        m("firmware")["validators"],
        json!([r"'x' matches /^1\.2\.7$/"])
    );
    let path = record["metadata"]["limits_file"]["path"].as_str().unwrap();
    assert!(path.ends_with("limits.toml"), "{path}");
}

#[phase]
#[measures(rail: f64 = in_range(3.2, 3.4).marginal(3.22, 3.38).units(VOLT))]
fn lf_banded(m: &mut lf_banded::Measurements) {
    m.rail.set(3.39);
}

/// The record of a run whose limits file dropped `lf_banded.rail`'s band: the file's limits,
/// and the warning in its log.
fn a_dropped_band_is_said(record: &JsonValue) {
    let rail = measurement(record, "lf_banded", "rail");
    assert_eq!(rail["validators"], json!(["3.1 <= x <= 3.5"]));
    assert_eq!(rail["marginal"], json!(false), "3.39 is no longer marginal");
    let warnings: Vec<&JsonValue> = record["log_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"].as_str().unwrap().contains("marginal band"))
        .collect();
    let [warning] = warnings[..] else {
        panic!("not one warning in {:#}", record["log_records"]);
    };
    assert_eq!(
        warning["message"],
        "limits.toml:1: measurement `rail` of phase `lf_banded` was declared with a marginal \
         band that this entry doesn't give: the file's limits replace the code's, so the band \
         is dropped (give `marginal = [low, high]` here to keep one)"
    );
    assert_eq!(warning["level"], 30);
}

/// A file entry giving only `in_range` to a measurement declared with a marginal band: the
/// file's limits replace the code's, the band is dropped, and each run's log says so (file,
/// line, measurement); an entry that gives a band keeps it and says nothing.
#[test]
fn a_marginal_band_the_file_does_not_give_is_dropped_and_said() {
    let text = "[lf_banded.rail]\nin_range = [3.1, 3.5]\n";
    let mut test = Test::new("FVT1")
        .phases([lf_banded])
        .limits_toml(text, "limits.toml")
        .unwrap()
        .without_json_output()
        .quiet();
    // The second run of the same test says it too (its plan is prepared once).
    for _ in 0..2 {
        let record = serde_json::to_value(&test.execute(|| "SN-LF-1").record).unwrap();
        a_dropped_band_is_said(&record);
    }

    let text = "[lf_banded.rail]\nin_range = [3.1, 3.5]\nmarginal = [3.15, 3.38]\n";
    let test = Test::new("FVT1")
        .phases([lf_banded])
        .limits_toml(text, "limits.toml")
        .unwrap();
    let record = run(test);
    assert_eq!(
        measurement(&record, "lf_banded", "rail")["marginal"],
        json!(true)
    );
    assert!(
        !record["log_records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("marginal band")),
        "{:#}",
        record["log_records"]
    );
}
