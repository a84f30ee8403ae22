//! [`HtmlReport`]: the report of every run, written next to its JSON record.

use std::path::{Path, PathBuf};

use tofu_core::fs::{safe_file_name, write_new_file};
use tofu_core::output::OutputError;
use tofu_core::{JsonOutput, OutputCallback, TestRecord};

use crate::Error;

/// An output callback writing the HTML report of each run into the record folder
/// (`$TOFU_OUTPUT_DIR`, else `./tofu-records`, as [`JsonOutput`]), under the JSON record's
/// name: `<serial>.<procedure>.<start_ms>.html`.
///
/// The file is written atomically and never replaces another (`-1`, `-2`… are added, as for
/// records). When the folder can't be written, the report goes to the system's temporary
/// folder (`tofu-records` in it), as the JSON record does, and the summary says where.
///
/// ```no_run
/// # use tofu_core::prelude::*;
/// # #[phase] fn check() {}
/// Test::new("FVT1")
///     .phases([check])
///     .output(tofu_report::HtmlReport::new())
///     .execute(|| "SN-0001");
/// ```
#[derive(Debug, Clone)]
pub struct HtmlReport {
    dir: PathBuf,
}

impl Default for HtmlReport {
    fn default() -> Self {
        HtmlReport::new()
    }
}

impl HtmlReport {
    /// Into the folder the JSON record goes to: `$TOFU_OUTPUT_DIR`, or `./tofu-records`.
    pub fn new() -> Self {
        HtmlReport {
            dir: JsonOutput::new().dir().to_path_buf(),
        }
    }

    /// Into `dir`.
    pub fn to_dir(dir: impl Into<PathBuf>) -> Self {
        HtmlReport { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the report of `record` into `dir`; returns its path.
    pub fn write(&self, record: &TestRecord, dir: &Path) -> Result<PathBuf, Error> {
        let page = render_record(record)?;
        let stem = format!(
            "{}.{}.{}",
            safe_file_name(&record.dut_id),
            safe_file_name(&record.metadata.procedure_id),
            record.start_time_millis
        );
        write_new_file(dir, &stem, "html", |w| w.write_all(page.as_bytes())).map_err(|source| {
            Error::Write {
                path: dir.to_path_buf(),
                source,
            }
        })
    }
}

/// The report of a record in memory (through its JSON form, as a saved record would be).
fn render_record(record: &TestRecord) -> Result<String, Error> {
    let value = serde_json::to_value(record).map_err(|e| Error::NotARecord {
        path: None,
        reason: format!("it can't be written as JSON: {e}"),
    })?;
    crate::render(&value)
}

impl OutputCallback for HtmlReport {
    fn name(&self) -> &str {
        "HTML report"
    }

    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        let first = match self.write(record, &self.dir) {
            Ok(path) => return Ok(Some(format!("report written to {}", path.display()))),
            Err(e @ Error::NotARecord { .. }) => return Err(OutputError::Other(e.to_string())),
            Err(e) => e,
        };
        let fallback = tofu_core::fs::fallback_dir();
        match self.write(record, &fallback) {
            Ok(path) => {
                tracing::error!("{first}");
                Ok(Some(format!(
                    "report written to {} (the folder {} could not be written: {first})",
                    path.display(),
                    self.dir.display()
                )))
            }
            Err(_) => Err(OutputError::Other(first.to_string())),
        }
    }
}
