//! Timeouts: a phase past its deadline is TIMEOUT within milliseconds, even when it is blocked
//! in a call that never returns, and the run goes on to its teardowns and record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tofu_core::prelude::*;
use tofu_core::{Outcome, PhaseOutcome};

#[phase(timeout_s = 0.2)]
#[measures(before: f64)]
fn blocked_in_a_call(m: &mut blocked_in_a_call::Measurements) {
    m.before.set(1.0);
    tracing::info!("waiting for an instrument that never answers");
    std::thread::sleep(Duration::from_secs(10));
}

#[phase]
fn never_reached() {}

#[test]
fn a_blocked_phase_times_out_within_50_ms_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .phases([blocked_in_a_call, never_reached])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let started = Instant::now();
    let execution = test.execute(|| "SN-T1");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "the run did not wait for the blocked call: {elapsed:?}"
    );
    let record = &execution.record;
    assert_eq!(record.outcome, Outcome::Timeout);
    assert_eq!(record.outcome_details[0].code, "TIMEOUT");
    assert_eq!(
        record.outcome_details[0].description,
        "Phase blocked_in_a_call hit its timeout."
    );
    assert_eq!(record.phases.len(), 1);
    let phase = &record.phases[0];
    assert_eq!(phase.outcome, PhaseOutcome::Error);
    let took = phase.end_time_millis - phase.start_time_millis;
    assert!(
        (200..250).contains(&took),
        "TIMEOUT recorded {took} ms after the start, deadline 200 ms"
    );
    let json = serde_json::to_value(record).unwrap();
    assert_eq!(
        json["phases"][0]["result"]["phase_result"],
        serde_json::Value::Null
    );
    assert_eq!(json["phases"][0]["options"]["timeout_s"], 0.2);
    // Events the phase logged before the deadline are in the record.
    assert!(
        record
            .log_records
            .iter()
            .any(|l| l.message == "waiting for an instrument that never answers")
    );
    assert!(execution.outputs_ok(), "the record was written");
}

#[phase]
#[measures(value: f64 = in_range(0, 10))]
fn quick(m: &mut quick::Measurements, counter: &mut Counter) {
    counter.0 += 1;
    m.value.set(counter.0);
}

struct Counter(u32);

impl Plug for Counter {}

#[test]
fn a_phase_within_its_timeout_keeps_its_measurements_and_plugs() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .plug(Counter(0))
        .phase_timeout(Duration::from_secs(5))
        .phases([quick, quick])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| "SN-T2");
    assert!(execution.passed(), "{:?}", execution.record.outcome_details);
    let values: Vec<_> = execution
        .record
        .phases
        .iter()
        .map(|p| p.measurements[0].measured_value.clone())
        .collect();
    assert_eq!(
        values,
        [
            Some(tofu_core::Value::Number(1.0)),
            Some(tofu_core::Value::Number(2.0))
        ]
    );
}

type Journal = Arc<Mutex<Vec<String>>>;

struct Instrument(Journal);

impl Plug for Instrument {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.lock().unwrap().push("teardown".into());
        Ok(())
    }
}

struct Chamber(Journal);

impl Plug for Chamber {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.lock().unwrap().push("chamber teardown".into());
        Ok(())
    }
}

#[phase(timeout_s = 0.1)]
fn hangs_holding_the_instrument(_instrument: &mut Instrument) {
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_plug_held_by_a_timed_out_phase_is_skipped_and_the_others_are_torn_down() {
    let journal: Journal = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .plug(Instrument(Arc::clone(&journal)))
        .plug(Chamber(Arc::clone(&journal)))
        .phases([hangs_holding_the_instrument])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let started = Instant::now();
    let execution = test.execute(|| "SN-T3");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(execution.record.outcome, Outcome::Timeout);
    assert_eq!(*journal.lock().unwrap(), ["chamber teardown"]);
    let logs: Vec<&str> = execution
        .record
        .log_records
        .iter()
        .map(|l| l.message.as_str())
        .collect();
    assert!(
        logs.iter()
            .any(|m| m.contains("plug `Instrument` is still in use by a phase that timed out")),
        "{logs:?}"
    );
}

#[phase(timeout_s = 0.1)]
fn soaks_holding_the_instrument(
    test: &mut PhaseContext,
    _instrument: &mut Instrument,
) -> Result<(), tofu_core::Stopped> {
    test.sleep(Duration::from_secs(30))?;
    Ok(())
}

/// A phase that waits with `PhaseContext::sleep` stops when its timeout passes, so it lets go
/// of its plug and the plug is torn down (compare the test above).
#[test]
fn a_phase_sleeping_through_its_context_stops_at_its_timeout_and_its_plug_is_torn_down() {
    let journal: Journal = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .plug(Instrument(Arc::clone(&journal)))
        .phases([soaks_holding_the_instrument])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let execution = test.execute(|| "SN-T4");
    assert_eq!(execution.record.outcome, Outcome::Timeout);
    assert_eq!(*journal.lock().unwrap(), ["teardown"]);
}

/// A timeout too large for the clock is no deadline, not a panic.
#[test]
fn a_timeout_too_large_for_the_clock_is_no_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .phases([never_reached])
        .phase_timeout(Duration::MAX)
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    assert_eq!(test.execute(|| "SN-T5").record.outcome, Outcome::Pass);
}
