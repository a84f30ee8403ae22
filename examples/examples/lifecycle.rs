//! The run's life cycle under faults, for the tests that drive it as a real process (signals,
//! pipes): `cargo run --example lifecycle -- SCENARIO`. Each scenario waits where an operator
//! or an instrument could make a run wait; the test then signals it, or lets a deadline pass,
//! and reads the record. The supply plug prints `supply off` when it is torn down.
//!
//! Scenarios: `serial-prompt` (waits for the serial number), `phase-prompt` (a phase waits
//! for a confirmation), `prompt-timeout` (a phase with a 0.5 s timeout waits in a prompt),
//! `last-phase` (the last phase, without a timeout, blocks), `hold-plug` (a phase with a
//! timeout blocks holding the supply; the group's teardown phase needs it), `hang-setup`
//! and `hang-teardown` (the supply's setup or teardown never returns), `keep-values` (a phase
//! measures, attaches, then blocks past its timeout), `deep` (deep recursion in a phase), and
//! `die` (measures in one phase, then blocks in the next: the test kills it).

use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;

fn scenario() -> String {
    std::env::args().nth(1).unwrap_or_default()
}

fn block() {
    std::thread::sleep(Duration::from_secs(3600));
}

/// The bench supply: it must be off at the end, whatever happened.
struct Supply;

impl Plug for Supply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if scenario() == "hang-setup" {
            eprintln!("supply setup hangs");
            block();
        }
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if scenario() == "hang-teardown" {
            eprintln!("supply teardown hangs");
            block();
        }
        eprintln!("supply off");
        Ok(())
    }
}

#[phase]
#[measures(vin: f64 = in_range(4.5, 5.5).units(VOLT))]
fn power_on(_supply: &mut Supply, m: &mut power_on::Measurements) {
    m.vin.set(5.0);
    eprintln!("board powered");
}

#[phase]
fn confirm(test: &mut PhaseContext) -> Result<(), tofu::PromptError> {
    test.prompt_confirm("Close the fixture lid")
}

#[phase(timeout_s = 0.5)]
fn confirm_in_time(test: &mut PhaseContext) -> Result<(), tofu::PromptError> {
    test.prompt_confirm("Close the fixture lid")
}

#[phase]
fn blocks() {
    eprintln!("last phase blocks");
    block();
}

#[phase(timeout_s = 0.5)]
fn blocks_holding_the_supply(_supply: &mut Supply) {
    eprintln!("holding the supply");
    block();
}

#[phase]
fn supply_off(_supply: &mut Supply) {
    eprintln!("teardown phase has the supply");
}

#[phase(timeout_s = 0.5)]
#[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
fn measures_then_blocks(
    test: &mut PhaseContext,
    m: &mut measures_then_blocks::Measurements,
) -> Result<(), tofu::AttachError> {
    m.rail.set(3.31);
    test.attach("trace.txt", "before the hang")?;
    block();
    Ok(())
}

#[phase]
#[measures(depth: f64 = at_least(1))]
fn deep(m: &mut deep::Measurements) {
    fn descend(n: u64) -> u64 {
        let pad = std::hint::black_box([n; 32]);
        if n == 0 {
            pad[0]
        } else {
            descend(n - 1) + pad[1] % 2
        }
    }
    // About 30 MB of stack: more than a main thread's 8 MB.
    m.depth.set(descend(100_000) as f64 + 1.0);
}

#[phase]
fn dies_here() {
    eprintln!("about to be killed");
    block();
}

fn main() -> ExitCode {
    let scenario = scenario();
    let phases: Vec<PhaseNode> = match scenario.as_str() {
        "phase-prompt" => vec![power_on.into(), confirm.into()],
        "prompt-timeout" => vec![power_on.into(), confirm_in_time.into(), power_on.into()],
        "last-phase" => vec![power_on.into(), blocks.into()],
        "hold-plug" => vec![
            PhaseGroup::new("powered")
                .setup([power_on])
                .main([blocks_holding_the_supply])
                .teardown([supply_off])
                .into(),
        ],
        "keep-values" => vec![power_on.into(), measures_then_blocks.into()],
        "deep" => vec![deep.into()],
        "die" => vec![power_on.into(), dies_here.into()],
        _ => vec![power_on.into()],
    };
    let mut test = Test::new("LIFECYCLE")
        .plug(Supply)
        .plug_timeout(Duration::from_secs(1))
        .phases(phases);
    let execution = if scenario == "serial-prompt" {
        let serial = tofu::prompt::serial_number();
        test.execute(|| serial.ask())
    } else {
        test.execute(|| "LC-0001")
    };
    execution.exit_code()
}
