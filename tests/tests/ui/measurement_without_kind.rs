use tofu_core::prelude::*;

#[phase]
#[measures(voltage = in_range(1, 2), current: f64)]
fn power_on(m: &mut power_on::Measurements) {
    m.current.set(0.1);
}

fn main() {
    let _ = Test::new("FVT1").phases([power_on]);
}
