//! tofu: a test sequencer for hardware production testing, in the style of OpenHTF.
//!
//! A test is a list of phases. A phase is a function marked `#[phase]`, whose measurements are
//! declared with `#[measures(...)]`: name, kind, limits, units, dimensions. The phase sets them
//! through a typed handle, so a misspelt name or a value of the wrong type does not compile.
//! The executor runs the phases against one unit under test, records everything (timing,
//! outcomes, measurements, logs, attachments) and decides the outcome with OpenHTF's rules.
//! The record goes to output callbacks; the default one writes OpenHTF-format JSON.
//!
//! ```no_run
//! use tofu_core::prelude::*;
//!
//! #[phase(name = "Power on")]
//! #[measures(
//!     input_voltage: f64 = in_range(4.5, 5.5).units(VOLT).doc("Supply voltage at J1"),
//!     firmware_version: String = equals("1.2.3"),
//! )]
//! fn power_on(test: &mut PhaseContext, m: &mut power_on::Measurements) -> Result<(), Box<dyn std::error::Error>> {
//!     m.input_voltage.set(5.02);
//!     m.firmware_version.set("1.2.3");
//!     test.attach("rails.txt", "VCC=5.02\n")?;
//!     tracing::info!("rails up");
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Test::new("FVT1")
//!         .part_number("PCB01")
//!         .phases([power_on])
//!         .execute(|| "SN-0001")
//!         .exit_code()
//! }
//! ```
//!
//! See `ARCHITECTURE.md` for how the pieces fit.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The layers, each importing only from those above it (checked by `tests/it/layers.rs`):
// values
mod abort;
mod atomic;
mod clock;
pub mod declare;
mod error_code;
pub mod event;
pub mod exit;
mod limit;
pub mod measurement;
pub mod outcome;
mod panic_capture;
pub mod record;
mod record_json;
mod recovery;
pub mod si;
pub mod unit;
pub mod validator;
pub mod value;
// the plan
pub mod bus;
pub mod context;
mod desk;
mod gate;
mod group;
pub mod history;
pub mod limits_file;
mod parameters;
pub mod phase;
mod plan;
pub mod plug;
pub mod prompt;
mod shared_plug;
// the run
mod attempt;
mod attempt_rules;
mod control;
mod emitter;
mod executor;
pub mod journal;
pub mod logging;
mod phase_sync;
mod plug_calls;
mod signals;
mod slot;
// outputs
mod console;
mod execution;
pub mod junit;
pub mod output;
mod summary;
// the front
pub mod station;
mod test;
pub mod testing;

pub use bus::{EventBus, HistoryReader, Received, Snapshot, Subscription};
pub use context::{AttachError, PhaseContext, Stopped};
pub use control::{CommandError, Commands};
pub use desk::{AnswerError, MAX_ANSWER};
pub use error_code::ErrorCode;
pub use event::{Event, EventKind};
pub use execution::{Execution, OutputStatus, RecoveredReport, recover_runs};
pub use group::{PhaseGroup, PhaseNode, Subtest};
pub use history::HistoryRead;
pub use junit::JunitOutput;
pub use limit::{Limit, python_float};
pub use limits_file::{LimitsFileError, LimitsProblem};
pub use measurement::{ColumnLengthError, Json, Measurement, Sweep};
pub use outcome::{MeasurementOutcome, Outcome, PhaseOutcome, PhaseResult};
pub use output::{JsonOutput, OutputCallback, OutputError};
pub use parameters::ParameterError;
pub use phase::Phase;
pub use plan::UNKNOWN_DUT;
pub use plug::Plug;
pub use prompt::{IntoSerialNumber, PromptError};
pub use record::TestRecord;
pub use si::Si;
pub use station::{Batch, SlotInfo, SlotMode, SlotTest, Station};
pub use test::Test;
pub use tofu_macros::{measures, phase};
pub use unit::Unit;
pub use validator::Validator;
pub use value::Value;

/// Writes files atomically (temp file, fsync, link or rename), as the JSON record does.
pub mod fs {
    pub use crate::atomic::{
        fallback_dir, fallback_dir_in, replace_file, safe_file_name, write_new_file,
    };
}

/// Everything a test script needs: `use tofu_core::prelude::*;`.
///
/// Units are not in it (there are 2,131): `#[measures]` specs see them all (`.units(VOLT)`),
/// and other code imports the ones it uses from [`unit`](mod@unit) (`use tofu_core::unit::VOLT;`).
pub mod prelude {
    pub use crate::measurement::{Json, Sweep};
    pub use crate::si::Si;
    pub use crate::unit::Unit;
    pub use crate::{
        JsonOutput, Outcome, OutputCallback, PhaseContext, PhaseGroup, PhaseNode, PhaseResult,
        Plug, Station, Subtest, Test, measures, phase,
    };
}

/// What the macros' expansions use. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::declare::{__declare, __unspecified};
    pub use crate::measurement::{Kind, Measurement, MeasurementDecl, Slot, ValueKind};
    pub use crate::phase::{IntoPhaseReturn, PhaseDef, PhaseOptions, PhaseReturn, Registered};
    pub use crate::plug::{__need, PlugNeeds, PlugSet};
    pub use crate::si::{__SiKind, __same_unit};
    pub use inventory;
}
