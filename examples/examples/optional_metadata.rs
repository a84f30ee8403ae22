//! Every optional piece of metadata a run can carry: the procedure's version, the unit's
//! revision and batch, and a sub-unit assembled into it.
//!
//! Run it with `cargo run --example optional_metadata`; the record is written into
//! `./tofu-records` (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

/// A phase that does nothing, so that the run has a duration.
#[phase]
fn phase_one() {}

fn main() -> ExitCode {
    Test::new("FVT1")
        .procedure_version("1.2.3")
        .part_number("PCB1")
        .revision("A")
        .batch_number("12-24")
        .sub_unit("PSU01A0001")
        .phases([phase_one])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB1A002")
        .exit_code()
}
