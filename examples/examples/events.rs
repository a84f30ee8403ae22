//! A run seen live: `cargo run --example events` runs a power-board test and prints a line per
//! event as it happens; `-- --ndjson` prints every event as one JSON line on stdout instead
//! (the form documented in `docs/events.md`), the console summary going to stderr, so that
//! another program can follow the run through a pipe:
//!
//! ```text
//! cargo run --example events -- --ndjson | jq -c 'select(.type == "measurement_set")'
//! ```

use std::process::ExitCode;

use tofu::prelude::*;
use tofu::{EventKind, Received, Stopped};

/// Checks the board identifies itself.
#[phase(name = "Connect")]
#[measures(
    firmware_version: String = equals("1.2.7"),
    self_test_ok: bool = equals(true),
)]
fn connect(m: &mut connect::Measurements) {
    tracing::info!("connecting to the board");
    m.firmware_version.set("1.2.7");
    m.self_test_ok.set(true);
}

/// Checks the rails.
#[phase(name = "Power rails")]
#[measures(
    input_voltage: f64 = in_range(4.75, 5.25).units(VOLT),
    rail_3v3: f64 = in_range(3.2, 3.4).marginal(3.22, 3.38).units(VOLT),
    input_current: f64 = at_most(0.5).units(AMPERE),
)]
fn power_rails(m: &mut power_rails::Measurements) {
    m.input_voltage.set(5.01);
    m.rail_3v3.set(3.302);
    m.input_current.set(0.21);
}

/// Sweeps the load, slowly enough for its points to arrive live.
#[phase(name = "IV sweep")]
#[measures(iv: Sweep<2> = dimensions([VOLT, AMPERE]).units(OHM).each(in_range(95, 105)))]
fn iv_sweep(test: &mut PhaseContext, m: &mut iv_sweep::Measurements) -> Result<(), Stopped> {
    for i in 1..=50 {
        let v = 0.1 * f64::from(i);
        m.iv.push([v, v / 100.0], 100.0 + f64::from(i % 3) - 1.0);
        test.sleep(std::time::Duration::from_millis(4))?;
    }
    test.attach("iv.csv", "v,i\n0.1,0.001\n").ok();
    Ok(())
}

fn main() -> ExitCode {
    let ndjson = std::env::args().any(|a| a == "--ndjson");
    let test = Test::new("FVT1")
        .part_number("PCB01")
        .phases([connect, power_rails, iv_sweep]);
    let mut test = if ndjson {
        test.summary_to_stderr()
    } else {
        test
    };
    let (done, finished) = std::sync::mpsc::channel();
    let subscription = test.subscribe();
    let printer = std::thread::spawn(move || {
        while let Some(received) = subscription.recv() {
            match &received {
                Received::Event(event) if ndjson => match serde_json::to_string(&**event) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("an event could not be written: {e}"),
                },
                Received::Event(event) => println!("{:>4}  {}", event.seq, describe(&event.kind)),
                Received::Missed(n) => eprintln!("({n} events missed)"),
                _ => {}
            }
            if let Received::Event(e) = &received
                && matches!(e.kind, EventKind::RunClosed)
            {
                break;
            }
        }
        let _ = done.send(());
    });
    let execution = test.execute(|| "PCB01A0001");
    let _ = finished.recv_timeout(std::time::Duration::from_secs(5));
    let _ = printer.join();
    execution.exit_code()
}

/// One event in a few words.
fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::RunStarted { plan, .. } => format!("run started: {} phases", plan.len()),
        EventKind::UnitIdentified { serial_number } => format!("unit {serial_number}"),
        EventKind::PhaseStarted { name, attempt, .. } => {
            format!("phase {name} (attempt {attempt})")
        }
        EventKind::MeasurementSet {
            name,
            value,
            points,
            outcome,
            ..
        } => match (points, outcome) {
            (Some(n), Some(o)) => format!("  {name}: {n} points, {o:?}"),
            (_, Some(o)) => format!("  {name} = {} {o:?}", json(value)),
            _ => format!("  {name} = {} (live)", json(value)),
        },
        EventKind::SweepPoints {
            name,
            first,
            points,
            ..
        } => {
            format!("  {name}: points {first}..{}", first + points.len())
        }
        EventKind::PhaseEnded { record, .. } => {
            format!("phase {} {:?}", record.name, record.outcome)
        }
        EventKind::Log { record } => format!("  log: {}", record.message),
        EventKind::Attachment { name, size, .. } => format!("  attached {name} ({size} B)"),
        EventKind::RunEnded { record } => format!("run ended: {:?}", record.outcome),
        EventKind::OutputDone {
            name,
            location,
            error,
        } => {
            format!(
                "{name}: {}",
                error.as_deref().or(location.as_deref()).unwrap_or("done")
            )
        }
        EventKind::RunClosed => "run closed".to_owned(),
        other => format!("{other:?}"),
    }
}

fn json(value: &Option<tofu::Value>) -> String {
    value
        .as_ref()
        .and_then(|v| serde_json::to_string(v).ok())
        .unwrap_or_default()
}
