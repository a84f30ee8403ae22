//! Who may use the page: the rules every request passes before its handler.
//!
//! - Bound to 127.0.0.1 or ::1 without a token: only this machine reaches the page; the
//!   `Host` header must name a loopback host (`127.0.0.1`, `localhost`, `[::1]`), so a web
//!   page elsewhere that rebinds its DNS name to 127.0.0.1 is refused.
//! - With a token (required on any other address): every request carries it, as
//!   `Authorization: Bearer <token>`, as the `tofu_token` cookie (set when the page is opened
//!   with `?token=<token>`), or as `?token=<token>`.
//! - Every POST: a browser's `Origin` must be the page's own (`http://` + `Host`), and a
//!   browser's `Sec-Fetch-Site` must not be `cross-site`. A request without `Origin` (curl,
//!   another tool) is not a browser's cross-site request and passes this check.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::error;

/// The rules of one server.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// The token every request must carry, if any.
    pub(crate) token: Option<String>,
}

/// The cookie that carries the token once the page was opened with it.
pub(crate) const TOKEN_COOKIE: &str = "tofu_token";

pub(crate) async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut set_cookie = None;
    match &guard.token {
        None => {
            if !is_loopback_host(&host) {
                return error(
                    StatusCode::FORBIDDEN,
                    "this page answers to a loopback host name only (127.0.0.1, localhost, [::1])",
                    "Host",
                    host.into(),
                );
            }
        }
        Some(token) => {
            let query = query_token(request.uri().query());
            let given = bearer(headers)
                .or_else(|| cookie(headers))
                .or(query.clone());
            if !given.is_some_and(|g| same(&g, token)) {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "a token is required: open the URL printed at start, or send \
                     `Authorization: Bearer <token>`",
                    "token",
                    serde_json::Value::Null,
                );
            }
            if query.is_some() {
                set_cookie = Some(format!(
                    "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
                ));
            }
        }
    }
    if request.method() == Method::POST
        && let Err(refused) = check_origin(headers, &host)
    {
        return refused;
    }
    let mut response = next.run(request).await;
    if let Some(cookie) = set_cookie
        && let Ok(value) = cookie.parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A browser's POST must come from the page itself.
#[allow(clippy::result_large_err)]
fn check_origin(headers: &HeaderMap, host: &str) -> Result<(), Response> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if origin != format!("http://{host}") {
            return Err(error(
                StatusCode::FORBIDDEN,
                "refused: this request comes from another site's page",
                "Origin",
                origin.into(),
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() == b"cross-site"
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            "refused: this request comes from another site's page",
            "Sec-Fetch-Site",
            "cross-site".into(),
        ));
    }
    Ok(())
}

/// Whether `host` (a `Host` header: name and port) names this machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == TOKEN_COOKIE).then(|| value.to_owned())
        })
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "token").then(|| value.to_owned())
    })
}

/// Compares without stopping at the first difference (no timing hint about the token).
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A new token: 128 random bits, in hex.
pub(crate) fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for (host, loopback) in [
            ("127.0.0.1:8080", true),
            ("localhost:1", true),
            ("[::1]:80", true),
            ("127.0.0.1", true),
            ("evil.example:8080", false),
            ("127.0.0.1.evil.example:80", false),
            ("10.0.0.5:8080", false),
            ("", false),
        ] {
            assert_eq!(is_loopback_host(host), loopback, "{host}");
        }
    }

    #[test]
    fn origins_must_be_the_pages_own() {
        let mut headers = HeaderMap::new();
        assert!(check_origin(&headers, "127.0.0.1:8080").is_ok());
        headers.insert(
            header::ORIGIN,
            "http://127.0.0.1:8080"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert!(check_origin(&headers, "127.0.0.1:8080").is_ok());
        assert!(check_origin(&headers, "127.0.0.1:9090").is_err());
        headers.insert(
            header::ORIGIN,
            "http://evil.example"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert!(check_origin(&headers, "127.0.0.1:8080").is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        let (a, b) = (
            new_token().unwrap_or_default(),
            new_token().unwrap_or_default(),
        );
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
