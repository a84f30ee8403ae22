use tofu_core::prelude::*;

#[phase]
#[measures(voltage: f64, current: f64, voltage: f64)]
fn power_on(m: &mut power_on::Measurements) {
    m.voltage.set(5.0);
    m.current.set(0.1);
}

fn main() {}
