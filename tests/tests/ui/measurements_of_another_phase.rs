use tofu_core::prelude::*;

#[phase]
#[measures(current: f64)]
fn leakage(m: &mut leakage::Measurements) {
    m.current.set(1e-7);
}

#[phase]
#[measures(input_voltage: f64)]
fn power_on(m: &mut leakage::Measurements) {
    m.current.set(5.0);
}

fn main() {}
