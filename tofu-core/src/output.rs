//! Output callbacks: where a finished record goes.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::record::TestRecord;
use crate::record_json::PhasesJson;

/// Receives every finished record, in the order callbacks were added to the test.
///
/// A callback gets the record read-only: it can't change what others receive. An error or a
/// panic in one is reported on the console and in the test's result, and the next callbacks
/// still run.
pub trait OutputCallback: Send {
    /// A short name for messages, e.g. `"JSON record"`.
    fn name(&self) -> &str;

    /// Handles the record; on success, says where it went (shown in the console summary).
    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError>;

    /// Whether this output only puts the record in a durable local queue, quickly and
    /// without the network (as tofu-upload's uploader does with its outbox). Such outputs run
    /// before the JSON record is written: a process killed between the two then leaves a run
    /// that is queued (with its JSON report) and goes up, never a run recorded on disk that no
    /// one uploads. The other outputs run after the JSON record, in the order given.
    fn is_durable_queue(&self) -> bool {
        false
    }

    /// Handles a run recovered from the journal of a process that died mid-run, in its
    /// record's JSON form (OpenHTF's): ERROR, with every phase that ended before (see
    /// `journal.rs`). Called at the next start of a test, before its run, once per output
    /// (a recovery cut short does not call an output that already had it). The default does
    /// nothing.
    fn on_recovered(&mut self, record: &serde_json::Value) -> Result<Option<String>, OutputError> {
        let _ = record;
        Ok(None)
    }
}

impl fmt::Debug for dyn OutputCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutputCallback({})", self.name())
    }
}

/// An output callback failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Writing a file failed.
    #[error("can't write the record into {}: {source}", dir.display())]
    Write {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// The environment variable naming the folder records are written into.
pub const OUTPUT_DIR_ENV: &str = "TOFU_OUTPUT_DIR";

/// The folder records are written into when [`OUTPUT_DIR_ENV`] is not set: `tofu-records`
/// under the current directory.
pub const DEFAULT_OUTPUT_DIR: &str = "tofu-records";

/// Writes the record as OpenHTF-format JSON (OpenHTF's `OutputToJSON`), atomically, into a
/// folder: `$TOFU_OUTPUT_DIR`, else `./tofu-records`.
///
/// The file is named `<serial>.<procedure>.<start_time_millis>.json`, with anything unsafe in
/// a file name replaced by `_` (a `/` or `..` in a serial number can't leave the folder) and a
/// `-1`, `-2`… suffix where a file of that name already exists, so no run replaces another.
/// If the folder can't be written, the record goes to the system's temporary folder instead,
/// and the summary says where.
#[derive(Debug, Clone)]
pub struct JsonOutput {
    dir: PathBuf,
    indent: Option<usize>,
    /// The phases of the record being delivered as its run's journal wrote them: set by the
    /// run just before its outputs get the record, cleared just after (the record can't
    /// change in between: the outputs get it read-only).
    written: PhasesJson,
}

impl Default for JsonOutput {
    fn default() -> Self {
        JsonOutput::new()
    }
}

impl JsonOutput {
    /// Into `$TOFU_OUTPUT_DIR`, or `./tofu-records`.
    pub fn new() -> Self {
        let dir = std::env::var_os(OUTPUT_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_OUTPUT_DIR), PathBuf::from);
        JsonOutput {
            dir,
            indent: None,
            written: PhasesJson::default(),
        }
    }

    /// Into `dir`.
    pub fn to_dir(dir: impl Into<PathBuf>) -> Self {
        JsonOutput {
            dir: dir.into(),
            indent: None,
            written: PhasesJson::default(),
        }
    }

    /// The next record's phases as its run's journal wrote them (empty: none).
    pub(crate) fn use_written_phases(&mut self, phases: PhasesJson) {
        self.written = phases;
    }

    /// Indents the JSON by `spaces` (compact by default, as OpenHTF).
    pub fn indent(mut self, spaces: usize) -> Self {
        self.indent = Some(spaces);
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `record` into `dir`; returns the file's path.
    pub fn write(&self, record: &TestRecord, dir: &Path) -> io::Result<PathBuf> {
        let stem = format!(
            "{}.{}.{}",
            atomic::safe_file_name(&record.dut_id),
            atomic::safe_file_name(&record.metadata.procedure_id),
            record.start_time_millis
        );
        atomic::write_new_file(dir, &stem, "json", |out| {
            if self.indent.is_none() && !self.written.phases.is_empty() {
                let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut *out);
                crate::record_json::write_record(&mut buffered, record, &self.written)?;
                buffered.flush()
            } else {
                write_json(record, self.indent, out)
            }
        })
    }
}

/// Writes `record` as JSON into `out`.
pub fn write_json(
    record: &TestRecord,
    indent: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    // The serializer makes many tiny writes (a quote, a comma, a key); into a buffer of a known
    // type they are inlined, where through `dyn Write` each is a call: this buffer makes writing
    // 30% faster (10,000 measurements) even when `out` is buffered too. Large chunks go
    // through to `out` without another copy.
    let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut *out);
    match indent {
        None => crate::record_json::write_record(&mut buffered, record, &PhasesJson::default())?,
        Some(n) => {
            let spaces = vec![b' '; n];
            let formatter = serde_json::ser::PrettyFormatter::with_indent(&spaces);
            let mut serializer = serde_json::Serializer::with_formatter(&mut buffered, formatter);
            serde::Serialize::serialize(record, &mut serializer)?;
        }
    }
    buffered.flush()
}

impl OutputCallback for JsonOutput {
    fn name(&self) -> &str {
        "JSON record"
    }

    fn on_recovered(&mut self, record: &serde_json::Value) -> Result<Option<String>, OutputError> {
        let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let stem = format!(
            "{}.{}.{}",
            atomic::safe_file_name(&text(&record["dut_id"])),
            atomic::safe_file_name(&text(&record["metadata"]["procedure_id"])),
            record["start_time_millis"]
        );
        let path = atomic::write_new_file(&self.dir, &stem, "json", |out| {
            serde_json::to_writer(out, record).map_err(io::Error::from)
        })
        .map_err(|source| OutputError::Write {
            dir: self.dir.clone(),
            source,
        })?;
        Ok(Some(format!("record written to {}", path.display())))
    }

    fn on_record(&mut self, record: &TestRecord) -> Result<Option<String>, OutputError> {
        match self.write(record, &self.dir) {
            Ok(path) => Ok(Some(format!("record written to {}", path.display()))),
            Err(first) => {
                let fallback = crate::atomic::fallback_dir();
                match self.write(record, &fallback) {
                    Ok(path) => {
                        tracing::error!(
                            "can't write the record into {}: {first}",
                            self.dir.display()
                        );
                        Ok(Some(format!(
                            "record written to {} (the folder {} could not be written: {first})",
                            path.display(),
                            self.dir.display()
                        )))
                    }
                    Err(_) => Err(OutputError::Write {
                        dir: self.dir.clone(),
                        source: first,
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::{dimensions, in_range};
    use crate::unit::{AMPERE, OHM, SECOND, VOLT};
    use crate::{Phase, Sweep, Test};

    /// A record with numbers, units, validators, a sweep and text that needs escaping.
    fn record() -> TestRecord {
        let phase = Phase::dynamic("p \"quoted\"")
            .measure::<f64, _>("v", in_range(0.0, 10.0).units(VOLT).doc("é\n\\"))
            .measure::<Sweep<2>, _>("s", dimensions([SECOND, AMPERE]).units(OHM))
            .run(
                |_test, m| -> Result<(), crate::phase::MeasurementAccessError> {
                    m.get::<f64>("v")?.set(1.5);
                    let mut s = m.get::<Sweep<2>>("s")?;
                    for i in 0..20_000 {
                        s.push([f64::from(i) * 1e-4, f64::NAN], 100.0);
                    }
                    Ok(())
                },
            );
        Test::new("FVT1")
            .station_id("st")
            .phases([phase])
            .without_json_output()
            .quiet()
            .execute(|| "SN-1")
            .record
    }

    #[test]
    fn write_json_writes_what_serde_json_writes() {
        let record = record();
        let mut compact = Vec::new();
        write_json(&record, None, &mut compact).unwrap();
        assert_eq!(compact, serde_json::to_vec(&record).unwrap());
        assert!(compact.len() > 1 << 17, "spans several buffers");

        let mut pretty = Vec::new();
        write_json(&record, Some(2), &mut pretty).unwrap();
        assert_eq!(pretty, serde_json::to_vec_pretty(&record).unwrap());
    }

    /// A run with a journal: its JSON record takes the phases as the journal wrote them, and
    /// is what serde writes of the record it returns (a sweep too long to keep, or too big to
    /// make in memory, is written again, between kept phases; a phase repeated).
    #[test]
    fn a_journaled_runs_record_is_serdes() {
        let dir = tempfile::tempdir().unwrap();
        let phase = |name: &str, points: usize| {
            Phase::dynamic(name)
                .measure::<f64, _>("v", in_range(0.0, 10.0).units(VOLT).doc("é\n\\"))
                .measure::<Sweep<2>, _>("s", dimensions([SECOND, AMPERE]).units(OHM))
                .repeat_on_measurement_fail()
                .repeat_limit(2)
                .run(
                    move |_test, m| -> Result<(), crate::phase::MeasurementAccessError> {
                        m.get::<f64>("v")?.set(11.5);
                        let mut s = m.get::<Sweep<2>>("s")?;
                        for i in 0..points {
                            #[allow(clippy::cast_precision_loss)]
                            s.push([i as f64 * 1e-4, f64::NAN], 100.0);
                        }
                        Ok(())
                    },
                )
        };
        let execution = Test::new("FVT1")
            .station_id("st")
            .phases([
                phase("a \"1\"", 3),
                phase("big", 40_000),
                phase("c", 0),
                // Streamed to the journal, not made in memory first.
                phase("huge", 200_000),
            ])
            .json_output(JsonOutput::to_dir(dir.path().join("records")))
            .journal_dir(dir.path().join("journal"))
            .quiet()
            .execute(|| "SN-1");
        assert_eq!(execution.record.phases.len(), 8, "each phase twice");
        let files: Vec<_> = std::fs::read_dir(dir.path().join("records"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let written = std::fs::read(&files[0]).unwrap();
        assert!(
            written.len() > KEPT_PHASE_JSON_FOR_TEST,
            "the sweep is long"
        );
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&serde_json::to_vec(&execution.record).unwrap())
        );
    }

    const KEPT_PHASE_JSON_FOR_TEST: usize = crate::journal::KEPT_PHASE_JSON;

    /// A test with a JSON record keeps a journal while it runs, unless told not to; its
    /// record is the same either way.
    #[test]
    fn without_journal_a_run_keeps_none() {
        let journals_seen = |without: bool| {
            let dir = tempfile::tempdir().unwrap();
            let records = dir.path().join("records");
            let journal = crate::journal::journal_dir(&records);
            let seen = std::sync::Arc::new(std::sync::Mutex::new(0));
            let counted = std::sync::Arc::clone(&seen);
            let look = Phase::dynamic("look").run(move |_test, _m| {
                *counted.lock().unwrap() = std::fs::read_dir(&journal).map_or(0, Iterator::count);
            });
            let mut test = Test::new("FVT1")
                .phases([look])
                .json_output(JsonOutput::to_dir(&records))
                .quiet();
            if without {
                test = test.without_journal();
            }
            let execution = test.execute(|| "SN-1");
            assert!(execution.ok(), "{:?}", execution.outputs);
            *seen.lock().unwrap()
        };
        assert_eq!(journals_seen(false), 1);
        assert_eq!(journals_seen(true), 0);
    }

    #[test]
    fn write_json_reports_write_errors() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_json(&record(), None, &mut Full).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }
}
