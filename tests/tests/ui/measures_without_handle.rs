use tofu_core::prelude::*;

#[phase]
#[measures(voltage: f64)]
fn power_on(test: &mut PhaseContext) {
    let _ = test.serial_number();
}

fn main() {
    let _ = Test::new("FVT1").phases([power_on]);
}
