//! Numeric measurements: limits and a unit. A measurement declared as `Si<volt>` takes a
//! `uom` quantity in any unit of voltage and records it in volts.
//!
//! Run it with `cargo run --example numeric`; the record is written into `./tofu-records`
//! (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;
use tofu::si::{ElectricPotential, millivolt, volt};

#[phase]
#[measures(temperature: f64 = in_range(0, 100).units(DEGREE_CELSIUS))]
fn phase_temperature(m: &mut phase_temperature::Measurements) {
    m.temperature.set(25.3);
}

#[phase]
#[measures(voltage: Si<volt> = in_range(3.1, 3.5))]
fn phase_voltage_measure(m: &mut phase_voltage_measure::Measurements) {
    // The meter reads millivolts; the measurement is recorded as 3.3 V.
    m.voltage.set(ElectricPotential::new::<millivolt>(3300.0));
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB1")
        .phases([phase_temperature, phase_voltage_measure])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB001")
        .exit_code()
}
