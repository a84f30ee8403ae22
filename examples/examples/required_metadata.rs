//! The smallest run: a procedure, a part number and a serial number, nothing else. A test
//! without phases passes, as in OpenHTF.
//!
//! Run it with `cargo run --example required_metadata`; the record is written into
//! `./tofu-records` (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB01")
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "SN-0001")
        .exit_code()
}
