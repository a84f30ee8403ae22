//! `tofu-outbox`: look after the runs waiting for TofuPilot, and talk to TofuPilot by hand.
//!
//! ```text
//! tofu-outbox list                         the runs in the outbox, with their state
//! tofu-outbox show RUN                     one run (an entry id, or every run of a serial number)
//! tofu-outbox retry RUN... | --all         put parked runs back in line
//! tofu-outbox rm RUN... | --without-key    remove runs from the outbox (asks unless --yes)
//! tofu-outbox upload                       send every run in the outbox now
//! tofu-outbox upload-report FILE           import a saved OpenHTF-format JSON report (once)
//! tofu-outbox get-runs SERIAL [--json]     the runs of a unit on TofuPilot
//! tofu-outbox recover                      record and queue the runs of processes that died mid-run
//! ```
//!
//! The outbox is `$TOFU_OUTBOX_DIR`, else `outbox` in `$TOFU_OUTPUT_DIR` (`./tofu-records`);
//! `--outbox DIR` overrides it. TofuPilot is reached with `TOFUPILOT_API_KEY` and
//! `TOFUPILOT_URL`. Exit status: 0 on success, 1 when something failed, 2 on bad usage.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tofu_upload::blocking::TofuPilotClient;
use tofu_upload::uploader::{Entry, LEFTOVER_AGE, Outbox, Progress, Status, Updated, send};

/// Looks after the runs waiting for TofuPilot (the outbox), and talks to TofuPilot by hand.
///
/// TofuPilot is reached with the TOFUPILOT_API_KEY and TOFUPILOT_URL environment variables.
/// Exit status: 0 on success, 1 when something failed, 2 on bad usage.
#[derive(Parser, Debug)]
#[command(name = "tofu-outbox", version)]
struct Cli {
    /// The outbox folder (default: $TOFU_OUTBOX_DIR, else `outbox` in $TOFU_OUTPUT_DIR, else
    /// ./tofu-records/outbox).
    #[arg(long, global = true, value_name = "DIR")]
    outbox: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Lists the runs in the outbox with their state, attempts and last error.
    List,
    /// Shows a run's state, files and last error (every run of a serial number).
    Show {
        /// An entry id (as `list` shows it) or a serial number.
        run: String,
    },
    /// Puts parked runs back in line (`upload` then sends them now).
    Retry {
        /// Entry ids or serial numbers.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        runs: Vec<String>,
        /// Every run of the outbox.
        #[arg(long)]
        all: bool,
    },
    /// Removes runs from the outbox without uploading them (asks first unless --yes).
    Rm(Remove),
    /// Sends every run of the outbox now (parked ones wait for `retry`).
    Upload,
    /// Imports a saved OpenHTF-format JSON report as a run; a report already on TofuPilot (the
    /// same unit and start time) is not imported again.
    UploadReport {
        /// The report (an OpenHTF JSON record, such as tofu writes).
        file: PathBuf,
        /// Import it even if a run of the same unit and start time is on TofuPilot.
        #[arg(long)]
        force: bool,
    },
    /// Lists the runs of a unit on TofuPilot.
    GetRuns {
        /// The unit's serial number.
        serial: String,
        /// Prints TofuPilot's answer as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Writes the JSON answer to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Recovers the runs of processes that died mid-run (SIGKILL, power cut, out of memory):
    /// each run left in the journal folder becomes an ERROR record (with every phase completed
    /// before) written to the record folder and queued in the outbox, once. A test's next start
    /// does the same; a run still under way is left alone.
    Recover(Recover),
}

#[derive(Args, Debug)]
struct Recover {
    /// The record folder (default: $TOFU_OUTPUT_DIR, else ./tofu-records).
    #[arg(long, value_name = "DIR")]
    records: Option<PathBuf>,
    /// The journal folder (default: $TOFU_JOURNAL_DIR, else .tofu-journal in the record folder).
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct Remove {
    /// Entry ids or serial numbers.
    #[arg(required_unless_present = "without_key")]
    runs: Vec<String>,
    /// Every run queued while no API key was set (tried before an account existed).
    #[arg(long)]
    without_key: bool,
    /// Removes without asking.
    #[arg(long, short)]
    yes: bool,
}

/// Why the command stopped.
enum Stop {
    /// Something failed (exit 1).
    Failed(String),
    /// Whoever read our output stopped reading (a closed pipe): nothing more to say (exit 0).
    Closed,
}

impl<E: std::fmt::Display> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Failed(e.to_string())
    }
}

type Result<T> = std::result::Result<T, Stop>;

/// Writes a line on stdout; a closed pipe stops the command quietly.
macro_rules! say {
    ($($arg:tt)*) => {
        say_line(format_args!($($arg)*))?
    };
}

fn say_line(line: std::fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::Closed),
        Err(e) => Err(Stop::Failed(format!("can't write the output: {e}"))),
        Ok(()) => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are no errors; anything else is bad usage (2).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Runs queued where the outbox couldn't be written are listed and sent with the default
    // outbox's.
    let fallback = (cli.outbox.is_none() && matches!(cli.command, Command::List | Command::Upload))
        .then(fallback_outbox)
        .flatten();
    let dir = cli.outbox.unwrap_or_else(Outbox::default_dir);
    let result = match cli.command {
        Command::List => list(&dir).and_then(|()| match &fallback {
            Some(fallback) => {
                say!("runs queued in the fallback outbox {}:", fallback.display());
                list(fallback)
            }
            None => Ok(()),
        }),
        Command::Upload if fallback.is_some() => {
            let first = upload(&dir);
            let fallback = fallback.unwrap_or_default();
            match say_line(format_args!("the fallback outbox {}:", fallback.display()))
                .and_then(|()| upload(&fallback))
            {
                Ok(()) => first,
                Err(e) => first.and(Err(e)),
            }
        }
        Command::Show { run } => show(&dir, &run),
        Command::Retry { runs, all } => retry(&dir, &runs, all),
        Command::Rm(remove) => rm(&dir, &remove),
        Command::Upload => upload(&dir),
        Command::UploadReport { file, force } => upload_report(&file, force),
        Command::GetRuns { serial, json, out } => get_runs(&serial, json, out),
        Command::Recover(options) => recover(&dir, &options),
    };
    match result {
        Ok(()) | Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Failed(e)) => {
            eprintln!("tofu-outbox: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Records and queues the runs that dead processes left in their journals (the JSON record and
/// the outbox: the outputs a test with an uploader gives them at its next start).
fn recover(outbox: &Path, options: &Recover) -> Result<()> {
    let mut json = match &options.records {
        Some(dir) => tofu_core::JsonOutput::to_dir(dir),
        None => tofu_core::JsonOutput::new(),
    };
    let journal = options
        .journal
        .clone()
        .unwrap_or_else(|| tofu_core::journal::journal_dir(json.dir()));
    let uploader = tofu_upload::Uploader::offline(
        outbox,
        "recovered by `tofu-outbox recover`; `tofu-outbox upload` sends it now",
    );
    let mut outputs: Vec<Box<dyn tofu_core::OutputCallback>> = vec![Box::new(uploader)];
    let recovered = tofu_core::recover_runs(&journal, &mut outputs, Some(&mut json));
    if recovered.is_empty() {
        say!("no run to recover in {}", journal.display());
    }
    let mut failed = 0;
    for run in recovered {
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                failed += 1;
                say!("{e}");
                continue;
            }
        };
        say!(
            "recovered {} {} ({}): {}",
            run.serial_number,
            run.procedure_id,
            run.outcome,
            run.journal.display()
        );
        for output in &run.outputs {
            match &output.result {
                Ok(location) => say!(
                    "  {}: {}",
                    output.name,
                    location.as_deref().unwrap_or("done")
                ),
                Err(e) => {
                    failed += 1;
                    say!("  {}: failed: {e}", output.name);
                }
            }
        }
    }
    if failed > 0 {
        return Err(Stop::Failed(format!(
            "{failed} recovery step(s) failed; the journals stay for the next try"
        )));
    }
    Ok(())
}

/// The outbox of the private fallback folder, if it holds runs (queued when the outbox could
/// not be written).
fn fallback_outbox() -> Option<PathBuf> {
    let dir = tofu_core::fs::fallback_dir().join("outbox");
    let default = std::fs::canonicalize(Outbox::default_dir()).ok();
    let has_runs = Outbox::open(&dir).is_ok_and(|o| o.ids().is_ok_and(|ids| !ids.is_empty()));
    (has_runs && std::fs::canonicalize(&dir).ok() != default).then_some(dir)
}

/// The client from the environment, with advice for the command line when something is missing.
fn client() -> Result<TofuPilotClient> {
    TofuPilotClient::from_env().map_err(|e| Stop::Failed(e.to_string()))
}

/// The entries `runs` names: each an entry id, else every entry of that serial number.
fn select(outbox: &Outbox, runs: &[String]) -> Result<Vec<Entry>> {
    let entries: Vec<Entry> = outbox
        .entries()?
        .into_iter()
        .filter_map(|e| e.ok())
        .collect();
    let mut chosen: Vec<Entry> = Vec::new();
    for run in runs {
        let found: Vec<&Entry> = match entries.iter().find(|e| &e.id == run) {
            Some(entry) => vec![entry],
            None => entries
                .iter()
                .filter(|e| &e.state.serial_number == run)
                .collect(),
        };
        if found.is_empty() {
            return Err(Stop::Failed(format!(
                "no run `{run}` in the outbox {} (neither an entry id nor a serial number; `tofu-outbox list` lists them)",
                outbox.dir().display()
            )));
        }
        for entry in found {
            if !chosen.iter().any(|c| c.id == entry.id) {
                chosen.push(entry.clone());
            }
        }
    }
    Ok(chosen)
}

fn state_word(entry: &Entry) -> &'static str {
    let s = &entry.state;
    match (s.status, &s.run_id) {
        (Status::Parked, _) => "parked",
        (Status::Pending, Some(_)) if s.files.iter().all(|f| f.uploaded) => {
            "uploaded, checking for a late copy"
        }
        (Status::Pending, Some(_)) => "created, files pending",
        (Status::Pending, None) => "pending",
    }
}

fn list(dir: &Path) -> Result<()> {
    let outbox = Outbox::open(dir)?;
    let entries = outbox.entries()?;
    if entries.is_empty() {
        say!("the outbox {} is empty", dir.display());
    }
    for entry in entries {
        match entry {
            Ok(e) => {
                let s = &e.state;
                let files = s.files.iter().filter(|f| f.uploaded).count();
                say!(
                    "{}  {}  {}  files {files}/{}  attempts {}{}{}",
                    e.id,
                    s.serial_number,
                    state_word(&e),
                    s.files.len(),
                    s.attempts,
                    if s.queued_without_key {
                        "  queued without an API key"
                    } else {
                        ""
                    },
                    s.last_error
                        .as_deref()
                        .map(|m| format!("  last error: {m}"))
                        .unwrap_or_default()
                );
            }
            Err(e) => say!("unreadable entry: {e}"),
        }
    }
    Ok(())
}

fn show(dir: &Path, run: &str) -> Result<()> {
    let outbox = Outbox::open(dir)?;
    for entry in select(&outbox, &[run.to_owned()])? {
        say!("{} ({})", entry.id, entry.dir.display());
        say!("{}", serde_json::to_string_pretty(&entry.state)?);
    }
    Ok(())
}

fn retry(dir: &Path, runs: &[String], all: bool) -> Result<()> {
    let outbox = Outbox::open(dir)?;
    let chosen = if all {
        let mut chosen = Vec::new();
        for entry in outbox.entries()? {
            match entry {
                Ok(e) => chosen.push(e),
                Err(e) => eprintln!("skipped: {e}"),
            }
        }
        chosen
    } else {
        select(&outbox, runs)?
    };
    let mut count = 0;
    for mut entry in chosen {
        // Under the entry's lock, on its state read again: an upload under way is left alone.
        match entry.update(|state| {
            state.status = Status::Pending;
            state.next_attempt_millis = 0;
        })? {
            Updated::Done => count += 1,
            Updated::Busy => say!(
                "{}: being uploaded by another process, left as it is",
                entry.id
            ),
            Updated::Gone => say!("{}: uploaded meanwhile", entry.id),
            _ => {}
        }
    }
    say!("{count} run(s) back in line; `tofu-outbox upload` sends them now");
    Ok(())
}

fn rm(dir: &Path, remove: &Remove) -> Result<()> {
    let outbox = Outbox::open(dir)?;
    let mut chosen = select(&outbox, &remove.runs)?;
    if remove.without_key {
        for entry in outbox.entries()?.into_iter().filter_map(|e| e.ok()) {
            if entry.state.queued_without_key && !chosen.iter().any(|c| c.id == entry.id) {
                chosen.push(entry);
            }
        }
    }
    if chosen.is_empty() {
        say!("nothing to remove");
        return Ok(());
    }
    for entry in &chosen {
        say!(
            "{}  {}  {}",
            entry.id,
            entry.state.serial_number,
            state_word(entry)
        );
    }
    if !remove.yes {
        eprint!(
            "remove these {} run(s) from the outbox? They will never be uploaded. [y/N] ",
            chosen.len()
        );
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer)? == 0 {
            return Err(Stop::Failed(
                "no answer (stdin is closed): nothing removed; add --yes to remove without asking"
                    .into(),
            ));
        }
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            say!("nothing removed");
            return Ok(());
        }
    }
    let mut removed = 0;
    for entry in chosen {
        let lock = match entry.try_lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                say!(
                    "{}: being uploaded by another process, not removed",
                    entry.id
                );
                continue;
            }
            Err(tofu_upload::uploader::OutboxError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        drop(lock);
        let id = entry.id.clone();
        match entry.remove() {
            Ok(()) => removed += 1,
            Err(tofu_upload::uploader::OutboxError::NotFound(_)) => {}
            Err(e) => say!("{id}: {e}"),
        }
    }
    say!("{removed} run(s) removed");
    Ok(())
}

fn upload(dir: &Path) -> Result<()> {
    let client = client()?;
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
            say!(
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
                say!("{id}: {e}");
                continue;
            }
        };
        match progress {
            Progress::Done { run_id, run_url } => {
                sent += 1;
                say!("{id}: uploaded as {}", run_url.unwrap_or(run_id));
            }
            Progress::Verifying {
                run_id, run_url, ..
            } => {
                sent += 1;
                say!(
                    "{id}: uploaded as {}; kept a little longer to look for a late second copy (the next `upload` finishes it)",
                    run_url.unwrap_or(run_id)
                );
            }
            Progress::Retry { error, .. } => {
                failed += 1;
                say!("{id}: failed, will be retried: {error}");
            }
            Progress::Settings { error, advice } => {
                let left = outbox.ids().map_or(0, |ids| ids.len());
                say!("{sent} uploaded; {left} run(s) left in the outbox, pending");
                return Err(Stop::Failed(format!(
                    "runs can't be uploaded: {advice}. They stay pending in the outbox and go up once this is fixed. The server said: {error}"
                )));
            }
            Progress::Parked { error } => {
                failed += 1;
                say!("{id}: refused and parked: {error}");
            }
            Progress::Busy => say!("{id}: being uploaded by another process"),
            _ => {}
        }
    }
    say!("{sent} uploaded, {failed} failed");
    if failed > 0 {
        Err(Stop::Failed(format!("{failed} run(s) not uploaded")))
    } else {
        Ok(())
    }
}

fn upload_report(path: &Path, force: bool) -> Result<()> {
    let client = client()?;
    if !force && let Some(run) = already_uploaded(&client, path)? {
        say!(
            "{} is already on TofuPilot: run {} (same unit and start time); not imported again (--force imports it anyway)",
            path.display(),
            run.id
        );
        return Ok(());
    }
    let imported = client.create_run_from_openhtf_report(path)?;
    say!(
        "run {} created from {}: {}",
        imported.id,
        path.display(),
        imported.url.as_deref().unwrap_or("(no url)")
    );
    for attachment in &imported.attachments {
        say!("  attached {}", attachment.name);
    }
    Ok(())
}

/// The run of the report's unit with the report's start time to the millisecond, if there is
/// one on TofuPilot. A report that can't be read is left to the import to refuse.
fn already_uploaded(client: &TofuPilotClient, path: &Path) -> Result<Option<tofu_upload::Run>> {
    #[derive(serde::Deserialize)]
    struct Head {
        dut_id: String,
        start_time_millis: i64,
    }
    let Ok(head) = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Head>(&b).map_err(|e| e.to_string()))
    else {
        return Ok(None);
    };
    if head.dut_id.is_empty() {
        return Ok(None);
    }
    let runs = client.get_runs(&head.dut_id)?;
    Ok(runs.into_iter().find(|run| {
        run.started_at
            .is_some_and(|t| t.timestamp_millis() == head.start_time_millis)
    }))
}

fn get_runs(serial: &str, json: bool, out: Option<PathBuf>) -> Result<()> {
    let client = client()?;
    let runs = client.get_runs(serial)?;
    if let Some(path) = out {
        let text = serde_json::to_string_pretty(&runs)?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        say!(
            "{} run(s) of {serial} written to {}",
            runs.len(),
            path.display()
        );
        return Ok(());
    }
    if json {
        say!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        say!("no run of {serial} on TofuPilot");
        return Ok(());
    }
    say!(
        "{:<24}  {:<8}  {:<16}  {:>5}  {}",
        "STARTED (UTC)",
        "OUTCOME",
        "PROCEDURE",
        "FILES",
        "RUN"
    );
    for run in &runs {
        let started = run.started_at.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        );
        let outcome = run
            .outcome
            .map_or_else(|| "-".to_owned(), |o| format!("{o:?}").to_ascii_uppercase());
        let procedure = run
            .procedure
            .as_ref()
            .and_then(|p| p.id.clone().or_else(|| p.name.clone()))
            .unwrap_or_else(|| "-".to_owned());
        say!(
            "{started:<24}  {outcome:<8}  {procedure:<16}  {:>5}  {}",
            run.attachments.len(),
            run.id
        );
    }
    say!("{} run(s) of {serial}", runs.len());
    Ok(())
}
