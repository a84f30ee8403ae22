use tofu_core::prelude::*;
use tofu_core::si::{ampere, volt, ElectricCurrent};

#[phase]
#[measures(rail: Si<volt> = in_range(3.1, 3.5))]
fn power_on(m: &mut power_on::Measurements) {
    m.rail.set(ElectricCurrent::new::<ampere>(0.2));
}

fn main() {}
