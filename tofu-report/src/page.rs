//! What every page shares: the head with its content security policy, the embedded styles and
//! scripts.

use crate::html::escape;

/// The version of uPlot in `assets/`.
pub(crate) const UPLOT_VERSION: &str = "1.6.32";
const UPLOT_JS: &str = include_str!("../assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../assets/uPlot-LICENSE");
const REPORT_CSS: &str = include_str!("../assets/report.css");
pub(crate) const REPORT_JS: &str = include_str!("../assets/report.js");
pub(crate) const INDEX_JS: &str = include_str!("../assets/index.js");

/// The page may run its own inline scripts and styles and show `data:` images, and load
/// nothing else: no network, no other file.
pub(crate) const CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

/// `<!DOCTYPE html>` up to the opening `<body>` tag (whose attributes are `body_attrs`, already
/// escaped).
pub(crate) fn head(out: &mut String, title: &str, charts: bool, body_attrs: &str) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"");
    out.push_str(CSP);
    out.push_str("\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"generator\" content=\"tofu-report ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\">\n<title>");
    out.push_str(&escape(title));
    out.push_str("</title>\n<style>\n");
    if charts {
        out.push_str(UPLOT_CSS);
        out.push('\n');
    }
    out.push_str(REPORT_CSS);
    out.push_str("</style>\n</head>\n<body");
    if !body_attrs.is_empty() {
        out.push(' ');
        out.push_str(body_attrs);
    }
    out.push_str(">\n");
}

/// The scripts (uPlot first when the page has charts, then the page's own) and the end of the
/// page.
pub(crate) fn foot(out: &mut String, charts: bool, page_js: &str) {
    out.push_str("<footer>Report written by tofu-report ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    if charts {
        out.push_str(" · charts drawn with uPlot ");
        out.push_str(UPLOT_VERSION);
        out.push_str(" (MIT license, in this page's source)");
    }
    out.push_str("</footer>\n");
    if charts {
        out.push_str("<script>\n/*! uPlot ");
        out.push_str(UPLOT_VERSION);
        out.push_str(", embedded under its license:\n");
        out.push_str(UPLOT_LICENSE);
        out.push_str("\n*/\n");
        out.push_str(UPLOT_JS);
        out.push_str("\n</script>\n");
    }
    out.push_str("<script>\n");
    out.push_str(page_js);
    out.push_str("</script>\n</body>\n</html>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded files can be inlined: nothing in them ends their element early or starts
    /// a comment the parser would treat specially, and the license fits in a JS comment.
    #[test]
    fn assets_can_be_inlined() {
        for (name, text) in [
            ("uPlot.iife.min.js", UPLOT_JS),
            ("uPlot.min.css", UPLOT_CSS),
            ("report.css", REPORT_CSS),
            ("report.js", REPORT_JS),
            ("index.js", INDEX_JS),
            ("uPlot-LICENSE", UPLOT_LICENSE),
        ] {
            let lower = text.to_ascii_lowercase();
            for bad in ["</script", "</style", "<!--", "<script"] {
                assert!(!lower.contains(bad), "{name} contains {bad}");
            }
        }
        assert!(!UPLOT_LICENSE.contains("*/"));
        assert!(UPLOT_JS.contains(&format!("(v{UPLOT_VERSION})")));
    }

    /// Our own files reference nothing outside the page.
    #[test]
    fn our_assets_load_nothing() {
        for text in [REPORT_CSS, REPORT_JS, INDEX_JS] {
            for bad in [
                "http:",
                "https:",
                "url(",
                "@import",
                "fetch(",
                "XMLHttpRequest",
                "innerHTML",
            ] {
                assert!(!text.contains(bad), "{bad}");
            }
        }
    }
}
