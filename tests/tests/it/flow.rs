//! Flow control: retrying a phase while its measurements fail, and stopping at a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use tofu_core::prelude::*;
use tofu_core::{Outcome, PhaseOutcome, TestRecord};

use crate::support::{outcomes, run_quietly};

fn run(test: Test) -> TestRecord {
    run_quietly(test, "SN-FLOW")
}

/// Passes on the third attempt.
#[phase(repeat_on_measurement_fail, repeat_limit = 5)]
#[measures(settled: f64 = at_most(0.1).units(VOLT))]
fn settles(test: &mut PhaseContext, m: &mut settles::Measurements) {
    m.settled
        .set(1.0 / f64::from(test.attempt() * test.attempt()));
}

#[test]
fn a_phase_retried_on_measurement_failure_keeps_every_attempt_and_earlier_ones_are_skip() {
    let record = run(Test::new("FVT1").phases([settles]));
    assert_eq!(
        record.outcome,
        Outcome::Pass,
        "no stale FAIL: the retried attempts are SKIP"
    );
    assert_eq!(
        outcomes(&record),
        [
            ("settles", PhaseOutcome::Skip),
            ("settles", PhaseOutcome::Skip),
            ("settles", PhaseOutcome::Skip),
            ("settles", PhaseOutcome::Pass)
        ]
    );
    let attempts: Vec<u32> = record.phases.iter().map(|p| p.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(
        json["phases"][0]["options"]["repeat_on_measurement_fail"],
        true
    );
    assert_eq!(
        json["phases"][0]["measurements"]["settled"]["outcome"], "FAIL",
        "the measurement itself did fail"
    );
}

static NEVER_SETTLES: AtomicU32 = AtomicU32::new(0);

#[phase(repeat_on_measurement_fail, repeat_limit = 2)]
#[measures(settled: f64 = at_most(0.1))]
fn never_settles(m: &mut never_settles::Measurements) {
    NEVER_SETTLES.fetch_add(1, Ordering::SeqCst);
    m.settled.set(1.0);
}

#[test]
fn the_last_failed_attempt_fails_the_test() {
    let record = run(Test::new("FVT1").phases([never_settles]));
    assert_eq!(NEVER_SETTLES.load(Ordering::SeqCst), 2);
    assert_eq!(
        outcomes(&record),
        [
            ("never_settles", PhaseOutcome::Skip),
            ("never_settles", PhaseOutcome::Fail)
        ]
    );
    assert_eq!(record.outcome, Outcome::Fail);
}

#[phase(stop_on_measurement_fail)]
#[measures(leakage: f64 = at_most(1e-6).units(AMPERE))]
fn leaks(m: &mut leaks::Measurements) {
    m.leakage.set(3.2e-6);
}

#[phase]
#[measures(x: f64 = at_most(1))]
fn fails_softly(m: &mut fails_softly::Measurements) {
    m.x.set(2);
}

#[phase]
fn after() {}

#[test]
fn stop_on_measurement_fail_stops_the_test_at_that_phase() {
    let record = run(Test::new("FVT1").phases([leaks, after]));
    // ERROR, as in OpenHTF: the result becomes STOP, and a terminal result makes the phase ERROR.
    assert_eq!(outcomes(&record), [("leaks", PhaseOutcome::Error)]);
    assert_eq!(record.outcome, Outcome::Fail);
    assert_eq!(record.outcome_details[0].code, "STOP");
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["phases"][0]["result"]["phase_result"], "STOP");
}

#[test]
fn stop_on_first_failure_stops_after_the_first_failed_phase() {
    let record = run(Test::new("FVT1")
        .stop_on_first_failure()
        .phases([fails_softly, after]));
    assert_eq!(outcomes(&record), [("fails_softly", PhaseOutcome::Fail)]);
    assert_eq!(
        record.outcome_details[0].description,
        "Phase fails_softly stopped the test run."
    );
    let without = run(Test::new("FVT1").phases([fails_softly, after]));
    assert_eq!(
        outcomes(&without),
        [
            ("fails_softly", PhaseOutcome::Fail),
            ("after", PhaseOutcome::Pass)
        ]
    );
}

fn no_wifi_module() -> bool {
    false
}

fn always() -> bool {
    true
}

#[phase(run_if = no_wifi_module)]
fn wifi() {}

#[phase(run_if = always)]
#[measures(x: f64 = at_most(1))]
fn conditional(m: &mut conditional::Measurements) {
    m.x.set(0.5);
}

#[test]
fn a_phase_whose_run_if_is_false_is_left_out_of_the_record() {
    let record = run(Test::new("FVT1").phases([wifi, conditional, after]));
    assert_eq!(
        outcomes(&record),
        [
            ("conditional", PhaseOutcome::Pass),
            ("after", PhaseOutcome::Pass)
        ]
    );
    assert_eq!(record.outcome, Outcome::Pass);
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["phases"][0]["options"]["run_if"], "always");
}
