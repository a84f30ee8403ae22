//! A run with files attached, with the plain client: `create_run` creates the run, then
//! uploads each file (initialize → PUT → sync) and links it to the run. The files are checked
//! before anything is sent (at most 100 files of at most 10 MiB each); the MIME type is
//! guessed from the name.
//!
//! Run it with
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example client_attachments
//! ```
//!
//! (`TOFUPILOT_URL` points it at another TofuPilot instance). The files are those of
//! `examples/data/`, found from any folder. Without an API key it says what to set and exits.

use std::path::Path;

use tofu::upload::blocking::TofuPilotClient;
use tofu::upload::{CreateRun, Error, UnitUnderTest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = match TofuPilotClient::from_env() {
        Ok(client) => client,
        Err(Error::MissingApiKey) => {
            println!(
                "client_attachments: set TOFUPILOT_API_KEY (and TOFUPILOT_URL for another instance than tofupilot.app) to create a run with attachments"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let run = CreateRun::new(UnitUnderTest::new("PCB1A001").part_number("PCB1"), true)
        .procedure_id("FVT1")
        .attachment(data.join("temperature-map.png"))
        .attachment(data.join("measurement-notes.txt"))
        .attachment(data.join("raw_capture"));
    // If a file fails to upload, the error (`Error::Attachments`) still names the run created.
    let created = client.create_run(&run)?;
    println!(
        "run {} created: {}",
        created.id,
        created.url.as_deref().unwrap_or("(no url)")
    );
    for attachment in &created.attachments {
        println!(
            "  attached {} (upload {})",
            attachment.name, attachment.upload_id
        );
    }
    Ok(())
}
