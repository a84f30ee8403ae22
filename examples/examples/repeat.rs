//! Repeats: a phase asks to run again (`PhaseResult::Repeat`, up to its `repeat_limit`), or is
//! retried on its own while its measurements fail (`repeat_on_measurement_fail`). Every attempt
//! is in the record; the attempts that were retried are SKIP, so a run that passed in the end
//! passes (OpenHTF 1.6.3 left them FAIL in its JSON).
//!
//! `cargo run --example repeat`

use std::process::ExitCode;

use tofu::prelude::*;

/// The link comes up on the second try.
#[phase(repeat_limit = 3)]
#[measures(link_up: bool = equals(true))]
fn connect(test: &mut PhaseContext, m: &mut connect::Measurements) -> PhaseResult {
    let up = test.attempt() >= 2;
    m.link_up.set(up);
    if up {
        PhaseResult::Continue
    } else {
        tracing::warn!("link down, trying again");
        PhaseResult::Repeat
    }
}

/// The oven settles by the third reading.
#[phase(repeat_on_measurement_fail, repeat_limit = 5)]
#[measures(oven_temperature: f64 = within_percent(85.0, 1).units(DEGREE_CELSIUS))]
fn oven(test: &mut PhaseContext, m: &mut oven::Measurements) {
    let reading = 85.0 + 6.0 / f64::from(test.attempt() * test.attempt());
    m.oven_temperature.set(reading);
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB01")
        .phases([connect, oven])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0004")
        .exit_code()
}
