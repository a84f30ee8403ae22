use tofu_core::prelude::*;
use tofu_core::si::volt;

#[phase]
#[measures(rail: Si<volt> = in_range(3.2, 3.4).units(AMPERE))]
fn rails(m: &mut rails::Measurements) {
    m.rail.set(3.3);
}

fn main() {}
