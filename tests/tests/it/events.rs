//! Events and commands: observers see every step in order and never hold a run up; front
//! ends answer prompts and abort runs; the `events` example's JSON lines say what its record
//! says.

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tofu_core::declare::in_range;
use tofu_core::outcome::Outcome;
use tofu_core::phase::MeasurementAccessError;
use tofu_core::{EventKind, Phase, Received, Station, Test};

use crate::example_binaries::executables;

fn measured(name: &str, value: f64) -> Phase {
    Phase::dynamic(name)
        .measure::<f64, _>("v", in_range(0, 10))
        .run(move |_, m| -> Result<(), MeasurementAccessError> {
            m.get::<f64>("v")?.set(value);
            Ok(())
        })
}

/// Every event of a run, in order, until its `run_closed`.
fn collect(subscription: &tofu_core::Subscription) -> Vec<std::sync::Arc<tofu_core::Event>> {
    let mut events = Vec::new();
    while let Some(Received::Event(e)) = subscription.recv_timeout(Duration::from_secs(10)) {
        let closed = matches!(e.kind, EventKind::RunClosed);
        events.push(e);
        if closed {
            break;
        }
    }
    events
}

#[test]
fn an_observer_sees_every_step_in_order() {
    let mut test = Test::new("FVT1")
        .phases([measured("a", 1.0), measured("b", 11.0)])
        .without_json_output()
        .quiet();
    let subscription = test.subscribe();
    let execution = test.execute(|| "SN-E1");
    assert_eq!(execution.record.outcome, Outcome::Fail);
    let events = collect(&subscription);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            let json = serde_json::to_value(&**e).unwrap();
            json["type"].as_str().unwrap().to_owned()
        })
        .filter(|k| k != "log")
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "unit_identified",
            "phase_started",
            "measurement_set",
            "phase_ended",
            "phase_started",
            "measurement_set",
            "phase_ended",
            "run_ended",
            "run_closed"
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let json = serde_json::to_value(&*events[0]).unwrap();
    assert_eq!(json["v"], 1);
    assert_eq!(
        json["plan"][1]["measurements"][0]["validators"][0],
        "0 <= x <= 10"
    );
}

/// A subscriber that never reads holds nothing up: the run ends, and the subscriber is told
/// how many events it missed, then can start again from a snapshot.
#[test]
fn a_stuck_observer_never_slows_the_run_and_is_told_what_it_missed() {
    let phases: Vec<Phase> = (0..200).map(|i| measured(&format!("p{i}"), 1.0)).collect();
    let mut test = Test::new("FVT1")
        .phases(phases)
        .without_json_output()
        .quiet();
    let stuck = test.events().subscribe_with_capacity(8);
    let execution = test.execute(|| "SN-STUCK");
    assert_eq!(execution.record.outcome, Outcome::Pass);
    match stuck.try_recv() {
        Some(Received::Missed(n)) => assert!(n > 400, "{n}"),
        other => panic!("{other:?}"),
    }
    let snapshot = stuck.snapshot();
    assert_eq!(snapshot.slots[0].serial_number.as_deref(), Some("SN-STUCK"));
    assert_eq!(snapshot.slots[0].outcome, Some(Outcome::Pass));
    assert_eq!(snapshot.slots[0].phase_count, 200);
}

/// A prompt is a request any front end answers: here a command, by the id of its event.
#[test]
fn a_command_answers_a_prompt_by_its_id() {
    let asks = Phase::dynamic("asks")
        .measure::<f64, _>("gap", in_range(0, 1))
        .run(|test, m| -> Result<(), Box<dyn std::error::Error>> {
            let gap: f64 = test.prompt_value("Read the gauge (mm)")?;
            m.get::<f64>("gap")?.set(gap);
            Ok(())
        });
    let mut test = Test::new("FVT1")
        .phases([asks])
        .without_json_output()
        .quiet();
    let subscription = test.subscribe();
    let commands = test.commands();
    let answerer = std::thread::spawn(move || {
        let mut answered = Vec::new();
        while let Some(Received::Event(e)) = subscription.recv_timeout(Duration::from_secs(10)) {
            match &e.kind {
                EventKind::PromptOpened { id, message, .. } => {
                    // A bad answer first: the phase says why and asks again, with a new id.
                    let value = if answered.is_empty() { "abc" } else { "0.42" };
                    commands.answer(*id, value).unwrap();
                    assert!(commands.answer(*id, "late").is_err(), "first answer wins");
                    answered.push(message.clone());
                }
                EventKind::RunClosed => break,
                _ => {}
            }
        }
        answered
    });
    let execution = test.execute(|| "SN-P");
    assert_eq!(execution.record.outcome, Outcome::Pass);
    let value = execution.record.phases[0].measurements[0]
        .measured_value
        .clone();
    assert_eq!(value, Some(tofu_core::Value::Number(0.42)));
    assert_eq!(answerer.join().unwrap().len(), 2);
}

/// One slot asking a question freezes nobody: the other slot, logging all along, ends first.
/// A command then aborts the slot that waits, alone.
#[test]
fn a_slot_waiting_for_an_answer_holds_no_other_slot_and_can_be_aborted_alone() {
    let mut station = Station::new(2, |slot| {
        let phase = if slot.index() == 0 {
            Phase::dynamic("asks").run(|test, _| test.prompt_confirm("Close the lid"))
        } else {
            Phase::dynamic("logs").run(|_, _| {
                for i in 0..200 {
                    tracing::info!("line {i}");
                }
            })
        };
        Test::new("FVT1").phases([phase]).without_json_output()
    })
    .quiet();
    let subscription = station.subscribe();
    let commands = station.commands();
    let (order, ordered) = mpsc::channel();
    std::thread::spawn(move || {
        let mut prompt = false;
        let mut slot1_ended = false;
        while let Some(Received::Event(e)) = subscription.recv_timeout(Duration::from_secs(20)) {
            match &e.kind {
                EventKind::PromptOpened { .. } => prompt = true,
                EventKind::RunEnded { .. } if e.slot == Some(1) => slot1_ended = true,
                _ => {}
            }
            if prompt && slot1_ended {
                let _ = order.send(());
                commands.abort_slot(0).unwrap();
                return;
            }
        }
    });
    let started = Instant::now();
    let batch = station.run(|slot| format!("SN-{}", slot.index()));
    assert!(
        ordered.try_recv().is_ok(),
        "slot 1 ended while slot 0 waited"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(batch.executions[0].record.outcome, Outcome::Aborted);
    assert_eq!(batch.executions[1].record.outcome, Outcome::Pass);
}

/// Two tests running at once in one process (two threads, no station): aborting one leaves
/// the other alone.
#[test]
fn two_tests_in_one_process_abort_independently() {
    let slow = || {
        Phase::dynamic("slow").run(|test, _| -> Result<(), tofu_core::Stopped> {
            test.sleep(Duration::from_millis(600))
        })
    };
    let mut a = Test::new("A")
        .phases([slow()])
        .without_json_output()
        .quiet();
    let mut b = Test::new("B")
        .phases([slow()])
        .without_json_output()
        .quiet();
    let abort_a = a.commands();
    let ta = std::thread::spawn(move || a.execute(|| "SN-A").record.outcome);
    let tb = std::thread::spawn(move || b.execute(|| "SN-B").record.outcome);
    let deadline = Instant::now() + Duration::from_secs(5);
    while abort_a.abort_slot(0).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ta.join().unwrap(), Outcome::Aborted);
    assert_eq!(tb.join().unwrap(), Outcome::Pass);
}

/// `events --ndjson`: one JSON line per event on stdout, whose measurement values and
/// outcomes are the record's.
#[test]
fn the_events_example_prints_what_its_record_says() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(&executables()["events"])
        .arg("--ndjson")
        .env("TOFU_OUTPUT_DIR", dir.path())
        .env_remove("TOFUPILOT_API_KEY")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.first().unwrap()["type"], "run_started");
    assert_eq!(events.last().unwrap()["type"], "run_closed");
    assert!(
        events
            .windows(2)
            .all(|w| w[1]["seq"].as_u64() > w[0]["seq"].as_u64())
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("Outcome: PASS"));
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut checked = 0;
    for e in events
        .iter()
        .filter(|e| e["type"] == "measurement_set" && !e["outcome"].is_null())
    {
        let phase = record["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == e["phase"])
            .unwrap();
        let m = &phase["measurements"][e["name"].as_str().unwrap()];
        assert_eq!(e["outcome"], m["outcome"], "{e}");
        if e["points"].is_null() {
            assert_eq!(e["value"], m["measured_value"], "{e}");
        } else {
            assert_eq!(e["points"], m["measured_value"].as_array().unwrap().len());
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
    // The sweep's points came live, in batches, and add up to the record's.
    let live: usize = events
        .iter()
        .filter(|e| e["type"] == "sweep_points")
        .map(|e| e["points"].as_array().unwrap().len())
        .sum();
    assert_eq!(live, 50);
}
