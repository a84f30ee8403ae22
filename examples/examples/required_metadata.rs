//! The smallest run: a procedure, a part number and a serial number, nothing else. A test
//! without phases passes, as in OpenHTF.
//!
//! Run it with `cargo run --example required_metadata`; the record is written into
//! `./tofu-records` (or `$TOFU_OUTPUT_DIR`).

use std::process::ExitCode;

use tofu_core::prelude::*;

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB01")
        .execute(|| "SN-0001")
        .exit_code()
}
