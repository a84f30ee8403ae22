//! Limits from a file: `examples/data/limits.toml` replaces the limits declared in the code, so
//! a production engineer can change a limit without recompiling, and gives a parameter the
//! phase reads. The file is checked when it is loaded: a misspelt phase or measurement, limits
//! out of order or of the wrong type stop the program with the file and the line.
//!
//! Run it with `cargo run --example limits_file`: it prints the limits used and writes the record
//! into `./tofu-records` (or `$TOFU_OUTPUT_DIR`); the record has the same limits, and the file's
//! path and SHA-1 in `metadata.limits_file`.
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;
use std::time::Duration;

use tofu::ParameterError;
use tofu::prelude::*;

/// The code's limits are the engineering defaults; the file's replace them.
#[phase(name = "Power rails")]
#[measures(
    input_voltage: f64 = in_range(4.5, 5.5).units(VOLT),
    input_current: f64 = at_most(1.0).units(AMPERE),
    firmware: String = matches_regex(r"^\d+\.\d+\.\d+$"),
)]
fn power_rails(
    test: &mut PhaseContext,
    m: &mut power_rails::Measurements,
) -> Result<(), ParameterError> {
    let settle_ms: u64 = test.parameter("settle_ms")?;
    let fixture: String = test.parameter("fixture")?;
    tracing::info!(settle_ms, fixture, "waiting for the rails to settle");
    std::thread::sleep(Duration::from_millis(settle_ms));
    m.input_voltage.set(5.01);
    m.input_current.set(0.252);
    m.firmware.set("1.2.7");
    Ok(())
}

fn main() -> ExitCode {
    let limits = concat!(env!("CARGO_MANIFEST_DIR"), "/data/limits.toml");
    let test = Test::new("FVT1")
        .part_number("PCB01")
        .phases([power_rails])
        .limits_file(limits);
    let test = match test {
        Ok(test) => test,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let execution = test
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0042");

    println!("limits used (from {limits}):");
    for phase in &execution.record.phases {
        for m in &phase.measurements {
            let limits: Vec<String> = m.validators().iter().map(ToString::to_string).collect();
            let units = m.units().map(|u| format!(" [{u}]")).unwrap_or_default();
            println!(
                "  {}.{}: {}{units}",
                phase.name,
                m.name(),
                limits.join(", ")
            );
        }
    }
    execution.exit_code()
}
