//! Uploading a saved OpenHTF-format JSON report with `create_run_from_openhtf_report`: the file
//! is uploaded, TofuPilot makes a run of it (`POST /api/v1/import`), then the attachments
//! inlined in the report are uploaded and linked to that run.
//!
//! Without an argument, the example first runs a short tofu test and writes its record (an
//! OpenHTF JSON record, with a text file attached) into `$TOFU_OUTPUT_DIR` (else
//! `./tofu-records`), then uploads that file. With a path, it uploads that report instead;
//! one written by OpenHTF itself (`json_factory.OutputToJSON`) works the same.
//!
//! Run it with
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example upload_report
//! TOFUPILOT_API_KEY=... cargo run --example upload_report -- fixtures/openhtf/sample_record.json
//! ```
//!
//! (`TOFUPILOT_URL` points it at another TofuPilot instance). Without an API key it says what
//! to set and exits.

use std::path::PathBuf;

use tofu::AttachError;
use tofu::prelude::*;
use tofu::upload::Error;
use tofu::upload::blocking::TofuPilotClient;

/// Measures the input voltage and attaches the operator's notes.
#[phase]
#[measures(input_voltage: f64 = in_range(3.1, 3.5).units(VOLT))]
fn phase_voltage_measure(
    test: &mut PhaseContext,
    m: &mut phase_voltage_measure::Measurements,
) -> Result<(), AttachError> {
    m.input_voltage.set(3.3);
    test.attach("notes.txt", "probe calibration: OK\n")?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = match TofuPilotClient::from_env() {
        Ok(client) => client,
        Err(Error::MissingApiKey) => {
            println!(
                "upload_report: set TOFUPILOT_API_KEY (and TOFUPILOT_URL for another instance than tofupilot.app) to upload a report"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };

    let path = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => record_a_test()?,
    };
    let imported = client.create_run_from_openhtf_report(&path)?;
    println!(
        "run {} created from {}: {}",
        imported.id,
        path.display(),
        imported.url.as_deref().unwrap_or("(no url)")
    );
    for attachment in &imported.attachments {
        println!("  attached {}", attachment.name);
    }
    Ok(())
}

/// Runs a short test and writes its OpenHTF JSON record; returns the record's path.
fn record_a_test() -> std::io::Result<PathBuf> {
    let json = JsonOutput::new();
    let execution = Test::new("FVT1")
        .part_number("PCB1")
        .phases([phase_voltage_measure])
        .without_json_output() // written below, to know the file's path
        .execute(|| "PCB1A009");
    let path = json.write(&execution.record, json.dir())?;
    println!("record written to {}", path.display());
    Ok(path)
}
