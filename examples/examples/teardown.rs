//! Teardown: a phase group powers the board in its setup, measures in its main phases, and
//! always powers it off in its teardown, even when a main phase fails with an error.
//!
//! `cargo run --example teardown` passes. With `-- --crash` the measurement phase returns an
//! error: the run is ERROR (exit 1), and the teardown phase still ran (see the summary).

use std::process::ExitCode;

use tofu_core::prelude::*;

#[phase]
fn power_on() {
    tracing::info!("board powered");
}

#[phase]
#[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
fn measure_rail(m: &mut measure_rail::Measurements) -> Result<(), String> {
    if std::env::args().any(|a| a == "--crash") {
        return Err("the DMM stopped answering".into());
    }
    m.rail.set(3.31);
    Ok(())
}

#[phase]
fn power_off() {
    tracing::info!("board powered off");
}

fn main() -> ExitCode {
    let powered = PhaseGroup::new("powered")
        .setup([power_on])
        .main([measure_rail])
        .teardown([power_off]);
    Test::new("FVT1")
        .part_number("PCB01")
        .phases([powered])
        .output(tofu_upload::Uploader::from_env())
        .execute(|| "PCB01A0005")
        .exit_code()
}
