//! A realistic bench test of a power board, on simulated instruments spoken to over real
//! sockets (SCPI over TCP to tofu's simulator, started here): the README's first command. `cargo run --example quickstart` writes the record into `./tofu-records` (or
//! `$TOFU_OUTPUT_DIR`) and exits 0 when the board passes.
//!
//! With `TOFUPILOT_API_KEY` set, the run is also uploaded to TofuPilot (`TOFUPILOT_URL` for
//! another instance); without, it is kept in the outbox (`outbox/` in the record folder) for
//! `tofu-outbox upload`.

use std::process::ExitCode;

use tofu::prelude::*;
use tofu::si::{ElectricPotential, ampere, volt};
use tofu_instruments::{Dmm, InstrumentError, PowerSupply};

/// The bench: a supply and a DMM, spoken to in SCPI over TCP. Here they are tofu's simulator,
/// started in `main` on loopback ports; on a real bench, only their addresses change.
struct SimulatedBench {
    psu: PowerSupply,
    dmm: Dmm,
    seed: u64,
}

impl SimulatedBench {
    /// Small deterministic noise, so the run is the same every time.
    fn noise(&mut self, scale: f64) -> f64 {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * scale
    }

    fn set_supply(&mut self, volts: f64) -> Result<(), InstrumentError> {
        self.psu
            .set_voltage(ElectricPotential::new::<volt>(volts))?;
        self.psu.output(volts > 0.0)?;
        tracing::info!(volts, "supply set");
        Ok(())
    }

    /// The 3.3 V rail, read by the DMM.
    fn read_rail(&mut self) -> Result<ElectricPotential, InstrumentError> {
        self.dmm.measure_dc_voltage()
    }

    fn read_current_a(&mut self) -> Result<f64, InstrumentError> {
        Ok(self.psu.measure_current()?.get::<ampere>())
    }

    fn read_temperature_c(&mut self) -> f64 {
        24.6 + self.noise(0.4)
    }
}

/// The bench is a plug: its instruments connect at the start (their identities go into the
/// record) and the supply is off at the end of every run.
impl Plug for SimulatedBench {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.psu.setup()?;
        self.dmm.setup()
    }

    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let psu = self.psu.teardown();
        self.dmm.teardown()?;
        psu
    }

    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        [self.psu.record_metadata(), self.dmm.record_metadata()].concat()
    }
}

/// Checks the board identifies itself and passes its self test.
#[phase(name = "Connect")]
#[measures(
    firmware_version: String = equals("1.2.7").doc("Firmware reported over UART"),
    self_test_ok: bool = equals(true),
    board_serial: String = matches_regex(r"^PCB\d{2}A\d{4}$"),
)]
fn connect(test: &mut PhaseContext, m: &mut connect::Measurements) {
    tracing::info!("connecting to the board");
    m.firmware_version.set("1.2.7");
    m.self_test_ok.set(true);
    m.board_serial.set(test.serial_number());
}

/// Powers the board and checks its rails and consumption.
#[phase(name = "Power rails")]
#[measures(
    input_voltage: Si<volt> = in_range(4.75, 5.25).doc("Supply voltage at J1"),
    rail_3v3: Si<volt> = in_range(3.2, 3.4).marginal(3.22, 3.38),
    input_current: f64 = at_most(0.5).units(AMPERE),
    board_temperature: f64 = within_percent(25.0, 10).units(DEGREE_CELSIUS).precision(2),
)]
fn power_rails(
    m: &mut power_rails::Measurements,
    bench: &mut SimulatedBench,
) -> Result<(), InstrumentError> {
    bench.set_supply(5.0)?;
    m.input_voltage.set(5.0);
    // A uom quantity: the measurement is declared in volts and converts.
    m.rail_3v3.set(bench.read_rail()?);
    m.input_current.set(bench.read_current_a()?);
    m.board_temperature.set(bench.read_temperature_c());
    Ok(())
}

/// Sweeps the load and checks the sense resistor stays at 100 Ω.
#[phase(name = "IV sweep")]
#[measures(
    iv_sweep: Sweep<3> = dimensions([SECOND, VOLT, AMPERE]).units(OHM).each(in_range(95, 105))
        .doc("R = V / I over time"),
    sweep_points: f64 = equals(100),
)]
fn iv_sweep(
    test: &mut PhaseContext,
    m: &mut iv_sweep::Measurements,
    bench: &mut SimulatedBench,
) -> Result<(), tofu::AttachError> {
    let mut csv = String::from("t_s,v_V,i_A,r_ohm\n");
    for i in 0..100 {
        let t = f64::from(i) * 0.01;
        let v = 0.05 * f64::from(i + 1);
        let a = v / (100.0 + bench.noise(1.0));
        m.iv_sweep.push([t, v, a], v / a);
        csv.push_str(&format!("{t},{v},{a},{}\n", v / a));
    }
    m.sweep_points.set(m.iv_sweep.len());
    test.attach("iv_sweep.csv", csv)?;
    Ok(())
}

/// Reads the calibration the board stores, recorded as structured data.
#[phase]
#[measures(calibration: Json = doc("Calibration table read from EEPROM"))]
fn calibration(m: &mut calibration::Measurements) {
    m.calibration
        .set(serde_json::json!({"gain": 1.002, "offset_mv": -1.5, "points": [0, 1650, 3300]}));
    tracing::debug!("calibration read");
}

fn main() -> ExitCode {
    // tofu's simulated bench on loopback TCP ports, served by threads of this process.
    let sim = tofu_sim::Simulator::bench();
    let bench = (|| -> Result<_, Box<dyn std::error::Error>> {
        let (psu, dmm) = (
            sim.serve_tcp("psu", "127.0.0.1:0")?,
            sim.serve_tcp("dmm", "127.0.0.1:0")?,
        );
        let plug = SimulatedBench {
            psu: PowerSupply::new(&psu.resource())?,
            dmm: Dmm::new(&dmm.resource())?,
            seed: 42,
        };
        Ok((plug, [psu, dmm]))
    })();
    let Ok((bench, _servers)) = bench.map_err(|e| eprintln!("quickstart: the simulator: {e}"))
    else {
        return ExitCode::FAILURE;
    };
    Test::new("FVT1")
        .part_number("PCB01")
        .revision("A")
        .procedure_version("1.0.0")
        .plug(bench)
        .phases([connect, power_rails, iv_sweep, calibration])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0001")
        .exit_code()
}
