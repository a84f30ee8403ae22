//! Several measurements of different kinds in one phase; the phase passes when all do.
//!
//! Run it with `cargo run --example multiple_measurements`; the record is written into
//! `./tofu-records` (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

#[phase]
#[measures(
    is_connected: bool = equals(true),
    firmware_version: String = equals("1.2.7"),
    input_voltage: f64 = in_range(3.2, 3.4).units(VOLT),
    input_current: f64 = at_most(1.5).units(AMPERE),
)]
fn phase_multi_measurements(m: &mut phase_multi_measurements::Measurements) {
    m.is_connected.set(true);
    m.firmware_version.set("1.2.7");
    m.input_voltage.set(3.35);
    m.input_current.set(1.234);
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB01")
        .phases([phase_multi_measurements])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB1A004")
        .exit_code()
}
