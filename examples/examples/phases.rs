//! A test split into phases, run in the order listed. A phase may take the run's context
//! and its measurements, return a `PhaseResult`, and have a display name of its own.
//!
//! Run it with `cargo run --example phases`; the record is written into `./tofu-records`
//! (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

/// Connects to the board: no measurement, so the phase passes unless it fails or errs.
#[phase]
fn phase_connect(test: &mut PhaseContext) -> PhaseResult {
    tracing::info!("connected to {}", test.serial_number());
    PhaseResult::Continue
}

/// Reads the firmware version the board reports.
#[phase]
#[measures(firmware_version: String = equals("v2.5.1"))]
fn phase_firmware_version_check(m: &mut phase_firmware_version_check::Measurements) {
    m.firmware_version.set("v2.5.1");
}

/// Measures the regulator's input and output.
#[phase(name = "Voltage measurements")]
#[measures(
    input_voltage: f64 = in_range(3.1, 3.5).units(VOLT),
    output_voltage: f64 = in_range(1.1, 1.3).units(VOLT),
)]
fn phase_voltage_measurements(m: &mut phase_voltage_measurements::Measurements) {
    m.input_voltage.set(3.3);
    m.output_voltage.set(1.2);
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB1")
        .phases([
            phase_connect,
            phase_firmware_version_check,
            phase_voltage_measurements,
        ])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB1A002")
        .exit_code()
}
