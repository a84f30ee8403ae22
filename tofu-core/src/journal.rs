//! The run journal: the events of a running test appended to a file as they happen, so that a
//! run whose process dies (SIGKILL, a stack overflow, out of memory, a power cut after the last
//! sync) can still be recovered as a record.
//!
//! One file per run, `<start_ms>-<pid>-<n>.journal` in the journal folder (`$TOFU_JOURNAL_DIR`,
//! else `journal/` in the record folder), one JSON object per line: a header (the unit, the
//! metadata), the events (but the measurements validated at a phase's end: its record has
//! them), each phase's full record when it ends, the run's end, and each output that handled
//! the record. Lines are written (not synced) once per phase, when the next phase starts
//! (before its code runs), and before the run waits or runs other user code (a `run_if`, a
//! plug's teardown), so a dead process loses nothing the kernel has; the file is synced at
//! the run's end. The run holds an
//! exclusive lock on its journal while it lives; a journal nobody holds belongs to a dead
//! process, and [`recover`] turns it into a record. Once the outputs have the record, the
//! journal is removed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::event::{Event, EventKind};
use crate::record::{Metadata, PhaseRecord, SlotRecord, TestRecord};

/// The environment variable naming the journal folder.
pub const JOURNAL_DIR_ENV: &str = "TOFU_JOURNAL_DIR";

/// The journal folder: `$TOFU_JOURNAL_DIR`, else `.tofu-journal` in `record_dir` (removed
/// whenever no run is under way).
pub fn journal_dir(record_dir: &Path) -> PathBuf {
    std::env::var_os(JOURNAL_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| record_dir.join(DEFAULT_DIR_NAME), PathBuf::from)
}

/// A running test's journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
    /// A write failed: the journal is given up (the run goes on).
    broken: bool,
}

/// Whether a phase's JSON is too big to make in memory before writing it: its sweeps hold more
/// numbers than fit in [`KEPT_PHASE_JSON`] (a number takes at least a byte and a comma).
fn is_big(record: &PhaseRecord) -> bool {
    let numbers: usize = record
        .measurements
        .iter()
        .filter_map(|m| m.measured_value.as_ref()?.as_columns())
        .map(|c| c.len() * (c.dimension_count() + 1))
        .sum();
    numbers * 2 > KEPT_PHASE_JSON
}

/// The longest phase JSON a run keeps for its JSON record (a sweep's phase is written again).
pub(crate) const KEPT_PHASE_JSON: usize = 1 << 20;

/// At most this much phase JSON is kept for a run's JSON record (beyond, phases are written
/// again).
const KEPT_JSON: usize = 64 << 20;

/// The first line: what the record needs besides the phases.
#[derive(Serialize)]
struct Header<'a> {
    journal: u32,
    pid: u32,
    dut_id: &'a str,
    start_time_millis: i64,
    station_id: &'a str,
    metadata: &'a Metadata,
    slot: Option<&'a SlotRecord>,
}

#[derive(Serialize)]
enum Line<'a> {
    #[serde(rename = "start")]
    Start(Header<'a>),
    #[serde(rename = "event")]
    Event(&'a Event),
    #[serde(rename = "subtest")]
    Subtest(&'a serde_json::Value),
    #[serde(rename = "end")]
    End(End<'a>),
    #[serde(rename = "output")]
    Output(&'a str),
}

#[derive(Serialize)]
struct End<'a> {
    dut_id: &'a str,
    start_time_millis: i64,
    end_time_millis: i64,
    outcome: crate::outcome::Outcome,
    outcome_details: &'a [crate::outcome::OutcomeDetail],
    marginal: Option<bool>,
}

/// What the journal's header says of a run, at its start.
pub(crate) struct Start<'a> {
    pub(crate) dut_id: &'a str,
    pub(crate) start_time_millis: i64,
    pub(crate) station_id: &'a str,
    pub(crate) metadata: &'a Metadata,
    pub(crate) slot: Option<&'a SlotRecord>,
}

impl Journal {
    /// Creates a run's journal in `dir` (made private to the user if new) and locks it.
    pub(crate) fn create(dir: &Path, start: &Start<'_>) -> io::Result<Journal> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{}.journal",
            start.start_time_millis,
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(&name);
        // Made under another name, locked and given its header, then renamed: a recovery
        // never sees a journal that is not yet locked.
        let draft = dir.join(format!(".{name}.new"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // Another run may remove the folder when it empties it: make it again then.
        let mut tries = 0;
        let file = loop {
            create_private_dir(dir)?;
            match options.open(&draft) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => tries += 1,
                other => break other?,
            }
        };
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => e,
            std::fs::TryLockError::WouldBlock => io::Error::other("locked by another process"),
        })?;
        let mut journal = Journal {
            path: draft,
            out: BufWriter::with_capacity(1 << 16, file),
            broken: false,
        };
        journal.line(&Line::Start(Header {
            journal: 1,
            pid: std::process::id(),
            dut_id: start.dut_id,
            start_time_millis: start.start_time_millis,
            station_id: start.station_id,
            metadata: start.metadata,
            slot: start.slot,
        }));
        journal.flush();
        if journal.broken {
            let _ = std::fs::remove_file(&journal.path);
            return Err(io::Error::other("its header could not be written"));
        }
        if let Err(e) = std::fs::rename(&journal.path, &path) {
            let _ = std::fs::remove_file(&journal.path);
            return Err(e);
        }
        journal.path = path;
        Ok(journal)
    }

    fn line(&mut self, line: &Line<'_>) {
        if self.broken {
            return;
        }
        let written = serde_json::to_writer(&mut self.out, line)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(e) = written {
            self.give_up(&e);
        }
    }

    fn give_up(&mut self, e: &io::Error) {
        self.broken = true;
        // Not through `tracing`: the journal is written while the run's logs are.
        eprintln!(
            "the run journal {} can't be written ({e}); the run goes on without it",
            self.path.display()
        );
    }

    /// Appends an event (buffered, but a phase's start).
    pub(crate) fn event(&mut self, event: &Event) {
        match event.kind {
            // A phase's end is written whole by `phase`, the run's by `end`; the measurements
            // validated at a phase's end are in the phase's record, the line that follows (and
            // are made only when someone observes: the journal is the same either way).
            EventKind::PhaseEnded { .. }
            | EventKind::RunEnded { .. }
            | EventKind::MeasurementSet {
                outcome: Some(_), ..
            } => {}
            // Handed to the kernel at once: a recovery says which phase the process died in.
            EventKind::PhaseStarted { .. } => {
                self.line(&Line::Event(event));
                self.flush();
            }
            _ => self.line(&Line::Event(event)),
        }
    }

    /// Appends a phase's full record. It reaches the kernel with the next phase's start (one
    /// write per phase), or before the run waits or runs other user code
    /// ([`Journal::flush`]), or at the run's end.
    ///
    /// The record's JSON (the JSON record's bytes for this phase) is appended to `kept`, and
    /// where it is returned, unless it is over [`KEPT_PHASE_JSON`] long or `kept` would pass
    /// [`KEPT_JSON`] (then `kept` is as it was).
    pub(crate) fn phase(
        &mut self,
        record: &PhaseRecord,
        kept: &mut Vec<u8>,
    ) -> Option<std::ops::Range<usize>> {
        if self.broken {
            return None;
        }
        if is_big(record) {
            // Streamed to the file, not made in memory first (a sweep's million points).
            let written = self
                .out
                .write_all(b"{\"phase\":")
                .and_then(|()| crate::record_json::write_phase(&mut self.out, record))
                .and_then(|()| self.out.write_all(b"}\n"));
            if let Err(e) = written {
                self.give_up(&e);
            }
            return None;
        }
        // `Line::Phase`, written by hand as the JSON record writes its phases.
        let start = kept.len();
        let written = crate::record_json::write_phase(kept, record)
            .and_then(|()| self.out.write_all(b"{\"phase\":"))
            .and_then(|()| self.out.write_all(kept.get(start..).unwrap_or_default()))
            .and_then(|()| self.out.write_all(b"}\n"));
        let end = kept.len();
        if let Err(e) = written {
            self.give_up(&e);
            kept.truncate(start);
            return None;
        }
        if end - start > KEPT_PHASE_JSON || end > KEPT_JSON {
            kept.truncate(start);
            return None;
        }
        Some(start..end)
    }

    /// Appends a subtest's record.
    pub(crate) fn subtest(&mut self, subtest: &serde_json::Value) {
        self.line(&Line::Subtest(subtest));
    }

    /// Appends the run's end and syncs the file.
    pub(crate) fn end(&mut self, record: &TestRecord) {
        self.line(&Line::End(End {
            dut_id: &record.dut_id,
            start_time_millis: record.start_time_millis,
            end_time_millis: record.end_time_millis,
            outcome: record.outcome,
            outcome_details: &record.outcome_details,
            marginal: record.marginal,
        }));
        self.sync();
    }

    /// Notes that an output handled the record.
    pub(crate) fn output_done(&mut self, name: &str) {
        self.line(&Line::Output(name));
        self.sync();
    }

    /// Hands what is buffered to the kernel (a dead process loses nothing the kernel has).
    pub(crate) fn flush(&mut self) {
        if !self.broken
            && let Err(e) = self.out.flush()
        {
            self.give_up(&e);
        }
    }

    fn sync(&mut self) {
        self.flush();
        if !self.broken
            && let Err(e) = self.out.get_ref().sync_data()
        {
            self.give_up(&e);
        }
    }

    /// The run is over and its outputs have the record: the journal goes, and its folder if
    /// no other run uses it.
    pub(crate) fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(
                "can't remove the run journal {}: {e}; the next start finds the run done and removes it",
                self.path.display()
            );
        }
        remove_if_empty(&self.path);
    }
}

/// The default journal folder's name.
const DEFAULT_DIR_NAME: &str = ".tofu-journal";

/// Removes the default journal folder of `journal` if nothing else is in it (another run's
/// journal keeps it); a folder the user named stays.
fn remove_if_empty(journal: &Path) {
    if let Some(dir) = journal.parent()
        && dir.file_name().is_some_and(|n| n == DEFAULT_DIR_NAME)
    {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Creates `dir` (and its parents) if missing; a new journal folder is readable by its user
/// only.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A run found in the journal of a process that died, turned into a record.
#[derive(Debug)]
pub struct RecoveredRun {
    /// The journal it came from.
    pub journal: PathBuf,
    /// The record, in OpenHTF's JSON form: ERROR (the process ended during the run) with every
    /// phase that ended before, or the run's own outcome when it had ended.
    pub record: serde_json::Value,
    /// The outputs that already handled the record before the process died.
    pub done: Vec<String>,
    file: File,
}

/// A journal that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// Reading the folder or a file failed.
    #[error("can't read the run journal {}: {source}", path.display())]
    Read {
        /// The journal (or the folder).
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The journal has no readable header: it was set aside as `.damaged`.
    #[error("the run journal {} is damaged ({why}); it was set aside", path.display())]
    Damaged {
        /// The journal.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

impl RecoveredRun {
    /// Whether the output `name` already handled the record.
    pub fn is_done(&self, name: &str) -> bool {
        self.done.iter().any(|d| d == name)
    }

    /// Notes, in the journal, that the output `name` handled the record (so a recovery cut
    /// short does not hand it over twice).
    pub fn mark_done(&mut self, name: &str) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Line::Output(name)).map_err(io::Error::from)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.done.push(name.to_owned());
        Ok(())
    }

    /// Every output has the record: the journal goes (and its folder, if empty).
    pub fn finish(self) -> io::Result<()> {
        std::fs::remove_file(&self.journal)?;
        remove_if_empty(&self.journal);
        Ok(())
    }
}

/// Finds the journals in `dir` that no live process holds, and turns each into a record.
/// Each returned run keeps its journal locked until it is dropped or finished.
pub fn recover(dir: &Path) -> Vec<Result<RecoveredRun, RecoverError>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(source) => {
            return vec![Err(RecoverError::Read {
                path: dir.to_owned(),
                source,
            })];
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    // A draft no live process holds: its process died before its first phase was written.
    for draft in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "new"))
    {
        if let Ok(file) = File::open(draft)
            && file.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(draft);
        }
    }
    paths.retain(|p| p.extension().is_some_and(|e| e == "journal"));
    paths.into_iter().filter_map(|p| recover_one(&p)).collect()
}

/// `None` when a live process holds the journal (or it vanished meanwhile).
fn recover_one(path: &Path) -> Option<Result<RecoveredRun, RecoverError>> {
    // Never follow a link someone else planted.
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return None;
    }
    let read_error = |source| RecoverError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(read_error(e))),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return None,
        Err(std::fs::TryLockError::Error(e)) => return Some(Err(read_error(e))),
    }
    // Locked only once another recovery had finished it and removed it: done already.
    if !still_at(&file, path) {
        return None;
    }
    let lines = match read_lines(&file) {
        Ok(lines) => lines,
        Err(e) => return Some(Err(read_error(e))),
    };
    Some(match crate::recovery::rebuild(&lines) {
        Ok((record, done)) => Ok(RecoveredRun {
            journal: path.to_owned(),
            record,
            done,
            file,
        }),
        Err(why) => {
            let damaged = path.with_extension("journal.damaged");
            let _ = std::fs::rename(path, &damaged);
            Err(RecoverError::Damaged { path: damaged, why })
        }
    })
}

/// Whether `file` is still the file at `path` (not removed, nor replaced, since it was opened).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(opened), Ok(there)) => opened.dev() == there.dev() && opened.ino() == there.ino(),
        _ => false,
    }
}

/// Whether the journal is still there (a file open here can't be removed).
#[cfg(not(unix))]
fn still_at(_file: &File, path: &Path) -> bool {
    path.is_file()
}

/// The journal's lines that parse (a line cut by the process's death is dropped).
fn read_lines(file: &File) -> io::Result<Vec<serde_json::Value>> {
    let mut lines = Vec::new();
    for line in io::BufReader::new(file).split(b'\n') {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line?) {
            lines.push(value);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_journal_removed_after_it_was_opened_is_not_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1-2-3.journal");
        std::fs::write(&path, "{}\n").unwrap();
        let file = File::open(&path).unwrap();
        assert!(still_at(&file, &path));
        // Another recovery finished it meanwhile.
        std::fs::remove_file(&path).unwrap();
        assert!(!still_at(&file, &path));
        // And a new journal under the same name is another file.
        std::fs::write(&path, "{}\n").unwrap();
        let kept = File::open(&path).unwrap();
        assert!(still_at(&kept, &path));
    }
}
