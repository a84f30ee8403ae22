//! Client configuration: API key, base URL, timeout and an optional extra CA.
//!
//! Resolved like the official Python client: an explicit value from the builder wins,
//! else the environment (`TOFUPILOT_API_KEY`, `TOFUPILOT_URL`), else the default base
//! URL `https://www.tofupilot.app`. The API base is the base URL with `/api/v1`
//! appended.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// TofuPilot's public instance, the official client's default.
pub const DEFAULT_BASE_URL: &str = "https://www.tofupilot.app";
/// Per-request timeout (connect and answer), as the official client's 60 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "TOFUPILOT_API_KEY";
/// Environment variable holding the base URL (without `/api/v1`).
pub const ENV_URL: &str = "TOFUPILOT_URL";
/// Environment variable choosing the API version: `v1` (the default) or `v2`.
pub const ENV_API_VERSION: &str = "TOFUPILOT_API_VERSION";
/// Environment variable giving the v2 procedure id (a UUID) every run goes to, as TofuPilot's
/// own CLI reads it; it replaces the procedure the test names.
pub const ENV_PROCEDURE_ID: &str = "TOFUPILOT_PROCEDURE_ID";
/// Environment variable (`1`, `true`, `yes`) letting the v2 uploader create a procedure the
/// test names and TofuPilot doesn't have yet.
pub const ENV_CREATE_PROCEDURES: &str = "TOFUPILOT_CREATE_PROCEDURES";

/// Which TofuPilot API the client and the uploader speak.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ApiVersion {
    /// `/api/v1`, the default (TofuPilot's "legacy" API).
    #[default]
    V1,
    /// `/api/v2`: structured validators, every attempt, sweeps as axes, slots, metadata and an
    /// idempotency key.
    V2,
}

impl ApiVersion {
    /// The version `TOFUPILOT_API_VERSION` chooses (v1 when it is unset or empty).
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(ENV_API_VERSION) {
            Ok(v) if !v.trim().is_empty() => v.parse(),
            _ => Ok(ApiVersion::V1),
        }
    }

    /// `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" => Ok(ApiVersion::V1),
            "v2" | "2" => Ok(ApiVersion::V2),
            _ => Err(Error::InvalidInput(format!(
                "{ENV_API_VERSION}={text:?}: the API version is v1 or v2"
            ))),
        }
    }
}

/// A TofuPilot API key. Its `Debug` output is redacted and it has no `Display`, so it
/// cannot end up in logs or error messages by accident.
///
/// ```
/// let key = tofu_upload::ApiKey::new("tp_live_0123456789abcdef");
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `Authorization` header.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in characters (the OpenHTF import path refuses keys under 10).
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl From<String> for ApiKey {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for ApiKey {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A resolved configuration. Build one with [`ClientBuilder`].
#[derive(Clone, Debug)]
pub struct Config {
    api_key: ApiKey,
    base_url: String,
    timeout: Duration,
    ca_certificate: Option<PathBuf>,
    api_version: ApiVersion,
    procedure_id: Option<String>,
    create_procedures: bool,
}

impl Config {
    /// The configuration from the environment alone.
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::new().config()
    }

    /// The API key.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The base URL, without `/api/v1` and without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The v1 API base: `{base_url}/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.base_url)
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The extra CA certificate (PEM) trusted besides the system's roots.
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.ca_certificate.as_deref()
    }

    /// The API the uploader sends new runs through.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// The v2 procedure id every run goes to, when one is set (`TOFUPILOT_PROCEDURE_ID`).
    pub fn procedure_id(&self) -> Option<&str> {
        self.procedure_id.as_deref()
    }

    /// Whether a procedure name v2 doesn't know is created.
    pub fn create_procedures(&self) -> bool {
        self.create_procedures
    }
}

/// Builds a [`TofuPilotClient`](crate::TofuPilotClient) or a
/// [`blocking::TofuPilotClient`](crate::blocking::TofuPilotClient).
///
/// Anything not set here comes from the environment (`TOFUPILOT_API_KEY`,
/// `TOFUPILOT_URL`) or the defaults ([`DEFAULT_BASE_URL`], [`DEFAULT_TIMEOUT`]).
/// TLS certificates are always verified; [`ca_certificate`](Self::ca_certificate) adds
/// a CA (for a self-hosted instance) to the system's roots, it does not replace them.
///
/// ```no_run
/// use std::time::Duration;
///
/// let client = tofu_upload::ClientBuilder::new()
///     .base_url("https://tofupilot.example.com")
///     .timeout(Duration::from_secs(20))
///     .ca_certificate("/etc/ssl/private-ca.pem")
///     .build_blocking()?;
/// # Ok::<(), tofu_upload::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientBuilder {
    api_key: Option<ApiKey>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    ca_certificate: Option<PathBuf>,
    api_version: Option<ApiVersion>,
    procedure_id: Option<String>,
    create_procedures: Option<bool>,
}

impl ClientBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The API key (else `TOFUPILOT_API_KEY`).
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The base URL without `/api/v1` (else `TOFUPILOT_URL`, else
    /// [`DEFAULT_BASE_URL`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The per-request timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A PEM file with one or more CA certificates to trust besides the system's roots.
    pub fn ca_certificate(mut self, pem_path: impl Into<PathBuf>) -> Self {
        self.ca_certificate = Some(pem_path.into());
        self
    }

    /// The API the uploader sends runs through (else `TOFUPILOT_API_VERSION`, else
    /// [`ApiVersion::V1`]).
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = Some(version);
        self
    }

    /// The v2 procedure id (a UUID) every run goes to, used as is (else
    /// `TOFUPILOT_PROCEDURE_ID`; else the procedure the test names, resolved by name).
    pub fn procedure_id(mut self, id: impl Into<String>) -> Self {
        self.procedure_id = Some(id.into());
        self
    }

    /// Lets v2 create a procedure the test names that TofuPilot doesn't have (else
    /// `TOFUPILOT_CREATE_PROCEDURES`; off by default: an unknown name keeps the run in the
    /// outbox with an error naming the procedure).
    pub fn create_procedures(mut self, create: bool) -> Self {
        self.create_procedures = Some(create);
        self
    }

    /// Resolves the configuration without building a client.
    pub fn config(self) -> Result<Config, Error> {
        self.config_with_env(|name| std::env::var(name).ok())
    }

    fn config_with_env(self, env: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let from_env = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let api_key = match self.api_key {
            Some(key) if !key.is_empty() => key,
            _ => from_env(ENV_API_KEY)
                .map(ApiKey::new)
                .ok_or(Error::MissingApiKey)?,
        };
        let base_url = match self.base_url {
            Some(url) => url,
            None => from_env(ENV_URL).unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
        };
        let base_url = validate_base_url(&base_url)?;
        if let Some(warning) = plain_http_warning(&base_url) {
            warn_once(warning);
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::InvalidInput("the timeout must be above zero".into()));
        }
        let api_version = match self.api_version {
            Some(version) => version,
            None => from_env(ENV_API_VERSION)
                .map(|v| v.parse())
                .transpose()?
                .unwrap_or_default(),
        };
        let procedure_id = self
            .procedure_id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .or_else(|| from_env(ENV_PROCEDURE_ID));
        let create_procedures = match self.create_procedures {
            Some(create) => create,
            None => from_env(ENV_CREATE_PROCEDURES).is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
            }),
        };
        Ok(Config {
            api_key,
            base_url,
            timeout,
            ca_certificate: self.ca_certificate,
            api_version,
            procedure_id,
            create_procedures,
        })
    }

    /// Builds the async client.
    pub fn build(self) -> Result<crate::TofuPilotClient, Error> {
        crate::TofuPilotClient::from_config(self.config()?)
    }
}

/// The warning for a base URL that sends the API key unencrypted over a network: `http://`
/// to a host other than this machine (`localhost`, 127.0.0.0/8, `::1`). `None` otherwise.
fn plain_http_warning(base_url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(base_url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let host = parsed.host_str()?;
    let loopback = match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    (!loopback).then(|| {
        format!(
            "TofuPilot URL {base_url} is plain http:// to another machine: the API key and every run \
             cross the network unencrypted, readable by anyone on the way; use https://"
        )
    })
}

/// Says `warning` once per process (on the console and as a `tracing` warning).
fn warn_once(warning: String) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if said.contains(&warning) {
        return;
    }
    tracing::warn!(target: "tofu_upload", "{warning}");
    eprintln!("TofuPilot: warning: {warning}");
    said.push(warning);
}

fn validate_base_url(url: &str) -> Result<String, Error> {
    // The API's own address pasted in (`…/api/v1`, `…/api`) names the same instance.
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed
        .strip_suffix("/api/v1")
        .or_else(|| trimmed.strip_suffix("/api"))
        .unwrap_or(trimmed);
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| Error::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    // Never echo a password given in the URL.
    let shown = if parsed.password().is_some() {
        "<URL with credentials>".to_owned()
    } else {
        url.to_owned()
    };
    let invalid = |reason: &str| Error::InvalidUrl {
        url: shown.clone(),
        reason: reason.to_owned(),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials do not belong in the URL"));
    }
    if parsed
        .path_segments()
        .is_some_and(|mut s| s.any(|segment| segment == "api"))
    {
        return Err(invalid(
            "give the instance's address without the API's path (no /api/v2 or /api/…: this \
             client adds /api/v1 or /api/v2 itself)",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_values_win_and_trailing_slash_is_dropped() {
        let c = ClientBuilder::new()
            .api_key("0123456789")
            .base_url("http://127.0.0.1:1234/")
            .config()
            .unwrap();
        assert_eq!(c.api_url(), "http://127.0.0.1:1234/api/v1");
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert!(!format!("{c:?}").contains("0123456789"));
    }

    #[test]
    fn the_apis_own_address_names_the_instance() {
        for url in [
            "https://t.example",
            "https://t.example/",
            "https://t.example/api/v1",
            "https://t.example/api/v1/",
            "https://t.example/api",
            "https://t.example/api/",
        ] {
            let c = ClientBuilder::new()
                .api_key("k")
                .base_url(url)
                .config()
                .unwrap();
            assert_eq!(c.api_url(), "https://t.example/api/v1", "{url}");
        }
        let c = ClientBuilder::new()
            .api_key("k")
            .base_url("https://corp.example/tofupilot/api/v1")
            .config()
            .unwrap();
        assert_eq!(c.api_url(), "https://corp.example/tofupilot/api/v1");
        for url in ["https://t.example/api/v2", "https://t.example/api/v1/runs"] {
            let e = ClientBuilder::new()
                .api_key("k")
                .base_url(url)
                .config()
                .unwrap_err()
                .to_string();
            assert!(e.contains("without the API's path"), "{url}: {e}");
        }
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "ftp://x",
            "not a url",
            "http://user:pw@host",
            "http://h/?q=1",
        ] {
            let err = ClientBuilder::new()
                .api_key("k")
                .base_url(url)
                .config()
                .unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }

    #[test]
    fn plain_http_to_another_machine_is_warned_about() {
        for url in [
            "http://tofupilot.example.com",
            "http://10.0.0.5:3000",
            "http://192.168.1.20",
            "http://[2001:db8::1]:8080",
            "http://128.0.0.1",
            "http://localhost.example.com",
            "HTTP://TOFUPILOT.LAN",
        ] {
            let warning = plain_http_warning(url).unwrap_or_else(|| panic!("{url}: no warning"));
            assert!(
                warning.contains("unencrypted") && warning.contains("https://"),
                "{warning}"
            );
            // The builder still accepts it: a warning, not a refusal.
            assert!(
                ClientBuilder::new()
                    .api_key("k")
                    .base_url(url)
                    .config()
                    .is_ok()
            );
        }
        for url in [
            "https://tofupilot.example.com",
            "https://10.0.0.5",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://tofu.localhost",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9",
            "http://[::ffff:127.0.0.1]",
        ] {
            assert_eq!(plain_http_warning(url), None, "{url}");
        }
    }

    #[test]
    fn environment_fills_what_the_builder_leaves_unset() {
        let env = |name: &str| match name {
            ENV_API_KEY => Some(" tp_env_key_123 \n".to_owned()),
            ENV_URL => Some("https://tofupilot.example.com/".to_owned()),
            _ => None,
        };
        let c = ClientBuilder::new().config_with_env(env).unwrap();
        assert_eq!(c.api_key().expose_secret(), "tp_env_key_123");
        assert_eq!(c.api_url(), "https://tofupilot.example.com/api/v1");
        let c = ClientBuilder::new()
            .api_key("explicit_key")
            .base_url("http://127.0.0.1:9")
            .config_with_env(env)
            .unwrap();
        assert_eq!(c.api_key().expose_secret(), "explicit_key");
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
        let c = ClientBuilder::new()
            .config_with_env(|name| (name == ENV_API_KEY).then(|| "k".to_owned()))
            .unwrap();
        assert_eq!(c.base_url(), DEFAULT_BASE_URL);
        let err = ClientBuilder::new()
            .config_with_env(|name| (name == ENV_API_KEY).then(String::new))
            .unwrap_err();
        assert!(matches!(err, Error::MissingApiKey));
    }

    #[test]
    fn the_api_version_and_the_procedure_come_from_the_builder_or_the_environment() {
        let env = |version: &'static str| {
            move |name: &str| match name {
                ENV_API_KEY => Some("k".to_owned()),
                ENV_API_VERSION => Some(version.to_owned()),
                ENV_PROCEDURE_ID => Some(" 0f6c1c43-3d57-4a8e-9e4b-7a6f0d1e2c3b ".to_owned()),
                ENV_CREATE_PROCEDURES => Some("true".to_owned()),
                _ => None,
            }
        };
        let c = ClientBuilder::new().config_with_env(env("v2")).unwrap();
        assert_eq!(c.api_version(), ApiVersion::V2);
        assert_eq!(
            c.procedure_id(),
            Some("0f6c1c43-3d57-4a8e-9e4b-7a6f0d1e2c3b")
        );
        assert!(c.create_procedures());
        assert_eq!(
            ClientBuilder::new()
                .config_with_env(env(""))
                .unwrap()
                .api_version(),
            ApiVersion::V1
        );
        let c = ClientBuilder::new()
            .api_version(ApiVersion::V1)
            .create_procedures(false)
            .procedure_id("mine")
            .config_with_env(env("V2"))
            .unwrap();
        assert_eq!(c.api_version(), ApiVersion::V1);
        assert_eq!(c.procedure_id(), Some("mine"));
        assert!(!c.create_procedures());
        let e = ClientBuilder::new()
            .config_with_env(env("v3"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TOFUPILOT_API_VERSION") && e.contains("v3"),
            "{e}"
        );
    }
}
