//! The body of `POST /api/v1/runs`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{CLIENT_NAME, CLIENT_VERSION};
use crate::iso::{self, serde_iso};

/// A run to create with `POST /api/v1/runs`, plus the files to attach to it.
///
/// Serialises to the exact body of the official Python client 2.26.1: the keys
/// `unit_under_test`, `run_passed`, `procedure_id`, `procedure_name`,
/// `procedure_version` (the three procedure keys are `null` when not set), `client`
/// (`"tofu"`) and `client_version` (this crate's version) are always present, in that
/// order; then, only when set and in this order: `steps`, `phases`, `logs`,
/// `started_at`, `duration`, `sub_units`. [`attachments`](Self::attachments) are not
/// part of the body: they are uploaded after the run is created.
///
/// `started_at` is written in UTC with a `Z` and microseconds only when non-zero;
/// `duration` as an ISO 8601 duration (`PT2M34S`); see [`crate::iso`].
///
/// ```
/// use std::time::Duration;
/// use tofu_upload::{CreateRun, CreateMeasurement, CreateMeasurementOutcome, CreatePhase, CreatePhaseOutcome, UnitUnderTest};
///
/// let run = CreateRun::new(UnitUnderTest::new("PCB1A003").part_number("PCB1"), true)
///     .procedure_id("FVT1")
///     .duration(Duration::from_secs(154))
///     .phase(
///         CreatePhase::new("phase_voltage_measure", CreatePhaseOutcome::Pass, 1_737_387_126_058, 1_737_387_127_558)
///             .measurement(
///                 CreateMeasurement::new("input_voltage", CreateMeasurementOutcome::Pass)
///                     .value(3.31)
///                     .units("V")
///                     .lower_limit(3.1)
///                     .upper_limit(3.5),
///             ),
///     );
/// let body = serde_json::to_value(&run).unwrap();
/// assert_eq!(body["procedure_name"], serde_json::Value::Null);
/// assert_eq!(body["client"], "tofu");
/// assert_eq!(body["duration"], "PT2M34S");
/// assert_eq!(body["phases"][0]["measurements"][0]["units"], "V");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct CreateRun {
    /// The unit under test; `serial_number` is required.
    pub unit_under_test: UnitUnderTest,
    /// Whether the run passed.
    pub run_passed: bool,
    /// The procedure's identifier (sent as `null` when `None`).
    #[serde(default)]
    pub procedure_id: Option<String>,
    /// The procedure's name; the server finds or creates the procedure by name when no
    /// id is given (sent as `null` when `None`).
    #[serde(default)]
    pub procedure_name: Option<String>,
    /// The procedure's version (sent as `null` when `None`).
    #[serde(default)]
    pub procedure_version: Option<String>,
    /// Deprecated steps (use phases); sent only when `Some`.
    #[serde(default)]
    pub steps: Option<Vec<Step>>,
    /// Phases with their measurements; sent only when `Some` (`Some(vec![])` sends `[]`).
    #[serde(default)]
    pub phases: Option<Vec<Phase>>,
    /// Log entries; sent only when `Some`.
    #[serde(default)]
    pub logs: Option<Vec<Log>>,
    /// When the run started; sent only when `Some`.
    #[serde(default, deserialize_with = "serde_iso::datetime_opt::deserialize")]
    pub started_at: Option<DateTime<Utc>>,
    /// How long the run took; sent only when `Some` (the server's default is `PT0S`).
    #[serde(default, deserialize_with = "serde_iso::duration_opt::deserialize")]
    pub duration: Option<Duration>,
    /// Sub-units (they must already exist on the server); sent only when `Some`.
    #[serde(default)]
    pub sub_units: Option<Vec<SubUnit>>,
    /// Files to upload and link to the run once it exists. Checked before anything
    /// is sent: at most [`MAX_ATTACHMENTS`](crate::MAX_ATTACHMENTS) files of at most
    /// [`MAX_FILE_SIZE`](crate::MAX_FILE_SIZE) bytes each. Not part of the JSON body.
    #[serde(skip)]
    pub attachments: Vec<PathBuf>,
}

impl CreateRun {
    /// A run with its two required fields.
    pub fn new(unit_under_test: UnitUnderTest, run_passed: bool) -> Self {
        Self {
            unit_under_test,
            run_passed,
            ..Self::default()
        }
    }

    /// Sets `procedure_id`.
    pub fn procedure_id(mut self, id: impl Into<String>) -> Self {
        self.procedure_id = Some(id.into());
        self
    }

    /// Sets `procedure_name`.
    pub fn procedure_name(mut self, name: impl Into<String>) -> Self {
        self.procedure_name = Some(name.into());
        self
    }

    /// Sets `procedure_version`.
    pub fn procedure_version(mut self, version: impl Into<String>) -> Self {
        self.procedure_version = Some(version.into());
        self
    }

    /// Sets `started_at` from any time zone (converted to UTC).
    pub fn started_at(mut self, at: impl Into<DateTime<Utc>>) -> Self {
        self.started_at = Some(at.into());
        self
    }

    /// Sets `started_at` from a naive date-time, stamped as UTC without conversion,
    /// like the Python client does with a naive `datetime`.
    pub fn started_at_naive(mut self, at: NaiveDateTime) -> Self {
        self.started_at = Some(iso::naive_as_utc(at));
        self
    }

    /// Sets `duration`.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Appends a phase.
    pub fn phase(mut self, phase: Phase) -> Self {
        self.phases.get_or_insert_with(Vec::new).push(phase);
        self
    }

    /// Appends a deprecated step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.get_or_insert_with(Vec::new).push(step);
        self
    }

    /// Appends log entries (for example from a [`LogCollector`](crate::LogCollector)).
    pub fn logs(mut self, logs: impl IntoIterator<Item = Log>) -> Self {
        self.logs.get_or_insert_with(Vec::new).extend(logs);
        self
    }

    /// Appends a sub-unit by serial number.
    pub fn sub_unit(mut self, serial_number: impl Into<String>) -> Self {
        self.sub_units
            .get_or_insert_with(Vec::new)
            .push(SubUnit::new(serial_number));
        self
    }

    /// Appends a file to upload as an attachment once the run is created.
    pub fn attachment(mut self, path: impl Into<PathBuf>) -> Self {
        self.attachments.push(path.into());
        self
    }
}

impl Serialize for CreateRun {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("CreateRun", 13)?;
        s.serialize_field("unit_under_test", &self.unit_under_test)?;
        s.serialize_field("run_passed", &self.run_passed)?;
        s.serialize_field("procedure_id", &self.procedure_id)?;
        s.serialize_field("procedure_name", &self.procedure_name)?;
        s.serialize_field("procedure_version", &self.procedure_version)?;
        s.serialize_field("client", CLIENT_NAME)?;
        s.serialize_field("client_version", CLIENT_VERSION)?;
        match &self.steps {
            Some(steps) => s.serialize_field("steps", steps)?,
            None => s.skip_field("steps")?,
        }
        match &self.phases {
            Some(phases) => s.serialize_field("phases", phases)?,
            None => s.skip_field("phases")?,
        }
        match &self.logs {
            Some(logs) => s.serialize_field("logs", logs)?,
            None => s.skip_field("logs")?,
        }
        match &self.started_at {
            Some(at) => s.serialize_field("started_at", &iso::format_datetime(at))?,
            None => s.skip_field("started_at")?,
        }
        match &self.duration {
            Some(d) => s.serialize_field("duration", &iso::format_duration(*d))?,
            None => s.skip_field("duration")?,
        }
        match &self.sub_units {
            Some(units) => s.serialize_field("sub_units", units)?,
            None => s.skip_field("sub_units")?,
        }
        s.end()
    }
}

/// The unit under test. Only the fields that are set are sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnitUnderTest {
    /// Serial number (required).
    pub serial_number: String,
    /// Part number; needed unless the server can derive it from the serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_number: Option<String>,
    /// Revision of the part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Batch number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_number: Option<String>,
    /// Part name (deprecated: ignored by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_name: Option<String>,
}

impl UnitUnderTest {
    /// A unit with its serial number.
    pub fn new(serial_number: impl Into<String>) -> Self {
        Self {
            serial_number: serial_number.into(),
            ..Self::default()
        }
    }

    /// Sets the part number.
    pub fn part_number(mut self, part_number: impl Into<String>) -> Self {
        self.part_number = Some(part_number.into());
        self
    }

    /// Sets the revision.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// Sets the batch number.
    pub fn batch_number(mut self, batch_number: impl Into<String>) -> Self {
        self.batch_number = Some(batch_number.into());
        self
    }
}

/// A sub-unit reference: `{"serial_number": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubUnit {
    /// The sub-unit's serial number (the unit must exist on the server).
    pub serial_number: String,
}

impl SubUnit {
    /// A sub-unit reference.
    pub fn new(serial_number: impl Into<String>) -> Self {
        Self {
            serial_number: serial_number.into(),
        }
    }
}

/// A phase's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PhaseOutcome {
    /// `"PASS"`
    Pass,
    /// `"FAIL"`
    Fail,
    /// `"SKIP"`
    Skip,
    /// `"ERROR"`
    Error,
}

/// A measurement's outcome, computed by the caller (the server does not re-evaluate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MeasurementOutcome {
    /// `"PASS"`
    Pass,
    /// `"FAIL"`
    Fail,
    /// `"UNSET"`
    Unset,
}

impl MeasurementOutcome {
    /// `Pass` when `passed`, else `Fail`.
    pub fn from_bool(passed: bool) -> Self {
        if passed { Self::Pass } else { Self::Fail }
    }
}

/// A phase: `{name, outcome, start_time_millis, end_time_millis, measurements?, docstring?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Phase name.
    pub name: String,
    /// Phase outcome.
    pub outcome: PhaseOutcome,
    /// Start, in milliseconds since the Unix epoch.
    pub start_time_millis: i64,
    /// End, in milliseconds since the Unix epoch.
    pub end_time_millis: i64,
    /// Measurements; sent only when `Some`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Vec<Measurement>>,
    /// The phase's docstring; sent only when `Some`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docstring: Option<String>,
}

impl Phase {
    /// A phase from epoch milliseconds.
    pub fn new(
        name: impl Into<String>,
        outcome: PhaseOutcome,
        start_time_millis: i64,
        end_time_millis: i64,
    ) -> Self {
        Self {
            name: name.into(),
            outcome,
            start_time_millis,
            end_time_millis,
            measurements: None,
            docstring: None,
        }
    }

    /// A phase from two instants.
    pub fn from_times(
        name: impl Into<String>,
        outcome: PhaseOutcome,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Self {
        Self::new(
            name,
            outcome,
            start.timestamp_millis(),
            end.timestamp_millis(),
        )
    }

    /// Appends a measurement.
    pub fn measurement(mut self, measurement: Measurement) -> Self {
        self.measurements
            .get_or_insert_with(Vec::new)
            .push(measurement);
        self
    }

    /// Sets the docstring.
    pub fn docstring(mut self, docstring: impl Into<String>) -> Self {
        self.docstring = Some(docstring.into());
        self
    }
}

/// Units of a measurement: one suffix, or one per column of a multi-dimensional
/// measurement (the dimensions first, then the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Units {
    /// `"V"`
    Single(String),
    /// `["s", "V", "A", "Ohm"]`
    Columns(Vec<String>),
}

impl From<&str> for Units {
    fn from(s: &str) -> Self {
        Self::Single(s.to_owned())
    }
}

impl From<String> for Units {
    fn from(s: String) -> Self {
        Self::Single(s)
    }
}

impl From<Vec<String>> for Units {
    fn from(v: Vec<String>) -> Self {
        Self::Columns(v)
    }
}

impl From<Vec<&str>> for Units {
    fn from(v: Vec<&str>) -> Self {
        Self::Columns(v.into_iter().map(str::to_owned).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Units {
    fn from(v: [&str; N]) -> Self {
        Self::Columns(v.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// A measurement.
///
/// Keys are written in the order of the official guide's examples: `name`, then for a
/// multi-dimensional measurement (units given as columns) `units` before
/// `measured_value` (column names, then the rows), otherwise `measured_value` then
/// `units`; then `lower_limit`, `upper_limit`, `validators`, `docstring`, `outcome`.
/// Fields that are `None` are left out; to send an explicit `"measured_value": null`
/// use `Some(Value::Null)`.
///
/// `measured_value` is any JSON value: number, string, bool, object, array, or rows of
/// numbers for a multi-dimensional measurement. Note that `serde_json` turns a
/// non-finite `f64` (NaN, ±∞) into `null` when it is converted into a [`Value`];
/// non-finite limits are refused when the run is encoded.
///
/// ```
/// use tofu_upload::{CreateMeasurement, CreateMeasurementOutcome};
///
/// let m = CreateMeasurement::multi_dimensional(
///     "current_voltage_resistance_over_time",
///     ["s", "V", "A", "Ohm"],
///     [[0.0, 3.3, 0.3, 11.0], [0.01, 3.35, 0.4, 8.375]],
///     CreateMeasurementOutcome::Pass,
/// );
/// assert_eq!(
///     serde_json::to_string(&m).unwrap(),
///     r#"{"name":"current_voltage_resistance_over_time","units":["s","V","A","Ohm"],"measured_value":[[0.0,3.3,0.3,11.0],[0.01,3.35,0.4,8.375]],"outcome":"PASS"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Measurement {
    /// Measurement name.
    pub name: String,
    /// Outcome, computed by the caller.
    pub outcome: MeasurementOutcome,
    /// The measured value; `None` leaves the key out.
    #[serde(default, deserialize_with = "present_value")]
    pub measured_value: Option<Value>,
    /// Units.
    #[serde(default)]
    pub units: Option<Units>,
    /// Inclusive lower limit.
    #[serde(default)]
    pub lower_limit: Option<f64>,
    /// Inclusive upper limit.
    #[serde(default)]
    pub upper_limit: Option<f64>,
    /// Free-form validator expressions, such as OpenHTF's `"3.1 <= x <= 3.5"`.
    #[serde(default)]
    pub validators: Option<Vec<String>>,
    /// The measurement's docstring.
    #[serde(default)]
    pub docstring: Option<String>,
}

/// A key that is present is `Some`, even when its value is `null`.
fn present_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Measurement {
    /// A measurement without a value.
    pub fn new(name: impl Into<String>, outcome: MeasurementOutcome) -> Self {
        Self {
            name: name.into(),
            outcome,
            measured_value: None,
            units: None,
            lower_limit: None,
            upper_limit: None,
            validators: None,
            docstring: None,
        }
    }

    /// A multi-dimensional measurement: one unit per column (dimensions first, then
    /// the value) and the rows of points.
    pub fn multi_dimensional<U, R, P>(
        name: impl Into<String>,
        units: U,
        rows: R,
        outcome: MeasurementOutcome,
    ) -> Self
    where
        U: IntoIterator,
        U::Item: Into<String>,
        R: IntoIterator<Item = P>,
        P: IntoIterator<Item = f64>,
    {
        let rows = rows
            .into_iter()
            .map(|row| Value::Array(row.into_iter().map(Value::from).collect()))
            .collect();
        Self {
            measured_value: Some(Value::Array(rows)),
            units: Some(Units::Columns(units.into_iter().map(Into::into).collect())),
            ..Self::new(name, outcome)
        }
    }

    /// Sets the measured value.
    pub fn value(mut self, value: impl Into<Value>) -> Self {
        self.measured_value = Some(value.into());
        self
    }

    /// Sets the units.
    pub fn units(mut self, units: impl Into<Units>) -> Self {
        self.units = Some(units.into());
        self
    }

    /// Sets the inclusive lower limit.
    pub fn lower_limit(mut self, limit: f64) -> Self {
        self.lower_limit = Some(limit);
        self
    }

    /// Sets the inclusive upper limit.
    pub fn upper_limit(mut self, limit: f64) -> Self {
        self.upper_limit = Some(limit);
        self
    }

    /// Appends a validator expression.
    pub fn validator(mut self, expression: impl Into<String>) -> Self {
        self.validators
            .get_or_insert_with(Vec::new)
            .push(expression.into());
        self
    }

    /// Sets the docstring.
    pub fn docstring(mut self, docstring: impl Into<String>) -> Self {
        self.docstring = Some(docstring.into());
        self
    }
}

fn finite<E: serde::ser::Error>(field: &str, v: f64) -> Result<f64, E> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(E::custom(format!(
            "{field}: out of range float value {v} is not JSON compliant"
        )))
    }
}

impl Serialize for Measurement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let columns = matches!(self.units, Some(Units::Columns(_)));
        let mut s = serializer.serialize_struct("Measurement", 8)?;
        s.serialize_field("name", &self.name)?;
        if columns {
            s.serialize_field("units", &self.units)?;
        }
        if let Some(v) = &self.measured_value {
            s.serialize_field("measured_value", v)?;
        }
        if let (false, Some(units)) = (columns, &self.units) {
            s.serialize_field("units", units)?;
        }
        if let Some(v) = self.lower_limit {
            s.serialize_field("lower_limit", &finite::<S::Error>("lower_limit", v)?)?;
        }
        if let Some(v) = self.upper_limit {
            s.serialize_field("upper_limit", &finite::<S::Error>("upper_limit", v)?)?;
        }
        if let Some(v) = &self.validators {
            s.serialize_field("validators", v)?;
        }
        if let Some(v) = &self.docstring {
            s.serialize_field("docstring", v)?;
        }
        s.serialize_field("outcome", &self.outcome)?;
        s.end()
    }
}

/// Log levels of a run's log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// `"DEBUG"` (also `tracing`'s TRACE)
    Debug,
    /// `"INFO"`
    Info,
    /// `"WARNING"`
    Warning,
    /// `"ERROR"`
    Error,
    /// `"CRITICAL"`
    Critical,
}

impl From<&tracing::Level> for LogLevel {
    fn from(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => Self::Error,
            tracing::Level::WARN => Self::Warning,
            tracing::Level::INFO => Self::Info,
            _ => Self::Debug,
        }
    }
}

/// A log entry: `{level, timestamp, message, source_file, line_number}`, the timestamp
/// in UTC with milliseconds and `Z` (`2025-01-20T15:32:06.058Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// Level.
    pub level: LogLevel,
    /// When the entry was logged.
    #[serde(with = "serde_iso::log_timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The message.
    pub message: String,
    /// The source file's name (the Python guide sends the basename).
    pub source_file: String,
    /// The line in the source file.
    pub line_number: u32,
}

impl Log {
    /// A log entry.
    pub fn new(
        level: LogLevel,
        timestamp: DateTime<Utc>,
        message: impl Into<String>,
        source_file: impl Into<String>,
        line_number: u32,
    ) -> Self {
        Self {
            level,
            timestamp,
            message: message.into(),
            source_file: source_file.into(),
            line_number,
        }
    }
}

/// A deprecated step (use phases and measurements): the server turns it into a phase
/// with one measurement. `started_at` and `duration` are always sent (`null` when
/// `None`); the measurement fields only when set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Step {
    /// Step name.
    pub name: String,
    /// When the step started.
    #[serde(default, deserialize_with = "serde_iso::datetime_opt::deserialize")]
    pub started_at: Option<DateTime<Utc>>,
    /// How long it took.
    #[serde(default, deserialize_with = "serde_iso::duration_opt::deserialize")]
    pub duration: Option<Duration>,
    /// Whether it passed.
    pub step_passed: bool,
    /// Unit of the measurement.
    #[serde(default)]
    pub measurement_unit: Option<String>,
    /// The measured value.
    #[serde(default, deserialize_with = "present_value")]
    pub measurement_value: Option<Value>,
    /// Lower limit.
    #[serde(default)]
    pub limit_low: Option<f64>,
    /// Upper limit.
    #[serde(default)]
    pub limit_high: Option<f64>,
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Step", 8)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field(
            "started_at",
            &self.started_at.as_ref().map(iso::format_datetime),
        )?;
        s.serialize_field("duration", &self.duration.map(iso::format_duration))?;
        s.serialize_field("step_passed", &self.step_passed)?;
        if let Some(v) = &self.measurement_unit {
            s.serialize_field("measurement_unit", v)?;
        }
        if let Some(v) = &self.measurement_value {
            s.serialize_field("measurement_value", v)?;
        }
        if let Some(v) = self.limit_low {
            s.serialize_field("limit_low", &finite::<S::Error>("limit_low", v)?)?;
        }
        if let Some(v) = self.limit_high {
            s.serialize_field("limit_high", &finite::<S::Error>("limit_high", v)?)?;
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_limits_are_refused() {
        let m = Measurement::new("x", MeasurementOutcome::Pass).lower_limit(f64::NAN);
        let err = serde_json::to_string(&m).unwrap_err();
        assert!(err.to_string().contains("lower_limit"), "{err}");
    }

    #[test]
    fn round_trip_keeps_null_versus_absent() {
        let m = Measurement::new("x", MeasurementOutcome::Unset).value(Value::Null);
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(s, r#"{"name":"x","measured_value":null,"outcome":"UNSET"}"#);
        let back: Measurement = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
        let absent: Measurement =
            serde_json::from_str(r#"{"name":"x","outcome":"UNSET"}"#).unwrap();
        assert_eq!(absent.measured_value, None);
    }

    #[test]
    fn create_run_round_trips() {
        let run = CreateRun::new(UnitUnderTest::new("SN1").part_number("P"), false)
            .procedure_name("System integration")
            .started_at_naive(
                NaiveDateTime::parse_from_str("2025-01-19T09:00:00", "%Y-%m-%dT%H:%M:%S").unwrap(),
            )
            .duration(Duration::from_millis(93_784_500))
            .sub_unit("00102");
        let text = serde_json::to_string(&run).unwrap();
        let back: CreateRun = serde_json::from_str(&text).unwrap();
        assert_eq!(back, run);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn every_optional_key_in_the_python_client_order() {
        use chrono::TimeZone as _;
        let at = Utc.timestamp_millis_opt(1_737_387_126_058).unwrap();
        let run = CreateRun::new(UnitUnderTest::new("SYS-1"), true)
            .procedure_name("System integration")
            .sub_unit("00102")
            .duration(Duration::ZERO)
            .started_at(at)
            .logs([Log::new(LogLevel::Info, at, "m", "f.rs", 1)])
            .phase(Phase::new("p", PhaseOutcome::Skip, 1, 2).docstring("d"))
            .step(Step {
                name: "s".into(),
                started_at: None,
                duration: None,
                step_passed: false,
                measurement_unit: None,
                measurement_value: None,
                limit_low: None,
                limit_high: None,
            });
        assert_eq!(
            serde_json::to_string(&run).unwrap(),
            format!(
                concat!(
                    r#"{{"unit_under_test":{{"serial_number":"SYS-1"}},"run_passed":true,"#,
                    r#""procedure_id":null,"procedure_name":"System integration","procedure_version":null,"#,
                    r#""client":"tofu","client_version":"{}","#,
                    r#""steps":[{{"name":"s","started_at":null,"duration":null,"step_passed":false}}],"#,
                    r#""phases":[{{"name":"p","outcome":"SKIP","start_time_millis":1,"end_time_millis":2,"docstring":"d"}}],"#,
                    r#""logs":[{{"level":"INFO","timestamp":"2025-01-20T15:32:06.058Z","message":"m","source_file":"f.rs","line_number":1}}],"#,
                    r#""started_at":"2025-01-20T15:32:06.058000Z","duration":"PT0S","#,
                    r#""sub_units":[{{"serial_number":"00102"}}]}}"#
                ),
                CLIENT_VERSION
            )
        );
    }

    #[test]
    fn aware_start_is_converted_to_utc() {
        // api.md, create_run_started_at_past: +01:00 09:00:00.123456 -> 08:00:00.123456Z.
        let at = DateTime::parse_from_rfc3339("2025-01-19T09:00:00.123456+01:00").unwrap();
        let run = CreateRun::new(UnitUnderTest::new("SN"), true)
            .started_at(at)
            .duration(Duration::from_secs(23));
        let body = serde_json::to_value(&run).unwrap();
        assert_eq!(body["started_at"], "2025-01-19T08:00:00.123456Z");
        assert_eq!(body["duration"], "PT23S");
    }

    #[test]
    fn measurement_value_types_and_validators() {
        let m = Measurement::new("cfg", MeasurementOutcome::Pass)
            .value(serde_json::json!({"mode": "fast"}))
            .validator("0 <= x <= 10")
            .docstring("doc");
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"cfg","measured_value":{"mode":"fast"},"validators":["0 <= x <= 10"],"docstring":"doc","outcome":"PASS"}"#
        );
        let int = Measurement::new("n", MeasurementOutcome::Unset).value(5);
        assert_eq!(
            serde_json::to_string(&int).unwrap(),
            r#"{"name":"n","measured_value":5,"outcome":"UNSET"}"#
        );
    }
}
