//! The tracing layer's defaults: the run's logs, not the uploader's chatter.

use tofu_upload::{CreateRun, LogCollector, LogLevel, UnitUnderTest};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::server::TestServer;

#[test]
fn upload_messages_are_not_collected_as_run_logs() {
    let server = TestServer::start();
    let client = server.client();
    let collector = LogCollector::new();
    let subscriber = tracing_subscriber::registry().with(collector.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!("too verbose by default");
        tracing::info!(serial = "SN1", "phase started");
        client
            .create_run(&CreateRun::new(UnitUnderTest::new("SN1"), true).procedure_id("FVT1"))
            .unwrap();
        tracing::warn!(target: "station::fixture", "fixture lid open");
    });
    let logs = collector.take();
    let messages: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        messages,
        ["phase started serial=\"SN1\"", "fixture lid open"]
    );
    assert_eq!(logs[1].level, LogLevel::Warning);
    assert_eq!(logs[0].source_file, "logs.rs");
    assert!(collector.is_empty());
}

#[test]
fn levels_and_serialisation_match_the_guide() {
    let collector = LogCollector::new();
    let layer = collector.layer().max_level(tracing::Level::TRACE);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
        tracing::error!(critical = true, "c");
    });
    let levels: Vec<String> = collector
        .take()
        .iter()
        .map(|l| {
            serde_json::to_value(l).unwrap()["level"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        levels,
        ["DEBUG", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    );
}
