//! A loopback HTTP server that answers like TofuPilot's v1 and v2 APIs (as the capture server
//! of the reference did) and records every request. Every `POST /api/v2/runs` body is checked
//! against the official client's v2 requests ([`super::v2_schema`]): a body that differs is
//! refused (400) and its problems kept ([`TestServer::v2_problems`]). A v2 create with a
//! `client_run_ref` the server already has returns that run (TofuPilot's idempotency), however
//! late the first one was stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The API key every test client uses (long enough for the OpenHTF path's check).
pub const TEST_KEY: &str = "tp_test_key_0123456789_SECRET";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An answer forced for matching requests, like the reference's `SERVER.fail(...)`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path_prefix: String,
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    pub remaining: usize,
    pub retry_after: Option<u64>,
    /// The request is handled first (a run created…), then this answer is given.
    pub after_work: bool,
}

/// A create whose connection is dropped at once and whose run is stored `delay` later (a
/// server that queues the work): the client can look for the run before it exists.
#[derive(Debug, Clone)]
pub struct LateStore {
    pub method: &'static str,
    pub path_prefix: String,
    pub delay: Duration,
    pub remaining: usize,
}

/// A delay before answering matching requests (the request itself is handled first), to
/// make a client time out after the server did the work: a lost answer.
#[derive(Debug, Clone)]
pub struct Delay {
    pub method: &'static str,
    pub path_prefix: String,
    pub duration: Duration,
    pub remaining: usize,
}

#[derive(Debug, Clone)]
struct StoredRun {
    id: String,
    body: Value,
    created_at: String,
    /// Created through v2.
    v2: bool,
}

#[derive(Debug, Clone)]
struct Upload {
    name: String,
    mime: String,
    size: Option<u64>,
    data: Option<(String, Vec<u8>)>,
    run_id: Option<String>,
    /// v2: finalized (may be linked to a run).
    finalized: bool,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    faults: Vec<Fault>,
    delays: Vec<Delay>,
    late: Vec<LateStore>,
    chaos: Option<ChaosState>,
    runs: Vec<StoredRun>,
    /// Runs removed by `DELETE /api/v1/runs/{id}`.
    deleted: Vec<StoredRun>,
    /// Stores announced and not done yet.
    late_pending: usize,
    uploads: HashMap<String, Upload>,
    upload_order: Vec<String>,
    /// v2 procedures: (id, name).
    procedures: Vec<(String, String)>,
    /// What was wrong with the v2 create bodies received.
    v2_problems: Vec<String>,
    /// v2 creates with `sequences` are refused (an older server).
    refuse_sequences: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    base: String,
    counter: AtomicU64,
}

impl Shared {
    fn new_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        format!("{:08x}-7e57-4000-8000-{n:012x}", 0x5eed_0000u32 + n as u32)
    }
}

/// The server; stops when dropped.
pub struct TestServer {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A TLS listener for axum, with a certificate chain and key in PEM.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that does not trust us fails the handshake: wait for the next.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    tofu_upload::install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same server over HTTPS with this certificate and key.
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        Self::start_with(Some(tls_acceptor(cert_pem, key_pem)))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            base: format!("{scheme}://{addr}"),
            counter: AtomicU64::new(0),
        });
        let (tx, rx) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let stop = async {
                    let _ = rx.await;
                };
                match tls {
                    None => axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await
                        .unwrap(),
                    Some(acceptor) => axum::serve(
                        TlsListener {
                            tcp: listener,
                            acceptor,
                        },
                        app,
                    )
                    .with_graceful_shutdown(stop)
                    .await
                    .unwrap(),
                }
            });
        });
        Self {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// The next run creation (`POST /api/v1/runs`) answers `status` with TofuPilot's error
    /// body carrying `message`.
    pub fn fail_create(&self, status: u16, message: &str) {
        self.fail(
            "POST",
            "/api/v1/runs",
            status,
            serde_json::json!({"error": {"message": message}}),
        );
    }

    pub fn fail(&self, method: &'static str, path_prefix: &str, status: u16, body: Value) {
        self.fail_raw(
            method,
            path_prefix,
            status,
            &body.to_string(),
            "application/json",
        );
    }

    pub fn fail_raw(
        &self,
        method: &'static str,
        path_prefix: &str,
        status: u16,
        body: &str,
        content_type: &'static str,
    ) {
        self.shared.inner.lock().unwrap().faults.push(Fault {
            method,
            path_prefix: path_prefix.to_owned(),
            status,
            body: body.to_owned(),
            content_type,
            remaining: 1,
            retry_after: None,
            after_work: false,
        });
    }

    /// The next matching request is handled (a run created…), then answered `status`.
    pub fn fail_after_work(&self, method: &'static str, path_prefix: &str, status: u16) {
        self.shared.inner.lock().unwrap().faults.push(Fault {
            method,
            path_prefix: path_prefix.to_owned(),
            status,
            body: json!({"success": false, "error": {"message": "answered after the work"}})
                .to_string(),
            content_type: "application/json",
            remaining: 1,
            retry_after: None,
            after_work: true,
        });
    }

    /// The next matching request's connection is dropped at once, and its work is done
    /// `delay` later (a server that stores a create late).
    pub fn store_late(&self, method: &'static str, path_prefix: &str, delay: Duration) {
        self.shared.inner.lock().unwrap().late.push(LateStore {
            method,
            path_prefix: path_prefix.to_owned(),
            delay,
            remaining: 1,
        });
    }

    /// How many late stores are still to happen.
    pub fn late_stores_pending(&self) -> usize {
        self.shared.inner.lock().unwrap().late_pending
    }

    /// The runs removed with `DELETE /api/v1/runs/{id}`, as `(id, body)`.
    pub fn deleted_runs(&self) -> Vec<(String, Value)> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .deleted
            .iter()
            .map(|r| (r.id.clone(), r.body.clone()))
            .collect()
    }

    /// Answers the next matching request with `status` and a `Retry-After: seconds` header.
    pub fn fail_with_retry_after(
        &self,
        method: &'static str,
        path_prefix: &str,
        status: u16,
        seconds: u64,
    ) {
        self.shared.inner.lock().unwrap().faults.push(Fault {
            method,
            path_prefix: path_prefix.to_owned(),
            status,
            body: json!({"success": false, "error": {"message": "Too many requests"}}).to_string(),
            content_type: "application/json",
            remaining: 1,
            retry_after: Some(seconds),
            after_work: false,
        });
    }

    /// Handles the next `count` matching requests, then waits `duration` before answering.
    pub fn delay(&self, method: &'static str, path_prefix: &str, duration: Duration, count: usize) {
        self.shared.inner.lock().unwrap().delays.push(Delay {
            method,
            path_prefix: path_prefix.to_owned(),
            duration,
            remaining: count,
        });
    }

    /// Removes every pending delay.
    pub fn clear_delays(&self) {
        self.shared.inner.lock().unwrap().delays.clear();
    }

    /// Turns random faults on (`Some`) or off (`None`); the faults injected so far are kept.
    pub fn chaos(&self, chaos: Option<Chaos>) {
        let mut inner = self.shared.inner.lock().unwrap();
        match (chaos, inner.chaos.as_mut()) {
            (Some(c), Some(state)) => {
                state.config = c;
                state.enabled = true;
            }
            (Some(c), None) => inner.chaos = Some(ChaosState::new(c)),
            (None, Some(state)) => state.enabled = false,
            (None, None) => {}
        }
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        self.shared.inner.lock().unwrap().requests.len()
    }

    /// The faults injected so far, in order.
    pub fn injected(&self) -> Vec<Injected> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .chaos
            .as_ref()
            .map(|c| c.injected.clone())
            .unwrap_or_default()
    }

    /// The runs created, as `(id, body)`.
    pub fn runs(&self) -> Vec<(String, Value)> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .runs
            .iter()
            .map(|r| (r.id.clone(), r.body.clone()))
            .collect()
    }

    /// The files uploaded and linked to a run, in upload order: `(name, mime, bytes)`.
    pub fn attachments_of(&self, run_id: &str) -> Vec<(String, String, Vec<u8>)> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .upload_order
            .iter()
            .filter_map(|id| inner.uploads.get(id))
            .filter(|u| u.run_id.as_deref() == Some(run_id))
            .map(|u| {
                (
                    u.name.clone(),
                    u.mime.clone(),
                    u.data.clone().map(|d| d.1).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Bytes stored by PUT for an upload id.
    pub fn stored(&self, upload_id: &str) -> Option<(String, Vec<u8>)> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .uploads
            .get(upload_id)
            .and_then(|u| u.data.clone())
    }

    /// Adds a v2 procedure; returns its id.
    pub fn add_procedure(&self, name: &str) -> String {
        let id = self.shared.new_id();
        self.shared
            .inner
            .lock()
            .unwrap()
            .procedures
            .push((id.clone(), name.to_owned()));
        id
    }

    /// The v2 procedures, as `(id, name)`.
    pub fn procedures(&self) -> Vec<(String, String)> {
        self.shared.inner.lock().unwrap().procedures.clone()
    }

    /// What was wrong with the v2 create bodies received (empty when each was as the official
    /// client's).
    pub fn v2_problems(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().v2_problems.clone()
    }

    /// Refuses v2 creates that carry `sequences` (400), as a server without them would.
    pub fn refuse_sequences(&self) {
        self.shared.inner.lock().unwrap().refuse_sequences = true;
    }

    /// A client of this server speaking v2.
    pub fn builder_v2(&self) -> tofu_upload::ClientBuilder {
        self.builder().api_version(tofu_upload::ApiVersion::V2)
    }

    pub fn builder(&self) -> tofu_upload::ClientBuilder {
        tofu_upload::ClientBuilder::new()
            .api_key(TEST_KEY)
            .base_url(self.url())
            .timeout(Duration::from_secs(10))
    }

    pub fn client(&self) -> tofu_upload::blocking::TofuPilotClient {
        self.builder().build_blocking().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (response, delay, drop_connection) = answer(&shared, request).await;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if drop_connection {
        // Unwinds the connection's task (axum serves each connection on a task of its own,
        // and tokio catches the unwind): the socket is closed without an answer. No lock is
        // held here, and `resume_unwind` skips the panic hook, so nothing is printed.
        std::panic::resume_unwind(Box::new("chaos: the connection is dropped"));
    }
    response
}

async fn answer(shared: &Arc<Shared>, request: Request) -> (Response, Option<Duration>, bool) {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let mut inner = shared.inner.lock().unwrap();
    inner.requests.push(recorded.clone());
    let delay = inner
        .delays
        .iter_mut()
        .find(|d| {
            d.remaining > 0
                && d.method == recorded.method
                && recorded.path.starts_with(&d.path_prefix)
        })
        .map(|d| {
            d.remaining -= 1;
            d.duration
        });
    let late = inner
        .late
        .iter_mut()
        .find(|l| {
            l.remaining > 0
                && l.method == recorded.method
                && recorded.path.starts_with(&l.path_prefix)
        })
        .map(|l| {
            l.remaining -= 1;
            l.delay
        });
    if let Some(late) = late {
        store_later(shared, &mut inner, recorded, late);
        return (StatusCode::OK.into_response(), None, true);
    }
    let chaos = inner
        .chaos
        .as_mut()
        .and_then(|c| c.draw(&recorded.method, &recorded.path));
    match chaos {
        None => (respond(shared, &mut inner, &recorded), delay, false),
        Some((fault, slow)) => {
            let response = match fault {
                // The work is done, then the answer is lost or late.
                ChaosFault::DropAfter | ChaosFault::Slow => respond(shared, &mut inner, &recorded),
                // The work is done, then the answer says it wasn't.
                ChaosFault::Status408After | ChaosFault::TooManyAfter | ChaosFault::HugeBody => {
                    let _ = route(shared, &mut inner, &recorded);
                    fault.response()
                }
                ChaosFault::LateStore => {
                    store_later(shared, &mut inner, recorded, slow);
                    return (StatusCode::OK.into_response(), None, true);
                }
                _ => fault.response(),
            };
            let delay = if fault == ChaosFault::Slow {
                Some(slow)
            } else {
                delay
            };
            let drop_connection = matches!(fault, ChaosFault::DropBefore | ChaosFault::DropAfter);
            (response, delay, drop_connection)
        }
    }
}

/// Does the request's work `delay` from now (a server that queues it).
fn store_later(shared: &Arc<Shared>, inner: &mut Inner, recorded: Recorded, delay: Duration) {
    inner.late_pending += 1;
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut inner = shared.inner.lock().unwrap();
        let _ = route(&shared, &mut inner, &recorded);
        inner.late_pending -= 1;
    });
}

fn respond(shared: &Arc<Shared>, inner: &mut Inner, recorded: &Recorded) -> Response {
    if let Some(fault) = inner.faults.iter_mut().find(|f| {
        f.remaining > 0 && f.method == recorded.method && recorded.path.starts_with(&f.path_prefix)
    }) {
        fault.remaining -= 1;
        let fault = fault.clone();
        if fault.after_work {
            let _ = route(shared, inner, recorded);
        }
        let mut response = (
            StatusCode::from_u16(fault.status).unwrap(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(fault.content_type),
            )],
            fault.body.clone(),
        )
            .into_response();
        if let Some(seconds) = fault.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        return response;
    }
    route(shared, inner, recorded)
}

/// The server's work and answer for a request.
fn route(shared: &Arc<Shared>, inner: &mut Inner, recorded: &Recorded) -> Response {
    if recorded.path.starts_with("/api/v2/") {
        return route_v2(shared, inner, recorded);
    }
    let base = shared.base.clone();
    match (recorded.method.as_str(), recorded.path.as_str()) {
        ("POST", "/api/v1/runs") | ("POST", "/api/v1/import") => {
            let id = shared.new_id();
            let url = format!("{base}/runs/{id}");
            let mut body: Value = serde_json::from_slice(&recorded.body).unwrap_or(Value::Null);
            if recorded.path.ends_with("import") {
                imported_run(inner, &mut body);
            }
            inner.runs.push(StoredRun {
                id: id.clone(),
                body,
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                v2: false,
            });
            let what = if recorded.path.ends_with("import") {
                "Run imported"
            } else {
                "Run created"
            };
            json_response(
                StatusCode::OK,
                json!({"id": id, "url": url, "message": format!("{what} (test server): {url}")}),
            )
        }
        ("DELETE", path) if path.starts_with("/api/v1/runs/") => {
            let id = &path["/api/v1/runs/".len()..];
            match inner.runs.iter().position(|r| r.id == id) {
                Some(i) => {
                    let run = inner.runs.remove(i);
                    inner.deleted.push(run);
                    json_response(StatusCode::OK, json!({"message": "Run deleted"}))
                }
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"success": false, "error": {"message": "Run not found"}}),
                ),
            }
        }
        ("GET", "/api/v1/runs") => {
            let serial = recorded
                .query
                .iter()
                .find(|(k, _)| k == "serial_number")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let runs: Vec<Value> = inner
                .runs
                .iter()
                .filter(|r| !r.v2 && r.body["unit_under_test"]["serial_number"] == serial.as_str())
                .map(|r| run_json(&base, r, inner))
                .collect();
            json_response(StatusCode::OK, Value::Array(runs))
        }
        ("POST", "/api/v1/uploads/initialize") => {
            let body: Value = serde_json::from_slice(&recorded.body).unwrap_or(Value::Null);
            let id = new_upload(
                shared,
                inner,
                body["name"].as_str().unwrap_or_default(),
                body["mimeType"].as_str().unwrap_or_default(),
                body["sizeBytes"].as_u64(),
            );
            json_response(
                StatusCode::OK,
                json!({"id": id, "uploadUrl": format!("{base}/_storage/{id}")}),
            )
        }
        ("POST", "/api/v1/uploads/sync") => {
            let body: Value = serde_json::from_slice(&recorded.body).unwrap_or(Value::Null);
            let upload_id = body["upload_id"].as_str().unwrap_or_default();
            let run_id = body["run_id"].as_str().unwrap_or_default().to_owned();
            match inner.uploads.get_mut(upload_id) {
                Some(u) if u.data.is_some() => {
                    u.run_id = Some(run_id);
                    json_response(StatusCode::OK, json!({}))
                }
                _ => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"success": false, "error": {"message": "Upload not found"}}),
                ),
            }
        }
        ("PUT", path) if path.starts_with("/_storage/") => {
            let id = &path["/_storage/".len()..];
            let content_type = recorded.header("content-type").unwrap_or("").to_owned();
            match inner.uploads.get_mut(id) {
                Some(u) if u.size.is_none_or(|s| s == recorded.body.len() as u64) => {
                    if u.mime.is_empty() {
                        u.mime = content_type.clone();
                    }
                    u.data = Some((content_type, recorded.body.clone()));
                    StatusCode::OK.into_response()
                }
                Some(_) => (StatusCode::FORBIDDEN, "size does not match the grant").into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        ("GET", path) if path.starts_with("/_storage/") => {
            let id = &path["/_storage/".len()..];
            match inner.uploads.get(id).and_then(|u| u.data.clone()) {
                Some((ct, data)) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, HeaderValue::from_str(&ct).unwrap())],
                    Body::from(data),
                )
                    .into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": {"message": "Not found"}}),
        ),
    }
}

/// An import's run as TofuPilot makes it from the report: its unit and start time (added to
/// the import request's body, so `GET /runs` finds it).
fn imported_run(inner: &Inner, body: &mut Value) {
    let report = body["upload_id"]
        .as_str()
        .and_then(|id| inner.uploads.get(id))
        .and_then(|u| u.data.as_ref())
        .and_then(|d| serde_json::from_slice::<Value>(&d.1).ok());
    if let (Some(report), Some(body)) = (report, body.as_object_mut()) {
        body.insert(
            "unit_under_test".into(),
            json!({"serial_number": report["dut_id"]}),
        );
        if let Some(ms) = report["start_time_millis"].as_i64() {
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            body.insert(
                "started_at".into(),
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
    }
}

/// A v1 run as the reference's capture server wrote it for `GET /runs`, with the
/// attachments synced to it.
fn run_json(base: &str, run: &StoredRun, inner: &Inner) -> Value {
    let b = &run.body;
    let serial = b["unit_under_test"]["serial_number"].clone();
    let part = b["unit_under_test"]["part_number"].clone();
    let started = b["started_at"].as_str().map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    });
    let duration = b["duration"].as_str().unwrap_or("PT0S").to_owned();
    let ended = started.map(|s| {
        s + tofu_upload::iso::parse_duration(&duration)
            .map(|d| chrono::Duration::from_std(d).unwrap())
            .unwrap_or_default()
    });
    let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let attachments: Vec<Value> = linked(inner, &run.id)
        .map(|(id, u)| {
            json!({
                "id": id,
                "filename": u.name,
                "content_type": u.mime,
                "size": u.data.as_ref().map(|d| d.1.len()),
                "download_url": format!("{base}/_storage/{id}"),
            })
        })
        .collect();
    json!({
        "id": run.id,
        "created_at": run.created_at,
        "started_at": fmt(started),
        "ended_at": fmt(ended),
        "duration": duration,
        "outcome": if b["run_passed"] == true { "PASS" } else { "FAIL" },
        "procedure": {"id": b["procedure_id"], "name": ""},
        "procedure_version": null,
        "unit": {
            "id": format!("unit-{}", serial.as_str().unwrap_or_default()),
            "serial_number": serial,
            "batch": null,
            "revision": {"id": "rev", "identifier": "A",
                         "component": {"id": "part", "part_number": part, "name": part}},
        },
        "phases": [],
        "attachments": attachments,
        "logs": [],
    })
}

/// A new upload (its bytes to come by `PUT`); returns its id.
fn new_upload(
    shared: &Arc<Shared>,
    inner: &mut Inner,
    name: &str,
    mime: &str,
    size: Option<u64>,
) -> String {
    let id = shared.new_id();
    inner.uploads.insert(
        id.clone(),
        Upload {
            name: name.to_owned(),
            mime: mime.to_owned(),
            size,
            data: None,
            run_id: None,
            finalized: false,
        },
    );
    inner.upload_order.push(id.clone());
    id
}

fn v2_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"message": message, "code": code, "issues": []}),
    )
}

/// The v2 API's work and answer.
fn route_v2(shared: &Arc<Shared>, inner: &mut Inner, recorded: &Recorded) -> Response {
    let base = shared.base.clone();
    let path = &recorded.path["/api/v2".len()..];
    let body: Value = serde_json::from_slice(&recorded.body).unwrap_or(Value::Null);
    let query = |key: &str| -> Vec<String> {
        recorded
            .query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let page = |items: Vec<Value>| -> Value {
        let limit: usize = query("limit")
            .first()
            .and_then(|l| l.parse().ok())
            .unwrap_or(50);
        let start: usize = query("cursor")
            .first()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let end = (start + limit).min(items.len());
        let has_more = end < items.len();
        json!({
            "data": items.get(start.min(items.len())..end).unwrap_or_default(),
            "meta": {"has_more": has_more, "next_cursor": if has_more { json!(end) } else { Value::Null }},
        })
    };
    match (recorded.method.as_str(), path) {
        ("POST", "/runs") => {
            let mut problems = super::v2_schema::run_create_problems(&body);
            if inner.refuse_sequences && body.get("sequences").is_some() {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Invalid input", "code": "BAD_REQUEST",
                           "issues": [{"message": "Unrecognized key: sequences", "path": ["sequences"]}]}),
                );
            }
            let procedure = body["procedure_id"].as_str().unwrap_or_default();
            if problems.is_empty() && !inner.procedures.iter().any(|(id, _)| id == procedure) {
                return v2_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Procedure not found");
            }
            if !problems.is_empty() {
                let issues: Vec<Value> = problems.iter().map(|p| json!({"message": p})).collect();
                inner.v2_problems.append(&mut problems);
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Invalid input", "code": "BAD_REQUEST", "issues": issues}),
                );
            }
            if let Some(reference) = body["client_run_ref"].as_str()
                && let Some(run) = inner
                    .runs
                    .iter()
                    .chain(&inner.deleted)
                    .find(|r| r.v2 && r.body["client_run_ref"] == reference)
            {
                return json_response(StatusCode::OK, json!({"id": run.id}));
            }
            let id = shared.new_id();
            inner.runs.push(StoredRun {
                id: id.clone(),
                body,
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                v2: true,
            });
            json_response(StatusCode::OK, json!({"id": id}))
        }
        ("GET", "/runs") => {
            let serials = query("serial_numbers");
            let outcomes = query("outcomes");
            let executions = query("execution_ids");
            let runs: Vec<Value> = inner
                .runs
                .iter()
                .filter(|r| r.v2)
                .filter(|r| {
                    serials.is_empty()
                        || serials
                            .iter()
                            .any(|s| r.body["serial_number"] == s.as_str())
                })
                .filter(|r| {
                    outcomes.is_empty() || outcomes.iter().any(|o| r.body["outcome"] == o.as_str())
                })
                .filter(|r| {
                    executions.is_empty()
                        || executions
                            .iter()
                            .any(|e| r.body["execution_id"] == e.as_str())
                })
                .map(|r| run_json_v2(&base, r, inner))
                .collect();
            json_response(StatusCode::OK, page(runs))
        }
        ("DELETE", "/runs") => {
            let ids = query("ids");
            let mut deleted = Vec::new();
            for id in ids {
                if let Some(i) = inner.runs.iter().position(|r| r.id == id) {
                    let run = inner.runs.remove(i);
                    inner.deleted.push(run);
                    deleted.push(id);
                }
            }
            json_response(StatusCode::OK, json!({"id": deleted}))
        }
        ("GET", p) if p.starts_with("/runs/") => {
            let id = &p["/runs/".len()..];
            match inner.runs.iter().find(|r| r.v2 && r.id == id) {
                Some(run) => json_response(StatusCode::OK, run_json_v2(&base, run, inner)),
                None => v2_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Run not found"),
            }
        }
        ("PATCH", p) if p.starts_with("/runs/") => {
            let id = p["/runs/".len()..].to_owned();
            if !inner.runs.iter().any(|r| r.id == id) {
                return v2_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Run not found");
            }
            let ids: Vec<String> = body["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            for upload in &ids {
                match inner.uploads.get(upload) {
                    Some(u) if u.data.is_some() && u.finalized => {}
                    _ => {
                        return v2_error(
                            StatusCode::BAD_REQUEST,
                            "BAD_REQUEST",
                            "Attachment not uploaded and finalized",
                        );
                    }
                }
            }
            for upload in ids {
                if let Some(u) = inner.uploads.get_mut(&upload) {
                    u.run_id = Some(id.clone());
                }
            }
            json_response(StatusCode::OK, json!({"id": id}))
        }
        ("POST", "/attachments") => {
            let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
                return v2_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "name is required");
            };
            let id = new_upload(shared, inner, name, "", None);
            json_response(
                StatusCode::OK,
                json!({"id": id, "upload_url": format!("{base}/_storage/{id}")}),
            )
        }
        ("POST", p) if p.starts_with("/attachments/") && p.ends_with("/finalize") => {
            let id = &p["/attachments/".len()..p.len() - "/finalize".len()];
            match inner.uploads.get_mut(id) {
                Some(u) if u.data.is_some() => {
                    u.finalized = true;
                    json_response(
                        StatusCode::OK,
                        json!({"url": format!("{base}/_storage/{id}")}),
                    )
                }
                Some(_) => v2_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "File not uploaded"),
                None => v2_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Attachment not found"),
            }
        }
        ("GET", "/procedures") => {
            let search = query("search_query").first().cloned().unwrap_or_default();
            let found: Vec<Value> = inner
                .procedures
                .iter()
                .filter(|(_, name)| name.to_lowercase().contains(&search.to_lowercase()))
                .map(|(id, name)| json!({"id": id, "name": name, "created_at": "2026-01-01T00:00:00.000Z"}))
                .collect();
            json_response(StatusCode::OK, page(found))
        }
        ("POST", "/procedures") => {
            let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
                return v2_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "name is required");
            };
            let id = shared.new_id();
            inner.procedures.push((id.clone(), name.to_owned()));
            json_response(StatusCode::OK, json!({"id": id}))
        }
        _ => v2_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found"),
    }
}

/// A v2 run as `GET /api/v2/runs/{id}` gives it (the capture's shape), with its files.
fn run_json_v2(base: &str, run: &StoredRun, inner: &Inner) -> Value {
    let b = &run.body;
    let attachments: Vec<Value> = linked(inner, &run.id)
        .map(|(id, u)| {
            json!({
                "id": id,
                "name": u.name,
                "size": u.data.as_ref().map(|d| d.1.len()),
                "content_type": u.mime,
                "is_report": false,
                "download_url": format!("{base}/_storage/{id}"),
            })
        })
        .collect();
    let procedure_name = inner
        .procedures
        .iter()
        .find(|(id, _)| b["procedure_id"] == id.as_str())
        .map(|(_, name)| name.clone());
    json!({
        "id": run.id,
        "created_at": run.created_at,
        "started_at": b["started_at"],
        "ended_at": b["ended_at"],
        "duration": "PT0S",
        "outcome": b["outcome"],
        "execution_id": b.get("execution_id").cloned().unwrap_or(Value::Null),
        "slot_key": b.get("slot_key").cloned().unwrap_or(Value::Null),
        "slot_name": b.get("slot_name").cloned().unwrap_or(Value::Null),
        "client_run_ref": b.get("client_run_ref").cloned().unwrap_or(Value::Null),
        "procedure": {"id": b["procedure_id"], "name": procedure_name, "version": b.get("procedure_version")},
        "unit": {"id": format!("unit-{}", b["serial_number"].as_str().unwrap_or_default()),
                 "serial_number": b["serial_number"], "sample": null,
                 "part": {"id": "part", "number": b.get("part_number"), "name": "",
                          "revision": {"id": "rev", "number": b.get("revision_number")}},
                 "batch": null},
        "docstring": b.get("docstring").cloned().unwrap_or(Value::Null),
        "created_by_user": null,
        "created_by_station": null,
        "operated_by": b.get("operated_by").cloned().unwrap_or(Value::Null),
        "phases": b.get("phases").cloned().unwrap_or(json!([])),
        "config": b.get("config").cloned().unwrap_or(json!([])),
        "secrets": [],
        "attachments": attachments,
    })
}

/// The uploads linked to a run, in upload order, with their ids.
fn linked<'a>(inner: &'a Inner, run_id: &'a str) -> impl Iterator<Item = (&'a String, &'a Upload)> {
    inner
        .upload_order
        .iter()
        .filter_map(|id| inner.uploads.get(id).map(|u| (id, u)))
        .filter(move |(_, u)| u.run_id.as_deref() == Some(run_id))
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that accepts connections and never answers; stops when dropped.
pub struct SilentServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accepted = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&accepted);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                if let Ok((stream, _)) = listener.accept() {
                    count.fetch_add(1, Ordering::SeqCst);
                    held.push(stream);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// How many connections were made to it.
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Random faults, one draw per request, from a seeded generator (the crash-loop campaign).
/// Half the faults drawn for a run's creation drop the answer after the run is created.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    pub seed: u64,
    /// The share of requests that get a fault, in percent.
    pub percent: u64,
    /// The longest slow answer (each is 100 ms to this, drawn at random).
    pub slow_max: Duration,
}

/// A fault the chaos mode injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChaosFault {
    /// HTTP 500, nothing done.
    Status500,
    /// HTTP 502, nothing done.
    Status502,
    /// HTTP 503, nothing done.
    Status503,
    /// HTTP 429 with `Retry-After: 1`, nothing done.
    TooMany,
    /// The connection is closed without an answer, nothing done.
    DropBefore,
    /// The request is handled (a run created, a file stored or linked), then the connection
    /// is closed without an answer: the client can't know it worked.
    DropAfter,
    /// The request is handled, the answer comes late (maybe after the client gave up).
    Slow,
    /// The storage `PUT` fails (HTTP 500), nothing stored.
    PutFail,
    /// The request is handled, then answered HTTP 408.
    Status408After,
    /// The request is handled, then answered HTTP 429.
    TooManyAfter,
    /// The connection is closed at once, and the request is handled later (a create stored
    /// after the client looked for it).
    LateStore,
    /// HTTP 503 with `Retry-After` of thousands of years, nothing done.
    HugeRetryAfter,
    /// The request is handled, then answered with 20 MiB.
    HugeBody,
}

impl ChaosFault {
    const ANY: [ChaosFault; 11] = [
        ChaosFault::Status500,
        ChaosFault::Status502,
        ChaosFault::Status503,
        ChaosFault::TooMany,
        ChaosFault::DropBefore,
        ChaosFault::DropAfter,
        ChaosFault::Slow,
        ChaosFault::Status408After,
        ChaosFault::TooManyAfter,
        ChaosFault::HugeRetryAfter,
        ChaosFault::HugeBody,
    ];

    fn response(self) -> Response {
        let (status, message) = match self {
            ChaosFault::Status502 => (StatusCode::BAD_GATEWAY, "Bad gateway"),
            ChaosFault::Status503 => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
            ChaosFault::TooMany => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            ChaosFault::PutFail => (StatusCode::INTERNAL_SERVER_ERROR, "Storage failure"),
            ChaosFault::Status408After => (StatusCode::REQUEST_TIMEOUT, "Request timeout"),
            ChaosFault::TooManyAfter => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            ChaosFault::HugeRetryAfter => (StatusCode::SERVICE_UNAVAILABLE, "Come back later"),
            ChaosFault::HugeBody => {
                return (StatusCode::OK, "x".repeat(20 << 20)).into_response();
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        };
        let mut response = json_response(
            status,
            json!({"success": false, "error": {"message": format!("{message} (chaos)")}}),
        );
        let retry_after = match self {
            ChaosFault::TooMany | ChaosFault::TooManyAfter => Some(1u64),
            ChaosFault::HugeRetryAfter => Some(100_000_000_000),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

struct ChaosState {
    config: Chaos,
    enabled: bool,
    rng: u64,
    injected: Vec<Injected>,
}

/// A fault injected into one request.
#[derive(Debug, Clone)]
pub struct Injected {
    pub fault: ChaosFault,
    pub method: String,
    pub path: String,
    /// How late a [`ChaosFault::Slow`] answer was.
    pub slow: Option<Duration>,
}

impl ChaosState {
    fn new(config: Chaos) -> Self {
        ChaosState {
            config,
            enabled: true,
            rng: config.seed,
            injected: Vec::new(),
        }
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The fault for this request, if any, with the delay of a slow answer.
    fn draw(&mut self, method: &str, path: &str) -> Option<(ChaosFault, Duration)> {
        if !self.enabled || self.next() % 100 >= self.config.percent {
            return None;
        }
        let put = method == "PUT" && path.starts_with("/_storage/");
        let create = method == "POST" && (path == "/api/v1/runs" || path == "/api/v2/runs");
        let kinds = ChaosFault::ANY.len() as u64 + u64::from(put);
        let fault = match self.next() % kinds {
            // The hardest cases, made common: the run is created and its answer lost, or it
            // is stored after the client looked for it.
            _ if create && self.next().is_multiple_of(2) => {
                if self.next().is_multiple_of(2) {
                    ChaosFault::LateStore
                } else {
                    ChaosFault::DropAfter
                }
            }
            i if i < ChaosFault::ANY.len() as u64 => ChaosFault::ANY[i as usize],
            _ => ChaosFault::PutFail,
        };
        let max = self.config.slow_max.as_millis().max(101) as u64;
        let slow = Duration::from_millis(100 + self.next() % (max - 100));
        self.injected.push(Injected {
            fault,
            method: method.to_owned(),
            path: path.to_owned(),
            slow: matches!(fault, ChaosFault::Slow | ChaosFault::LateStore).then_some(slow),
        });
        Some((fault, slow))
    }
}
