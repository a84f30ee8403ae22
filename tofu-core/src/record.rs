//! The run record: plain data, written as OpenHTF's JSON record by [`crate::output::JsonOutput`].
//!
//! Field names, nesting and order follow OpenHTF 1.6.3's `OutputToJSON`, so tools that read
//! OpenHTF records read ours. Extra fields keep what OpenHTF loses: each measurement's
//! `marginal`, each attachment's `size`, each phase's `attempt`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::measurement::{Dimension, MeasurementDecl};
use crate::outcome::{
    MeasurementOutcome, Outcome, OutcomeDetail, PhaseExecution, PhaseOutcome, PhaseResult,
};
use crate::unit::Unit;
use crate::validator::Validator;
use crate::value::Value;

/// Everything recorded about one run of a test on one unit.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TestRecord {
    /// The unit's serial number (`"UNKNOWN_DUT"` where none could be had).
    pub dut_id: String,
    /// When the run started, in milliseconds since the Unix epoch.
    pub start_time_millis: i64,
    /// When the run ended.
    pub end_time_millis: i64,
    /// The outcome, by OpenHTF's rules.
    pub outcome: Outcome,
    /// Why the outcome is what it is, where that needs saying.
    pub outcome_details: Vec<OutcomeDetail>,
    /// Set (true or false) only when the outcome is PASS.
    pub marginal: Option<bool>,
    /// The test's metadata.
    pub metadata: Metadata,
    /// One record per executed phase attempt, in execution order.
    pub phases: Vec<PhaseRecord>,
    /// Subtests (none yet).
    pub subtests: Vec<serde_json::Value>,
    /// Branches (none yet).
    pub branches: Vec<serde_json::Value>,
    /// Test-level diagnosers (none yet).
    pub diagnosers: Vec<serde_json::Value>,
    /// Diagnoses (none yet).
    pub diagnoses: Vec<serde_json::Value>,
    /// Log events captured during the run.
    pub log_records: Vec<LogRecord>,
    /// The station that ran the test.
    pub station_id: String,
    /// Source information (empty, as OpenHTF writes it by default).
    pub code_info: CodeInfo,
    /// The station slot that ran the test, when a [`Station`](crate::Station) ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotRecord>,
}

/// Which slot of a station ran a test, and with which other slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SlotRecord {
    /// The slot's position on the station, from 0.
    pub index: usize,
    /// The slot's name, e.g. `"slot 1"` or the fixture's label.
    pub name: String,
    /// The same for every slot of one batch, so that a batch's runs can be found together
    /// (what TofuPilot's v2 API calls `execution_id`; the v1 upload does not send it).
    pub execution_id: String,
}

/// The test's metadata: who, what and which unit.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The test's name (the procedure id unless set).
    pub test_name: String,
    /// The TofuPilot procedure, e.g. `"FVT1"`.
    pub procedure_id: String,
    /// The procedure's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure_version: Option<String>,
    /// The unit's part number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_number: Option<String>,
    /// The unit's revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The unit's batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_number: Option<String>,
    /// Serial numbers of the sub-units assembled into this one.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_sub_units"
    )]
    pub sub_units: Vec<String>,
    /// Any other metadata given to the test.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The framework that wrote the record.
    pub tofu_version: String,
    /// Configuration in force, as OpenHTF's `metadata.config`.
    pub config: serde_json::Value,
}

fn serialize_sub_units<S: Serializer>(units: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct SubUnit<'a> {
        serial_number: &'a str,
    }
    serializer.collect_seq(units.iter().map(|s| SubUnit { serial_number: s }))
}

/// Source information: OpenHTF's fields (the source text is not captured, as OpenHTF's isn't
/// unless `capture_source` is set), plus where a phase was written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CodeInfo {
    /// Name.
    pub name: String,
    /// The phase's doc comment.
    pub docstring: Option<String>,
    /// Source text (not captured).
    pub sourcecode: String,
    /// The phase's source file, as the compiler names it (`src/main.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of the phase's function in that file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// One attempt of one phase.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PhaseRecord {
    /// The measurements, in declaration order.
    #[serde(serialize_with = "serialize_measurements")]
    pub measurements: Vec<MeasurementRecord>,
    /// The phase's options.
    pub options: PhaseOptionsRecord,
    /// Phase diagnosers (none yet).
    pub diagnosers: Vec<serde_json::Value>,
    /// The subtest the phase belongs to.
    pub subtest_name: Option<String>,
    /// The groups and subtests the phase ran in, by name, outermost first. Not in the JSON
    /// record (OpenHTF's has no such key); TofuPilot's v2 API sends them as sequences.
    #[serde(skip)]
    pub sequence: Vec<String>,
    /// When the attempt started (epoch ms).
    pub start_time_millis: i64,
    /// When it ended.
    pub end_time_millis: i64,
    /// Files and data attached during the attempt, in the order attached.
    #[serde(serialize_with = "serialize_attachments")]
    pub attachments: Vec<Attachment>,
    /// Diagnosis results (none yet).
    pub diagnosis_results: Vec<String>,
    /// Failure diagnosis results (none yet).
    pub failure_diagnosis_results: Vec<String>,
    /// How the attempt ended.
    #[serde(serialize_with = "serialize_result")]
    pub result: PhaseExecution,
    /// The attempt's outcome.
    pub outcome: PhaseOutcome,
    /// Set only when the outcome is PASS.
    pub marginal: Option<bool>,
    /// A number that is the same for every attempt of the same phase, and across processes.
    pub descriptor_id: u64,
    /// The phase's name.
    pub name: String,
    /// Source information.
    pub codeinfo: CodeInfo,
    /// 1 for the first attempt, 2 for the first repeat…
    pub attempt: u32,
    /// How long the phase waited, before it started, for a station's shared plugs that other
    /// slots were using (set only for phases that use a shared plug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plug_wait_millis: Option<i64>,
}

/// A phase's options as OpenHTF writes them.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PhaseOptionsRecord {
    /// The display name given in `#[phase(name = …)]`.
    pub name: Option<String>,
    /// Timeout in seconds.
    pub timeout_s: Option<f64>,
    /// `run_if` (not supported yet).
    pub run_if: Option<String>,
    /// Always false.
    pub requires_state: bool,
    /// Always repeat up to the limit.
    pub force_repeat: bool,
    /// Repeat while measurements fail.
    pub repeat_on_measurement_fail: bool,
    /// Repeat after a timeout.
    pub repeat_on_timeout: bool,
    /// Maximum number of attempts.
    pub repeat_limit: Option<u32>,
    /// Always false.
    pub run_under_pdb: bool,
    /// Always `"KEEP"`.
    pub phase_name_case: &'static str,
    /// A failed measurement stops the test.
    pub stop_on_measurement_fail: bool,
}

/// A measurement with its value and outcome.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MeasurementRecord {
    /// The declaration (name, validators, units, dimensions, docs).
    pub decl: Arc<MeasurementDecl>,
    /// The outcome.
    pub outcome: MeasurementOutcome,
    /// Passed in a marginal band.
    pub marginal: bool,
    /// The value, if it was set.
    pub measured_value: Option<Value>,
}

impl MeasurementRecord {
    /// The measurement's name.
    pub fn name(&self) -> &str {
        &self.decl.name
    }

    /// The validators.
    pub fn validators(&self) -> &[Validator] {
        &self.decl.validators
    }

    /// The unit of the value.
    pub fn units(&self) -> Option<&Unit> {
        self.decl.units.as_ref()
    }
}

impl Serialize for MeasurementRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let decl = &self.decl;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &decl.name)?;
        map.serialize_entry("outcome", &self.outcome)?;
        if !decl.validators.is_empty() {
            map.serialize_entry("validators", &decl.validators)?;
        }
        if !decl.dimensions.is_empty() {
            map.serialize_entry("dimensions", &DimensionsJson(&decl.dimensions))?;
        }
        if let Some(units) = &decl.units {
            map.serialize_entry("units", &UnitJson(units))?;
        }
        if let Some(doc) = &decl.docstring {
            map.serialize_entry("docstring", doc)?;
        }
        if let Some(value) = &self.measured_value {
            map.serialize_entry("measured_value", value)?;
        }
        map.serialize_entry("marginal", &self.marginal)?;
        if decl.allow_fail {
            map.serialize_entry("allow_fail", &true)?;
        }
        map.end()
    }
}

struct UnitJson<'a>(&'a Unit);

impl Serialize for UnitJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("name", self.0.name())?;
        map.serialize_entry("code", &self.0.code())?;
        map.serialize_entry("suffix", &self.0.suffix())?;
        map.end()
    }
}

pub(crate) struct DimensionsJson<'a>(pub(crate) &'a [Dimension]);

impl Serialize for DimensionsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Dim<'a> {
            code: Option<&'a str>,
            description: &'a str,
            name: &'a str,
            suffix: Option<&'a str>,
        }
        serializer.collect_seq(self.0.iter().map(|d| Dim {
            code: d.unit.code(),
            description: &d.description,
            name: d.unit.name(),
            suffix: d.unit.suffix(),
        }))
    }
}

fn serialize_measurements<S: Serializer>(
    measurements: &[MeasurementRecord],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(measurements.iter().map(|m| (m.name(), m)))
}

/// A phase's `result` in its JSON form (for the events).
pub(crate) struct ResultJson<'a>(pub(crate) &'a PhaseExecution);

impl Serialize for ResultJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_result(self.0, serializer)
    }
}

fn serialize_result<S: Serializer>(
    result: &PhaseExecution,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Exception<'a> {
        exc_type: &'a str,
        exc_val: &'a str,
        exc_tb: &'a str,
    }
    let mut map = serializer.serialize_map(Some(1))?;
    match result {
        PhaseExecution::Returned(r) => map.serialize_entry("phase_result", r)?,
        PhaseExecution::Error {
            exc_type,
            exc_val,
            exc_tb,
        } => {
            map.serialize_entry(
                "phase_result",
                &Exception {
                    exc_type,
                    exc_val,
                    exc_tb,
                },
            )?;
        }
        PhaseExecution::Timeout => map.serialize_entry("phase_result", &None::<PhaseResult>)?,
        PhaseExecution::Aborted => map.serialize_entry("phase_result", "")?,
    }
    map.end()
}

/// Data attached to a phase: a file, a screenshot, a log dump.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attachment {
    /// Unique within its phase.
    pub name: String,
    /// MIME type (`None` when unknown).
    pub mimetype: Option<String>,
    /// The bytes.
    pub data: Arc<[u8]>,
    /// SHA-1 of the bytes, lowercase hex.
    pub sha1: String,
}

impl Attachment {
    /// An attachment of `data`, its SHA-1 computed here.
    pub fn new(
        name: impl Into<String>,
        mimetype: Option<String>,
        data: impl Into<Arc<[u8]>>,
    ) -> Self {
        use sha1::Digest;
        let data: Arc<[u8]> = data.into();
        let digest = sha1::Sha1::digest(&data);
        let sha1 = digest.iter().map(|b| format!("{b:02x}")).collect();
        Attachment {
            name: name.into(),
            mimetype,
            data,
            sha1,
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

/// A phase's attachments in their JSON form (a map by name).
pub(crate) struct AttachmentsJson<'a>(pub(crate) &'a [Attachment]);

impl Serialize for AttachmentsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_attachments(self.0, serializer)
    }
}

fn serialize_attachments<S: Serializer>(
    attachments: &[Attachment],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    struct Base64<'a>(&'a [u8]);
    impl Serialize for Base64<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use base64::Engine;
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
        }
    }
    #[derive(Serialize)]
    struct Entry<'a> {
        mimetype: Option<&'a str>,
        sha1: &'a str,
        data: Base64<'a>,
        size: usize,
    }
    serializer.collect_map(attachments.iter().map(|a| {
        (
            &a.name,
            Entry {
                mimetype: a.mimetype.as_deref(),
                sha1: &a.sha1,
                data: Base64(&a.data),
                size: a.size(),
            },
        )
    }))
}

/// One captured log event.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LogRecord {
    /// Python logging level: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR (5 for TRACE).
    pub level: u8,
    /// The event's target (its module path, unless set).
    pub logger_name: String,
    /// Source file name (without its folder).
    pub source: String,
    /// Source line.
    pub lineno: u32,
    /// When (epoch ms).
    pub timestamp_millis: i64,
    /// The message, with the event's other fields appended as `key=value`.
    pub message: String,
    /// The phase that was running, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

impl TestRecord {
    /// Writes the record as OpenHTF-format JSON (compact).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// The run's duration in milliseconds.
    pub fn duration_millis(&self) -> i64 {
        self.end_time_millis - self.start_time_millis
    }
}
