//! Logs: events logged with `tracing` while a test runs are recorded into the record's
//! `log_records`, with Python's level numbers (DEBUG 10, INFO 20, WARNING 30, ERROR 40) and
//! the phase they happened in. `tracing` has no CRITICAL level: log it as an error.
//!
//! Run it with `cargo run --example logging` (the console shows INFO and above; set
//! `RUST_LOG=debug` to see everything); the record is written into `./tofu-records` (or
//! `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

#[phase]
#[measures(boolean_measure: bool = equals(true))]
fn phase_with_info_logger(m: &mut phase_with_info_logger::Measurements) {
    tracing::debug!("Debug message: Detailed information for troubleshooting");
    tracing::info!("Info message: Normal operation information");
    tracing::warn!("Warning: Something unexpected but not critical");
    tracing::error!("Error: A significant problem that needs attention");
    tracing::error!("Critical: System unstable, immediate action required");
    m.boolean_measure.set(true);
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB01")
        .phases([phase_with_info_logger])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB1A001")
        .exit_code()
}
