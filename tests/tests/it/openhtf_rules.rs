//! Rules where tofu differed from OpenHTF 1.6.3 until the differential test (`differential/`)
//! found it, each pinned here by a small test whose expected records are OpenHTF's for the
//! same tree (checked with `tests/openhtf/run_trees.py`).

use serde_json::Value as Json;
use tofu_core::prelude::*;
use tofu_core::{MeasurementOutcome, Outcome, PhaseOutcome, TestRecord};

use crate::support::{outcomes, run_quietly};

fn run(test: Test) -> TestRecord {
    run_quietly(test, "SN-RULES")
}

fn json(record: &TestRecord) -> Json {
    serde_json::to_value(record).unwrap()
}

#[phase]
fn fails_subtest() -> PhaseResult {
    PhaseResult::FailSubtest
}

#[phase]
fn powers_off() {}

#[phase]
fn measures() {}

#[phase]
fn after() {}

#[phase]
fn stops() -> PhaseResult {
    PhaseResult::Stop
}

#[phase]
fn errors() -> Result<(), String> {
    Err("instrument gone".into())
}

/// ARCHITECTURE.md's first rule for groups: the teardown runs whenever the setup did. A phase
/// failing the subtest in the group's main doesn't change that (OpenHTF runs the teardown).
#[test]
fn fail_subtest_in_a_group_inside_a_subtest_still_runs_the_group_teardown() {
    let powered = PhaseGroup::new("powered")
        .main([fails_subtest, measures])
        .teardown([powers_off]);
    let record = run(Test::new("FVT1").phases([
        PhaseNode::from(Subtest::new("rf", [PhaseNode::from(powered), after.into()])),
        after.into(),
    ]));
    assert_eq!(
        outcomes(&record),
        [
            ("fails_subtest", PhaseOutcome::Fail),
            ("measures", PhaseOutcome::Skip),
            ("powers_off", PhaseOutcome::Pass),
            ("after", PhaseOutcome::Skip),
            ("after", PhaseOutcome::Pass),
        ]
    );
    assert_eq!(
        json(&record)["phases"][2]["result"]["phase_result"],
        "CONTINUE"
    );
    assert_eq!(record.subtests[0]["outcome"], "FAIL");
}

/// A group entered once its subtest has failed is not entered: every phase of it is SKIP, the
/// teardown too (its setup never ran).
#[test]
fn a_group_reached_in_a_failed_subtest_is_skipped_whole() {
    let powered = PhaseGroup::new("powered")
        .setup([measures])
        .teardown([powers_off]);
    let record = run(Test::new("FVT1").phases([Subtest::new(
        "rf",
        [PhaseNode::from(fails_subtest), powered.into()],
    )]));
    assert_eq!(
        outcomes(&record),
        [
            ("fails_subtest", PhaseOutcome::Fail),
            ("measures", PhaseOutcome::Skip),
            ("powers_off", PhaseOutcome::Skip),
        ]
    );
}

/// A subtest inside a subtest that failed starts failed: its phases are SKIP, not run.
#[test]
fn a_subtest_inside_a_failed_subtest_is_skipped() {
    let record = run(Test::new("FVT1").phases([Subtest::new(
        "outer",
        [
            PhaseNode::from(fails_subtest),
            Subtest::new("inner", [measures]).into(),
        ],
    )]));
    assert_eq!(
        outcomes(&record),
        [
            ("fails_subtest", PhaseOutcome::Fail),
            ("measures", PhaseOutcome::Skip),
        ]
    );
    let subtests: Vec<(&Json, &Json)> = record
        .subtests
        .iter()
        .map(|s| (&s["name"], &s["outcome"]))
        .collect();
    assert_eq!(
        subtests,
        [
            (&Json::from("inner"), &Json::from("FAIL")),
            (&Json::from("outer"), &Json::from("FAIL"))
        ]
    );
}

/// In a teardown every node runs, but a group there whose setup stops is not entered, even
/// though the test had stopped before it.
#[test]
fn a_group_in_a_teardown_whose_setup_stops_runs_neither_main_nor_teardown() {
    let inner = PhaseGroup::new("inner")
        .setup([stops])
        .main([measures])
        .teardown([powers_off]);
    let outer = PhaseGroup::new("outer")
        .main([errors])
        .teardown([PhaseNode::from(inner), after.into()]);
    let record = run(Test::new("FVT1").phases([outer]));
    assert_eq!(
        outcomes(&record),
        [
            ("errors", PhaseOutcome::Error),
            ("stops", PhaseOutcome::Error),
            ("after", PhaseOutcome::Pass),
        ]
    );
    assert_eq!(record.outcome, Outcome::Error, "the first terminal wins");
}

/// A subtest whose phases end the run is STOP, in a teardown too (where the run had already
/// stopped before the subtest began).
#[test]
fn a_subtest_that_stops_in_a_teardown_is_stop() {
    let outer = PhaseGroup::new("outer")
        .main([stops])
        .teardown([Subtest::new("cleanup", [errors, after])]);
    let record = run(Test::new("FVT1").phases([outer]));
    assert_eq!(
        outcomes(&record),
        [
            ("stops", PhaseOutcome::Error),
            ("errors", PhaseOutcome::Error),
            ("after", PhaseOutcome::Pass),
        ]
    );
    assert_eq!(record.subtests[0]["outcome"], "STOP");
}

#[phase(repeat_on_measurement_fail)]
fn fails_then_passes(test: &mut PhaseContext) -> PhaseResult {
    if test.attempt() == 1 {
        PhaseResult::FailAndContinue
    } else {
        PhaseResult::Continue
    }
}

/// OpenHTF repeats while the phase's outcome is FAIL, whatever made it FAIL.
#[test]
fn fail_and_continue_is_repeated_under_repeat_on_measurement_fail() {
    let record = run(Test::new("FVT1").phases([fails_then_passes]));
    assert_eq!(
        outcomes(&record),
        [
            ("fails_then_passes", PhaseOutcome::Skip),
            ("fails_then_passes", PhaseOutcome::Pass),
        ]
    );
    assert_eq!(record.outcome, Outcome::Pass);
}

#[phase(repeat_on_measurement_fail, stop_on_measurement_fail)]
#[measures(x: f64 = at_most(1))]
fn fails_and_stops(m: &mut fails_and_stops::Measurements) {
    m.x.set(2);
}

/// A phase that stops the test on a failed measurement is ERROR (its result is STOP, which is
/// terminal), and so it is not retried.
#[test]
fn stop_on_measurement_fail_makes_the_phase_error_and_is_not_retried() {
    let record = run(Test::new("FVT1").phases([fails_and_stops, after]));
    assert_eq!(
        outcomes(&record),
        [("fails_and_stops", PhaseOutcome::Error)]
    );
    assert_eq!(json(&record)["phases"][0]["result"]["phase_result"], "STOP");
    assert_eq!(record.outcome, Outcome::Fail);
    assert_eq!(record.outcome_details[0].code, "STOP");
}

#[phase(repeat_limit = 2)]
#[measures(x: f64 = at_most(1))]
fn repeats(test: &mut PhaseContext, m: &mut repeats::Measurements) -> PhaseResult {
    if test.attempt() == 2 {
        m.x.set(0.5);
    }
    PhaseResult::Repeat
}

/// An attempt that asked to repeat leaves its unset measurements UNSET (only SKIP makes them
/// SKIPPED); the attempt that hits the limit is ERROR, its result still REPEAT, and the test
/// stops as if it returned STOP.
#[test]
fn repeated_attempts_leave_measurements_unset_and_the_limit_keeps_repeat_as_result() {
    let record = run(Test::new("FVT1").phases([repeats, after]));
    assert_eq!(
        outcomes(&record),
        [
            ("repeats", PhaseOutcome::Skip),
            ("repeats", PhaseOutcome::Error)
        ]
    );
    assert_eq!(
        record.phases[0].measurements[0].outcome,
        MeasurementOutcome::Unset
    );
    assert_eq!(
        record.phases[1].measurements[0].outcome,
        MeasurementOutcome::Pass
    );
    let json = json(&record);
    assert_eq!(json["phases"][1]["result"]["phase_result"], "REPEAT");
    assert_eq!(record.outcome, Outcome::Fail);
    assert_eq!(
        record.outcome_details[0].description,
        "Phase repeats stopped the test run."
    );
}

#[phase(repeat_on_measurement_fail, repeat_limit = 2)]
#[measures(
    iv: Sweep<1> = dimensions([SECOND]).each(in_range(0, 1)),
    never: Sweep<1> = dimensions([SECOND]),
    fine: Sweep<1> = dimensions([SECOND]),
)]
fn sweeps(m: &mut sweeps::Measurements) {
    m.iv.push([1.0], 0.5);
    m.iv.push([2.0], 2.5);
    m.fine.push([1.0], 1.0);
}

/// Every multi-dimensional measurement that did not pass (failed or never set) in a phase
/// that is FAIL gets a detail, written as OpenHTF writes it; retried attempts (SKIP) don't.
#[test]
fn failed_sweeps_are_described_in_the_outcome_details_as_openhtf_does() {
    let record = run(Test::new("FVT1").phases([sweeps]));
    assert_eq!(
        outcomes(&record),
        [
            ("sweeps", PhaseOutcome::Skip),
            ("sweeps", PhaseOutcome::Fail)
        ]
    );
    let details: Vec<(&str, &str)> = record
        .outcome_details
        .iter()
        .map(|d| (d.code.as_str(), d.description.as_str()))
        .collect();
    assert_eq!(
        details,
        [
            (
                "Multidim Measurement Failure",
                " failed_item: iv (Outcome.FAIL)\n  measured_value: [(1.0, 0.5), (2.0, 2.5)]\n  validators:\n   validator: All values pass: 0 <= x <= 1"
            ),
            (
                "Multidim Measurement Failure",
                " failed_item: never (Outcome.UNSET)\n  measured_value: UNSET\n  validators:"
            ),
        ]
    );
}

/// OpenHTF's message for FAIL_SUBTEST outside a subtest (an `InvalidPhaseResultError`).
#[test]
fn fail_subtest_outside_a_subtest_is_described_as_openhtf_does() {
    let record = run(Test::new("FVT1").phases([fails_subtest]));
    assert_eq!(record.outcome_details[0].code, "InvalidPhaseResultError");
    assert_eq!(
        record.outcome_details[0].description,
        "Phase returned FAIL_SUBTEST but a subtest is not running."
    );
}
