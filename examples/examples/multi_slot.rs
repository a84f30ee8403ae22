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

use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;
use tofu::station::SlotMode;

type PlugError = Box<dyn std::error::Error + Send + Sync>;

/// The bench supply: one for the station, switched to one board's rail at a time.
#[derive(Default)]
struct PowerSupply {
    channel: Option<usize>,
    volts: f64,
}

impl Plug for PowerSupply {
    fn setup(&mut self) -> Result<(), PlugError> {
        tracing::info!("power supply ready");
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), PlugError> {
        self.off();
        tracing::info!("power supply off");
        Ok(())
    }
}

impl PowerSupply {
    fn on(&mut self, channel: usize, volts: f64) {
        (self.channel, self.volts) = (Some(channel), volts);
        // The output settles.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// The current into a board whose input looks like `ohms`.
    fn measure_current(&self, ohms: f64) -> f64 {
        if self.channel.is_some() {
            self.volts / ohms
        } else {
            0.0
        }
    }

    fn off(&mut self) {
        (self.channel, self.volts) = (None, 0.0);
    }
}

/// One board in its slot of the fixture (simulated: the board in slot 3 has a shorted
/// capacitor, so its input resistance is low).
struct Board {
    slot: usize,
    input_ohms: f64,
    flash_time: Duration,
}

impl Board {
    fn in_slot(slot: &tofu::SlotInfo, flash_time: Duration) -> Board {
        let input_ohms = if slot.index() == 2 { 12.0 } else { 40.0 };
        Board {
            slot: slot.index(),
            input_ohms,
            flash_time,
        }
    }
}

impl Plug for Board {
    fn teardown(&mut self) -> Result<(), PlugError> {
        tracing::info!("board in slot {} released", self.slot + 1);
        Ok(())
    }
}

#[phase]
#[measures(input_current: f64 = in_range(0.05, 0.2).units(AMPERE).doc("Current at 5 V"))]
fn power_on(psu: &mut PowerSupply, board: &mut Board, m: &mut power_on::Measurements) {
    psu.on(board.slot, 5.0);
    m.input_current.set(psu.measure_current(board.input_ohms));
    psu.off();
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
fn check_rails(board: &mut Board, m: &mut check_rails::Measurements) {
    let millivolts = 3290.0 + 5.0 * board.slot as f64;
    m.rail_3v3.set(millivolts / 1000.0);
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

    let mut station = Station::new(4, |slot| {
        Test::new("FVT-MULTI")
            .part_number("PCB01")
            .phases([power_on, flash_firmware, check_rails])
            .plug(Board::in_slot(slot, flash_time))
            .output(tofu::upload::Uploader::from_env())
    })
    .shared_plug(PowerSupply::default())
    .mode(mode);

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
