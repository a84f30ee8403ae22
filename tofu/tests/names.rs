//! Each crate's names are its own: a program may glob-import tofu, tofu::upload and
//! tofu::report together and use any of tofu-core's names without ambiguity (tofu-upload's
//! run request parts are `CreatePhase`, `CreateMeasurement`… since tofu-core has a `Phase`, a
//! `Measurement` and their outcomes).

#![cfg(all(feature = "upload", feature = "report"))]
#![allow(unused_imports)]

use tofu::report::*;
use tofu::upload::*;
use tofu::*;

#[test]
fn glob_imports_of_every_crate_do_not_collide() {
    // tofu-core's names, through the globs (an ambiguous one would not compile).
    let _: Option<Phase> = None;
    let _: Option<Measurement<'static, f64>> = None;
    let _ = (MeasurementOutcome::Pass, PhaseOutcome::Pass, Outcome::Pass);
    let _: Option<(
        TestRecord,
        Test,
        Station,
        JsonOutput,
        JunitOutput,
        Value,
        Unit,
    )> = None;
    // tofu-upload's, under their own names.
    let _ = (CreatePhaseOutcome::Pass, CreateMeasurementOutcome::Pass);
    let _: Option<(CreatePhase, CreateMeasurement, CreateRun, Uploader)> = None;
}
