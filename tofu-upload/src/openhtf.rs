//! Reading the phase attachments of an OpenHTF JSON report.
//!
//! The server parses the report itself (`POST /import`); the client only needs the
//! attachments, which OpenHTF's `json_factory` writes per phase as
//! `{"name": {"mimetype", "sha1", "data": base64}}` (`data` is absent when the report
//! was written with `inline_attachments=False`). They are uploaded in file order, as
//! the Python client iterates its dict.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    phases: Option<Vec<ReportPhase>>,
}

#[derive(Debug, Deserialize)]
struct ReportPhase {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    attachments: OrderedAttachments,
}

#[derive(Debug, Default)]
struct OrderedAttachments(Vec<(String, ReportAttachment)>);

#[derive(Debug, Deserialize)]
struct ReportAttachment {
    #[serde(default)]
    mimetype: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

impl<'de> Deserialize<'de> for OrderedAttachments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedAttachments;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attachment name to attachment")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(OrderedAttachments::default())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(OrderedAttachments::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, ReportAttachment>()? {
                    out.push((k, v));
                }
                Ok(OrderedAttachments(out))
            }
        }
        d.deserialize_any(V)
    }
}

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
/// JSON record.
pub(crate) fn report_attachments(bytes: &[u8]) -> Result<Vec<ReportAttachmentItem>, String> {
    let starts_with_brace = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !starts_with_brace {
        return Err("the top level is not a JSON object".to_owned());
    }
    let report: Report =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OpenHTF JSON record: {e}"))?;
    let mut out = Vec::new();
    for (i, phase) in report.phases.unwrap_or_default().into_iter().enumerate() {
        let phase_name = phase.name.unwrap_or_else(|| format!("Phase {i}"));
        for (name, att) in phase.attachments.0 {
            out.push(ReportAttachmentItem {
                phase: phase_name.clone(),
                name,
                mimetype: att.mimetype,
                data: att.data,
            });
        }
    }
    Ok(out)
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
}
