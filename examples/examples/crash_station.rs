//! A station for the crash-loop campaign (`tofu-upload/tests/it/crash_loop.rs`): it tests one
//! unit after another, each run with two attachments, and uploads every run through the
//! outbox, while the campaign kills it at random moments and starts it again.
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example crash_station -- --first 1 --count 10
//! ```
//!
//! tests units `CRASH-0001` … `CRASH-0010`. The attachments' bytes are a function of the unit's
//! number, so a check can tell each file from every other. Each run is written to the outbox
//! (`$TOFU_OUTBOX_DIR`), then to `$TOFU_OUTPUT_DIR` (the JSON record), as a `Test` does with
//! the uploader, and goes up in the background. At the end the program waits `TOFU_UPLOAD_WAIT_S` for the uploads under way. The client gives
//! up on an answer after `--timeout-ms` (2000 by default), so that a slow server is also a lost
//! answer now and then.

use std::process::ExitCode;
use std::time::Duration;

use tofu::AttachError;
use tofu::prelude::*;
use tofu::upload::{ClientBuilder, Outbox, Uploader};

/// The bytes of the unit `n`'s capture: 1 to 48 KiB, different for every unit.
fn capture(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let len = 1024 + n.wrapping_mul(7919) % (47 * 1024);
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// The unit's number, from its serial number `CRASH-0042`.
fn unit_number(test: &PhaseContext) -> u64 {
    test.serial_number()
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[phase]
#[measures(supply_voltage: f64 = in_range(3.1, 3.5).units(VOLT))]
fn phase_measure(
    test: &mut PhaseContext,
    m: &mut phase_measure::Measurements,
) -> Result<(), AttachError> {
    let n = unit_number(test);
    // A few milliseconds of "testing", different for each unit, so kills land everywhere.
    std::thread::sleep(Duration::from_millis(5 + n % 20));
    m.supply_voltage.set(3.3);
    test.attach("capture.bin", capture(n))?;
    test.attach("notes.txt", format!("unit {n}: rails OK\n"))
}

fn main() -> ExitCode {
    let mut first = 1u64;
    let mut count = 1u64;
    let mut timeout_ms = 2000u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--first", Some(v)) => first = v,
            ("--count", Some(v)) => count = v,
            ("--timeout-ms", Some(v)) => timeout_ms = v,
            _ => {
                eprintln!(
                    "usage: crash_station [--first N] [--count N] [--timeout-ms MS] (`{arg}`?)"
                );
                return ExitCode::from(2);
            }
        }
    }
    let outbox = Outbox::default_dir();
    let uploader = match ClientBuilder::new()
        .timeout(Duration::from_millis(timeout_ms))
        .config()
    {
        Ok(config) => Uploader::new(config, outbox),
        Err(e) => Uploader::offline(outbox, e.to_string()),
    };
    // The uploader's outbox is written before the JSON record (it is a durable queue): a
    // process killed between the two leaves a run that goes up without its local record,
    // never a local record that doesn't go up.
    let mut test = Test::new("CRASH")
        .part_number("PCB1")
        .phases([phase_measure])
        .output(uploader)
        .quiet();
    for n in first..first.saturating_add(count) {
        let execution = test.execute(|| format!("CRASH-{n:04}"));
        println!(
            "CRASH-{n:04} {}",
            if execution.outputs_ok() {
                "recorded"
            } else {
                "output failed"
            }
        );
    }
    // Dropping the test drops the uploader, which waits for the uploads under way.
    ExitCode::SUCCESS
}
