use tofu_core::prelude::*;

#[phase(nmae = "Power on", repeat_limit = 0)]
fn power_on() {}

fn main() {
    let _ = Test::new("FVT1").phases([power_on]);
}
