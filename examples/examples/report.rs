//! The HTML report of a run: `tofu::report::HtmlReport` writes it next to the JSON record.
//!
//! A short test of a power board on a simulated bench, made to fail: the standby current is
//! over its limit, and a load-step sweep of the output voltage dips below its lower limit for a
//! few points. The report shows the outcome large, the failed measurements first, a chart of the
//! sweep with its limits (the points outside them in red), the logs and the attachments.
//!
//! Run it with `cargo run --example report`; the record and its report are written into
//! `./tofu-records` (or `$TOFU_OUTPUT_DIR`), and the report's path is printed last. Open it in
//! any browser: it is one file and loads nothing from the network.
//!
//! **It exits 1**: the run fails, on purpose, and like every tofu test the exit code says so.
//!
//! Reports of records already saved: `cargo run -p tofu-report -- tofu-records` (the report
//! of every record in the folder, and an `index.html` of the runs).

use std::path::Path;
use std::process::ExitCode;

use tofu::AttachError;
use tofu::prelude::*;
use tofu::report::HtmlReport;

/// Checks the supply and the standby consumption.
#[phase(name = "Power rails")]
#[measures(
    input_voltage: f64 = in_range(4.75, 5.25).units(VOLT).doc("Supply at J1"),
    rail_3v3: f64 = in_range(3.2, 3.4).marginal(3.22, 3.38).units(VOLT),
    standby_current: f64 = at_most(0.05).units(AMPERE).doc("Current drawn in standby"),
)]
fn power_rails(m: &mut power_rails::Measurements) {
    m.input_voltage.set(5.01);
    m.rail_3v3.set(3.385); // passes, in the marginal band
    m.standby_current.set(0.072); // over the limit: the run fails
    tracing::warn!("standby current high: 72 mA");
}

/// Steps the load from 0.1 A to 2 A and back, sampling the 3.3 V rail at 10 kHz.
#[phase(name = "Load step")]
#[measures(
    rail_under_load: Sweep<2> = dimensions([SECOND, AMPERE]).units(VOLT).each(in_range(3.2, 3.4))
        .doc("3.3 V rail during a load step"),
)]
fn load_step(test: &mut PhaseContext, m: &mut load_step::Measurements) -> Result<(), AttachError> {
    let mut csv = String::from("t_s,load_A,rail_V\n");
    for i in 0..5000 {
        let t = f64::from(i) / 10_000.0;
        let load = if (0.1..0.3).contains(&t) { 2.0 } else { 0.1 };
        // The regulator droops at each edge, then recovers; a little ripple throughout.
        let since_edge = [0.1, 0.3]
            .iter()
            .filter(|&&edge| t >= edge)
            .map(|&edge| t - edge)
            .fold(f64::INFINITY, f64::min);
        let sign = if (0.1..0.3).contains(&t) { -1.0 } else { 1.0 };
        let transient = sign * 0.14 * (-since_edge / 0.002).exp();
        let ripple = 0.004 * (t * 2.0 * std::f64::consts::PI * 1000.0).sin();
        let rail = 3.3 - 0.02 * load + transient + ripple;
        m.rail_under_load.push([t, load], rail);
        csv.push_str(&format!("{t},{load},{rail:.5}\n"));
    }
    tracing::info!(points = m.rail_under_load.len(), "load step recorded");
    test.attach("load_step.csv", csv)?;
    test.attach_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/temperature-map.png"))?;
    Ok(())
}

fn main() -> ExitCode {
    let execution = Test::new("FVT1")
        .part_number("PCB01")
        .revision("B")
        .batch_number("2026-W48")
        .procedure_version("1.1.0")
        .phases([power_rails, load_step])
        .output(HtmlReport::new())
        .execute(|| "PCB01B0042");
    for output in execution.outputs.iter().filter(|o| o.name == "HTML report") {
        match &output.result {
            Ok(Some(location)) => println!(
                "{}",
                location
                    .strip_prefix("report written to ")
                    .unwrap_or(location)
            ),
            Ok(None) => {}
            Err(e) => eprintln!("no report: {e}"),
        }
    }
    execution.exit_code()
}
