//! Downloading attachments: creates a run with a file attached, fetches every run of that unit
//! with `get_runs`, and downloads each attachment of those runs into
//! `$TOFU_OUTPUT_DIR/attachments/<run id>/` (else `./tofu-records/attachments/<run id>/`).
//!
//! Run it with
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example get_attachments             # unit PCB1A008
//! TOFUPILOT_API_KEY=... cargo run --example get_attachments -- PCB1A001 # another unit
//! ```
//!
//! (`TOFUPILOT_URL` points it at another TofuPilot instance). Names given by the server are
//! made safe before they name a file. Without an API key it says what to set and exits.

use std::path::Path;

use tofu::fs::safe_file_name;
use tofu::upload::blocking::TofuPilotClient;
use tofu::upload::{CreateRun, Error, UnitUnderTest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serial = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "PCB1A008".to_owned());
    let client = match TofuPilotClient::from_env() {
        Ok(client) => client,
        Err(Error::MissingApiKey) => {
            println!(
                "get_attachments: set TOFUPILOT_API_KEY (and TOFUPILOT_URL for another instance than tofupilot.app) to create runs and download their attachments"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };

    let notes = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("measurement-notes.txt");
    let run = CreateRun::new(UnitUnderTest::new(&serial).part_number("PCB1"), true)
        .procedure_id("FVT1")
        .attachment(notes);
    let created = client.create_run(&run)?;
    println!("run {} of {serial} created with 1 attachment", created.id);

    let dir = tofu::JsonOutput::new().dir().join("attachments");
    let mut count = 0;
    for run in client.get_runs(&serial)? {
        for attachment in &run.attachments {
            let name = attachment
                .filename
                .as_deref()
                .or(attachment.id.as_deref())
                .unwrap_or("attachment");
            if attachment.download_url().is_none() {
                println!("  {}: {name} has no download URL, skipped", run.id);
                continue;
            }
            let run_dir = dir.join(safe_file_name(&run.id));
            std::fs::create_dir_all(&run_dir)?;
            let path = run_dir.join(safe_file_name(name));
            let bytes = client.download_attachment(attachment, &path)?;
            println!("  {} ({bytes} bytes)", path.display());
            count += 1;
        }
    }
    println!(
        "{count} attachment(s) of {serial} downloaded into {}",
        dir.display()
    );
    Ok(())
}
