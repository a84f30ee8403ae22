//! The instruments a run used (`metadata.instruments`, written by tofu-instruments' plugs):
//! who each is (`*IDN?`), where it was, and its calibration due date.

use std::fmt::Write as _;

use serde_json::Value;

use crate::html::escape;

/// The metadata key of the list.
pub(crate) const KEY: &str = "instruments";

/// Writes the section when the record lists instruments; nothing otherwise.
pub(crate) fn section(out: &mut String, record: &Value) {
    let Some(list) = record["metadata"][KEY].as_array().filter(|l| !l.is_empty()) else {
        return;
    };
    out.push_str(
        "<section id=\"instruments\">\n<h2>Instruments</h2>\n<table class=\"metadata instruments\">\n\
         <thead><tr><th>name</th><th>manufacturer</th><th>model</th><th>serial number</th>\
         <th>firmware</th><th>address</th><th>calibration due</th></tr></thead>\n<tbody>\n",
    );
    for i in list {
        let field = |key: &str| escape(i[key].as_str().unwrap_or("")).into_owned();
        let calibration = match (
            i["calibration_due"].as_str(),
            i["calibration_expired"].as_bool(),
        ) {
            (Some(due), Some(true)) => {
                format!("<span class=\"fail-text\">{} (expired)</span>", escape(due))
            }
            (Some(due), _) => escape(due).into_owned(),
            (None, _) => "—".to_owned(),
        };
        let model = if i["connected"] == Value::Bool(false) {
            "<span class=\"fail-text\">not connected</span>".to_owned()
        } else {
            field("model")
        };
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{model}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{calibration}</td></tr>",
            field("name"),
            field("manufacturer"),
            field("serial_number"),
            field("firmware"),
            field("address"),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn lists_each_instrument_with_its_calibration() {
        let record = json!({"dut_id": "SN-1", "phases": [], "metadata": {"instruments": [
            {"name": "dmm", "address": "TCPIP::10.0.0.2::5025::SOCKET", "manufacturer": "ACME <Labs>",
             "model": "DMM-1", "serial_number": "S1", "firmware": "1.0", "idn": "ACME <Labs>,DMM-1,S1,1.0",
             "calibration_due": "2026-01-31", "calibration_expired": true},
            {"name": "psu", "address": "tcp://x:1", "connected": false},
        ]}});
        let page = crate::report::render(&record).unwrap_or_default();
        assert!(page.contains("<h2>Instruments</h2>"), "{page}");
        assert!(page.contains("<td>ACME &lt;Labs&gt;</td><td>DMM-1</td><td>S1</td><td>1.0</td>"));
        assert!(page.contains("2026-01-31 (expired)"));
        assert!(
            page.contains(
                "<th>psu</th><td></td><td><span class=\"fail-text\">not connected</span>"
            )
        );
        assert!(
            !page.contains("<tr data-key=\"instruments\">"),
            "not again as raw metadata"
        );
        let none =
            crate::report::render(&json!({"dut_id": "SN-1", "phases": []})).unwrap_or_default();
        assert!(!none.contains("Instruments"));
    }
}
