//! The outbox: every finished run, on disk, until TofuPilot has all of it.
//!
//! Its public face is for reading it (a station page, `tofu-outbox list`):
//! [`Outbox::open`]`(dir)?.`[`entries`](Outbox::entries)`()`, and of each [`Entry`] its `id` and
//! [`EntryState`]'s `serial_number`, `status` ([`Status::Pending`] or [`Status::Parked`]),
//! `attempts` and `last_error`. Writing entries is the uploader's job.
//!
//! One folder per run, under the outbox folder:
//!
//! ```text
//! outbox/
//!   1795620310889-PCB01A0001-4242-0/
//!     request.json   the v1 create_run body (written once)
//!     request_v2.json the v2 body, richer (written once; absent in entries of older versions,
//!                    which v2 sends from request.json)
//!     state.json     progress: run id once created, attachments uploaded, attempts, errors
//!     files/000-…    the files to attach (the phases' attachments, then the JSON report)
//!     lock           held (advisory lock) by the process uploading this run
//! ```
//!
//! An entry appears whole or not at all (it is written in a hidden folder, synced, then
//! renamed), and every change of `state.json` is an atomic replace, so a process killed at any
//! moment leaves an entry the next one can finish. A finished entry is deleted.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::mapping::FileToAttach;
use crate::types::CreateRun;

/// The environment variable naming the outbox folder.
pub const OUTBOX_DIR_ENV: &str = "TOFU_OUTBOX_DIR";

const REQUEST: &str = "request.json";
const REQUEST_V2: &str = "request_v2.json";
const STATE: &str = "state.json";
const FILES: &str = "files";
const LOCK: &str = "lock";

/// The folder of runs waiting for TofuPilot.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// An outbox operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A file of the outbox could not be read or written.
    #[error("outbox {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file of the outbox is not what this version writes (truncated, corrupted, other
    /// version).
    #[error("outbox {}: unreadable ({reason})", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No entry of that id.
    #[error("no run `{0}` in the outbox")]
    NotFound(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for (another) attempt.
    Pending,
    /// Refused by TofuPilot for a reason a retry won't fix; waits for `retry` by hand.
    Parked,
}

/// One file to attach, and whether it is on TofuPilot yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileState {
    /// The file's name in `files/`.
    pub file: String,
    /// The name shown in TofuPilot.
    pub name: String,
    /// Its MIME type.
    pub mimetype: Option<String>,
    /// Uploaded and linked to the run.
    pub uploaded: bool,
    /// v2: the file is stored and finalized under this upload id, not linked to the run yet
    /// (the next attempt links it without sending the bytes again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// The progress of one run, kept in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryState {
    /// Format version.
    pub version: u32,
    /// The unit's serial number.
    pub serial_number: String,
    /// The procedure.
    pub procedure_id: Option<String>,
    /// When the run started (epoch ms), to recognise it on the server.
    pub started_at_millis: Option<i64>,
    /// Pending or parked.
    pub status: Status,
    /// The run's id on TofuPilot, once created.
    pub run_id: Option<String>,
    /// The run's page on TofuPilot, once created.
    pub run_url: Option<String>,
    /// A create request was sent and its answer may have been lost: look for the run before
    /// creating it again.
    pub create_sent: bool,
    /// The files to attach.
    pub files: Vec<FileState>,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before this time (epoch ms).
    pub next_attempt_millis: i64,
    /// The last error, as TofuPilot or the network gave it.
    pub last_error: Option<String>,
    /// A create was sent again after a look-up found nothing: the earlier one may still be
    /// stored by the server. Until this time (epoch ms) the run's copies are looked for and
    /// deleted before the entry is done.
    #[serde(default)]
    pub verify_until_millis: Option<i64>,
    /// Queued while no API key was set: listed when a key first uploads it.
    #[serde(default)]
    pub queued_without_key: bool,
    /// The API this entry's run is being sent through, fixed (saved) before its first create
    /// is sent, so that a run is never created through both; `None` until then (the uploader's
    /// version is used). Entries of older versions have none.
    #[serde(default)]
    pub api_version: Option<crate::ApiVersion>,
    /// v2's idempotency key for this run, made when the run is queued (or, for an entry of an
    /// older version, saved before its first v2 send) and sent with every create of it.
    #[serde(default)]
    pub client_run_ref: Option<String>,
}

impl EntryState {
    /// The API this entry goes through with an uploader set to `configured`: the one its run
    /// was first sent through, else `configured`.
    pub fn api_version_with(&self, configured: crate::ApiVersion) -> crate::ApiVersion {
        self.api_version.unwrap_or(configured)
    }
}

/// A new idempotency key for the run of entry `id`: the entry's id (time, unit, process,
/// counter) and 64 random bits, so that two stations never make the same one.
pub(crate) fn new_client_run_ref(id: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(id.as_bytes());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let id: String = id.chars().take(80).collect();
    format!("tofu-{id}-{:016x}", hasher.finish())
}

const VERSION: u32 = 1;

/// A run in the outbox.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its id (its folder's name).
    pub id: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Its progress.
    pub state: EntryState,
}

/// What [`Entry::update`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Updated {
    /// Changed and saved.
    Done,
    /// Another process holds the entry (it is being uploaded): left as it is.
    Busy,
    /// The entry is gone (uploaded and deleted by another process).
    Gone,
}

/// The lock on an entry: while it is held, no other process uploads the entry.
#[derive(Debug)]
pub struct EntryLock {
    _file: File,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Outbox {
    /// The outbox in `dir`, created if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, OutboxError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(Outbox { dir })
    }

    /// `$TOFU_OUTBOX_DIR`, else `outbox` in the record folder (`$TOFU_OUTPUT_DIR`, else
    /// `./tofu-records`).
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(OUTBOX_DIR_ENV).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        tofu_core::JsonOutput::new().dir().join("outbox")
    }

    /// The outbox's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds a run: written whole in a hidden folder, synced, then renamed into place.
    pub fn enqueue(
        &self,
        request: &CreateRun,
        files: &[FileToAttach],
    ) -> Result<Entry, OutboxError> {
        self.enqueue_marked(request, None, files, false, false)
    }

    /// [`enqueue`](Self::enqueue), marking the run as queued while no API key was set, and
    /// (`look_up_first`) as maybe on TofuPilot already: its first attempt looks for it (same
    /// unit and start time) before creating it, as after a lost answer. For a run recovered from
    /// a journal, which its dead process may have queued, or even uploaded, already.
    pub fn enqueue_marked(
        &self,
        request: &CreateRun,
        request_v2: Option<&crate::v2::CreateRun>,
        files: &[FileToAttach],
        without_key: bool,
        look_up_first: bool,
    ) -> Result<Entry, OutboxError> {
        let serial = &request.unit_under_test.serial_number;
        let started = request.started_at.map(|t| t.timestamp_millis());
        let id = format!(
            "{}-{}-{}-{}",
            started.unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
            tofu_core::fs::safe_file_name(serial)
                .chars()
                .take(40)
                .collect::<String>(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = self.dir.join(format!(".{id}.tmp"));
        let result = self
            .write_entry(&tmp, &id, request, request_v2, files, started, without_key)
            .and_then(|mut state| {
                if look_up_first {
                    state.create_sent = true;
                    write_state(&tmp, &state)?;
                }
                Ok(state)
            });
        let state = match result {
            Ok(state) => state,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let dir = self.dir.join(&id);
        fs::rename(&tmp, &dir).map_err(io_error(&dir))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(Entry { id, dir, state })
    }

    #[allow(clippy::too_many_arguments)]
    fn write_entry(
        &self,
        tmp: &Path,
        id: &str,
        request: &CreateRun,
        request_v2: Option<&crate::v2::CreateRun>,
        files: &[FileToAttach],
        started: Option<i64>,
        without_key: bool,
    ) -> Result<EntryState, OutboxError> {
        // Created here, by us: a folder or link someone planted at this name is an error.
        fs::create_dir(tmp).map_err(io_error(tmp))?;
        let files_dir = tmp.join(FILES);
        fs::create_dir(&files_dir).map_err(io_error(&files_dir))?;
        let mut states = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let file = format!("{i:03}-{}", tofu_core::fs::safe_file_name(&f.name));
            let path = files_dir.join(&file);
            write_synced(&path, &f.data)?;
            states.push(FileState {
                file,
                name: f.name.clone(),
                mimetype: f.mimetype.clone(),
                uploaded: false,
                upload_id: None,
            });
        }
        let body = serde_json::to_vec(request).map_err(|e| OutboxError::Corrupt {
            path: tmp.join(REQUEST),
            reason: format!("the request can't be encoded: {e}"),
        })?;
        write_synced(&tmp.join(REQUEST), &body)?;
        if let Some(v2) = request_v2 {
            let body = serde_json::to_vec(v2).map_err(|e| OutboxError::Corrupt {
                path: tmp.join(REQUEST_V2),
                reason: format!("the request can't be encoded: {e}"),
            })?;
            write_synced(&tmp.join(REQUEST_V2), &body)?;
        }
        let state = EntryState {
            version: VERSION,
            serial_number: request.unit_under_test.serial_number.clone(),
            procedure_id: request.procedure_id.clone(),
            started_at_millis: started,
            status: Status::Pending,
            run_id: None,
            run_url: None,
            create_sent: false,
            files: states,
            attempts: 0,
            next_attempt_millis: 0,
            last_error: None,
            verify_until_millis: None,
            queued_without_key: without_key,
            api_version: None,
            client_run_ref: Some(new_client_run_ref(id)),
        };
        write_state(tmp, &state)?;
        write_synced(&tmp.join(LOCK), b"")?;
        if let Ok(d) = File::open(tmp) {
            let _ = d.sync_all();
        }
        Ok(state)
    }

    /// Removes what processes killed mid-way left behind: hidden folders of entries being
    /// written (`.<id>.tmp`) or deleted (`.<id>.done`) that haven't changed for `older_than`
    /// (so that one another process is writing now is left alone). They are never entries:
    /// a `.tmp` was not complete, a `.done` was uploaded. Returns how many were removed.
    pub fn remove_leftovers(&self, older_than: std::time::Duration) -> usize {
        let Ok(read) = fs::read_dir(&self.dir) else {
            return 0;
        };
        read.filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".done"))
            })
            .filter(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= older_than)
            })
            .filter(|e| fs::remove_dir_all(e.path()).is_ok())
            .count()
    }

    /// The ids of every entry, oldest first, without reading them (an entry that can't be read
    /// is listed too). The hidden folders of entries being written or deleted are not entries.
    pub fn ids(&self) -> Result<Vec<String>, OutboxError> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        ids.sort_by_cached_key(|id| {
            (
                id.split('-').next().and_then(|t| t.parse::<i64>().ok()),
                id.clone(),
            )
        });
        Ok(ids)
    }

    /// Every entry, oldest first. Entries that can't be read are returned as errors, in place;
    /// entries finished by another process since they were listed are left out.
    pub fn entries(&self) -> Result<Vec<Result<Entry, OutboxError>>, OutboxError> {
        Ok(self
            .ids()?
            .iter()
            .map(|id| self.entry(id))
            .filter(|e| !matches!(e, Err(OutboxError::NotFound(_))))
            .collect())
    }

    /// The entry `id`.
    pub fn entry(&self, id: &str) -> Result<Entry, OutboxError> {
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return Err(OutboxError::NotFound(id.to_owned()));
        }
        let dir = self.dir.join(id);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(OutboxError::NotFound(id.to_owned()));
        }
        let state = match read_state(&dir) {
            // Finished (deleted) by another process since it was listed.
            Err(OutboxError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && !dir.exists() =>
            {
                return Err(OutboxError::NotFound(id.to_owned()));
            }
            other => other?,
        };
        Ok(Entry {
            id: id.to_owned(),
            dir,
            state,
        })
    }
}

impl Entry {
    /// Takes the entry's lock, or `None` when another process holds it;
    /// [`OutboxError::NotFound`] when the entry is gone (finished by another process).
    pub fn try_lock(&self) -> Result<Option<EntryLock>, OutboxError> {
        let path = self.dir.join(LOCK);
        refuse_link(&path)?;
        let file = match fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OutboxError::NotFound(self.id.clone()));
            }
            Err(source) => return Err(OutboxError::Io { path, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(EntryLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(source)) => Err(OutboxError::Io { path, source }),
        }
    }

    /// Changes the entry's state under its lock, on the state read again under it (another
    /// process may have moved it on since it was listed), and saves it.
    pub fn update(&mut self, change: impl FnOnce(&mut EntryState)) -> Result<Updated, OutboxError> {
        let _lock = match self.try_lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => return Ok(Updated::Busy),
            Err(OutboxError::NotFound(_)) => return Ok(Updated::Gone),
            Err(e) => return Err(e),
        };
        match self.reload() {
            Ok(()) => {}
            Err(OutboxError::NotFound(_)) => return Ok(Updated::Gone),
            Err(e) => return Err(e),
        }
        change(&mut self.state);
        self.save()?;
        Ok(Updated::Done)
    }

    /// The create_run request.
    pub(crate) fn request(&self) -> Result<CreateRun, OutboxError> {
        let path = self.dir.join(REQUEST);
        let bytes = read_no_follow(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| OutboxError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// The v2 create request: `request_v2.json`, else (an entry of an older version, or a run
    /// recovered from a journal) the v1 request made into a v2 one.
    pub(crate) fn request_v2(&self) -> Result<crate::v2::CreateRun, OutboxError> {
        let path = self.dir.join(REQUEST_V2);
        match read_no_follow(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OutboxError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(OutboxError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(crate::v2::from_v1(&self.request()?))
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the state again from `state.json` (another process may have moved the entry on);
    /// [`OutboxError::NotFound`] when the entry is gone.
    pub(crate) fn reload(&mut self) -> Result<(), OutboxError> {
        if !self.dir.is_dir() {
            return Err(OutboxError::NotFound(self.id.clone()));
        }
        self.state = read_state(&self.dir)?;
        Ok(())
    }

    /// The path of an attached file.
    pub fn file_path(&self, file: &FileState) -> PathBuf {
        self.dir.join(FILES).join(&file.file)
    }

    /// The bytes of an attached file. A symbolic link (tofu never makes one in an entry) is
    /// refused: it could lead to any file the station can read.
    pub(crate) fn read_file(&self, file: &FileState) -> Result<Vec<u8>, OutboxError> {
        refuse_link(&self.dir.join(FILES))?;
        read_no_follow(&self.file_path(file))
    }

    /// Saves the state (atomic replace).
    pub fn save(&self) -> Result<(), OutboxError> {
        write_state(&self.dir, &self.state)
    }

    /// Deletes the entry: its run is on TofuPilot with all its files.
    pub fn remove(self) -> Result<(), OutboxError> {
        // Renamed first, so a crash mid-deletion leaves a hidden folder, not a broken entry.
        let parent = self.dir.parent().map(Path::to_owned).unwrap_or_default();
        let trash = parent.join(format!(".{}.done", self.id));
        match fs::rename(&self.dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OutboxError::NotFound(self.id));
            }
            Err(e) => {
                return Err(OutboxError::Io {
                    path: self.dir,
                    source: e,
                });
            }
        }
        fs::remove_dir_all(&trash).map_err(io_error(&trash))
    }
}

/// An error when `path` is a symbolic link (tofu never makes one in the outbox).
fn refuse_link(path: &Path) -> Result<(), OutboxError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(OutboxError::Corrupt {
            path: path.to_owned(),
            reason: "it is a symbolic link, which tofu never makes in the outbox: refused (it \
                     could lead to any file the station can read)"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// Reads a file of the outbox, refusing a symbolic link, and checking that the file opened is
/// the one looked at (no link swapped in between).
fn read_no_follow(path: &Path) -> Result<Vec<u8>, OutboxError> {
    use std::io::Read as _;
    refuse_link(path)?;
    let before = fs::symlink_metadata(path).map_err(io_error(path))?;
    let mut file = File::open(path).map_err(io_error(path))?;
    let opened = file.metadata().map_err(io_error(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if (before.dev(), before.ino()) != (opened.dev(), opened.ino()) {
            return Err(OutboxError::Corrupt {
                path: path.to_owned(),
                reason: "it was replaced while it was opened (a symbolic link?): refused".into(),
            });
        }
    }
    if !opened.is_file() || !before.is_file() {
        return Err(OutboxError::Corrupt {
            path: path.to_owned(),
            reason: "not a regular file".into(),
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(io_error(path))?;
    Ok(bytes)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), OutboxError> {
    // A new file of a folder made by us: created, never opened through a planted link.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(data).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

fn write_state(dir: &Path, state: &EntryState) -> Result<(), OutboxError> {
    let path = dir.join(STATE);
    tofu_core::fs::replace_file(&path, |out| {
        serde_json::to_writer_pretty(&mut *out, state).map_err(io::Error::other)?;
        out.write_all(b"\n")
    })
    .map_err(io_error(&path))
}

fn read_state(dir: &Path) -> Result<EntryState, OutboxError> {
    let path = dir.join(STATE);
    let bytes = read_no_follow(&path)?;
    let state: EntryState = serde_json::from_slice(&bytes).map_err(|e| OutboxError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if state.version != VERSION {
        return Err(OutboxError::Corrupt {
            path,
            reason: format!(
                "format version {} (this tofu reads {VERSION})",
                state.version
            ),
        });
    }
    // The files to send are in `files/`: a name that leads elsewhere (`../../etc/passwd`, an
    // absolute path) would upload a file that is not the run's.
    if let Some((i, file)) = state
        .files
        .iter()
        .enumerate()
        .find(|(_, f)| !is_plain_file_name(&f.file))
    {
        return Err(OutboxError::Corrupt {
            path,
            reason: format!(
                "files[{i}].file {:?} is not the name of a file in {FILES}/",
                file.file
            ),
        });
    }
    Ok(state)
}

/// A name of one file in a folder: not empty, not `.` or `..`, no separator, no NUL.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}
