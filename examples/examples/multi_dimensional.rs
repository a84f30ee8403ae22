//! A multi-dimensional measurement: each point has coordinates (time, voltage, current) and a
//! value (the resistance there). The value can be checked point by point with `.each(...)`.
//!
//! The readings come from a small deterministic generator, so every run records the same
//! points.
//!
//! Run it with `cargo run --example multi_dimensional`; the record is written into
//! `./tofu-records` (or `$TOFU_OUTPUT_DIR`).
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;

/// A deterministic stand-in for Python's `random.uniform` (a 64-bit LCG).
struct Uniform(u64);

impl Uniform {
    fn next(&mut self, low: f64, high: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64; // in [0, 1)
        low + (high - low) * unit
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[phase]
#[measures(
    current_voltage_resistance_over_time: Sweep<3> =
        dimensions([SECOND, VOLT, AMPERE]).units(OHM).each(in_range(4, 12)),
)]
fn power_phase(m: &mut power_phase::Measurements) {
    let mut random = Uniform(2024);
    for i in 0..100 {
        let timestamp = f64::from(i) / 100.0;
        let voltage = round(random.next(3.3, 3.5), 2);
        let current = round(random.next(0.3, 0.8), 3);
        m.current_voltage_resistance_over_time
            .push([timestamp, voltage, current], voltage / current);
    }
}

fn main() -> ExitCode {
    Test::new("FVT1")
        .part_number("PCB01")
        .phases([power_phase])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB1A003")
        .exit_code()
}
