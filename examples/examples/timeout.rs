//! Timeouts: a phase that waits on an instrument that never answers is recorded as TIMEOUT at
//! its deadline, and the run goes on: the supply is turned off, the record is written.
//!
//! `cargo run --example timeout` passes (the instrument answers in time). With
//! `-- --hang` the instrument never answers: the run ends TIMEOUT 300 ms into the phase and
//! exits 2 (TIMEOUT: the station, not the board), with the supply's teardown in the log.

use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;

/// A simulated instrument: answers after `delay`.
struct SlowMeter {
    delay: Duration,
}

impl Plug for SlowMeter {}

/// A simulated supply, turned off at the end of every run.
struct Supply;

impl Plug for Supply {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        tracing::info!("supply off");
        Ok(())
    }
}

#[phase(timeout_s = 0.3)]
#[measures(reading: f64 = in_range(0.9, 1.1).units(VOLT))]
fn read_meter(m: &mut read_meter::Measurements, meter: &mut SlowMeter) {
    tracing::info!("waiting for the meter");
    std::thread::sleep(meter.delay);
    m.reading.set(1.0);
}

fn main() -> ExitCode {
    let hang = std::env::args().any(|a| a == "--hang");
    let delay = if hang {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(20)
    };
    Test::new("FVT1")
        .part_number("PCB01")
        .plug(Supply)
        .plug(SlowMeter { delay })
        .phase_timeout(Duration::from_secs(60))
        .phases([read_meter])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0003")
        .exit_code()
}
