//! Plugs: instruments with setup and teardown, injected into the phases that ask for them, and
//! swapped for simulations so the test runs without hardware.
//!
//! `cargo run --example plugs` runs on the simulated supply (this machine has no bench);
//! `cargo run --example plugs -- --port /dev/ttyUSB0` would pick the real one, whose setup fails
//! here with an error naming the plug (the run is ERROR, and its record says why).

use std::process::ExitCode;

use tofu::prelude::*;

type PlugError = Box<dyn std::error::Error + Send + Sync>;

/// What the phases need of a bench power supply.
trait Supply: Plug {
    fn set_output(&mut self, volts: f64, enabled: bool);
    fn measure_current(&mut self) -> f64;
}

/// A supply on a serial port (its driver is out of scope here: setup fails without one).
struct SerialSupply {
    port: String,
}

impl Plug for SerialSupply {
    fn setup(&mut self) -> Result<(), PlugError> {
        Err(format!("no supply answers on {}", self.port).into())
    }
}

impl Supply for SerialSupply {
    fn set_output(&mut self, _volts: f64, _enabled: bool) {}
    fn measure_current(&mut self) -> f64 {
        f64::NAN
    }
}

/// A simulated supply: a 24 Ω load.
#[derive(Default)]
struct SimulatedSupply {
    volts: f64,
    enabled: bool,
}

impl Plug for SimulatedSupply {
    fn setup(&mut self) -> Result<(), PlugError> {
        tracing::info!("simulated supply ready");
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), PlugError> {
        self.set_output(0.0, false);
        tracing::info!("supply output off");
        Ok(())
    }
}

impl Supply for SimulatedSupply {
    fn set_output(&mut self, volts: f64, enabled: bool) {
        (self.volts, self.enabled) = (volts, enabled);
    }

    fn measure_current(&mut self) -> f64 {
        if self.enabled { self.volts / 24.0 } else { 0.0 }
    }
}

/// A fixture that clamps the board; a plain type, no trait needed.
#[derive(Default)]
struct Fixture {
    clamped: bool,
}

impl Plug for Fixture {
    fn setup(&mut self) -> Result<(), PlugError> {
        self.clamped = true;
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), PlugError> {
        self.clamped = false;
        tracing::info!("fixture released");
        Ok(())
    }
}

#[phase]
#[measures(clamped: bool = equals(true))]
fn check_fixture(m: &mut check_fixture::Measurements, fixture: &Fixture) {
    m.clamped.set(fixture.clamped);
}

#[phase]
#[measures(supply_current: f64 = in_range(0.45, 0.55).units(AMPERE))]
fn power_on(m: &mut power_on::Measurements, supply: &mut dyn Supply) {
    supply.set_output(12.0, true);
    m.supply_current.set(supply.measure_current());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let supply: Box<dyn Supply> = match args.iter().position(|a| a == "--port") {
        Some(i) => Box::new(SerialSupply {
            port: args.get(i + 1).cloned().unwrap_or_default(),
        }),
        None => Box::new(SimulatedSupply::default()),
    };
    Test::new("FVT1")
        .part_number("PCB01")
        .plug_dyn(supply)
        .plug(Fixture::default())
        .phases([check_fixture, power_on])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0002")
        .exit_code()
}
