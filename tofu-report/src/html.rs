//! Escaping: everything that comes from a record goes through one of these before it reaches
//! the page.
//!
//! One small function rather than a crate (`html-escape`, `v_htmlescape`): the page only ever
//! puts record text in two places, element content and double-quoted attribute values, and
//! escaping the five characters `& < > " '` is correct for both (it is what those crates do
//! for these contexts). Text is never put into unquoted attributes, URLs built from record text,
//! inline event handlers or `<style>`. Data for scripts goes through [`script_json`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Escapes `text` for HTML element content and double- or single-quoted attribute values.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialises `value` as JSON that is safe inside `<script type="application/json">`: `<`, `>`
/// and `&` are written as `\u003c`, `\u003e`, `\u0026` (they can only occur inside JSON
/// strings, where those escapes mean the same), so no `</script>` or `<!--` can end or change
/// the element. Read back with `JSON.parse(element.textContent)`.
pub(crate) fn script_json(value: &serde_json::Value) -> String {
    // Serialising a `Value` into a `String` can't fail (no I/O, keys are strings).
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a file name for a relative `href` (everything but unreserved characters),
/// so a name with `:` or `#` can't become another scheme or a fragment. Escape the result too.
pub(crate) fn url_path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A MIME type usable in a `data:` URL, or `application/octet-stream` when the recorded one is
/// missing or looks like anything else than `type/subtype`.
pub(crate) fn safe_mime(mime: Option<&str>) -> &str {
    const FALLBACK: &str = "application/octet-stream";
    let Some(mime) = mime.map(str::trim) else {
        return FALLBACK;
    };
    let well_formed = mime.len() <= 100
        && mime.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty()
                && !s.is_empty()
                && (t.bytes().chain(s.bytes()))
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_'))
        });
    if well_formed { mime } else { FALLBACK }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(escape("plain"), "plain");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(escape("Ω µ ✓"), "Ω µ ✓");
    }

    #[test]
    fn script_json_cannot_close_the_script() {
        let value = serde_json::json!({"name": "</script><script>alert(1)</script><!--&"});
        let json = script_json(&value);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn url_segments_stay_relative() {
        assert_eq!(url_path_segment("SN-1.FVT1.17.html"), "SN-1.FVT1.17.html");
        assert_eq!(
            url_path_segment("javascript:alert(1)#x y"),
            "javascript%3Aalert%281%29%23x%20y"
        );
    }

    #[test]
    fn mime_types_are_checked() {
        assert_eq!(safe_mime(Some("image/png")), "image/png");
        assert_eq!(safe_mime(Some("image/svg+xml")), "image/svg+xml");
        assert_eq!(safe_mime(None), "application/octet-stream");
        assert_eq!(
            safe_mime(Some("text/html;base64,PHNjcmlwdD4=")),
            "application/octet-stream"
        );
        assert_eq!(safe_mime(Some("\" onload=x")), "application/octet-stream");
    }
}
