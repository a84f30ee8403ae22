use tofu_core::prelude::*;

#[phase]
#[measures(iv: Sweep<3> = dimensions([SECOND, VOLT, AMPERE]).units(OHM))]
fn sweep(m: &mut sweep::Measurements) {
    m.iv.push([0.0, 1.0], 100.0);
}

fn main() {}
