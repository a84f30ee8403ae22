//! Property tests (proptest, 256 cases each, a fixed seed per run of the suite is not needed:
//! failures print their minimal case).
//!
//! 1. The outcome rules: any sequence of phases, each returning any result on each attempt and
//!    setting its measurements to anything, gets the phase and test outcomes that OpenHTF's
//!    rules (`fixtures/openhtf/semantics.md` §3.3–3.6) give. The rules are written again
//!    here as a model, from that text, and the real executor runs the phases.
//! 2. The JSON record: whatever a run holds (any unicode text, any float including NaN, ±inf,
//!    -0.0 and subnormals, any JSON, any bytes attached, any log message), the file written
//!    reads back to the same data. Non-finite numbers are written as OpenHTF writes them, the
//!    strings `"nan"`, `"inf"` and `"-inf"`.

use std::sync::Arc;

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::Value as Json;
use tofu_core::declare::{__unspecified, in_range};
use tofu_core::outcome::{MeasurementOutcome, PhaseExecution};
use tofu_core::prelude::*;
use tofu_core::unit::SECOND;
use tofu_core::{Outcome, Phase, PhaseOutcome, TestRecord};
use tracing_subscriber::layer::SubscriberExt as _;

fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: 256,
        // No files of failing cases next to the sources: the minimal case is printed.
        failure_persistence: None,
        // The same cases on every run, so CI can't turn red by chance; `PROPTEST_RNG_SEED=N`
        // explores others.
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            default.rng_seed
        } else {
            proptest::test_runner::RngSeed::Fixed(0x7f0f_2026)
        },
        ..default
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Outcome rules
// ---------------------------------------------------------------------------------------------

/// How an attempt of a phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Continue,
    FailAndContinue,
    Repeat,
    Skip,
    Stop,
    Error,
    Panic,
}

/// What an attempt sets a measurement to; the measurement is `in_range(0, 10)` with a
/// marginal band `[1, 9]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Pass,
    Marginal,
    Fail,
    NaN,
    Unset,
}

impl Set {
    fn value(self) -> Option<f64> {
        match self {
            Set::Pass => Some(5.0),
            Set::Marginal => Some(0.5),
            Set::Fail => Some(11.0),
            Set::NaN => Some(f64::NAN),
            Set::Unset => None,
        }
    }
}

#[derive(Debug, Clone)]
struct PhaseSpec {
    /// One entry per measurement: does it allow failure.
    allow_fail: Vec<bool>,
    /// Attempt `n` plays `script[min(n, len) - 1]`.
    script: Vec<(Ending, Vec<Set>)>,
    /// `None`: the default (3).
    repeat_limit: Option<u32>,
    repeat_on_measurement_fail: bool,
    stop_on_measurement_fail: bool,
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        4 => Just(Ending::Continue),
        1 => Just(Ending::FailAndContinue),
        2 => Just(Ending::Repeat),
        1 => Just(Ending::Skip),
        1 => Just(Ending::Stop),
        1 => Just(Ending::Error),
        1 => Just(Ending::Panic),
    ]
}

fn set() -> impl Strategy<Value = Set> {
    prop_oneof![
        4 => Just(Set::Pass),
        1 => Just(Set::Marginal),
        2 => Just(Set::Fail),
        1 => Just(Set::NaN),
        1 => Just(Set::Unset),
    ]
}

fn phase_spec() -> impl Strategy<Value = PhaseSpec> {
    prop::collection::vec(any::<bool>(), 0..4).prop_flat_map(|allow_fail| {
        let n = allow_fail.len();
        (
            Just(allow_fail),
            prop::collection::vec((ending(), prop::collection::vec(set(), n)), 1..4),
            prop::option::of(1u32..4),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
        )
            .prop_map(
                |(allow_fail, script, repeat_limit, repeat_on_fail, stop_on_fail)| PhaseSpec {
                    allow_fail,
                    script,
                    repeat_limit,
                    repeat_on_measurement_fail: repeat_on_fail,
                    stop_on_measurement_fail: stop_on_fail,
                },
            )
    })
}

fn build_phase(index: usize, spec: &PhaseSpec) -> Phase {
    let mut builder = Phase::dynamic(format!("p{index}"));
    for (m, &allow) in spec.allow_fail.iter().enumerate() {
        let declared = in_range(0, 10).marginal(1, 9);
        let declared = if allow {
            declared.allow_fail()
        } else {
            declared
        };
        builder = builder.measure::<f64, _>(&format!("m{m}"), declared);
    }
    builder = crate::support::with_flow_options(
        builder,
        spec.repeat_limit,
        spec.repeat_on_measurement_fail,
        spec.stop_on_measurement_fail,
    );
    let script = Arc::new(spec.script.clone());
    builder.run(move |ctx, m| -> Result<PhaseResult, String> {
        let n = (ctx.attempt() as usize).clamp(1, script.len());
        let (ending, sets) = &script[n - 1];
        for (i, s) in sets.iter().enumerate() {
            if let Some(v) = s.value() {
                m.get::<f64>(&format!("m{i}"))
                    .map_err(|e| e.to_string())?
                    .set(v);
            }
        }
        match ending {
            Ending::Continue => Ok(PhaseResult::Continue),
            Ending::FailAndContinue => Ok(PhaseResult::FailAndContinue),
            Ending::Repeat => Ok(PhaseResult::Repeat),
            Ending::Skip => Ok(PhaseResult::Skip),
            Ending::Stop => Ok(PhaseResult::Stop),
            Ending::Error => Err(format!("instrument {n} gone")),
            Ending::Panic => panic!("bench fault {n}"),
        }
    })
}

/// One phase record, as the model predicts it.
#[derive(Debug, Clone, PartialEq)]
struct ModelPhase {
    name: String,
    attempt: u32,
    outcome: PhaseOutcome,
    marginal: Option<bool>,
    measurements: Vec<MeasurementOutcome>,
}

#[derive(Debug, Clone, PartialEq)]
struct ModelRun {
    phases: Vec<ModelPhase>,
    outcome: Outcome,
    /// `(code, description)` of the first detail, if any.
    detail: Option<(String, String)>,
    marginal: Option<bool>,
}

/// OpenHTF's rules, from semantics.md, written without looking at `tofu_core::outcome`.
fn model(specs: &[PhaseSpec]) -> ModelRun {
    enum First {
        Stop(String),
        Error(String, String),
    }
    let mut phases = Vec::new();
    let mut first: Option<First> = None;
    'phases: for (index, spec) in specs.iter().enumerate() {
        let name = format!("p{index}");
        // §3.4: repeat_limit None means 3.
        let limit = spec.repeat_limit.unwrap_or(3);
        let mut attempt = 1u32;
        loop {
            let (ending, sets) = &spec.script[(attempt as usize).min(spec.script.len()) - 1];
            let ending = *ending;
            // §3.3: REPEAT on the last attempt sets hit_repeat_limit.
            let hit_limit = ending == Ending::Repeat && attempt >= limit;
            let terminal = matches!(ending, Ending::Stop | Ending::Error | Ending::Panic);
            // PhaseState._finalize_measurements: only SKIP turns UNSET into SKIPPED (a REPEAT
            // attempt's unset measurements stay UNSET).
            let skipped = ending == Ending::Skip;
            let repeated = ending == Ending::Repeat;
            // §3.5: validated values; NaN fails the range check.
            let measured: Vec<(MeasurementOutcome, bool, bool)> = sets
                .iter()
                .zip(&spec.allow_fail)
                .map(|(s, &allow)| match s {
                    Set::Pass => (MeasurementOutcome::Pass, false, allow),
                    Set::Marginal => (MeasurementOutcome::Pass, true, allow),
                    Set::Fail | Set::NaN => (MeasurementOutcome::Fail, false, allow),
                    Set::Unset if skipped => (MeasurementOutcome::Skipped, false, allow),
                    Set::Unset => (MeasurementOutcome::Unset, false, allow),
                })
                .collect();
            // §3.5, PhaseState.finalize, steps 1 to 5.
            let (mut outcome, marginal) = if terminal || hit_limit {
                (PhaseOutcome::Error, None)
            } else if skipped || repeated {
                (PhaseOutcome::Skip, None)
            } else if ending == Ending::FailAndContinue
                // Step 4: a failed measurement (without allow_fail) or an unset one.
                || measured.iter().any(|(o, _, allow)| {
                    (*o == MeasurementOutcome::Fail && !allow) || *o == MeasurementOutcome::Unset
                })
            {
                (PhaseOutcome::Fail, None)
            } else {
                (PhaseOutcome::Pass, Some(measured.iter().any(|m| m.1)))
            };
            let measurements_failed = outcome == PhaseOutcome::Fail && ending == Ending::Continue;
            // stop_on_measurement_fail: the result becomes STOP, a terminal result, which makes
            // the phase ERROR (PhaseState._set_postdiagnosis_phase_outcome).
            let mut stops = matches!(ending, Ending::Stop) || hit_limit;
            if measurements_failed && spec.stop_on_measurement_fail {
                outcome = PhaseOutcome::Error;
                stops = true;
            }
            // repeat_on_measurement_fail repeats while the phase is FAIL, whatever made it so
            // (PhaseExecutor._should_repeat); retried attempts are SKIP (tofu writes the SKIP
            // OpenHTF keeps in memory, §5.2).
            let retry =
                spec.repeat_on_measurement_fail && outcome == PhaseOutcome::Fail && attempt < limit;
            if retry {
                outcome = PhaseOutcome::Skip;
            }
            phases.push(ModelPhase {
                name: name.clone(),
                attempt,
                outcome,
                marginal,
                measurements: measured.iter().map(|m| m.0).collect(),
            });
            if stops {
                first = Some(First::Stop(name.clone()));
                break 'phases;
            }
            match ending {
                Ending::Error => {
                    first = Some(First::Error(
                        "String".into(),
                        format!(
                            "instrument {} gone",
                            (attempt as usize).min(spec.script.len())
                        ),
                    ));
                    break 'phases;
                }
                Ending::Panic => {
                    first = Some(First::Error(
                        "Panic".into(),
                        format!("bench fault {}", (attempt as usize).min(spec.script.len())),
                    ));
                    break 'phases;
                }
                _ => {}
            }
            if ending == Ending::Repeat || retry {
                attempt += 1;
                continue;
            }
            break;
        }
    }
    // §3.6.
    let (outcome, detail, marginal) = match first {
        Some(First::Error(code, description)) => (Outcome::Error, Some((code, description)), None),
        Some(First::Stop(phase)) => (
            Outcome::Fail,
            Some((
                "STOP".into(),
                format!("Phase {phase} stopped the test run."),
            )),
            None,
        ),
        // No phase record: OpenHTF never sets the marginal flag.
        None if phases.is_empty() => (Outcome::Pass, None, None),
        None if phases.iter().any(|p| p.outcome == PhaseOutcome::Fail) => {
            (Outcome::Fail, None, None)
        }
        None if phases.iter().all(|p| p.outcome == PhaseOutcome::Skip) => (
            Outcome::Error,
            Some((
                "ALL_SKIPPED".into(),
                "All phases were unexpectedly skipped.".into(),
            )),
            None,
        ),
        None => (
            Outcome::Pass,
            None,
            Some(phases.iter().any(|p| p.marginal == Some(true))),
        ),
    };
    ModelRun {
        phases,
        outcome,
        detail,
        marginal,
    }
}

fn observed(record: &TestRecord) -> ModelRun {
    ModelRun {
        phases: record
            .phases
            .iter()
            .map(|p| ModelPhase {
                name: p.name.clone(),
                attempt: p.attempt,
                outcome: p.outcome,
                marginal: p.marginal,
                measurements: p.measurements.iter().map(|m| m.outcome).collect(),
            })
            .collect(),
        outcome: record.outcome,
        detail: record
            .outcome_details
            .first()
            .map(|d| (d.code.clone(), d.description.clone())),
        marginal: record.marginal,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn outcomes_follow_openhtf_rules(specs in prop::collection::vec(phase_spec(), 0..6)) {
        let phases: Vec<Phase> = specs.iter().enumerate().map(|(i, s)| build_phase(i, s)).collect();
        let mut test = Test::new("FVT1").phases(phases).without_json_output().quiet();
        let subscriber = tracing_subscriber::registry().with(tofu_core::logging::layer());
        let record =
            tracing::subscriber::with_default(subscriber, || test.execute(|| "SN-PROP").record);
        prop_assert_eq!(observed(&record), model(&specs));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The JSON record, written and read back
// ---------------------------------------------------------------------------------------------

/// A measured value of any kind.
#[derive(Debug, Clone)]
enum Measured {
    Number(f64),
    Text(String),
    Bool(bool),
    Json(Json),
    Sweep(Vec<(f64, f64)>),
}

/// Any f64, with the awkward ones often.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(f64::MIN_POSITIVE / 8.0),
        1 => Just(f64::MAX),
        1 => Just(0.1 + 0.2),
    ]
}

/// Any text: unicode of every plane, control characters, quotes and backslashes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => "[\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}\u{2029}\u{fffd}\u{10ffff}é日本🦀]{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Json::from),
        text().prop_map(Json::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

fn measured() -> impl Strategy<Value = Measured> {
    prop_oneof![
        3 => float().prop_map(Measured::Number),
        2 => text().prop_map(Measured::Text),
        1 => any::<bool>().prop_map(Measured::Bool),
        2 => json().prop_map(Measured::Json),
        2 => prop::collection::vec((float(), float()), 0..5).prop_map(Measured::Sweep),
    ]
}

#[derive(Debug, Clone)]
struct RunData {
    serial: String,
    part_number: String,
    metadata: Vec<(String, Json)>,
    values: Vec<Measured>,
    attachments: Vec<(String, Vec<u8>)>,
    log: String,
}

fn run_data() -> impl Strategy<Value = RunData> {
    (
        text().prop_filter("a serial number", |s| !s.trim().is_empty()),
        text(),
        prop::collection::vec(("[a-z][a-z0-9_]{0,8}", json()), 0..3),
        prop::collection::vec(measured(), 0..6),
        prop::collection::vec((text(), prop::collection::vec(any::<u8>(), 0..64)), 0..3),
        text(),
    )
        .prop_map(
            |(serial, part_number, metadata, values, attachments, log)| RunData {
                serial,
                part_number,
                metadata,
                values,
                attachments,
                log,
            },
        )
}

fn build_run(data: &RunData) -> Test {
    let mut builder = Phase::dynamic("data");
    for (i, v) in data.values.iter().enumerate() {
        let name = format!("v{i}");
        builder = match v {
            Measured::Number(_) => builder.measure::<f64, _>(&name, __unspecified()),
            Measured::Text(_) => builder.measure::<String, _>(&name, __unspecified()),
            Measured::Bool(_) => builder.measure::<bool, _>(&name, __unspecified()),
            Measured::Json(_) => builder.measure::<tofu_core::Json, _>(&name, __unspecified()),
            Measured::Sweep(_) => {
                builder.measure::<Sweep<1>, _>(&name, tofu_core::declare::dimensions([SECOND]))
            }
        };
    }
    let values = data.values.clone();
    let attachments = data.attachments.clone();
    let log = data.log.clone();
    let phase = builder.run(move |ctx, m| -> Result<(), String> {
        for (i, v) in values.iter().enumerate() {
            let name = format!("v{i}");
            let e = |e: tofu_core::phase::MeasurementAccessError| e.to_string();
            match v {
                Measured::Number(x) => m.get::<f64>(&name).map_err(e)?.set(*x),
                Measured::Text(s) => m.get::<String>(&name).map_err(e)?.set(s.as_str()),
                Measured::Bool(b) => m.get::<bool>(&name).map_err(e)?.set(*b),
                Measured::Json(j) => m.get::<tofu_core::Json>(&name).map_err(e)?.set(j.clone()),
                Measured::Sweep(points) => {
                    let mut sweep = m.get::<Sweep<1>>(&name).map_err(e)?;
                    for (x, y) in points {
                        sweep.push([*x], *y);
                    }
                }
            }
        }
        for (i, (name, bytes)) in attachments.iter().enumerate() {
            // Names are unique within a phase: the index makes them so.
            ctx.attach(&format!("{i}-{name}"), bytes.clone())
                .map_err(|e| e.to_string())?;
        }
        tracing::info!("{log}");
        Ok(())
    });
    let mut test = Test::new("FVT1")
        .part_number(data.part_number.clone())
        .phases([phase]);
    for (k, v) in &data.metadata {
        test = test.metadata(format!("x_{k}"), v.clone());
    }
    test
}

/// A number as the record writes it: finite ones as JSON numbers (read back to the same bits),
/// the others as OpenHTF's strings.
fn check_number(written: &Json, want: f64, at: &str) -> Result<(), TestCaseError> {
    if want.is_nan() {
        prop_assert_eq!(written, &Json::from("nan"), "{}", at);
    } else if want == f64::INFINITY {
        prop_assert_eq!(written, &Json::from("inf"), "{}", at);
    } else if want == f64::NEG_INFINITY {
        prop_assert_eq!(written, &Json::from("-inf"), "{}", at);
    } else {
        let back = written.as_f64();
        prop_assert!(back.is_some(), "{}: {} is not a number", at, written);
        prop_assert_eq!(
            back.map(f64::to_bits),
            Some(want.to_bits()),
            "{}: wrote {} for {:e}",
            at,
            written,
            want
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_json_record_reads_back_to_the_same_data(data in run_data()) {
        let dir = tempfile::tempdir().unwrap();
        let mut test = build_run(&data).json_output(JsonOutput::to_dir(dir.path())).quiet();
        let serial = data.serial.clone();
        // The record's logs only, not the console (the messages are random text).
        let subscriber = tracing_subscriber::registry().with(tofu_core::logging::layer());
        let execution =
            tracing::subscriber::with_default(subscriber, || test.execute(move || serial));
        let record = &execution.record;
        prop_assert_eq!(record.phases.len(), 1);
        // The phase ran to its end (a NaN fails its measurement, nothing else fails).
        prop_assert_eq!(
            &record.phases[0].result,
            &PhaseExecution::Returned(PhaseResult::Continue)
        );

        // Exactly one file was written, and it is what `to_json` gives.
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        prop_assert_eq!(files.len(), 1, "{:?}", files);
        let bytes = std::fs::read(&files[0]).unwrap();
        let back: Json = serde_json::from_slice(&bytes).unwrap();
        let again: Json = serde_json::from_str(&record.to_json().unwrap()).unwrap();
        prop_assert_eq!(&back, &again);

        prop_assert_eq!(&back["dut_id"], &Json::from(data.serial.as_str()));
        prop_assert_eq!(&back["metadata"]["part_number"], &Json::from(data.part_number.as_str()));
        // A key given twice keeps its last value, as `Test::metadata` documents.
        let metadata: std::collections::BTreeMap<&String, &Json> =
            data.metadata.iter().map(|(k, v)| (k, v)).collect();
        for (k, v) in metadata {
            prop_assert_eq!(&back["metadata"][format!("x_{k}")], v);
        }
        let phase = &back["phases"][0];
        for (i, v) in data.values.iter().enumerate() {
            let at = format!("v{i}");
            let written = &phase["measurements"][&at]["measured_value"];
            match v {
                Measured::Number(x) => check_number(written, *x, &at)?,
                Measured::Text(s) => prop_assert_eq!(written, &Json::from(s.as_str())),
                Measured::Bool(b) => prop_assert_eq!(written, &Json::from(*b)),
                Measured::Json(j) => prop_assert_eq!(written, j),
                // A sweep with no point was never set: no value, as OpenHTF (UNSET).
                Measured::Sweep(points) if points.is_empty() => {
                    prop_assert!(phase["measurements"][&at].get("measured_value").is_none());
                    prop_assert_eq!(&phase["measurements"][&at]["outcome"], &Json::from("UNSET"));
                }
                Measured::Sweep(points) => {
                    let rows = written.as_array();
                    prop_assert_eq!(rows.map(Vec::len), Some(points.len()), "{}", at);
                    for (r, (x, y)) in points.iter().enumerate() {
                        let row = &written[r];
                        prop_assert_eq!(row.as_array().map(Vec::len), Some(2));
                        check_number(&row[0], *x, &format!("{at}[{r}][0]"))?;
                        check_number(&row[1], *y, &format!("{at}[{r}][1]"))?;
                    }
                }
            }
        }
        for (i, (name, bytes)) in data.attachments.iter().enumerate() {
            let a = &phase["attachments"][format!("{i}-{name}")];
            let data_b64 = a["data"].as_str().unwrap_or_default();
            let decoded = base64::engine::general_purpose::STANDARD.decode(data_b64);
            prop_assert_eq!(decoded.ok(), Some(bytes.clone()));
            prop_assert_eq!(&a["size"], &Json::from(bytes.len()));
        }
        let logged: Vec<&str> = back["log_records"]
            .as_array()
            .map(|l| l.iter().filter_map(|r| r["message"].as_str()).collect())
            .unwrap_or_default();
        prop_assert!(logged.contains(&data.log.as_str()), "{:?} not in {:?}", data.log, logged);
    }
}
