use tofu_core::prelude::*;

#[phase]
#[measures(input_voltage: f64 = in_range(4.5, 5.5).units(VOLT), firmware: String)]
fn power_on(m: &mut power_on::Measurements) {
    m.banana.set(5.0);
}

fn main() {}
