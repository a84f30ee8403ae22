//! Client construction, TLS, the blocking facade inside a runtime, and the API key
//! never showing.

use std::path::PathBuf;

use tofu_upload::{ClientBuilder, CreateRun, Error, LogCollector, UnitUnderTest};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::capture::example_data;
use crate::support::server::{TEST_KEY, TestServer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

fn tls_server() -> TestServer {
    TestServer::start_tls(
        &std::fs::read(fixture("server.pem")).unwrap(),
        &std::fs::read(fixture("server.key")).unwrap(),
    )
}

fn run() -> CreateRun {
    CreateRun::new(UnitUnderTest::new("TLS-1").part_number("PCB01"), true).procedure_id("FVT1")
}

#[test]
fn extra_ca_certificate_lets_a_private_instance_verify() {
    let server = tls_server();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let client = server
        .builder()
        .ca_certificate(fixture("ca.pem"))
        .build_blocking()
        .unwrap();
    let created = client
        .create_run(&run().attachment(example_data("measurement-notes.txt")))
        .unwrap();
    assert_eq!(created.attachments.len(), 1);
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn tls_is_verified_without_the_ca() {
    let server = tls_server();
    let err = server.client().create_run(&run()).unwrap_err();
    let Error::Network { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    assert!(server.requests().is_empty());
}

#[test]
fn unusable_ca_files_are_refused() {
    let err = ClientBuilder::new()
        .api_key(TEST_KEY)
        .ca_certificate("/nonexistent/ca.pem")
        .build_blocking()
        .unwrap_err();
    assert!(matches!(err, Error::CaCertificate { .. }), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let err = ClientBuilder::new()
        .api_key(TEST_KEY)
        .ca_certificate(&junk)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::CaCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.pem"), "{err}");
}

#[test]
fn blocking_client_works_inside_an_async_runtime() {
    let server = TestServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = server.url();
    let created = rt.block_on(async move {
        // Built, used and dropped on a runtime thread: no panic.
        let client = ClientBuilder::new()
            .api_key(TEST_KEY)
            .base_url(url)
            .build_blocking()
            .unwrap();
        let created = client.create_run(&run()).unwrap();
        drop(client);
        created
    });
    assert!(!created.id.is_empty());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn async_client_get_runs() {
    let server = TestServer::start();
    let client = server.builder().build().unwrap();
    let created = client.create_run(&run()).await.unwrap();
    let runs = client.get_runs("TLS-1").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, created.id);
}

#[test]
fn the_api_key_never_shows() {
    let server = TestServer::start();
    let builder = server.builder();
    let config = builder.clone().config().unwrap();
    let client = builder.clone().build_blocking().unwrap();
    let async_client = builder.clone().build().unwrap();

    // Everything the client logs while doing its work, from every target.
    let collector = LogCollector::new();
    let layer = collector
        .layer()
        .include_all_targets()
        .max_level(tracing::Level::TRACE);
    let subscriber = tracing_subscriber::registry().with(layer);
    let errors = tracing::subscriber::with_default(subscriber, || {
        client
            .create_run(&run().attachment(example_data("raw_capture")))
            .unwrap();
        client.get_runs("TLS-1").unwrap();
        server.fail_create(401, "Unauthorized");
        let unauthorized = client.create_run(&run()).unwrap_err();
        let refused = ClientBuilder::new()
            .api_key(TEST_KEY)
            .base_url(format!(
                "http://127.0.0.1:{}",
                crate::support::server::closed_port()
            ))
            .build_blocking()
            .unwrap()
            .create_run(&run())
            .unwrap_err();
        [unauthorized, refused]
    });
    assert!(!collector.is_empty(), "the client logs its work");

    let mut shown = vec![
        format!("{builder:?}"),
        format!("{config:?}"),
        format!("{:?}", config.api_key()),
        format!("{client:?}"),
        format!("{async_client:?}"),
        format!("{:?}", collector.snapshot()),
    ];
    for e in &errors {
        shown.push(format!("{e} / {e:?}"));
    }
    for text in &shown {
        assert!(!text.contains(TEST_KEY), "key shown in: {text}");
        assert!(!text.contains("SECRET"), "key shown in: {text}");
    }
    assert!(format!("{config:?}").contains("ApiKey(<redacted>)"));
    // ...while the server did get it.
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
}

#[test]
fn missing_key_is_an_error() {
    // The environment of the test run may define a key; then this is moot.
    if std::env::var(tofu_upload::ENV_API_KEY).is_ok() {
        return;
    }
    let err = ClientBuilder::new().api_key("").config().unwrap_err();
    assert!(matches!(err, Error::MissingApiKey), "{err:?}");
    assert!(err.to_string().contains("TOFUPILOT_API_KEY"));
}
