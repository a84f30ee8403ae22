//! The guide's `create_run` cases, each sent through our client and compared with the
//! official client's capture of the same call.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use tofu_upload::{
    CreateMeasurement as Measurement, CreateMeasurementOutcome as MeasurementOutcome,
    CreatePhase as Phase, CreatePhaseOutcome as PhaseOutcome, CreateRun, LogCollector, Step,
    UnitUnderTest,
};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::capture::{self, Allow};
use crate::support::server::TestServer;

/// The reference's fixed phase start (`T0_MS`).
pub const T0_MS: i64 = 1_737_387_126_058;

pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(T0_MS).unwrap()
}

/// Sends `run`, then checks every request against the capture and the answer.
fn check(case: &str, run: &CreateRun) {
    let capture = capture::load(case);
    let server = TestServer::start();
    let created = server.client().create_run(run).unwrap();
    capture::assert_requests_match(&capture, &server.requests(), &Allow::default());
    assert!(!created.id.is_empty());
    assert_eq!(
        created.url.as_deref(),
        Some(format!("{}/runs/{}", server.url(), created.id).as_str())
    );
    assert!(created.message.unwrap().starts_with("Run created"));
    assert!(created.warnings.is_empty());
}

fn unit(serial: &str, part: &str) -> UnitUnderTest {
    UnitUnderTest::new(serial).part_number(part)
}

#[test]
fn required_fields_only() {
    let run = CreateRun::new(unit("00102", "PCB01"), true).procedure_id("FVT1");
    check("create_run_required", &run);
}

#[test]
fn optional_metadata() {
    let run = CreateRun::new(
        UnitUnderTest::new("PCB1A002")
            .part_number("PCB1")
            .revision("A")
            .batch_number("12-24"),
        true,
    )
    .procedure_id("FVT1")
    .procedure_version("1.2.3")
    .duration(Duration::from_secs(2 * 60 + 34));
    check("create_run_optional_metadata", &run);
}

#[test]
fn phase_with_times() {
    let run = CreateRun::new(unit("PCB1A001", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(Phase::new(
            "phase_connect",
            PhaseOutcome::Pass,
            T0_MS,
            T0_MS + 5012,
        ));
    check("create_run_phases", &run);
}

#[test]
fn numeric_measurement_with_units_and_limits() {
    let voltage = 3.31;
    let run = CreateRun::new(unit("PCB1A003", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(
            Phase::new(
                "phase_voltage_measure",
                PhaseOutcome::Pass,
                T0_MS,
                T0_MS + 1500,
            )
            .measurement(
                Measurement::new(
                    "input_voltage",
                    MeasurementOutcome::from_bool((3.1..=3.5).contains(&voltage)),
                )
                .value(voltage)
                .units("V")
                .lower_limit(3.1)
                .upper_limit(3.5),
            ),
        );
    check("create_run_measurement_numeric", &run);
}

#[test]
fn string_measurement() {
    let run = CreateRun::new(unit("PCB1A004", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(
            Phase::new(
                "phase_firmware_version_check",
                PhaseOutcome::Pass,
                T0_MS,
                T0_MS + 800,
            )
            .measurement(
                Measurement::new("firmware_version", MeasurementOutcome::Pass).value("1.2.7"),
            ),
        );
    check("create_run_measurement_string", &run);
}

#[test]
fn boolean_measurement() {
    let run = CreateRun::new(unit("PCB1A005", "PCB1"), false)
        .procedure_id("FVT1")
        .phase(
            Phase::new("phase_connect", PhaseOutcome::Fail, T0_MS, T0_MS + 300).measurement(
                Measurement::new("is_connected", MeasurementOutcome::Fail).value(false),
            ),
        );
    check("create_run_measurement_boolean", &run);
}

#[test]
fn multidimensional_measurement() {
    // As the guide: t/100 s, rounded voltage and current, and their ratio.
    let voltages = [3.3, 3.35, 3.4, 3.45, 3.5];
    let currents = [0.3, 0.4, 0.5, 0.6, 0.7];
    let points = (0..5).map(|t| {
        let (v, i) = (voltages[t], currents[t]);
        [t as f64 / 100.0, v, i, v / i]
    });
    let run = CreateRun::new(unit("PCB1A001", "PCB1"), true)
        .procedure_id("FVT1")
        .phase(
            Phase::new("loop_approach", PhaseOutcome::Pass, T0_MS, T0_MS + 30_000).measurement(
                Measurement::multi_dimensional(
                    "current_voltage_resistance_over_time",
                    ["s", "V", "A", "Ohm"],
                    points,
                    MeasurementOutcome::Pass,
                ),
            ),
        );
    check("create_run_multidimensional", &run);
}

#[test]
fn logs_from_the_tracing_layer() {
    let collector = LogCollector::new();
    let subscriber = tracing_subscriber::registry().with(collector.layer());
    let first_line = line!() + 3;
    tracing::subscriber::with_default(subscriber, || {
        // One event per line, as the guide's five logger calls.
        tracing::debug!("Debug message: Detailed information for troubleshooting");
        tracing::info!("Info message: Normal operation information");
        tracing::warn!("Warning: Something unexpected but not critical");
        tracing::error!("Error: A significant problem that needs attention");
        tracing::error!(
            critical = true,
            "Critical: System unstable, immediate action required"
        );
    });
    let logs = collector.take();
    assert_eq!(logs.len(), 5);
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log.source_file, "create_run.rs");
        assert_eq!(log.line_number, first_line + i as u32);
        assert!((Utc::now() - log.timestamp).num_seconds() < 60);
    }

    let capture = capture::load("create_run_logs");
    let run = CreateRun::new(unit("00007035", "LOGS01"), true)
        .procedure_id("FVT1")
        .logs(logs);
    let server = TestServer::start();
    server.client().create_run(&run).unwrap();
    // The source file and line numbers are those of the code that logged.
    let allow = Allow {
        vary: vec!["source_file", "line_number"],
        ..Allow::default()
    };
    let requests = server.requests();
    capture::assert_requests_match(&capture, &requests, &allow);
    let body = requests[0].json();
    for (i, log) in body["logs"].as_array().unwrap().iter().enumerate() {
        assert_eq!(log["source_file"], "create_run.rs");
        assert_eq!(log["line_number"], first_line + i as u32);
    }
}

#[test]
fn started_at_naive_and_duration_with_days() {
    let naive = NaiveDate::from_ymd_opt(2025, 1, 19)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let run = CreateRun::new(unit("00220D4K12346", "PCB01"), true)
        .procedure_id("FVT1")
        .started_at_naive(naive)
        .duration(Duration::from_secs(86_400 + 2 * 3600 + 3 * 60 + 4) + Duration::from_millis(500));
    check("create_run_started_at_naive", &run);
}

#[test]
fn deprecated_steps() {
    let run = CreateRun::new(unit("00103", "PCB01"), true)
        .procedure_id("FVT1")
        .step(Step {
            name: "voltage_step".into(),
            started_at: Some(t0()),
            duration: Some(Duration::from_millis(1250)),
            step_passed: true,
            measurement_unit: Some("V".into()),
            measurement_value: Some(3.3.into()),
            limit_low: Some(3.1),
            limit_high: Some(3.5),
        });
    check("create_run_steps", &run);
}

#[test]
fn async_client_sends_the_same_request() {
    let capture = capture::load("create_run_required");
    let server = TestServer::start();
    let client = server.builder().build().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let run = CreateRun::new(unit("00102", "PCB01"), true).procedure_id("FVT1");
    let created = rt.block_on(client.create_run(&run)).unwrap();
    assert!(!created.id.is_empty());
    capture::assert_requests_match(&capture, &server.requests(), &Allow::default());
}
