//! Several units at once: a fixture with four boards, one bench power supply shared by all of
//! them, and the board in slot 3 drawing too much current.
//!
//! `cargo run --example multi_slot` runs the four slots side by side (each at its own pace);
//! `-- --synchronized` makes every slot finish a phase before any starts the next;
//! `-- --batches 2` tests a second set of boards on the same station, without restarting;
//! `-- --flash-ms 20000` makes programming long enough to try Ctrl-C: every slot is aborted,
//! tears down, and writes its record as ABORTED; `-- --scan` asks the operator to scan each
//! slot's board in turn (`printf 'PCB01A0001\nPCB01A0002\nPCB01A0003\nPCB01A0004\n' |
//! TOFU_PROMPT_STDIN=1 cargo run --example multi_slot -- --scan`).
//!
//! Each slot writes its own record (which names the slot) and has its own upload; the
//! supply is used by one slot at a time, and the time a slot waited for it is in its record.
//!
//! The instruments are tofu's simulator, started here from `examples/data/multi_slot.yaml` and
//! spoken to in SCPI over real loopback sockets: the station's supply, and a DMM in each slot.
//! Each slot's record lists its DMM and the station's supply (`metadata.instruments`: the
//! `*IDN?` answers and addresses).

use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;
use tofu::si::{ElectricPotential, ampere, volt};
use tofu::station::SlotMode;
use tofu_instruments::{Dmm, InstrumentError, PowerSupply};

type PlugError = Box<dyn std::error::Error + Send + Sync>;

/// The simulated station: the supply and the four slots' DMMs.
const STATION: &str = include_str!("../data/multi_slot.yaml");

/// The bench supply: one for the station, switched to one board's rail at a time (by the
/// fixture's relays, not simulated here).
struct StationSupply {
    psu: PowerSupply,
}

impl Plug for StationSupply {
    fn setup(&mut self) -> Result<(), PlugError> {
        self.psu.setup()?;
        tracing::info!("power supply ready");
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), PlugError> {
        // The typed supply switches its output off before it closes.
        self.psu.teardown()?;
        tracing::info!("power supply off");
        Ok(())
    }

    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        self.psu.record_metadata()
    }
}

impl StationSupply {
    fn on(&mut self, volts: f64) -> Result<(), InstrumentError> {
        self.psu
            .set_voltage(ElectricPotential::new::<volt>(volts))?;
        self.psu.output(true)?;
        // The output settles.
        std::thread::sleep(Duration::from_millis(150));
        Ok(())
    }

    fn off(&mut self) -> Result<(), InstrumentError> {
        self.psu.output(false)
    }
}

/// One board in its slot of the fixture (simulated: the board in slot 3 has a shorted
/// capacitor, which its DMM sees).
struct Board {
    slot: usize,
    flash_time: Duration,
}

impl Plug for Board {
    fn teardown(&mut self) -> Result<(), PlugError> {
        tracing::info!("board in slot {} released", self.slot + 1);
        Ok(())
    }
}

#[phase]
#[measures(input_current: f64 = in_range(0.05, 0.2).units(AMPERE).doc("Current at 5 V"))]
fn power_on(
    psu: &mut StationSupply,
    dmm: &mut Dmm,
    m: &mut power_on::Measurements,
) -> Result<(), InstrumentError> {
    psu.on(5.0)?;
    let current = dmm.measure_dc_current();
    psu.off()?;
    m.input_current.set(current?.get::<ampere>());
    Ok(())
}

#[phase]
#[measures(firmware_version: String = equals("1.4.2"))]
fn flash_firmware(
    test: &mut PhaseContext,
    board: &mut Board,
    m: &mut flash_firmware::Measurements,
) -> Result<(), tofu::Stopped> {
    // Programming takes a while, and every board programs at once. Ctrl-C stops the wait,
    // so the board is let go and torn down at once.
    test.sleep(board.flash_time)?;
    tracing::info!(slot = board.slot, "firmware written");
    m.firmware_version.set("1.4.2");
    Ok(())
}

#[phase]
#[measures(rail_3v3: f64 = in_range(3.2, 3.4).units(VOLT))]
fn check_rails(dmm: &mut Dmm, m: &mut check_rails::Measurements) -> Result<(), InstrumentError> {
    m.rail_3v3.set(dmm.measure_dc_voltage()?.get::<volt>());
    Ok(())
}

/// The station: the supply at `addresses[0]`, shared by the slots, and slot N's DMM at
/// `addresses[N]`. On a real station, only the addresses change.
fn build_station(
    addresses: &[String],
    flash_time: Duration,
    mode: SlotMode,
) -> Result<Station, InstrumentError> {
    let station = Station::new(4, |slot| {
        Ok::<_, InstrumentError>(
            Test::new("FVT-MULTI")
                .part_number("PCB01")
                .phases([power_on, flash_firmware, check_rails])
                .plug(Board {
                    slot: slot.index(),
                    flash_time,
                })
                .plug(Dmm::new(&addresses[1 + slot.index()])?)
                .output(tofu::upload::Uploader::from_env()),
        )
    })?;
    let psu = PowerSupply::new(&addresses[0])?;
    Ok(station.shared_plug(StationSupply { psu }).mode(mode))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args.iter().any(|a| a == "--synchronized") {
        SlotMode::Synchronized
    } else {
        SlotMode::Independent
    };
    let number_after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let batches = number_after("--batches").unwrap_or(1);
    let flash_time = Duration::from_millis(number_after("--flash-ms").unwrap_or(300));

    // The simulated instruments on free loopback ports, served by threads of this process
    // while the batches run.
    let sim = tofu_sim::Simulator::from_yaml(STATION);
    let servers = sim.and_then(|sim| {
        ["psu", "dmm1", "dmm2", "dmm3", "dmm4"]
            .map(|device| sim.serve_tcp(device, "127.0.0.1:0"))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
    });
    let station = servers.map_err(|e| e.to_string()).and_then(|servers| {
        let addresses: Vec<String> = servers.iter().map(|s| s.resource()).collect();
        build_station(&addresses, flash_time, mode)
            .map(|station| (station, servers))
            .map_err(|e| e.to_string())
    });
    let (mut station, _servers) = match station {
        Ok(s) => s,
        Err(e) => {
            eprintln!("multi_slot: {e}");
            return ExitCode::from(2);
        }
    };

    let scan = args.iter().any(|a| a == "--scan");
    let mut all_passed = true;
    for batch in 1..=batches {
        let result = station.run(|slot| {
            if scan {
                tofu::prompt::serial_number()
                    .message(format!("Scan the board in {slot}"))
                    .pattern(r"^PCB\d{2}A\d{4}$")
                    .ask()
            } else {
                Ok(format!("PCB01B{batch:02}S{}", slot.index() + 1))
            }
        });
        all_passed &= result.exit_code() == ExitCode::SUCCESS;
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
