//! tofu: a test sequencer for hardware production testing, in the style of OpenHTF, whose runs
//! go to TofuPilot. This is the crate a test project depends on; it re-exports the others:
//!
//! | path | what | feature |
//! |---|---|---|
//! | `tofu::*`, [`tofu::prelude`](prelude) | phases, measurements, validators, units, the executor, the record ([`tofu_core`]) | always |
//! | [`tofu::testing`](testing) | running a phase, a group or a test inside a `#[test]`, with simulated plugs | always |
//! | `tofu::upload` | the TofuPilot client, the uploader and its outbox (`tofu_upload`) | `upload` (default) |
//! | `tofu::report` | self-contained HTML reports of records (`tofu_report`) | `report` (default) |
//! | [`tofu::tracing`](tracing) | what logs go through: `tofu::tracing::info!(…)` is recorded with the phase | always |
//!
//! ```no_run
//! use tofu::prelude::*;
//!
//! #[phase(name = "Power on")]
//! #[measures(input_voltage: f64 = in_range(4.5, 5.5).units(VOLT))]
//! fn power_on(m: &mut power_on::Measurements) {
//!     m.input_voltage.set(5.02);
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Test::new("FVT1").phases([power_on]).execute(|| "SN-0001").exit_code()
//! }
//! ```
//!
//! `#[phase]` and `#[measures]` work through this crate alone: the ones it exports write
//! paths through `::tofu`, so a project needs no `tofu_core` dependency (if you rename the
//! dependency in `Cargo.toml`, depend on `tofu-core` and use its attributes instead).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use tofu_core::*;

/// Makes a function a phase of a test: see [`tofu_core::phase`](macro@tofu_core::phase).
#[doc(inline)]
pub use tofu_macros::__tofu_phase as phase;

/// Declares the measurements of a phase: see [`tofu_core::measures`](macro@tofu_core::measures).
#[doc(inline)]
pub use tofu_macros::__tofu_measures as measures;

#[doc(inline)]
pub use tracing;

#[cfg(feature = "upload")]
#[doc(inline)]
pub use tofu_upload as upload;

#[cfg(feature = "report")]
#[doc(inline)]
pub use tofu_report as report;

#[cfg(feature = "instruments")]
#[doc(inline)]
pub use tofu_instruments as instruments;

#[cfg(feature = "sim")]
#[doc(inline)]
pub use tofu_sim as sim;

#[cfg(feature = "station")]
#[doc(inline)]
pub use tofu_station as station_page;

/// Everything a test program needs: `use tofu::prelude::*;`.
pub mod prelude {
    pub use tofu_core::prelude::*;
    pub use tofu_macros::{__tofu_measures as measures, __tofu_phase as phase};
}

/// The path the attributes' expansions name. Not a public API.
#[doc(hidden)]
pub use tofu_core as __core;

/// The README's examples compile against this crate, as a user's project would (with the
/// default features, which they use).
#[cfg(all(doctest, feature = "upload", feature = "report"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
