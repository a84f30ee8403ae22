//! A station without network: the run is kept in the outbox, and uploaded later with its
//! original start time.
//!
//! The test runs with an uploader whose TofuPilot can't be reached (a port nobody listens on,
//! as when the station's network is down): the run, its attachments and its JSON report are
//! written into the outbox before any network call, the upload fails and is left for later.
//! Then, back online, the example sends what the outbox holds with the real settings, as
//! `tofu-outbox upload` does, and shows that the run on TofuPilot started when the test did,
//! not when it was uploaded.
//!
//! Run it with
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example offline_upload
//! ```
//!
//! (`TOFUPILOT_URL` points it at another TofuPilot instance). The outbox is
//! `$TOFU_OUTBOX_DIR`, else `outbox/` in the record folder (`$TOFU_OUTPUT_DIR`, else
//! `./tofu-records`). Without an API key only the offline half runs: the run stays in the
//! outbox, for `cargo run -p tofu-upload --bin tofu-outbox -- upload` once a key is set.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tofu::prelude::*;
use tofu::upload::blocking::TofuPilotClient;
use tofu::upload::uploader::{Outbox, Progress, Status, send};
use tofu::upload::{ClientBuilder, Error, Uploader};

/// Where the offline station's uploader sends runs: nothing listens there.
const UNREACHABLE: &str = "http://127.0.0.1:9";
const SERIAL_NUMBER: &str = "PCB1A007";

#[phase]
#[measures(input_voltage: f64 = in_range(3.1, 3.5).units(VOLT))]
fn phase_voltage_measure(m: &mut phase_voltage_measure::Measurements) {
    m.input_voltage.set(3.3);
}

#[phase]
#[measures(firmware_version: String = equals("1.2.7"))]
fn phase_firmware_version_check(m: &mut phase_firmware_version_check::Measurements) {
    m.firmware_version.set("1.2.7");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let outbox_dir = Outbox::default_dir();

    // 1. Offline: the key (if any) is the real one, the URL can't be reached.
    let uploader = match ClientBuilder::new()
        .base_url(UNREACHABLE)
        .timeout(Duration::from_secs(3))
        .config()
    {
        Ok(config) => Uploader::new(config, &outbox_dir),
        Err(e) => Uploader::offline(&outbox_dir, e.to_string()),
    };
    let mut test = Test::new("FVT1")
        .part_number("PCB1")
        .phases([phase_voltage_measure, phase_firmware_version_check])
        .output(uploader.wait_at_exit(Duration::from_secs(5)));
    let execution = test.execute(|| SERIAL_NUMBER);
    // Dropping the test drops its uploader, which stops trying: the run stays in the outbox.
    drop(test);
    if !execution.passed() {
        return Err(format!("the test of {SERIAL_NUMBER} did not pass").into());
    }
    let record = execution.record;
    let started = show_millis(record.start_time_millis);
    println!(
        "\nthe run of {} started at {started} is kept in the outbox {}",
        record.dut_id,
        outbox_dir.display()
    );

    // 2. Back online, with the real settings.
    let client = match TofuPilotClient::from_env() {
        Ok(client) => client,
        Err(Error::MissingApiKey) => {
            println!(
                "no TOFUPILOT_API_KEY: the run stays there; set TOFUPILOT_API_KEY (and TOFUPILOT_URL) and run \
                 `cargo run -p tofu-upload --bin tofu-outbox -- --outbox {} upload` to upload it with its original start time",
                outbox_dir.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    std::thread::sleep(Duration::from_secs(2));
    println!("back online at {}", show(Utc::now()));

    let mut uploaded = None;
    for entry in Outbox::open(&outbox_dir)?.entries()? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                println!("skipped: {e}");
                continue;
            }
        };
        if entry.state.status == Status::Parked {
            println!("{}: parked, left for `tofu-outbox retry`", entry.id);
            continue;
        }
        let ours = entry.state.serial_number == record.dut_id
            && entry.state.started_at_millis == Some(record.start_time_millis);
        let id = entry.id.clone();
        // `true`: now, even if the failed attempt set the next one later.
        match send(&client, entry, true)? {
            Progress::Done { run_id, run_url } => {
                println!(
                    "{id}: uploaded as {}",
                    run_url.as_deref().unwrap_or(&run_id)
                );
                if ours {
                    uploaded = Some(run_id);
                }
            }
            Progress::Retry { error, .. } | Progress::Parked { error } => {
                println!("{id}: not uploaded: {error}");
            }
            Progress::Busy => println!("{id}: being uploaded by another process"),
            _ => {}
        }
    }
    let run_id = uploaded.ok_or("the run of this example was not uploaded")?;

    // 3. TofuPilot has the run with the start time of the test, not of the upload.
    let run = client
        .get_runs(&record.dut_id)?
        .into_iter()
        .find(|run| run.id == run_id)
        .ok_or_else(|| format!("run {run_id} is not among the runs of {}", record.dut_id))?;
    let on_server = run.started_at.map_or_else(|| "(none)".to_owned(), show);
    println!("record's start time:     {started}");
    println!("TofuPilot's started_at:  {on_server}");
    if run.started_at.map(|t| t.timestamp_millis()) != Some(record.start_time_millis) {
        return Err("TofuPilot's start time is not the record's".into());
    }
    println!("run {run_id} was uploaded with its original start time");
    Ok(())
}

fn show(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn show_millis(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis).map_or_else(|| millis.to_string(), show)
}
