//! TofuPilot's guide, case by case, with the plain client and no test framework: each case
//! builds a `CreateRun` by hand and sends it with `tofu::upload::blocking::TofuPilotClient`.
//!
//! The cases: required fields only, optional metadata, a phase, a numeric, a string and a
//! boolean measurement, a multi-dimensional measurement, several measurements in one phase,
//! and logs collected from `tracing` events by `tofu::upload::LogCollector`. Each created run's
//! id and page are printed.
//!
//! Run it with
//!
//! ```sh
//! TOFUPILOT_API_KEY=... cargo run --example client_create_run
//! ```
//!
//! (`TOFUPILOT_URL` points it at another TofuPilot instance than `https://www.tofupilot.app`).
//! Without an API key it says what to set and exits.

use std::time::Duration;

use tofu::upload::blocking::TofuPilotClient;
use tofu::upload::{
    CreateMeasurement, CreateMeasurementOutcome, CreatePhase, CreatePhaseOutcome, CreateRun, Error,
    LogCollector, UnitUnderTest,
};
use tracing_subscriber::layer::SubscriberExt as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = match TofuPilotClient::from_env() {
        Ok(client) => client,
        Err(Error::MissingApiKey) => {
            println!(
                "client_create_run: set TOFUPILOT_API_KEY (and TOFUPILOT_URL for another instance than tofupilot.app) to create runs"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };

    // Phases carry their start and end in epoch milliseconds.
    let t0 = chrono::Utc::now().timestamp_millis();
    let cases = [
        ("required fields", required_fields()),
        ("optional metadata", optional_metadata()),
        ("phases", phases(t0)),
        ("numeric measurement", numeric(t0)),
        ("string measurement", string(t0)),
        ("boolean measurement", boolean(t0)),
        ("multi-dimensional measurement", multi_dimensional(t0)),
        ("multiple measurements", multiple_measurements(t0)),
        ("logs", logs()),
    ];
    for (case, run) in &cases {
        let created = client.create_run(run)?;
        println!(
            "{case}: run {} of {} created: {}",
            created.id,
            run.unit_under_test.serial_number,
            created.url.as_deref().unwrap_or("(no url)")
        );
    }
    Ok(())
}

/// A unit with its serial number and part number.
fn unit(serial_number: &str, part_number: &str) -> UnitUnderTest {
    UnitUnderTest::new(serial_number).part_number(part_number)
}

/// The smallest run: procedure, unit and outcome.
fn required_fields() -> CreateRun {
    CreateRun::new(unit("00102", "PCB01"), true).procedure_id("FVT1")
}

/// The procedure's version, the unit's revision and batch, and the run's duration.
fn optional_metadata() -> CreateRun {
    CreateRun::new(
        unit("PCB1A002", "PCB1").revision("A").batch_number("12-24"),
        true,
    )
    .procedure_id("FVT1")
    .procedure_version("1.2.3")
    .duration(Duration::from_secs(2 * 60 + 34))
}

/// A phase with its outcome and times.
fn phases(t0: i64) -> CreateRun {
    CreateRun::new(unit("PCB1A001", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(CreatePhase::new(
            "phase_connect",
            CreatePhaseOutcome::Pass,
            t0,
            t0 + 5012,
        ))
}

/// A number with its unit and limits; the outcome is computed here (the server doesn't).
fn numeric(t0: i64) -> CreateRun {
    let voltage = 3.31;
    let passed = (3.1..=3.5).contains(&voltage);
    CreateRun::new(unit("PCB1A003", "PCB1"), passed)
        .procedure_id("FVT1")
        .phase(
            CreatePhase::new(
                "phase_voltage_measure",
                if passed {
                    CreatePhaseOutcome::Pass
                } else {
                    CreatePhaseOutcome::Fail
                },
                t0,
                t0 + 1500,
            )
            .measurement(
                CreateMeasurement::new(
                    "input_voltage",
                    CreateMeasurementOutcome::from_bool(passed),
                )
                .value(voltage)
                .units("V")
                .lower_limit(3.1)
                .upper_limit(3.5),
            ),
        )
}

/// A text value.
fn string(t0: i64) -> CreateRun {
    CreateRun::new(unit("PCB1A004", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(
            CreatePhase::new(
                "phase_firmware_version_check",
                CreatePhaseOutcome::Pass,
                t0,
                t0 + 800,
            )
            .measurement(
                CreateMeasurement::new("firmware_version", CreateMeasurementOutcome::Pass)
                    .value("1.2.7"),
            ),
        )
}

/// A boolean that is not what it should be: the measurement, the phase and the run fail.
fn boolean(t0: i64) -> CreateRun {
    let is_connected = false;
    CreateRun::new(unit("PCB1A005", "PCB1"), is_connected)
        .procedure_id("FVT1")
        .phase(
            CreatePhase::new("phase_connect", CreatePhaseOutcome::Fail, t0, t0 + 300).measurement(
                CreateMeasurement::new(
                    "is_connected",
                    CreateMeasurementOutcome::from_bool(is_connected),
                )
                .value(is_connected),
            ),
        )
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Points of (time, voltage, current, resistance), with one unit per column.
fn multi_dimensional(t0: i64) -> CreateRun {
    let points = (0..5).map(|t| {
        let t = f64::from(t);
        let voltage = round(3.3 + 0.05 * t, 2);
        let current = round(0.3 + 0.1 * t, 3);
        [t / 100.0, voltage, current, voltage / current]
    });
    CreateRun::new(unit("PCB1A001", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(
            CreatePhase::new("loop_approach", CreatePhaseOutcome::Pass, t0, t0 + 30_000)
                .measurement(CreateMeasurement::multi_dimensional(
                    "current_voltage_resistance_over_time",
                    ["s", "V", "A", "Ohm"],
                    points,
                    CreateMeasurementOutcome::Pass,
                )),
        )
}

/// A boolean, a string and two numbers in one phase; the phase passes when all do.
fn multiple_measurements(t0: i64) -> CreateRun {
    let (is_connected, firmware, voltage, current) = (true, "1.2.7", 3.35, 1.234);
    let measurements = [
        CreateMeasurement::new(
            "is_connected",
            CreateMeasurementOutcome::from_bool(is_connected),
        )
        .value(is_connected),
        CreateMeasurement::new(
            "firmware_version",
            CreateMeasurementOutcome::from_bool(firmware == "1.2.7"),
        )
        .value(firmware),
        CreateMeasurement::new(
            "input_voltage",
            CreateMeasurementOutcome::from_bool((3.2..=3.4).contains(&voltage)),
        )
        .value(voltage)
        .units("V")
        .lower_limit(3.2)
        .upper_limit(3.4),
        CreateMeasurement::new(
            "input_current",
            CreateMeasurementOutcome::from_bool(current <= 1.5),
        )
        .value(current)
        .units("A")
        .upper_limit(1.5),
    ];
    let passed = measurements
        .iter()
        .all(|m| m.outcome == CreateMeasurementOutcome::Pass);
    let phase = measurements.into_iter().fold(
        CreatePhase::new(
            "phase_multi_measurements",
            if passed {
                CreatePhaseOutcome::Pass
            } else {
                CreatePhaseOutcome::Fail
            },
            t0,
            t0 + 1200,
        ),
        CreatePhase::measurement,
    );
    CreateRun::new(unit("PCB1A006", "PCB1"), passed)
        .procedure_id("FVT1")
        .phase(phase)
}

/// Log entries collected from `tracing` events by a `LogCollector` layer (the guide's Python
/// `logging.Handler`): level, UTC time, message, source file and line.
fn logs() -> CreateRun {
    let collector = LogCollector::new();
    let subscriber = tracing_subscriber::registry().with(collector.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("Debug message: Detailed information for troubleshooting");
        tracing::info!("Info message: Normal operation information");
        tracing::warn!("Warning: Something unexpected but not critical");
        tracing::error!("Error: A significant problem that needs attention");
        // `tracing` has no CRITICAL level: the `critical` field makes the entry one.
        tracing::error!(
            critical = true,
            "Critical: System unstable, immediate action required"
        );
    });
    CreateRun::new(unit("00007035", "LOGS01"), true)
        .procedure_id("FVT1")
        .logs(collector.take())
}
