//! Instruments on TofuPilot v1: the create-run request has no field for them (its only list of
//! things, `sub_units`, names units that must exist), so they go up in the JSON report the
//! uploader attaches to the run (`metadata.instruments`, as tofu-instruments' plugs list them).

use std::time::Duration;

use serde_json::{Value, json};
use tofu_core::prelude::*;
use tofu_upload::Uploader;

use crate::support::server::{TEST_KEY, TestServer};

/// A plug that lists an instrument, as tofu-instruments' plugs do.
struct Dmm;

impl Plug for Dmm {
    fn record_metadata(&self) -> Vec<(String, Value)> {
        let entry = json!({"name": "dmm", "idn": "TOFU SIM,DMM-6500,DMM000421,1.7.2"});
        vec![("instruments".to_owned(), entry)]
    }
}

#[phase]
fn read(_dmm: &mut Dmm) {}

#[test]
fn the_instruments_go_up_in_the_attached_report() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = tofu_upload::ClientBuilder::new()
        .api_key(TEST_KEY)
        .base_url(server.url())
        .timeout(Duration::from_secs(2))
        .config()
        .unwrap();
    let uploader =
        Uploader::new(config, dir.path().join("outbox")).wait_at_exit(Duration::from_secs(15));
    let execution = Test::new("FVT1")
        .part_number("PCB1")
        .plug(Dmm)
        .phases([read])
        .json_output(JsonOutput::to_dir(dir.path()))
        .output(uploader)
        .quiet()
        .execute(|| "PCB1A004");
    assert_eq!(execution.record.outcome, tofu_core::Outcome::Pass);
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let files = server.attachments_of(&runs[0].0);
    let report = files
        .iter()
        .find(|f| f.0.ends_with(".json"))
        .unwrap_or_else(|| panic!("no report among {:?}", files.iter().map(|f| &f.0)));
    let report: Value = serde_json::from_slice(&report.2).unwrap();
    assert_eq!(
        report["metadata"]["instruments"],
        json!([{"name": "dmm", "idn": "TOFU SIM,DMM-6500,DMM000421,1.7.2"}])
    );
}
