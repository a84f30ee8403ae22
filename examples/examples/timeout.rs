//! Timeouts: a phase that waits on an instrument that never answers is recorded as TIMEOUT at
//! its deadline, and the run goes on: the supply is turned off, the record is written.
//!
//! The instruments are tofu's simulator (a power supply and a DMM around a 5 V → 3.3 V
//! converter), started here and spoken to in SCPI over real loopback sockets.
//! `cargo run --example timeout` passes (the DMM answers in time). With `-- --hang` the
//! simulator is told never to answer the DMM's `MEAS:VOLT:DC?`: the phase ends TIMEOUT 300 ms
//! into it and the run exits 2 (TIMEOUT: the station, not the board), with the supply's
//! teardown in the log. The DMM's own timeout (1 s) ends the blocked call soon after, so its
//! teardown gets it back and the record still lists both instruments.

use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;
use tofu::si::{ElectricPotential, volt};
use tofu_instruments::{Dmm, InstrumentError, PowerSupply};
use tofu_sim::{Fault, FaultRule, Simulator};

/// The supply powers the board for the whole run: on at setup, off at teardown, whatever the
/// phases did. A phase that hangs doesn't hold it, so nothing keeps it from being turned off.
struct Supply(PowerSupply);

impl Plug for Supply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.setup()?;
        self.0.set_voltage(ElectricPotential::new::<volt>(5.0))?;
        Ok(self.0.output(true)?)
    }

    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // The typed supply switches its output off before it closes.
        self.0.teardown()?;
        tracing::info!("supply off");
        Ok(())
    }

    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        self.0.record_metadata()
    }
}

#[phase(timeout_s = 0.3)]
#[measures(reading: Si<volt> = in_range(3.2, 3.4).doc("The 3.3 V rail"))]
fn read_meter(m: &mut read_meter::Measurements, dmm: &mut Dmm) -> Result<(), InstrumentError> {
    tracing::info!("waiting for the meter");
    m.reading.set(dmm.measure_dc_voltage()?);
    Ok(())
}

fn main() -> ExitCode {
    let hang = std::env::args().any(|a| a == "--hang");
    let sim = Simulator::bench();
    let instruments = (|| -> Result<_, Box<dyn std::error::Error>> {
        if hang {
            // The DMM executes the measurement but never sends its answer.
            sim.inject("dmm", FaultRule::once_on(Fault::NoAnswer, "MEAS:VOLT:DC?"))?;
        }
        let (psu, dmm) = (
            sim.serve_tcp("psu", "127.0.0.1:0")?,
            sim.serve_tcp("dmm", "127.0.0.1:0")?,
        );
        let supply = Supply(PowerSupply::new(&psu.resource())?);
        // Longer than the phase's timeout: the phase's deadline comes first.
        let meter = Dmm::new(&dmm.resource())?.with(|i| i.timeout(Duration::from_secs(1)));
        Ok((supply, meter, [psu, dmm]))
    })();
    let Ok((supply, meter, _servers)) =
        instruments.map_err(|e| eprintln!("timeout: the simulator: {e}"))
    else {
        return ExitCode::FAILURE;
    };
    Test::new("FVT1")
        .part_number("PCB01")
        .plug(supply)
        .plug(meter)
        .phase_timeout(Duration::from_secs(60))
        .phases([read_meter])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0003")
        .exit_code()
}
