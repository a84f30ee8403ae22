//! Reading the phase attachments of an OpenHTF JSON report.
//!
//! The server parses the report itself (`POST /import`); the client only needs the
//! attachments, which OpenHTF's `json_factory` writes per phase as
//! `{"name": {"mimetype", "sha1", "data": base64}}` (`data` is absent when the report
//! was written with `inline_attachments=False`). They are uploaded in file order, as
//! the Python client iterates its dict.

use serde_json::{Map, Value};

/// One attachment of a report, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportAttachmentItem {
    pub(crate) phase: String,
    pub(crate) name: String,
    pub(crate) mimetype: Option<String>,
    /// Base64 data, if inlined.
    pub(crate) data: Option<String>,
}

/// Reads the attachments of a report; `Err` says why the bytes are not an OpenHTF
/// JSON record, naming the field (`phases[2].attachments["scope.png"].data`).
pub(crate) fn report_attachments(bytes: &[u8]) -> Result<Vec<ReportAttachmentItem>, String> {
    let starts_with_brace = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !starts_with_brace {
        return Err("the top level is not a JSON object".to_owned());
    }
    // Read whole (the file is at most 10 MiB), keys in file order (serde_json's
    // `preserve_order`), so that every field can be checked and named.
    let report: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OpenHTF JSON record: {e}"))?;
    let phases = match report.get("phases") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(phases)) => phases,
        Some(other) => return Err(format!("`phases` is {}, not a list", kind(other))),
    };
    let mut out = Vec::new();
    for (i, phase) in phases.iter().enumerate() {
        let Value::Object(phase) = phase else {
            return Err(format!("`phases[{i}]` is {}, not an object", kind(phase)));
        };
        let phase_name =
            text(phase, "name", &format!("phases[{i}]"))?.unwrap_or_else(|| format!("Phase {i}"));
        let attachments = match phase.get("attachments") {
            None | Some(Value::Null) => continue,
            Some(Value::Object(attachments)) => attachments,
            Some(other) => {
                return Err(format!(
                    "`phases[{i}].attachments` is {}, not an object of name to attachment",
                    kind(other)
                ));
            }
        };
        for (name, attachment) in attachments {
            let at = format!("phases[{i}].attachments[{name:?}]");
            let Value::Object(attachment) = attachment else {
                return Err(format!("`{at}` is {}, not an object", kind(attachment)));
            };
            out.push(ReportAttachmentItem {
                phase: phase_name.clone(),
                name: name.clone(),
                mimetype: text(attachment, "mimetype", &at)?,
                data: text(attachment, "data", &at)?,
            });
        }
    }
    Ok(out)
}

/// An optional string field of `object` (at `at`).
fn text(object: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{at}.{key}` is {}, not a string", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_keep_file_order() {
        let json = br#"{"phases":[{"name":"a","attachments":{}},{"name":"p","attachments":{
            "z.txt":{"mimetype":"text/plain","data":"eg=="},
            "a.bin":{"mimetype":null,"sha1":"x"}}}]}"#;
        let items = report_attachments(json).unwrap();
        let names: Vec<_> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["z.txt", "a.bin"]);
        assert_eq!(items[0].phase, "p");
        assert_eq!(items[1].data, None);
    }

    #[test]
    fn not_a_report() {
        assert!(report_attachments(b"[1,2]").is_err());
        assert!(report_attachments(b"{oops").is_err());
        assert_eq!(report_attachments(b"{}").unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"phases": 5}"#, "`phases` is a number, not a list"),
            (
                br#"{"phases": [[]]}"#,
                "`phases[0]` is a list, not an object",
            ),
            (
                br#"{"phases": [{}, {"name": 7}]}"#,
                "`phases[1].name` is a number, not a string",
            ),
            (
                br#"{"phases": [{"attachments": []}]}"#,
                "`phases[0].attachments` is a list, not an object of name to attachment",
            ),
            (
                br#"{"phases": [{"attachments": {"a.png": "x"}}]}"#,
                r#"`phases[0].attachments["a.png"]` is a string, not an object"#,
            ),
            (
                br#"{"phases": [{"attachments": {"a.png": {"data": {"b64": "eg=="}}}}]}"#,
                r#"`phases[0].attachments["a.png"].data` is an object, not a string"#,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(report_attachments(json), Err(want.to_owned()));
        }
    }
}
