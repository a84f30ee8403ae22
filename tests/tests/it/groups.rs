//! Phase groups (setup, main, teardown) and subtests.

use tofu_core::prelude::*;
use tofu_core::{Outcome, PhaseOutcome, TestRecord};

use crate::support::{outcomes, run_quietly};

fn run(test: Test) -> TestRecord {
    run_quietly(test, "SN-GROUP")
}

#[phase]
fn setup() {}

#[phase]
fn stops_in_setup() -> PhaseResult {
    PhaseResult::Stop
}

#[phase]
fn main_phase() {}

#[phase]
fn crashes() -> Result<(), String> {
    Err("instrument did not respond".into())
}

#[phase]
fn never_reached() {}

#[phase]
fn teardown_a() -> Result<(), String> {
    Err("relay stuck".into())
}

#[phase]
fn teardown_b() {}

#[test]
fn teardown_runs_after_an_error_in_main_and_every_teardown_phase_runs() {
    let group = PhaseGroup::new("powered")
        .setup([setup])
        .main([main_phase, crashes, never_reached])
        .teardown([teardown_a, teardown_b]);
    let record = run(Test::new("FVT1").phases([group]).phases([never_reached]));
    assert_eq!(
        outcomes(&record),
        [
            ("setup", PhaseOutcome::Pass),
            ("main_phase", PhaseOutcome::Pass),
            ("crashes", PhaseOutcome::Error),
            ("teardown_a", PhaseOutcome::Error),
            ("teardown_b", PhaseOutcome::Pass),
        ]
    );
    assert_eq!(record.outcome, Outcome::Error);
    assert_eq!(
        record.outcome_details[0].description, "instrument did not respond",
        "the first terminal wins"
    );
}

#[test]
fn a_setup_that_stops_skips_main_and_teardown() {
    let group = PhaseGroup::new("g")
        .setup([stops_in_setup])
        .main([main_phase])
        .teardown([teardown_b]);
    let record = run(Test::new("FVT1").phases([group]));
    assert_eq!(outcomes(&record), [("stops_in_setup", PhaseOutcome::Error)]);
    assert_eq!(record.outcome, Outcome::Fail);
}

#[test]
fn nested_groups_tear_down_inside_out() {
    let inner = PhaseGroup::new("inner")
        .main([crashes])
        .teardown([teardown_b]);
    let outer = PhaseGroup::new("outer")
        .setup([setup])
        .main([PhaseNode::from(inner), PhaseNode::from(never_reached)])
        .teardown([teardown_a]);
    let record = run(Test::new("FVT1").phases([outer]));
    let names: Vec<&str> = record.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["setup", "crashes", "teardown_b", "teardown_a"]);
}

#[phase]
fn sub_a() -> PhaseResult {
    PhaseResult::FailSubtest
}

#[phase]
#[measures(skipped_value: f64 = at_most(1))]
fn sub_b(m: &mut sub_b::Measurements) {
    m.skipped_value.set(0.0);
}

#[phase]
fn after_subtest() {}

#[test]
fn fail_subtest_skips_the_rest_of_the_subtest_and_the_test_goes_on() {
    let record = run(Test::new("FVT1").phases([
        PhaseNode::from(Subtest::new("rf", [sub_a, sub_b])),
        after_subtest.into(),
    ]));
    assert_eq!(
        outcomes(&record),
        [
            ("sub_a", PhaseOutcome::Fail),
            ("sub_b", PhaseOutcome::Skip),
            ("after_subtest", PhaseOutcome::Pass)
        ]
    );
    assert_eq!(record.phases[0].subtest_name.as_deref(), Some("rf"));
    assert_eq!(record.phases[2].subtest_name, None);
    assert_eq!(record.outcome, Outcome::Fail);
    assert_eq!(record.subtests.len(), 1);
    assert_eq!(record.subtests[0]["name"], "rf");
    assert_eq!(record.subtests[0]["outcome"], "FAIL");
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(
        json["phases"][1]["measurements"]["skipped_value"]["outcome"],
        "SKIPPED"
    );
}

#[test]
fn fail_subtest_outside_a_subtest_is_an_error() {
    let record = run(Test::new("FVT1").phases([sub_a, after_subtest]));
    assert_eq!(outcomes(&record), [("sub_a", PhaseOutcome::Error)]);
    assert_eq!(record.outcome_details[0].code, "InvalidPhaseResultError");
}

#[phase]
#[measures(rail: f64 = in_range(3.2, 3.4))]
fn setup_fails_a_limit(m: &mut setup_fails_a_limit::Measurements) {
    m.rail.set(5.0);
}

/// The README's rule: a setup phase that fails a measurement completed (FAIL is not
/// terminal), so main and teardown run; a group the run never reached tears nothing down.
#[test]
fn a_setup_that_fails_a_limit_completed_and_an_unreached_group_tears_nothing_down() {
    let group = PhaseGroup::new("g")
        .setup([setup_fails_a_limit])
        .main([main_phase])
        .teardown([teardown_b]);
    let record = run(Test::new("FVT1").phases([group]));
    assert_eq!(
        outcomes(&record),
        [
            ("setup_fails_a_limit", PhaseOutcome::Fail),
            ("main_phase", PhaseOutcome::Pass),
            ("teardown_b", PhaseOutcome::Pass),
        ]
    );

    let later = PhaseGroup::new("later")
        .setup([setup])
        .teardown([teardown_b]);
    let record = run(Test::new("FVT1").phases([crashes]).phases([later]));
    assert_eq!(outcomes(&record), [("crashes", PhaseOutcome::Error)]);
}
