//! A station's slots upload separately: one run per slot on the server, each complete, each
//! with its own files, all through one outbox.

use std::time::Duration;

use tofu_core::prelude::*;
use tofu_upload::Uploader;

use crate::support::server::{TEST_KEY, TestServer};

#[phase]
#[measures(input_voltage: f64 = in_range(3.1, 3.5).units(VOLT))]
fn measure(
    test: &mut PhaseContext,
    m: &mut measure::Measurements,
) -> Result<(), tofu_core::AttachError> {
    m.input_voltage.set(3.3);
    let notes = format!("rails OK on {}\n", test.serial_number());
    test.attach("notes.txt", notes)
}

#[test]
fn each_slot_uploads_its_own_complete_run() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let config = || {
        tofu_upload::ClientBuilder::new()
            .api_key(TEST_KEY)
            .base_url(server.url())
            .timeout(Duration::from_secs(2))
            .config()
            .unwrap()
    };
    let mut station = Station::new(4, |_| {
        Test::new("FVT1")
            .phases([measure])
            .json_output(JsonOutput::to_dir(dir.path()))
            .output(Uploader::new(config(), &outbox).wait_at_exit(Duration::from_secs(15)))
    })
    .quiet();
    let batch = station.run(|slot| format!("SN-{}", slot.index() + 1));
    assert!(batch.passed());
    // Dropping the station drops the uploaders, which finish their uploads.
    drop(station);

    let mut runs = server.runs();
    runs.sort_by_key(|(_, body)| body["unit_under_test"]["serial_number"].to_string());
    let serials: Vec<&str> = runs
        .iter()
        .map(|(_, body)| body["unit_under_test"]["serial_number"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["SN-1", "SN-2", "SN-3", "SN-4"]);
    for (slot, (run_id, body)) in runs.iter().enumerate() {
        let serial = format!("SN-{}", slot + 1);
        assert_eq!(body["phases"][0]["measurements"][0]["measured_value"], 3.3);
        let files = server.attachments_of(run_id);
        let notes = files
            .iter()
            .find(|(name, _, _)| name == "notes.txt")
            .unwrap_or_else(|| panic!("no notes for {serial}: {files:?}"));
        assert_eq!(notes.2, format!("rails OK on {serial}\n").into_bytes());
        // The run's report is this slot's record, which names the slot.
        let report = files
            .iter()
            .find(|(name, _, _)| name.ends_with(".json"))
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&report.2).unwrap();
        assert_eq!(report["dut_id"], serial);
        assert_eq!(report["slot"]["index"], slot);
        assert_eq!(report["slot"]["name"], format!("slot {}", slot + 1));
    }
    let left = tofu_upload::uploader::Outbox::open(&outbox)
        .unwrap()
        .entries()
        .unwrap();
    assert!(left.is_empty(), "{} runs left in the outbox", left.len());
}
