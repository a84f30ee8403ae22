//! The operator's station page: served by the test program itself, one call on a
//! [`Test`] or a [`Station`].
//!
//! ```no_run
//! use tofu_core::prelude::*;
//! use tofu_station::Serve as _;
//!
//! # #[phase] fn check() {}
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut station = Station::new(4, |_slot| Test::new("FVT1").phases([check]));
//! let page = station.serve("127.0.0.1:8080")?; // prints the page's URL
//! station.run_continuously(|slot| {
//!     tofu_core::prompt::serial_number()
//!         .message(format!("Scan the board in {slot}"))
//!         .ask()
//! });
//! drop(page);
//! # Ok(()) }
//! ```
//!
//! The page shows a card per slot (serial number, phase n of N, elapsed time, the last
//! measurement, a colour per state, a PASS / FAIL / ERROR / ABORTED banner that stays until the
//! next unit, with the failing measurements), the operator's prompts (answered by typing or
//! scanning, Enter sends), STOP per slot and for the station, the shared instrument a slot
//! waits for, a live chart of a sweep, the recent runs with their HTML reports, and the upload
//! queue. Its files are part of the binary: nothing to install, no network.
//!
//! The HTTP API (stable; see the README):
//!
//! | request | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /events` | the events as server-sent events (`id:` = `seq`; resume with `Last-Event-ID`) |
//! | `GET /api/state` | every slot's state (the events' snapshot) |
//! | `POST /api/slots/{slot}/start` | `{"serial": "…"}`: the unit for a slot waiting for one |
//! | `POST /api/prompts/{id}` | `{"value": …}`: answers a prompt |
//! | `POST /api/slots/{slot}/abort` | aborts the slot's run |
//! | `POST /api/abort` | aborts every run |
//! | `GET /api/runs`, `GET /reports/{file}.html` | the recent records, their HTML reports |
//! | `GET /api/uploads` | the upload queue |
//!
//! Errors are JSON: `{"error": "…", "field": "serial", "value": …}`.
//!
//! Security: it binds 127.0.0.1 unless told otherwise, and then answers loopback host names
//! only. On any other address a token is required (given with [`StationPage::token`], else
//! generated and printed in the URL). Every POST from a browser must come from the page
//! itself (`Origin`). Everything that comes from a run (serial numbers, names, log messages,
//! prompt text) is put on the page as text, never as HTML.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod app;
mod files;
mod guard;
mod hub;
mod json;
mod server;
mod stream;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use tofu_core::{Commands, EventBus, Station, Test};

pub use hub::{REPLAY_BYTES, REPLAY_EVENTS};
pub use server::PageServer;

/// The page could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address names no socket address.
    #[error("can't serve the station page on {addr:?}: not an address (e.g. 127.0.0.1:8080)")]
    Address {
        /// The address given.
        addr: String,
    },
    /// The address can't be listened on (in use, not this machine's).
    #[error("can't serve the station page on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A token must be letters, digits, `-` and `_`, and not empty.
    #[error("the station page's token must be letters, digits, '-' or '_', and not empty")]
    BadToken,
    /// The server's thread or runtime could not start.
    #[error("can't start the station page: {0}")]
    Io(std::io::Error),
}

/// How to serve the page: the address, the token, where the records and the upload queue
/// are. Made by [`Serve::page`] (or [`StationPage::new`]), started by
/// [`StationPage::start`].
#[derive(Debug)]
#[must_use]
pub struct StationPage {
    events: Arc<EventBus>,
    commands: Commands,
    addr: SocketAddr,
    token: Option<String>,
    records: PathBuf,
    outbox: PathBuf,
    announce: bool,
    /// The replay buffer's most events and bytes.
    replay: (usize, usize),
}

impl StationPage {
    /// The page of the test or station whose events and commands these are, on
    /// 127.0.0.1:8080; records from `$TOFU_OUTPUT_DIR` (else `./tofu-records`), the upload
    /// queue from `$TOFU_OUTBOX_DIR` (else `outbox` in the record folder).
    pub fn new(events: Arc<EventBus>, commands: Commands) -> Self {
        StationPage {
            events,
            commands,
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            records: tofu_core::JsonOutput::new().dir().to_path_buf(),
            outbox: tofu_upload::Outbox::default_dir(),
            announce: true,
            replay: (REPLAY_EVENTS, REPLAY_BYTES),
        }
    }

    /// Listens on `addr` (port 0: any free port). Any address other than 127.0.0.1 and ::1
    /// requires a token.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The token requests must carry (letters, digits, `-`, `_`); required on any address
    /// but 127.0.0.1 and ::1, where one is generated unless given.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The record folder whose runs the page lists (with their HTML reports).
    pub fn records(mut self, dir: impl Into<PathBuf>) -> Self {
        self.records = dir.into();
        self
    }

    /// The upload queue the page shows.
    pub fn outbox(mut self, dir: impl Into<PathBuf>) -> Self {
        self.outbox = dir.into();
        self
    }

    /// How much of the event stream the server keeps for clients that reconnect: `events`
    /// events, holding `bytes` bytes of memory at most by an estimate (by default
    /// [`REPLAY_EVENTS`] and [`REPLAY_BYTES`]). A client that resumes after an event no longer
    /// kept starts again from a snapshot. Two servers of the same test or station share one
    /// buffer, with the larger bounds.
    pub fn replay_buffer(mut self, events: usize, bytes: usize) -> Self {
        self.replay = (events.max(1), bytes.max(1));
        self
    }

    /// Doesn't print the page's URL on stderr at start.
    pub fn quiet(mut self) -> Self {
        self.announce = false;
        self
    }

    /// Starts serving, on a thread of its own; prints the URL (with the token) on stderr.
    pub fn start(self) -> Result<PageServer, ServeError> {
        server::start(self)
    }
}

/// `.page()` and `.serve(addr)` on a [`Test`] or a [`Station`].
pub trait Serve {
    /// The page of this test or station, to configure before [`StationPage::start`].
    fn page(&self) -> StationPage;

    /// Serves the page on `addr` (`"127.0.0.1:8080"`, `"0.0.0.0:8080"` with a token printed)
    /// until the returned server is dropped.
    fn serve(&self, addr: impl ToSocketAddrs) -> Result<PageServer, ServeError> {
        let given = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next());
        let addr = given.ok_or_else(|| ServeError::Address {
            addr: "(unresolved)".to_owned(),
        })?;
        self.page().bind(addr).start()
    }
}

impl Serve for Station {
    fn page(&self) -> StationPage {
        StationPage::new(self.events(), self.commands())
    }
}

impl Serve for Test {
    fn page(&self) -> StationPage {
        StationPage::new(self.events(), self.commands())
    }
}
