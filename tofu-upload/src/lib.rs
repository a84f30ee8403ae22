//! TofuPilot client for tofu.
//!
//! Speaks TofuPilot's v1 REST API (`{base}/api/v1`, the default) and, with
//! `TOFUPILOT_API_VERSION=v2` or [`ClientBuilder::api_version`], its v2 API ([`v2`]), exactly
//! like the official Python
//! client 2.26.1 (`tofupilot.TofuPilotClient`): the same requests, headers and JSON
//! bodies, checked field by field against captures of that client in this crate's
//! tests. The one intended difference: `client`/`client_version` in the bodies name
//! this client (`"tofu"`, this crate's version).
//!
//! * [`TofuPilotClient`] (async, tokio) and [`blocking::TofuPilotClient`] (for scripts);
//!   both built by [`ClientBuilder`] from explicit settings, `TOFUPILOT_API_KEY` and
//!   `TOFUPILOT_URL`.
//! * [`CreateRun`] and its parts ([`UnitUnderTest`], [`CreatePhase`], [`CreateMeasurement`],
//!   [`Log`], [`SubUnit`], [`Step`]): public fields and chaining setters.
//! * `create_run` (run, then attachments through initialize → PUT → sync),
//!   `get_runs`, `download_attachment`, `create_run_from_openhtf_report`.
//! * [`LogCollector`]: a `tracing` layer collecting events as run log entries.
//! * [`Error`]: typed, with the server's status and message; nothing in this crate
//!   prints the API key (its `Debug` is redacted, errors never hold it).
//!
//! ```no_run
//! use tofu_upload::blocking::TofuPilotClient;
//! use tofu_upload::{CreateRun, CreateMeasurement, CreateMeasurementOutcome, CreatePhase, CreatePhaseOutcome, UnitUnderTest};
//!
//! let client = TofuPilotClient::builder().api_key("tp_0123456789abcdef").build_blocking()?;
//! let voltage = 3.31;
//! let run = CreateRun::new(UnitUnderTest::new("PCB1A003").part_number("PCB1"), true)
//!     .procedure_id("FVT1")
//!     .phase(
//!         CreatePhase::new("phase_voltage_measure", CreatePhaseOutcome::Pass, 1_737_387_126_058, 1_737_387_127_558)
//!             .measurement(
//!                 CreateMeasurement::new(
//!                     "input_voltage",
//!                     CreateMeasurementOutcome::from_bool((3.1..=3.5).contains(&voltage)),
//!                 )
//!                 .value(voltage)
//!                 .units("V")
//!                 .lower_limit(3.1)
//!                 .upper_limit(3.5),
//!             ),
//!     );
//! let created = client.create_run(&run)?;
//! println!("{}", created.url.unwrap_or(created.id));
//! # Ok::<(), tofu_upload::Error>(())
//! ```

pub mod blocking;
mod client;
mod config;
mod error;
pub mod iso;
mod logs;
mod openhtf;
mod types;
pub mod uploader;
pub mod v2;

pub use client::{
    MAX_ANSWER, MAX_ATTACHMENTS, MAX_FILE_SIZE, TofuPilotClient, install_crypto_provider,
};
pub use config::{
    ApiKey, ApiVersion, ClientBuilder, Config, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, ENV_API_KEY,
    ENV_API_VERSION, ENV_CREATE_PROCEDURES, ENV_PROCEDURE_ID, ENV_URL,
};
pub use error::{AttachmentFailure, Error};
pub use logs::{LogCollector, TofuPilotLogLayer};
// The parts of a `CreateRun` are named for it: tofu-core has a `Phase`, a `Measurement`
// and their outcomes too, and `use tofu::*` with `use tofu::upload::*` must not collide.
pub use types::{
    CLIENT_NAME, CLIENT_VERSION, CreateRun, ImportedRun, Log, LogLevel, Run, RunAttachment,
    RunBatch, RunComponent, RunCreated, RunLog, RunMeasurement, RunOutcome, RunPhase, RunProcedure,
    RunProcedureVersion, RunRevision, RunUnit, Step, SubUnit, UnitUnderTest, Units,
    UploadedAttachment,
};
pub use types::{
    Measurement as CreateMeasurement, MeasurementOutcome as CreateMeasurementOutcome,
    Phase as CreatePhase, PhaseOutcome as CreatePhaseOutcome,
};
/// The outbox, to read it: `Outbox::open(dir)?.entries()` (see [`uploader::Outbox`]).
pub use uploader::Outbox;
pub use uploader::Uploader;
