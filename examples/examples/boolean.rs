//! A boolean measurement: it passes when it equals the expected value.
//!
//! Run it with `cargo run --example boolean`; the record is written into `./tofu-records`
//! (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

#[phase]
#[measures(is_led_switch_on: bool = equals(true))]
fn phase_led(m: &mut phase_led::Measurements) {
    m.is_led_switch_on.set(true);
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB1")
        .phases([phase_led])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB001")
        .exit_code()
}
