//! TofuPilot v1 wire types: the `POST /runs` request and the server's answers.
//!
//! The request types serialise to exactly the JSON the official Python client 2.26.1
//! sends (same keys, same order, same `null`-versus-absent choices); see
//! [`CreateRun`]. They also deserialise from that JSON, so a stored request can be
//! read back and sent later.

mod request;
mod response;

pub use request::{
    CreateRun, Log, LogLevel, Measurement, MeasurementOutcome, Phase, PhaseOutcome, Step, SubUnit,
    UnitUnderTest, Units,
};
pub use response::{
    ImportedRun, Run, RunAttachment, RunBatch, RunComponent, RunCreated, RunLog, RunMeasurement,
    RunOutcome, RunPhase, RunProcedure, RunProcedureVersion, RunRevision, RunUnit,
    UploadedAttachment,
};

/// The `client` value sent in `POST /runs` and `POST /import` bodies.
pub const CLIENT_NAME: &str = "tofu";
/// The `client_version` value: this crate's version.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");
