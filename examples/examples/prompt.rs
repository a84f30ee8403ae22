//! The operator at the bench: the serial number is scanned (or typed), checked against the
//! part's pattern and asked again when it doesn't match; a phase asks to insert the board and
//! to read a gauge, whose value becomes a measurement with limits.
//!
//! At a bench, run it and answer on the console:
//!
//! ```sh
//! cargo run --example prompt
//! cargo run --example prompt -- --serial PCB01A0001   # the serial number from the command line
//! ```
//!
//! Driven through a pipe (CI, a station script), the answers come from stdin, one a line, once
//! `TOFU_PROMPT_STDIN=1` says so (without it, a question with no terminal to ask it on fails at
//! once): a refused serial number, a good one, Enter for the board, the gauge's reading.
//!
//! ```sh
//! printf 'bad\nPCB01A0001\n\n3.3\n' | TOFU_PROMPT_STDIN=1 cargo run --example prompt
//! ```
//!
//! Questions go to stderr, the summary to stdout. The record is written into `./tofu-records`
//! (or `$TOFU_OUTPUT_DIR`), and kept in the outbox for TofuPilot (uploaded with
//! `TOFUPILOT_API_KEY`). The gauge must be read within `$GAUGE_TIMEOUT_S` seconds (60 by
//! default). Exits 0 only when the board passes.

use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;
use tofu::prompt::{self, PromptError};

/// Asks the operator to insert the board, then to read the gap on the gauge.
#[phase(name = "Gauge")]
#[measures(gap: f64 = in_range(3.2, 3.4).units(MILLIMETRE).doc("Gap read on the gauge"))]
fn gauge(test: &mut PhaseContext, m: &mut gauge::Measurements) -> Result<(), PromptError> {
    test.prompt_confirm("Insert the board, press Enter")?;
    let gap: f64 = test
        .prompt("Read the gauge (mm)")
        .timeout(gauge_timeout())
        .value()?;
    m.gap.set(gap);
    Ok(())
}

fn gauge_timeout() -> Duration {
    std::env::var("GAUGE_TIMEOUT_S")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(Duration::from_secs(60))
}

fn main() -> ExitCode {
    let serial = prompt::serial_number()
        .message("Scan the board's serial number")
        .pattern(r"^PCB\d{2}A\d{4}$")
        .from_args();
    Test::new("FVT1")
        .part_number("PCB01")
        .phases([gauge])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| serial.ask())
        .exit_code()
}
