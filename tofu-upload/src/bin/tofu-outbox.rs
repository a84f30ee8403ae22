//! `tofu-outbox`: look after the runs waiting for TofuPilot, and talk to TofuPilot by hand.
//!
//! ```text
//! tofu-outbox list                      the runs in the outbox, with their state
//! tofu-outbox show ID                   one run: its state, files and last error
//! tofu-outbox retry ID|--all            put parked runs back in line
//! tofu-outbox upload                    send every run in the outbox now
//! tofu-outbox upload-report FILE        import a saved OpenHTF-format JSON report
//! tofu-outbox get-runs SERIAL [--out F] the runs of a unit, as JSON
//! ```
//!
//! The outbox is `$TOFU_OUTBOX_DIR`, else `outbox` in `$TOFU_OUTPUT_DIR` (`./tofu-records`);
//! `--outbox DIR` overrides it. TofuPilot is reached with `TOFUPILOT_API_KEY` and
//! `TOFUPILOT_URL`. Exit status: 0 on success, 1 when something failed, 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use tofu_upload::blocking::TofuPilotClient;
use tofu_upload::uploader::{LEFTOVER_AGE, Outbox, Progress, Status, send};

const USAGE: &str = "usage: tofu-outbox [--outbox DIR] <list | show ID | retry ID|--all | upload | upload-report FILE | get-runs SERIAL [--out FILE]>";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let outbox_dir = match take_option(&mut args, "--outbox") {
        Ok(dir) => dir.map_or_else(Outbox::default_dir, PathBuf::from),
        Err(e) => return usage(&e),
    };
    let result = match args.first().map(String::as_str) {
        Some("list") if args.len() == 1 => list(&outbox_dir),
        Some("show") if args.len() == 2 => show(&outbox_dir, &args[1]),
        Some("retry") if args.len() == 2 => retry(&outbox_dir, &args[1]),
        Some("upload") if args.len() == 1 => upload(&outbox_dir),
        Some("upload-report") if args.len() == 2 => upload_report(&args[1]),
        Some("get-runs") => match take_option(&mut args, "--out") {
            Ok(out) if args.len() == 2 => get_runs(&args[1], out.map(PathBuf::from)),
            Ok(_) => return usage("get-runs takes one serial number"),
            Err(e) => return usage(&e),
        },
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => return usage(&format!("unknown command or wrong arguments: {other}")),
        None => return usage("no command"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tofu-outbox: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("tofu-outbox: {problem}\n{USAGE}");
    ExitCode::from(2)
}

/// Removes `--name VALUE` (or `--name=VALUE`) from `args`.
fn take_option(args: &mut Vec<String>, name: &str) -> std::result::Result<Option<String>, String> {
    let Some(i) = args
        .iter()
        .position(|a| a == name || a.starts_with(&format!("{name}=")))
    else {
        return Ok(None);
    };
    let arg = args.remove(i);
    if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
        return Ok(Some(value.to_owned()));
    }
    if i < args.len() {
        Ok(Some(args.remove(i)))
    } else {
        Err(format!("{name} needs a value"))
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn list(dir: &PathBuf) -> Result<()> {
    let outbox = Outbox::open(dir)?;
    let entries = outbox.entries()?;
    if entries.is_empty() {
        println!("the outbox {} is empty", dir.display());
    }
    for entry in entries {
        match entry {
            Ok(e) => {
                let s = &e.state;
                let files = s.files.iter().filter(|f| f.uploaded).count();
                let state = match (s.status, &s.run_id) {
                    (Status::Parked, _) => "parked",
                    (Status::Pending, Some(_)) => "created, files pending",
                    (Status::Pending, None) => "pending",
                };
                println!(
                    "{}  {}  {state}  files {files}/{}  attempts {}{}",
                    e.id,
                    s.serial_number,
                    s.files.len(),
                    s.attempts,
                    s.last_error
                        .as_deref()
                        .map(|m| format!("  last error: {m}"))
                        .unwrap_or_default()
                );
            }
            Err(e) => println!("unreadable entry: {e}"),
        }
    }
    Ok(())
}

fn show(dir: &PathBuf, id: &str) -> Result<()> {
    let entry = Outbox::open(dir)?.entry(id)?;
    println!("{}", serde_json::to_string_pretty(&entry.state)?);
    Ok(())
}

fn retry(dir: &PathBuf, which: &str) -> Result<()> {
    let outbox = Outbox::open(dir)?;
    let mut count = 0;
    for entry in outbox.entries()? {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                eprintln!("skipped: {e}");
                continue;
            }
        };
        if which != "--all" && entry.id != which {
            continue;
        }
        entry.state.status = Status::Pending;
        entry.state.next_attempt_millis = 0;
        entry.save()?;
        count += 1;
    }
    if count == 0 && which != "--all" {
        return Err(format!("no run `{which}` in the outbox").into());
    }
    println!("{count} run(s) back in line; `tofu-outbox upload` sends them now");
    Ok(())
}

fn upload(dir: &PathBuf) -> Result<()> {
    let client = TofuPilotClient::from_env()?;
    let outbox = Outbox::open(dir)?;
    // What processes killed an hour ago or more left half-written or half-deleted.
    outbox.remove_leftovers(LEFTOVER_AGE);
    let (mut sent, mut failed) = (0, 0);
    for entry in outbox.entries()? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                eprintln!("skipped: {e}");
                failed += 1;
                continue;
            }
        };
        if entry.state.status == Status::Parked {
            println!(
                "{}: parked ({}); `tofu-outbox retry {}` first",
                entry.id,
                entry.state.last_error.as_deref().unwrap_or("?"),
                entry.id
            );
            continue;
        }
        let id = entry.id.clone();
        let progress = match send(&client, entry, true) {
            Ok(p) => p,
            Err(e) => {
                failed += 1;
                println!("{id}: {e}");
                continue;
            }
        };
        match progress {
            Progress::Done { run_id, run_url } => {
                sent += 1;
                println!("{id}: uploaded as {}", run_url.unwrap_or(run_id));
            }
            Progress::Retry { error, .. } => {
                failed += 1;
                println!("{id}: failed, will be retried: {error}");
            }
            Progress::Parked { error } => {
                failed += 1;
                println!("{id}: refused and parked: {error}");
            }
            Progress::Busy => println!("{id}: being uploaded by another process"),
            Progress::Skipped | _ => {}
        }
    }
    println!("{sent} uploaded, {failed} failed");
    if failed > 0 {
        Err(format!("{failed} run(s) not uploaded").into())
    } else {
        Ok(())
    }
}

fn upload_report(path: &str) -> Result<()> {
    let client = TofuPilotClient::from_env()?;
    let imported = client.create_run_from_openhtf_report(path)?;
    println!(
        "run {} created from {path}: {}",
        imported.id,
        imported.url.as_deref().unwrap_or("(no url)")
    );
    for attachment in &imported.attachments {
        println!("  attached {}", attachment.name);
    }
    Ok(())
}

fn get_runs(serial: &str, out: Option<PathBuf>) -> Result<()> {
    let client = TofuPilotClient::from_env()?;
    let runs = client.get_runs(serial)?;
    let json = serde_json::to_string_pretty(&runs)?;
    match out {
        Some(path) => {
            std::fs::write(&path, json + "\n")?;
            println!(
                "{} run(s) of {serial} written to {}",
                runs.len(),
                path.display()
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}
