use tofu_core::prelude::*;

struct PowerSupply;

impl Plug for PowerSupply {}

#[phase]
fn power_on(psu: PowerSupply) {
    let _ = psu;
}

fn main() {
    let _ = Test::new("FVT1").plug(PowerSupply).phases([power_on]);
}
