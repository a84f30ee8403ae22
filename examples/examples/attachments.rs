//! Attachments: files read from disk, and bytes made in code. Each is recorded with its MIME
//! type (guessed from its name), its SHA-1 and its data.
//!
//! Run it with `cargo run --example attachments` (from any folder: the files are found next
//! to this example's `Cargo.toml`); the record is written into `./tofu-records` (or
//! `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::path::Path;
use std::process::ExitCode;

use tofu::AttachError;
use tofu::prelude::*;

#[phase]
fn phase_file_attachment(test: &mut PhaseContext) -> Result<(), AttachError> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    test.attach_file(data.join("temperature-map.png"))?;
    test.attach_file(data.join("measurement-notes.txt"))?;
    test.attach_file(data.join("raw_capture"))?;
    // Data made by the test itself, attached without going through a file.
    let readings = "channel,volts\nVCC,3.30\nVDD,1.20\n";
    test.attach("readings.csv", readings)?;
    Ok(())
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB1")
        .phases([phase_file_attachment])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB1A001")
        .exit_code()
}
