//! Errors of the TofuPilot client.
//!
//! No variant carries the API key: requests are described by method and endpoint
//! (scheme, host and path; the query of a presigned storage URL is left out), and the
//! server's own message is quoted.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to TofuPilot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No API key was given and `TOFUPILOT_API_KEY` is not set.
    #[error("no TofuPilot API key: set the TOFUPILOT_API_KEY environment variable")]
    MissingApiKey,

    /// The API key is too short to be one (checked on the OpenHTF import path, as the
    /// Python client does).
    #[error("invalid API key format: a TofuPilot API key has at least 10 characters")]
    InvalidApiKey,

    /// The base URL cannot be used.
    #[error("invalid TofuPilot URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// The extra CA certificate file cannot be read or holds no certificate.
    #[error("cannot use CA certificate {}: {reason}", path.display())]
    CaCertificate {
        /// The PEM file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    ClientBuild(#[source] reqwest::Error),

    /// The blocking client's private runtime could not be started.
    #[error("cannot start the runtime of the blocking client: {0}")]
    Runtime(#[source] std::io::Error),

    /// More attachments than the client-side limit; nothing was sent.
    #[error("Number of attachments ({count}) exceeds the maximum allowed limit of {max}")]
    TooManyAttachments {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// An attachment or report path is not a readable file; nothing was sent.
    #[error("The file at {} does not exist or is not accessible", path.display())]
    FileNotFound {
        /// The path.
        path: PathBuf,
    },

    /// A file is over the client-side size limit; nothing was sent for it.
    #[error(
        "File size ({:.2} MB) exceeds the maximum allowed size of {:.2} MB: {}",
        mebibytes(*size),
        mebibytes(*max),
        path.display()
    )]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },

    /// A local file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`"cannot read"`, `"cannot write"`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// An argument is unusable (for example an empty serial number).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The OpenHTF report cannot be read as an OpenHTF JSON record.
    #[error("invalid OpenHTF report {}: {reason}", path.display())]
    InvalidReport {
        /// The report.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The request body cannot be encoded (for example a non-finite limit).
    #[error("cannot encode the request body: {0}")]
    Encode(#[source] serde_json::Error),

    /// The server answered with an HTTP error status.
    #[error("TofuPilot answered {} to {method} {endpoint}: {message}", status_text(*status))]
    Api {
        /// HTTP status code.
        status: u16,
        /// Request method.
        method: &'static str,
        /// Request endpoint (without query).
        endpoint: String,
        /// The server's message (`error.message` of the JSON body), or the start of the
        /// body, or the status' reason phrase.
        message: String,
        /// Warnings in the body, if any.
        warnings: Vec<String>,
        /// How long the server asked to wait before trying again (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// No answer within the configured timeout.
    #[error("no answer from {method} {endpoint} within {timeout:?}")]
    Timeout {
        /// Request method.
        method: &'static str,
        /// Request endpoint (without query).
        endpoint: String,
        /// The configured timeout.
        timeout: Duration,
    },

    /// The server could not be reached, or the connection broke.
    #[error("network error on {method} {endpoint}: {reason}")]
    Network {
        /// Request method.
        method: &'static str,
        /// Request endpoint (without query).
        endpoint: String,
        /// The chain of causes, innermost last (for example "Connection refused").
        reason: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// An answer larger than this client reads (a run's answer is small): treated as a
    /// server error, retried later.
    #[error("the answer to {method} {endpoint} (HTTP {status}) is larger than {limit} bytes")]
    AnswerTooLarge {
        /// Request method.
        method: &'static str,
        /// Request endpoint (without query).
        endpoint: String,
        /// HTTP status code.
        status: u16,
        /// The most this client reads of an answer.
        limit: usize,
    },

    /// A successful answer whose body is not what the API promises.
    #[error("malformed answer to {method} {endpoint} (HTTP {status}): {reason}")]
    MalformedResponse {
        /// Request method.
        method: &'static str,
        /// Request endpoint (without query).
        endpoint: String,
        /// HTTP status code.
        status: u16,
        /// What was wrong, with the start of the body.
        reason: String,
    },

    /// The run was created, but some attachments could not be uploaded or linked.
    /// The run exists: retry only the attachments (with
    /// [`upload_attachment`](crate::TofuPilotClient::upload_attachment)), never the run.
    #[error("{}", attachments_message(run_id, failures))]
    Attachments {
        /// The id of the run that was created.
        run_id: String,
        /// The run's page, if the server gave it.
        run_url: Option<String>,
        /// The attachments that were uploaded and linked.
        uploaded: Vec<crate::UploadedAttachment>,
        /// The attachments that were not.
        failures: Vec<AttachmentFailure>,
    },

    /// TofuPilot's v2 API has no procedure of this name or id (v2 wants an existing
    /// procedure's id). The uploader keeps the run in the outbox and tries again later.
    #[error("TofuPilot has no procedure {name:?}: {advice}")]
    UnknownProcedure {
        /// The procedure as the test names it (or the id that was refused).
        name: String,
        /// What to do.
        advice: String,
    },
}

impl Error {
    /// The HTTP status, for [`Error::Api`] and [`Error::MalformedResponse`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::MalformedResponse { status, .. }
            | Self::AnswerTooLarge { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether sending the same request again later may succeed: network errors,
    /// timeouts, 408, 429 and 5xx answers, and a v2 procedure not there yet. Client-side refusals and other 4xx answers
    /// will fail again as they are.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network { .. }
            | Self::Timeout { .. }
            | Self::AnswerTooLarge { .. }
            | Self::UnknownProcedure { .. } => true,
            Self::Api { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// What is wrong with the station's settings when this error says the key or the URL
    /// is wrong rather than the request: HTTP 401/403 (the key), 404/405 (the URL). Runs are not to blame: they wait until it is fixed.
    pub fn settings_problem(&self) -> Option<String> {
        match self {
            Self::Api {
                status: 401 | 403,
                message,
                ..
            } => Some(format!(
                "TofuPilot refused the API key ({message}): check TOFUPILOT_API_KEY (a key of this \
                 TofuPilot instance, allowed to create runs)"
            )),
            Self::Api {
                status: 404 | 405,
                endpoint,
                ..
            } => Some(format!(
                "{endpoint} does not answer as TofuPilot's API: check TOFUPILOT_URL (the \
                 instance's address, such as https://www.tofupilot.app)"
            )),
            _ => None,
        }
    }

    /// How long the server asked to wait before a retry (its `Retry-After` header).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The run id when the run exists despite the error ([`Error::Attachments`]).
    pub fn created_run_id(&self) -> Option<&str> {
        match self {
            Self::Attachments { run_id, .. } => Some(run_id),
            _ => None,
        }
    }
}

/// An attachment that was not uploaded.
#[derive(Debug)]
pub struct AttachmentFailure {
    /// The attachment's name.
    pub name: String,
    /// The local file, when it came from one.
    pub path: Option<PathBuf>,
    /// The OpenHTF phase it belongs to, when it came from a report.
    pub phase: Option<String>,
    /// Why it failed.
    pub error: Box<Error>,
}

impl fmt::Display for AttachmentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, &self.phase) {
            (Some(path), _) => write!(f, "{}: {}", path.display(), self.error),
            (None, Some(phase)) => write!(f, "{} (phase {phase}): {}", self.name, self.error),
            (None, None) => write!(f, "{}: {}", self.name, self.error),
        }
    }
}

fn attachments_message(run_id: &str, failures: &[AttachmentFailure]) -> String {
    let list: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!(
        "run {run_id} was created, but {} attachment(s) were not uploaded: {}",
        failures.len(),
        list.join("; ")
    )
}

fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}
