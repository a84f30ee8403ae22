//! Reading runs back: creates a run for a unit, fetches every run of that unit with
//! `get_runs`, and saves them as pretty JSON next to the records of the other examples
//! (`$TOFU_OUTPUT_DIR`, else `./tofu-records`), as `get_runs-<serial>.json`.
//!
//! Run it with
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example get_runs             # unit PCB1A001
//! TOFUPILOT_API_KEY=... cargo run --example get_runs -- 00102    # another unit
//! ```
//!
//! (`TOFUPILOT_URL` points it at another TofuPilot instance). Without an API key it says what
//! to set and exits.

use std::time::Duration;

use tofu::upload::blocking::TofuPilotClient;
use tofu::upload::{CreateRun, Error, UnitUnderTest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serial = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "PCB1A001".to_owned());
    let client = match TofuPilotClient::from_env() {
        Ok(client) => client,
        Err(Error::MissingApiKey) => {
            println!(
                "get_runs: set TOFUPILOT_API_KEY (and TOFUPILOT_URL for another instance than tofupilot.app) to create and fetch runs"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };

    let run = CreateRun::new(UnitUnderTest::new(&serial).part_number("PCB1"), true)
        .procedure_id("FVT1")
        .started_at(chrono::Utc::now())
        .duration(Duration::from_secs(23));
    let created = client.create_run(&run)?;
    println!("run {} of {serial} created", created.id);

    let runs = client.get_runs(&serial)?;
    for run in &runs {
        println!(
            "  {}  started {}  {:?}",
            run.id,
            run.started_at
                .map_or_else(|| "?".to_owned(), |t| t.to_rfc3339()),
            run.outcome
        );
    }

    let dir = tofu::JsonOutput::new().dir().to_owned();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!(
        "get_runs-{}.json",
        tofu::fs::safe_file_name(&serial)
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&runs)? + "\n")?;
    println!(
        "{} run(s) of {serial} saved to {}",
        runs.len(),
        path.display()
    );
    Ok(())
}
