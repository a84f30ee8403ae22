//! TofuPilot's API v2: the run to create, what the server answers, and the client's v2 calls.
//!
//! Turned on with `TOFUPILOT_API_VERSION=v2` or
//! [`ClientBuilder::api_version`](crate::ClientBuilder::api_version)`(ApiVersion::V2)`; v1 stays
//! the default. What v2 carries that v1 can't: every validator with its own outcome (a marginal
//! band as a non-decisive one), every attempt of a repeated phase (`retry_count`), sweeps as
//! `x_axis`/`y_axis` with min/max aggregations, subtests as `sequences`, a station's
//! `execution_id`/`slot_key`/`slot_name`, free `metadata` (the instruments used), the limits
//! file in `config`, and `client_run_ref`, an idempotency key: the uploader saves it in the
//! outbox before the first send, so a create whose answer was lost is never a second run.
//!
//! The requests are the official Python client's (2.26.1), checked field by field in the tests
//! against its captured requests: the same keys, optional fields absent rather than `null`,
//! times in UTC with six decimals and a `Z`.
//!
//! ```no_run
//! use tofu_upload::{ApiVersion, ClientBuilder};
//! use tofu_upload::v2::RunQuery;
//!
//! let client = ClientBuilder::new().api_version(ApiVersion::V2).build_blocking()?;
//! for run in client.all_runs_v2(&RunQuery::serial_number("PCB01A0001"), 1000)? {
//!     println!("{} {:?}", run.id, run.outcome);
//!     client.download_attachments_v2(&run.id, "downloads")?;
//! }
//! # Ok::<(), tofu_upload::Error>(())
//! ```

mod client;
mod mapping;
mod request;
mod response;

pub(crate) use client::unknown_procedure_advice;
pub use client::{RunQuery, is_uuid};
pub use mapping::{create_run, from_v1};
pub use request::{
    Aggregation, Axis, ConfigValue, CreateRun, Log, LogLevel, Measurement, Outcome, Phase,
    PhaseOutcome, RunOutcome, Sequence, Validator, format_time,
};
pub use response::{PageMeta, Procedure, Run, RunPage};
