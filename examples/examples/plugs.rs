//! Plugs: an instrument and a fixture with setup and teardown, injected into the phases that ask
//! for them, set up once before the first phase and torn down after the last, in reverse order.
//!
//! `cargo run --example plugs` runs on tofu's simulated supply (started here, spoken to in SCPI
//! over a real loopback socket: this machine has no bench). `-- --psu ADDRESS` (or `TOFU_PSU`)
//! picks a real one, e.g. `-- --psu serial:///dev/ttyUSB0` or `-- --psu
//! TCPIP::192.168.1.21::5025::SOCKET`: where none answers, its setup fails with an error naming
//! the plug and the address (the run is ERROR, and its record says why).

use std::process::ExitCode;

use tofu::prelude::*;
use tofu::si::{ElectricCurrent, ElectricPotential, ampere, volt};
use tofu_instruments::{InstrumentError, PowerSupply};

type PlugError = Box<dyn std::error::Error + Send + Sync>;

/// A fixture that clamps the board; a plain type of ours, with the `Plug` trait.
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

/// The supply is a plug from tofu-instruments: connected (and identified) at setup, its output
/// switched off and its connection closed at teardown.
#[phase]
#[measures(supply_current: f64 = in_range(0.005, 0.02).units(AMPERE).doc("Quiescent input current"))]
fn power_on(m: &mut power_on::Measurements, psu: &mut PowerSupply) -> Result<(), InstrumentError> {
    psu.set_current_limit(ElectricCurrent::new::<ampere>(0.5))?;
    psu.set_voltage(ElectricPotential::new::<volt>(5.0))?;
    psu.output(true)?;
    m.supply_current.set(psu.measure_current()?.get::<ampere>());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let given = match args.iter().position(|a| a == "--psu") {
        Some(i) => match args.get(i + 1) {
            Some(address) => Some(address.clone()),
            None => {
                eprintln!("plugs: --psu needs an address");
                return ExitCode::from(2);
            }
        },
        None => std::env::var("TOFU_PSU").ok(),
    };
    // Without an address, the simulated bench serves its supply on a free loopback port.
    let sim = tofu_sim::Simulator::bench();
    let supply = (|| -> Result<_, Box<dyn std::error::Error>> {
        let (address, server) = match given {
            Some(address) => (address, None),
            None => {
                let server = sim.serve_tcp("psu", "127.0.0.1:0")?;
                (server.resource(), Some(server))
            }
        };
        Ok((PowerSupply::new(&address)?, server))
    })();
    let (psu, _server) = match supply {
        Ok(s) => s,
        Err(e) => {
            eprintln!("plugs: {e}");
            return ExitCode::from(2);
        }
    };
    Test::new("FVT1")
        .part_number("PCB01")
        .plug(psu)
        .plug(Fixture::default())
        .phases([check_fixture, power_on])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0002")
        .exit_code()
}
