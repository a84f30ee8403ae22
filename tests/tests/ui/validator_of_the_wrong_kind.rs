use tofu_core::prelude::*;

#[phase]
#[measures(input_voltage: f64 = equals("5.0"))]
fn power_on(m: &mut power_on::Measurements) {
    m.input_voltage.set(5.0);
}

fn main() {}
