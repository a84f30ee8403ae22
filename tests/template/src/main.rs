//! A DC-DC converter's test, with its supply behind a trait so that the phase runs on the bench
//! (`cargo run`) and in a `#[test]` on a simulation (`cargo test`).

use std::process::ExitCode;

use tofu::prelude::*;
use tofu::tracing;

/// What the phases need of a power supply.
pub trait Supply: Plug {
    /// Sets the output voltage.
    fn set_volts(&mut self, volts: f64);
    /// Reads the converter's output back.
    fn read_output(&mut self) -> f64;
}

/// The bench's supply. (Here it stands for the instrument: a converter with a fixed ratio.)
struct BenchSupply {
    volts: f64,
}

impl Plug for BenchSupply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        tracing::info!("bench supply connected");
        Ok(())
    }
}

impl Supply for BenchSupply {
    fn set_volts(&mut self, volts: f64) {
        self.volts = volts;
    }
    fn read_output(&mut self) -> f64 {
        self.volts * 0.66
    }
}

/// The converter's output at 5 V in.
#[phase(name = "Output voltage")]
#[measures(output: f64 = in_range(3.2, 3.4).units(VOLT).doc("3V3 rail at TP4"))]
fn output_voltage(
    test: &mut PhaseContext,
    psu: &mut dyn Supply,
    m: &mut output_voltage::Measurements,
) -> Result<(), Box<dyn std::error::Error>> {
    let input: f64 = test.parameter("input_volts").unwrap_or(5.0);
    psu.set_volts(input);
    m.output.set(psu.read_output());
    Ok(())
}

/// The test as the bench runs it.
fn fvt() -> Test {
    Test::new("DCDC-FVT")
        .part_number("DCDC01")
        .phases([output_voltage])
        .plug_dyn(Box::new(BenchSupply { volts: 0.0 }) as Box<dyn Supply>)
}

fn main() -> ExitCode {
    let serial = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "DCDC01-0001".to_owned());
    fvt().execute(|| serial).exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tofu::testing::Harness;

    /// A converter that gives `ratio` of its input.
    struct SimSupply {
        volts: f64,
        ratio: f64,
    }
    impl Plug for SimSupply {}
    impl Supply for SimSupply {
        fn set_volts(&mut self, volts: f64) {
            self.volts = volts;
        }
        fn read_output(&mut self) -> f64 {
            self.volts * self.ratio
        }
    }

    fn sim(ratio: f64) -> Box<dyn Supply> {
        Box::new(SimSupply { volts: 0.0, ratio }) as Box<dyn Supply>
    }

    #[test]
    fn a_good_converter_passes() {
        let ran = Harness::phase(output_voltage).plug_dyn(sim(0.66)).run();
        assert_eq!(ran.outcome(), tofu::Outcome::Pass);
        let output = ran
            .value("output")
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN);
        assert!((output - 3.3).abs() < 1e-9, "output {output} V");
    }

    #[test]
    fn a_low_input_fails_the_whole_test() {
        let ran = Harness::test(fvt())
            .plug_dyn(sim(0.66))
            .parameter("input_volts", 4.5)
            .serial_number("SIM-0001")
            .run();
        assert_eq!(ran.outcome(), tofu::Outcome::Fail);
    }
}
