//! Hostile limits files: the example's limits file (`examples/data/limits.toml`) truncated at
//! every byte, with bytes changed, with TOML tokens spliced in, random bytes, deep nesting, huge
//! numbers and wrong types. Loading never panics nor hangs, an error always names the file (and a
//! line inside it), and a file that loads runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tofu_core::declare::{equals, in_range};
use tofu_core::prelude::*;
use tofu_core::unit::VOLT;
use tofu_core::{LimitsFileError, Phase};

use crate::mutate::{self, Case, Rng};

const VALID: &str = include_str!("../../../examples/data/limits.toml");
/// Per case: loading a small file takes microseconds; this only catches hangs.
const DEADLINE: Duration = Duration::from_secs(20);

/// The phases the example's file names: `power_rails` (`input_voltage` in volts,
/// `input_current`) and one whose display name is `Power rails` (`firmware`).
fn phases() -> Vec<Phase> {
    vec![
        Phase::dynamic("power_rails")
            .measure::<f64, _>("input_voltage", in_range(4.5, 5.5).units(VOLT))
            .measure::<f64, _>("input_current", in_range(0.2, 0.3))
            .run(|_, m| -> Result<(), String> {
                m.get::<f64>("input_voltage")
                    .map_err(|e| e.to_string())?
                    .set(5.0);
                m.get::<f64>("input_current")
                    .map_err(|e| e.to_string())?
                    .set(0.25);
                Ok(())
            }),
        Phase::dynamic("Power rails")
            .measure::<String, _>("firmware", equals("1.2.7"))
            .run(|_, m| -> Result<(), String> {
                m.get::<String>("firmware")
                    .map_err(|e| e.to_string())?
                    .set("1.2.7");
                Ok(())
            }),
    ]
}

/// What loading one file came to.
enum Loaded {
    /// Loaded, and the test ran to a record.
    Ran,
    /// Refused with this error.
    Refused(LimitsFileError),
}

/// Loads `path` (and runs the test when it loads), on a thread with a deadline.
fn load(path: &Path) -> Result<Loaded, String> {
    let path = path.to_owned();
    mutate::bounded(DEADLINE, move || {
        match Test::new("FVT1").phases(phases()).limits_file(&path) {
            Ok(test) => {
                let dir = tempfile::tempdir().unwrap();
                let mut test = test.json_output(JsonOutput::to_dir(dir.path())).quiet();
                let _ = test.execute(|| "SN-LIMITS");
                Loaded::Ran
            }
            Err(e) => Loaded::Refused(e),
        }
    })
    .map(|(loaded, _)| loaded)
}

/// Checks one refusal: every problem names the file, at a line of the file.
fn check_error(path: &Path, bytes: &[u8], error: &LimitsFileError) -> Result<(), String> {
    let shown = path.display().to_string();
    let message = error.to_string();
    if !message.contains(&shown) {
        return Err(format!("the error does not name the file: {message}"));
    }
    if let LimitsFileError::Invalid { problems } = error {
        if problems.is_empty() {
            return Err("refused without a problem".into());
        }
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        for p in problems {
            if p.file != shown || p.line == 0 || p.line > lines {
                return Err(format!(
                    "a problem at {}:{} in a file of {lines} lines: {}",
                    p.file, p.line, p.message
                ));
            }
        }
    }
    Ok(())
}

/// Writes each case to its own file, loads it, and returns `(refused, ran)`, or panics with
/// every case that went wrong.
fn run_cases(cases: &[Case]) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut refused, mut ran) = (0, 0);
    let mut wrong = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let path: PathBuf = dir.path().join(format!("limits-case-{i:05}.toml"));
        std::fs::write(&path, &case.bytes).unwrap();
        match load(&path) {
            Ok(Loaded::Ran) => ran += 1,
            Ok(Loaded::Refused(e)) => match check_error(&path, &case.bytes, &e) {
                Ok(()) => refused += 1,
                Err(why) => wrong.push(format!("{}: {why}", case.what)),
            },
            Err(why) => wrong.push(format!("{}: {why}", case.what)),
        }
    }
    eprintln!(
        "{} cases: {refused} refused, {ran} loaded and ran",
        cases.len()
    );
    crate::mutate::assert_none_wrong(&format!("{} cases", cases.len()), &wrong);
    (refused, ran)
}

#[test]
fn the_valid_file_loads_and_runs() {
    let (refused, ran) = run_cases(&[Case {
        what: "the example's file".into(),
        bytes: VALID.as_bytes().to_vec(),
    }]);
    assert_eq!((refused, ran), (0, 1));
}

#[test]
fn truncated_files_are_refused_or_load_never_panic() {
    // Every offset: the file is under a kilobyte.
    let cases = mutate::truncations(VALID.as_bytes(), VALID.len());
    assert_eq!(cases.len(), VALID.len());
    let (refused, _) = run_cases(&cases);
    // Cuts inside a header, a key, a string or an array are refused (a third of the offsets;
    // the others fall in comments, or between lines, and load what is left).
    assert!(refused > cases.len() / 4, "{refused} refused");
}

#[test]
fn changed_bytes_and_spliced_tokens_never_panic() {
    let mut rng = Rng::new(0x11_7175);
    let mut cases = mutate::byte_flips(VALID.as_bytes(), 600, &mut rng);
    let tokens = [
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        "=",
        ",",
        "\"",
        "'",
        "'''",
        "\"\"\"",
        "\n",
        "#",
        ".",
        "\\",
        "\\u0000",
        "\u{0}",
        "\u{feff}",
        "\u{2028}",
        "é",
        "🦀",
        "1e999",
        "-1e999",
        "nan",
        "+inf",
        "-inf",
        "-0",
        "0x7fffffffffffffff",
        "99999999999999999999",
        "-9223372036854775808",
        "1979-05-27T07:32:00Z",
        "07:32:00",
        "true",
        "[]",
        "{}",
        "[1]",
        "[1, 2, 3]",
        "\"x\"",
        "in_range = ",
        "marginal = ",
        "units = ",
        "equals = ",
        "matches_regex = ",
        "within_percent = ",
        "[parameters]",
        "[a.b.c.d]",
        "x.y.z = 1",
        "\"\" = 1",
    ];
    cases.extend(mutate::token_splices(
        VALID.as_bytes(),
        &tokens,
        600,
        &mut rng,
    ));
    run_cases(&cases);
}

#[test]
fn random_bytes_and_bad_encodings_are_refused_naming_the_file() {
    let mut rng = Rng::new(0xB17E5);
    let mut cases = mutate::random_bytes(200, 2048, &mut rng);
    cases.push(Case {
        what: "empty".into(),
        bytes: Vec::new(),
    });
    for (what, bytes) in [
        (
            "a BOM, then the file",
            [b"\xef\xbb\xbf", VALID.as_bytes()].concat(),
        ),
        (
            "invalid UTF-8 in a string",
            b"[parameters]\nx = \"\xff\xfe\"\n".to_vec(),
        ),
        (
            "UTF-16",
            "[parameters]\nx = 1\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
        ),
        ("a NUL byte", b"[parameters]\nx = 1\0\n".to_vec()),
        ("CR line ends", VALID.replace('\n', "\r").into_bytes()),
        ("CRLF line ends", VALID.replace('\n', "\r\n").into_bytes()),
    ] {
        cases.push(Case {
            what: what.into(),
            bytes,
        });
    }
    let (refused, ran) = run_cases(&cases);
    // Random bytes are never a limits file; CRLF is still TOML; an empty file sets nothing.
    assert!(refused >= 200, "{refused} refused, {ran} ran");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let mut cases = Vec::new();
    for depth in [10, 100, 1_000, 10_000, 100_000] {
        for (what, bytes) in [
            (
                "arrays",
                mutate::nested("[parameters]\nx = ", "[", "1", "]", depth),
            ),
            (
                "inline tables",
                mutate::nested("[parameters]\nx = ", "{a = ", "1", "}", depth),
            ),
            (
                "arrays of tables",
                mutate::nested("[parameters]\nx = ", "[{a = ", "1", "}]", depth),
            ),
            (
                "limits in arrays",
                mutate::nested(
                    "[power_rails.input_voltage]\nin_range = ",
                    "[",
                    "1",
                    "]",
                    depth,
                ),
            ),
        ] {
            cases.push(Case {
                what: format!("{what} nested {depth} deep"),
                bytes,
            });
        }
        let dotted: Vec<String> = (0..depth).map(|i| format!("k{i}")).collect();
        cases.push(Case {
            what: format!("a table header of {depth} dotted keys"),
            bytes: format!("[{}]\nin_range = [0, 1]\n", dotted.join(".")).into_bytes(),
        });
        cases.push(Case {
            what: format!("a key of {depth} dotted keys in [parameters]"),
            bytes: format!("[parameters]\n{} = 1\n", dotted.join(".")).into_bytes(),
        });
    }
    run_cases(&cases);
}

#[test]
fn huge_numbers_and_wrong_types_are_refused_at_their_line() {
    let section = "[power_rails.input_voltage]\n";
    let bodies = [
        "in_range = [1e308, 1e309]",
        "in_range = [-1e999, 1e999]",
        "in_range = [nan, 1]",
        "in_range = [0, inf]",
        "in_range = [-9223372036854775808, 9223372036854775807]",
        "in_range = [0, 99999999999999999999]",
        "in_range = [5, 4]",
        "in_range = [1]",
        "in_range = [1, 2, 3]",
        "in_range = [[1, 2]]",
        "in_range = \"1..2\"",
        "in_range = {min = 1, max = 2}",
        "in_range = [1979-05-27, 2]",
        "in_range = [0, 10]\nmarginal = [nan, nan]",
        "in_range = [0, 10]\nmarginal = [11, -1]",
        "at_least = nan",
        "at_most = -inf",
        "within_percent = { expected = nan, percent = 10 }",
        "within_percent = { expected = 1, percent = 1e308 }",
        "within_percent = { expected = 1e308, percent = 1e308, marginal_percent = 1e308 }",
        "within_percent = { expected = -1e308, percent = 100 }",
        "within_percent = { expected = 1, percent = -5 }",
        "within_percent = { expected = 1 }",
        "within_percent = 5",
        "equals = nan",
        "equals = {}",
        "equals = 1979-05-27T07:32:00Z",
        "units = 5",
        "units = \"not a unit\"",
        "units = \"\"",
        "units = \"A\"",
        "matches_regex = '('",
        "matches_regex = 'x{100000}{100000}'",
        "matches_regex = '(a*)*b'",
        "matches_regex = 5",
        "no_such_limit = 1",
        "in_range = [0, 1]\nin_range = [0, 2]",
    ];
    let mut cases: Vec<Case> = bodies
        .iter()
        .map(|body| Case {
            what: body.to_string(),
            bytes: format!("{section}{body}\n").into_bytes(),
        })
        .collect();
    for body in [
        "parameters = 5",
        "[parameters]\nx = nan",
        "[parameters]\nx = [1, nan]",
        "[parameters]\nx = 1e999",
        "power_rails = 1",
        "[power_rails]\ninput_voltage = 5",
        "[power_rails.no_such_measurement]\nin_range = [0, 1]",
        "[no_such_phase.input_voltage]\nin_range = [0, 1]",
        "[\"Power rails\".firmware]\nin_range = [0, 1]",
        "[power_rails.input_voltage]\nmatches_regex = 'x'",
    ] {
        cases.push(Case {
            what: body.to_string(),
            bytes: format!("{body}\n").into_bytes(),
        });
    }
    let huge_line = format!("[parameters]\nx = \"{}\"\n", "y".repeat(1 << 20));
    cases.push(Case {
        what: "a string of a mebibyte".into(),
        bytes: huge_line.into_bytes(),
    });
    let (refused, ran) = run_cases(&cases);
    // Accepted: the full range of 64-bit integers, 1e308 % of 1 and the mebibyte string.
    assert_eq!((refused, ran), (cases.len() - 3, 3));
}

/// The reasons given for refusing numbers, where they were unclear or missing.
#[test]
fn numbers_out_of_range_are_refused_saying_why() {
    let cases = [
        (
            "in_range = [1e308, 1e309]",
            "its second value is the float 1e309, too large for a 64-bit number",
        ),
        (
            "at_least = 99999999999999999999",
            "the integer 99999999999999999999, too large for a 64-bit number",
        ),
        // Finite limits whose band overflows would pass every value, NaN aside.
        (
            "within_percent = { expected = 1e308, percent = 1e308 }",
            "`within_percent`: 1e+308% of 1e+308 is not a finite number",
        ),
        (
            "within_percent = { expected = -1e308, percent = 100 }",
            "`within_percent`: 100% of -1e+308 is not a finite number",
        ),
    ];
    for (body, why) in cases {
        let text = format!("[power_rails.input_voltage]\n{body}\n");
        let error = Test::new("FVT1")
            .phases(phases())
            .limits_toml(&text, "rails.toml")
            .err()
            .unwrap_or_else(|| panic!("{body} was accepted"));
        let message = error.to_string();
        assert!(
            message.starts_with("rails.toml:2: [power_rails.input_voltage] ")
                && message.contains(why),
            "{body}: {message}"
        );
    }
}
