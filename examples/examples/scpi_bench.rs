//! A DC-DC converter test with three SCPI instruments: a power supply feeding the converter,
//! an electronic load drawing from it, a DMM on its output. Checks the output with no load and
//! at full load, then sweeps the load to measure the efficiency curve.
//!
//! `cargo run --example scpi_bench` needs no hardware: it starts tofu's simulator in-process
//! (threads serving the three instruments on 127.0.0.1 TCP ports) and talks to it over real
//! sockets, exactly as to real instruments. The record lists the three instruments' identities
//! (`metadata.instruments`: the `*IDN?` answers, address, calibration due date); an HTML report
//! is written next to it; the transcript of every exchange is in the record's log at DEBUG.
//!
//! On a real bench, give the instruments' addresses:
//!
//! ```text
//! cargo run --example scpi_bench -- \
//!     --psu  TCPIP::192.168.1.21::5025::SOCKET \
//!     --load tcp://192.168.1.22:5025 \
//!     --dmm  serial:///dev/ttyUSB0?baud=115200
//! ```
//!
//! (or `TOFU_PSU`, `TOFU_LOAD`, `TOFU_DMM`). An instrument not given is simulated. A VISA
//! resource (`USB0::…::INSTR`) needs the `visa` feature of tofu-instruments and the vendor's
//! VISA library. Exits 0 when the converter passes.

use std::process::ExitCode;

use tofu::prelude::*;
use tofu::report::HtmlReport;
use tofu::si::{ElectricCurrent, ElectricPotential, ampere, volt, watt};
use tofu_instruments::{Dmm, ElectronicLoad, InstrumentError, PowerSupply};

const INPUT_VOLTS: f64 = 5.0;

/// Powers the converter with no load: output voltage and quiescent input current.
#[phase(name = "No load")]
#[measures(
    output_voltage: Si<volt> = in_range(3.25, 3.35).doc("Output at no load"),
    quiescent_current: Si<ampere> = at_most(0.05).doc("Input current at no load"),
)]
fn no_load(
    m: &mut no_load::Measurements,
    psu: &mut PowerSupply,
    load: &mut ElectronicLoad,
    dmm: &mut Dmm,
) -> Result<(), InstrumentError> {
    load.input(false)?;
    psu.set_current_limit(ElectricCurrent::new::<ampere>(3.0))?;
    psu.set_voltage(ElectricPotential::new::<volt>(INPUT_VOLTS))?;
    psu.output(true)?;
    psu.wait_complete(std::time::Duration::from_secs(2))?;
    m.output_voltage.set(dmm.measure_dc_voltage()?);
    m.quiescent_current.set(psu.measure_current()?);
    Ok(())
}

/// Loads the converter at 2 A: the output must stay in regulation.
#[phase(name = "Full load")]
#[measures(
    output_voltage: Si<volt> = in_range(3.2, 3.4).marginal(3.22, 3.38).doc("Output at 2 A"),
    load_regulation: f64 = at_most(2.0).units(PERCENT).doc("Drop from no load to 2 A"),
)]
fn full_load(
    m: &mut full_load::Measurements,
    load: &mut ElectronicLoad,
    dmm: &mut Dmm,
) -> Result<(), InstrumentError> {
    load.input(false)?;
    let unloaded = dmm.measure_dc_voltage()?;
    load.set_current(ElectricCurrent::new::<ampere>(2.0))?;
    load.input(true)?;
    let loaded = dmm.measure_dc_voltage()?;
    m.output_voltage.set(loaded);
    m.load_regulation
        .set(100.0 * (unloaded - loaded).get::<volt>() / unloaded.get::<volt>());
    Ok(())
}

/// Sweeps the load from 0.1 A to 2.5 A: efficiency = P_out / P_in at each step.
#[phase(name = "Efficiency sweep")]
#[measures(
    efficiency: Sweep<1> = dimensions([AMPERE]).units(PERCENT).each(at_least(80))
        .doc("Efficiency against load current"),
    peak_efficiency: f64 = at_least(90).units(PERCENT),
)]
fn efficiency_sweep(
    test: &mut PhaseContext,
    m: &mut efficiency_sweep::Measurements,
    psu: &mut PowerSupply,
    load: &mut ElectronicLoad,
    dmm: &mut Dmm,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut csv = String::from("load_A,vin_V,iin_A,vout_V,iout_A,efficiency_pct\n");
    let mut peak: f64 = 0.0;
    load.input(true)?;
    for step in 1..=25 {
        let current = ElectricCurrent::new::<ampere>(f64::from(step) / 10.0);
        load.set_current(current)?;
        let (vin, iin) = (psu.measure_voltage()?, psu.measure_current()?);
        let (vout, iout) = (dmm.measure_dc_voltage()?, load.measure_current()?);
        let efficiency = 100.0 * (vout * iout).get::<watt>() / (vin * iin).get::<watt>();
        peak = peak.max(efficiency);
        m.efficiency.push([current.get::<ampere>()], efficiency);
        csv.push_str(&format!(
            "{},{},{},{},{},{efficiency:.3}\n",
            current.get::<ampere>(),
            vin.get::<volt>(),
            iin.get::<ampere>(),
            vout.get::<volt>(),
            iout.get::<ampere>()
        ));
    }
    load.input(false)?;
    m.peak_efficiency.set(peak);
    test.attach("efficiency.csv", csv)?;
    Ok(())
}

/// The instruments: an address from the command line or the environment, else the simulator.
struct Addresses {
    psu: Option<String>,
    load: Option<String>,
    dmm: Option<String>,
}

fn addresses() -> Result<Addresses, String> {
    let mut a = Addresses {
        psu: std::env::var("TOFU_PSU").ok(),
        load: std::env::var("TOFU_LOAD").ok(),
        dmm: std::env::var("TOFU_DMM").ok(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--psu" => &mut a.psu,
            "--load" => &mut a.load,
            "--dmm" => &mut a.dmm,
            other => {
                return Err(format!(
                    "unknown argument `{other}` (--psu, --load, --dmm ADDRESS)"
                ));
            }
        };
        *slot = Some(
            args.next()
                .ok_or_else(|| format!("{flag} needs an address"))?,
        );
    }
    Ok(a)
}

fn main() -> ExitCode {
    let given = match addresses() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("scpi_bench: {e}");
            return ExitCode::from(2);
        }
    };
    // The simulated bench, served on free loopback ports while the test runs.
    let sim = tofu_sim::Simulator::bench();
    let mut servers = Vec::new();
    let mut address = |given: Option<String>, device: &str| -> Result<String, String> {
        if let Some(a) = given {
            return Ok(a);
        }
        let server = sim
            .serve_tcp(device, "127.0.0.1:0")
            .map_err(|e| e.to_string())?;
        let resource = server.resource();
        servers.push(server);
        Ok(resource)
    };
    let instruments = (|| -> Result<(PowerSupply, ElectronicLoad, Dmm), String> {
        let err = |e: InstrumentError| e.to_string();
        let psu = PowerSupply::new(&address(given.psu, "psu")?).map_err(err)?;
        let load = ElectronicLoad::new(&address(given.load, "load")?).map_err(err)?;
        // A calibration due date is recorded and checked at the start of every run.
        let due = chrono::Local::now().date_naive() + chrono::Days::new(180);
        let dmm = Dmm::new(&address(given.dmm, "dmm")?)
            .map_err(err)?
            .with(|i| i.calibration_due(due));
        Ok((psu, load, dmm))
    })();
    let (psu, load, dmm) = match instruments {
        Ok(i) => i,
        Err(e) => {
            eprintln!("scpi_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let execution = Test::new("DCDC-FVT")
        .part_number("DCDC-3V3")
        .revision("A")
        .procedure_version("1.0.0")
        .plug(psu)
        .plug(load)
        .plug(dmm)
        .phases([no_load, full_load, efficiency_sweep])
        .output(HtmlReport::new())
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "DCDC0001");
    if let Some(list) = execution.record.metadata.extra.get("instruments") {
        for i in list.as_array().into_iter().flatten() {
            println!(
                "instrument {}: {} at {}",
                i["name"].as_str().unwrap_or("?"),
                i["idn"].as_str().unwrap_or("(not identified)"),
                i["address"].as_str().unwrap_or("?")
            );
        }
    }
    execution.exit_code()
}
