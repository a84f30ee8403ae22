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
