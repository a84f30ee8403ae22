//! String measurements: an exact value, and a regular expression (matched from the start of
//! the string, as Python's `re.match`).
//!
//! Run it with `cargo run --example string`; the record is written into `./tofu-records`
//! (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

#[phase]
#[measures(
    firmware_version: String = equals("1.2.4"),
    bootloader_version: String = matches_regex(r"^\d+\.\d+\.\d+$"),
)]
fn phase_firmware(m: &mut phase_firmware::Measurements) {
    m.firmware_version.set("1.2.4");
    m.bootloader_version.set("0.9.12");
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB1")
        .phases([phase_firmware])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB001")
        .exit_code()
}
