//! Teardown: a phase group powers the board in its setup, measures in its main phases, and
//! always powers it off in its teardown, even when a main phase fails with an error.
//!
//! `cargo run --example teardown` passes. With `-- --crash` the measurement phase returns an
//! error: the run is ERROR (exit 2), and the teardown phase still ran (see the summary).
//! With `-- --hang` the measurement waits forever: press Ctrl-C, the run is ABORTED, the
//! board is still powered off and the record written. With `-- --hang --hang-teardown` the
//! power-off hangs too: a second Ctrl-C skips it, and the record is still written.

use std::process::ExitCode;

use tofu::prelude::*;

/// The bench supply: whatever happens, its output is off at the end of the run.
struct Supply;

impl Plug for Supply {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        tracing::info!("supply output off");
        Ok(())
    }
}

#[phase]
fn power_on(_supply: &mut Supply) {
    tracing::info!("board powered");
}

/// Waits "forever" when the command line says so (Ctrl-C interrupts it: it has a timeout).
fn hang_if(flag: &str) {
    if std::env::args().any(|a| a == flag) {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[phase(timeout_s = 7200)]
#[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
fn measure_rail(m: &mut measure_rail::Measurements) -> Result<(), String> {
    hang_if("--hang");
    if std::env::args().any(|a| a == "--crash") {
        return Err("the DMM stopped answering".into());
    }
    m.rail.set(3.31);
    Ok(())
}

#[phase(timeout_s = 7200)]
fn power_off() {
    hang_if("--hang-teardown");
    tracing::info!("board powered off");
}

fn main() -> ExitCode {
    let powered = PhaseGroup::new("powered")
        .setup([power_on])
        .main([measure_rail])
        .teardown([power_off]);
    Test::new("FVT1")
        .part_number("PCB01")
        .plug(Supply)
        .phases([powered])
        .output(tofu::upload::Uploader::from_env())
        .execute(|| "PCB01A0005")
        .exit_code()
}
