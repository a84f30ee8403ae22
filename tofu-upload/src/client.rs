//! The async client for TofuPilot's v1 API.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;

use crate::config::{ClientBuilder, Config};
use crate::error::{AttachmentFailure, Error};
use crate::openhtf;
use crate::types::{
    CLIENT_NAME, CLIENT_VERSION, CreateRun, ImportedRun, Run, RunAttachment, RunCreated,
    UploadedAttachment,
};

/// At most this many attachments per run (the official client's limit).
pub const MAX_ATTACHMENTS: usize = 100;
/// At most this many bytes per attachment or report file: 10 MiB.
pub const MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

const JSON: &str = "application/json";
const OCTET_STREAM: &str = "application/octet-stream";
const USER_AGENT: &str = concat!("tofu-upload/", env!("CARGO_PKG_VERSION"));
/// How much of an unexpected body an error quotes.
const SNIPPET: usize = 300;
/// How much of the server's own error message an error keeps (a server could send megabytes;
/// the message goes to the console and into the outbox's state).
const MESSAGE_MAX: usize = 1000;
/// The most read of a successful API answer: a run's answer is a few hundred bytes, a unit's
/// list of runs rarely more than a few MiB. More is treated as a server error.
pub const MAX_ANSWER: usize = 16 << 20;
/// The most read of an error answer (only its message is kept).
const MAX_ERROR_ANSWER: usize = 1 << 20;
/// What replaces the API key wherever an answer quotes it.
const KEY_SHOWN_AS: &str = "<API key>";

/// Installs rustls' `ring` crypto provider as the process default, which reqwest's
/// `rustls-no-provider` backend needs before a client is built. Idempotent: if a
/// provider is already installed (by us or by the application), it is kept. Every
/// builder of this crate calls it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Async client for TofuPilot's v1 REST API, speaking it like the official Python
/// client 2.26.1 (`TofuPilotClient`).
///
/// Every request carries `Authorization: Bearer <key>` and `Content-Type:
/// application/json`; uploads to presigned storage URLs carry only their
/// `Content-Type`. There are no retries: [`Error::is_retryable`] tells the caller
/// whether trying again later makes sense. For scripts without an async runtime, use
/// [`blocking::TofuPilotClient`](crate::blocking::TofuPilotClient).
///
/// ```no_run
/// use tofu_upload::{CreateRun, TofuPilotClient, UnitUnderTest};
///
/// # async fn demo() -> Result<(), tofu_upload::Error> {
/// let client = TofuPilotClient::from_env()?; // TOFUPILOT_API_KEY, TOFUPILOT_URL
/// let run = CreateRun::new(UnitUnderTest::new("00102").part_number("PCB01"), true)
///     .procedure_id("FVT1");
/// let created = client.create_run(&run).await?;
/// println!("run {} at {:?}", created.id, created.url);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TofuPilotClient {
    http: reqwest::Client,
    config: Arc<Config>,
    api_url: String,
    /// `{base}/api/v2`.
    pub(crate) api_v2_url: String,
    auth: HeaderValue,
    /// Procedure names resolved to their v2 ids, for this client's life.
    pub(crate) procedures: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl fmt::Debug for TofuPilotClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TofuPilotClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct InitializeUpload<'a> {
    name: &'a str,
    #[serde(rename = "mimeType")]
    mime_type: &'a str,
    #[serde(rename = "sizeBytes", skip_serializing_if = "is_zero")]
    size_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Deserialize)]
struct UploadGrant {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "uploadUrl")]
    upload_url: Option<String>,
}

#[derive(Serialize)]
struct SyncUpload<'a> {
    upload_id: &'a str,
    run_id: &'a str,
}

#[derive(Serialize)]
struct ImportRequest<'a> {
    upload_id: &'a str,
    importer: &'a str,
    client: &'a str,
    client_version: &'a str,
}

/// A request's description for errors: method and endpoint without query.
pub(crate) struct Target {
    pub(crate) method: &'static str,
    pub(crate) endpoint: String,
}

impl TofuPilotClient {
    /// A builder for explicit settings (anything unset comes from the environment).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `TOFUPILOT_API_KEY` and `TOFUPILOT_URL`.
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::new().build()
    }

    /// A client for a resolved configuration.
    pub fn from_config(config: Config) -> Result<Self, Error> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout())
            .user_agent(USER_AGENT);
        if let Some(path) = config.ca_certificate() {
            let pem = std::fs::read(path).map_err(|e| Error::CaCertificate {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::CaCertificate {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(Error::CaCertificate {
                    path: path.to_owned(),
                    reason: "no PEM certificate in the file".to_owned(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(Error::ClientBuild)?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.api_key().expose_secret()))
                .map_err(|_| {
                    Error::InvalidInput(
                        "the API key holds characters not allowed in a header".into(),
                    )
                })?;
        auth.set_sensitive(true);
        Ok(Self {
            http,
            api_url: config.api_url(),
            api_v2_url: format!("{}/api/v2", config.base_url()),
            config: Arc::new(config),
            auth,
            procedures: Arc::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates a run (`POST /api/v1/runs`), then uploads its
    /// [`attachments`](CreateRun::attachments) one by one (initialize → PUT → sync).
    ///
    /// Before anything is sent, the attachments are checked as the official client
    /// does: at most [`MAX_ATTACHMENTS`] files, each an existing file of at most
    /// [`MAX_FILE_SIZE`] bytes ([`Error::TooManyAttachments`],
    /// [`Error::FileNotFound`], [`Error::FileTooLarge`]), and the body is encoded
    /// ([`Error::Encode`]).
    ///
    /// If the run is created but an attachment fails, the others are still tried and
    /// the result is [`Error::Attachments`], which carries the run id.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tofu_upload::{CreateRun, CreateMeasurement, CreateMeasurementOutcome, CreatePhase, CreatePhaseOutcome, UnitUnderTest};
    ///
    /// # async fn demo(client: &tofu_upload::TofuPilotClient) -> Result<(), tofu_upload::Error> {
    /// let run = CreateRun::new(UnitUnderTest::new("PCB1A001").part_number("PCB1"), true)
    ///     .procedure_id("FVT1")
    ///     .started_at(chrono::Utc::now())
    ///     .duration(Duration::from_secs(5))
    ///     .phase(
    ///         CreatePhase::new("phase_connect", CreatePhaseOutcome::Pass, 1_737_387_126_058, 1_737_387_131_070)
    ///             .measurement(CreateMeasurement::new("is_connected", CreateMeasurementOutcome::Pass).value(true)),
    ///     )
    ///     .attachment("data/temperature-map.png");
    /// let created = client.create_run(&run).await?;
    /// assert_eq!(created.attachments.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_run(&self, run: &CreateRun) -> Result<RunCreated, Error> {
        check_attachments(&run.attachments).await?;
        let body = to_json(run)?;
        tracing::debug!(target: "tofu_upload", serial_number = %run.unit_under_test.serial_number, "creating run");
        let (target, status, bytes) = self.api_raw(Method::POST, "/runs", &[], Some(body)).await?;
        let mut created = parse_created(&target, status, &bytes)?;
        report_created("Run created", &created);

        let mut failures = Vec::new();
        for path in &run.attachments {
            match self.upload_attachment(&created.id, path).await {
                Ok(uploaded) => created.attachments.push(uploaded),
                Err(error) => {
                    tracing::error!(target: "tofu_upload", path = %path.display(), %error, "attachment upload failed");
                    failures.push(AttachmentFailure {
                        name: file_name(path),
                        path: Some(path.clone()),
                        phase: None,
                        error: Box::new(error),
                    });
                }
            }
        }
        if failures.is_empty() {
            Ok(created)
        } else {
            Err(Error::Attachments {
                run_id: created.id,
                run_url: created.url,
                uploaded: created.attachments,
                failures,
            })
        }
    }

    /// Uploads one file and links it to an existing run: `POST /uploads/initialize`
    /// `{name, mimeType, sizeBytes}`, `PUT` of the bytes to the returned URL (no
    /// `Authorization`), `POST /uploads/sync` `{upload_id, run_id}`. The MIME type is
    /// guessed from the file name (`application/octet-stream` when unknown).
    pub async fn upload_attachment(
        &self,
        run_id: &str,
        path: impl AsRef<Path>,
    ) -> Result<UploadedAttachment, Error> {
        let path = path.as_ref();
        check_file(path).await?;
        let data = read_file(path).await?;
        check_size(path, data.len() as u64)?;
        let name = file_name(path);
        let mime = guess_mime(path);
        let mut uploaded = self
            .upload_attachment_bytes(run_id, &name, Some(mime), data)
            .await?;
        uploaded.path = Some(path.to_owned());
        Ok(uploaded)
    }

    /// Uploads bytes as an attachment named `name` and links it to an existing run
    /// (`mime` defaults to `application/octet-stream`).
    pub async fn upload_attachment_bytes(
        &self,
        run_id: &str,
        name: &str,
        mime: Option<&str>,
        data: Vec<u8>,
    ) -> Result<UploadedAttachment, Error> {
        if run_id.is_empty() {
            return Err(Error::InvalidInput(
                "a run id is required to attach a file".into(),
            ));
        }
        check_size(Path::new(name), data.len() as u64)?;
        let mime = mime.filter(|m| !m.is_empty()).unwrap_or(OCTET_STREAM);
        let upload_id = self.upload(name, mime, data).await?;
        let body = to_json(&SyncUpload {
            upload_id: &upload_id,
            run_id,
        })?;
        self.api_raw(Method::POST, "/uploads/sync", &[], Some(body))
            .await?;
        tracing::info!(target: "tofu_upload", name, "uploaded attachment");
        Ok(UploadedAttachment {
            name: name.to_owned(),
            upload_id,
            path: None,
        })
    }

    /// Fetches the runs of a unit: `GET /api/v1/runs?serial_number=...`.
    ///
    /// The answer is the bare array of runs (older servers wrap it as
    /// `{"data": [...]}`, also accepted). An empty serial number is refused without a
    /// request, as the official client does.
    ///
    /// ```no_run
    /// # async fn demo(client: &tofu_upload::TofuPilotClient) -> Result<(), tofu_upload::Error> {
    /// for run in client.get_runs("00102").await? {
    ///     for attachment in &run.attachments {
    ///         if let Some(name) = &attachment.filename {
    ///             client.download_attachment(attachment, format!("downloads/{name}")).await?;
    ///         }
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_runs(&self, serial_number: &str) -> Result<Vec<Run>, Error> {
        if serial_number.is_empty() {
            return Err(Error::InvalidInput(
                "A 'serial_number' is required to fetch runs.".into(),
            ));
        }
        let (target, status, bytes) = self
            .api_raw(
                Method::GET,
                "/runs",
                &[("serial_number", serial_number)],
                None,
            )
            .await?;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Runs {
            Bare(Vec<Run>),
            Wrapped { data: Vec<Run> },
        }
        match serde_json::from_slice::<Runs>(&bytes) {
            Ok(Runs::Bare(runs) | Runs::Wrapped { data: runs }) => Ok(runs),
            Err(e) => Err(malformed(
                &target,
                status,
                &format!("expected a list of runs ({e})"),
                &bytes,
            )),
        }
    }

    /// Deletes a run: `DELETE /api/v1/runs/{id}` (the v1 API's `delete_run`). The uploader uses
    /// it only to remove a second copy of a run it created itself (a create the server stored
    /// late, after the run had been looked up and created again).
    pub async fn delete_run(&self, run_id: &str) -> Result<(), Error> {
        if run_id.is_empty()
            || !run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::InvalidInput(format!(
                "{run_id:?} is not a run id that can be deleted"
            )));
        }
        self.api_raw(Method::DELETE, &format!("/runs/{run_id}"), &[], None)
            .await?;
        tracing::info!(target: "tofu_upload", id = run_id, "run deleted");
        Ok(())
    }

    /// Downloads a run's attachment to `dest` (written to `dest.part`, then renamed).
    /// Returns the number of bytes written.
    pub async fn download_attachment(
        &self,
        attachment: &RunAttachment,
        dest: impl AsRef<Path>,
    ) -> Result<u64, Error> {
        let url = attachment.download_url().ok_or_else(|| {
            Error::InvalidInput(format!(
                "attachment {} has no download URL",
                attachment
                    .filename
                    .as_deref()
                    .or(attachment.id.as_deref())
                    .unwrap_or("?")
            ))
        })?;
        self.download(url, dest).await
    }

    /// Downloads `url` to `dest`. A relative URL is taken relative to the base URL.
    /// The API key is sent only to the TofuPilot instance itself (same scheme, host
    /// and port as the base URL), never to presigned storage URLs elsewhere.
    pub async fn download(&self, url: &str, dest: impl AsRef<Path>) -> Result<u64, Error> {
        let dest = dest.as_ref();
        let base = parse_url(self.config.base_url())?;
        let url = base.join(url).map_err(|e| Error::InvalidUrl {
            url: strip_query(url),
            reason: e.to_string(),
        })?;
        let target = Target {
            method: "GET",
            endpoint: endpoint_of(&url),
        };
        let mut request = self.http.get(url.clone());
        if url.origin() == base.origin() {
            request = request.header(AUTHORIZATION, self.auth.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(e, &target))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.failed_response(&target, response).await);
        }
        let part = part_path(dest);
        let io_err = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io {
                action,
                path,
                source,
            }
        };
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(io_err("cannot write", &part))?;
        let mut written = 0u64;
        let result: Result<(), Error> = async {
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.transport_error(e, &target))?
            {
                file.write_all(&chunk)
                    .await
                    .map_err(io_err("cannot write", &part))?;
                written += chunk.len() as u64;
            }
            file.flush().await.map_err(io_err("cannot write", &part))?;
            file.sync_all()
                .await
                .map_err(io_err("cannot write", &part))?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        tokio::fs::rename(&part, dest)
            .await
            .map_err(io_err("cannot write", dest))?;
        Ok(written)
    }

    /// Creates a run from a saved OpenHTF JSON report, as the official client's
    /// `create_run_from_openhtf_report`: the file is uploaded (initialize → PUT), then
    /// `POST /api/v1/import {"upload_id", "importer": "OPENHTF", "client",
    /// "client_version"}` makes the server parse it into a run; then every phase
    /// attachment inlined in the report (base64 `data`) is uploaded and linked to the
    /// run, in file order, at most [`MAX_ATTACHMENTS`].
    ///
    /// Checked before anything is sent: the file exists and is at most
    /// [`MAX_FILE_SIZE`] bytes, it is a JSON object, and the API key has at least 10
    /// characters ([`Error::InvalidApiKey`]). Attachments that cannot be uploaded
    /// (no inline data, too large, over the limit, or a failed request) make the
    /// result [`Error::Attachments`], which carries the run id.
    ///
    /// ```no_run
    /// # async fn demo(client: &tofu_upload::TofuPilotClient) -> Result<(), tofu_upload::Error> {
    /// let imported = client
    ///     .create_run_from_openhtf_report("records/PCB01A69658.openhtf_test.json")
    ///     .await?;
    /// println!("run {} with {} attachments", imported.id, imported.attachments.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_run_from_openhtf_report(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<ImportedRun, Error> {
        let path = path.as_ref();
        check_file(path).await?;
        self.check_key_format()?;
        let bytes = read_file(path).await?;
        check_size(path, bytes.len() as u64)?;
        self.import_openhtf(&file_name(path), Some(path), bytes)
            .await
    }

    /// Same as [`create_run_from_openhtf_report`](Self::create_run_from_openhtf_report)
    /// for a report held in memory, uploaded under `file_name`.
    pub async fn create_run_from_openhtf_json(
        &self,
        file_name: &str,
        report: Vec<u8>,
    ) -> Result<ImportedRun, Error> {
        check_size(Path::new(file_name), report.len() as u64)?;
        self.check_key_format()?;
        self.import_openhtf(file_name, None, report).await
    }

    fn check_key_format(&self) -> Result<(), Error> {
        if self.config.api_key().len() < 10 {
            return Err(Error::InvalidApiKey);
        }
        Ok(())
    }

    async fn import_openhtf(
        &self,
        name: &str,
        path: Option<&Path>,
        report: Vec<u8>,
    ) -> Result<ImportedRun, Error> {
        let attachments =
            openhtf::report_attachments(&report).map_err(|reason| Error::InvalidReport {
                path: path.map_or_else(|| PathBuf::from(name), Path::to_owned),
                reason,
            })?;
        tracing::debug!(target: "tofu_upload", name, "importing OpenHTF report");
        let mime = guess_mime(Path::new(name));
        let report_upload_id = self.upload(name, mime, report).await?;
        let body = to_json(&ImportRequest {
            upload_id: &report_upload_id,
            importer: "OPENHTF",
            client: CLIENT_NAME,
            client_version: CLIENT_VERSION,
        })?;
        let (target, status, bytes) = self
            .api_raw(Method::POST, "/import", &[], Some(body))
            .await?;
        let created = parse_created(&target, status, &bytes)?;
        report_created("Run imported", &created);

        let mut imported = ImportedRun {
            id: created.id,
            url: created.url,
            message: created.message,
            warnings: created.warnings,
            report_upload_id,
            attachments: Vec::new(),
        };
        let mut failures = Vec::new();
        for (index, item) in attachments.into_iter().enumerate() {
            let fail = |error: Error| AttachmentFailure {
                name: item.name.clone(),
                path: None,
                phase: Some(item.phase.clone()),
                error: Box::new(error),
            };
            if index >= MAX_ATTACHMENTS {
                failures.push(fail(Error::TooManyAttachments {
                    count: index + 1,
                    max: MAX_ATTACHMENTS,
                }));
                continue;
            }
            let Some(data) = &item.data else {
                failures.push(fail(Error::InvalidInput(
                    "the report holds no data for it (written without inline attachments)".into(),
                )));
                continue;
            };
            let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                Ok(bytes) => bytes,
                Err(e) => {
                    failures.push(fail(Error::InvalidInput(format!(
                        "its data is not base64: {e}"
                    ))));
                    continue;
                }
            };
            match self
                .upload_attachment_bytes(&imported.id, &item.name, item.mimetype.as_deref(), bytes)
                .await
            {
                Ok(uploaded) => imported.attachments.push(uploaded),
                Err(error) => {
                    tracing::error!(target: "tofu_upload", name = %item.name, %error, "attachment upload failed");
                    failures.push(fail(error));
                }
            }
        }
        if failures.is_empty() {
            Ok(imported)
        } else {
            Err(Error::Attachments {
                run_id: imported.id,
                run_url: imported.url,
                uploaded: imported.attachments,
                failures,
            })
        }
    }

    /// `POST /uploads/initialize` then `PUT` to the returned URL; returns the upload id.
    async fn upload(&self, name: &str, mime: &str, data: Vec<u8>) -> Result<String, Error> {
        let body = to_json(&InitializeUpload {
            name,
            mime_type: mime,
            size_bytes: data.len() as u64,
        })?;
        let (target, status, bytes) = self
            .api_raw(Method::POST, "/uploads/initialize", &[], Some(body))
            .await?;
        let grant: UploadGrant = parse_json(&target, status, &bytes)?;
        let (Some(id), Some(upload_url)) = (
            grant.id.filter(|s| !s.is_empty()),
            grant.upload_url.filter(|s| !s.is_empty()),
        ) else {
            return Err(malformed(
                &target,
                status,
                "missing 'id' or 'uploadUrl'",
                &bytes,
            ));
        };
        self.put_presigned(&target, status, &upload_url, mime, data)
            .await?;
        Ok(id)
    }

    /// `PUT` of `data` to a presigned storage URL the answer to `target` gave (no
    /// `Authorization`); a bad URL is a malformed answer of `target`.
    pub(crate) async fn put_presigned(
        &self,
        target: &Target,
        status: StatusCode,
        upload_url: &str,
        mime: &str,
        data: Vec<u8>,
    ) -> Result<(), Error> {
        // The server's URL, not the configured one: a bad one is a malformed answer (the body
        // is not quoted: it holds the URL's signature).
        let url = Url::parse(upload_url).map_err(|e| Error::MalformedResponse {
            method: target.method,
            endpoint: target.endpoint.clone(),
            status: status.as_u16(),
            reason: format!(
                "'uploadUrl' {:?} is not a URL ({e})",
                strip_query(upload_url)
            ),
        })?;
        let put = Target {
            method: "PUT",
            endpoint: endpoint_of(&url),
        };
        let response = self
            .http
            .put(url)
            .header(CONTENT_TYPE, mime)
            .body(data)
            .send()
            .await
            .map_err(|e| self.transport_error(e, &put))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.failed_response(&put, response).await);
        }
        Ok(())
    }

    /// One v1 API request; a non-2xx answer is an [`Error::Api`].
    async fn api_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(Target, StatusCode, Vec<u8>), Error> {
        self.request_at(&self.api_url, method, path, query, body)
            .await
    }

    /// One request to `{api}{path}`; a non-2xx answer is an [`Error::Api`].
    pub(crate) async fn request_at(
        &self,
        api: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(Target, StatusCode, Vec<u8>), Error> {
        let mut url = parse_url(&format!("{api}{path}"))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let target = Target {
            method: method_name(&method),
            endpoint: endpoint_of(&url),
        };
        let mut request = self
            .http
            .request(method, url)
            .header(CONTENT_TYPE, JSON)
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(e, &target))?;
        let status = response.status();
        if !status.is_success() {
            let error = self.failed_response(&target, response).await;
            if let Error::Api {
                message, warnings, ..
            } = &error
            {
                for warning in warnings {
                    tracing::warn!(target: "tofu_upload", "{warning}");
                }
                tracing::error!(target: "tofu_upload", status = status.as_u16(), "{message}");
            }
            return Err(error);
        }
        let bytes = self
            .read_answer(response, &target, MAX_ANSWER, true)
            .await?;
        Ok((target, status, bytes))
    }

    /// The answer's body, at most `limit` bytes, with the API key scrubbed out. Over the
    /// limit: an error when `refuse_more`, else the body is cut there.
    async fn read_answer(
        &self,
        mut response: reqwest::Response,
        target: &Target,
        limit: usize,
        refuse_more: bool,
    ) -> Result<Vec<u8>, Error> {
        let status = response.status();
        let too_large = || Error::AnswerTooLarge {
            method: target.method,
            endpoint: target.endpoint.clone(),
            status: status.as_u16(),
            limit,
        };
        if refuse_more && response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e, target))?
        {
            if body.len() + chunk.len() > limit {
                if refuse_more {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(self.scrub(body))
    }

    /// `body` with every occurrence of the API key replaced (a server or proxy quoting the
    /// request's header). Keys under 8 characters are not real keys and are left alone, so
    /// that a test key "k" doesn't blank every letter k.
    fn scrub(&self, body: Vec<u8>) -> Vec<u8> {
        let key = self.config.api_key().expose_secret().as_bytes();
        if key.len() < 8 || !body.windows(key.len()).any(|w| w == key) {
            return body;
        }
        let mut out = Vec::with_capacity(body.len());
        let mut rest = &body[..];
        while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(KEY_SHOWN_AS.as_bytes());
            rest = &rest[at + key.len()..];
        }
        out.extend_from_slice(rest);
        out
    }

    /// The error for a response with a failure status (at most [`MAX_ERROR_ANSWER`] of its
    /// body read, the key scrubbed).
    async fn failed_response(&self, target: &Target, response: reqwest::Response) -> Error {
        let status = response.status();
        let content_type = header_str(response.headers().get(CONTENT_TYPE));
        let wait = retry_after(response.headers());
        let body = self
            .read_answer(response, target, MAX_ERROR_ANSWER, false)
            .await
            .unwrap_or_default();
        api_error(target, status, content_type.as_deref(), &body, wait)
    }

    fn transport_error(&self, error: reqwest::Error, target: &Target) -> Error {
        let error = error.without_url();
        if error.is_timeout() {
            Error::Timeout {
                method: target.method,
                endpoint: target.endpoint.clone(),
                timeout: self.config.timeout(),
            }
        } else {
            let mut reason = error_chain(&error);
            if target.endpoint.starts_with("https://")
                && (reason.contains("InvalidContentType") || reason.contains("corrupt message"))
            {
                reason.push_str(
                    " (the server answered in plain HTTP, not HTTPS: its URL starts with http://, \
                     or the port is not its HTTPS port)",
                );
            }
            Error::Network {
                method: target.method,
                endpoint: target.endpoint.clone(),
                reason,
                source: error,
            }
        }
    }
}

fn report_created(what: &str, created: &RunCreated) {
    for warning in &created.warnings {
        tracing::warn!(target: "tofu_upload", "{warning}");
    }
    match &created.url {
        Some(url) => tracing::info!(target: "tofu_upload", id = %created.id, "{what}: {url}"),
        None => tracing::info!(target: "tofu_upload", id = %created.id, "{what}"),
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::Encode)
}

pub(crate) fn parse_json<T: DeserializeOwned>(
    target: &Target,
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| malformed(target, status, &e.to_string(), bytes))
}

/// The answer to a create or an import: the run's id is what everything after links to, so an
/// empty one is a malformed answer, not a run.
fn parse_created(target: &Target, status: StatusCode, bytes: &[u8]) -> Result<RunCreated, Error> {
    let created: RunCreated = parse_json(target, status, bytes)?;
    if created.id.trim().is_empty() {
        return Err(malformed(target, status, "the run id is empty", bytes));
    }
    Ok(created)
}

pub(crate) fn malformed(target: &Target, status: StatusCode, reason: &str, body: &[u8]) -> Error {
    Error::MalformedResponse {
        method: target.method,
        endpoint: target.endpoint.clone(),
        status: status.as_u16(),
        reason: format!("{reason}; body: {}", snippet(body)),
    }
}

/// The server's error: `error.message` (v1), else `message` (v2, with `issues`), else
/// a string `error`, else the start of the body, else the reason phrase.
fn api_error(
    target: &Target,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Error {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut message = json.as_ref().and_then(|j| {
        text(j.pointer("/error/message"))
            .or_else(|| text(j.get("message")))
            .or_else(|| text(j.get("error")))
    });
    if let (Some(message), Some(issues)) = (
        message.as_mut(),
        json.as_ref()
            .and_then(|j| j.get("issues"))
            .and_then(serde_json::Value::as_array),
    ) {
        let issues: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.get("message").and_then(serde_json::Value::as_str))
            .collect();
        if !issues.is_empty() {
            message.push_str(": ");
            message.push_str(&issues.join("; "));
        }
    }
    let warnings = json
        .as_ref()
        .and_then(|j| j.get("warnings"))
        .and_then(serde_json::Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let message = message.unwrap_or_else(|| {
        let body = snippet(body);
        if body.is_empty() || content_type.is_some_and(|c| c.contains("html")) {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            body
        }
    });
    let message = match message.char_indices().nth(MESSAGE_MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    };
    Error::Api {
        status: status.as_u16(),
        method: target.method,
        endpoint: target.endpoint.clone(),
        message,
        warnings,
        retry_after,
    }
}

/// The `Retry-After` header: a number of seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(SNIPPET) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "HTTP",
    }
}

fn header_str(value: Option<&HeaderValue>) -> Option<String> {
    value.and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn parse_url(url: &str) -> Result<Url, Error> {
    Url::parse(url).map_err(|e| Error::InvalidUrl {
        url: strip_query(url),
        reason: e.to_string(),
    })
}

/// Scheme, host, port and path: what errors show of a URL (a presigned URL's query
/// holds its signature).
pub(crate) fn endpoint_of(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

pub(crate) fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn guess_mime(path: &Path) -> &'static str {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or(OCTET_STREAM)
}

pub(crate) fn check_size(path: &Path, size: u64) -> Result<(), Error> {
    if size > MAX_FILE_SIZE {
        return Err(Error::FileTooLarge {
            path: path.to_owned(),
            size,
            max: MAX_FILE_SIZE,
        });
    }
    Ok(())
}

/// The official client's checks on a file to upload: it exists, it is a file, it is
/// not over the limit.
async fn check_file(path: &Path) -> Result<(), Error> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_file() => check_size(path, meta.len()),
        _ => Err(Error::FileNotFound {
            path: path.to_owned(),
        }),
    }
}

async fn check_attachments(paths: &[PathBuf]) -> Result<(), Error> {
    if paths.len() > MAX_ATTACHMENTS {
        return Err(Error::TooManyAttachments {
            count: paths.len(),
            max: MAX_ATTACHMENTS,
        });
    }
    for path in paths {
        check_file(path).await?;
    }
    Ok(())
}

async fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    tokio::fs::read(path).await.map_err(|source| Error::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_errors_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<TofuPilotClient>();
        send_sync::<crate::blocking::TofuPilotClient>();
        send_sync::<Error>();
        send_sync::<crate::LogCollector>();
    }

    #[test]
    fn initialize_body_matches_the_python_client() {
        let body = InitializeUpload {
            name: "temperature-map.png",
            mime_type: "image/png",
            size_bytes: 66,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"name":"temperature-map.png","mimeType":"image/png","sizeBytes":66}"#
        );
        let empty = InitializeUpload {
            size_bytes: 0,
            ..body
        };
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            r#"{"name":"temperature-map.png","mimeType":"image/png"}"#
        );
    }

    #[test]
    fn mime_guesses_like_python_mimetypes() {
        assert_eq!(guess_mime(Path::new("a/temperature-map.png")), "image/png");
        assert_eq!(guess_mime(Path::new("measurement-notes.txt")), "text/plain");
        assert_eq!(guess_mime(Path::new("raw_capture")), OCTET_STREAM);
        assert_eq!(guess_mime(Path::new("r.json")), JSON);
    }

    #[test]
    fn errors_quote_the_server() {
        let target = Target {
            method: "POST",
            endpoint: "http://h/api/v1/runs".into(),
        };
        let e = api_error(
            &target,
            StatusCode::BAD_REQUEST,
            Some(JSON),
            br#"{"success":false,"error":{"message":"Procedure 'NOPE' not found"},"warnings":["part_number was ignored"]}"#,
            None,
        );
        assert_eq!(
            e.to_string(),
            "TofuPilot answered HTTP 400 Bad Request to POST http://h/api/v1/runs: Procedure 'NOPE' not found"
        );
        let Error::Api { warnings, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(warnings, &["part_number was ignored"]);
        let e = api_error(
            &target,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(JSON),
            br#"{"message":"Invalid input","code":"BAD","issues":[{"message":"phases.0.outcome: bad"}]}"#,
            None,
        );
        assert!(
            e.to_string()
                .ends_with("Invalid input: phases.0.outcome: bad"),
            "{e}"
        );
        let e = api_error(
            &target,
            StatusCode::BAD_GATEWAY,
            Some("text/html"),
            b"<html>",
            None,
        );
        assert!(e.to_string().ends_with(": Bad Gateway"), "{e}");
        assert!(e.is_retryable());
    }

    #[test]
    fn endpoints_hide_presigned_queries() {
        let url = Url::parse("https://storage.example/b/k?X-Amz-Signature=secret").unwrap();
        assert_eq!(endpoint_of(&url), "https://storage.example/b/k");
        assert_eq!(strip_query("https://s/x?sig=1"), "https://s/x");
    }
}
