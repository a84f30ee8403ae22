//! Phases tested without hardware, inside an ordinary `#[test]`.
//!
//! `#[phase]` turns a function into a [`Phase`](crate::Phase) constant, so a phase can't be called like a
//! function. [`Harness`] runs one (or a group, a subtest, or a whole [`Test`]) on the real
//! executor, with the plugs you pass (simulations), a serial number and parameters, and gives
//! back the run's record to assert on. It writes no files and prints nothing, unless
//! [`Harness::verbose`] asks for the console summary and logs.
//!
//! ```
//! use tofu_core::prelude::*;
//! use tofu_core::Outcome;
//! use tofu_core::testing::Harness;
//! use tofu_core::unit::VOLT;
//!
//! pub trait Supply: Plug {
//!     fn read_volts(&mut self) -> f64;
//! }
//!
//! /// The bench's phase: it asks for any supply.
//! #[phase]
//! #[measures(rail: f64 = in_range(3.2, 3.4).units(VOLT))]
//! fn rail(psu: &mut dyn Supply, m: &mut rail::Measurements) {
//!     m.rail.set(psu.read_volts());
//! }
//!
//! /// In the tests: a simulated supply.
//! struct SimSupply(f64);
//! impl Plug for SimSupply {}
//! impl Supply for SimSupply {
//!     fn read_volts(&mut self) -> f64 { self.0 }
//! }
//!
//! // #[test]
//! fn a_low_rail_fails() {
//!     let ran = Harness::phase(rail)
//!         .plug_dyn(Box::new(SimSupply(3.1)) as Box<dyn Supply>)
//!         .serial_number("SIM-0001")
//!         .run();
//!     assert_eq!(ran.outcome(), Outcome::Fail);
//!     assert_eq!(ran.value("rail").and_then(|v| v.as_f64()), Some(3.1));
//! }
//! # a_low_rail_fails();
//! ```
//!
//! A whole test, as the bench builds it, with one plug swapped for its simulation (a plug of
//! the same type, or the same `dyn Trait`, replaces the bench's; its setup never runs):
//! `Harness::test(fvt1()).plug_dyn(Box::new(SimSupply(3.3)) as Box<dyn Supply>).run()`.
//! The test's outputs (JSON record, uploader, reports) are left out of such a run.

use std::fmt;

use tracing_subscriber::prelude::*;

use crate::group::PhaseNode;
use crate::outcome::Outcome;
use crate::plug::Plug;
use crate::record::{MeasurementRecord, PhaseRecord, TestRecord};
use crate::test::Test;
use crate::value::Value;

/// A run of phases on simulated plugs, for a `#[test]`: see the [module](self).
#[derive(Debug)]
#[must_use = "nothing runs until `run`"]
pub struct Harness {
    test: Test,
    serial_number: String,
    verbose: bool,
}

impl Harness {
    /// One phase, a [`PhaseGroup`](crate::PhaseGroup) or a [`Subtest`](crate::Subtest), as the
    /// only node of a test of procedure `TESTING`.
    pub fn phase(node: impl Into<PhaseNode>) -> Self {
        Self::phases([node])
    }

    /// Several phases or groups, in this order.
    pub fn phases<N: Into<PhaseNode>>(nodes: impl IntoIterator<Item = N>) -> Self {
        Self::test(Test::new("TESTING").phases(nodes))
    }

    /// A whole test as the program builds it (its phases, plugs, limits file, metadata), run
    /// without its outputs: no JSON record, no upload, no report.
    pub fn test(test: Test) -> Self {
        Self {
            test: test.without_outputs(),
            serial_number: "SIM-0001".to_owned(),
            verbose: false,
        }
    }

    /// Gives a plug (a simulation); replaces the test's plug of the same type.
    pub fn plug<T: Plug>(mut self, plug: T) -> Self {
        self.test = self.test.plug(plug);
        self
    }

    /// Gives a plug behind a trait object (`Box::new(Sim) as Box<dyn Supply>`); replaces the
    /// test's plug of the same `dyn Trait`.
    pub fn plug_dyn<T: ?Sized + Plug>(mut self, plug: Box<T>) -> Self {
        self.test = self.test.plug_dyn(plug);
        self
    }

    /// The unit's serial number (`SIM-0001` by default).
    pub fn serial_number(mut self, serial_number: impl Into<String>) -> Self {
        self.serial_number = serial_number.into();
        self
    }

    /// A parameter the phases read with
    /// [`PhaseContext::parameter`](crate::PhaseContext::parameter), as a limits file's
    /// `[parameters]` would give it (added to the test's limits file, if it has one).
    pub fn parameter(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.test.set_parameter(name.into(), value.into());
        self
    }

    /// Changes the test in any other way (`|t| t.phase_timeout(d)`, `|t| t.limits_toml(…)`…).
    pub fn with_test(mut self, change: impl FnOnce(Test) -> Test) -> Self {
        self.test = change(self.test).without_outputs();
        self
    }

    /// Prints the logs and the console summary, as a bench run does.
    pub fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }

    /// Runs the phases on the real executor (timeouts, repeats, plug setup and teardown, the
    /// outcome rules) and returns the record.
    pub fn run(mut self) -> Ran {
        let serial_number = self.serial_number;
        let abort = std::sync::Arc::new(crate::abort::Abort::new());
        let run = || {
            self.test
                .execute_run(abort, || Ok(Ok(serial_number)), None)
                .0
        };
        let quiet_and_no_subscriber = !self.verbose
            && tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>());
        let execution = if quiet_and_no_subscriber {
            // Capture only: the record gets the logs, the console none.
            let capture = tracing_subscriber::registry().with(crate::logging::layer());
            tracing::subscriber::with_default(capture, run)
        } else {
            run()
        };
        if self.verbose {
            print!(
                "{}",
                crate::summary::render(&execution.record, &execution.outputs, false)
            );
        }
        Ran {
            record: execution.record,
        }
    }
}

/// The record of a [`Harness`] run, with lookups for assertions.
#[derive(Debug)]
#[non_exhaustive]
pub struct Ran {
    /// The run's record, as an output callback would get it.
    pub record: TestRecord,
}

impl Ran {
    /// The run's outcome.
    pub fn outcome(&self) -> Outcome {
        self.record.outcome
    }

    /// The last attempt of the phase named `name` (its function's name or display name).
    ///
    /// # Panics
    ///
    /// When no phase of that name ran, naming those that did.
    pub fn phase(&self, name: &str) -> &PhaseRecord {
        self.record
            .phases
            .iter()
            .rev()
            .find(|p| p.name == name || p.codeinfo.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no phase `{name}` ran; the record has {}",
                    self.phase_names()
                )
            })
    }

    /// The measurement `name` of the last phase that has one of that name.
    ///
    /// # Panics
    ///
    /// When no phase recorded it, naming those that ran.
    pub fn measurement(&self, name: &str) -> &MeasurementRecord {
        self.record
            .phases
            .iter()
            .rev()
            .flat_map(|p| p.measurements.iter())
            .find(|m| m.decl.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no measurement `{name}`; the record has phases {}",
                    self.phase_names()
                )
            })
    }

    /// The value measurement `name` was set to, if any (see [`Ran::measurement`]).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.measurement(name).measured_value.as_ref()
    }

    fn phase_names(&self) -> PhaseNames<'_> {
        PhaseNames(&self.record.phases)
    }
}

/// The names of the phases of a record, for messages.
struct PhaseNames<'a>(&'a [PhaseRecord]);

impl fmt::Display for PhaseNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no phases");
        }
        for (i, phase) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}`{}`", phase.name)?;
        }
        Ok(())
    }
}
