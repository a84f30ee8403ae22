//! Helpers shared by the test modules.

use tofu_core::prelude::*;
use tofu_core::{PhaseOutcome, TestRecord};

/// Runs `test` once for `serial`, quietly, its JSON record in a temporary folder.
pub(crate) fn run_quietly(test: Test, serial: &str) -> TestRecord {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test.json_output(JsonOutput::to_dir(dir.path())).quiet();
    test.execute(|| serial).record
}

/// Each phase record's name and outcome, in order.
pub(crate) fn outcomes(record: &TestRecord) -> Vec<(&str, PhaseOutcome)> {
    record
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.outcome))
        .collect()
}

/// A phase built at run time, with its repeat and stop options.
pub(crate) fn with_flow_options(
    mut builder: tofu_core::phase::DynamicPhaseBuilder,
    repeat_limit: Option<u32>,
    repeat_on_measurement_fail: bool,
    stop_on_measurement_fail: bool,
) -> tofu_core::phase::DynamicPhaseBuilder {
    if let Some(limit) = repeat_limit {
        builder = builder.repeat_limit(limit);
    }
    if repeat_on_measurement_fail {
        builder = builder.repeat_on_measurement_fail();
    }
    if stop_on_measurement_fail {
        builder = builder.stop_on_measurement_fail();
    }
    builder
}
