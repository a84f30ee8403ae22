//! Limits files: any text, loaded against a test whose phases the example's file names.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tofu_core::Phase;
use tofu_core::declare::{equals, in_range};
use tofu_core::prelude::*;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let phases = [
        Phase::dynamic("power_rails")
            .measure::<f64, _>("input_voltage", in_range(4.5, 5.5).units(VOLT))
            .measure::<f64, _>("input_current", in_range(0.2, 0.3))
            .run(|_, _| ()),
        Phase::dynamic("Power rails")
            .measure::<String, _>("firmware", equals("1.2.7"))
            .run(|_, _| ()),
    ];
    if let Err(e) = Test::new("FVT1")
        .phases(phases)
        .limits_toml(text, "fuzz.toml")
    {
        // Every problem names the file, at a line of the text.
        let lines = text.lines().count().max(1) + 1;
        for p in e.problems() {
            assert_eq!(p.file, "fuzz.toml");
            assert!(
                p.line >= 1 && p.line <= lines,
                "line {} of {lines}: {}",
                p.line,
                p.message
            );
        }
    }
});
